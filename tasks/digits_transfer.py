"""``digits-transfer``: learn digits 5-9 from 10 labels each, after pre-training on digits 0-4.

Data: scikit-learn's 8x8 digits, pixels scaled to [0, 1], images of shape (1, 8, 8).

* Source (pre-training): all 901 images of digits 0-4, labels 0-4. None of them is a target image.
* Target: the 896 images of digits 5-9, relabelled 0-4 (digit - 5). Per digit, a permutation
  drawn with numpy's ``default_rng(split_seed)`` (``split_seed`` 0) gives the first 10 images to
  train and the next 10 to validation; the other 776 are the test set. So train = 50 labelled
  images (10 per class), val = 50 (10 per class), test = 796.

Metric: test accuracy over the 5 target classes (maximize, target 0.90). For reference,
scikit-learn's ``LogisticRegression()`` on the 64 raw pixels of the 50 training images reaches
0.941 on the test set: 8x8 digits leave little room for transfer at 10 labels per class.
"""

from __future__ import annotations

import functools

import numpy as np

from tasks.base import Split, Splits, TransferTask, as_split, memoize, register_task

SHAPE = (1, 8, 8)
SOURCE_DIGITS = (0, 1, 2, 3, 4)
TARGET_DIGITS = (5, 6, 7, 8, 9)
TRAIN_PER_CLASS = 10
VAL_PER_CLASS = 10


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def load_source(seed: int) -> Split:
    """All images of digits 0-4 (the source does not depend on the seed)."""
    x, digit = _digits()
    idx = np.flatnonzero(np.isin(digit, SOURCE_DIGITS))
    return as_split(x[idx], digit[idx] - min(SOURCE_DIGITS), SHAPE)


@memoize
def load_target_splits(seed: int) -> Splits:
    x, digit = _digits()
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for d in TARGET_DIGITS:
        idx = rng.permutation(np.flatnonzero(digit == d))
        cut = (TRAIN_PER_CLASS, TRAIN_PER_CLASS + VAL_PER_CLASS)
        for part, chunk in zip(parts, np.split(idx, cut), strict=True):
            part.append(chunk)
    y = digit - min(TARGET_DIGITS)
    return Splits(*(as_split(x[i], y[i], SHAPE) for i in (np.sort(np.concatenate(p)) for p in parts)))


DIGITS_TRANSFER = register_task(
    TransferTask(
        name="digits-transfer",
        kind="transfer",
        input_shape=SHAPE,
        outputs=len(TARGET_DIGITS),
        metric="accuracy",
        direction="maximize",
        target=0.90,
        epochs=40,
        batch_size=10,
        loader=load_target_splits,
        loss="cross_entropy",
        source=load_source,
        source_outputs=len(SOURCE_DIGITS),
        description="8x8 digits: pre-train on digits 0-4 (901 images), then learn 5-9 from 10 "
        "labels per class: 50 train / 50 val / 796 test.",
    )
)
