"""Known properties of the built-in tasks that need no network (sizes, dtypes, how each split and
scaling is made, baselines). What every registered task must satisfy (shapes, label ranges,
disjoint splits, a deterministic load, a consistent metric scale) is the generated task contract,
``suite/checks/test_task_contract.py``; which families each task offers is ``test_family_fit.py``."""

import numpy as np
import pytest
import torch

from suite.families import families_for
from tasks import get_task
from tasks.base import Split

CATALOGUE = {
    "breast-cancer": dict(sizes={"train": 341, "val": 114, "test": 114}, shape=(30,), y=torch.long,
                          metric="auroc", direction="maximize", kind="classification", loss="bce"),
    "diabetes": dict(sizes={"train": 265, "val": 89, "test": 88}, shape=(10,), y=torch.float32,
                     metric="r2", direction="maximize", kind="regression", loss="mse"),
    "sunspots": dict(sizes={"train": 209, "val": 40, "test": 40}, shape=(1, 20), y=torch.float32,
                     metric="rmse", direction="minimize", kind="forecasting", loss="mse"),
    "adding": dict(sizes={"train": 10_000, "val": 1_000, "test": 1_000}, shape=(2, 100), y=torch.float32,
                   metric="mse", direction="minimize", kind="regression", loss="mse"),
}


def _rows(split: Split) -> set[bytes]:
    return {row.numpy().tobytes() for row in split.x}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_catalogue_sizes_shapes_dtypes_and_judging(name):
    spec, task = CATALOGUE[name], get_task(name)
    assert (task.kind, task.metric, task.direction, task.loss) == (
        spec["kind"], spec["metric"], spec["direction"], spec["loss"])
    assert task.input_shape == spec["shape"] and task.outputs == 1 and "mlp" in families_for(task)
    assert not task.download
    splits = task.load()
    assert splits.sizes() == spec["sizes"]
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == spec["y"]
        assert tuple(split.x.shape[1:]) == task.input_shape and split.y.shape == (len(split),)
        assert torch.isfinite(split.x).all()


#: the tasks whose split is drawn from the seed (sunspots splits in time, whatever the seed)
RANDOM_SPLITS = ("digits", "mnist1d", "breast-cancer", "diabetes", "adding", "digits-transfer", "ring-gan")


@pytest.mark.parametrize("name", RANDOM_SPLITS)
def test_the_split_depends_on_the_seed_and_the_standard_one_is_memoized(name):
    task = get_task(name)
    other = task.loader.__wrapped__(task.split_seed + 1)  # bypass the in-process cache
    assert not torch.equal(task.load().val.x, other.val.x)
    assert task.load() is task.load(task.split_seed)


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("digits", {"train": 1078, "val": 359, "test": 360}),
     ("mnist1d", {"train": 3500, "val": 500, "test": 1000})],
)
def test_digits_and_mnist1d_sizes_dtypes_and_classes(name, sizes):
    task = get_task(name)
    splits = task.load()
    assert splits.sizes() == sizes
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.long
        assert set(split.y.unique().tolist()) == set(range(task.outputs))  # every class in every split


def test_digits_splits_are_stratified():
    splits = get_task("digits").load()
    counts = np.bincount(splits.test.y.numpy())
    assert counts.min() >= 34 and counts.max() <= 38


@pytest.mark.parametrize("name", ["breast-cancer", "diabetes"])
def test_standardized_with_train_statistics(name):
    splits = get_task(name).load()
    assert torch.allclose(splits.train.x.mean(0), torch.zeros(splits.train.x.shape[1]), atol=1e-5)
    assert torch.allclose(splits.train.x.std(0, unbiased=False), torch.ones(splits.train.x.shape[1]),
                          atol=1e-4)
    assert splits.val.x.mean(0).abs().max() > 1e-3  # val is not standardized on its own statistics


def test_breast_cancer_positive_class_is_malignant():
    from sklearn.datasets import load_breast_cancer

    splits = get_task("breast-cancer").load()
    y = torch.cat([splits.train.y, splits.val.y, splits.test.y])
    assert int(y.sum()) == int((load_breast_cancer().target == 0).sum()) == 212


