"""A trial's configuration and its validation: ``resolve_config(TrialConfig) -> Resolved``.

Everything here checks names and values against the registries and raises :class:`SuiteError`
naming the bad value and what is allowed, before anything runs. It imports torch but not
Lightning, so the CLI validates a command (and ``--dry-run`` plans a benchmark) at the speed of
importing torch; training starts in :mod:`suite.train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from suite.errors import SuiteError
from suite.families import FAMILIES, Family, families_for, not_offered
from suite.optimizers import OPTIMIZERS, SCHEDULE, OptimizerSpec
from suite.params import Param, resolve
from suite.regularizers import REGULARIZERS, Regularizer, resolve_regularizers
from tasks import TASKS, Task

DEVICES = ("auto", "cpu", "cuda")
STRATEGIES = ("auto", "ddp")


@dataclass
class TrialConfig:
    """Everything that defines one trial.

    Args:
        task, family, optimizer: registry names.
        regularizers: regularizer names; empty means ``("none",)``.
        params: param values by name (strings are parsed, e.g. from ``--param``); the rest take
            their declared defaults.
        epochs: epoch budget; ``None`` = the task's default.
        seed: seeds initialisation, batch order and augmentation (the data split is the task's).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        devices: processes (GPUs, or CPU processes) that train this one trial with DDP; the global
            batch size stays ``batch_size`` (each rank takes its shard of every batch).
        strategy: ``auto`` (DDP when ``devices > 1``) or ``ddp``. DDP uses Lightning's subprocess
            launcher, which re-runs the current command once per extra rank: call it from
            ``suite run`` (or a script that reaches the same ``train`` call). Backend: gloo on CPU,
            NCCL on CUDA.
    """

    task: str
    family: str
    optimizer: str = "adam"
    regularizers: Sequence[str] = ()
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    devices: int = 1
    strategy: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["regularizers"] = list(self.regularizers) or ["none"]
        return d


@dataclass(frozen=True)
class Resolved:
    """A validated config: registry entries looked up, params resolved, device chosen."""

    config: TrialConfig
    task: Task
    family: Family
    optimizer: OptimizerSpec
    regularizers: list[Regularizer]
    params: dict[str, Any]
    epochs: int
    device: str
    devices: int = 1
    strategy: str = "auto"


def trial_params(task: Task) -> tuple[Param, ...]:
    """Params every trial has, whatever the family: batch size and LR schedule."""
    return (
        Param("batch_size", task.batch_size, low=1, high=1 << 20, log=True, search=(16, 256),
              help="mini-batch size (N = batch GD, 1 = stochastic GD)"),
        SCHEDULE,
    )


def scaled_lr(param: Param, scale: float) -> Param:
    """``param`` itself, or for ``lr`` with a ``scale`` other than 1 the same declaration with its
    default and search range multiplied by ``scale`` (its allowed range unchanged)."""
    if param.name != "lr" or scale == 1.0:
        return param
    low, high = param.search_range()
    return replace(param, default=float(f"{param.default * scale:.6g}"),
                               search=(float(f"{low * scale:.6g}"), float(f"{high * scale:.6g}")))


def declared_params(
    task: Task, family: Family, optimizer: OptimizerSpec, regularizers: Sequence[Regularizer]
) -> list[Param]:
    """All params of an arm, in order: trial, optimizer, family, regularizers (a later declaration
    of the same name replaces an earlier one, as in :func:`suite.params.resolve`). The optimizer's
    learning rate (default and search range) is scaled by the family's ``lr_scale``."""
    out = [*trial_params(task), *(scaled_lr(p, family.lr_scale) for p in optimizer.params),
           *family.declared(task)]
    for reg in regularizers:
        out += reg.params_for(optimizer)
    return out


def resolve_config(config: TrialConfig) -> Resolved:
    """Validate ``config``; raise :class:`SuiteError` naming the bad value and what is allowed."""
    task = TASKS.get(config.task)
    family = FAMILIES.get(config.family)
    if family.name not in families_for(task):
        raise SuiteError(
            f"family {family.name!r} is not compatible with task {task.name!r} (it "
            f"{not_offered(task).get(family.name, 'is not offered')}); compatible: "
            f"{', '.join(families_for(task))}"
        )
    optimizer = OPTIMIZERS.get(config.optimizer)
    regularizers = resolve_regularizers(tuple(config.regularizers))
    for reg in regularizers:
        missing = [p for p in reg.network_params if p not in family.supports]
        if missing:
            raise SuiteError(
                f"regularizer {reg.name!r} needs a network with {', '.join(missing)}, which family "
                f"{family.name!r} does not have; it supports: {', '.join(family.supports) or 'none'}"
            )
        if reg.augment and task.augment is None:
            raise SuiteError(
                f"regularizer 'augment' needs a task augmentation, which task {task.name!r} "
                "does not define"
            )
    hints = {
        p.name: f"it needs --regularizer {r.name}"
        for _, r in REGULARIZERS.items()
        for p in r.params
    }
    params = resolve(declared_params(task, family, optimizer, regularizers), config.params,
                     hints=hints)
    epochs = task.epochs if config.epochs is None else config.epochs
    if not isinstance(epochs, int) or epochs < 1:
        raise SuiteError(f"epochs must be an integer >= 1, got {epochs!r}")
    device = resolve_device(config.device)
    devices, strategy = resolve_devices(config.devices, config.strategy, device)
    return Resolved(config, task, family, optimizer, regularizers, params, epochs, device, devices, strategy)


def resolve_devices(devices: int, strategy: str, device: str) -> tuple[int, str]:
    """Validated ``(devices, strategy)``; ``auto`` with several devices means ``ddp``."""
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise SuiteError(f"devices must be an integer >= 1, got {devices!r}")
    if strategy not in STRATEGIES:
        raise SuiteError(f"strategy {strategy!r} is not valid; allowed: {', '.join(STRATEGIES)}")
    if device == "cuda" and devices > torch.cuda.device_count():
        raise SuiteError(f"devices={devices} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return devices, "ddp" if devices > 1 else strategy


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a requested ``auto|cpu|cuda``."""
    if device not in DEVICES:
        raise SuiteError(f"device {device!r} is not valid; allowed: {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise SuiteError("device 'cuda' was asked for but CUDA is not available; use cpu or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
