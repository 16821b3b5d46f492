"""``suite benchmark --jobs N``: worker processes on one machine, exact budgets, energy apportioned."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from suite.accounting import PHASE_CONFIRM, PHASE_TUNE, is_done, phase_of
from suite.energy import APPORTION_PENDING, apportion
from suite.errors import SuiteError
from suite.jobs import JOURNAL, auto_jobs, job_envs, run_storage
from suite.storage import open_storage
from tests.arms import ArmStudy, record, tuning_summaries
from tests.wandb_reader import read_run

ROOT = Path(__file__).resolve().parent.parent
PROFILE = {"name": "jobs", "tune_trials": 3, "confirm_seeds": 2, "confirm_candidates": 1, "pruner": "none",
           "epochs": {"default": 3},
           "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam", "sgd", "momentum"],
                       "regularizers": [["none"]], "params": {"width": 16, "depth": 1, "batch_size": 64}}]}


def test_auto_jobs_one_per_core_on_cpu_and_a_few_per_gpu_within_memory():
    assert auto_jobs(cpus=2, gpus=[]) == 2 and auto_jobs(cpus=1, gpus=[]) == 1
    assert auto_jobs(cpus=16, gpus=["0"]) == 4
    assert auto_jobs(cpus=16, gpus=["0", "1"]) == 8
    assert auto_jobs(cpus=6, gpus=["0", "1"]) == 6  # no more jobs than cores to feed them
    assert auto_jobs(cpus=16, gpus=["0", "1"], gpu_free_gib={"0": 9.0, "1": 80.0}) == 2 + 4  # 9 GiB: 2 jobs
    assert auto_jobs(cpus=16, gpus=["0"], gpu_free_gib={"0": 1.0}) == 1  # at least one


def test_jobs_are_spread_over_the_visible_gpus_one_thread_each():
    envs = job_envs(5, ["2", "3"], "run1")
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "3", "2", "3", "2"]
    assert all(e["OMP_NUM_THREADS"] == "1" and e["SUITE_JOB_RUN"] == "run1" for e in envs)
    assert "CUDA_VISIBLE_DEVICES" not in job_envs(2, [], "r")[0]
    assert [e["SUITE_JOBS_PER_DEVICE"] for e in envs] == ["3", "2", "3", "2", "3"]  # 3 on GPU 2, 2 on 3
    assert {e["SUITE_JOBS"] for e in envs} == {"5"}
    assert [e["SUITE_JOBS_PER_DEVICE"] for e in job_envs(2, [], "r")] == ["2", "2"]  # CPU: one device


def test_apportion_shares_cpu_by_cpu_time_and_each_gpu_by_time_on_it():
    trials = {"a": {"cpu_s": 3.0, "duration_s": 10.0, "gpu": "0"},
              "b": {"cpu_s": 1.0, "duration_s": 30.0, "gpu": "0"},
              "c": {"cpu_s": 4.0, "duration_s": 5.0, "gpu": "1"}}
    out = apportion(trials, cpu_ram_kwh=0.8, gpu_kwh={"0": 2.0, "1": 1.0}, kg_per_kwh=0.5)
    assert out["a"]["cpu_ram_kwh"] == pytest.approx(0.3) and out["c"]["cpu_ram_kwh"] == pytest.approx(0.4)
    assert out["a"]["gpu_kwh"] == pytest.approx(0.5) and out["b"]["gpu_kwh"] == pytest.approx(1.5)
    assert out["c"]["gpu_kwh"] == pytest.approx(1.0)
    assert sum(v["kwh"] for v in out.values()) == pytest.approx(0.8 + 3.0)  # the measured total
    assert out["a"]["emissions_kg"] == pytest.approx(0.5 * out["a"]["kwh"])
    assert out["a"]["method"].startswith("apportioned")
    cpu_only = apportion({"x": {"cpu_s": 1.0, "gpu": None}, "y": {"cpu_s": 0.0, "gpu": None}},
                         cpu_ram_kwh=1.0, gpu_kwh={}, kg_per_kwh=0.4)
    assert cpu_only["x"]["kwh"] == pytest.approx(1.0) and cpu_only["y"]["kwh"] == 0.0


def test_jobs_need_a_storage_processes_can_share(tmp_path):
    assert run_storage(tmp_path / "new", None) == str((tmp_path / "new" / JOURNAL).resolve())
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "optuna.db").write_bytes(b"")
    with pytest.raises(SuiteError, match="resume it with --jobs 1"):
        run_storage(tmp_path / "old", None)
    with pytest.raises(SuiteError, match="not SQLite"):
        run_storage(tmp_path / "x", f"sqlite:///{tmp_path}/x.db")


@pytest.mark.slow
def test_two_jobs_keep_exact_budgets_and_apportion_the_machine_energy(tmp_path):
    profile = tmp_path / "jobs.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "CODECARBON_"))}
    env.update(HOME=str(tmp_path), WANDB_MODE="offline")
    log = tmp_path / "log"
    with log.open("w") as f:  # stdout and stderr into one file, as `make benchmark > log 2>&1`
        done = subprocess.run([sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(profile),
                               "--out", str(out), "--device", "cpu", "--jobs", "2"],
                              cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    assert "with 2 jobs" in text and (out / JOURNAL).is_file() and not (out / "optuna.db").exists()
    # one line per trial, never broken: each trial line ends with its seconds and job
    trial_lines = [ln for ln in text.splitlines() if ln.startswith("  jobs/")]
    assert len(trial_lines) >= 3 * (3 + 2)
    assert all(re.search(r": \w+ val/accuracy [\d.-]+ \([\d.]+ s\) \[job [12]\]$", ln) for ln in trial_lines)
    store = open_storage(str(out / JOURNAL))
    measured = [json.loads(ln) for ln in (out / "energy_runs.jsonl").read_text().splitlines()]
    assert len(measured) == 1 and measured[0]["kwh"] > 0
    shares, workers, amended, no_run = 0.0, set(), 0, []
    for s in tuning_summaries(store):
        study = ArmStudy(store, s.study_name)
        trials = study.get_trials()
        counted = [t for t in trials if not t.user_attrs.get("surplus")]
        assert all(t.state == TrialState.COMPLETE for t in counted), s.study_name
        assert sum(phase_of(t) == PHASE_TUNE for t in counted) == 3
        seeds = sorted(t.user_attrs["seed"] for t in counted if phase_of(t) == PHASE_CONFIRM)
        assert seeds == [1, 2]  # each confirm seed exactly once
        assert len({json.dumps(t.params, sort_keys=True) for t in counted if phase_of(t) == PHASE_TUNE}) == 3
        for optuna_study, phase in ((study.tuning, PHASE_TUNE), (study.confirm, PHASE_CONFIRM)):
            ap = optuna_study.user_attrs["energy_apportioned"]  # each study keeps its trials' shares
            for t in (t for t in counted if phase_of(t) == phase):
                rec = record(t)
                assert rec["energy"]["method"] == APPORTION_PENDING and rec["torch_threads"] == 1
                assert ap[str(t.number)]["method"].startswith("apportioned")
                workers.add(rec["worker"])
                # its W&B run, read back with wandb's own reader, carries its share and `chosen`
                if rec.get("wandb_run") is None:  # W&B did not start or finish (seen once under CI load):
                    no_run.append(rec.get("tracking_errors"))  # then the record says why (below)
                    continue
                run = read_run(next((out / rec["wandb_run"]).glob("run-*.wandb")))
                amended += 1
                assert run["summary"]["energy/kwh"] == pytest.approx(ap[str(t.number)]["kwh"])
                assert run["summary"]["energy/method"].startswith("apportioned")
                choice = study.user_attrs["confirm_choice"]
                assert run["config"]["chosen"] == (rec.get("candidate") == choice if phase == PHASE_CONFIRM
                                                   else t.number == choice)
                assert run["config"]["optuna_study"] == optuna_study.study_name
            shares += sum(v["kwh"] for v in ap.values())
    assert shares == pytest.approx(measured[0]["kwh"], rel=0.05)
    assert all(any(e.startswith("wandb") for e in errors or []) for errors in no_run), no_run
    assert amended >= 8 and amended > len(no_run), (amended, no_run)  # 10 trials: nearly all amended
    # at most the 2 jobs ran trials (on a loaded machine one job may finish these tiny trials before
    # the other has imported torch: budgets must stay exact either way)
    assert 1 <= len(workers) <= 2
    # the report reads the run folder (journal) and its totals are the apportioned shares
    from reports.load import load

    data = load([str(out)])
    assert data.trials["energy_kwh"].sum() == pytest.approx(measured[0]["kwh"], rel=0.05)
    assert (data.trials["energy_method"].str.startswith("apportioned")).all()
    # emissions.csv: one row per trial that ran, with its share, in CodeCarbon's column names
    rows = list(csv.DictReader((out / "emissions.csv").open()))
    ran = sum(1 for s in tuning_summaries(store) for t in
              ArmStudy(store, s.study_name).get_trials()
              if (record(t) or {}).get("energy"))
    assert len(rows) == ran
    assert sum(float(r["energy_consumed"]) for r in rows) == pytest.approx(measured[0]["kwh"], rel=0.05)
    assert {r["tracking_mode"] for r in rows} == {"machine, apportioned"} and all(r["codecarbon_version"]
                                                                                   for r in rows)
    assert (out / "report" / "index.html").is_file()


@pytest.mark.slow
def test_ctrl_c_stops_every_job_keeps_the_results_and_the_rerun_finishes_exactly(tmp_path):
    import signal
    import time

    profile = tmp_path / "jobs.yaml"
    profile.write_text(yaml.safe_dump({**PROFILE, "epochs": {"default": 6}}))
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "CODECARBON_"))}
    env.update(HOME=str(tmp_path), WANDB_MODE="offline")
    cmd = [sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(profile), "--out", str(out),
           "--device", "cpu", "--jobs", "2", "--no-wandb", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=catch_sigint)
    deadline = time.monotonic() + 240

    def complete() -> int:
        try:
            store = open_storage(str(out / JOURNAL))
            return sum(t.state == TrialState.COMPLETE for s in tuning_summaries(store)
                       for t in ArmStudy(store, s.study_name).get_trials())
        except Exception:
            return 0

    while complete() < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "no trial finished"
        time.sleep(0.3)
    kept = complete()
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the foreground process
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err
    time.sleep(1)
    jobs_left = subprocess.run(["pgrep", "-f", f"--out {out}"], capture_output=True, text=True).stdout.split()
    assert jobs_left == [], "a job outlived the interrupted parent"
    assert complete() >= kept  # nothing finished was lost
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    store = open_storage(str(out / JOURNAL))
    for s in tuning_summaries(store):
        counted = [t for t in ArmStudy(store, s.study_name).get_trials()
                   if is_done(t) and record(t) is not None]
        assert sum(phase_of(t) == PHASE_TUNE for t in counted) == 3, s.study_name
        assert sorted(t.user_attrs["seed"] for t in counted if phase_of(t) == PHASE_CONFIRM) == [1, 2]


def catch_sigint() -> None:
    """In the child, before exec: SIGINT at its default, so Python turns it into KeyboardInterrupt
    (a test run started in the background of a non-interactive shell ignores SIGINT, and children
    would inherit that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
