"""Per-split metric collections of a trial. What the metrics are is the task's (its kind's, in
``tasks/kinds.py``); this module only keeps one copy per split."""

from __future__ import annotations

from typing import Any

from torch import nn


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

    def __init__(self, collection: Any, splits=("train", "val", "test"),
                 epoch_metric: str | None = None):
        import torchmetrics

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

    def __getitem__(self, split: str) -> Any:
        return self.by_split[f"m_{split}"]

    def __contains__(self, split: str) -> bool:
        return f"m_{split}" in self.by_split