def test_diabetes_target_is_standardized_and_documented_scale():
    from tasks.diabetes import TARGET_STD

    y = get_task("diabetes").load().train.y
    assert abs(float(y.mean())) < 1e-5 and abs(float(y.std(unbiased=False)) - 1) < 1e-4
    from sklearn.datasets import load_diabetes

    from tasks.diabetes import random_split

    train, _, _ = random_split(442, (0.6, 0.2, 0.2), 0)
    assert abs(load_diabetes(scaled=False).target[train].std() - TARGET_STD) < 0.01


# ------------------------------------------------------------------------------------- sunspots


def test_sunspots_split_is_in_time_without_overlap():
    from tasks import sunspots as s

    years, values = s.series()
    assert (years[0], years[-1], len(years)) == (1700, 2008, 309)
    w = s.windows(years, values)
    train, val, test = (w["year"][m] for m in s.split_masks(w["year"]))
    assert (train.min(), train.max(), val.min(), val.max(), test.min(), test.max()) == (
        1720, 1928, 1929, 1968, 1969, 2008)
    # windows really are the 20 years before their target
    i = 5
    assert np.allclose(w["x"][i] * w["std"] + w["mean"], values[i : i + s.WINDOW])
    assert np.isclose(w["y"][i] * w["std"] + w["mean"], values[i + s.WINDOW])
    splits = get_task("sunspots").load()
    assert not (_rows(splits.train) & _rows(splits.test))
    assert torch.equal(splits.val.x[1:, 0, -1], splits.val.y[:-1])  # consecutive years


def test_sunspots_scaling_uses_training_years_only():
    from tasks import sunspots as s

    years, values = s.series()
    base = s.make_splits(years, values)
    changed = values.copy()
    changed[years > s.TRAIN_LAST_YEAR] *= 10  # any change to validation/test years...
    other = s.make_splits(years, changed)
    assert torch.equal(base.train.x, other.train.x) and torch.equal(base.train.y, other.train.y)
    w = s.windows(years, values)
    assert np.isclose(w["std"], values[years <= s.TRAIN_LAST_YEAR].std())
    assert abs(w["std"] - s.TRAIN_STD) < 1e-3  # the documented unit
    changed = values.copy()
    changed[years == 1900] += 50  # ...while a training year moves the scaler
    assert not torch.equal(base.test.y, s.make_splits(years, changed).test.y)


def test_sunspots_naive_baseline_is_recorded():
    from tasks import sunspots as s

    task = get_task("sunspots")
    assert task.baselines == {"naive_last_value": s.NAIVE_RMSE}
    assert abs(s.naive_rmse(task.load()) - s.NAIVE_RMSE) < 1e-4
    assert task.summary()["baselines"] == {"naive_last_value": s.NAIVE_RMSE}
    assert task.target < s.NAIVE_RMSE


# ---------------------------------------------------------------------------------------- adding


def test_adding_samples_follow_the_definition():
    splits = get_task("adding").load()
    x, y = splits.test.x, splits.test.y
    values, markers = x[:, 0], x[:, 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :50].sum(1) == 1).all() and (markers[:, 50:].sum(1) == 1).all()
    assert torch.allclose((values * markers).sum(1), y)


def test_adding_predict_one_baseline_on_test_set():
    task = get_task("adding")
    y = task.load().test.y
    mse = float(torch.mean((y - 1) ** 2))
    assert abs(mse - 1 / 6) < 0.015  # variance of the sum of two U(0, 1)
    assert task.baselines["predict_one"] == pytest.approx(mse, abs=1e-5)
    assert task.target < mse


def test_adding_task_factory_builds_other_lengths():
    from tasks.adding import LENGTH, adding_task

    assert LENGTH == 100 and get_task("adding").input_shape == (2, 100)
    task = adding_task(20)
    assert task.name == "adding-20" and task.input_shape == (2, 20)
    split = task.loader.__wrapped__(0).val
    assert split.x.shape == (1000, 2, 20)
    assert abs(task.baselines["predict_one"] - 1 / 6) < 0.02
    with pytest.raises(ValueError, match="length must be >= 2"):
        adding_task(1)


# ------------------------------------------------------------------------------ one epoch of mlp


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_one_epoch_of_mlp(name):
    from suite.train import TrialConfig, train

    record = train(TrialConfig(task=name, family="mlp", epochs=1, device="cpu",
                               params={"width": 32, "depth": 1}))
    assert record["status"] == "complete", record.get("error")
    value = record["primary"]["value"]
    assert value is not None and np.isfinite(value)
    assert record["task_info"]["baselines"] == dict(get_task(name).baselines)

