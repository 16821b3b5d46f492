"""Findings: what the data support, as sentences with their evidence and budget (pure functions).

Per task: which family to use (the family whose compared arm has the best mean *validation* metric
over the confirm seeds; its test metric is what is reported), then every pair of families compared
on their per-seed differences over the shared confirm seeds (:func:`reports.paired.pairwise`, Holm
across the task's pairs): a difference that holds after Holm is stated as such, any other as "not
distinguishable at this budget". Every finding names the budget it holds for (tuning trials,
epochs, confirm seeds, profile, search space), read from the studies' ``protocol`` attrs.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from reports.paired import pairwise

ARM = ["task", "family", "optimizer", "regularizers"]


def g(x: float) -> str:
    """A number as a sentence shows it (3 significant digits)."""
    return "nan" if x is None or not math.isfinite(float(x)) else f"{float(x):.3g}"


def budget(studies: pd.DataFrame, task: str) -> dict[str, Any]:
    """The budget the task's arms were run with: each protocol value, joined when studies differ."""
    rows = studies[studies["task"] == task]
    out: dict[str, Any] = {}
    benches = sorted({str(b) for b in rows["benchmark"].dropna()})
    out["profile"] = ", ".join(benches) or None
    for key in ("tune_trials", "epochs", "confirm_seeds", "space"):
        values = sorted({str(p.get(key)) for p in rows["protocol"] if isinstance(p, dict) and key in p})
        out[key] = ", ".join(values) or None
    return out


def budget_text(b: dict[str, Any]) -> str:
    parts = [f"{b['tune_trials']} tuning trials" if b.get("tune_trials") else None,
             f"{b['epochs']} epochs" if b.get("epochs") else None,
             f"{b['confirm_seeds']} confirm seeds" if b.get("confirm_seeds") else None,
             f"space {b['space']}" if b.get("space") else None,
             f"profile {b['profile']}" if b.get("profile") else None]
    return "budget per arm: " + (", ".join(p for p in parts if p) or "not recorded")


def arm_text(row: pd.Series) -> str:
    config = row.get("config")
    params = f", {config}" if isinstance(config, str) and config else ""
    return f"{row['optimizer']} / {row['regularizers']}{params}"


def task_findings(task: str, best: pd.DataFrame, confirm: pd.DataFrame, studies: pd.DataFrame, *,
                  level: float = 0.95, alpha: float = 0.05) -> list[dict[str, Any]]:
    """The findings of one task.

    Args:
        task: the task.
        best: each family's compared arm on this task (rows of :func:`reports.stats.best_of` on the
            equal-budget arms: ``ARM``, ``metric``, ``direction``, ``n``, ``mean``, ``ci_low``,
            ``ci_high``, ``val_mean``, ``config``).
        confirm: the confirm trials the report compares (``seed``, ``test`` and the ``ARM`` columns).
        studies: the study frame (``task``, ``benchmark``, ``protocol``).

    Returns:
        Dicts with ``task``, ``kind`` (``recommendation``, ``difference``, ``indistinguishable`` or
        ``not compared``), ``text`` (one sentence, the budget included), ``evidence`` and ``budget``.
    """
    b = best[best["task"] == task]
    if b.empty:
        return []
    bud = budget(studies, task)
    suffix = f" [{budget_text(bud)}]"
    metric, direction = str(b["metric"].iloc[0]), str(b["direction"].iloc[0])
    sign = 1 if direction == "maximize" else -1
    key = b["val_mean"].astype(float).where(b["val_mean"].notna(), -math.inf * sign)
    top = b.loc[(sign * key).idxmax()]
    seeds = int(top["n"])
    out = [{
        "task": task, "kind": "recommendation",
        "text": (f"On {task}, use {top['family']} ({arm_text(top)}): test {metric} {g(top['mean'])}"
                 + (f" ({level:.0%} CI {g(top['ci_low'])}..{g(top['ci_high'])}, {seeds} seeds)" if seeds > 1
                    else " (1 seed: no interval)")
                 + f", chosen on its confirm validation {metric} {g(top['val_mean'])}" + suffix),
        "evidence": {"family": top["family"], "optimizer": top["optimizer"],
                     "regularizers": top["regularizers"], "config": top.get("config"), "metric": metric,
                     "mean": top["mean"], "n": seeds, "ci": [top["ci_low"], top["ci_high"]],
                     "val_mean": top["val_mean"]},
        "budget": bud, "subject": "family",
    }]
    if len(b) < 2:
        return out
    table = pairwise(confirm, b, label="family", level=level, alpha=alpha)
    ties = sorted({str(r["b"] if r["a"] == top["family"] else r["a"]) for _, r in table.iterrows()
                   if top["family"] in (r["a"], r["b"]) and not r["significant"]})
    if ties:
        tied = f"; not distinguishable from {', '.join(ties)} at this budget"
        out[0]["text"] = out[0]["text"].replace(suffix, tied + suffix)
        out[0]["evidence"]["not_distinguishable_from"] = ties
    out += pair_findings(table, task, metric, task, suffix, bud, level=level, alpha=alpha)
    return out


