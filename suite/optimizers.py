"""Optimizers and learning-rate schedules, registered by name.

Batch, mini-batch and stochastic gradient descent are all ``sgd``: set ``batch_size`` to the
training-set size, to B, or to 1. Weight decay is not an optimizer param: it is the ``l2``
regularizer, which every optimizer here accepts (decoupled for ``adamw``, coupled otherwise, each
with its own default and range).

Search spaces (the protocol's, written down in the README): every learning rate is tuned on a log
scale over a range of about a factor 10 below and 10-30 above its default, so that the default sits
in the middle third of the range (SGD family about 1e-3..0.3-1, the adaptive methods 1e-4..1e-2-3e-2,
as in Choi et al. 2019 and AlgoPerf's baselines); momentum, Adam's betas and RMSprop's smoothing are
tuned as ``1 - value`` on a log scale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from suite.params import Param
from suite.registry import Registry

Build = Callable[[Iterable[torch.nn.Parameter], Mapping[str, Any], float], torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer.

    Args:
        name: registry name.
        build: ``build(parameters, params, weight_decay) -> torch.optim.Optimizer``.
        params: declared hyperparameters (always including ``lr``).
        description: one line.
        decoupled_weight_decay: the optimizer applies weight decay apart from the gradient (AdamW),
            so the ``l2`` regularizer takes its decoupled default and range.
    """

    name: str
    build: Build
    params: tuple[Param, ...]
    description: str = ""
    decoupled_weight_decay: bool = False

    def summary(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "params": {p.name: p.default for p in self.params},
        }


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")


def lr(default: float, low: float, high: float) -> Param:
    """The learning rate: ``default``, tuned on a log scale over ``[low, high]`` (core space)."""
    return Param("lr", default, low=1e-6, high=10.0, log=True, search=(low, high), core=True,
                 help="learning rate")


MOMENTUM = Param("momentum", 0.9, low=0.0, high=0.999, search=(0.5, 0.99), complement=True,
                 help="momentum factor (tuned as 1 - momentum, log scale)")
BETA1 = Param("beta1", 0.9, low=0.0, high=0.9999, search=(0.7, 0.98), complement=True,
              help="Adam beta1 (tuned as 1 - beta1, log scale)")
BETA2 = Param("beta2", 0.999, low=0.0, high=0.99999, search=(0.99, 0.9999), complement=True,
              help="Adam beta2 (tuned as 1 - beta2, log scale)")


def register_optimizer(name: str, params: tuple[Param, ...], description: str = "",
                       decoupled_weight_decay: bool = False) -> Callable[[Build], Build]:
    """Decorator registering ``build(parameters, params, weight_decay) -> torch.optim.Optimizer`` as
    the optimizer ``name`` with its declared ``params`` (always including ``lr``)."""

    def decorator(build: Build) -> Build:
        OPTIMIZERS.add(name, OptimizerSpec(name, build, params, description, decoupled_weight_decay))
        return build

    return decorator


@register_optimizer("sgd", (lr(0.05, 1e-3, 1.0),),
                    "plain SGD; batch/mini-batch/stochastic GD by batch_size = N / B / 1")
def _sgd(ps, p, wd):
    return torch.optim.SGD(ps, lr=p["lr"], weight_decay=wd)


@register_optimizer("momentum", (lr(0.02, 1e-3, 0.3), MOMENTUM), "SGD with heavy-ball momentum")
def _momentum(ps, p, wd):
    return torch.optim.SGD(ps, lr=p["lr"], momentum=p["momentum"], weight_decay=wd)


@register_optimizer("nesterov", (lr(0.02, 1e-3, 0.3), MOMENTUM), "SGD with Nesterov momentum")
def _nesterov(ps, p, wd):
    return torch.optim.SGD(ps, lr=p["lr"], momentum=p["momentum"], nesterov=True, weight_decay=wd)


@register_optimizer("adam", (lr(1e-3, 2e-4, 2e-2), BETA1, BETA2),
                    "Adam (weight decay coupled, as L2 in the gradient)")
def _adam(ps, p, wd):
    return torch.optim.Adam(ps, lr=p["lr"], betas=(p["beta1"], p["beta2"]), weight_decay=wd)


@register_optimizer("adamw", (lr(1e-3, 2e-4, 2e-2), BETA1, BETA2), "AdamW (weight decay decoupled)",
                    decoupled_weight_decay=True)
def _adamw(ps, p, wd):
    return torch.optim.AdamW(ps, lr=p["lr"], betas=(p["beta1"], p["beta2"]), weight_decay=wd)


@register_optimizer(
    "rmsprop",
    (lr(1e-3, 1e-4, 1e-2),
     Param("alpha", 0.99, low=0.0, high=0.9999, search=(0.9, 0.999), complement=True,
           help="smoothing of the squared gradients (tuned as 1 - alpha, log scale)"),
     Param("momentum", 0.0, low=0.0, high=0.999, search=(0.0, 0.9), help="momentum factor")),
    "RMSprop",
)
def _rmsprop(ps, p, wd):
    return torch.optim.RMSprop(
        ps, lr=p["lr"], alpha=p["alpha"], momentum=p["momentum"], weight_decay=wd
    )


@register_optimizer("adagrad", (lr(0.01, 1e-3, 0.3),), "Adagrad")
def _adagrad(ps, p, wd):
    return torch.optim.Adagrad(ps, lr=p["lr"], weight_decay=wd)


# ------------------------------------------------------------------------------------ schedules

SCHEDULE = Param(
    "schedule",
    "cosine",
    choices=("none", "cosine", "step"),
    help="learning-rate schedule over the epoch budget: cosine to 0 (the default), none, or step "
         "(x0.1 at 50%/75%)",
)
"""Cosine decay by default, as in AlgoPerf's baselines and most published recipes: besides ending
on a small step, it makes the final weights far less dependent on the seed (mnist1d, mlp defaults,
20 epochs, seeds 1-4: test accuracy 0.675 / 0.671 / 0.677 / 0.662 with cosine against 0.686 /
0.677 / 0.616 / 0.682 without), so that one trial's value says more about its params than about
its seed. A family may declare another default (``gan``: constant)."""


def build_schedule(
    optimizer: torch.optim.Optimizer, name: str, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate scheduler called ``name`` (``None`` for ``"none"``)."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    raise ValueError(f"schedule must be one of {SCHEDULE.choices}, got {name!r}")
