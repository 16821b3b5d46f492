"""``digits``: scikit-learn's shipped 8x8 handwritten digits (1,797 images, 10 classes).

Split (stratified by class, ``split_seed`` 0): 60% train (1,078), 20% validation (359),
20% test (360). Pixels 0..16 are scaled to [0, 1]; inputs are images of shape (1, 8, 8).
"""

from __future__ import annotations

import numpy as np

from tasks.base import Splits, Task, as_split, memoize, register_task, stratified_split

SHAPE = (1, 8, 8)


@memoize
def load_digits_splits(seed: int) -> Splits:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    train, val, test = stratified_split(y, (0.6, 0.2, 0.2), seed)
    return Splits(*(as_split(x[i], y[i], SHAPE) for i in (train, val, test)))


def shift_noise(x, generator):
    """Augmentation for images: random shift by up to one pixel and Gaussian noise (std 0.05)."""
    import torch

    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=generator))
    x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return x + 0.05 * noise


DIGITS = register_task(
    Task(
        name="digits",
        kind="classification",
        input_shape=SHAPE,
        outputs=10,
        metric="accuracy",
        direction="maximize",
        target=0.95,
        epochs=20,
        batch_size=64,
        loader=load_digits_splits,
        loss="cross_entropy",
        augment=shift_noise,
        description="scikit-learn 8x8 digits: 1,078 train / 359 val / 360 test, 10 classes.",
    )
)
