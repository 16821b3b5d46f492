"""``breast-cancer``: scikit-learn's shipped Wisconsin diagnostic breast cancer data (569 x 30).

Binary classification of 30 tabular features. The label is flipped from scikit-learn's coding so
that the positive class 1 is *malignant* (212 of 569), which makes precision, recall and F1 speak
about finding cancers. Split (stratified by class, ``split_seed`` 0): 60% train (341), 20%
validation (114), 20% test (114). Features are standardized with the mean and standard deviation
of the training split only. The network has one output (a logit); the loss is binary cross-entropy
and the primary metric ROC-AUC (precision, recall, F1 and accuracy are recorded as well).
"""

from __future__ import annotations

import numpy as np
import torch

from tasks.base import Splits, Task, as_split, memoize, register_task, stratified_split

SHAPE = (30,)


def standardize(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``x`` standardized per column with the mean and std of the rows ``train`` only."""
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


@memoize
def load_breast_cancer_splits(seed: int) -> Splits:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    y = (1 - data.target).astype(np.int64)  # 1 = malignant
    train, val, test = stratified_split(y, (0.6, 0.2, 0.2), seed)
    x = standardize(data.data, train).astype(np.float32)
    return Splits(*(as_split(x[i], y[i], SHAPE, y_dtype=torch.long) for i in (train, val, test)))


BREAST_CANCER = register_task(
    Task(
        name="breast-cancer",
        kind="classification",
        input_shape=SHAPE,
        outputs=1,
        metric="auroc",
        direction="maximize",
        target=0.99,
        epochs=20,
        batch_size=32,
        loader=load_breast_cancer_splits,
        loss="bce",
        description="scikit-learn breast cancer (binary, 1 = malignant): 341 train / 114 val / "
        "114 test, stratified; 30 features standardized with train statistics.",
    )
)
