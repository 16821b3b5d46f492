"""``ring-gan``: learn a 2-D mixture of 8 Gaussians on a ring (the classic mode-collapse test).

Data: 8 equally weighted modes with centres on a circle of radius ``RADIUS`` = 2 at angles
``2 pi k / 8`` and isotropic standard deviation ``STD`` = 0.05, drawn with numpy's
``default_rng(split_seed)`` (``split_seed`` 0): 8,000 train, 2,000 validation and 2,000 test points
(the first, next and last draws). Inputs have shape (2,); ``y`` is the mode index of each point
(not used by a generator).

Score of ``N`` generated points (a family generates as many as the split it is scored on has):
each point is assigned to its nearest centre and counts as *high quality* if it lies within
3 std of it. ``modes`` = number of modes (of 8) that receive at least ``MIN_FRACTION`` = 1% of
the generated points as high-quality points (20 of 2,000; a fair share is 12.5%), the primary
metric (maximize, target 8); ``quality`` = fraction of generated points that are high quality
(real data: 0.99).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tasks.base import GenerationTask, Splits, as_split, memoize, register_task

MODES = 8
RADIUS = 2.0
STD = 0.05
MIN_FRACTION = 0.01
SIZES = (8000, 2000, 2000)


def centres() -> torch.Tensor:
    """The ``(8, 2)`` mode centres."""
    angles = torch.arange(MODES, dtype=torch.float64) * (2 * math.pi / MODES)
    return RADIUS * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


@memoize
def load_ring_splits(seed: int) -> Splits:
    rng = np.random.default_rng(seed)
    n = sum(SIZES)
    mode = rng.integers(0, MODES, n)
    x = centres().numpy()[mode] + STD * rng.standard_normal((n, 2))
    edges = np.cumsum((0, *SIZES))
    parts = [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return Splits(*(as_split(x[p], mode[p], (2,)) for p in parts))


def score_ring(generated: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """``modes`` covered (of 8) and ``quality`` (fraction within 3 std of a mode)."""
    points = generated.detach().reshape(len(generated), 2).double().cpu()
    dist = torch.cdist(points, centres())
    nearest, mode = dist.min(dim=1)
    good = nearest <= 3 * STD
    counts = torch.bincount(mode[good], minlength=MODES)
    needed = max(1, math.ceil(MIN_FRACTION * len(points)))
    return {
        "modes": float((counts >= needed).sum()),
        "quality": float(good.double().mean()) if len(points) else 0.0,
    }


RING_GAN = register_task(
    GenerationTask(
        name="ring-gan",
        kind="generation",
        input_shape=(2,),
        outputs=2,
        metric="modes",
        direction="maximize",
        target=8.0,
        ideal=8.0,
        baseline=0.0,
        bounds=(0.0, 8.0),
        epochs=60,
        batch_size=128,
        loader=load_ring_splits,
        loss="bce",
        score=score_ring,
        description="2-D ring of 8 Gaussians (radius 2, std 0.05): 8,000 / 2,000 / 2,000 points; "
        "modes covered (>= 1% of samples within 3 std) and quality (fraction within 3 std).",
    )
)
