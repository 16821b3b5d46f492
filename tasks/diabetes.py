"""``diabetes``: scikit-learn's shipped diabetes regression data (442 x 10).

Ten baseline variables (age, sex, BMI, blood pressure, six serum measurements), read unscaled
(``load_diabetes(scaled=False)``), and a quantitative measure of disease progression one year
later. Split (random permutation, ``split_seed`` 0): 60% train (265), 20% validation (89), 20% test
(88). Features *and* the target are standardized with the training split's mean and standard
deviation only, so the network sees unit-scale values and the MSE loss starts near 1. The
primary metric R2 is invariant to that scaling; ``mse``, ``rmse`` and ``mae`` are in units of the
training target's standard deviation (:data:`TARGET_STD`, about 78.5 progression points): multiply
``rmse``/``mae`` by it (``mse`` by its square) for the original units.
"""

from __future__ import annotations

import numpy as np
import torch

from tasks.base import Splits, Task, as_split, memoize, register_task
from tasks.breast_cancer import standardize

SHAPE = (10,)
FRACTIONS = (0.6, 0.2, 0.2)
TARGET_STD = 78.46  # std of the training targets at split_seed 0, in disease-progression points


def random_split(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Indices ``0..n-1`` permuted with ``seed`` and cut into train / val / test parts (sorted)."""
    order = np.random.default_rng(seed).permutation(n)
    a = round(fractions[0] * n)
    b = round((fractions[0] + fractions[1]) * n)
    return tuple(np.sort(part) for part in (order[:a], order[a:b], order[b:]))


@memoize
def load_diabetes_splits(seed: int) -> Splits:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    train, val, test = random_split(len(data.target), FRACTIONS, seed)
    x = standardize(data.data, train).astype(np.float32)
    y = standardize(data.target.reshape(-1, 1), train).reshape(-1).astype(np.float32)
    return Splits(*(as_split(x[i], y[i], SHAPE, y_dtype=torch.float32) for i in (train, val, test)))


DIABETES = register_task(
    Task(
        name="diabetes",
        kind="regression",
        input_shape=SHAPE,
        outputs=1,
        metric="r2",
        direction="maximize",
        target=0.45,
        epochs=20,
        batch_size=32,
        loader=load_diabetes_splits,
        loss="mse",
        description="scikit-learn diabetes regression: 265 train / 89 val / 88 test, random split; "
        "features and target standardized with train statistics (mse/rmse/mae in train-target "
        "std units, ~78.5 points).",
    )
)
