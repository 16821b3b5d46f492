"""The task type itself (``tasks/base.py``, ``tasks/kinds.py``): the target check, metric scales,
kinds and the data cache. What every registered task must satisfy is the generated task contract
(``suite/checks/test_task_contract.py``); known properties of each built-in task are in
``test_tasks_builtin.py``."""

import numpy as np
import pytest

from tasks import TASKS, get_task


def test_target_check_follows_direction():
    task = get_task("mnist1d")
    assert task.has_reached_target({"val/accuracy": 0.9})
    assert not task.has_reached_target({"val/accuracy": 0.5})
    assert not task.has_reached_target({"val/accuracy": float("nan")})
    assert not task.has_reached_target({})


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


def test_every_kind_names_a_known_loss_and_every_task_a_registered_kind():
    from tasks.kinds import LOSSES, TASK_KINDS

    assert {t.kind for _, t in TASKS.items()} <= set(TASK_KINDS.names())
    for name, kind in TASK_KINDS.items():
        assert kind.loss in LOSSES, name
        assert kind.trains_as is None or kind.trains_as in TASK_KINDS, name
