"""Shared fixtures. Tests run the real training path with tiny budgets on the CPU."""

from __future__ import annotations

import os

# pytest-xdist runs one worker per core: one intra-op thread each avoids oversubscription, which
# slows small CPU ops by an order of magnitude (subprocesses inherit the variables).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def tasks_registry():
    from tasks import TASKS

    return TASKS
