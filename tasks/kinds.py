"""Task contracts of the kinds that need more than train/val/test tensors.

* ``generation``: the task owns the score of generated samples against real ones
  (:attr:`GenerationTask.score`), so every generator is judged the same way, and states the range
  its values lie in (:attr:`GenerationTask.value_range`) so generators can squash into it.
* ``transfer``: the task also owns the labelled source data to pre-train on
  (:attr:`TransferTask.source`); train/val/test are the few-label target task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from tasks.base import Split, Task

Score = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


@dataclass(frozen=True)
class GenerationTask(Task):
    """A ``generation`` task: learn the distribution of the training inputs.

    Args:
        score: ``score(generated, real) -> {metric: value}`` for ``generated`` and ``real`` input
            tensors of shape ``(N, *input_shape)`` (a family generates as many samples as the split
            has); the keys include the task's ``metric``.
        value_range: ``(low, high)`` bounds of every input value, or ``None`` when unbounded.
    """

    score: Score | None = field(default=None, repr=False, compare=False)
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "generation" or self.score is None:
            raise ValueError(f"GenerationTask {self.name!r} needs kind 'generation' and a score")


@dataclass(frozen=True)
class TransferTask(Task):
    """A ``transfer`` task: pre-train on a labelled source set, then learn the target splits.

    Args:
        source: ``source(seed) -> Split`` of the source inputs (same ``input_shape``) and labels
            ``0..source_outputs-1``; the task's ``split_seed`` is passed.
        source_outputs: number of source classes.
    """

    source: Callable[[int], Split] | None = field(default=None, repr=False, compare=False)
    source_outputs: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "transfer" or self.source is None or self.source_outputs < 1:
            raise ValueError(f"TransferTask {self.name!r} needs kind 'transfer', a source and "
                             f"source_outputs >= 1, got {self.source_outputs=}")

    def load_source(self) -> Split:
        """The source split (fixed by ``split_seed``)."""
        return self.source(self.split_seed)
