"""Shared fixtures. Tests run the real training path with tiny budgets on the CPU."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def tasks_registry():
    from tasks import TASKS

    return TASKS
