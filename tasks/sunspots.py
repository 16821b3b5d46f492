"""``sunspots``: one-step-ahead forecasting of statsmodels' shipped yearly sunspot numbers.

The series (``statsmodels.datasets.sunspots``) holds the yearly mean sunspot number of 1700-2008
(309 values). A sample is a window of :data:`WINDOW` consecutive years as input, shape
``(1, WINDOW)``, and the next year's value as target: 289 samples, targets 1720-2008.

The split is in time, by the target's year, so no target year is in two splits and every
validation/test target lies after every training target: train targets 1720-1928 (209), validation
1929-1968 (40), test 1969-2008 (40). Validation and test inputs reach back into earlier years, as a
forecaster's inputs do; that is past data, not leakage. The split does not depend on the seed.

Scaling: every value (inputs and targets) is standardized with the mean and standard deviation of
the years 1700-1928 only (the values that training samples contain); validation and test values
never influence it. The loss is MSE and the metrics (``rmse``, primary, minimized; ``mse``,
``mae``, ``r2``) are in these standardized units: multiply ``rmse`` by :data:`TRAIN_STD`
(about 33.9 sunspots) for the original units.

Baseline (``Task.baselines``): the naive forecast "next year = this year" has test RMSE
:data:`NAIVE_RMSE` in the same units (about 29.9 sunspots); a ridge regression on the window
reaches about 0.55, which sets the target 0.6.
"""

from __future__ import annotations

import numpy as np
import torch

from tasks.base import Splits, Task, as_split, cached_npz, memoize, register_task

WINDOW = 20
FIRST_YEAR = 1700
TRAIN_LAST_YEAR = 1928  # last training target year; scaling statistics use the years up to it
VAL_LAST_YEAR = 1968  # validation targets 1929-1968, test targets 1969-2008
TRAIN_STD = 33.945  # std of the 1700-1928 values, in sunspot numbers
NAIVE_RMSE = 0.8805  # test RMSE of the last-value forecast, standardized units (29.89 sunspots)


def _read_series() -> dict[str, np.ndarray]:
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    return {"year": data["YEAR"].to_numpy().astype(np.int64),
            "value": data["SUNACTIVITY"].to_numpy().astype(np.float64)}


def series() -> tuple[np.ndarray, np.ndarray]:
    """``(years, values)`` of the yearly series (cached on disk after the first read)."""
    d = cached_npz("sunspots", "statsmodels.datasets.sunspots yearly", _read_series)
    return d["year"], d["value"]


def windows(years: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    """Scaled windows ``x`` (n, WINDOW), next values ``y`` (n,), target years, and the scaler.

    The mean and std come from the values of the years up to :data:`TRAIN_LAST_YEAR` only.
    """
    fit = years <= TRAIN_LAST_YEAR
    mean, std = values[fit].mean(), values[fit].std()
    z = (values - mean) / std
    full = np.lib.stride_tricks.sliding_window_view(z, WINDOW + 1)
    return {"x": full[:, :-1], "y": full[:, -1], "year": years[WINDOW:], "mean": mean, "std": std}


def split_masks(target_years: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks of the train / val / test samples by target year."""
    train = target_years <= TRAIN_LAST_YEAR
    val = (target_years > TRAIN_LAST_YEAR) & (target_years <= VAL_LAST_YEAR)
    return train, val, target_years > VAL_LAST_YEAR


def naive_rmse(splits: Splits) -> float:
    """Test RMSE of forecasting each target with the window's last value."""
    x, y = splits.test.x[:, 0, -1], splits.test.y
    return float(torch.sqrt(torch.mean((y - x) ** 2)))


def make_splits(years: np.ndarray, values: np.ndarray) -> Splits:
    """The standard splits of any yearly series laid out like the sunspots."""
    w = windows(years, values)
    parts = split_masks(w["year"])
    return Splits(*(as_split(w["x"][m].astype(np.float32), w["y"][m].astype(np.float32),
                             (1, WINDOW), y_dtype=torch.float32) for m in parts))


@memoize
def load_sunspots_splits(seed: int) -> Splits:
    del seed  # a split in time has no randomness
    return make_splits(*series())


SUNSPOTS = register_task(
    Task(
        name="sunspots",
        kind="forecasting",
        input_shape=(1, WINDOW),
        outputs=1,
        metric="rmse",
        direction="minimize",
        target=0.6,
        epochs=30,
        batch_size=32,
        loader=load_sunspots_splits,
        loss="mse",
        baselines={"naive_last_value": NAIVE_RMSE},
        description="statsmodels yearly sunspots 1700-2008, next year from the previous 20: "
        "209 train / 40 val / 40 test by target year (1720-1928 / 1929-1968 / 1969-2008); "
        "standardized with 1700-1928 statistics (rmse in units of 33.9 sunspots).",
    )
)
