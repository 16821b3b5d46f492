"""Statistics of the report, from runs to arms: pure functions from frames to frames (no plotting,
no I/O).

Conventions: an *arm* is (task, family, optimizer, regularizers); the numbers compared are those
of the CONFIRM runs (each study's chosen params re-run on the confirm seeds); ``direction`` is
``maximize`` or ``minimize`` per task.

* **Failures count** (:func:`confirm_trials`): a confirm run that failed or diverged is a result,
  scored at the task's worst value (:func:`worst_values`), never dropped.
* **Units** (:func:`confirm_units`): with ``studies >= 2`` an arm's independent unit is a study (the
  mean over its seeds), else a seed; intervals (:func:`reports.paired.sign_flip_interval`) and tests
  run over units, so tuning luck is inside them when there are several studies.
* **One row per arm** (:func:`arm_summary`): the test mean and its exact interval over units, the
  selection key (``val_mean``), failures and cost.

The rest of the statistics layer, pure functions too, decides what the sections phrase:
:mod:`reports.selection` (which arms are compared, which one is chosen), :mod:`reports.paired` and
:mod:`reports.findings` (paired tests and their sentences), :mod:`reports.ranks` (Friedman,
Nemenyi), :mod:`reports.profiles` (performance profiles on normalized regret), :mod:`reports.costs`
(footprint, Pareto front, devices), :mod:`reports.tuning` (tuning curves, selection optimism),
:mod:`reports.inventory` (what ran: provenance, studies) and :mod:`reports.health` (gradient flags).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from reports.paired import no_spread, sign_flip_interval
from reports.ranks import complete_subtable  # noqa: F401  (suite.plan imports it from here)

ARM = ["task", "family", "optimizer", "regularizers"]


def mean_ci(df: pd.DataFrame, by: Sequence[str], value: str, *, level: float = 0.95) -> pd.DataFrame:
    """Mean and two-sided Student-t confidence interval of ``value`` per group (descriptive; the
    report's intervals are :func:`exact_ci`).

    Args:
        df: one row per observation.
        by: grouping columns.
        value: the column to summarize; non-finite values are left out.
        level: confidence level in (0, 1), default 0.95.

    Returns:
        One row per group: ``by`` columns, ``n``, ``mean``, ``std`` (ddof 1), ``half_width``,
        ``ci_low``, ``ci_high``. With ``n < 2`` the interval is NaN (it does not exist).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level=}")
    by = list(by)
    rows = []
    clean = df[np.isfinite(pd.to_numeric(df[value], errors="coerce").astype(float))]
    for key, g in clean.groupby(by, sort=True, dropna=False):
        x = g[value].astype(float).to_numpy()
        n = len(x)
        mean = float(x.mean())
        std = float(x.std(ddof=1)) if n > 1 else math.nan
        half = float(sps.t.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)), "n": n, "mean": mean, "std": std,
                     "half_width": half, "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "std", "half_width", "ci_low", "ci_high"])


def exact_ci(df: pd.DataFrame, by: Sequence[str], value: str, *, level: float = 0.95) -> pd.DataFrame:
    """Mean and the inverted sign-flip interval (:func:`reports.paired.sign_flip_interval`) of
    ``value`` per group: distribution-free, infinite below 6 values at 95%, a point when every value
    is the same (``spread`` False).

    Returns:
        One row per group: ``by`` columns, ``n``, ``mean``, ``std`` (ddof 1, NaN for one value),
        ``spread``, ``ci_low``, ``ci_high``, ``half_width`` (half the interval's width).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level=}")
    by = list(by)
    cols = [*by, "n", "mean", "std", "spread", "ci_low", "ci_high", "half_width"]
    rows = []
    clean = df[np.isfinite(pd.to_numeric(df[value], errors="coerce").astype(float))]
    for key, g in clean.groupby(by, sort=True, dropna=False):
        x = g[value].astype(float).to_numpy()
        low, high = sign_flip_interval(x, level=level)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)), "n": len(x), "mean": float(x.mean()),
                     "std": float(x.std(ddof=1)) if len(x) > 1 else math.nan,
                     "spread": not no_spread(x), "ci_low": low, "ci_high": high,
                     "half_width": (high - low) / 2})
    return pd.DataFrame(rows, columns=cols)


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` is strictly better than ``b`` for ``direction``."""
    return a > b if direction == "maximize" else a < b


