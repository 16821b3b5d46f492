"""The task contract: a standardized problem owns its data, split, loss, metric, target and budget.

Like an AlgoPerf workload or a DeepOBS test problem, every family trained on a task is judged the
same way: same data and split, same loss, same primary metric and the same target value.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from suite.registry import Registry
from tasks.kinds import LOSSES, TASK_KINDS, Score, kind_of, loss_function

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (N, *input_shape) float32 and targets ``y`` (N,) or (N, k) of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y differ in length: {len(self.x)} != {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Splits:
    """The fixed train / validation / test splits of a task."""

    train: Split
    val: Split
    test: Split

    def to(self, device: torch.device | str) -> Splits:
        return Splits(self.train.to(device), self.val.to(device), self.test.to(device))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass(frozen=True)
class Task:
    """A standardized task.

    Args:
        name: registry name (``digits``, ``mnist1d``).
        kind: problem kind; decides the metrics and how outputs become their inputs
            (``tasks/kinds.py``, one place per kind).
        input_shape: shape of one input without the batch dimension, channels first
            (``(1, 8, 8)`` for an image, ``(1, 40)`` for a signal of length 40).
        outputs: number of classes for classification (1 = binary), output size for regression.
        metric: primary metric name as logged without the split prefix (``accuracy``, ``rmse``).
        direction: whether a larger (``maximize``) or smaller primary metric is better.
        target: the value of the primary metric that counts as solved (time/energy-to-target).
        epochs: default training budget in epochs.
        batch_size: default mini-batch size.
        narrow: families that fit the task's kind and input rank but are not offered on it, each
            with the reason (``{"cnn": "30 tabular features have no spatial order"}``); the
            compatible families (``suite.families.families_for``) are otherwise derived from what
            each family declares it can take, so no task lists family names.
        loader: ``loader(seed) -> Splits``; the same seed always gives the same split.
        loss: loss name (``tasks.kinds.LOSSES``: ``cross_entropy``, ``bce``, ``mse``, ...); families
            with another training paradigm may train with their own
            objective (GAN, VAE) but are still scored on ``metric``.
        split_seed: the seed of the standard split; every benchmark trial uses it, so all arms see
            the same data, while the trial seed varies initialisation and batch order.
        augment: optional ``augment(x, generator) -> x`` applied to training batches when the
            ``augment`` regularizer is on.
        description: one paragraph: source, sizes, split, metric.
        baselines: values of the primary ``metric`` on the test split reached by trivial
            predictors, by name (``{"naive_last_value": 0.88}``), so a record can be read against
            them; empty when the task defines none.
        download: the data are downloaded on first use (``tasks/downloads.py``); such tasks are
            opt-in: no built-in benchmark profile lists them; ``suite run --task`` or a user's own
            profile runs them.
        ideal: the primary metric's best possible value (accuracy 1, RMSE 0); derived from the
            metric when omitted (:data:`METRIC_SCALES`).
        baseline: the value a trivial predictor reaches (chance accuracy, ROC-AUC 0.5, the naive
            forecast's RMSE): the zero of the report's normalized regret
            ``(ideal - v) / (ideal - baseline)``; derived from the metric (chance = 1 / classes),
            or the task's only ``baselines`` value, when omitted.
        bounds: ``(low, high)`` of the metric's values (``-inf``/``inf`` where unbounded): intervals
            are shown within them; derived from the metric when omitted.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    outputs: int
    metric: str
    direction: Direction
    target: float
    epochs: int
    batch_size: int
    loader: Callable[[int], Splits] = field(repr=False, compare=False)
    loss: str = "cross_entropy"
    split_seed: int = 0
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = field(
        default=None, repr=False, compare=False
    )
    description: str = ""
    baselines: Mapping[str, float] = field(default_factory=dict, compare=False)
    download: bool = False
    ideal: float | None = None
    baseline: float | None = None
    bounds: tuple[float, float] | None = None
    narrow: Mapping[str, str] = field(default_factory=dict, compare=False)
    data_file: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._resolve_scale()
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task kind must be one of {', '.join(TASK_KINDS.names())}, got {self.kind!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"task {self.name!r}: loss must be one of {', '.join(LOSSES)}, "
                             f"got {self.loss!r}")
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', got {self.direction!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs=}, {self.batch_size=}")

    def _resolve_scale(self) -> None:
        """Fill ``ideal``, ``baseline`` and ``bounds`` from :data:`METRIC_SCALES` where omitted, and
        check them (frozen dataclass: set once, here)."""
        ideal, baseline, bounds = METRIC_SCALES.get(self.metric, (None, None, None))
        if baseline == "chance":
            baseline = 1.0 / self.outputs if self.outputs > 1 else 0.5
        if baseline is None and len(self.baselines) == 1:
            baseline = float(next(iter(self.baselines.values())))
        ideal = self.ideal if self.ideal is not None else ideal
        baseline = self.baseline if self.baseline is not None else baseline
        bounds = self.bounds if self.bounds is not None else bounds
        if ideal is None or baseline is None or bounds is None:
            raise ValueError(f"task {self.name!r}: metric {self.metric!r} has no known scale: declare ideal, "
                             f"baseline and bounds (known metrics: {', '.join(sorted(METRIC_SCALES))})")
        low, high = float(bounds[0]), float(bounds[1])
        if not (low <= ideal <= high and low <= baseline <= high) or ideal == baseline:
            raise ValueError(f"task {self.name!r}: ideal {ideal} and baseline {baseline} must differ and lie "
                             f"within bounds ({low}, {high})")
        object.__setattr__(self, "ideal", float(ideal))
        object.__setattr__(self, "baseline", float(baseline))
        object.__setattr__(self, "bounds", (low, high))

    def scale(self) -> dict[str, float | None]:
        """``ideal``, ``baseline``, ``low``, ``high`` (``None`` for an infinite bound), for records."""
        low, high = self.bounds  # type: ignore[misc]
        return {"ideal": self.ideal, "baseline": self.baseline,
                "low": low if np.isfinite(low) else None, "high": high if np.isfinite(high) else None}

    # -------------------------------------------------- how results are judged (by the task's kind)
    def metric_collection(self):
        """A fresh torchmetrics collection that scores a split of this task, keyed by metric name;
        ``None`` when the task scores generated samples itself (``generation``)."""
        make = kind_of(self).metrics
        return None if make is None else make(self)

    def metric_inputs(self, outputs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the network (or a family's scoring step) puts out, as the metrics' inputs."""
        return kind_of(self).metric_inputs(self, outputs, y)

    def scorable(self, y: torch.Tensor) -> bool:
        """Whether a split with targets ``y`` can be scored (an anomaly split needs both classes)."""
        return kind_of(self).scorable(y)

    def loss_function(self):
        """``loss(outputs, targets) -> scalar`` of the task's :attr:`loss`."""
        return loss_function(self.loss)

    def load(self, seed: int | None = None) -> Splits:
        """Return the train/val/test splits; ``seed`` defaults to the standard ``split_seed``."""
        return self.loader(self.split_seed if seed is None else seed)

    def has_reached_target(self, metrics: Mapping[str, float], split: str = "val") -> bool:
        """Whether ``metrics[f"{split}/{metric}"]`` is at least as good as the target."""
        value = metrics.get(f"{split}/{self.metric}")
        if value is None or not np.isfinite(value):
            return False
        return value >= self.target if self.direction == "maximize" else value <= self.target

    def better(self, a: float, b: float) -> bool:
        """Whether primary-metric value ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "maximize" else a < b

    def summary(self) -> dict:
        """JSON-able description of the task (for ``suite list tasks --json`` and records)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "outputs": self.outputs,
            "metric": self.metric,
            "direction": self.direction,
            "target": self.target,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "loss": self.loss,
            "augment": self.augment is not None,
            "baselines": dict(self.baselines),
            "download": self.download,
            "scale": self.scale(),
            **({"data_file": dict(self.data_file)} if self.data_file else {}),
            "description": self.description,
        }


#: per metric: (ideal, baseline, bounds); baseline "chance" is 1 / classes, None the task's only
#: ``baselines`` value
METRIC_SCALES: dict[str, tuple[float, float | str | None, tuple[float, float]]] = {
    "accuracy": (1.0, "chance", (0.0, 1.0)),
    "auroc": (1.0, 0.5, (0.0, 1.0)),
    "r2": (1.0, 0.0, (-np.inf, 1.0)),
    "mse": (0.0, None, (0.0, np.inf)),
    "rmse": (0.0, None, (0.0, np.inf)),
    "fd": (0.0, None, (0.0, np.inf)),
}

TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    """Add a task to :data:`TASKS` and return it. Every registry has one such ``register_<kind>``
    function (``register_task``, ``register_kind``, ``register_family``, ``register_optimizer``,
    ``register_regularizer``): a call for what is a value (a task, a kind, a regularizer), the same
    call as a decorator for what is a function (a family's network builder, an optimizer's
    ``build``)."""
    return TASKS.add(task.name, task)


register = register_task  # the name plug-ins written before ``register_task`` use


# ---------------------------------------------------------------------------------- data helpers


def cache_dir() -> Path:
    """Folder for generated or downloaded data: ``$SUITE_CACHE`` or ``~/.cache/dl-benchsuite``."""
    path = Path(os.environ.get("SUITE_CACHE") or Path.home() / ".cache" / "dl-benchsuite")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_npz(name: str, key: str, make: Callable[[], Mapping[str, np.ndarray]]) -> dict:
    """Load arrays from ``cache_dir()/name-<hash(key)>.npz``, or ``make()`` and store them.

    The file is written atomically (temporary name, then rename), so parallel test workers never
    read half a file; a corrupt cache file is regenerated.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    arrays = {k: np.asarray(v) for k, v in make().items()}
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def stratified_split(
    y: np.ndarray, fractions: tuple[float, ...], seed: int
) -> tuple[np.ndarray, ...]:
    """Split indices ``0..len(y)-1`` into parts of the given fractions, stratified by label.

    The last part takes the remainder. Deterministic for a seed; parts never overlap.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    parts: list[np.ndarray] = []
    rest, rest_y, left = idx, y, 1.0
    for frac in fractions[:-1]:
        take, rest = train_test_split(
            rest, train_size=frac / left, random_state=seed, stratify=rest_y
        )
        rest_y = y[rest]
        left -= frac
        parts.append(np.sort(take))
    parts.append(np.sort(rest))
    return tuple(parts)


def as_split(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...], y_dtype=torch.long) -> Split:
    """Make a :class:`Split` of float32 inputs reshaped to ``(N, *shape)``."""
    xt = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32).reshape(len(x), *shape)
    return Split(xt, torch.as_tensor(np.ascontiguousarray(y), dtype=y_dtype))


