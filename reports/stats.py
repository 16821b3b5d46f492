"""Statistics of the report: pure functions from frames to frames (no plotting, no I/O).

Conventions: an *arm* is (task, family, optimizer, regularizers); the numbers compared are those
of the CONFIRM runs (each study's chosen params re-run on the confirm seeds); ``direction`` is
``maximize`` or ``minimize`` per task.

* **Failures count** (:func:`confirm_trials`): a confirm run that failed or diverged is a result,
  scored at the task's worst value (:func:`worst_values`), never dropped.
* **Units** (:func:`confirm_units`): with ``studies >= 2`` an arm's independent unit is a study (the
  mean over its seeds), else a seed; intervals (:func:`reports.paired.sign_flip_interval`) and tests
  run over units, so tuning luck is inside them when there are several studies.
* **One selection rule** (:func:`selection_keys`, :func:`best_of`): an arm is chosen on the mean
  validation metric of its confirm units (failures scored too), never on the test metric it reports;
  the leaderboard, the findings and every "best arm" use it.
* **Nothing pooled that differs** (:func:`separate_arms`): arms of one task run with different
  budgets are told apart as tasks (``mnist1d [20 epochs, ...]``), the same arm from several sources
  or with other fixed params as families (``mlp [runs/a]``), so they are never averaged together and
  only compared where the budget is equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from reports.paired import no_spread, sign_flip_interval

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


def tuning_curves(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the best tuning validation value so far against the number of tuning trials run.

    Tuning trials (phase ``tune``) are counted in trial-number order within each study; each counts
    as a trial run, pruned and failed ones too (they spent budget), but only ``COMPLETE`` trials with
    a finite ``val`` can improve the best. An arm with several studies gets the mean over its studies
    of their best so far (``studies`` says how many had a value). The curve tells whether more trials
    would have changed the answer: a curve still rising at its last trial would.

    Returns:
        Long frame: ``ARM`` columns, ``trials`` (1..N), ``best`` (NaN until a trial completes),
        ``studies``, ``direction``.
    """
    cols = [*ARM, "trials", "best", "studies", "direction"]
    if trials.empty:
        return pd.DataFrame(columns=cols)
    t = trials[trials["phase"] == "tune"]
    per_study = [c for c in ("source", "study") if c in t]
    rows = []
    for key, g in t.sort_values("number").groupby([*ARM, *per_study], sort=True, dropna=False):
        direction = g["direction"].dropna()
        direction = str(direction.iloc[0]) if len(direction) else "maximize"
        sign = 1.0 if direction == "maximize" else -1.0
        best = math.nan
        for i, (_, r) in enumerate(g.iterrows(), start=1):
            v = float(r["val"]) if r["state"] == "COMPLETE" and pd.notna(r["val"]) else math.nan
            if math.isfinite(v) and (not math.isfinite(best) or sign * v > sign * best):
                best = v
            rows.append({**dict(zip(ARM, key[:len(ARM)], strict=True)), "trials": i, "best": best,
                         "direction": direction})
    if not rows:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame(rows)
    out = frame.groupby([*ARM, "trials"], sort=True, dropna=False).agg(
        best=("best", "mean"), studies=("best", "count"), direction=("direction", "first")).reset_index()
    return out[cols]


def selection_optimism(summary: pd.DataFrame) -> pd.DataFrame:
    """How much of an arm's tuning result was luck: the tuning validation value of the params it
    stands for (``tune_best_val``) beside its confirm seeds' mean validation (``val_mean``).

    ``optimism`` = ``tune_best_val - val_mean`` for metrics to maximize, the negative for metrics to
    minimize: positive when the confirm seeds fell short of the value that chose the params (the
    winner's curse of picking the best of several noisy trials).
    """
    cols = [*ARM, "metric", "direction", "n", "tune_best_val", "val_mean", "optimism"]
    if summary.empty:
        return pd.DataFrame(columns=cols)
    out = summary.copy()
    sign = np.where(out["direction"] == "minimize", -1.0, 1.0)
    out["optimism"] = sign * (out["tune_best_val"].astype(float) - out["val_mean"].astype(float))
    return out[cols].reset_index(drop=True)


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


