"""One trial, top to bottom: ``train(config) -> record``.

The CLI, the Optuna objective, multi-seed confirm runs and the tests all call :func:`train`.
Configuration errors raise :class:`SuiteError` before anything runs; failures during training
become a record with ``status="failed"`` and the error, never a lost result.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import platform
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightning.pytorch as pl
import torch
import torchmetrics

from suite.diagnostics import Diagnostics, summarize
from suite.errors import SuiteError
from suite.families import FAMILIES, Family
from suite.optimizers import OPTIMIZERS, SCHEDULE, OptimizerSpec
from suite.params import Param, resolve
from suite.plugins import provenance as plugin_provenance
from suite.regularizers import REGULARIZERS, Regularizer, resolve_regularizers
from suite.tracking import (
    CpuTimeMeter,
    EnergyMeter,
    Tracking,
    append_emissions,
    finish_wandb,
    git_commit,
    hardware,
    peak_memory_mb,
    wandb_logger,
)
from tasks import TASKS, Task
from tasks.base import Split

RECORD_SCHEMA = 1
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


def declared_params(
    task: Task, family: Family, optimizer: OptimizerSpec, regularizers: Sequence[Regularizer]
) -> list[Param]:
    """All params of an arm, in order: trial, optimizer, family, regularizers (a later declaration
    of the same name replaces an earlier one, as in :func:`suite.params.resolve`)."""
    out = [*trial_params(task), *optimizer.params, *family.declared(task)]
    for reg in regularizers:
        out += reg.params_for(optimizer)
    return out


def resolve_config(config: TrialConfig) -> Resolved:
    """Validate ``config``; raise :class:`SuiteError` naming the bad value and what is allowed."""
    task = TASKS.get(config.task)
    family = FAMILIES.get(config.family)
    if family.name not in task.families:
        raise SuiteError(
            f"family {family.name!r} is not compatible with task {task.name!r} (it "
            f"{task.not_offered().get(family.name, 'is not offered')}); compatible: "
            f"{', '.join(task.families)}"
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


def quiet_lightning() -> None:
    """Silence Lightning's per-trial banners and the warnings that do not apply to index batches."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # DDP: every rank logs the same epoch values (whole-split metrics, rank-averaged train loss)
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")


def trainer_flags(device: str) -> dict[str, Any]:
    """The ``lightning.Trainer`` flags every trial trains under (``suite perf`` times its Lightning
    floor with the same): no checkpoints, progress bar, summary or sanity check; deterministic on
    CPU; index batches, so no distributed sampler."""
    return {
        "accelerator": "gpu" if device == "cuda" else "cpu",
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "deterministic": True if device == "cpu" else "warn",
        "use_distributed_sampler": False,
    }


def weight_norms(net: torch.nn.Module) -> dict[str, float]:
    """L1 and L2 norms over the weight matrices/kernels (what the l1/l2 regularizers shrink)."""
    weights = [p.detach() for p in net.parameters() if p.dim() > 1]
    return {
        "weight_l1": float(sum(w.abs().sum() for w in weights)),
        "weight_l2": float(torch.sqrt(sum((w * w).sum() for w in weights))),
    }


def count_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def build_module(r: Resolved):
    """The LightningModule of a resolved config (network built, optimizer named)."""
    from suite.module import SuiteModule

    net = r.family.build(r.task, r.params)
    module_cls = r.family.module or SuiteModule
    return module_cls(net, task=r.task, optimizer=r.optimizer.name, params=r.params,
                      regularizers=r.regularizers, epochs=r.epochs)


