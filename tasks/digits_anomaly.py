"""``digits-anomaly``: find the held-out digit 9 among 8x8 digits, trained on digits 0-8 only.

Data: scikit-learn's 8x8 digits, pixels scaled to [0, 1], images of shape (1, 8, 8). The 1,617
normal images (digits 0-8) are split 60/20/20 stratified by digit (``split_seed`` 0): 970 train,
323 validation, 324 test. The 180 anomalies (digit 9) never appear in training: half go to
validation (90), half to test (90), by a ``default_rng(split_seed)`` permutation. So train = 970
normal images; val = 413 images and test = 414, of which 90 (22%) are anomalies. Labels:
1 = anomaly, 0 = normal (training labels are all 0; a family must not need them). A family scores
each image (an autoencoder: its reconstruction error); the metric is the ROC-AUC of the score
against the label (``auroc``, maximize, target 0.80).

Why 9: a default autoencoder (seed 0) reaches test ROC-AUC 0.87-1.00 whichever digit is held out:
0.996 for digit 0 (saturated, so no room to compare variants), 0.905 for 9, 0.87 for 1.
"""

from __future__ import annotations

import numpy as np

from tasks.base import Splits, Task, as_split, memoize, register_task, stratified_split

SHAPE = (1, 8, 8)
ANOMALY = 9


@memoize
def load_digits_anomaly_splits(seed: int) -> Splits:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    digit = data.target.astype(np.int64)
    normal = np.flatnonzero(digit != ANOMALY)
    anomalous = np.flatnonzero(digit == ANOMALY)
    train, val, test = (normal[i] for i in stratified_split(digit[normal], (0.6, 0.2, 0.2), seed))
    order = np.random.default_rng(seed).permutation(anomalous)
    half = len(order) // 2
    val = np.sort(np.concatenate([val, order[:half]]))
    test = np.sort(np.concatenate([test, order[half:]]))
    y = (digit == ANOMALY).astype(np.int64)
    return Splits(*(as_split(x[i], y[i], SHAPE) for i in (train, val, test)))


DIGITS_ANOMALY = register_task(
    Task(
        name="digits-anomaly",
        kind="anomaly",
        input_shape=SHAPE,
        outputs=1,
        metric="auroc",
        direction="maximize",
        target=0.80,
        epochs=50,
        batch_size=64,
        loader=load_digits_anomaly_splits,
        loss="mse",
        description="8x8 digits, anomaly = digit 9: train 970 normal (0-8); val 413 and test 414 "
        "(323/324 normal + 90 nines each); ROC-AUC of the anomaly score.",
    )
)
