"""The LightningModule shared by all families: optimizer, regularizers, metrics, epoch history.

A family file holds only its network; this module owns everything that must be the same for every
family so that they are judged alike. Families with another training paradigm (GAN, VAE) subclass
it and override the steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from suite.metrics import MetricSet
from suite.optimizers import OPTIMIZERS, build_schedule
from suite.regularizers import Regularizer
from tasks.base import Split, Task
from tasks.kinds import kind_of

# Plain attributes Lightning and this module set many times per step: ``nn.Module.__setattr__``
# checks parameters, buffers and submodules on each (~45 calls and 5% of a small MLP's step here).
_PLAIN_ATTRS = frozenset({"_current_fx_name", "_train_batches", "_val_batches"})


def computed(metrics, name: str) -> dict[str, float]:
    """Compute and reset a metric collection; keys renamed ``name/metric`` whatever its prefix
    (``evaluate`` may score a split under another split's collection)."""
    out = {f"{name}/{k.split('/', 1)[1]}": float(v) for k, v in metrics.compute().items()}
    metrics.reset()
    return out


class SuiteModule(pl.LightningModule):
    """Train ``net`` on ``task`` with the named optimizer and regularizers.

    Args:
        net: plain ``nn.Module`` mapping task inputs to outputs.
        task: the task (owns loss, metrics and direction).
        optimizer: optimizer registry name.
        params: resolved params of the whole trial (optimizer, regularizer and family params).
        regularizers: resolved regularizers.
        epochs: epoch budget (for the learning-rate schedule).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        task: Task,
        optimizer: str,
        params: Mapping[str, Any],
        regularizers: Sequence[Regularizer] = (),
        epochs: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            {"task": task.name, "optimizer": optimizer, "params": dict(params), "epochs": epochs,
             "regularizers": [r.name for r in regularizers]}
        )
        self.net = net
        self.task = task
        self.optimizer_name = optimizer
        self.params = dict(params)
        self.regularizers = list(regularizers)
        self.epochs = epochs
        self.loss_fn = task.loss_function()
        self.kind = kind_of(task)  # looked up once: metric_inputs runs every step
        self.metrics = self.make_metrics()
        self.history: list[dict[str, float]] = []
        self._train_loss_sum: torch.Tensor | None = None
        self._train_batches = 0
        self._val_loss_sum: torch.Tensor | None = None
        self._val_batches = 0
        self._fit_started = 0.0
        self.epoch_end_metrics: dict[str, float] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PLAIN_ATTRS:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ----------------------------------------------------------------------- overridable parts
    def make_metrics(self) -> MetricSet | None:
        """Per-split copies of the task's metric collection (``None`` when the task scores samples
        itself, as a generation task does)."""
        collection = self.task.metric_collection()
        return None if collection is None else MetricSet(collection, epoch_metric=self.task.metric)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        """``(loss, metric_preds, metric_target)`` for one batch, the same for every split."""
        x, y = batch
        out = self(x)
        loss = self.loss_fn(out, y)
        preds, target = self.metric_inputs(out.detach(), y)
        return loss, preds, target

    def metric_inputs(self, outputs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the network (or a family's scoring step) puts out, as the task's metrics take it
        (:attr:`tasks.kinds.TaskKind.metric_inputs`)."""
        return self.kind.metric_inputs(self.task, outputs, y)

    def penalty(self) -> torch.Tensor | float:
        """Sum of the regularizers' loss penalties (L1)."""
        total: torch.Tensor | float = 0.0
        for reg in self.regularizers:
            if reg.penalty is not None:
                total = total + reg.penalty(self.net, self.params)
        return total

    # ----------------------------------------------------------------------------------- train
    def on_fit_start(self) -> None:
        self._fit_started = time.perf_counter()

    def on_train_epoch_start(self) -> None:
        self.epoch_end_metrics = {}
        self._train_loss_sum = torch.zeros((), device=self.device)
        self._train_batches = 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self.model_step(batch)
        self._train_loss_sum.add_(loss.detach())  # in place: no nn.Module.__setattr__ per step
        self._train_batches += 1
        return loss + self.penalty()

    def on_train_epoch_end(self) -> None:
        train_loss = float(self._train_loss_sum) / max(self._train_batches, 1)
        row = {"epoch": self.current_epoch + 1, "train/loss": train_loss}
        row.update(self.epoch_end_metrics)
        row["lr"] = float(self.trainer.optimizers[0].param_groups[0]["lr"])
        row["time_s"] = time.perf_counter() - self._fit_started
        self.history.append(row)
        self.log_row(row)
        if not math.isfinite(train_loss):  # diverged: stop now, the trial records it
            self.trainer.should_stop = True

    # ------------------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self._val_loss_sum = torch.zeros((), device=self.device)
        self._val_batches = 0

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, preds, target = self.model_step(batch)
        self._val_loss_sum.add_(loss)
        self._val_batches += 1
        self.metrics["val_epoch"].update(preds, target)

    def on_validation_epoch_end(self) -> None:
        values = computed(self.metrics["val_epoch"], "val")
        values["val/loss"] = float(self._val_loss_sum) / max(self._val_batches, 1)
        self.publish(values)

    def publish(self, values: dict[str, float]) -> None:
        """Hand this epoch's validation values to the history row and to the callbacks.

        Only the monitored values go through ``self.log`` (it costs ~1 ms a call on a CPU): the
        primary metric (pruning, early stopping) and the loss. The whole row reaches the logger
        once per epoch in :meth:`log_row`.
        """
        self.epoch_end_metrics.update(values)
        for key in (f"val/{self.task.metric}", "val/loss"):
            if key in values:
                self.log(key, values[key], logger=False)

    def log_row(self, row: dict[str, float]) -> None:
        """Send the epoch's row (train, validation, diagnostics, lr, time) to the logger (W&B)."""
        if self.logger is not None:
            self.logger.log_metrics(row, step=self.global_step)

    # ------------------------------------------------------------------------------ evaluation
    @torch.inference_mode()
    def evaluate(self, split: Split, name: str, batch_size: int = 4096, *,
                 full: bool = True) -> dict[str, float]:
        """Metrics of the current weights on a whole split, keyed ``name/metric``; ``full=False``
        computes only the loss and the epoch metric (the primary one). A split the task cannot score
        (the normal-only split of an anomaly task) reports its loss only."""
        was_training = self.training
        self.eval()
        key = name if full else f"{name}_epoch"
        if key not in self.metrics:
            key = "test" if full else "test_epoch"
        metrics = self.metrics[key] if self.task.scorable(split.y) else None
        if metrics is not None:
            metrics.reset()
        loss_sum, n = 0.0, 0
        for start in range(0, len(split), batch_size):
            x, y = split.x[start : start + batch_size], split.y[start : start + batch_size]
            loss, preds, target = self.model_step((x, y))
            loss_sum += float(loss) * len(x)
            n += len(x)
            if metrics is not None:
                metrics.update(preds, target)
        out = computed(metrics, name) if metrics is not None else {}
        out[f"{name}/loss"] = loss_sum / max(n, 1)
        self.train(was_training)
        return out

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """Index batches are already on the device: skip Lightning's per-step collection walk
        (7% of a small MLP's step time here); anything else goes the usual way."""
        if isinstance(batch, tuple) and all(
            isinstance(t, torch.Tensor) and t.device == device for t in batch
        ):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # ------------------------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        spec = OPTIMIZERS.get(self.optimizer_name)
        weight_decay = sum(r.weight_decay(self.params) for r in self.regularizers if r.weight_decay)
        optimizer = spec.build(self.parameters(), self.params, weight_decay)
        schedule = build_schedule(optimizer, self.params.get("schedule", "none"), self.epochs)
        if schedule is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
