"""Generated from the task registry: every task keeps the task contract (``tasks/base.py``).

For every registered task (or, under :func:`suite.check.check_plugin`, every task the plug-in
registered):

* its declared scale is consistent: ideal, trivial baseline and target within the bounds, the
  target at least as good as every trivial predictor and no better than the ideal; a family fits it;
* every split is non-empty, holds float32 inputs of the declared ``input_shape`` and targets the
  task's kind can judge: class labels ``0..outputs-1`` (every class in the training split) for a
  kind scored on class probabilities, labels 0/1 for a kind scored on anomaly scores; the task's
  loss takes network outputs of shape ``(N, outputs)`` with the targets; its metric on random
  outputs is finite and within bounds; a generation task's own score of real data reaches its
  target; a transfer task's source split fits the same networks;
* no input is in two splits (nor in the source and the target of a transfer task);
* ``load()`` is deterministic: a second call, with a memoized loader's cache cleared, gives equal
  tensors.

A task that downloads its data is checked only when its files are cached: nothing is downloaded
here (``tasks/downloads.py`` is switched off; a plug-in that downloads with its own code would).
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from suite.checks import names
from suite.errors import SuiteError
from suite.families import FAMILIES, families_for, not_offered
from tasks import TASKS, Split, Splits, Task
from tasks.kinds import class_inputs, kind_of, score_inputs

TASK_NAMES = names("tasks")
PARTS = ("train", "val", "test")


def load(task: Task, monkeypatch: pytest.MonkeyPatch) -> Splits:
    """The task's standard splits; a download task whose files are not cached is skipped."""
    if not task.download:
        return task.load()
    from tasks import downloads

    def offline(url: str, dest) -> str:
        raise OSError("downloads are switched off in the contract tests")

    monkeypatch.setattr(downloads, "_download", offline)
    try:
        return task.load()
    except SuiteError as exc:
        pytest.skip(f"task {task.name!r} downloads its data, which is not cached ({exc})")


def source_of(task: Task) -> Split | None:
    """The source split of a transfer task (``tasks.kinds.TransferTask``), else ``None``."""
    return task.load_source() if callable(getattr(task, "load_source", None)) else None


