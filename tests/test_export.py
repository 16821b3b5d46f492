"""``suite export``: the report's trial frame as a parquet or CSV file, one row per stored trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
from typer.testing import CliRunner

from suite.benchmark import run_benchmark
from suite.cli import app
from suite.profile import load_profile
from suite.storage import open_storage

TINY = Path(__file__).parent / "profiles" / "tiny.yaml"


def test_export_writes_one_row_per_stored_trial(tmp_path):
    result = run_benchmark(load_profile(str(TINY)), out_dir=tmp_path / "run", report=False)
    store = open_storage(result.storage, heartbeat=False)
    n_trials = sum(len(optuna.load_study(study_name=s.study_name, storage=store).trials)
                   for s in optuna.get_all_study_summaries(store))
    runner = CliRunner()
    for name in ("trials.parquet", "trials.csv"):
        done = runner.invoke(app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
        assert f"wrote {n_trials} trials" in done.stdout
        frame = (pd.read_parquet if name.endswith(".parquet") else pd.read_csv)(tmp_path / name)
        assert len(frame) == n_trials == 8  # 2 arms x (3 tune + 1 confirm)
        assert {"task", "family", "optimizer", "phase", "state", "test", "val", "energy_kwh",
                "cpu_model", "param.lr", "param.width"} <= set(frame.columns)
        assert set(frame["param.width"]) == {16}  # fixed by the profile
        lr = json.loads(frame["params"].iloc[0])["lr"]
        assert frame["param.lr"].iloc[0] == lr
    bad = runner.invoke(app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "t.xlsx")])
    assert bad.exit_code == 2 and "must end in .parquet or .csv" in bad.stderr
    missing = runner.invoke(app, ["export", str(tmp_path / "nope"), "--out", str(tmp_path / "t.csv")])
    assert missing.exit_code == 2 and "error:" in missing.stderr and "Traceback" not in missing.output
