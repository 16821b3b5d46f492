"""Losses and torchmetrics collections per task kind, keyed by metric name (no split prefix)."""

from __future__ import annotations

import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F  # noqa: N812

from tasks.base import Task

LOSSES = ("cross_entropy", "bce", "mse", "mae", "huber")
REGRESSION_KINDS = ("regression", "forecasting")


def loss_function(name: str):
    """``loss(outputs, targets) -> scalar``; outputs are logits for classification losses."""
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "bce":
        return lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(y.shape), y.float())
    if name == "mse":
        return lambda out, y: F.mse_loss(out.reshape(y.shape), y)
    if name == "mae":
        return lambda out, y: F.l1_loss(out.reshape(y.shape), y)
    if name == "huber":
        return lambda out, y: F.huber_loss(out.reshape(y.shape), y)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")


def classification_metrics(num_classes: int) -> torchmetrics.MetricCollection:
    """Accuracy, macro precision/recall/F1 and ROC-AUC; binary when ``num_classes`` is 1 or 2."""
    if num_classes <= 2:
        kw: dict = {"task": "binary"}
        return torchmetrics.MetricCollection(
            {
                "accuracy": torchmetrics.Accuracy(**kw),
                "precision": torchmetrics.Precision(**kw),
                "recall": torchmetrics.Recall(**kw),
                "f1": torchmetrics.F1Score(**kw),
                "auroc": torchmetrics.AUROC(**kw),
            }
        )
    kw = {"task": "multiclass", "num_classes": num_classes}
    return torchmetrics.MetricCollection(
        {
            "accuracy": torchmetrics.Accuracy(**kw),
            "precision": torchmetrics.Precision(average="macro", **kw),
            "recall": torchmetrics.Recall(average="macro", **kw),
            "f1": torchmetrics.F1Score(average="macro", **kw),
            "auroc": torchmetrics.AUROC(**kw),
        }
    )


def regression_metrics() -> torchmetrics.MetricCollection:
    """MSE, RMSE, MAE and R2 (over all outputs flattened)."""
    return torchmetrics.MetricCollection(
        {
            "mse": torchmetrics.MeanSquaredError(),
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "mae": torchmetrics.MeanAbsoluteError(),
            "r2": torchmetrics.R2Score(),
        }
    )


def task_metrics(task: Task) -> torchmetrics.MetricCollection:
    """The metric collection that judges ``task`` (supervised kinds)."""
    if task.kind in ("classification", "transfer"):
        return classification_metrics(task.outputs)
    if task.kind in REGRESSION_KINDS:
        return regression_metrics()
    raise ValueError(
        f"task {task.name!r} of kind {task.kind!r} has no default metrics; its family must "
        "define them"
    )


def metric_inputs(task: Task, outputs: torch.Tensor, y: torch.Tensor):
    """Turn network outputs into what the task's metrics expect (probabilities, flat values)."""
    if task.kind in ("classification", "transfer"):
        if task.outputs == 1:
            return torch.sigmoid(outputs.reshape(y.shape)), y.long()
        return outputs, y
    return outputs.reshape(-1), y.reshape(-1)


class MetricSet(nn.Module):
    """One metric collection per split (``train``, ``val``, ``test``), as lightning-hydra-template
    keeps them, so state never leaks between splits, plus per split an ``<split>_epoch`` collection
    that holds only ``epoch_metric`` (the task's primary metric).

    Per-epoch validation (``val_epoch``) and the diagnostics probe (``train_epoch``) use those: what
    pruning, early stopping and the curves need, without computing the whole set (a multiclass
    ROC-AUC, precision, recall and F1) every epoch; the full set is computed once per split at the
    end of the trial. They stay separate because the probe runs under ``inference_mode`` and
    Lightning's validation under ``no_grad``: a state reset under the first cannot be updated in
    place under the second.
    """

    def __init__(self, collection: torchmetrics.MetricCollection, splits=("train", "val", "test"),
                 epoch_metric: str | None = None):
        super().__init__()
        self.splits = tuple(splits)
        if epoch_metric is not None and epoch_metric in collection:
            epoch = torchmetrics.MetricCollection({epoch_metric: collection[epoch_metric].clone()})
        else:
            epoch = collection
        # ModuleDict keys may not shadow nn.Module attributes such as ``train``: prefix them.
        by_split = {}
        for s in splits:
            by_split[f"m_{s}"] = collection.clone(prefix=f"{s}/")
            by_split[f"m_{s}_epoch"] = epoch.clone(prefix=f"{s}/")
        self.by_split = nn.ModuleDict(by_split)

    def __getitem__(self, split: str) -> torchmetrics.MetricCollection:
        return self.by_split[f"m_{split}"]

    def __contains__(self, split: str) -> bool:
        return f"m_{split}" in self.by_split
