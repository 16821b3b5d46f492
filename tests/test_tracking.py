import csv
import os

import pytest

from suite.energy import measurement_method
from suite.tracking import Tracking
from suite.train import TrialConfig, train
from tests.wandb_reader import read_run, runs_under


def cfg(seed=0) -> TrialConfig:
    return TrialConfig(task="digits", family="mlp", epochs=2, seed=seed, device="cpu",
                       params={"width": 16, "depth": 1})


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No CodeCarbon config files or W&B settings from the machine leak into the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in list(os.environ):
        if var.startswith(("CODECARBON_", "WANDB_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("WANDB_MODE", "offline")
    return tmp_path


def test_offline_run_is_read_back_from_its_wandb_file(isolated):
    out = isolated / "run"
    record = train(cfg(), tracking=Tracking(out_dir=out, group="digits/mlp/adam/none",
                                            job_type="tune", energy=False),
                   meta={"phase": "tune", "arm": "digits/mlp/adam/none", "study": "digits/mlp/adam/none",
                         "defaults": True})
    assert record["status"] == "complete"
    (path,) = runs_under(out / "wandb")
    run = read_run(path)
    links = [p for p in out.rglob("*") if p.is_symlink()]  # the folder copies to another machine whole
    assert all(not os.path.isabs(os.readlink(p)) and p.resolve().is_relative_to(out.resolve()) for p in links)
    assert run["run"]["group"] == "digits/mlp/adam/none" and run["run"]["job_type"] == "tune"
    assert set(run["run"]["tags"]) == {"digits", "mlp", "adam", "none"}
    assert run["config"]["task"] == "digits" and run["config"]["params"]["width"] == 16
    assert run["config"]["phase"] == "tune" and run["config"]["seed"] == 0
    assert run["config"]["defaults"] is True and run["config"]["study"] == "digits/mlp/adam/none"
    logged = [row for row in run["history"] if "val/accuracy" in row]
    assert [row["val/accuracy"] for row in logged] == pytest.approx(record["curves"]["val/accuracy"])
    assert any("grad/ratio" in row for row in run["history"])
    assert run["summary"]["test/accuracy"] == pytest.approx(record["metrics"]["test/accuracy"])
    assert run["summary"]["status"] == "complete"


def test_two_trials_in_one_process_are_two_runs(isolated):
    out = isolated / "run"
    a = train(cfg(0), tracking=Tracking(out_dir=out, energy=False))
    b = train(cfg(1), tracking=Tracking(out_dir=out, energy=False))
    paths = runs_under(out / "wandb")
    assert len(paths) == 2
    runs = [read_run(p) for p in paths]
    assert {r["run"]["id"] for r in runs} and len({r["run"]["id"] for r in runs}) == 2
    seeds = sorted(r["config"]["seed"] for r in runs)
    assert seeds == [0, 1]
    by_seed = {r["config"]["seed"]: r for r in runs}
    assert by_seed[0]["summary"]["test/accuracy"] == pytest.approx(a["metrics"]["test/accuracy"])
    assert by_seed[1]["summary"]["test/accuracy"] == pytest.approx(b["metrics"]["test/accuracy"])


def test_failed_trial_still_finishes_its_run(isolated, monkeypatch):
    from suite.module import SuiteModule

    def boom(self, batch, batch_idx):
        raise RuntimeError("injected")

    out = isolated / "run"
    monkeypatch.setattr(SuiteModule, "training_step", boom)
    record = train(cfg(), tracking=Tracking(out_dir=out, energy=False))
    assert record["status"] == "failed"
    import wandb

    assert wandb.run is None
    (path,) = runs_under(out / "wandb")
    assert read_run(path)["summary"]["status"] == "failed"


def test_fake_key_appears_in_no_file(isolated, monkeypatch):
    key = "fakekey" + "0123456789abcdef" * 2 + "zz"
    monkeypatch.setenv("WANDB_API_KEY", key)
    out = isolated / "run"
    record = train(cfg(), tracking=Tracking(out_dir=out, energy=True))
    assert record["status"] == "complete"
    assert key not in repr(record)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert key.encode() not in p.read_bytes(), p


def test_energy_is_measured_on_cpu_with_its_method(isolated):
    out = isolated / "run"
    record = train(cfg(), tracking=Tracking(out_dir=out, wandb=False))
    energy = record["energy"]
    assert energy["kwh"] > 0 and energy["emissions_kg"] > 0 and energy["error"] is None
    assert "cpu:" in energy["method"] and energy["country"] == "USA"
    rows = list(csv.DictReader((out / "emissions.csv").open()))
    assert len(rows) == 1 and float(rows[0]["energy_consumed"]) == pytest.approx(energy["kwh"])
    row = rows[0]  # CodeCarbon's column names where they mean the same
    assert float(row["duration"]) > 0 and float(row["emissions"]) > 0 and row["codecarbon_version"]
    assert float(row["cpu_energy"]) + float(row["ram_energy"]) + float(row["gpu_energy"]) == \
        pytest.approx(float(row["energy_consumed"]), rel=1e-6)


def test_a_failing_tracker_leaves_the_trial_complete_with_null_energy(isolated, monkeypatch):
    import suite.energy as tracking

    def broken(country):
        raise RuntimeError("forced tracker failure")

    monkeypatch.setattr(tracking, "make_tracker", broken)
    monkeypatch.setattr(tracking.EnergyMeter, "_tracker", None)
    record = train(cfg(), tracking=Tracking(out_dir=isolated / "run", wandb=False))
    assert record["status"] == "complete"
    assert record["energy"]["kwh"] is None
    assert record["energy"]["error"] == "codecarbon unavailable: RuntimeError: forced tracker failure"


def test_fingerprint_and_throughput_fields(isolated):
    record = train(cfg())
    hw = record["hardware"]
    assert hw["device_type"] == "cpu" and hw["cpu_cores"] >= 1 and hw["cpu_model"]
    assert hw["ram_gb"] > 0
    assert {"torch", "lightning", "torchmetrics"} <= set(record["versions"])
    assert record["samples_per_s"] > 0 and record["epoch_time_s"] > 0
    assert record["peak_memory_mb"] > 0 and record["peak_memory_kind"] == "process_peak_rss"


def test_measurement_method_names_each_component():
    class CPU:
        _mode, _tdp = "cpu_load", 8

    class RAM:
        pass

    class GPU:
        pass

    class Tracker:
        _hardware = [CPU(), RAM(), GPU()]

    assert measurement_method(Tracker()) == "cpu: tdp estimate x load (8 W); ram: estimate; gpu: nvml"


def test_suite_run_tracks_like_a_benchmark_trial(isolated):
    """``suite run --out DIR``: a W&B offline run, the energy in the record and one emissions.csv
    row; without --out the energy is in the record and nothing is written; --no-wandb --no-energy
    turn both off."""
    import json

    from typer.testing import CliRunner

    from suite.cli import app

    out = isolated / "one"
    args = ["run", "--task", "digits", "--family", "mlp", "--epochs", "1", "--device", "cpu",
            "--param", "width=16", "--param", "depth=1", "--json"]
    done = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["energy"]["kwh"] > 0 and record["energy"]["method"], record["energy"]
    (run,) = runs_under(out / "wandb")
    assert run.suffix == ".wandb" and read_run(run)["summary"]["status"] == "complete"
    (saved,) = out.glob("digits_mlp_*.json")
    assert json.loads(saved.read_text())["energy"]["kwh"] == record["energy"]["kwh"]
    with (out / "emissions.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 1
    before = sorted(isolated.rglob("*"))
    done = CliRunner().invoke(app, args)  # no --out: energy in the record, no file anywhere
    assert done.exit_code == 0 and json.loads(done.stdout)["energy"]["kwh"] > 0
    assert sorted(isolated.rglob("*")) == before
    done = CliRunner().invoke(app, [*args, "--out", str(isolated / "bare"), "--no-wandb", "--no-energy"])
    assert done.exit_code == 0 and "energy" not in json.loads(done.stdout)
    assert not (isolated / "bare" / "wandb").exists() and not (isolated / "bare" / "emissions.csv").exists()
