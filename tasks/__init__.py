"""Standardized tasks. Each module registers its ``Task``; adding a task = adding one module here."""

from tasks import (  # noqa: F401  (registration side effects)
    adding,
    breast_cancer,
    cifar10,
    diabetes,
    digits,
    digits_anomaly,
    digits_gan,
    digits_transfer,
    mnist,
    mnist1d,
    ring_gan,
    sunspots,
)
from tasks.base import KINDS, TASKS, Split, Splits, Task, register

__all__ = ["KINDS", "TASKS", "Split", "Splits", "Task", "register", "get_task"]


def get_task(name: str) -> Task:
    """The registered task called ``name`` (unknown names list the known ones)."""
    return TASKS.get(name)
