"""Cost against quality: the footprint of each arm with its Pareto front, and the same arms set
side by side across machines (pure functions from frames to frames)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from reports.stats import ARM, to_target


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


def per_1k_samples(trials: pd.DataFrame) -> pd.Series:
    """Energy per 1,000 training samples processed (kWh): ``energy_kwh / samples * 1000``.

    ``samples`` = ``samples_per_s * fit_s`` = epochs run x training-set size.
    """
    samples = trials["samples"].astype(float)
    return pd.Series(np.where(samples > 0, trials["energy_kwh"].astype(float) / samples * 1000, np.nan),
                     index=trials.index)


def cost_column(arms: pd.DataFrame) -> str:
    """What the footprint weighs quality against: ``energy_kwh`` when any arm recorded energy, else
    ``fit_s`` (training time)."""
    return "energy_kwh" if bool(np.isfinite(arms["energy_kwh"].astype(float)).any()) else "fit_s"


def footprint(arms: pd.DataFrame, cost: str, directions: Mapping[str, str]) -> pd.DataFrame:
    """``arms`` with ``pareto``: whether the arm is on its task's Pareto front of lower ``cost`` and a
    better test ``mean`` (:func:`pareto_front`; ``directions``: per task, ``maximize`` or
    ``minimize``)."""
    out = arms.copy()
    out["pareto"] = False
    for task, a in arms.groupby("task", sort=True):
        out.loc[a.index, "pareto"] = pareto_front(a, cost, "mean", directions.get(str(task), "maximize"))
    return out


def device_table(confirm: pd.DataFrame) -> pd.DataFrame:
    """The arms that ran on two or more machines, set side by side: confirm runs, means per machine.

    The same arm at the same budget, whichever source it came from, is one arm here: ``family`` is
    the original family name (the other views tell sources apart in the family label,
    :func:`reports.selection.separate_arms`).

    Returns:
        ``ARM`` columns, ``machine``, ``n`` (runs), ``samples_per_s``, ``time_to_target_s``,
        ``kwh_1k`` (:func:`per_1k_samples`) and ``test`` (means); empty when no arm ran on two machines.
    """
    c = to_target(confirm).assign(kwh_1k=lambda d: per_1k_samples(d), family=confirm["family_name"])
    g = c.groupby([*ARM, "machine"], dropna=False).agg(
        n=("uid", "count"), samples_per_s=("samples_per_s", "mean"),
        time_to_target_s=("time_to_target_s", "mean"), kwh_1k=("kwh_1k", "mean"),
        test=("test", "mean")).reset_index()
    shared = g.groupby(ARM, dropna=False)["machine"].transform("nunique") >= 2
    return g[shared]
