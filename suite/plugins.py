"""Plug-ins: tasks, families, optimizers or regularizers from outside the package.

A plug-in is a Python file or an importable module that registers entries with the same calls the
built-ins use (``tasks.register``, ``suite.families.register_family``, ...). It is named by
``--plugin PATH_OR_MODULE`` (any command, repeatable), by ``plugins:`` in a profile (paths relative
to the profile), or by an entry point of an installed package in one of the groups
``dl_benchsuite.tasks``, ``dl_benchsuite.families``, ``dl_benchsuite.optimizers``,
``dl_benchsuite.regularizers``. The plug-ins in use are passed on to child processes (``--jobs``
workers, DDP ranks) through ``$SUITE_PLUGINS``, and every record names each with its file's
SHA-256, so a report knows what code produced a result.

A plug-in named explicitly that fails to import, or that registers a name a built-in (or another
plug-in) has, stops the command with one line (exit 2); an entry point that fails is listed by
``suite list`` as unavailable, with its reason, and does not stop anything else.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from suite.errors import SuiteError

ENV = "SUITE_PLUGINS"
GROUPS = ("dl_benchsuite.tasks", "dl_benchsuite.families", "dl_benchsuite.optimizers",
          "dl_benchsuite.regularizers")

#: every plug-in loaded in this process: name, path, sha256, what it registered
LOADED: list[dict[str, Any]] = []
#: entry points that failed to load: name and the one-line reason
UNAVAILABLE: list[dict[str, str]] = []


def _registries() -> dict[str, Any]:
    from suite.families import FAMILIES
    from suite.optimizers import OPTIMIZERS
    from suite.regularizers import REGULARIZERS
    from tasks import TASKS

    return {"tasks": TASKS, "families": FAMILIES, "optimizers": OPTIMIZERS, "regularizers": REGULARIZERS}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_plugin(spec: str, *, base: Path | None = None) -> dict[str, Any]:
    """Import the plug-in ``spec`` (a ``.py`` path, relative to ``base`` when given, or a module
    name) once, and return what it registered.

    Raises:
        SuiteError: the file is missing, the import fails, or a name clashes with one registered
            before (the message names both).
    """
    regs = _registries()
    path = Path(spec) if spec.endswith(".py") else None
    if path is not None and base is not None and not path.is_absolute():
        path = base / path
    key = str(path.resolve()) if path is not None else spec
    for done in LOADED:
        if done["key"] == key:
            return done
    before = {k: set(r.names()) for k, r in regs.items()}
    try:
        if path is not None:
            if not path.is_file():
                raise SuiteError(f"plugin {spec!r}: no such file ({path})")
            name = f"suite_plugin_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            origin = path.resolve()
        else:
            module = importlib.import_module(spec)
            origin = Path(module.__file__) if getattr(module, "__file__", None) else None
    except SuiteError:
        raise
    except ValueError as exc:
        if "already registered" in str(exc):
            raise SuiteError(f"plugin {spec!r} clashes with a name registered before it: {exc}; rename it "
                             "in the plug-in") from None
        raise SuiteError(f"plugin {spec!r} failed to import: ValueError: {exc}") from None
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise SuiteError(f"plugin {spec!r} failed to import: {type(exc).__name__}: {first}") from None
    added = {k: sorted(set(r.names()) - before[k]) for k, r in regs.items()}
    info = {"key": key, "name": path.stem if path is not None else spec,
            "path": str(origin) if origin else None,
            "sha256": _sha256(origin) if origin and origin.is_file() else None,
            "registered": {k: v for k, v in added.items() if v}}
    LOADED.append(info)
    paths = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    if key not in paths:  # child processes (jobs, workers, DDP ranks) load it too
        os.environ[ENV] = os.pathsep.join([*paths, key])
    return info


def load_from_env() -> None:
    """Load the plug-ins named in ``$SUITE_PLUGINS`` (set by a parent process)."""
    for spec in [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]:
        load_plugin(spec)


def load_entry_points() -> None:
    """Load the plug-ins installed packages declare; a failing one goes to :data:`UNAVAILABLE`."""
    from importlib.metadata import entry_points

    for group in GROUPS:
        for ep in entry_points(group=group):
            if any(u["name"] == ep.name for u in UNAVAILABLE) or any(d["key"] == ep.value for d in LOADED):
                continue
            try:
                load_plugin(ep.value.split(":")[0])
            except SuiteError as exc:
                UNAVAILABLE.append({"name": ep.name, "group": group, "reason": str(exc)})


def provenance() -> list[dict[str, Any]]:
    """Name, path, SHA-256 and registrations of every plug-in in use (for records)."""
    return [{k: v for k, v in p.items() if k != "key"} for p in LOADED]