def train(
    config: TrialConfig,
    *,
    callbacks: Sequence[Any] = (),
    tracking: Tracking | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one trial; return its flat, JSON-able record.

    Args:
        config: the trial.
        callbacks: extra Lightning callbacks (e.g. Optuna pruning).
        tracking: W&B and energy tracking; ``None`` = none (hardware is still recorded).
        meta: extra fields copied into the record (``phase``, ``arm``, ``benchmark``, ...).

    Raises:
        SuiteError: the config is invalid (nothing has run).

    A runtime failure gives ``status="failed"`` with the error (``error_kind="oom"`` for out of
    memory); a non-finite loss ``diverged``; Optuna's ``TrialPruned`` raised by a pruning callback
    gives ``pruned`` (curves so far). With DDP (``devices > 1``) every rank trains; rank 0 returns
    the record, the other ranks a minimal one (``rank``, ``world_size``, ``status``, ``error``).
    """
    from lightning.pytorch.utilities import rank_zero_only

    from suite.data import IndexBatches

    r = resolve_config(config)
    distributed = r.devices > 1 or r.strategy == "ddp"
    rank = rank_zero_only.rank if distributed else 0  # from the launcher's environment variables
    started = time.perf_counter()
    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        **(meta or {}),
        "task": r.task.name,
        "family": r.family.name,
        "optimizer": r.optimizer.name,
        "regularizers": [reg.name for reg in r.regularizers],
        "params": dict(r.params),
        "seed": config.seed,
        "epochs": r.epochs,
        "batch_size": r.params["batch_size"],
        "device": r.device,
        "devices": r.devices,
        "strategy": r.strategy,
        "world_size": r.devices,
        "status": "running",
        "error": None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task_info": {k: v for k, v in r.task.summary().items() if k != "description"},
        "versions": versions(),
        "hardware": hardware(),
        "git_commit": git_commit(),
        "plugins": plugin_provenance(),
        "torch_threads": torch.get_num_threads(),
    }
    quiet_lightning()
    if r.device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.reset_peak_memory_stats()
    module = logger = meter = trainer = None
    try:
        if tracking is not None and tracking.wandb and rank == 0:
            tags = [r.task.name, r.family.name, r.optimizer.name, *record["regularizers"]]
            logger = wandb_logger(tracking, wandb_config(record), tags)
        if tracking is not None and tracking.energy and rank == 0:
            meter = CpuTimeMeter(tracking.country) if tracking.apportion else EnergyMeter(tracking.country)
            meter.start(f"{r.task.name}/{r.family.name}/s{config.seed}")
        pl.seed_everything(config.seed, workers=True, verbose=False)
        splits = r.task.load().to(r.device)
        module = build_module(r)
        record["n_params"] = count_params(module.net)
        monitor = f"val/{r.task.metric}"
        mode = "max" if r.task.direction == "maximize" else "min"
        extra_callbacks = [cb for reg in r.regularizers if reg.callbacks
                           for cb in reg.callbacks(r.params, monitor, mode)]
        trainer_kwargs: dict[str, Any] = {}
        for reg in r.regularizers:
            if reg.trainer_kwargs:
                trainer_kwargs.update(reg.trainer_kwargs(r.params))
        augment = r.task.augment if any(reg.augment for reg in r.regularizers) else None
        train_batches = IndexBatches(splits.train, r.params["batch_size"], shuffle=True,
                                     seed=config.seed, augment=augment)
        val_batches = IndexBatches(splits.val, 4096)
        n_probe = min(len(splits.train), len(splits.val))
        probe = Split(splits.train.x[:n_probe], splits.train.y[:n_probe])
        if distributed:
            from lightning.pytorch.strategies import DDPStrategy

            # manual optimization (GANs) steps each network on its own loss: some params are unused
            strategy: Any = DDPStrategy(process_group_backend="nccl" if r.device == "cuda" else "gloo",
                                        find_unused_parameters=not module.automatic_optimization)
            extra_callbacks.append(RankShards(train_batches))
        else:
            strategy = "auto"
        trainer = pl.Trainer(
            **trainer_flags(r.device),
            devices=r.devices,
            strategy=strategy,
            max_epochs=r.epochs,
            logger=logger if logger is not None else False,
            callbacks=[Diagnostics(probe, r.task.metric), *extra_callbacks, *callbacks],
            log_every_n_steps=max(len(train_batches), 1),
            **trainer_kwargs,
        )
        fit_start = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)
        fit_s = time.perf_counter() - fit_start
        rank, record["world_size"] = trainer.global_rank, trainer.world_size
        if rank == 0:  # under DDP the other ranks trained their shards; rank 0 evaluates and records
            evaluate_into(record, r, module, splits, fit_s=fit_s, steps=int(trainer.global_step),
                          callbacks=extra_callbacks)
        else:
            record["status"] = "complete"
    except SuiteError:
        raise
    except Exception as exc:  # a failure becomes a record, never a lost result
        if type(exc).__name__ == "TrialPruned":
            record.update(status="pruned", error=str(exc) or "pruned")
        else:
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(limit=8))
            if is_oom(exc):
                record["error_kind"] = "oom"
        if module is not None and module.history:
            record["curves"] = curves(module.history)
            record["epochs_run"] = len(module.history)
        if trainer is not None:
            record["world_size"] = trainer.world_size
            if record["status"] == "pruned":  # the pruning epoch trained and validated, unrecorded
                record["epochs_run"] = trainer.current_epoch + 1
    finally:
        # Tracking must never turn a finished trial into a lost one: each step is guarded.
        if record.get("error_kind") == "oom":  # free the device for the next trial
            module = trainer = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if meter is not None:
            record["energy"] = guarded(record, "energy", meter.stop)
        record["wall_s"] = time.perf_counter() - started
        record.update(guarded(record, "throughput", lambda: throughput(record, r.device)) or {})
        if tracking is not None and tracking.energy and record.get("energy") and not tracking.apportion:
            guarded(record, "emissions.csv",
                    lambda: append_emissions(tracking.out_dir, emissions_row(record)))
        if logger is not None or (tracking is not None and tracking.wandb):
            guarded(record, "wandb", lambda: finish_wandb(logger, wandb_summary(record),
                                                          failed=record["status"] == "failed"))
    if rank != 0:
        return {"rank": rank, "world_size": record["world_size"], "status": record["status"],
                "error": record["error"]}
    return record


class RankShards(pl.Callback):
    """DDP: shard the training batches by rank, keep every rank's bookkeeping equal.

    * each rank trains on its own shard of every global batch (:meth:`IndexBatches.set_rank`);
    * validation, the diagnostics probe and the final evaluation run on the whole split on every
      rank with identical weights, so the metrics are computed locally (no cross-rank sync, which
      would also deadlock an evaluation that only some ranks run);
    * the epoch's training loss is averaged over ranks before the module records it, so every rank
      sees the same loss (and stops together on a non-finite one).
    """

    def __init__(self, batches: Any) -> None:
        self.batches = batches

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.batches.set_rank(trainer.global_rank, trainer.world_size)
        if trainer.world_size > 1:
            for m in pl_module.modules():
                if isinstance(m, torchmetrics.Metric):
                    m.sync_on_compute = m.dist_sync_on_step = m._to_sync = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # runs before the module's own hook, which turns the sum into the epoch's train/loss
        loss_sum = getattr(pl_module, "_train_loss_sum", None)
        if trainer.world_size > 1 and loss_sum is not None:
            pl_module._train_loss_sum = trainer.strategy.reduce(loss_sum, reduce_op="mean")


def evaluate_into(record: dict[str, Any], r: Resolved, module: Any, splits: Any, *, fit_s: float,
                  steps: int, callbacks: Sequence[Any]) -> None:
    """Final metrics on every split, curves, diagnostics and status of a fitted trial."""
    epochs_run = len(module.history)
    metrics: dict[str, float] = {}
    for name in ("train", "val", "test"):
        metrics.update(module.evaluate(getattr(splits, name), name))
    record.update(
        status="complete",
        epochs_run=epochs_run,
        steps=steps,
        fit_s=fit_s,
        samples_per_s=epochs_run * len(splits.train) / fit_s if fit_s > 0 else None,
        metrics=metrics,
        curves=curves(module.history),
    )
    record["diagnostics"] = summarize(record["curves"])
    record["diagnostics"].update(weight_norms(module.net))
    stopper = next((cb for cb in callbacks if hasattr(cb, "best_epoch")), None)
    if stopper is not None:
        record["best_epoch"] = None if stopper.best_epoch is None else stopper.best_epoch + 1
    if not all(math.isfinite(row["train/loss"]) for row in module.history):
        record["status"] = "diverged"
        record["error"] = "non-finite training loss"
    record["primary"] = primary(r.task, record)


def is_oom(exc: BaseException) -> bool:
    """Out of memory on the device (or the host allocator)."""
    return (isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError)
            or "out of memory" in str(exc).lower())


def guarded(record: dict[str, Any], what: str, fn: Any) -> Any:
    """``fn()``, or ``None`` with the failure appended to ``record["tracking_errors"]``."""
    try:
        return fn()
    except Exception as exc:
        record.setdefault("tracking_errors", []).append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def throughput(record: dict[str, Any], device: str) -> dict[str, Any]:
    """Epoch time (median) and peak memory fields of the record."""
    times = (record.get("curves") or {}).get("time_s") or []
    deltas = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    peak, kind = peak_memory_mb(device)
    return {
        "epoch_time_s": sorted(deltas)[len(deltas) // 2] if deltas else None,
        "peak_memory_mb": peak,
        "peak_memory_kind": kind,
    }


def wandb_config(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B run config: the trial's full configuration (no results)."""
    keys = ("task", "family", "optimizer", "regularizers", "params", "seed", "epochs", "batch_size",
            "device", "phase", "arm", "benchmark", "trial_number", "task_info", "versions",
            "hardware", "git_commit")
    return {k: record[k] for k in keys if k in record}


def wandb_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B run summary: final metrics, status, energy, diagnostics flag."""
    summary: dict[str, Any] = dict(record.get("metrics") or {})
    summary.update(status=record["status"], wall_s=record["wall_s"], n_params=record.get("n_params"),
                   samples_per_s=record.get("samples_per_s"), epochs_run=record.get("epochs_run"))
    energy = record.get("energy") or {}
    summary.update({f"energy/{k}": v for k, v in energy.items() if k in ("kwh", "emissions_kg", "method",
                                                                         "nvml_kwh")})
    if record.get("diagnostics"):
        summary["diagnostics/flag"] = record["diagnostics"]["flag"]
    if record.get("error"):
        summary["error"] = record["error"]
    return {k: v for k, v in summary.items() if v is not None}


def emissions_row(record: dict[str, Any]) -> dict[str, Any]:
    """One line of ``emissions.csv``."""
    e = record["energy"]
    return {
        "started_at": record["started_at"], "arm": record.get("arm", ""), "task": record["task"],
        "family": record["family"], "optimizer": record["optimizer"],
        "regularizers": "+".join(record["regularizers"]), "seed": record["seed"],
        "status": record["status"], "duration_s": e["duration_s"], "energy_kwh": e["kwh"],
        "emissions_kg": e["emissions_kg"], "nvml_kwh": e["nvml_kwh"], "method": e["method"],
        "country": e["country"], "error": e["error"],
    }


def curves(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per-epoch rows turned into one list per key (``epoch``, ``train/loss``, ``val/...``)."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    return {k: [row.get(k, math.nan) for row in history] for k in keys}


def primary(task: Task, record: dict[str, Any]) -> dict[str, Any]:
    """The task's primary metric on test, and the first epoch/time at which val reached target."""
    metric = task.metric
    c = record.get("curves", {})
    hit = next(
        (i for i, v in enumerate(c.get(f"val/{metric}", []))
         if task.has_reached_target({f"val/{metric}": v})),
        None,
    )
    return {
        "metric": metric,
        "direction": task.direction,
        "target": task.target,
        "value": record.get("metrics", {}).get(f"test/{metric}"),
        "epochs_to_target": None if hit is None else hit + 1,
        "time_to_target_s": None if hit is None else c["time_s"][hit],
    }


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a result."""
    import lightning
    import numpy
    import torchmetrics

    import suite

    return {
        "suite": suite.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