def of_chosen(trials: pd.DataFrame) -> pd.Series:
    """Rows not marked as belonging to a confirm candidate the arm does not stand for (``chosen``
    False; True or missing passes)."""
    if "chosen" not in trials:
        return pd.Series(True, index=trials.index)
    return trials["chosen"].map(lambda c: c is not False and c is not np.False_).astype(bool)


def worst_values(trials: pd.DataFrame) -> pd.Series:
    """Per task, the score a failed run gets: the worst bound of its metric where that is finite
    (accuracy 0; ``low`` for metrics to maximize, ``high`` to minimize); for an unbounded metric
    (RMSE) the worse of the task's trivial-predictor ``baseline`` and the worst finite value any of
    its trials reached, on test or validation. NaN when nothing is known."""
    out = {}
    for task, g in trials.groupby("task", sort=True):
        direction = g["direction"].dropna()
        low_is_good = len(direction) > 0 and direction.iloc[0] == "minimize"
        side = "high" if low_is_good else "low"
        bound = pd.to_numeric(g[side] if side in g else pd.Series(dtype=float), errors="coerce")
        bound = bound.astype(float).dropna()
        if len(bound) and np.isfinite(bound.iloc[0]):
            out[task] = float(bound.iloc[0])
            continue
        seen = pd.to_numeric(pd.concat([g["test"], g["val"], g.get("baseline", pd.Series(dtype=float))]),
                             errors="coerce").astype(float)
        seen = seen[np.isfinite(seen)]
        out[task] = (float(seen.max()) if low_is_good else float(seen.min())) if len(seen) else math.nan
    return pd.Series(out, dtype=float)


def confirm_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The confirm runs the report compares, failures included and scored.

    Confirm runs of the candidate each study stands for (``chosen``) that are results: COMPLETE, or
    FAIL with a record (``started_at``) that is a result (``result``: an interrupted run, or one
    the disk failed, is redone and is not a failed run). A run that failed or diverged, or has no
    finite test value, is ``failed``: its ``test`` and ``val`` are the task's worst value
    (:func:`worst_values`; ``test_raw`` keeps what was recorded). ``unit`` is the arm's independent
    unit: the study index with two or more studies, else the seed.
    """
    extra = ["failed", "test_raw", "unit"]
    if trials.empty:
        return trials.assign(**{c: pd.Series(dtype=object) for c in extra})
    ok = (trials["phase"] == "confirm") & trials["state"].isin(("COMPLETE", "FAIL")) & of_chosen(trials)
    if "started_at" in trials:
        ok &= trials["started_at"].notna() | (trials["state"] == "COMPLETE")
    if "result" in trials:
        ok &= trials["result"].map(lambda r: r is not False and r is not np.False_).astype(bool)
    t = trials[ok].copy()
    status = t["status"] if "status" in t else pd.Series(None, index=t.index, dtype=object)
    test = pd.to_numeric(t["test"], errors="coerce").astype(float)
    failed = status.isin(("failed", "diverged")) | (t["state"] == "FAIL") | ~np.isfinite(test)
    worst = t["task"].map(worst_values(trials)).astype(float)
    t["failed"] = failed.to_numpy()
    t["test_raw"] = test
    t["test"] = np.where(failed, worst, test)
    val = pd.to_numeric(t["val"], errors="coerce").astype(float)
    t["val"] = np.where(failed, worst, val)
    studies = pd.to_numeric(t.get("studies", pd.Series(1, index=t.index)), errors="coerce").fillna(1)
    index = pd.to_numeric(t.get("study_index", pd.Series(0, index=t.index)), errors="coerce").fillna(0)
    seed = t["seed"] if "seed" in t else pd.Series(range(len(t)), index=t.index)
    t["unit"] = np.where(studies >= 2, "study " + (index.astype(int) + 1).astype(str),
                         "seed " + seed.astype(str))
    return t


def confirm_failures(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm, its confirm runs (:func:`confirm_trials`) and how many of them failed.

    Returns:
        ``ARM`` columns, ``runs``, ``failed`` (one row per arm with at least one run).
    """
    cols = [*ARM, "runs", "failed"]
    runs = confirm_trials(trials)
    if runs.empty:
        return pd.DataFrame(columns=cols)
    out = runs.assign(failed=runs["failed"].astype(int)).groupby(ARM, dropna=False).agg(
        runs=("failed", "size"), failed=("failed", "sum")).reset_index()
    return out[cols]