def rows(x: torch.Tensor) -> list[bytes]:
    """One digest per input (its exact bytes), to find inputs shared by two splits."""
    flat = x.detach().cpu().contiguous().reshape(len(x), -1).numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def trained_with_its_loss(task: Task) -> bool:
    """Whether a fitting family trains on the task's own loss (the shared module; families with
    their own module, as a GAN or an autoencoder, train with their own objective)."""
    return any(FAMILIES.get(f).module is None for f in families_for(task))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_declares_a_consistent_scale_and_a_family_fits_it(name):
    task = TASKS.get(name)
    low, high = task.bounds
    assert low <= min(task.ideal, task.baseline) and max(task.ideal, task.baseline) <= high
    assert task.ideal != task.baseline, f"task {name!r}: ideal and baseline are both {task.ideal}"
    assert low <= task.target <= high, f"task {name!r}: target {task.target} outside the bounds {task.bounds}"
    assert not task.better(task.target, task.ideal), \
        f"task {name!r}: target {task.target} is better than the ideal {task.ideal} ({task.direction})"
    for label, value in {"baseline": task.baseline, **task.baselines}.items():
        assert low <= value <= high, f"task {name!r}: {label} {value} outside the bounds {task.bounds}"
        assert not task.better(value, task.target), \
            f"task {name!r}: the trivial predictor {label} ({value}) beats the target {task.target}"
    summary = json.loads(json.dumps(task.summary()))  # JSON-able, as records and `suite list` need
    assert summary["scale"]["ideal"] == task.ideal and summary["name"] == name
    assert "families" not in summary, "which families fit is asked of the family registry"
    assert families_for(task), (f"no registered family fits task {name!r}: "
                                + "; ".join(f"{f} {why}" for f, why in not_offered(task).items()))
    collection = task.metric_collection()
    if kind_of(task).metrics is not None:
        assert task.metric in collection, \
            f"task {name!r}: its kind's metrics ({', '.join(collection)}) do not include {task.metric!r}"


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_splits_have_the_declared_shape_and_judgeable_targets(name, monkeypatch):
    task = TASKS.get(name)
    splits = load(task, monkeypatch)
    kind = kind_of(task)
    classes = max(task.outputs, 2)
    for part in PARTS:
        split, where = getattr(splits, part), f"task {name!r}, {part} split"
        assert len(split) > 0, f"{where} is empty"
        assert split.x.dtype == torch.float32, f"{where}: inputs are {split.x.dtype}, not float32"
        assert tuple(split.x.shape[1:]) == tuple(task.input_shape), \
            f"{where}: inputs of shape {tuple(split.x.shape[1:])}, but the task declares {task.input_shape}"
        assert torch.isfinite(split.x).all(), f"{where}: non-finite inputs"
        if split.y.is_floating_point():
            assert torch.isfinite(split.y).all(), f"{where}: non-finite targets"
        if kind.metric_inputs is class_inputs:
            assert not split.y.is_floating_point(), f"{where}: class labels are {split.y.dtype}"
            labels = sorted(split.y.unique().tolist())
            assert labels[0] >= 0 and labels[-1] < classes, \
                f"{where}: labels {labels[0]}..{labels[-1]} outside 0..{classes - 1} (outputs={task.outputs})"
            if part == "train":
                assert labels == list(range(classes)), \
                    f"{where}: classes {sorted(set(range(classes)) - set(labels))} never occur in training"
        elif kind.metric_inputs is score_inputs:
            assert set(split.y.unique().tolist()) <= {0, 1}, f"{where}: anomaly labels other than 0/1"
    if kind.metrics is not None:
        for part in ("val", "test"):
            assert task.scorable(getattr(splits, part).y), f"task {name!r}: the {part} split cannot be scored"
        y = splits.test.y
        outputs = torch.randn(len(y), task.outputs, generator=torch.Generator().manual_seed(0))
        if trained_with_its_loss(task):
            loss = task.loss_function()(outputs, y)
            assert loss.ndim == 0 and torch.isfinite(loss), \
                f"task {name!r}: loss {task.loss!r} of outputs ({len(y)}, {task.outputs}) gives {loss}"
        collection = task.metric_collection()
        collection.update(*task.metric_inputs(outputs, y))
        value = float(collection.compute()[task.metric])
        low, high = task.bounds
        assert math.isfinite(value) and low <= value <= high, \
            f"task {name!r}: {task.metric} of random outputs is {value}, outside the bounds {task.bounds}"
    score = getattr(task, "score", None)
    if kind.metrics is None and callable(score):  # a generation task judges samples itself
        value_range = getattr(task, "value_range", None)
        if value_range is not None:
            for part in PARTS:
                x = getattr(splits, part).x
                assert value_range[0] <= x.min() and x.max() <= value_range[1], \
                    f"task {name!r}, {part} split: inputs outside the declared value_range {value_range}"
        values = score(splits.val.x, splits.test.x)
        value = values.get(task.metric)
        assert value is not None and math.isfinite(value), \
            f"task {name!r}: its score gives {values}, no finite {task.metric!r}"
        assert task.has_reached_target({f"test/{task.metric}": value}, "test"), \
            (f"task {name!r}: real data (the val split) scores {task.metric}={value:.4g} against the test "
             f"split, which misses the target {task.target}: no generator could reach it")
    source = source_of(task)
    if source is not None:
        assert len(source) > 0 and tuple(source.x.shape[1:]) == tuple(task.input_shape), \
            f"task {name!r}: source inputs of shape {tuple(source.x.shape[1:])}, not {task.input_shape}"
        labels = source.y.unique().tolist()
        assert min(labels) >= 0 and max(labels) < task.source_outputs, \
            f"task {name!r}: source labels {min(labels)}..{max(labels)} outside 0..{task.source_outputs - 1}"


@pytest.mark.parametrize("name", TASK_NAMES)
def test_no_input_is_in_two_splits(name, monkeypatch):
    task = TASKS.get(name)
    splits = load(task, monkeypatch)
    parts = {part: set(rows(getattr(splits, part).x)) for part in PARTS}
    source = source_of(task)
    if source is not None:
        parts["source"] = set(rows(source.x))
    seen: list[str] = []
    for part, digests in parts.items():
        for earlier in seen:
            shared = len(digests & parts[earlier])
            assert not shared, \
                f"task {name!r}: {shared} inputs of the {part} split are also in the {earlier} split"
        seen.append(part)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_load_is_deterministic(name, monkeypatch):
    task = TASKS.get(name)
    first = load(task, monkeypatch)
    clear = getattr(task.loader, "cache_clear", None)  # tasks.base.memoize: a second call is a cache hit
    if clear is not None:
        clear()
    second = task.load(task.split_seed)
    differ = [f"{part}.{field}" for part in PARTS for field in ("x", "y")
              if not torch.equal(getattr(getattr(first, part), field), getattr(getattr(second, part), field))]
    assert not differ, f"task {name!r}: two calls of load() give different {', '.join(differ)}"
    source = source_of(task)
    if source is not None:
        again = source_of(task)
        same = torch.equal(source.x, again.x) and torch.equal(source.y, again.y)
        assert same, f"task {name!r}: two calls of load_source() give different splits"
