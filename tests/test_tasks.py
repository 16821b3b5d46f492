import numpy as np
import pytest
import torch

from tasks import TASKS, get_task
from tasks.base import Split


def _rows(split: Split) -> set[bytes]:
    return {row.numpy().tobytes() for row in split.x}


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("digits", {"train": 1078, "val": 359, "test": 360}),
     ("mnist1d", {"train": 3500, "val": 500, "test": 1000})],
)
def test_split_sizes_shapes_and_types(name, sizes):
    task = get_task(name)
    splits = task.load()
    assert splits.sizes() == sizes
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.long
        assert tuple(split.x.shape[1:]) == task.input_shape
        assert set(split.y.unique().tolist()) == set(range(task.outputs))


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_splits_do_not_overlap(name):
    splits = get_task(name).load()
    train, val, test = _rows(splits.train), _rows(splits.val), _rows(splits.test)
    assert not (train & val) and not (train & test) and not (val & test)


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_split_is_fixed_by_seed(name):
    task = get_task(name)
    a, b = task.loader.__wrapped__(0), task.loader.__wrapped__(0)  # bypass the in-process cache
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    c = task.loader.__wrapped__(1)
    assert not torch.equal(a.val.x, c.val.x)
    assert task.load() is task.load(task.split_seed)


def test_splits_are_stratified():
    splits = get_task("digits").load()
    counts = np.bincount(splits.test.y.numpy())
    assert counts.min() >= 34 and counts.max() <= 38


def test_target_check_follows_direction():
    task = get_task("mnist1d")
    assert task.has_reached_target({"val/accuracy": 0.9})
    assert not task.has_reached_target({"val/accuracy": 0.5})
    assert not task.has_reached_target({"val/accuracy": float("nan")})
    assert not task.has_reached_target({})


def test_task_summaries_are_complete():
    for _, task in TASKS.items():
        s = task.summary()
        assert s["families"] and s["metric"] and s["direction"] in ("maximize", "minimize")


def test_corrupt_cache_file_is_regenerated(tmp_path, monkeypatch):
    from tasks.base import cached_npz

    monkeypatch.setenv("SUITE_CACHE", str(tmp_path))
    first = cached_npz("demo", "k", lambda: {"a": np.arange(3)})
    (path,) = tmp_path.glob("demo-*.npz")
    path.write_bytes(b"not a zip file")
    again = cached_npz("demo", "k", lambda: {"a": np.arange(3)})
    assert np.array_equal(first["a"], again["a"])
