"""The contract tests generated from the registries, shipped with the package.

The modules ``test_*.py`` of this folder are pytest modules parametrized over the registries:
every task (:mod:`suite.checks.test_task_contract`), every family
(:mod:`suite.checks.test_family_contract`) and every optimizer
(:mod:`suite.checks.test_optimizer_contract`). They live in the package, not in ``tests/``, so that
:func:`suite.check.check_plugin` can run them from an installed copy on a plug-in the user wrote
(benchopt's ``benchopt test``); ``tests/`` imports each module (``make test`` runs them on the
built-in entries).

With ``$SUITE_CHECK_PLUGIN`` set to a plug-in file, the modules load it when pytest collects them
and run on the entries it registered only (:func:`names`), so the output names the plug-in's
entries. This module does not import pytest: importing :mod:`suite` never needs it.
"""

from __future__ import annotations

import os
from typing import Any

#: the plug-in file the generated tests run on (set by :func:`suite.check.check_plugin`)
ENV = "SUITE_CHECK_PLUGIN"

#: registry kinds, as :data:`suite.plugins.LOADED` names them
KINDS = ("tasks", "families", "optimizers", "regularizers")


def checked_plugin() -> dict[str, Any] | None:
    """What the plug-in named by ``$SUITE_CHECK_PLUGIN`` registered (loaded once, on first call), or
    ``None`` when no plug-in is being checked."""
    path = os.environ.get(ENV)
    if not path:
        return None
    from suite.plugins import load_plugin

    return load_plugin(path)


def registry(kind: str):
    """The registry of ``kind`` (one of :data:`KINDS`)."""
    if kind == "tasks":
        from tasks import TASKS

        return TASKS
    if kind == "families":
        from suite.families import FAMILIES

        return FAMILIES
    if kind == "optimizers":
        from suite.optimizers import OPTIMIZERS

        return OPTIMIZERS
    if kind == "regularizers":
        from suite.regularizers import REGULARIZERS

        return REGULARIZERS
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def names(kind: str) -> list[str]:
    """The names the generated tests run on: every registered entry of ``kind``, or, while a plug-in
    is checked, only the entries of ``kind`` that the plug-in registered (possibly none)."""
    plugin = checked_plugin()
    if plugin is None:
        return registry(kind).names()
    return sorted(plugin["registered"].get(kind, []))
