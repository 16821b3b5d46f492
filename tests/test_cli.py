import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from suite.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_list_json_for_each_kind():
    for what in ("tasks", "families", "optimizers", "regularizers"):
        result = invoke("list", what, "--json")
        assert result.exit_code == 0, result.output
        names = [e["name"] for e in json.loads(result.stdout)]
        assert names == sorted(names) and names
    tasks = json.loads(invoke("list", "tasks", "--json").stdout)
    assert all(t["families"] for t in tasks)


def test_list_table():
    result = invoke("list")
    assert result.exit_code == 0 and "mnist1d" in result.stdout and "adamw" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope", "--family", "mlp"], "error: unknown task 'nope'; known: "),
        (["--task", "digits", "--family", "nope"], "error: unknown family 'nope'"),
        (["--task", "digits", "--family", "mlp", "--optimizer", "lion"], "error: unknown optimizer 'lion'"),
        (["--task", "digits", "--family", "mlp", "--regularizer", "magic"], "error: unknown regularizer 'magic'"),
        (["--task", "digits", "--family", "mlp", "--param", "depth=99"], "error: param depth=99 is out of range"),
        (["--task", "digits", "--family", "mlp", "--param", "foo=1"], "error: unknown param 'foo'"),
        (["--task", "digits", "--family", "mlp", "--param", "depth"], "error: --param 'depth' is not of the form key=value"),
        (["--task", "digits", "--family", "mlp", "--device", "tpu"], "error: device 'tpu' is not valid"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message):
    result = invoke("run", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.output


def test_run_json_prints_exactly_one_record_and_writes_it(tmp_path):
    result = invoke("run", "--task", "digits", "--family", "mlp", "--epochs", "1", "--device",
                    "cpu", "--param", "width=16", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "complete" and record["params"]["width"] == 16
    (written,) = tmp_path.glob("*.json")
    assert json.loads(written.read_text())["metrics"] == record["metrics"]


def test_run_readable_summary():
    result = invoke("run", "--task", "digits", "--family", "mlp", "--epochs", "1", "--device",
                    "cpu", "--param", "width=16")
    assert result.exit_code == 0
    assert "accuracy" in result.stdout and "status complete" in result.stdout


def test_console_script_exit_code_and_clean_stdout():
    """The real entry point: a user error exits 2 with one stderr line, nothing on stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "suite.cli", "run", "--task", "nope", "--family", "mlp"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: unknown task 'nope'; known: ") and "digits, " in line


def test_tune_prints_the_best_and_the_defaults_trial_and_seeds_by_study(tmp_path):
    args = ("tune", "--task", "digits", "--family", "mlp", "--optimizer", "sgd", "--param", "width=16",
            "--param", "depth=1", "--trials", "3", "--epochs", "1", "--device", "cpu", "--no-wandb",
            "--no-energy")
    one = invoke(*args, "--out", str(tmp_path / "a"), "--study", "a")
    assert one.exit_code == 0, one.output
    line = one.stdout.strip().splitlines()[-1]
    assert "a/digits/mlp/sgd/none: 3 tuning trials done; best #" in line
    assert "defaults #0: val" in line and "(lr=0.05)" in line  # sgd's default learning rate
    same = invoke(*args, "--out", str(tmp_path / "b"), "--study", "b", "--sampler-seed",
                  str(__import__("zlib").crc32(b"a") % 2**31))
    other = invoke(*args, "--out", str(tmp_path / "c"), "--study", "c")
    strip = lambda out: out.stdout.strip().splitlines()[-1].split(":", 1)[1]  # noqa: E731
    assert strip(same) == strip(one)  # the study name only seeds the sampler
    assert strip(other) != strip(one)
    bad = invoke(*args, "--out", str(tmp_path / "d"), "--pruner", "median")
    assert bad.exit_code == 2 and "pruner 'median' needs tune_trials >= 10, got 3" in bad.stderr



LIGHT_COMMANDS = [
    ["list", "tasks"], ["list", "families", "--json"], ["--help"], ["benchmark", "--help"],
    ["run", "--task", "nope", "--family", "mlp"],
    ["run", "--task", "digits", "--family", "mlp", "--param", "width=abc"],
    ["run", "--task", "digits", "--family", "gan"],
    ["tune", "--task", "digits", "--family", "mlp", "--optimizer", "nope"],
    ["benchmark", "--profile", "nope"],
    ["benchmark", "--profile", "quick", "--dry-run", "--out", "{tmp}/run"],
]


def test_listing_help_validation_and_dry_run_never_import_lightning(tmp_path):
    """Fast answers: Lightning and torchmetrics (seconds of imports on a small machine) are imported
    where training starts, never to list, explain, validate or plan. One fresh process runs every
    command above through the real entry point and then looks at what it imported."""
    commands = [[a.replace("{tmp}", str(tmp_path)) for a in c] for c in LIGHT_COMMANDS]
    probe = ("import json, sys\nimport suite.cli\ncodes = []\n"
             f"for argv in {commands!r}:\n"
             "    sys.argv = ['suite', *argv]\n"
             "    try:\n        suite.cli.main()\n    except SystemExit as e:\n        codes.append(e.code)\n"
             "heavy = [m for m in ('lightning', 'torchmetrics', 'seaborn') if m in sys.modules]\n"
             "print(json.dumps({'codes': codes, 'heavy': heavy}))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], proc.stderr[-1500:]
    assert out["codes"] == [0, 0, 0, 0, 2, 2, 2, 2, 2, 0], proc.stderr[-1500:]
