"""Batches as index slices of tensors that already live on the training device.

For small datasets this replaces ``DataLoader(TensorDataset)``: no per-sample collation, no worker
processes, no host-to-device copy per step. Figures quoted by issue 2 (not re-measured here): a
40-256-256-10 MLP on 4,000 samples, batch 64, 20 epochs: 6.1 s through Lightning with a DataLoader,
3.0 s with index slices, 2.4 s as a bare PyTorch loop; `suite perf` measures the current gap.
Lightning accepts any iterable with ``__len__`` as a dataloader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from tasks.base import Split

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class IndexBatches:
    """Iterate over ``(x, y)`` mini-batches of a split.

    Args:
        split: tensors on the device where training runs.
        batch_size: samples per batch; the last batch may be smaller (nothing is dropped).
        shuffle: draw a new permutation every epoch from a generator seeded with ``seed``,
            so the batch order is the same for the same seed.
        seed: seed of the permutation generator.
        augment: optional transform applied to each training batch's inputs.

    Under DDP every rank builds the same ``IndexBatches`` (same seed, so the same permutation) and
    :meth:`set_rank` makes rank ``r`` of ``w`` take the samples ``r, r + w, ...`` of each global
    batch: ``w`` processes do the work of one at the same global batch size.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
        self.x, self.y = split.x, split.y
        self.batch_size = min(batch_size, len(split))
        self.shuffle = shuffle
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)
        self.seed = seed
        self.rank, self.world = 0, 1
        self.augment_generator = self.generator

    def set_rank(self, rank: int, world: int) -> None:
        """Shard every batch across ``world`` processes; this process is ``rank`` (0-based).

        The number of batches is unchanged, so every rank takes the same number of steps. A batch
        smaller than ``world`` (a short last batch) gives the ranks past its end one repeated sample.
        Augmentation draws from a per-rank generator, so the shared permutation stays in step.
        """
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, world) and world >= 1, got {rank=}, {world=}")
        self.rank, self.world = rank, world
        self.augment_generator = (self.generator if world == 1
                                  else torch.Generator().manual_seed(self.seed * 1009 + 1 + rank))

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of the global batch ``idx``."""
        if self.world == 1:
            return idx
        part = idx[self.rank :: self.world]
        return part if len(part) else idx[self.rank % len(idx) :][:1]

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, b = len(self.x), self.batch_size
        if self.shuffle or self.world > 1:
            order = (torch.randperm(n, generator=self.generator) if self.shuffle
                     else torch.arange(n)).to(self.x.device)
            for start in range(0, n, b):
                idx = self.shard(order[start : start + b])
                x = self.x[idx]
                if self.augment is not None:
                    x = self.augment(x, self.augment_generator)
                yield x, self.y[idx]
        else:
            for start in range(0, n, b):
                yield self.x[start : start + b], self.y[start : start + b]
