"""``suite export``: the report's trial frame as a parquet or CSV file, one row per stored trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
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
                   for s in optuna.get_all_study_summaries(store))  # the confirm studies' trials too
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


ROOT = Path(__file__).resolve().parent.parent


def readme_queries() -> list[str]:
    """The ```sql blocks of the README's export section, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Export: the trials as a table", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```sql\n")[1:]]


def test_the_export_is_read_by_duckdb_and_polars_and_concatenates_across_machines(tmp_path):
    """Clients nobody here wrote: DuckDB runs the README's queries, polars reads the file, and a
    CPU export concatenates with one whose GPU columns are filled (the schema is fixed)."""
    import duckdb
    import polars as pl

    from reports import stats
    from reports.export import export_frame
    from reports.load import load
    from tests.report_data import GPU_HW, write_benchmark

    cpu_db, gpu_db = tmp_path / "cpu.db", tmp_path / "gpu.db"
    write_benchmark(f"sqlite:///{cpu_db}", tasks=("mnist1d",), families=("mlp", "cnn"),
                    arms=[("adam", ["none"])])
    write_benchmark(f"sqlite:///{gpu_db}", tasks=("mnist1d",), families=("mlp", "cnn"),
                    arms=[("adam", ["none"])], device="cuda", hardware=GPU_HW, benchmark="gpu")
    runner = CliRunner()
    for name, db in (("cpu", cpu_db), ("gpu", gpu_db)):
        done = runner.invoke(app, ["export", f"sqlite:///{db}", "--out", str(tmp_path / f"{name}.parquet"),
                                   "--curves", "--long"])
        assert done.exit_code == 0, done.output
    both = duckdb.sql(f"SELECT * FROM read_parquet(['{tmp_path}/cpu.parquet', '{tmp_path}/gpu.parquet'])").df()
    frames = [pl.read_parquet(tmp_path / f"{n}.parquet") for n in ("cpu", "gpu")]
    assert len(pl.concat(frames, how="diagonal_relaxed")) == len(both) == sum(len(f) for f in frames)
    assert set(both["gpu_model"].dropna()) == {GPU_HW["gpu_model"]}
    cpu = frames[0]
    assert cpu.schema["number"] == pl.Int64 and cpu.schema["chosen"] == pl.Boolean
    assert cpu.schema["gpu_model"] == pl.String and cpu["gpu_model"].null_count() == len(cpu)  # empty, typed
    assert cpu.schema["started_at"] == pl.Datetime("us", "UTC")
    assert "metric.test/accuracy" in cpu.columns and "metric.val/accuracy" in cpu.columns
    curves = pl.read_parquet(tmp_path / "cpu.curves.parquet")
    assert set(curves["uid"]) <= set(cpu["uid"]) and curves.schema["epoch"] == pl.Int64
    # --long: one row per trial and metric, the same values as the wide columns
    long = duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path}/cpu.metrics.parquet')").df()
    assert list(long.columns) == ["uid", "split", "metric", "value"]
    wide = cpu.to_pandas().set_index("uid")
    for row in long.sample(n=min(20, len(long)), random_state=0).itertuples():
        assert wide.loc[row.uid, f"metric.{row.split}/{row.metric}"] == pytest.approx(row.value)
    n_values = sum(int(cpu[c].is_not_null().sum()) for c in cpu.columns if c.startswith("metric."))
    assert len(long) == n_values and {"test", "val"} <= set(long["split"])
    # the README's three queries run; the first gives the report's per-family numbers
    queries = readme_queries()
    assert len(queries) == 3
    results = [duckdb.sql(q.replace("'trials.parquet'", f"'{tmp_path}/cpu.parquet'")).df() for q in queries]
    assert all(len(r) for r in results)
    trials = load([f"sqlite:///{cpu_db}"]).trials
    summary = stats.arm_summary(stats.confirm_trials(trials))  # the report's arm means
    expected = summary.set_index("family")["mean"]
    got = results[0].set_index("family")["test"]
    assert got.to_dict() == pytest.approx(expected.to_dict()) and len(got) == 2
    assert len(export_frame(trials)) == len(trials)