def confirm_units(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, unit) of :func:`confirm_trials` runs: ``test`` and ``val`` (means over the
    unit's runs, failures scored), ``runs``, ``failed``."""
    cols = [*ARM, "unit", "test", "val", "runs", "failed"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    g = runs.assign(failed=runs["failed"].astype(int)).groupby([*ARM, "unit"], dropna=False)
    out = g.agg(test=("test", "mean"), val=("val", "mean"), runs=("test", "size"),
                failed=("failed", "sum")).reset_index()
    return out[cols]


def tune_best_val(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the tuning validation value of the params it stands for (what chose them within
    each study), averaged over its studies: the left side of :func:`selection_optimism`.

    Only tuning-phase data: trials with phase ``tune``, state ``COMPLETE`` and a finite ``val``. In
    each study it is the value of the tuning trial the study chose (``chosen`` True) when it chose
    one, otherwise its best. Test values are never read.

    Returns:
        One row per arm that has such a trial: ``ARM`` columns, ``tune_best_val``, ``n_tune`` (the
        complete tuning trials with a finite ``val``, all studies).
    """
    cols = [*ARM, "tune_best_val", "n_tune"]
    if trials.empty:
        return pd.DataFrame(columns=cols)
    val = pd.to_numeric(trials["val"], errors="coerce").astype(float)
    ok = (trials["phase"] == "tune") & (trials["state"] == "COMPLETE") & np.isfinite(val)
    t = trials[ok].assign(val=val[ok])
    if "study" not in t:
        t = t.assign(study="")
    rows = []
    for key, g in t.groupby(ARM, sort=True, dropna=False):
        direction = g["direction"].dropna()
        low = len(direction) > 0 and direction.iloc[0] == "minimize"
        values = []
        for _, s in g.groupby(["source", "study"] if "source" in g else ["study"], sort=True, dropna=False):
            chosen = s[s["chosen"].map(lambda c: c is True or c is np.True_)] if "chosen" in s else s.iloc[:0]
            best = s["val"].min() if low else s["val"].max()
            values.append(chosen["val"].iloc[0] if len(chosen) else best)
        rows.append({**dict(zip(ARM, key, strict=True)), "tune_best_val": float(np.mean(values)),
                     "n_tune": len(g)})
    return pd.DataFrame(rows, columns=cols)


def arm_summary(confirm: pd.DataFrame, *, level: float = 0.95,
                tuning: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per arm of the confirm runs (:func:`confirm_trials`, failures scored): test mean and
    exact interval over units, the selection key, failures and cost.

    Args:
        confirm: the confirm runs; they give every reported number.
        level: confidence level of the test-mean interval.
        tuning: a trial frame whose tuning trials give ``tune_best_val`` (:func:`tune_best_val`);
            ``None``: that column is NaN for every arm.

    Columns: ``ARM``, ``metric``, ``direction``, ``n`` (units), ``unit_kind`` (``study`` or
    ``seed``), ``mean``, ``std``, ``spread``, ``half_width``, ``ci_low``, ``ci_high``
    (test, over units: :func:`exact_ci`, clipped to ``[low, high]``: where it was, ``clipped``;
    NaN when the units are too few for an interval to exist),
    ``config`` (``defaults`` or ``tuned #N`` with one study; None when unknown or several),
    ``val_mean`` (mean validation over units, failures scored: the selection key), ``tune_best_val``
    and ``n_tune``, ``runs`` and ``failed`` (confirm runs and how many failed), ``gap_mean``,
    ``n_params`` (median), ``fit_s`` (mean seconds), ``samples_per_s`` (mean), ``energy_kwh`` and
    ``emissions_kg`` (mean per run), ``time_to_target_s`` and ``energy_to_target_kwh`` (mean over the
    runs that reached the target), ``reached`` (how many runs reached it), and the task's declared
    ``ideal``, ``baseline``, ``low``, ``high``.
    """
    cols = [*ARM, "metric", "direction", "ideal", "baseline", "low", "high", "clipped", "config", "n",
            "unit_kind", "mean", "std", "spread", "half_width", "ci_low", "ci_high",
            "val_mean", "tune_best_val", "n_tune", "runs", "failed", "gap_mean", "n_params", "fit_s",
            "samples_per_s", "energy_kwh", "emissions_kg", "time_to_target_s", "energy_to_target_kwh",
            "reached"]
    if confirm.empty:
        return pd.DataFrame(columns=cols)
    if "unit" not in confirm:  # plain confirm rows (tests, older callers): one unit per seed
        confirm = confirm.assign(unit="seed " + confirm["seed"].astype(str), failed=False)
    units = confirm_units(confirm)
    ci = exact_ci(units, ARM, "test", level=level)
    val = units.groupby(ARM, dropna=False)["val"].mean().rename("val_mean").reset_index()
    tt = to_target(confirm)
    if "config" not in tt:
        tt = tt.assign(config=None)
    tt = tt.assign(**{c: np.nan for c in ("ideal", "baseline", "low", "high") if c not in tt})
    agg = tt.groupby(ARM, dropna=False).agg(
        metric=("metric", "first"), direction=("direction", "first"),
        config=("config", lambda c: c.iloc[0] if c.nunique(dropna=False) == 1 else None),
        ideal=("ideal", "first"), baseline=("baseline", "first"), low=("low", "first"),
        high=("high", "first"), runs=("test", "size"),
        failed=("failed", lambda f: int(np.sum(f.astype(bool)))),
        unit_kind=("unit", lambda u: str(u.iloc[0]).split(" ")[0]),
        gap_mean=("gap_final", "mean"), n_params=("n_params", "median"), fit_s=("fit_s", "mean"),
        samples_per_s=("samples_per_s", "mean"), energy_kwh=("energy_kwh", "mean"),
        emissions_kg=("emissions_kg", "mean"), time_to_target_s=("time_to_target_s", "mean"),
        energy_to_target_kwh=("energy_to_target_kwh", "mean"), reached=("reached", "sum"),
    ).reset_index()
    out = ci.merge(val, on=ARM, how="left").merge(agg, on=ARM, how="left")
    low, high = out["low"].astype(float).fillna(-np.inf), out["high"].astype(float).fillna(np.inf)
    none = ~(np.isfinite(out["ci_low"].astype(float)) & np.isfinite(out["ci_high"].astype(float)))
    out.loc[none, ["ci_low", "ci_high", "half_width"]] = np.nan  # too few units: no interval exists
    out["clipped"] = (out["ci_low"] < low) | (out["ci_high"] > high)
    out["ci_low"], out["ci_high"] = out["ci_low"].clip(lower=low), out["ci_high"].clip(upper=high)
    tune = tune_best_val(tuning) if tuning is not None else pd.DataFrame(columns=[*ARM, "tune_best_val",
                                                                                   "n_tune"])
    out = out.merge(tune, on=ARM, how="left")
    out["tune_best_val"] = out["tune_best_val"].astype(float)
    out["n_tune"] = out["n_tune"].fillna(0).astype(int)
    out["failed"] = out["failed"].fillna(0).astype(int)
    return out[cols]


def to_target(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with ``reached`` (the validation target was reached) and ``energy_to_target_kwh``.

    ``time_to_target_s`` is the record's (the curves' ``time_s`` at ``primary.epochs_to_target``,
    seconds since fit start); energy-to-target prorates the trial's energy by time:
    ``energy_kwh * time_to_target_s / fit_s``.
    """
    out = trials.copy()
    ttt = out["time_to_target_s"].astype(float)
    out["reached"] = np.isfinite(ttt)
    fit = out["fit_s"].astype(float)
    out["energy_to_target_kwh"] = np.where(fit > 0, out["energy_kwh"].astype(float) * ttt / fit, np.nan)
    return out
