"""Tuning: how the best validation value grew with the trials run, and how much of it was luck
(pure functions from frames to frames)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports.stats import ARM


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


def tuning_progress(curves: pd.DataFrame) -> pd.DataFrame:
    """Per arm of :func:`tuning_curves`: the tuning trials it ran and whether it was still improving.

    Returns:
        One row per arm (in the curves' order): ``ARM`` columns, ``n_run`` (tuning trials run),
        ``final`` and ``before`` (the best value after the last trial and after the one before it),
        ``rising`` (the last trial changed the best: more trials could change the arm's result) and
        ``reason`` (``still improving at the last tuning trial`` where rising, else None).
    """
    cols = [*ARM, "n_run", "final", "before", "rising", "reason"]
    if curves.empty:
        return pd.DataFrame(columns=cols)
    n_run = curves.groupby(ARM, dropna=False)["trials"].max().rename("n_run").reset_index()
    ends = curves.merge(n_run, on=ARM)
    last = ends.loc[ends["trials"] == ends["n_run"], [*ARM, "n_run", "best"]]
    prev = ends.loc[ends["trials"] == ends["n_run"] - 1, [*ARM, "best"]]
    out = last.rename(columns={"best": "final"}).merge(prev.rename(columns={"best": "before"}), on=ARM,
                                                        how="left")
    out["rising"] = (out["before"].notna() & (out["final"] != out["before"])).astype(bool)
    out["reason"] = ["still improving at the last tuning trial" if r else None for r in out["rising"]]
    return out[cols].reset_index(drop=True)
