"""Training diagnostics recorded in every trial: gradient health, dead ReLUs, generalization gap.

All of it is sampled at most once per epoch, never per step:

* gradient norms of every weight matrix/kernel (``dim > 1``) at the first optimizer step of each
  epoch; the record keeps the first, middle and last layer and ``grad/ratio`` = first / last;
* the fraction of dead ReLU units: units (features, or channel x position for convolutions) whose
  ReLU output is zero for every sample of a fixed probe batch of training data;
* the generalization gap: the primary metric on a fixed probe of training data (as many samples as
  the validation split) minus the same metric on validation (for ``minimize`` metrics too, so a
  positive gap means train is higher).

Dead units and the gap cost a forward pass over the probe, so they are sampled on at most
:data:`PROBES` epochs per trial: every k-th epoch of the budget and the last one (cProfile put the
every-epoch probe at 9% of a 20-epoch digits CNN fit).

Flag rule (:func:`gradient_flag`): ``exploding`` if any sampled gradient norm or training loss is
non-finite, or the median first/last ratio is above ``1e3``; ``vanishing`` if the median ratio is
below ``1e-3``; otherwise ``ok``. The median is over the sampled epochs.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from tasks.base import Split

PROBES = 10
VANISHING_BELOW = 1e-3
EXPLODING_ABOVE = 1e3
RULE = (
    f"median over epochs of |grad first layer| / |grad last layer|: < {VANISHING_BELOW:g} vanishing, "
    f"> {EXPLODING_ABOVE:g} or any non-finite gradient or loss exploding, else ok"
)


def weight_layers(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weight matrices and kernels in registration order (input side first)."""
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad and p.dim() > 1]


def gradient_flag(ratios: list[float], losses: list[float]) -> str:
    """``vanishing``, ``exploding`` or ``ok`` by the rule in :data:`RULE`."""
    if any(not math.isfinite(v) for v in ratios + losses):
        return "exploding"
    if not ratios:
        return "ok"
    median = statistics.median(ratios)
    if median < VANISHING_BELOW:
        return "vanishing"
    if median > EXPLODING_ABOVE:
        return "exploding"
    return "ok"


class Diagnostics(pl.Callback):
    """Collect per-epoch diagnostics into ``pl_module.epoch_end_metrics`` (merged into its history).

    Args:
        probe: a fixed slice of the training split used for dead units and the train metric.
        metric: the task's primary metric name (``accuracy``); ``None`` skips the gap.
    """

    def __init__(self, probe: Split, metric: str | None) -> None:
        self.probe = probe
        self.metric = metric
        self._sample_next_step = False

    @staticmethod
    def every_for(epochs: int) -> int:
        """The probe cadence that samples at most :data:`PROBES` epochs of an ``epochs`` budget."""
        return max(1, math.ceil(epochs / PROBES))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._sample_next_step = True

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self._sample_next_step:
            return
        self._sample_next_step = False
        layers = [p for _, p in weight_layers(pl_module.net) if p.grad is not None]
        if not layers:
            return
        norms = torch.stack([torch.linalg.vector_norm(p.grad.detach()) for p in layers]).tolist()
        first, middle, last = norms[0], norms[len(norms) // 2], norms[-1]
        ratio = first / last if last > 0 else (math.inf if first > 0 else math.nan)
        pl_module.epoch_end_metrics.update(
            {"grad/first": first, "grad/middle": middle, "grad/last": last, "grad/ratio": ratio}
        )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every_for(trainer.max_epochs) and epoch != trainer.max_epochs:
            return
        relus = [m for m in pl_module.net.modules() if type(m) is nn.ReLU]
        alive: dict[int, torch.Tensor] = {}

        def hook(module, _inputs, output):
            seen = (output.detach().flatten(1) > 0).any(dim=0)
            # evaluate() may run several chunks: a unit is alive if it fires in any of them
            alive[id(module)] = seen if id(module) not in alive else alive[id(module)] | seen

        handles = [m.register_forward_hook(hook) for m in relus]
        try:
            values = pl_module.evaluate(self.probe, "train", full=False)
        finally:
            for h in handles:
                h.remove()
        if alive:
            total = sum(a.numel() for a in alive.values())
            dead = sum(int((~a).sum()) for a in alive.values())
            pl_module.epoch_end_metrics["dead_relu"] = dead / total
        if self.metric is not None:
            key = f"train/{self.metric}"
            if key in values:
                pl_module.epoch_end_metrics[key] = values[key]
                val = pl_module.epoch_end_metrics.get(f"val/{self.metric}")
                if val is not None:
                    pl_module.epoch_end_metrics["gap"] = values[key] - val


def summarize(curves: dict[str, list[float]]) -> dict[str, Any]:
    """The record's ``diagnostics`` block from the per-epoch curves."""
    ratios = [v for v in curves.get("grad/ratio", []) if v is not None]
    losses = list(curves.get("train/loss", []))
    finite = [v for v in ratios if math.isfinite(v)]
    gap = [v for v in curves.get("gap", []) if v is not None and math.isfinite(v)]
    dead = [v for v in curves.get("dead_relu", []) if v is not None and math.isfinite(v)]  # sampled epochs
    return {
        "flag": gradient_flag(ratios, losses),
        "rule": RULE,
        "grad_ratio_median": statistics.median(finite) if finite else None,
        "dead_relu_final": dead[-1] if dead else None,
        "gap_final": gap[-1] if gap else None,
        "gap_max": max(gap) if gap else None,
    }
