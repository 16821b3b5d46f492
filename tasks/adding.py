"""``adding``: the adding problem of Hochreiter & Schmidhuber (1997), a long-memory benchmark.

A sample is a sequence of length T with two channels, shape ``(2, T)``: channel 0 holds values
drawn uniformly from [0, 1]; channel 1 is a marker with exactly two 1s, the first at a uniform
position in the first half (``[0, T // 2)``), the second in the second half (``[T // 2, T)``), as
in Arjovsky et al. (2016). The target is the sum of the two marked values (in [0, 2]).

The registered ``adding`` task has T = :data:`LENGTH` (100); :func:`adding_task` builds the task
for another length (``register_task(adding_task(200))`` adds ``adding-200``). Data are generated from
fixed seeds, one independent stream per split: 10,000 train / 1,000 validation / 1,000 test
(:data:`SIZES`). Regression with MSE loss; the primary metric is MSE (minimized), target 0.05.

Baseline (``Task.baselines["predict_one"]``): always predicting 1, the target's mean, has MSE equal
to the target's variance, 2 x 1/12 = 0.167, computed on the test set.
"""

from __future__ import annotations

import numpy as np
import torch

from tasks.base import Split, Splits, Task, as_split, memoize, register_task

LENGTH = 100
SIZES = {"train": 10_000, "val": 1_000, "test": 1_000}
TARGET_MSE = 0.05


def make_adding(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` adding-problem samples: inputs ``(n, 2, length)`` float32 and targets ``(n,)``."""
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length=}")
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    rows = np.arange(n)
    markers = np.zeros((n, length))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    return x, y


def generate_split(split: str, length: int, seed: int) -> Split:
    """One split; its own random stream (seed, length, split index), so splits never share one."""
    index = list(SIZES).index(split)
    rng = np.random.default_rng([seed, length, index])
    x, y = make_adding(SIZES[split], length, rng)
    return as_split(x, y, (2, length), y_dtype=torch.float32)


def predict_one_mse(length: int = LENGTH, seed: int = 0) -> float:
    """MSE on the test split of always predicting 1 (the target's mean); about 1/6."""
    y = generate_split("test", length, seed).y
    return float(torch.mean((y - 1.0) ** 2))


def adding_task(length: int = LENGTH, *, name: str | None = None, split_seed: int = 0) -> Task:
    """The adding-problem task for sequences of ``length`` (named ``adding-<length>`` unless 100).

    Args:
        length: sequence length T (>= 2); the input shape is ``(2, T)``.
        name: registry name; default ``adding`` for T = 100, else ``adding-<T>``.
        split_seed: seed of the standard generated data.
    """
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length=}")

    @memoize
    def load(seed: int) -> Splits:
        return Splits(*(generate_split(s, length, seed) for s in SIZES))

    return Task(
        name=name or ("adding" if length == LENGTH else f"adding-{length}"),
        kind="regression",
        input_shape=(2, length),
        outputs=1,
        metric="mse",
        direction="minimize",
        target=TARGET_MSE,
        epochs=20,
        batch_size=64,
        loader=load,
        loss="mse",
        split_seed=split_seed,
        baselines={"predict_one": round(predict_one_mse(length, split_seed), 5)},
        description=f"adding problem, T={length}: channels (values in [0, 1], two markers), target "
        "the sum of the marked values; 10,000 / 1,000 / 1,000 generated with fixed seeds.",
    )


ADDING = register_task(adding_task(LENGTH))