def selection_keys(summary: pd.DataFrame) -> pd.DataFrame:
    """Each arm's selection key: the mean validation metric of its confirm units (``val_mean``,
    failed runs scored at the task's worst value). The one rule every view chooses by; the test
    metric never chooses. NaN (not eligible) when the arm has no validation value.

    Returns:
        Indexed like ``summary``: ``select_key`` (float) and ``selected_on`` (``confirm`` or ``None``).
    """
    conf = (pd.to_numeric(summary["val_mean"], errors="coerce").astype(float) if "val_mean" in summary
            else pd.Series(np.nan, index=summary.index, dtype=float))
    on = pd.Series(np.where(np.isfinite(conf), "confirm", None), index=summary.index, dtype=object)
    return pd.DataFrame({"select_key": conf, "selected_on": on}, index=summary.index)


def best_of(summary: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The best eligible arm per group of ``by`` columns by :func:`selection_keys` (ties: fewer failed
    runs, then the first in arm order).

    Returns:
        One row per group with an eligible arm: the chosen ``summary`` row plus ``select_key`` and
        ``selected_on``. A group without an eligible arm is left out (callers say so).
    """
    if summary.empty:
        return summary.assign(select_key=pd.Series(dtype=float), selected_on=pd.Series(dtype=object))
    keyed = pd.concat([summary, selection_keys(summary)], axis=1)
    picks = []
    for _, g in keyed.groupby(list(by), sort=True, dropna=False):
        g = g[g["selected_on"].notna()]
        if g.empty:
            continue
        picks.append(ranked(g).iloc[0])
    return pd.DataFrame(picks, columns=keyed.columns).reset_index(drop=True)


def ranked(arms: pd.DataFrame) -> pd.DataFrame:
    """``arms`` (with ``select_key``) best first by the selection rule: the key in the arms'
    direction, then fewer failed runs, then arm order."""
    if "select_key" not in arms:
        arms = pd.concat([arms, selection_keys(arms)], axis=1)
    if arms.empty:
        return arms
    sign = -1.0 if str(arms["direction"].iloc[0]) == "minimize" else 1.0
    failed = arms["failed"] if "failed" in arms else pd.Series(0, index=arms.index)
    order = pd.DataFrame({"k": -sign * arms["select_key"].astype(float), "f": failed.astype(float),
                          "i": np.arange(len(arms))}, index=arms.index)
    return arms.loc[order.sort_values(["k", "f", "i"], na_position="last").index]


def separate_arms(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Tell apart what must not be pooled, by relabelling (the original names stay in
    ``task_name`` and ``family_name``).

    * A task whose trials ran with several budgets (column ``budget``: epochs, trials, studies,
      seeds, space) becomes one task per budget: ``mnist1d [20 epochs, ...]``; arms are compared only
      within one, where the budget is equal.
    * Within one task and budget, a family whose arms come from several sources, or with several
      sets of fixed params (column ``fixed``), becomes one family per source (and fixed params):
      ``mlp [runs/a]``; they are compared with each other as any two families are, never averaged.

    Returns:
        The relabelled frame and one sentence per relabelling (empty when nothing was separated).
    """
    t = trials.assign(task_name=trials["task"], family_name=trials["family"])
    notes: list[str] = []
    if t.empty:
        return t, notes
    budget = t["budget"].fillna("budget not recorded").astype(str) if "budget" in t else None
    if budget is not None:
        for task, b in budget.groupby(t["task"], sort=True):
            kinds = sorted(b.unique())
            if len(kinds) > 1:
                rows = t["task"] == task
                t.loc[rows, "task"] = [f"{task} [{x}]" for x in budget[rows]]
                notes.append(f"{task} ran with {len(kinds)} budgets ({'; '.join(kinds)}): each is its own "
                             "task here, and arms are compared only within one budget.")
    src = t["source"].fillna("").astype(str)
    fixed = t["fixed"].fillna("").astype(str) if "fixed" in t else pd.Series("", index=t.index)
    for (task, family), g in t.groupby(["task", "family"], sort=True, dropna=False):
        sources, fixes = src[g.index].unique(), fixed[g.index].unique()
        if len(sources) < 2 and len(fixes) < 2:
            continue
        parts = [src[g.index]] if len(sources) > 1 else []
        parts += [fixed[g.index].replace("", "no fixed params")] if len(fixes) > 1 else []
        label = parts[0] if len(parts) == 1 else parts[0] + ", " + parts[1]
        t.loc[g.index, "family"] = [f"{family} [{x}]" for x in label]
        what = " and ".join(w for w, k in (("sources", len(sources)), ("fixed params", len(fixes))) if k > 1)
        notes.append(f"{family} on {task} comes from several {what}: "
                     f"{', '.join(sorted(set(t.loc[g.index, 'family'])))} are separate arms, never pooled.")
    return t, notes


def _arm_columns(by: Sequence[str], across: str) -> list[str]:
    return [c for c in ARM if c not in {*by, across}]


def common_arms(summary: pd.DataFrame, *, by: Sequence[str] = ("task",),
                across: str = "family") -> pd.DataFrame:
    """Per ``by`` group, the arms every ``across`` group in it has a row (confirm results) for.

    With the defaults: per task, the (optimizer, regularizers) combinations that every family of the
    task has confirm results for, so families can be compared on equal tuning budgets.

    Returns:
        ``[*by, *arm]`` columns (``arm``: the :data:`ARM` columns not in ``by`` nor ``across``), one
        row per common arm, sorted; a group whose members share no arm has no row.
    """
    by, arm = list(by), _arm_columns(by, across)
    rows = []
    for key, g in summary.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        sets = [set(map(tuple, m[arm].astype(str).to_numpy())) for _, m in g.groupby(across, dropna=False)]
        rows += [{**dict(zip(by, key, strict=True)), **dict(zip(arm, a, strict=True))}
                 for a in sorted(set.intersection(*sets))] if sets else []
    return pd.DataFrame(rows, columns=[*by, *arm])


def equal_budget(summary: pd.DataFrame, *, by: Sequence[str] = ("task",),
                 across: str = "family") -> pd.DataFrame:
    """The rows of ``summary`` on which the ``across`` groups of each ``by`` group are compared.

    Within each group only the :func:`common_arms` are kept, so that (with the defaults) a family
    tuned over four arms is not set against one tuned over one by its best of four. When the members
    share no arm every row is kept (their budgets differ). Pass the result to :func:`best_of` with
    ``[*by, across]``.

    Returns:
        The kept rows plus ``n_arms`` (how many arms that ``across`` member has in its ``by`` group)
        and ``common`` (True: restricted to common arms; False: no common arm, every arm kept).
    """
    by, arm = list(by), _arm_columns(by, across)
    if summary.empty:
        return summary.assign(n_arms=pd.Series(dtype=int), common=pd.Series(dtype=bool))
    out = summary.copy()
    out["n_arms"] = out.groupby([*by, across], dropna=False)[arm[0]].transform("size").astype(int)
    common = common_arms(summary, by=by, across=across).astype(str)
    keys = out[[*by, *arm]].astype(str)
    has_common = keys[by].merge(common[by].drop_duplicates().assign(_c=True), on=by, how="left")["_c"]
    in_common = keys.merge(common.assign(_a=True), on=[*by, *arm], how="left")["_a"]
    out["common"] = has_common.notna().to_numpy()
    return out[~out["common"].to_numpy() | in_common.notna().to_numpy()]


def optimizer_best(arms: pd.DataFrame) -> pd.DataFrame:
    """Each (task, family, optimizer)'s compared arm: its best (:func:`best_of`) among the regularizer
    sets every optimizer of that task and family ran (:func:`equal_budget`)."""
    fair = equal_budget(arms, by=["task", "family"], across="optimizer")
    return best_of(fair, ["task", "family", "optimizer"])


def epoch_totals(trials: pd.DataFrame) -> dict[str, float]:
    """The compute the trials actually spent, in epochs (a pruned trial is not a full trial).

    Returns:
        ``epochs_run`` (sum over the trials that recorded it), ``epochs_run_pruned`` (the part run by
        PRUNED trials), ``full_trials`` (full-trial equivalents: the sum of ``epochs_run / epochs``
        over the trials that recorded both, with ``epochs > 0``), ``recorded`` (how many trials
        recorded ``epochs_run``) and ``trials`` (how many trials in all). Ten trials pruned after 2
        of 20 epochs are 20 epochs and 1 full-trial equivalent.
    """
    run = pd.to_numeric(trials["epochs_run"], errors="coerce").astype(float)
    planned = pd.to_numeric(trials["epochs"], errors="coerce").astype(float)
    has_run = np.isfinite(run)
    frac = np.isfinite(planned) & (planned > 0) & has_run
    return {"epochs_run": float(run[has_run].sum()),
            "epochs_run_pruned": float(run[has_run & (trials["state"] == "PRUNED")].sum()),
            "full_trials": float((run[frac] / planned[frac]).sum()),
            "recorded": int(has_run.sum()), "trials": len(trials)}


def search_spaces(trials: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, which search space was tuned: from the trial records and the study protocols.

    Args:
        trials: the trial frame (its ``benchmark`` and ``space`` columns; ``space`` is ``core``,
            ``full`` or missing).
        studies: the study frame (its ``benchmark`` and ``protocol`` dicts, key ``space``).

    Returns:
        One row per benchmark of either frame, sorted: ``benchmark`` (``unknown`` when not recorded),
        ``records`` (``core (40 trials)``, several joined by ``, ``; missing when no trial of it
        records a space) and ``protocol`` (the distinct protocol ``space`` values joined by ``, ``;
        missing when no study of it records one).
    """
    def bench(value: Any) -> str:
        return "unknown" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

    records: dict[str, list[str]] = {}
    protocol: dict[str, set[str]] = {}
    for b in [*trials["benchmark"], *studies["benchmark"]]:
        records.setdefault(bench(b), [])
    if "space" in trials:
        t = trials[trials["space"].notna()]
        for b, g in t.groupby(t["benchmark"].map(bench), sort=True):
            counts = g["space"].astype(str).value_counts().sort_index()
            records[b] = [f"{s} ({n} trial{'s' if n != 1 else ''})" for s, n in counts.items()]
    for _, row in studies.iterrows():
        proto = row["protocol"]
        space = proto.get("space") if isinstance(proto, dict) else None
        if space is not None:
            protocol.setdefault(bench(row["benchmark"]), set()).add(str(space))
    rows = [{"benchmark": b, "records": ", ".join(r) or None,
             "protocol": ", ".join(sorted(protocol[b])) if b in protocol else None}
            for b, r in sorted(records.items())]
    return pd.DataFrame(rows, columns=["benchmark", "records", "protocol"])


def rank_table(values: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Ranks within each row (block) of a blocks x treatments table: 1 = best, ties averaged."""
    return values.rank(axis=1, ascending=direction != "maximize", method="average")


def orient(values: pd.DataFrame, directions: pd.Series) -> pd.DataFrame:
    """``values`` with the rows of ``minimize`` problems negated, so higher is better in every row.

    Rank-based statistics (Friedman, Nemenyi) can then mix tasks whose metrics point different ways.
    """
    sign = np.where(directions.reindex(values.index) == "minimize", -1.0, 1.0)
    return values.astype(float).mul(sign, axis=0)


def nemenyi_cd(k: int, n: int, *, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks for ``k`` treatments over ``n`` blocks.

    ``CD = q_alpha * sqrt(k (k + 1) / (6 n))`` with ``q_alpha`` the studentized range quantile
    (infinite degrees of freedom) divided by sqrt(2) (Demsar 2006, table 5: 2.343 for k = 3).
    """
    if k < 2 or n < 1:
        raise ValueError(f"Nemenyi CD needs k >= 2 treatments and n >= 1 blocks, got {k=}, {n=}")
    q = sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


@dataclass
class FriedmanResult:
    """Outcome of :func:`friedman`.

    Attributes:
        ran: whether the test could run; when not, ``reason`` says why.
        statistic, pvalue: the Friedman chi-square and its p-value (NaN when not run).
        f_statistic, f_pvalue: the Iman-Davenport F, ``(n - 1) chi2 / (n (k - 1) - chi2)`` on
            ``(k - 1, (k - 1)(n - 1))`` degrees of freedom, and its p-value: less conservative than
            the chi-square (Demsar 2006), so it decides ``significant``.
        k, n: treatments and complete blocks used.
        ranks: average rank per treatment (1 = best), ascending; empty when not run.
        cd: Nemenyi critical difference at ``alpha`` (NaN when not run).
        perm_pvalue: the permutation p-value of the chi-square: every ordering of the values within
            each block equally likely under the null (exact when there are at most
            :data:`PERMUTATIONS` orderings, else that many random ones with a fixed seed). The
            asymptotic p-values mislead with few blocks (two blocks that agree give F = inf, p = 0,
            yet one in k! pairs of random orderings agrees), so this one decides.
        significant: ``perm_pvalue < alpha``; only then may a critical-difference diagram be drawn.
        dropped: blocks left out because a treatment was missing in them.
        left_out: treatments left out to keep a complete sub-table (:func:`complete_subtable`).
    """

    ran: bool
    reason: str | None = None
    statistic: float = math.nan
    pvalue: float = math.nan
    k: int = 0
    n: int = 0
    alpha: float = 0.05
    ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    cd: float = math.nan
    significant: bool = False
    dropped: list = field(default_factory=list)
    f_statistic: float = math.nan
    f_pvalue: float = math.nan
    left_out: list = field(default_factory=list)
    perm_pvalue: float = math.nan


PERMUTATIONS = 9999


def friedman_permutation_pvalue(values: pd.DataFrame, direction: str = "maximize", *,
                                n_resamples: int = PERMUTATIONS, seed: int = 0) -> float:
    """p-value of the Friedman statistic under within-block permutations (blocks are rows).

    The statistic is the sum of squared rank sums, monotone in the chi-square (the tie correction
    is unchanged by permuting within a block). ``scipy.stats.permutation_test`` with
    ``permutation_type="samples"`` permutes each block's values among the treatments; exact when
    ``(k!)^n <= n_resamples``.
    """
    x = values.to_numpy(float)
    if direction != "maximize":
        x = -x

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        data = np.stack(samples, axis=-1)  # (..., n blocks, k treatments)
        ranks = sps.rankdata(data, axis=-1)
        return (ranks.sum(axis=-2) ** 2).sum(axis=-1)

    res = sps.permutation_test([x[:, j] for j in range(x.shape[1])], statistic, permutation_type="samples",
                               vectorized=True, n_resamples=n_resamples, alternative="greater",
                               rng=np.random.default_rng(seed))
    return float(res.pvalue)


def iman_davenport(chi2: float, k: int, n: int) -> tuple[float, float]:
    """Iman-Davenport's F from a Friedman chi-square over ``k`` treatments and ``n`` blocks, and its
    p-value on ``(k - 1, (k - 1)(n - 1))`` degrees of freedom (F is infinite, p 0, when every block
    ranks the treatments alike)."""
    denom = n * (k - 1) - chi2
    if denom <= 0:
        return math.inf, 0.0
    f = (n - 1) * chi2 / denom
    return float(f), float(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))


MAX_SUBSET_TREATMENTS = 16


def complete_subtable(values: pd.DataFrame, *, min_treatments: int = 3, min_blocks: int = 2
                      ) -> tuple[list, list]:
    """The largest complete sub-table of a blocks x treatments table: the treatments and blocks
    (rows with a value for every chosen treatment) that maximise treatments x blocks, with at least
    ``min_treatments`` and ``min_blocks`` (ties: more treatments, then the first in column order).

    Every subset of up to :data:`MAX_SUBSET_TREATMENTS` treatments is tried (exact); with more, the
    treatment with the fewest values is dropped one at a time (greedy). Returns ``([], [])`` when no
    sub-table is that large.
    """
    present = values.notna()
    cols = list(values.columns)
    best: tuple[tuple[int, int], list, list] = ((0, 0), [], [])

    def consider(subset: list) -> None:
        nonlocal best
        rows = list(values.index[present[subset].all(axis=1)])
        if len(subset) >= min_treatments and len(rows) >= min_blocks:
            score = (len(subset) * len(rows), len(subset))
            if score > best[0]:
                best = (score, subset, rows)

    if len(cols) <= MAX_SUBSET_TREATMENTS:
        from itertools import combinations

        for size in range(len(cols), min_treatments - 1, -1):
            for subset in combinations(cols, size):
                consider(list(subset))
    else:
        subset = list(cols)
        while len(subset) >= min_treatments:
            consider(subset)
            subset.remove(min(subset, key=lambda c: (int(present[c].sum()), -cols.index(c))))
    return best[1], best[2]


def friedman(values: pd.DataFrame, direction: str, *, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test of treatments (columns) over blocks (rows) on the largest complete sub-table
    (:func:`complete_subtable`), with the Iman-Davenport F and the Nemenyi CD.

    Treatments and blocks outside that sub-table are listed in ``left_out`` and ``dropped``. It runs
    only with >= 3 treatments and >= 2 complete blocks; otherwise ``ran`` is False and ``reason``
    says why.
    """
    values = values.astype(float)
    if values.shape[1] < 3:
        return FriedmanResult(False, f"needs >= 3 treatments to compare, has {values.shape[1]}",
                              k=values.shape[1], n=int(values.notna().all(axis=1).sum()), alpha=alpha)
    treatments, blocks = complete_subtable(values)
    if not treatments:
        n_full = int(values.notna().all(axis=1).sum())
        return FriedmanResult(False, "needs >= 2 blocks in which >= 3 treatments all ran; no such "
                              f"sub-table among {values.shape[1]} treatments and {len(values)} blocks",
                              k=values.shape[1], n=n_full, alpha=alpha,
                              dropped=[b for b in values.index if not values.loc[b].notna().all()])
    complete = values.loc[blocks, treatments]
    dropped = [b for b in values.index if b not in blocks]
    left_out = [c for c in values.columns if c not in treatments]
    k, n = len(treatments), len(blocks)
    ranks = rank_table(complete, direction).mean(axis=0).sort_values()
    if all(complete.iloc[i].nunique() == 1 for i in range(n)):
        return FriedmanResult(False, "all treatments tie in every block", k=k, n=n, alpha=alpha,
                              ranks=ranks, dropped=dropped, left_out=left_out)
    stat, p = sps.friedmanchisquare(*[complete[c].to_numpy() for c in complete.columns])
    f, fp = iman_davenport(float(stat), k, n)
    pp = friedman_permutation_pvalue(complete, direction)
    return FriedmanResult(True, None, float(stat), float(p), k, n, alpha, ranks,
                          nemenyi_cd(k, n, alpha=alpha), bool(pp < alpha), dropped, f, fp, left_out, pp)


def cd_groups(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of treatments (in rank order) whose average ranks differ by less than ``cd``.

    These are the groups a critical-difference diagram joins with a bar; singletons are left out.
    """
    names, r = list(ranks.index), ranks.to_numpy(float)
    groups: list[tuple[str, ...]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and r[j + 1] - r[i] < cd:
            j += 1
        if j > i and not any(set(names[i:j + 1]) <= set(g) for g in groups):
            groups.append(tuple(names[i:j + 1]))
    return groups


REGRET_FLOOR = 1e-3


def normalized_regret(values: pd.Series | np.ndarray, ideal: float, baseline: float, *,
                      floor: float = REGRET_FLOOR) -> np.ndarray:
    """Normalized regret ``(ideal - v) / (ideal - baseline)`` of metric values of one problem.

    0 is the ideal value, 1 the trivial predictor's (the task's declared ``baseline``), above 1
    worse than it; the direction is in the scale (RMSE: ideal 0, baseline the naive forecast's).
    Regrets below ``floor`` are raised to it, so a perfect score does not make every other ratio
    infinite. NaN stays NaN (the solver did not run that problem).

    Raises:
        ValueError: ``ideal`` equals ``baseline`` or either is not finite.
    """
    if not (math.isfinite(ideal) and math.isfinite(baseline)) or ideal == baseline:
        raise ValueError(f"a scale needs finite, different ideal and baseline, got {ideal=}, {baseline=}")
    v = np.asarray(values, dtype=float)
    regret = (ideal - v) / (ideal - baseline)
    return np.where(np.isfinite(regret), np.maximum(regret, floor), np.nan)


def regret_table(values: pd.DataFrame, scales: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Problems x solvers table of :func:`normalized_regret`, on the problems every solver ran.

    Args:
        values: problems x solvers metric values (NaN: the solver did not run the problem).
        scales: indexed by problem, columns ``ideal`` and ``baseline``.

    Returns:
        The regret table, the problems left out because a solver did not run them, and those left
        out because their task declares no scale.
    """
    values = values.astype(float)
    sc = scales.reindex(values.index)
    unscaled = [str(i) for i in values.index
                if not (np.isfinite(sc.loc[i, "ideal"]) and np.isfinite(sc.loc[i, "baseline"]))]
    incomplete = [str(i) for i in values.index if str(i) not in unscaled and values.loc[i].isna().any()]
    keep = [i for i in values.index if str(i) not in unscaled and str(i) not in incomplete]
    out = pd.DataFrame({c: pd.Series(dtype=float) for c in values.columns}, index=pd.Index(keep))
    for i in keep:
        out.loc[i] = normalized_regret(values.loc[i].to_numpy(float), float(sc.loc[i, "ideal"]),
                                       float(sc.loc[i, "baseline"]))
    return out.astype(float), incomplete, unscaled


def performance_ratios(costs: pd.DataFrame) -> pd.DataFrame:
    """Dolan-More performance ratios: each cost over the best cost of its problem (row).

    A missing cost (the solver did not run that problem) gives ``inf``.
    """
    best = costs.min(axis=1, skipna=True)
    return costs.div(best, axis=0).fillna(np.inf)


def performance_profile(costs: pd.DataFrame, taus: Sequence[float] | None = None) -> pd.DataFrame:
    """Dolan-More performance profile of solvers (columns) over problems (rows).

    ``rho_s(tau)`` is the fraction of problems on which solver ``s`` is within a factor ``tau`` of
    the best solver: ``|{p : r_ps <= tau}| / n_problems``.

    Args:
        costs: problems x solvers, positive costs (lower is better; see :func:`normalized_regret`).
        taus: the tau values (>= 1); default: 1 and every finite ratio, sorted (the corners of the
            step functions).

    Returns:
        Long frame ``solver``, ``tau``, ``rho``.
    """
    ratios = performance_ratios(costs)
    if taus is None:
        finite = ratios.to_numpy().ravel()
        taus = sorted({1.0, *finite[np.isfinite(finite)].tolist()})
    rows = [(s, float(t), float((ratios[s] <= t).mean())) for s in ratios.columns for t in taus]
    return pd.DataFrame(rows, columns=["solver", "tau", "rho"])


def problem_scales(best: pd.DataFrame, problem: Sequence[str]) -> pd.DataFrame:
    """Each problem's declared ``ideal`` and ``baseline`` (NaN when its records declare none), indexed
    like :func:`problem_table`."""
    problem = list(problem)
    if best.empty:
        return pd.DataFrame(columns=["ideal", "baseline"])
    cols = {c: (best.get(c, np.nan)) for c in ("ideal", "baseline")}
    frame = best[problem].assign(**cols)
    sc = frame.groupby(problem)[["ideal", "baseline"]].first().astype(float)
    if len(problem) > 1:
        sc.index = [" / ".join(map(str, i)) for i in sc.index]
    return sc


def problem_table(best: pd.DataFrame, problem: Sequence[str], solver: str) -> tuple[pd.DataFrame, pd.Series]:
    """Problems x solvers table of best-arm test means, and each problem's direction.

    Args:
        best: rows of :func:`best_of` grouped by ``[*problem, solver]``.
        problem: columns naming a problem (``["task"]`` or ``["task", "family"]``).
        solver: the column naming a solver (``family`` or ``optimizer``).
    """
    problem = list(problem)
    if best.empty:
        return pd.DataFrame(), pd.Series(dtype=object)
    table = best.pivot_table(index=problem, columns=solver, values="mean", aggfunc="first")
    direction = best.groupby(problem)["direction"].first().reindex(table.index)
    if len(problem) > 1:
        table.index = [" / ".join(map(str, i)) for i in table.index]
        direction.index = table.index
    table.columns = [str(c) for c in table.columns]
    return table, direction


def pareto_front(df: pd.DataFrame, cost: str, score: str, direction: str) -> pd.Series:
    """Which rows are on the Pareto front of lower ``cost`` and better ``score``.

    A row is on the front when no other row has cost <= and score at least as good, with one of the
    two strictly better. Rows with a non-finite cost or score are never on it.
    """
    c = df[cost].astype(float).to_numpy()
    s = df[score].astype(float).to_numpy()
    s = s if direction == "maximize" else -s
    ok = np.isfinite(c) & np.isfinite(s)
    front = np.zeros(len(df), dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        dominated = others & (c <= c[i]) & (s >= s[i]) & ((c < c[i]) | (s > s[i]))
        front[i] = not dominated.any()
    return pd.Series(front, index=df.index, name="pareto")


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


def per_1k_samples(trials: pd.DataFrame) -> pd.Series:
    """Energy per 1,000 training samples processed (kWh): ``energy_kwh / samples * 1000``.

    ``samples`` = ``samples_per_s * fit_s`` = epochs run x training-set size.
    """
    samples = trials["samples"].astype(float)
    return pd.Series(np.where(samples > 0, trials["energy_kwh"].astype(float) / samples * 1000, np.nan),
                     index=trials.index)


def flag_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Gradient-health flags per (family, activation): counts of ok/vanishing/exploding and medians."""
    t = trials[trials["flag"].notna()].copy()
    cols = ["family", "activation", "trials", "ok", "vanishing", "exploding", "flagged_pct",
            "grad_ratio_median", "dead_relu_final"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    t["activation"] = t["activation"].fillna("n/a").astype(str)
    rows = []
    for (fam, act), g in t.groupby(["family", "activation"], dropna=False):
        counts = g["flag"].value_counts()
        n = len(g)
        flagged = n - int(counts.get("ok", 0))
        rows.append({"family": fam, "activation": act, "trials": n, "ok": int(counts.get("ok", 0)),
                     "vanishing": int(counts.get("vanishing", 0)),
                     "exploding": int(counts.get("exploding", 0)), "flagged_pct": 100 * flagged / n,
                     "grad_ratio_median": float(g["grad_ratio_median"].median()),
                     "dead_relu_final": float(g["dead_relu_final"].mean())})
    return pd.DataFrame(rows, columns=cols)