def pair_findings(table: pd.DataFrame, task: str, metric: str, where: str, suffix: str,
                  bud: dict[str, Any], *, level: float, alpha: float,
                  subject: str = "family") -> list[dict[str, Any]]:
    """One finding per row of a :func:`reports.paired.pairwise` table: a difference that holds after
    Holm, a pair not distinguishable at this budget, or a pair that cannot be compared."""
    out = []
    for _, r in table.iterrows():
        evidence = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in r.items()}
        evidence.update(metric=metric, subject=subject, where=where)
        if r["n"] < 2:
            kind = "not compared"
            text = (f"{r['a']} and {r['b']} on {where} cannot be compared: {int(r['n'])} shared confirm "
                    "seed(s), a paired comparison needs 2")
        elif r["significant"]:
            kind = "difference"
            caveat = (f"; with {int(r['n'])} seeds this rests on the t distribution: an exact sign-flip "
                      f"test cannot go below p = {g(r['p_perm_min'])}" if r["p_perm_min"] >= alpha else "")
            text = (f"{r['a']} beats {r['b']} on {where} by {g(r['diff'])} {metric} ({level:.0%} CI "
                    f"{g(r['ci_low'])}..{g(r['ci_high'])}, paired over {int(r['n'])} seeds, p = "
                    f"{g(r['p_holm'])} after Holm{caveat})")
        else:
            kind = "indistinguishable"
            unadjusted = (f", an interval not adjusted for the {len(table)} comparisons"
                          if r["ci_low"] > 0 else "")
            text = (f"{r['a']} and {r['b']} are not distinguishable on {where} at this budget: difference "
                    f"{g(r['diff'])} {metric} ({level:.0%} CI {g(r['ci_low'])}..{g(r['ci_high'])}"
                    f"{unadjusted}, paired over {int(r['n'])} seeds, p = {g(r['p_holm'])} after Holm)")
        out.append({"task": task, "kind": kind, "subject": subject, "text": text + suffix,
                    "evidence": evidence, "budget": bud})
    return out


def method_findings(task: str, arms: pd.DataFrame, confirm: pd.DataFrame, studies: pd.DataFrame, *,
                    level: float = 0.95, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Optimizers compared within each family of ``task`` (each optimizer's best arm over its
    regularizer sets, chosen on tuning data), then regularizer sets within each family and optimizer;
    each table Holm-corrected on its own.

    Args:
        arms: :func:`reports.stats.arm_summary` rows of every arm (all tasks).
    """
    from reports.stats import best_of

    a = arms[arms["task"] == task]
    if a.empty:
        return []
    bud = budget(studies, task)
    suffix = f" [{budget_text(bud)}]"
    metric = str(a["metric"].iloc[0])
    optimizers: list[dict[str, Any]] = []
    regularizers: list[dict[str, Any]] = []
    for family, fa in a.groupby("family", sort=True):
        best = best_of(fa, ["task", "family", "optimizer"])
        if len(best) >= 2:
            table = pairwise(confirm, best, label="optimizer", level=level, alpha=alpha)
            optimizers += pair_findings(table, task, metric, f"{task} / {family}", suffix, bud, level=level,
                                        alpha=alpha, subject="optimizer")
        for optimizer, fo in fa.groupby("optimizer", sort=True):
            if fo["regularizers"].nunique() < 2:
                continue
            table = pairwise(confirm, fo, label="regularizers", level=level, alpha=alpha)
            regularizers += pair_findings(table, task, metric, f"{task} / {family} / {optimizer}", suffix,
                                          bud, level=level, alpha=alpha, subject="regularizers")
    return optimizers + regularizers
