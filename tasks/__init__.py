"""Standardized tasks. Every module of this package that registers a ``Task`` is found and imported
here (``pkgutil``): adding a task is adding one module, no list to edit."""

import importlib
import pkgutil

from tasks.base import TASKS, Split, Splits, Task, register_task

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")  # registration side effects

__all__ = ["TASKS", "Split", "Splits", "Task", "get_task", "register", "register_task"]


def get_task(name: str) -> Task:
    """The registered task called ``name`` (unknown names list the known ones)."""
    return TASKS.get(name)
