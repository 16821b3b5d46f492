"""One trial, top to bottom: ``train(config) -> record``.

The CLI, the Optuna objective, multi-seed confirm runs and the tests all call :func:`train`.
Configuration errors raise :class:`SuiteError` before anything runs; failures during training
become a record with ``status="failed"`` and the error, never a lost result
(:func:`suite.record.outcome`). :func:`train` is the recipe; the steps are the functions below it.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import lightning.pytorch as pl
import torch
import torchmetrics

from suite.config import Resolved, TrialConfig, resolve_config
from suite.diagnostics import Diagnostics, summarize
from suite.errors import SuiteError
from suite.plugins import provenance as plugin_provenance
from suite.provenance import git_commit, hardware, peak_memory_mb, versions
from suite.record import SCHEMA, Status, outcome
from suite.tracking import Tracking, TrialTracking, guarded
from tasks import Task
from tasks.base import Split


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
    net = r.family.build(r.task, r.params)
    return r.family.module_class()(net, task=r.task, optimizer=r.optimizer.name, params=r.params,
                                   regularizers=r.regularizers, epochs=r.epochs)


def new_record(config: TrialConfig, r: Resolved, meta: dict[str, Any] | None) -> dict[str, Any]:
    """The record's header: what runs, where and with what (:class:`suite.record.TrialRecord`)."""
    return {
        "schema": SCHEMA,
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
        "status": Status.RUNNING.value,
        "error": None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task_info": {k: v for k, v in r.task.summary().items() if k != "description"},
        "versions": versions(),
        "hardware": hardware(),
        "git_commit": git_commit(),
        "plugins": plugin_provenance(),
        "torch_threads": torch.get_num_threads(),
        **concurrency(),
        "matmul_precision": torch.get_float32_matmul_precision(),
    }


def concurrency() -> dict[str, int]:
    """How many trials the run this trial belongs to ran at once (``jobs``), and how many of them
    shared its device (``jobs_per_device``: all of them on CPU, those on its GPU on CUDA), as
    ``suite benchmark --jobs N`` told its jobs (:func:`suite.jobs.job_envs`); 1 and 1 for a process
    the suite started alone."""
    def number(name: str) -> int:
        value = os.environ.get(name, "")
        return int(value) if value.isdigit() and int(value) > 0 else 1

    return {"jobs": number("SUITE_JOBS"), "jobs_per_device": number("SUITE_JOBS_PER_DEVICE")}


def training_flops(net: torch.nn.Module, x: torch.Tensor) -> float | None:
    """FLOPs of one training step's forward and backward pass of ``net`` per sample, counted by
    Lightning's ``measure_flops`` (torch's ``FlopCounterMode``: matrix products, convolutions and
    attention; elementwise work is not counted) on a meta-device copy with a meta batch shaped like
    ``x``, so nothing is computed and no random number is drawn. ``None`` where the network's
    ``forward`` does not take the task's inputs (a GAN's generator takes noise)."""
    import copy

    from lightning.fabric.utilities.throughput import measure_flops

    if len(x) == 0:
        return None
    with torch.random.fork_rng(devices=[]):
        meta = copy.deepcopy(net).to("meta")
        batch = torch.empty_like(x, device="meta")
        try:
            flops = measure_flops(meta, lambda: meta(batch), lambda y: y.float().sum())
        except Exception:
            return None
    return float(flops) / len(x)


