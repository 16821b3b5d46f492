"""The report's hardware section on two real run folders of this machine (``--jobs 1`` and
``--jobs 2``: two machines by fingerprint), merged by ``suite report``; every number of its table
recomputed here from the stored records with numpy and scipy, and the pure pieces on hand-made rows."""

from __future__ import annotations

import html
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from scipy import stats as sps
from typer.testing import CliRunner

from reports import hardware
from suite.cli import app
from suite.errors import SuiteError
from suite.record import CONFIRM_OF, stored_record
from suite.storage import open_storage

ROOT = Path(__file__).resolve().parent.parent
PROFILE = {"name": "hw", "tune_trials": 2, "confirm_seeds": 3, "confirm_candidates": 1, "pruner": "none",
           "epochs": 12, "tracking": {"wandb": False, "energy": True},
           "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"],
                       "params": {"width": 64, "depth": 1, "batch_size": 32}}]}


def cells(page: str) -> list[dict[str, str]]:
    """The rows of the hardware section's per-task table, by column name."""
    section = page.split('id="hardware"')[1].split("</section>")[0]
    table = [t for t in section.split("<table") if "steps to target</th>" in t][0]
    head = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    rows = re.findall(r"<tr>(<td>.*?)</tr>", table, flags=re.S)
    return [dict(zip(head, [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", r)], strict=True))
            for r in rows]


def number(cell: str) -> float:
    return float(cell.split(" [")[0].replace(",", ""))


def interval(cell: str) -> tuple[float, float, float]:
    mean, low, high = re.match(r"(\S+) \[(\S+), (\S+)\]", cell).groups()
    return tuple(float(v.replace(",", "")) for v in (mean, low, high))


def confirm_runs(url: str) -> list[dict]:
    """Each confirm run's record with its energy as the report reads it (an apportioned share under
    --jobs), straight from the Optuna storage."""
    store = open_storage(url, heartbeat=False)
    out = []
    for summary in optuna.get_all_study_summaries(store):
        if CONFIRM_OF not in summary.user_attrs:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=store)
        shares = study.user_attrs.get("energy_apportioned") or {}
        for t in study.get_trials():
            rec = dict(stored_record(t))
            rec["energy"] = {**rec["energy"], **shares.get(str(t.number), {})}
            out.append(rec)
    return out


def t_interval(x: list[float]) -> tuple[float, float, float]:
    a = np.asarray(x, dtype=float)
    half = sps.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
    return a.mean(), a.mean() - half, a.mean() + half


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hw")
    profile = tmp / "hw.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SUITE_JOB"))},
           "OMP_NUM_THREADS": "1"}
    for jobs in ("1", "2"):
        done = subprocess.run([sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(profile), "--out",
                               str(tmp / f"j{jobs}"), "--jobs", jobs, "--device", "cpu", "--no-report"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return tmp


@pytest.mark.slow
def test_two_real_runs_side_by_side_and_every_number_recomputed_from_the_records(two_runs):
    out = two_runs / "report"
    result = CliRunner().invoke(app, ["report", str(two_runs / "j1"), str(two_runs / "j2"), "--out", str(out),
                                      "--price-per-hour", "2 jobs=0.5", "--price-per-hour", "M1=0.25"])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    section = page.split('id="hardware"')[1].split("</section>")[0]
    assert "1 job/device" in section and "2 jobs/device" in section  # told apart by fingerprint
    rows = {r["machine"]: r for r in cells(page)}
    assert set(rows) == {"M1", "M2"}  # M1 = 1 job/device (label order), M2 = 2 jobs/device
    runs = {"M1": confirm_runs(f"sqlite:///{two_runs / 'j1' / 'optuna.db'}"),
            "M2": confirm_runs(str(two_runs / "j2" / "optuna.journal.log"))}
    price = {"M1": 0.25, "M2": 0.5}
    for machine, recs in runs.items():
        row = rec_check = rows[machine]
        assert len(recs) == 3 and all(r["jobs_per_device"] == int(machine[1]) for r in recs)
        steps = [r["primary"]["epochs_to_target"] * r["steps"] / r["epochs_run"] for r in recs]
        ttt = [r["primary"]["time_to_target_s"] for r in recs]
        kwh = [r["energy"]["kwh"] for r in recs]
        ett = [k * 1000 * t / r["fit_s"] for k, t, r in zip(kwh, ttt, recs, strict=True)]
        samples = [r["samples_per_s"] * r["fit_s"] for r in recs]
        if machine == "M1":  # each trial measured alone: its energy over its own window
            power = [k * 3.6e6 / r["energy"]["duration_s"] for k, r in zip(kwh, recs, strict=True)]
        else:  # apportioned: the machine's average power over the run
            power = [r["energy"]["machine_kwh"] * 3.6e6 / r["energy"]["machine_s"] for r in recs]
        assert rec_check["reached"] == "3 of 3"
        for col, values in (("steps to target", steps), ("time to target s", ttt), ("energy to target Wh", ett)):
            for got, want in zip(interval(row[col]), t_interval(values), strict=True):
                assert got == pytest.approx(want, rel=1e-3), (machine, col)
        expected = {"s / step": np.mean([r["fit_s"] / r["steps"] for r in recs]),
                    "samples/s": np.mean([r["samples_per_s"] for r in recs]),
                    "J / 1k samples": np.mean([k * 3.6e6 / s * 1000 for k, s in zip(kwh, samples, strict=True)]),
                    "avg power W": np.mean(power),
                    "cost to target USD": price[machine] * np.mean(ttt) / 3600}
        for col, want in expected.items():
            assert number(row[col]) == pytest.approx(want, rel=1e-3), (machine, col)
        assert row["MFU %"] == "-"  # no peak FLOP/s for a CPU
    # the method's steps are the machine's business no more: the same seeds took the same steps
    assert interval(rows["M1"]["steps to target"]) == interval(rows["M2"]["steps to target"])


@pytest.mark.slow
def test_a_price_for_no_machine_is_one_error_line(two_runs):
    result = CliRunner().invoke(app, ["report", str(two_runs / "j1"), "--out", str(two_runs / "r2"),
                                      "--price-per-hour", "H100=2.49"])
    assert result.exit_code == 2
    assert "error: --price-per-hour 'H100' names no machine of this report; machines: M1 = cpu:" in result.output
    result = CliRunner().invoke(app, ["report", str(two_runs / "j1"), "--price-per-hour", "M1=cheap"])
    assert result.exit_code == 2 and "must be MACHINE=USD" in result.output


def test_setup_labels_tell_jobs_threads_precision_and_tf32_apart():
    base = {"machine": "cuda: NVIDIA H100", "device_count": 8, "devices": 1, "jobs_per_device": 4,
            "torch_threads": 1, "precision": "32-true", "matmul_precision": "highest"}
    assert hardware.setup_label(base) == "cuda: NVIDIA H100 x8 · 4 jobs/device · 1 thread · 32-true"
    tf32 = hardware.setup_label({**base, "matmul_precision": "high", "devices": 2})
    assert tf32 == "cuda: NVIDIA H100 x8 · 4 jobs/device · 1 thread · DDP on 2 · 32-true (TF32: matmul high)"
    old = hardware.setup_label({"machine": "cpu: X", "device_count": math.nan})  # a record before issue 24
    assert old == "cpu: X x? · ? jobs/device · ? threads · ?"


def test_mfu_uses_the_peak_per_device_and_is_missing_without_one():
    confirm = pd.DataFrame({
        "task": "t", "family": "mlp", "optimizer": "adam", "regularizers": "none", "uid": ["a", "b"],
        "machine": "cuda: H100", "device": "cuda", "gpu_count": 2, "cpu_cores": 16, "devices": [2, 1],
        "jobs_per_device": 1, "torch_threads": 1, "precision": "32-true", "matmul_precision": "highest",
        "steps": 100, "epochs_run": 10, "epochs_to_target": [5, np.nan], "fit_s": 10.0,
        "time_to_target_s": [5.0, np.nan], "energy_kwh": 0.001, "samples": 1e5, "energy_duration_s": 12.0,
        "flops_per_sample": 1e9, "samples_per_s": 1e4, "peak_flops": [1e14, np.nan],
        "energy_method": "gpu: nvml", "machine_power_w": np.nan})
    runs = hardware.per_run(confirm)
    assert runs["mfu"].iloc[0] == pytest.approx(1e13 / 2e14)  # two DDP ranks: twice the peak
    assert np.isnan(runs["mfu"].iloc[1])
    assert runs["steps_to_target"].iloc[0] == 50 and runs["power_w"].iloc[0] == pytest.approx(300.0)
    assert runs["short_window"].tolist() == [True, True]  # 12 s < 60 s


def test_price_keys_must_name_one_machine_each():
    runs = pd.DataFrame({"machine_id": ["M1", "M2"], "setup": ["cpu: A x2 · 1 job/device", "cuda: H100 x1"]})
    assert hardware.machine_prices(runs, {"h100": 2.0, "M1": 0.1}) == {"M2": 2.0, "M1": 0.1}
    with pytest.raises(SuiteError, match="named twice"):
        hardware.machine_prices(runs, {"cpu": 1.0, "M1": 2.0})
    with pytest.raises(SuiteError, match="MACHINE=USD"):
        hardware.parse_prices(["M1=-1"])
    assert hardware.parse_prices(["a=b=1"]) == {"a=b": 1.0}


def test_machine_headers_say_what_was_measured_and_who_else_used_the_gpu():
    rows = pd.DataFrame({
        "machine": ["cuda: H100", "cuda: H100", "cpu: X"], "device": ["cuda", "cuda", "cpu"],
        "gpu_count": [1, 1, 0], "cpu_cores": [16, 16, 2], "devices": 1, "jobs_per_device": 1,
        "torch_threads": 1, "precision": "32-true", "matmul_precision": "highest", "hostname": ["a", "b", "c"],
        "gpu_driver": ["550.1", "550.1", None], "cuda": ["12.4", "12.4", None],
        "gpu_power_limit_w": [700.0, 700.0, np.nan], "jobs": [4, 4, 1], "gpu_other_processes": [0, 2, np.nan],
        "energy_method": ["cpu: rapl; ram: estimate; gpu: nvml", "cpu: rapl; gpu: nvml", "cpu: tdp estimate x load"]})
    h = hardware.machine_headers(rows).set_index("machine_id")
    assert h.loc["M1", "setup"].startswith("cpu: X x2") and h.loc["M2", "hosts"] == 2  # two hosts, one setup
    assert (h.loc["M2", "driver"], h.loc["M2", "power_limit_w"], h.loc["M2", "others"]) == ("550.1", "700", "2")
    assert h.loc["M1", "energy"] == "estimated" and h.loc["M1", "others"] == "-"
    assert h.loc["M2", "energy"] == "measured"  # CPU by RAPL, GPU by NVML (RAM is always an estimate)
    assert hardware.machine_headers(rows.assign(energy_method=["gpu: nvml", "cpu: tdp estimate x load; gpu: nvml",
                                                               None])).loc[1, "energy"] == "measured in part"
    assert hardware.is_measured("cpu: rapl; gpu: nvml") and hardware.is_measured(None) is None


def test_two_sources_of_one_arm_are_one_row_per_machine_but_fixed_params_stay_apart():
    base = {"task": "t", "optimizer": "adam", "regularizers": "none", "machine": "cpu: X", "device": "cpu",
            "gpu_count": 0, "cpu_cores": 2, "devices": 1, "jobs_per_device": 1, "torch_threads": 1,
            "precision": "32-true", "matmul_precision": "highest", "steps": 10, "epochs_run": 1,
            "epochs_to_target": 1, "fit_s": 1.0, "time_to_target_s": 1.0, "energy_kwh": np.nan, "samples": 100.0,
            "energy_duration_s": np.nan, "flops_per_sample": np.nan, "samples_per_s": 100.0, "peak_flops": np.nan,
            "energy_method": None, "machine_power_w": np.nan}
    confirm = pd.DataFrame([{**base, "uid": "a", "family": "mlp [runs/a]", "family_name": "mlp", "fixed": None},
                            {**base, "uid": "b", "family": "mlp [runs/b]", "family_name": "mlp", "fixed": None},
                            {**base, "uid": "c", "family": "mlp [width=8]", "family_name": "mlp", "fixed": "width=8"}])
    tab = hardware.hardware_table(confirm)
    assert tab[["family", "fixed", "runs"]].values.tolist() == [["mlp", "", 2], ["mlp", "width=8", 1]]


def test_a_machine_with_tuning_trials_only_keeps_the_ids_of_the_headers_in_the_table():
    """Ids come from every trial of the report: the confirm runs of machine "cpu: B" are M2 in the
    table as in the header, though "cpu: A" ran no confirm run (its own frame would call B M1)."""
    base = {"task": "t", "family": "mlp", "optimizer": "adam", "regularizers": "none", "device": "cpu",
            "gpu_count": 0, "cpu_cores": 2, "devices": 1, "jobs_per_device": 1, "torch_threads": 1,
            "precision": "32-true", "matmul_precision": "highest", "steps": 10, "epochs_run": 1,
            "epochs_to_target": 1, "fit_s": 1.0, "time_to_target_s": 1.0, "energy_kwh": np.nan, "samples": 100.0,
            "energy_duration_s": np.nan, "flops_per_sample": np.nan, "samples_per_s": 100.0, "peak_flops": np.nan,
            "energy_method": None, "machine_power_w": np.nan, "fixed": None}
    trials = pd.DataFrame([{**base, "uid": "a", "machine": "cpu: A"}, {**base, "uid": "b", "machine": "cpu: B"}])
    ids = hardware.machine_ids(trials)
    confirm = trials.iloc[[1]]
    runs = hardware.with_setups(trials, ids)
    tab = hardware.hardware_table(confirm, hardware.machine_prices(runs, {"cpu: B": 3600.0}), ids=ids)
    assert tab["machine_id"].tolist() == ["M2"] and tab["cost_to_target_usd"].tolist() == [1.0]
    assert hardware.hardware_table(confirm)["machine_id"].tolist() == ["M1"]  # what a frame of its own says
