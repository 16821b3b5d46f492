"""Regularizers, registered by name and combinable (``--regularizer`` may repeat).

Each declares its strength as a param (tunable by Optuna) and acts through one of a few hooks:

* ``dropout``, ``batchnorm``: params the family's network reads (only families that declare support);
* ``l1``: a penalty added to the training loss;
* ``l2``: weight decay passed to the optimizer: coupled (L2 in the gradient) for most optimizers,
  default 1e-4 tuned over 1e-5..1e-3; decoupled for AdamW, default 1e-2 tuned over 1e-3..1e-1;
* ``grad_clip``: Lightning's gradient clipping by global norm;
* ``early_stopping``: stop after ``patience`` epochs without improvement of the validation metric,
  then restore the best epoch's weights;
* ``augment``: the task's own augmentation on training batches (only tasks that define one);
* ``none``: the baseline; it cannot be combined with others.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from suite.errors import SuiteError
from suite.params import Param
from suite.registry import Registry


@dataclass(frozen=True)
class Regularizer:
    """A registered regularizer.

    Args:
        name: registry name.
        params: declared params (the strength; in the ``core`` search space).
        description: one line.
        decoupled_params: replace ``params`` when the optimizer decouples weight decay (AdamW):
            its scale differs from coupled L2's by orders of magnitude, so it has its own default
            and range.
        network_params: names of params the family's network must read (``dropout``).
        penalty: ``penalty(module, params) -> tensor`` added to the training loss.
        weight_decay: ``weight_decay(params) -> float`` handed to the optimizer.
        trainer_kwargs: ``trainer_kwargs(params) -> dict`` for ``lightning.Trainer``.
        callbacks: ``callbacks(params, monitor, mode) -> list`` of Lightning callbacks.
        augment: turn on the task's augmentation.
    """

    name: str
    params: tuple[Param, ...] = ()
    description: str = ""
    decoupled_params: tuple[Param, ...] | None = None
    network_params: tuple[str, ...] = ()
    penalty: Callable[[torch.nn.Module, Mapping[str, Any]], torch.Tensor] | None = None
    weight_decay: Callable[[Mapping[str, Any]], float] | None = None
    trainer_kwargs: Callable[[Mapping[str, Any]], dict] | None = None
    callbacks: Callable[[Mapping[str, Any], str, str], list[Any]] | None = None
    augment: bool = False

    def params_for(self, optimizer: Any) -> tuple[Param, ...]:
        """The params of this regularizer under ``optimizer`` (an ``OptimizerSpec``)."""
        if self.decoupled_params is not None and getattr(optimizer, "decoupled_weight_decay", False):
            return self.decoupled_params
        return self.params

    def summary(self) -> dict:
        out = {
            "name": self.name,
            "description": self.description,
            "params": {p.name: p.default for p in self.params},
        }
        if self.decoupled_params is not None:
            out["params_decoupled"] = {p.name: p.default for p in self.decoupled_params}
        return out


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def register_regularizer(regularizer: Regularizer) -> Regularizer:
    """Add a regularizer to :data:`REGULARIZERS` and return it (a value, so a call)."""
    return REGULARIZERS.add(regularizer.name, regularizer)


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """Weight matrices and kernels (biases and norm scales are not penalized)."""
    return [p for n, p in module.named_parameters() if p.requires_grad and p.dim() > 1]


def l1_penalty(module: torch.nn.Module, params: Mapping[str, Any]) -> torch.Tensor:
    """``l1 * sum(|w|)`` over the weight matrices of ``module``."""
    return params["l1"] * sum(w.abs().sum() for w in _weights(module))


@functools.cache
def restoring_early_stopping() -> type:
    """The ``RestoringEarlyStopping`` callback class (defined on first use: Lightning is imported
    where training starts, not when the registry is listed)."""
    from lightning.pytorch.callbacks import EarlyStopping

    class RestoringEarlyStopping(EarlyStopping):
        """Lightning's ``EarlyStopping`` that also keeps the best epoch's weights and restores them
        when fitting ends (Keras' ``restore_best_weights``). The copy lives on the training device."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.best_state: dict[str, torch.Tensor] | None = None
            self.best_epoch: int | None = None

        def on_validation_end(self, trainer, pl_module) -> None:
            before = self.best_score.clone()
            super().on_validation_end(trainer, pl_module)
            if not torch.equal(before, self.best_score):  # improved this epoch
                self.best_state = copy.deepcopy(pl_module.state_dict())
                self.best_epoch = trainer.current_epoch

        def on_fit_end(self, trainer, pl_module) -> None:
            if self.best_state is not None:
                pl_module.load_state_dict(self.best_state)

    return RestoringEarlyStopping


for _reg in (
    Regularizer("none", description="baseline: no regularization"),
    Regularizer(
        "dropout",
        (Param("dropout", 0.2, low=0.0, high=0.95, search=(0.0, 0.5), core=True,
               help="drop probability"),),
        "dropout after each hidden layer (off in eval)",
        network_params=("dropout",),
    ),
    Regularizer(
        "batchnorm",
        (Param("batchnorm", True, tune=False, help="batch norm after each hidden layer"),),
        "batch normalization in hidden layers",
        network_params=("batchnorm",),
    ),
    Regularizer(
        "l1",
        (Param("l1", 1e-5, low=0.0, high=1.0, log=True, search=(1e-6, 1e-4), core=True,
               help="L1 penalty coefficient on weights"),),
        "L1 penalty on weights added to the loss",
        penalty=l1_penalty,
    ),
    Regularizer(
        "l2",
        (Param("weight_decay", 1e-4, low=0.0, high=1.0, log=True, search=(1e-5, 1e-3), core=True,
               help="coupled L2 weight decay (added to the gradient)"),),
        "L2 weight decay through the optimizer (decoupled for adamw)",
        decoupled_params=(Param("weight_decay", 1e-2, low=0.0, high=10.0, log=True, search=(1e-3, 1e-1),
                                core=True, help="decoupled weight decay (AdamW)"),),
        weight_decay=lambda p: p["weight_decay"],
    ),
    Regularizer(
        "grad_clip",
        (Param("clip", 1.0, low=1e-3, high=1e3, log=True, search=(0.1, 10.0), core=True,
               help="max global gradient norm"),),
        "gradient clipping by global norm",
        trainer_kwargs=lambda p: {"gradient_clip_val": p["clip"], "gradient_clip_algorithm": "norm"},
    ),
    Regularizer(
        "early_stopping",
        (Param("patience", 5, low=1, high=1000, search=(2, 10), core=True,
               help="epochs without validation improvement before stopping"),),
        "stop on a validation plateau and restore the best epoch's weights",
        callbacks=lambda p, monitor, mode: [
            restoring_early_stopping()(monitor=monitor, mode=mode, patience=p["patience"],
                                       check_on_train_epoch_end=False, check_finite=False)
        ],
    ),
    Regularizer("augment", description="the task's data augmentation on training batches",
                augment=True),
):
    register_regularizer(_reg)


def resolve_regularizers(names: tuple[str, ...] | list[str]) -> list[Regularizer]:
    """Look up and check a combination: no duplicates, ``none`` only alone; empty = ``none``."""
    names = list(names) or ["none"]
    regs = [REGULARIZERS.get(n) for n in names]
    if len(set(names)) != len(names):
        raise SuiteError(f"regularizer given twice in {names}; each may appear once")
    if "none" in names and len(names) > 1:
        raise SuiteError(f"regularizer 'none' cannot be combined with others, got {names}")
    return regs
