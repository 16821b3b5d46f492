"""Plug-ins from outside the package: a family file named by --plugin or a profile's plugins:, in
fresh processes (the registries of the test process stay as they are)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def readme_plugins() -> list[str]:
    """The plug-in examples of README's "Your own task, family or data" section, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own task, family or data", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


FAMILY, TASK = readme_plugins()


def suite(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SUITE_PLUGINS"))}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "suite.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture()
def plugin(tmp_path) -> Path:
    path = tmp_path / "linear_probe.py"
    path.write_text(FAMILY)
    return path


@pytest.fixture()
def task_plugin(tmp_path) -> Path:
    path = tmp_path / "xor_task.py"
    path.write_text(TASK)
    return path


def test_a_task_file_is_listed_offers_the_fitting_families_and_trains(task_plugin, plugin, tmp_path):
    listed = suite("list", "tasks", "--json", "--plugin", str(task_plugin), "--plugin", str(plugin), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (xor,) = [t for t in json.loads(listed.stdout) if t["name"] == "xor"]
    assert xor["kind"] == "classification" and xor["input_shape"] == [2]
    # derived from the families' declarations: rank-1 inputs fit mlp and the plug-in family, not cnn
    assert {"mlp", "linear-probe"} <= set(xor["families"]) and "cnn" in xor["not_offered"]
    done = suite("run", "--task", "xor", "--family", "mlp", "--plugin", str(task_plugin), "--epochs", "10",
                 "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rec = json.loads(done.stdout)
    assert rec["status"] == "complete" and rec["task"] == "xor"
    assert set(rec["metrics"]) >= {"test/accuracy", "test/auroc", "test/f1"}  # the kind's collection
    assert rec["metrics"]["test/accuracy"] > 0.8  # an MLP learns XOR; a linear model cannot
    (p,) = rec["plugins"]
    assert p["registered"] == {"tasks": ["xor"]} and p["sha256"] == hashlib.sha256(TASK.encode()).hexdigest()


def test_a_family_file_runs_with_plugin_and_its_hash_is_in_the_record(plugin, tmp_path):
    done = suite("run", "--task", "digits", "--family", "linear-probe", "--plugin", str(plugin), "--epochs", "2",
                 "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rec = json.loads(done.stdout)
    assert rec["status"] == "complete" and rec["family"] == "linear-probe"
    (p,) = rec["plugins"]
    assert p["sha256"] == hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert p["registered"] == {"families": ["linear-probe"]} and p["path"] == str(plugin.resolve())


@pytest.mark.slow
def test_the_plugin_family_is_offered_on_every_task_it_fits_and_trains_on_each(plugin, tmp_path):
    script = textwrap.dedent(f'''
        import json
        from suite.families import families_for
        from suite.plugins import load_plugin
        from suite.train import TrialConfig, train
        from tasks import TASKS
        load_plugin({str(plugin)!r})
        out = {{}}
        for name, task in TASKS.items():
            fits = "linear-probe" in families_for(task)
            status = None
            if fits and not task.download:
                status = train(TrialConfig(task=name, family="linear-probe", epochs=1, device="cpu"))["status"]
            out[name] = {{"kind": task.kind, "fits": fits, "status": status}}
        print(json.dumps(out))
    ''')
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for name, r in out.items():  # declared kinds: the supervised ones; any input rank
        assert r["fits"] == (r["kind"] in ("classification", "regression", "forecasting")), name
        if r["status"] is not None:
            assert r["status"] == "complete", name
    assert sum(r["status"] == "complete" for r in out.values()) >= 6


@pytest.mark.slow
def test_profile_plugins_are_relative_to_the_profile_and_reach_every_job(plugin, task_plugin, tmp_path):
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "p.yaml").write_text(yaml.safe_dump({
        "name": "plug", "tune_trials": 1, "confirm_seeds": 1, "confirm_candidates": 1, "epochs": 2,
        "plugins": [os.path.relpath(plugin, folder), os.path.relpath(task_plugin, folder)],
        "matrix": [{"tasks": ["xor"], "families": ["linear-probe", "mlp"], "optimizers": ["adam"],
                    "params": {"batch_size": 128}}]}))  # a plug-in task, a plug-in and a built-in family
    listed = suite("list", "families", "--plugin", str(plugin), cwd=tmp_path)
    assert listed.returncode == 0 and "linear-probe" in listed.stdout and "plugin linear_probe" in listed.stdout
    done = suite("benchmark", "--profile", str(folder / "p.yaml"), "--out", str(tmp_path / "run"), "--jobs", "2",
                 "--device", "cpu", "--no-wandb", "--no-energy", "--no-report", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "benchmark plug: 2 arms, 4 trials run" in " ".join(done.stdout.split())


def test_a_broken_or_clashing_plugin_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    clash = tmp_path / "clash.py"
    clash.write_text(FAMILY.replace('"linear-probe"', '"mlp"'))
    for path, message in ((broken, "failed to import: ModuleNotFoundError: No module named"),
                          (clash, "clashes with a name registered before it: family 'mlp' is already registered"),
                          (tmp_path / "missing.py", "no such file")):
        done = suite("--plugin", str(path), "list", "families", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: plugin ") and message in lines[0], lines
