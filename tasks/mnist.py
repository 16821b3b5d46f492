"""``mnist`` and ``fashion-mnist``: the 28x28 grey-scale image sets, downloaded on first use.

Opt-in tasks (``Task.download``): the four official gzipped idx files are fetched and verified by
:mod:`tasks.downloads` (SHA-256, cache, ``$SUITE_MNIST_URL`` / ``$SUITE_FASHION_MNIST_URL``);
no built-in benchmark profile lists them. The official 10,000 test images are the test split; 5,000
validation images (1/12) are carved from the 60,000 training images, stratified by class with
``split_seed`` 0, leaving 55,000 for training. Pixels 0..255 are scaled to [0, 1]; inputs have
shape (1, 28, 28); 10 classes, cross-entropy, primary metric accuracy.
"""

from __future__ import annotations

import numpy as np

from tasks.base import Splits, Task, as_split, memoize, register_task, stratified_split
from tasks.digits import shift_noise
from tasks.downloads import load_idx_dataset

SHAPE = (1, 28, 28)
VAL_FRACTION = 1 / 12  # 5,000 of the 60,000 official training images


def image_splits(arrays: dict[str, np.ndarray], val_fraction: float, seed: int, shape) -> Splits:
    """Train/val/test of an image set with an official train/test split (uint8 pixels -> [0, 1]).

    Validation is carved from the official training set, stratified by class with ``seed``.
    """
    x = arrays["x_train"].astype(np.float32) / 255.0
    y = arrays["y_train"]
    val, train = stratified_split(y, (val_fraction, 1 - val_fraction), seed)
    test = as_split(arrays["x_test"].astype(np.float32) / 255.0, arrays["y_test"], shape)
    return Splits(as_split(x[train], y[train], shape), as_split(x[val], y[val], shape), test)


def idx_task(name: str, *, target: float, epochs: int, title: str) -> Task:
    """A task on an MNIST-format data set (``mnist``, ``fashion-mnist``)."""

    @memoize
    def load(seed: int) -> Splits:
        return image_splits(load_idx_dataset(name), VAL_FRACTION, seed, SHAPE)

    return Task(
        name=name,
        kind="classification",
        input_shape=SHAPE,
        outputs=10,
        metric="accuracy",
        direction="maximize",
        target=target,
        epochs=epochs,
        batch_size=128,
        loader=load,
        loss="cross_entropy",
        augment=shift_noise,
        download=True,
        description=f"{title} (downloaded on first use, opt-in): 55,000 train / 5,000 val / "
        "10,000 test (the official test set), 28x28 grey-scale, 10 classes.",
    )


MNIST = register_task(idx_task("mnist", target=0.98, epochs=10, title="MNIST handwritten digits"))
FASHION_MNIST = register_task(
    idx_task("fashion-mnist", target=0.90, epochs=15, title="Fashion-MNIST clothing images")
)
