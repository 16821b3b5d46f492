"""SIGINT and SIGTERM stop a run cleanly: the running trial is recorded as interrupted (not counted,
requeued with its params), the command says what it kept and how to resume, exit 130; the rerun
finishes the budget exactly. Real processes, real signals, a real SQLite run folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from suite.accounting import PHASE_TUNE, is_done, phase_of
from suite.storage import open_storage
from tests.arms import ArmStudy, record, tuning_summaries

ROOT = Path(__file__).resolve().parent.parent
PROFILE = {"name": "stop", "tune_trials": 2, "confirm_seeds": 1, "confirm_candidates": 1, "pruner": "none",
           "epochs": 40, "tracking": {"wandb": False, "energy": False},
           "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"],
                       "params": {"width": 32, "depth": 1, "batch_size": 16}}]}


def trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        store = open_storage(f"sqlite:///{out / 'optuna.db'}", heartbeat=False)
        (summary,) = tuning_summaries(store)
        return ArmStudy(store, summary.study_name).get_trials()
    except Exception:
        return []


@pytest.mark.slow
def test_sigterm_mid_trial_records_it_as_interrupted_and_the_rerun_redoes_it(tmp_path):
    """SIGTERM takes SIGINT's path (the CLI turns it into KeyboardInterrupt), so this covers both
    for one process; ``test_jobs`` sends SIGINT to a ``--jobs 2`` parent and its jobs."""
    sig = signal.SIGTERM
    profile, out = tmp_path / "p.yaml", tmp_path / "run"
    profile.write_text(yaml.safe_dump(PROFILE))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(profile), "--out", str(out),
           "--device", "cpu", "--jobs", "1", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=catch_sigint)
    deadline = time.monotonic() + 240
    while not any(t.state == TrialState.RUNNING and t.number == 1 for t in trials(out)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:] if proc.poll() else ""
        time.sleep(0.2)
    time.sleep(1.5)  # inside trial 1's training loop (40 epochs of 1,000 images in batches of 16)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and "run the same command again to resume" in last, err[-2000:]
    assert "Traceback" not in err
    assert not (out / ".lock").exists()  # the run folder's lock is released however the run stops
    stopped = {t.number: t for t in trials(out)}[1]
    assert stopped.state == TrialState.FAIL and record(stopped)["status"] == "interrupted"
    assert not is_done(stopped)
    waiting = [t for t in trials(out) if t.state == TrialState.WAITING]
    assert [t.params for t in waiting] == [stopped.params]  # requeued with the same params
    assert record(waiting[0]) is None  # the copy starts clean: no result before it ran
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    done = [t for t in trials(out) if is_done(t)]
    assert sum(phase_of(t) == PHASE_TUNE for t in done) == 2 and len(done) == 3
    assert any(t.params == stopped.params and t.state == TrialState.COMPLETE for t in done)


def catch_sigint() -> None:
    """In the child, before exec: SIGINT at its default, so Python turns it into KeyboardInterrupt
    (a test run started in the background of a non-interactive shell ignores SIGINT, and children
    would inherit that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
