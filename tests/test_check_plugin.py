"""``suite.check.check_plugin``: the generated contract tests (``suite/checks/``) run on a plug-in
file in a fresh pytest process, on the entries the file registers; a file that cannot be loaded is
a one-line SuiteError before pytest starts. The registries of this process are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from suite.check import MODULES, check_modules, check_plugin, registered_by
from suite.errors import SuiteError
from suite.families import FAMILIES
from tasks import TASKS
from tests.test_plugins import readme_plugins

ROOT = Path(__file__).resolve().parent.parent

BROKEN = textwrap.dedent('''
    """Broken on purpose: a family with a layer it never uses, a task whose load() ignores its seed,
    and a task whose inputs do not have the declared shape."""
    import math

    import torch
    from torch import nn

    from suite.families import register_family
    from tasks import Split, Splits, Task, register_task


    class Leaky(nn.Module):
        def __init__(self, features, outputs):
            super().__init__()
            self.used = nn.Linear(features, outputs)
            self.unused = nn.Linear(features, outputs)  # never called: no gradient

        def forward(self, x):
            return self.used(x.flatten(1))


    @register_family("leaky", kinds=("classification",), ranks=(3,), supports=())
    def build_leaky(task, params):
        return Leaky(math.prod(task.input_shape), task.outputs)


    def part(n, features, generator=None):
        x = torch.randn(n, features, generator=generator)
        return Split(x, (x[:, 0] > 0).long())


    def unseeded(seed):  # every call draws other data
        return Splits(part(200, 2), part(100, 2), part(100, 2))


    def misshapen(seed):  # three features, while the task declares two
        gen = torch.Generator().manual_seed(seed)
        return Splits(part(200, 3, gen), part(100, 3, gen), part(100, 3, gen))


    for name, loader in (("unseeded", unseeded), ("misshapen", misshapen)):
        register_task(Task(name=name, kind="classification", input_shape=(2,), outputs=2, metric="accuracy",
                           direction="maximize", target=0.9, epochs=5, batch_size=32, loader=loader))
''')


def suite_check(*args: str) -> subprocess.CompletedProcess:
    """``suite check ...`` as a user runs it (a real process, the real entry point)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "suite.cli", "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_readme_plugins_pass_suite_check(tmp_path):
    path = tmp_path / "readme_plugins.py"
    path.write_text("\n".join(readme_plugins()))  # the family and the task of the README, verbatim
    done = suite_check("--plugin", str(path))
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-3000:]
    assert out.splitlines()[0] == "checking plugin readme_plugins.py (families linear-probe; tasks xor)"
    assert " passed" in out and "failed" not in out and "error" not in out


def test_check_plugin_leaves_the_calling_process_alone(tmp_path):
    path = tmp_path / "readme_plugins.py"
    path.write_text("\n".join(readme_plugins()))
    assert registered_by(path) == {"families": ["linear-probe"], "tasks": ["xor"]}
    assert "linear-probe" not in FAMILIES and "xor" not in TASKS  # loaded in a child process only


@pytest.mark.slow
def test_a_broken_plugin_fails_suite_check_with_a_line_naming_each_broken_entry(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    done = suite_check("--plugin", str(path), "--pytest-arg=-k", "--pytest-arg=not one_epoch")
    out = done.stdout
    assert done.returncode == 1, (out + done.stderr)[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"suite check: {path} failed its contract tests")
    # the id alone: pytest appends " - <message>" to a summary line when the terminal is wide enough
    failed = sorted(line.split(" - ")[0].strip() for line in out.splitlines() if line.startswith("FAILED "))
    assert failed == [
        "FAILED suite/checks/test_family_contract.py::test_every_parameter_gets_a_gradient[leaky-tiny]",
        "FAILED suite/checks/test_task_contract.py::test_load_is_deterministic[unseeded]",
        "FAILED suite/checks/test_task_contract.py::"
        "test_task_splits_have_the_declared_shape_and_judgeable_targets[misshapen]",
    ], out[-3000:]
    for message in ("family 'leaky' on task 'digits' (tiny): parameters without a gradient: "
                    "net.unused.weight, net.unused.bias",
                    "task 'unseeded': two calls of load() give different train.x",
                    "task 'misshapen', train split: inputs of shape (3,), but the task declares (2,)"):
        assert message in out, message


def test_a_missing_or_unreadable_plugin_is_one_error_before_pytest_runs(tmp_path, capfd):
    bad_syntax = tmp_path / "bad_syntax.py"
    bad_syntax.write_text("def broken(:\n")
    for path, message in ((tmp_path / "missing.py", r"plugin '.*missing\.py': no such \.py file"),
                          (tmp_path / "notes.txt", r"no such \.py file"),
                          (bad_syntax, r"plugin '.*bad_syntax\.py' has a syntax error: .* \(line 1\)")):
        if path.suffix == ".txt":
            path.write_text("x = 1\n")
        with pytest.raises(SuiteError, match=message):
            check_plugin(str(path))
    assert "checking plugin" not in capfd.readouterr().out


def test_suite_check_without_a_plugin_or_with_one_that_does_not_load_is_one_error_line(tmp_path):
    from typer.testing import CliRunner

    from suite.cli import app

    done = CliRunner().invoke(app, ["check"])
    assert done.exit_code == 2 and done.stderr.strip() == "error: name the plug-in to check: suite check --plugin FILE.py"
    failing = tmp_path / "failing.py"
    failing.write_text("import no_such_module_here\n")
    done = CliRunner().invoke(app, ["--plugin", str(failing), "check"])
    assert done.exit_code == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: plugin") and "no_such_module_here" in done.stderr


def test_a_plugin_that_fails_to_import_is_one_error(tmp_path):
    failing = tmp_path / "failing.py"
    failing.write_text("import no_such_module_here\n")
    with pytest.raises(SuiteError, match=r"^plugin '.*failing\.py' failed to import: ModuleNotFoundError: "
                                         r"No module named 'no_such_module_here'$"):
        registered_by(failing)


def test_every_generated_module_is_run_by_check_plugin_and_by_make_test():
    folder = ROOT / "suite" / "checks"
    generated = sorted(p.name for p in folder.glob("test_*.py"))
    assert generated and sorted({m for ms in MODULES.values() for m in ms}) == generated
    assert sorted(p.name for p in check_modules()) == generated
    assert [p.name for p in check_modules({"families": ["x"]})] == ["test_family_contract.py"]
    for name in generated:  # tests/ imports each one, so `make test` runs it on the built-in entries
        thin = (ROOT / "tests" / name).read_text()
        assert f"from suite.checks.{name.removesuffix('.py')} import *" in thin, name
