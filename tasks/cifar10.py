"""``cifar10``: CIFAR-10 32x32 colour images in 10 classes, downloaded on first use.

Opt-in task (``Task.download``): the official ``cifar-10-python.tar.gz`` is fetched and verified
by :mod:`tasks.downloads` (SHA-256, cache, ``$SUITE_CIFAR10_URL``; the pickled batches are parsed
with a restricted unpickler only after the checksum matched); no built-in profile lists it. The
official 10,000 test images (``test_batch``) are the test split; 5,000 validation images (10%) are
carved from the 50,000 training images (``data_batch_1..5``), stratified by class with
``split_seed`` 0, leaving 45,000 for training. Pixels 0..255 are scaled to [0, 1]; inputs have shape
(3, 32, 32); cross-entropy, primary metric accuracy.
"""

from __future__ import annotations

import torch

from tasks.base import Splits, Task, memoize, register_task
from tasks.downloads import load_cifar10
from tasks.mnist import image_splits

SHAPE = (3, 32, 32)
VAL_FRACTION = 0.1  # 5,000 of the 50,000 official training images


@memoize
def load_cifar10_splits(seed: int) -> Splits:
    return image_splits(load_cifar10(), VAL_FRACTION, seed, SHAPE)


def flip_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augmentation: horizontal flip of a random half of the images, then a shift of up to 2 pixels
    (circular, the same for the whole batch)."""
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(-1), x)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


CIFAR10 = register_task(
    Task(
        name="cifar10",
        kind="classification",
        input_shape=SHAPE,
        outputs=10,
        metric="accuracy",
        direction="maximize",
        target=0.80,
        epochs=30,
        batch_size=128,
        loader=load_cifar10_splits,
        loss="cross_entropy",
        augment=flip_shift,
        download=True,
        description="CIFAR-10 (downloaded on first use, opt-in): 45,000 train / 5,000 val / 10,000 "
        "test (the official test batch), 32x32 colour, 10 classes.",
    )
)
