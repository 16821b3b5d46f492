"""``mnist1d``: MNIST-1D generated locally by the ``mnist1d`` package (no download).

``make_dataset(get_dataset_args())`` gives 4,000 training and 1,000 test signals of length 40 in
10 classes. The standard test set is kept as is; 500 validation signals are carved from the 4,000
training ones (stratified, ``split_seed`` 0), leaving 3,500 for training. Inputs have shape
(1, 40): one channel, 40 time steps. The generated arrays are cached on disk.
"""

from __future__ import annotations

import numpy as np

from tasks.base import Splits, Task, as_split, cached_npz, memoize, register_task, stratified_split

SHAPE = (1, 40)
VAL_SIZE = 500


def _generate() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    return {k: data[k] for k in ("x", "y", "x_test", "y_test")}


def raw_arrays() -> dict[str, np.ndarray]:
    """The generated MNIST-1D arrays (default generator args), from the cache when present."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    key = repr(sorted(vars(args).items()) if hasattr(args, "__dict__") else args)
    return cached_npz("mnist1d", key, _generate)


@memoize
def load_mnist1d_splits(seed: int) -> Splits:
    d = raw_arrays()
    x, y = d["x"].astype(np.float32), d["y"].astype(np.int64)
    val_frac = VAL_SIZE / len(y)
    val, train = stratified_split(y, (val_frac, 1 - val_frac), seed)
    test = as_split(d["x_test"].astype(np.float32), d["y_test"].astype(np.int64), SHAPE)
    return Splits(as_split(x[train], y[train], SHAPE), as_split(x[val], y[val], SHAPE), test)


def jitter(x, generator):
    """Augmentation for signals: circular shift by up to 2 steps, scale 0.9..1.1, noise std 0.05."""
    import torch

    shift = int(torch.randint(-2, 3, (1,), generator=generator))
    scale = 0.9 + 0.2 * torch.rand((len(x),) + (1,) * (x.dim() - 1), generator=generator)
    noise = torch.randn(x.shape, generator=generator)
    return torch.roll(x, shift, dims=-1) * scale.to(x.device) + 0.05 * noise.to(x.device)


MNIST1D = register_task(
    Task(
        name="mnist1d",
        kind="classification",
        input_shape=SHAPE,
        outputs=10,
        metric="accuracy",
        direction="maximize",
        target=0.85,
        epochs=30,
        batch_size=64,
        loader=load_mnist1d_splits,
        loss="cross_entropy",
        augment=jitter,
        description="MNIST-1D generated locally: 3,500 train / 500 val / 1,000 test, length 40.",
    )
)
