"""Data without code: ``suite run --task data:FILE`` for .csv, .parquet and .npz, and one line per
bad file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from suite.cli import app
from tasks.data import data_task


def table(n: int = 240) -> pd.DataFrame:
    r = np.random.default_rng(0)
    x = r.normal(size=(n, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "churned": (x[:, 0] > 0).astype(int)})


def run(*args: str):
    return CliRunner().invoke(app, ["run", "--family", "mlp", "--epochs", "2", "--device", "cpu",
                                    "--param", "width=16", "--param", "depth=1", *args])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_a_data_file_trains_and_its_hash_is_in_the_record(tmp_path, suffix):
    path = tmp_path / f"churn{suffix}"
    frame = table()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:  # signals (1, 3) and a regression target
        np.savez(path, x=frame[["a", "b", "c"]].to_numpy().reshape(-1, 1, 3), y=frame["a"].to_numpy() * 2.5)
    args = ["--task", f"data:{path}", "--json"] + ([] if suffix == ".npz" else ["--target", "churned"])
    done = run(*args)
    assert done.exit_code == 0, done.output
    rec = json.loads(done.stdout)
    assert rec["status"] == "complete"
    info = rec["task_info"]
    assert info["data_file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    if suffix == ".npz":
        assert info["kind"] == "regression" and info["metric"] == "r2" and info["input_shape"] == [1, 3]
    else:
        assert info["kind"] == "classification" and info["metric"] == "accuracy" and info["outputs"] == 1


def test_the_split_is_stratified_seeded_and_standardized_with_train_statistics(tmp_path):
    path = tmp_path / "t.csv"
    table(400).to_csv(path, index=False)
    task = data_task(path, target="churned")
    a, b = task.load(), task.load()
    sizes = a.sizes()
    assert torch_equal(a.train.x, b.train.x) and sum(sizes.values()) == 400 and sizes["train"] == 280
    assert abs(sizes["val"] - 60) <= 1 and abs(sizes["test"] - 60) <= 1
    assert abs(float(a.train.x.mean())) < 1e-5 and abs(float(a.train.x.std()) - 1) < 0.01
    ratio = [float(s.y.float().mean()) for s in (a.train, a.val, a.test)]
    assert max(ratio) - min(ratio) < 0.05  # stratified


def torch_equal(x, y) -> bool:
    return bool((x == y).all())


def test_bad_data_files_are_one_line_each(tmp_path):
    good = table()
    cases = {}
    cases["missing target"] = (good, ["--target", "nope"], "has no target column 'nope'")
    cases["no target named"] = (good, [], "name its target column (--target COLUMN)")
    cases["non-numeric"] = (good.assign(city=["x"] * len(good)), ["--target", "churned"],
                            "non-numeric feature column(s) city")
    cases["nan"] = (good.assign(a=[np.nan] + list(good["a"][1:])), ["--target", "churned"], "NaN or infinite")
    cases["too few rows"] = (good.head(30), ["--target", "churned"], "every split needs at least 10")
    for i, (name, (frame, extra, message)) in enumerate(cases.items()):
        path = tmp_path / f"case{i}.csv"
        frame.to_csv(path, index=False)
        done = run("--task", f"data:{path}", *extra)
        lines = done.stderr.strip().splitlines()
        assert done.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: data file "), (name, lines)
        assert message in lines[0], (name, lines[0])
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"not a parquet file")
    for path, message in ((garbage, "cannot be read"), (tmp_path / "none.csv", "does not exist"),
                          (tmp_path / "x.txt", "does not exist")):
        done = run("--task", f"data:{path}", "--target", "y")
        assert done.exit_code == 2 and message in done.stderr and "Traceback" not in done.output, done.output
    odd = tmp_path / "x.txt"
    odd.write_text("a,b\n")
    done = run("--task", f"data:{odd}", "--target", "b")
    assert done.exit_code == 2 and "unknown format '.txt'" in done.stderr


@pytest.mark.slow
def test_a_profile_data_task_runs_through_suite_benchmark_with_jobs(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    (tmp_path / "data").mkdir()
    table().to_parquet(tmp_path / "data" / "churn.parquet")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({
        "name": "own", "tune_trials": 2, "confirm_seeds": 1, "confirm_candidates": 1, "epochs": 3,
        "matrix": [{"tasks": [{"name": "churn", "data": "data/churn.parquet", "target": "churned"}],
                    "families": ["mlp"], "optimizers": ["adam"], "params": {"width": 16, "depth": 1}}]}))
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run([sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(tmp_path / "p.yaml"),
                           "--out", str(tmp_path / "run"), "--jobs", "2", "--device", "cpu", "--no-wandb",
                           "--no-energy"], cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "benchmark own: 1 arms, 3 trials run" in " ".join(done.stdout.split())
    assert "On churn, use mlp" in done.stdout
    broken = yaml.safe_load((tmp_path / "p.yaml").read_text())
    broken["matrix"][0]["tasks"] = [{"name": "churn2", "data": "data/missing.csv", "target": "churned"}]
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(broken))
    bad = CliRunner().invoke(app, ["benchmark", "--dry-run", "--profile", str(tmp_path / "q.yaml")])
    lines = bad.stderr.strip().splitlines()
    assert bad.exit_code == 2 and len(lines) == 1 and "missing.csv' does not exist" in lines[0], lines
