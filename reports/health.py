"""Gradient health: the flags of every trial counted per family and activation (pure functions)."""

from __future__ import annotations

import pandas as pd


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


FLAGGED_COLUMNS = ["task", "family", "optimizer", "regularizers", "phase", "number", "activation", "lr",
                   "flag", "grad_ratio_median", "status"]


def flagged(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials flagged vanishing or exploding (a flag other than ``ok``), sorted by task, family
    and trial number: :data:`FLAGGED_COLUMNS`."""
    t = trials[trials["flag"].notna()]
    return t.loc[t["flag"] != "ok", FLAGGED_COLUMNS].sort_values(["task", "family", "number"])
