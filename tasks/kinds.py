"""Task kinds: what a kind of task owns, in one place per kind (as an AlgoPerf workload does).

Every task is judged through its kind (:data:`TASK_KINDS`), never through the family that trains on
it: the kind names

* ``metrics(task)``: the torchmetrics collection that scores a split (``None`` when the task
  scores samples itself, as a generation task does with :attr:`GenerationTask.score`);
* ``metric_inputs(task, outputs, targets)``: how what a network (or a family's scoring step: an
  autoencoder's anomaly score) puts out becomes those metrics' inputs (probabilities, flat values);
* ``scorable(targets)``: whether a split can be scored at all (ranking metrics need both classes:
  the normal-only training split of an anomaly task reports its loss only);
* ``loss``: the default loss name for tasks of the kind; a task names its own (:attr:`Task.loss`),
  looked up in :data:`LOSSES`.

Kinds with more data than train/val/test tensors also have a task class (in :mod:`tasks.base`):
``generation`` (:class:`GenerationTask`: the task owns the score of generated samples against real
ones and the range its values lie in) and ``transfer`` (:class:`TransferTask`: the task also owns the labelled
source data to pre-train on; train/val/test are the few-label target task).

torchmetrics is imported where a collection is built, not here: listing and validating tasks stays
as fast as importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F  # noqa: N812

from suite.registry import Registry

if TYPE_CHECKING:
    from tasks.base import Task

Score = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: loss name -> ``loss(outputs, targets) -> scalar``; outputs are logits for classification losses
LOSSES: dict[str, Loss] = {
    "cross_entropy": F.cross_entropy,
    "bce": lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(y.shape), y.float()),
    "mse": lambda out, y: F.mse_loss(out.reshape(y.shape), y),
    "mae": lambda out, y: F.l1_loss(out.reshape(y.shape), y),
    "huber": lambda out, y: F.huber_loss(out.reshape(y.shape), y),
}


def loss_function(name: str) -> Loss:
    """The loss called ``name`` (one of :data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}") from None


# ----------------------------------------------------------------------------- metric collections


def classification_metrics(num_classes: int) -> Any:
    """Accuracy, macro precision/recall/F1 and ROC-AUC; binary when ``num_classes`` is 1 or 2."""
    import torchmetrics

    if num_classes <= 2:
        kw: dict = {"task": "binary"}
        avg: dict = {}
    else:
        kw = {"task": "multiclass", "num_classes": num_classes}
        avg = {"average": "macro"}
    return torchmetrics.MetricCollection({
        "accuracy": torchmetrics.Accuracy(**kw),
        "precision": torchmetrics.Precision(**avg, **kw),
        "recall": torchmetrics.Recall(**avg, **kw),
        "f1": torchmetrics.F1Score(**avg, **kw),
        "auroc": torchmetrics.AUROC(**kw),
    })


def regression_metrics() -> Any:
    """MSE, RMSE, MAE and R2 (over all outputs flattened)."""
    import torchmetrics

    return torchmetrics.MetricCollection({
        "mse": torchmetrics.MeanSquaredError(),
        "rmse": torchmetrics.MeanSquaredError(squared=False),
        "mae": torchmetrics.MeanAbsoluteError(),
        "r2": torchmetrics.R2Score(),
    })


def anomaly_metrics() -> Any:
    """ROC-AUC and average precision of anomaly scores against labels (1 = anomaly)."""
    import torchmetrics

    return torchmetrics.MetricCollection({
        "auroc": torchmetrics.AUROC(task="binary"),
        "ap": torchmetrics.AveragePrecision(task="binary"),
    })


def reconstruction_metrics() -> Any:
    """MSE and MAE of the reconstruction against the target, over all values."""
    import torchmetrics

    return torchmetrics.MetricCollection({"mse": torchmetrics.MeanSquaredError(),
                                          "mae": torchmetrics.MeanAbsoluteError()})


# ---------------------------------------------------------------------------------- metric inputs


def class_inputs(task: Task, outputs: torch.Tensor, y: torch.Tensor):
    """Logits as they are for three or more classes; a binary task's outputs (one logit with BCE,
    or two with cross-entropy) become the probability of class 1, as the binary metrics expect."""
    if task.outputs == 1:
        return torch.sigmoid(outputs.reshape(y.shape)), y.long()
    if task.outputs == 2:
        return torch.softmax(outputs, dim=1)[:, 1], y.long()
    return outputs, y


def flat_inputs(task: Task, outputs: torch.Tensor, y: torch.Tensor):
    """Outputs and targets flattened (every value counts once)."""
    return outputs.reshape(-1), y.reshape(-1)


def score_inputs(task: Task, outputs: torch.Tensor, y: torch.Tensor):
    """One anomaly score per sample (larger = more anomalous) against integer labels."""
    return outputs.reshape(-1), y.reshape(-1).long()


def unscored(task: Task, outputs: torch.Tensor, y: torch.Tensor):
    raise ValueError(f"task {task.name!r} of kind {task.kind!r} scores samples with its own score, "
                     "not with metric inputs")


def two_classes(y: torch.Tensor) -> bool:
    """Ranking metrics need a positive and a negative."""
    return len(torch.unique(y)) > 1


@dataclass(frozen=True)
class TaskKind:
    """What every task of one kind is judged by (see the module docstring)."""

    name: str
    loss: str
    metrics: Callable[[Task], Any] | None
    metric_inputs: Callable[[Task, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    scorable: Callable[[torch.Tensor], bool] = field(default=lambda y: True)
    description: str = ""
    trains_as: str | None = None


TASK_KINDS: Registry[TaskKind] = Registry("task kind")


def register_kind(kind: TaskKind) -> TaskKind:
    """Add a task kind (kinds are values, so this is a call, as for tasks). A new kind is one call in
    the module that defines it: no list to edit. ``trains_as`` names a registered kind whose families
    also train this one (an ordinal task trains as ``regression``); families may also name the new
    kind in their ``kinds``."""
    if kind.trains_as is not None and kind.trains_as not in TASK_KINDS:
        raise ValueError(f"task kind {kind.name!r}: trains_as must be one of "
                         f"{', '.join(TASK_KINDS.names())}, "
                         f"got {kind.trains_as!r}")
    return TASK_KINDS.add(kind.name, kind)


register_kind(TaskKind("classification", "cross_entropy", lambda t: classification_metrics(t.outputs),
                       class_inputs, description="labels; accuracy, macro P/R/F1, ROC-AUC"))
register_kind(TaskKind("transfer", "cross_entropy", lambda t: classification_metrics(t.outputs),
                       class_inputs, description="few-label target classification after pre-training"))
register_kind(TaskKind("regression", "mse", lambda t: regression_metrics(), flat_inputs,
                       description="real targets; MSE, RMSE, MAE, R2"))
register_kind(TaskKind("forecasting", "mse", lambda t: regression_metrics(), flat_inputs,
                       description="the next values of a series; MSE, RMSE, MAE, R2"))
register_kind(TaskKind("reconstruction", "mse", lambda t: reconstruction_metrics(), flat_inputs,
                       description="reproduce the target from the input; MSE, MAE"))
register_kind(TaskKind("anomaly", "mse", lambda t: anomaly_metrics(), score_inputs, scorable=two_classes,
                       description="score each input (1 = anomaly); ROC-AUC, average precision"))
register_kind(TaskKind("generation", "bce", None, unscored,
                       description="learn the input distribution; the task scores generated samples"))


def kind_of(task: Task) -> TaskKind:
    """The kind ``task`` is judged by."""
    return TASK_KINDS.get(task.kind)
