"""Run the project's generated contract tests on a plug-in file (``suite check --plugin FILE``), as
``benchopt test`` does for a benchmark: "it registers" becomes "it works".

The tests are the modules of :mod:`suite.checks` (task contract, family gradients and smoke
training, optimizer and regularizer contract). They ship inside the package, so this works from an
installed copy as well as from the repository; pytest (a ``dev`` dependency) must be installed.
They run in a fresh ``python -m pytest`` process with ``$SUITE_CHECK_PLUGIN`` naming the file: the
modules load the plug-in when pytest collects them and are parametrized over the entries it
registered only, so every test id and failure line names one of them. The calling process loads
nothing: its registries stay as they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from suite.checks import ENV
from suite.errors import SuiteError

#: loads the plug-in in a fresh process and prints what it registered (JSON), or the one-line
#: reason it cannot be loaded on stderr (exit 2)
_PROBE = """
import json, sys
from suite.errors import SuiteError
from suite.plugins import load_plugin
try:
    info = load_plugin(sys.argv[1])
except SuiteError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
print(json.dumps(info["registered"]))
"""


#: the generated modules (in :mod:`suite.checks`) that test each kind of entry; a task is also
#: checked with every family that fits it (``test_family_contract``)
MODULES = {
    "tasks": ("test_task_contract.py", "test_family_contract.py"),
    "families": ("test_family_contract.py",),
    "optimizers": ("test_optimizer_and_regularizer_contract.py",),
    "regularizers": ("test_optimizer_and_regularizer_contract.py",),
}


def check_modules(registered: Mapping[str, Sequence[str]] | None = None) -> list[Path]:
    """The paths of the generated test modules for a plug-in that registered ``registered`` (kind ->
    names), or all of them."""
    folder = Path(__file__).resolve().parent / "checks"
    kinds = MODULES if registered is None else [k for k in MODULES if registered.get(k)]
    return [folder / m for m in dict.fromkeys(m for k in kinds for m in MODULES[k])]


def _environment(path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV] = str(path)
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny networks: one thread per process is fastest
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("WANDB_MODE", "disabled")
    return env


def registered_by(path: str | Path) -> dict[str, list[str]]:
    """What the plug-in file ``path`` registers (``{"families": ["linear-probe"]}``), learned by
    loading it in a fresh process.

    Raises:
        SuiteError: the file is missing or not a ``.py`` file, it cannot be loaded (a syntax error,
            an import error, a clash with a registered name: the message names the file and why),
            or it registers nothing.
    """
    file = Path(path).expanduser()
    if file.suffix != ".py" or not file.is_file():
        raise SuiteError(f"plugin {str(path)!r}: no such .py file ({file.resolve()})")
    file = file.resolve()
    try:  # a syntax error is found without starting a process (nothing is run)
        compile(file.read_bytes(), str(file), "exec")
    except SyntaxError as exc:
        raise SuiteError(f"plugin {str(path)!r} has a syntax error: {exc.msg} (line {exc.lineno})") from None
    except (OSError, ValueError) as exc:
        raise SuiteError(f"plugin {str(path)!r} cannot be read: {exc}") from None
    done = subprocess.run([sys.executable, "-c", _PROBE, str(file)], capture_output=True, text=True,
                          env=_environment(file))
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"the loading process exited with code {done.returncode}"
        raise SuiteError(reason if reason.startswith("plugin ") else f"plugin {str(path)!r}: {reason}")
    registered = json.loads(done.stdout.strip().splitlines()[-1])
    if not registered:
        raise SuiteError(f"plugin {str(path)!r} registers no task, family, optimizer or regularizer: "
                         "nothing to check")
    return registered


def check_plugin(path: str, *, pytest_args: Sequence[str] = ()) -> int:
    """Run the generated contract tests on the entries the plug-in file ``path`` registers.

    Args:
        path: a plug-in ``.py`` file (relative to the working directory or absolute).
        pytest_args: extra pytest arguments (``["-x"]``, ``["-n", "2"]``, ``["-k", "gradient"]``).

    Returns:
        pytest's exit code: 0 when every test passed, 1 when one failed, ...; pytest's report goes
        to this process's stdout and stderr.

    Raises:
        SuiteError: before pytest runs, when the file is missing, cannot be loaded, registers
            nothing (:func:`registered_by`), or pytest is not installed.
    """
    registered = registered_by(path)
    file = Path(path).expanduser().resolve()
    try:
        import pytest  # noqa: F401  (only to say so before starting a process)
    except ImportError:
        raise SuiteError("checking a plugin needs pytest: pip install pytest") from None
    entries = "; ".join(f"{kind} {', '.join(names)}" for kind, names in sorted(registered.items()))
    print(f"checking plugin {file.name} ({entries})", flush=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short",
               *map(str, check_modules(registered)), *pytest_args]
    # from the folder holding the package, so that tests are named suite/checks/test_...py::...
    home = Path(__file__).resolve().parent.parent
    return subprocess.run(command, env=_environment(file), cwd=home).returncode