def memoize(fn: Callable[[int], Splits]) -> Callable[[int], Splits]:
    """Cache a loader per seed within the process (tensors are never modified in place)."""
    return functools.lru_cache(maxsize=4)(fn)


@dataclass(frozen=True)
class GenerationTask(Task):
    """A ``generation`` task: learn the distribution of the training inputs.

    Args:
        score: ``score(generated, real) -> {metric: value}`` for ``generated`` and ``real`` input
            tensors of shape ``(N, *input_shape)`` (a family generates as many samples as the split
            has); the keys include the task's ``metric``.
        value_range: ``(low, high)`` bounds of every input value, or ``None`` when unbounded.
    """

    score: Score | None = field(default=None, repr=False, compare=False)
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "generation" or self.score is None:
            raise ValueError(f"GenerationTask {self.name!r} needs kind 'generation' and a score")


@dataclass(frozen=True)
class TransferTask(Task):
    """A ``transfer`` task: pre-train on a labelled source set, then learn the target splits.

    Args:
        source: ``source(seed) -> Split`` of the source inputs (same ``input_shape``) and labels
            ``0..source_outputs-1``; the task's ``split_seed`` is passed.
        source_outputs: number of source classes.
    """

    source: Callable[[int], Split] | None = field(default=None, repr=False, compare=False)
    source_outputs: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "transfer" or self.source is None or self.source_outputs < 1:
            raise ValueError(f"TransferTask {self.name!r} needs kind 'transfer', a source and "
                             f"source_outputs >= 1, got {self.source_outputs=}")

    def load_source(self) -> Split:
        """The source split (fixed by ``split_seed``)."""
        return self.source(self.split_seed)
