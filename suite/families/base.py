"""The architecture-family contract and registry.

A family is a plain ``nn.Module`` builder plus its declared params (= its Optuna search space),
and the LightningModule class that trains it (the shared :class:`suite.module.SuiteModule` unless
the training paradigm differs, as for GANs and VAEs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from suite.params import Param
from suite.registry import Registry
from tasks.base import Task

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}

ACTIVATION = Param("activation", "relu", choices=tuple(ACTIVATIONS), help="hidden activation")


def activation(name: str) -> nn.Module:
    """A new activation module by name (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}") from None


Params = tuple[Param, ...] | Callable[[Task], tuple[Param, ...]]


@dataclass(frozen=True)
class Family:
    """A registered architecture family.

    Args:
        name: registry name (``mlp``, ``cnn``, ...).
        build: ``build(task, params) -> nn.Module``; the network maps a batch of task inputs to
            task outputs.
        params: declared params, or ``params(task) -> tuple`` when ranges depend on the task.
        supports: regularizer-provided network params the network reads (``dropout``,
            ``batchnorm``); a regularizer needing one the family lacks is refused.
        module: name of the LightningModule class; ``None`` = the shared ``SuiteModule``.
        description: one line.
    """

    name: str
    build: Callable[[Task, Mapping[str, Any]], nn.Module]
    params: Params = ()
    supports: tuple[str, ...] = ("dropout", "batchnorm")
    module: type | None = None
    description: str = ""

    def declared(self, task: Task) -> tuple[Param, ...]:
        """The params this family declares for ``task``."""
        return self.params(task) if callable(self.params) else self.params

    def summary(self) -> dict:
        params = self.params if not callable(self.params) else ()
        return {
            "name": self.name,
            "description": self.description,
            "supports": list(self.supports),
            "params": {p.name: p.default for p in params},
        }


FAMILIES: Registry[Family] = Registry("family")


def register_family(
    name: str,
    *,
    params: Params = (),
    supports: tuple[str, ...] = ("dropout", "batchnorm"),
    module: type | None = None,
    description: str = "",
) -> Callable:
    """Decorator registering a network builder ``build(task, params) -> nn.Module`` as a family."""

    def decorator(build: Callable[[Task, Mapping[str, Any]], nn.Module]):
        FAMILIES.add(name, Family(name, build, params, supports, module, description))
        return build

    return decorator
