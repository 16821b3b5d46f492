"""Cost against quality: the footprint of each arm with its Pareto front (pure functions from frames
to frames; the same arms across machines are :mod:`reports.hardware`'s)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


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
