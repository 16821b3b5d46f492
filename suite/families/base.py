"""The architecture-family contract and registry.

A family is a plain ``nn.Module`` builder plus its declared params (= its Optuna search space),
what it can take (task kinds, input ranks), and, where its training paradigm differs from plain
supervised learning (GANs, autoencoders), the function that gives the LightningModule class that
trains it (the shared :class:`suite.module.SuiteModule` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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

#: the kinds a plain supervised network (inputs -> targets with the task's loss) can take
SUPERVISED = ("classification", "regression", "forecasting")


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
        module: ``None`` (the shared :class:`suite.module.SuiteModule` trains the network), or a
            function of no arguments that returns the ``SuiteModule`` subclass that trains it
            (``gan_module`` in ``suite/families/gan.py``). A function, not the class, so that the
            family file can define the class where it is first needed: ``suite list``, ``--help``
            and validation never import Lightning (:meth:`module_class`).
        description: one line.
        kinds: the task kinds it can take (names in ``tasks.kinds.TASK_KINDS``).
        ranks: the input ranks it can take, without the batch dimension: 1 = feature vectors
            ``(F,)``, 2 = signals ``(C, L)``, 3 = images ``(C, H, W)``. A task's compatible families
            are derived from these (:meth:`accepts`), so a new family appears on every task it fits.
        tiny: param values that make the network tiny, for the smoke tests generated from the
            registry (``suite/checks/test_family_contract.py``); empty = the defaults.
        lr_scale: the family's learning rate relative to each optimizer's reference (its default
            and search range are multiplied by it, whatever the optimizer): some architectures
            train well at another rate than the MLP the optimizers' defaults were set on. Declare it
            with the measurement that justifies it.
    """

    name: str
    build: Callable[[Task, Mapping[str, Any]], nn.Module]
    params: Params = ()
    supports: tuple[str, ...] = ("dropout", "batchnorm")
    module: Callable[[], type] | None = None
    description: str = ""
    kinds: tuple[str, ...] = SUPERVISED
    ranks: tuple[int, ...] = (1, 2, 3)
    tiny: Mapping[str, Any] = field(default_factory=dict)
    lr_scale: float = 1.0

    def accepts(self, task: Task) -> str | None:
        """``None`` when this family can train on ``task``, else why not (one phrase). A task of a
        kind that ``trains_as`` another (``tasks.kinds.TaskKind``) fits the families of either."""
        from tasks.kinds import kind_of

        if task.kind not in self.kinds and kind_of(task).trains_as not in self.kinds:
            return f"takes task kinds {', '.join(self.kinds)}, not {task.kind}"
        if len(task.input_shape) not in self.ranks:
            return (f"takes inputs of rank {', '.join(map(str, self.ranks))}, not {len(task.input_shape)} "
                    f"{tuple(task.input_shape)}")
        return None

    def module_class(self) -> type:
        """The LightningModule class that trains this family (imports Lightning)."""
        if self.module is None:
            from suite.module import SuiteModule

            return SuiteModule
        return self.module()

    def declared(self, task: Task) -> tuple[Param, ...]:
        """The params this family declares for ``task``."""
        return self.params(task) if callable(self.params) else self.params

    def summary(self) -> dict:
        params = self.params if not callable(self.params) else ()
        return {
            "name": self.name,
            "description": self.description,
            "supports": list(self.supports),
            "kinds": list(self.kinds),
            "ranks": list(self.ranks),
            "tiny": dict(self.tiny),
            "lr_scale": self.lr_scale,
            "params": {p.name: p.default for p in params},
        }


FAMILIES: Registry[Family] = Registry("family")


def register_family(
    name: str,
    *,
    params: Params = (),
    supports: tuple[str, ...] = ("dropout", "batchnorm"),
    module: Callable[[], type] | None = None,
    description: str = "",
    kinds: tuple[str, ...] = SUPERVISED,
    ranks: tuple[int, ...] = (1, 2, 3),
    tiny: Mapping[str, Any] | None = None,
    lr_scale: float = 1.0,
) -> Callable:
    """Decorator registering a network builder ``build(task, params) -> nn.Module`` as a family that
    takes tasks of ``kinds`` with inputs of ``ranks``."""

    def decorator(build: Callable[[Task, Mapping[str, Any]], nn.Module]):
        if not 0 < lr_scale < 1e3:
            raise ValueError(f"family {name!r}: lr_scale must be in (0, 1000), got {lr_scale=}")
        FAMILIES.add(name, Family(name, build, params, supports, module, description, kinds, ranks,
                                  dict(tiny or {}), lr_scale))
        return build

    return decorator


def families_for(task: Task) -> tuple[str, ...]:
    """The registered families that can run on ``task``: every family whose declared kinds and input
    ranks fit it (:meth:`Family.accepts`), minus the ones the task's ``narrow`` leaves out. Asked of
    the family registry, so a task is a plain value that names no family."""
    return tuple(n for n, f in FAMILIES.items() if f.accepts(task) is None and n not in task.narrow)


def not_offered(task: Task) -> dict[str, str]:
    """Every registered family that cannot run on ``task``, with the reason."""
    out = {}
    for n, f in FAMILIES.items():
        reason = f.accepts(task) or task.narrow.get(n)
        if reason:
            out[n] = reason
    return out
