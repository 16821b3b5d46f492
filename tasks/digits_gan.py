"""``digits-gan``: generate 8x8 digits; scored by a Frechet distance on a frozen digits classifier.

Data: the ``digits`` task's split (scikit-learn 8x8 digits, pixels in [0, 1], shape (1, 8, 8);
1,078 train / 359 validation / 360 test, stratified, ``split_seed`` 0). ``y`` holds the digit but a
generator does not use it.

Metric ``fd`` (minimize): the Frechet distance between Gaussians fitted to the features of the
generated and of the real images of a split (as many generated images as the split has), like FID
but with a small classifier in place of Inception: an MLP 64-128-64-10 (ReLU) trained by this
module on the training split only (Adam 1e-3, batch 64, 40 epochs, seed 0, off the trial's random
state; 97.5% test accuracy), frozen, and cached in ``$SUITE_CACHE``
(``digits-gan-features-<hash>.pt``); the features are its 64 penultimate ReLU units. Reference
values against the test split: 360 real training images 1.4 (the floor at this sample size), the
validation images 0.9, 360 uniform-noise images (``torch.rand``, generator seed 0) 88.9 (the
task's ``baselines``), the mean training image (+ noise 0.01) 144. Target 20.
"""

from __future__ import annotations

import functools
import hashlib
import os

import numpy as np
import torch
from torch import nn

from tasks.base import GenerationTask, cache_dir, register_task
from tasks.digits import SHAPE, load_digits_splits

RECIPE = "mlp 64-128-64-10 relu; adam lr 1e-3; batch 64; 40 epochs; seed 0; digits train split 0"


def feature_classifier() -> nn.Sequential:
    """The untrained classifier; ``[:-1]`` of it maps images to the 64 features."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )


def _train_classifier() -> dict[str, torch.Tensor]:
    split = load_digits_splits(0).train
    # never disturb the trial's random state; train even when called under inference mode
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(0)
        net = feature_classifier()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        order = torch.Generator().manual_seed(0)
        for _ in range(40):
            perm = torch.randperm(len(split), generator=order)
            for start in range(0, len(split), 64):
                idx = perm[start : start + 64]
                loss = nn.functional.cross_entropy(net(split.x[idx]), split.y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return {k: v.detach().clone() for k, v in net.state_dict().items()}


@functools.cache
def feature_net() -> nn.Module:
    """The frozen feature extractor (CPU), trained once and cached on disk."""
    digest = hashlib.sha256(RECIPE.encode()).hexdigest()[:16]
    path = cache_dir() / f"digits-gan-features-{digest}.pt"
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
        net = feature_classifier()  # initialised off the trial's random state
        try:
            net.load_state_dict(torch.load(path, weights_only=True))
        except Exception:  # no cache file yet, or a corrupt one: train and (re)write it
            state = _train_classifier()
            net.load_state_dict(state)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
    net.eval().requires_grad_(False)
    return net[:-1]


def features(x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return feature_net()(x.detach().float().cpu().reshape(len(x), *SHAPE)).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the rows of ``a`` and of ``b``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``; ``nan`` for non-finite inputs."""
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s_b @ root  # same non-zero eigenvalues as S_a S_b, but symmetric
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt)


def score_digits(generated: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """``fd``: Frechet distance of classifier features of ``generated`` vs ``real`` images."""
    return {"fd": frechet_distance(features(generated), features(real))}


DIGITS_GAN = register_task(
    GenerationTask(
        name="digits-gan",
        kind="generation",
        input_shape=SHAPE,
        outputs=64,
        metric="fd",
        direction="minimize",
        target=20.0,
        epochs=300,
        batch_size=64,
        loader=load_digits_splits,
        loss="bce",
        score=score_digits,
        value_range=(0.0, 1.0),
        baselines={"uniform_noise": 88.9},
        description="8x8 digits (digits split 1,078 / 359 / 360): Frechet distance of generated vs "
        "real images on the features of a frozen digits classifier.",
    )
)
