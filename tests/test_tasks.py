import numpy as np
import pytest
import torch

from suite.families import families_for
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
        assert "families" not in s, "a task is a plain value: which families fit is asked of the registry"
        assert families_for(task) and s["metric"] and s["direction"] in ("maximize", "minimize")


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_declares_its_metric_scale(name):
    """The report's normalized regret needs ideal != baseline, and intervals need the bounds."""
    task = TASKS.get(name)
    low, high = task.bounds
    assert low <= min(task.ideal, task.baseline) and max(task.ideal, task.baseline) <= high
    assert task.ideal != task.baseline and low <= task.target <= high
    # the target is at least as good as the trivial predictor
    assert not task.better(task.baseline, task.target)
    assert task.summary()["scale"]["ideal"] == task.ideal


def test_report_test_data_uses_the_declared_scales():
    from tests.report_data import SCALES

    for name, scale in SCALES.items():
        assert TASKS.get(name).scale() == pytest.approx(scale), name


def test_a_metric_without_a_known_scale_must_declare_one():
    from tasks.base import Task

    kw = dict(name="x", kind="regression", input_shape=(1,), outputs=1, metric="mape", direction="minimize",
              target=0.1, epochs=1, batch_size=1, loader=lambda seed: None)
    with pytest.raises(ValueError, match="no known scale"):
        Task(**kw)
    assert Task(**kw, ideal=0.0, baseline=1.0, bounds=(0.0, float("inf"))).scale()["high"] is None
    with pytest.raises(ValueError, match="within bounds"):
        Task(**kw, ideal=0.0, baseline=2.0, bounds=(0.0, 1.0))


def test_corrupt_cache_file_is_regenerated(tmp_path, monkeypatch):
    from tasks.base import cached_npz

    monkeypatch.setenv("SUITE_CACHE", str(tmp_path))
    first = cached_npz("demo", "k", lambda: {"a": np.arange(3)})
    (path,) = tmp_path.glob("demo-*.npz")
    path.write_bytes(b"not a zip file")
    again = cached_npz("demo", "k", lambda: {"a": np.arange(3)})
    assert np.array_equal(first["a"], again["a"])
