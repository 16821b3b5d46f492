"""Faults at the real entry point (``python -m suite.cli``): each is one ``error:`` line (exit 2) or a
kept result, never a traceback. Real files, real W&B, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from tests.arms import ArmStudy, record, tuning_summaries

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--task", "digits", "--family", "mlp", "--epochs", "1", "--param", "width=16", "--param", "depth=1",
        "--device", "cpu"]
PROFILE = {"name": "cli-faults", "tune_trials": 2, "confirm_seeds": 1, "confirm_candidates": 1, "epochs": 1,
           "tracking": {"wandb": True, "energy": False},
           "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"],
                       "params": {"width": 16, "depth": 1, "batch_size": 128}}]}


def suite(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SUITE_DEBUG"))}
    return subprocess.run([sys.executable, "-m", "suite.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**base, "OMP_NUM_THREADS": "1", **(env or {})})


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "╭" not in done.stderr, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize(("args", "expected"), [
    (["run", *TINY[:4], "--epochs", "abc"], "error: invalid value for '--epochs'"),
    (["list", "nosuch"], "'nosuch' is not one of 'tasks', 'families'"),
    (["worker"], "error: missing option '--storage'"),
    (["run", "--task", "digits", "--family", "mlp", "--no-such-flag"], "no such option: --no-such-flag"),
], ids=["not-an-integer", "bad-choice", "missing-option", "unknown-option"])
def test_typer_usage_errors_are_one_line_with_where_to_look(args, expected, tmp_path):
    line = one_error_line(suite(*args, cwd=tmp_path))
    assert expected in line and "--help')" in line


def test_run_json_keeps_the_record_when_out_cannot_be_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = suite("run", *TINY, "--out", str(blocker / "x"), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert record["status"] == "complete" and "test/accuracy" in record["metrics"]
    # the W&B run, the emissions.csv row and the record file each fail, each named, none fails the trial
    errors = record["tracking_errors"]
    assert errors[-1].startswith(f"record file in {blocker / 'x'}: NotADirectoryError"), errors
    assert {e.split(":")[0] for e in errors[:-1]} <= {"wandb", "emissions.csv"}, errors
    assert done.stderr.strip().startswith("warning: record file in ")


def test_corrupt_db_and_out_under_a_file_are_one_line_with_the_cause(tmp_path):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(PROFILE))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "optuna.db").write_bytes(os.urandom(4096))
    line = one_error_line(suite("benchmark", "--profile", "p.yaml", "--out", str(corrupt), "--jobs", "1",
                                cwd=tmp_path))
    assert "file is not a database" in line
    line = one_error_line(suite("report", str(corrupt), cwd=tmp_path))
    assert "file is not a database" in line  # the cause, not only StorageInternalError
    (tmp_path / "a-file").write_text("")
    line = one_error_line(suite("benchmark", "--profile", "p.yaml", "--out", "a-file/run", "--jobs", "1",
                                cwd=tmp_path))
    assert "Not a directory" in line and "a-file/run" in line


def test_a_report_folder_that_cannot_be_made_and_an_unreachable_dashboard_are_one_line(tmp_path):
    from tests.report_data import write_benchmark

    run = tmp_path / "run"
    run.mkdir()
    write_benchmark(f"sqlite:///{run / 'optuna.db'}", tasks=("digits",))
    (run / "report").write_text("a file where the report folder goes")
    line = one_error_line(suite("report", str(run), cwd=tmp_path))
    assert "report" in line and ("File exists" in line or "Not a directory" in line)
    line = one_error_line(suite("dashboard", "postgresql://user:s3cret@127.0.0.1:1/db", cwd=tmp_path))
    assert "s3cret" not in line


def test_password_with_an_unescaped_at_is_masked_in_the_error_line(tmp_path):
    line = one_error_line(suite("report", "postgresql://user:se@cret@nohost.invalid/db", cwd=tmp_path))
    assert "se@cret" not in line and "cret" not in line and "postgresql://user:***@nohost.invalid/db" in line


@pytest.mark.slow
def test_wandb_that_cannot_start_is_a_tracking_error_with_one_warning_and_no_optuna_tracebacks(tmp_path):
    """A file called ``wandb`` where W&B keeps its runs: every trial still completes, names the
    failure in ``tracking_errors``, the run warns once. In the same run an arm whose training step
    fails (a plug-in breaks it for sgd) gives the suite's one line per trial, not optuna's traceback."""
    (tmp_path / "break_sgd.py").write_text(
        "import suite.module\n"
        "step = suite.module.SuiteModule.training_step\n"
        "def training_step(self, batch, i):\n"
        "    if self.optimizer_name == 'sgd':\n        raise RuntimeError('forced failure in the step')\n"
        "    return step(self, batch, i)\n"
        "suite.module.SuiteModule.training_step = training_step\n")
    matrix = [{**PROFILE["matrix"][0], "optimizers": ["adam", "sgd"]}]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({**PROFILE, "matrix": matrix, "plugins": ["break_sgd.py"]}))
    out = tmp_path / "run"
    out.mkdir()
    (out / "wandb").write_text("not a folder")
    done = suite("benchmark", "--profile", "p.yaml", "--out", str(out), "--jobs", "1", "--no-report",
                 cwd=tmp_path, env={"WANDB_MODE": "offline", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "failed with parameters" not in done.stderr, done.stderr[-3000:]
    warnings = [ln for ln in done.stderr.splitlines() if ln.startswith("warning: tracking step wandb")]
    assert len(warnings) == 1, done.stderr[-3000:]
    failed = [ln for ln in done.stderr.splitlines() if "/sgd/none tune seed 0: failed" in ln]
    assert len(failed) == 2 and all(ln.endswith("RuntimeError: forced failure in the step") for ln in failed)
    store = optuna.storages.RDBStorage(f"sqlite:///{out / 'optuna.db'}")
    studies = {s.study_name: s for s in tuning_summaries(store)}
    (adam,) = [n for n in studies if "/adam/" in n]
    trials = ArmStudy(store, adam).get_trials()
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        assert record(t)["tracking_errors"][0].startswith("wandb: NotADirectoryError")