def peak_flops(device: str, precision: str) -> float | None:
    """The device's peak FLOP/s at the trial's precision (Lightning's table of GPUs and TPUs, TF32
    where ``torch.get_float32_matmul_precision()`` allows it); ``None`` on CPU or an unlisted GPU."""
    if device != "cuda":
        return None
    import warnings

    from lightning.fabric.utilities.throughput import get_available_flops

    dtype = {"bf16": torch.bfloat16, "16": torch.float16, "64": torch.float64}.get(
        precision.split("-")[0], torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = get_available_flops(torch.device("cuda"), dtype)
    return None if found is None else float(found)


def train(
    config: TrialConfig,
    *,
    callbacks: Sequence[Any] = (),
    tracking: Tracking | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one trial; return its flat, JSON-able record (:class:`suite.record.TrialRecord`).

    Args:
        config: the trial.
        callbacks: extra Lightning callbacks (e.g. Optuna pruning).
        tracking: W&B and energy tracking; ``None`` = none (hardware is still recorded).
        meta: extra fields copied into the record (``phase``, ``arm``, ``benchmark``, ...).

    Raises:
        SuiteError: the config is invalid (nothing has run).

    How a failure becomes the record's status (failed, oom, environment, diverged, pruned,
    interrupted) is :func:`suite.record.outcome`'s. With DDP (``devices > 1``) every rank trains;
    rank 0 returns the record, the other ranks a minimal one (``rank``, ``world_size``, ``status``,
    ``error``).
    """
    from lightning.pytorch.utilities import rank_zero_only

    r = resolve_config(config)
    distributed = r.devices > 1 or r.strategy == "ddp"
    rank = rank_zero_only.rank if distributed else 0  # from the launcher's environment variables
    record = new_record(config, r, meta)
    quiet_lightning()
    if r.device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.reset_peak_memory_stats()
    def throughput_fields() -> None:  # after wall_s, before W&B's summary
        record.update(guarded(record, "throughput", lambda: throughput(record, r.device)) or {})

    with (TrialTracking(record, tracking, rank=rank) as tracked,
          outcome(record, reraise=(SuiteError,), on_exit=throughput_fields) as attempt):
        pl.seed_everything(config.seed, workers=True, verbose=False)
        splits = r.task.load().to(r.device)
        module = build_module(r)
        attempt.epoch = lambda: len(module.history) + 1
        attempt.salvage = lambda status: salvage(module, None, status)
        record["n_params"] = count_params(module.net)
        regularizing, trainer_kwargs = regularizer_hooks(r)
        train_batches, val_batches, probe = batches(r, splits, config.seed)
        trainer = pl.Trainer(
            **trainer_flags(r.device),
            devices=r.devices,
            strategy=ddp_strategy(r, module, train_batches, regularizing) if distributed else "auto",
            max_epochs=r.epochs,
            logger=tracked.logger if tracked.logger is not None else False,
            callbacks=[Diagnostics(probe, r.task.metric), *regularizing, *callbacks],
            log_every_n_steps=max(len(train_batches), 1),
            **trainer_kwargs,
        )
        attempt.salvage = lambda status: salvage(module, trainer, status)
        record["precision"] = str(trainer.precision)
        record["flops_per_sample"] = training_flops(module.net, splits.train.x[: r.params["batch_size"]])
        record["peak_flops"] = peak_flops(r.device, record["precision"])
        attempt.release = lambda: (module.cpu(), trainer.strategy.teardown())
        fit_s = fit(trainer, module, train_batches, val_batches)
        rank, record["world_size"] = trainer.global_rank, trainer.world_size
        if rank == 0:  # under DDP the other ranks trained their shards; rank 0 evaluates and records
            evaluate_into(record, r, module, splits, fit_s=fit_s, steps=int(trainer.global_step),
                          callbacks=regularizing)
        else:
            record["status"] = Status.COMPLETE.value
    if rank != 0:
        return {"rank": rank, "world_size": record["world_size"], "status": record["status"],
                "error": record["error"]}
    return record


def regularizer_hooks(r: Resolved) -> tuple[list[Any], dict[str, Any]]:
    """The Lightning callbacks (early stopping, SWA, ...) and Trainer flags the regularizers add."""
    monitor = f"val/{r.task.metric}"
    mode = "max" if r.task.direction == "maximize" else "min"
    found = [cb for reg in r.regularizers if reg.callbacks for cb in reg.callbacks(r.params, monitor, mode)]
    kwargs: dict[str, Any] = {}
    for reg in r.regularizers:
        if reg.trainer_kwargs:
            kwargs.update(reg.trainer_kwargs(r.params))
    return found, kwargs


def batches(r: Resolved, splits: Any, seed: int) -> tuple[Any, Any, Split]:
    """Shuffled training batches (augmented when a regularizer asks), validation batches, and the
    probe the diagnostics measure gradients and dead units on."""
    from suite.data import IndexBatches

    augment = r.task.augment if any(reg.augment for reg in r.regularizers) else None
    train_batches = IndexBatches(splits.train, r.params["batch_size"], shuffle=True, seed=seed,
                                 augment=augment)
    n_probe = min(len(splits.train), len(splits.val))
    return train_batches, IndexBatches(splits.val, 4096), Split(splits.train.x[:n_probe],
                                                                splits.train.y[:n_probe])


def ddp_strategy(r: Resolved, module: Any, train_batches: Any, callbacks: list[Any]) -> Any:
    """DDP over ``r.devices`` processes (NCCL on CUDA, gloo on CPU); adds the rank-sharding callback
    to ``callbacks``."""
    from lightning.pytorch.strategies import DDPStrategy

    callbacks.append(RankShards(train_batches))
    # manual optimization (GANs) steps each network on its own loss: some params are unused
    return DDPStrategy(process_group_backend="nccl" if r.device == "cuda" else "gloo",
                       find_unused_parameters=not module.automatic_optimization)


def fit(trainer: pl.Trainer, module: Any, train_batches: Any, val_batches: Any) -> float:
    """``trainer.fit``; return its seconds. Ctrl-C raises ``KeyboardInterrupt`` (Lightning turns it
    into a "graceful" ``sys.exit(1)``), and SIGINT's handler is restored afterwards (Lightning ignores
    SIGINT after the first one; a second Ctrl-C must still stop us)."""
    started = time.perf_counter()
    on_sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)
    except SystemExit as exc:
        if trainer.interrupted:
            raise KeyboardInterrupt("interrupted during training") from exc
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, on_sigint)
    return time.perf_counter() - started


def salvage(module: Any, trainer: pl.Trainer | None, status: str) -> dict[str, Any]:
    """What a trial that stopped early still records: its curves so far and the epochs it ran."""
    out: dict[str, Any] = {}
    if module.history:
        out["curves"] = curves(module.history)
        out["epochs_run"] = len(module.history)
    if trainer is not None:
        out["world_size"] = trainer.world_size
        if status == Status.PRUNED:  # the pruning epoch trained and validated, unrecorded
            out["epochs_run"] = trainer.current_epoch + 1
    return out


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
        status=Status.COMPLETE.value,
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
        record["status"] = Status.DIVERGED.value
        record["error"] = "non-finite training loss"
    record["primary"] = primary(r.task, record)


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
