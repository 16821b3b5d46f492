"""Which arms are compared and which one is chosen (pure functions from frames to frames).

* **One selection rule** (:func:`selection_keys`, :func:`best_of`): an arm is chosen on the mean
  validation metric of its confirm units (failures scored too), never on the test metric it reports;
  the leaderboard, the findings and every "best arm" use it.
* **Equal budgets** (:func:`equal_budget`): families are compared on the arms they share,
  optimizers on the regularizer sets they share.
* **Nothing pooled that differs** (:func:`separate_arms`): arms of one task run with different
  budgets are told apart as tasks (``mnist1d [20 epochs, ...]``), the same arm from several sources
  or with other fixed params as families (``mlp [runs/a]``), so they are never averaged together and
  only compared where the budget is equal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reports.stats import ARM


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


#: the rankings of the report: (plural, problem columns, solver column). Families are compared per
#: task, optimizers per task and family.
RANKINGS = (("families", ("task",), "family"), ("optimizers", ("task", "family"), "optimizer"))


def family_basis(arms: pd.DataFrame, compared: pd.DataFrame) -> pd.DataFrame:
    """How each task's families are compared (:func:`equal_budget` across families).

    Args:
        arms: :func:`reports.stats.arm_summary` rows of every arm.
        compared: the rows :func:`equal_budget` keeps (with its ``common`` column).

    Returns:
        One row per (task, family) with confirm results, sorted: ``n_arms`` (the family's arms),
        ``basis`` (per task: ``single``, its only family; ``common``, compared on their common arms;
        ``unequal``, no common arm and different numbers of arms; ``different``, no common arm and as
        many arms each), ``n_common`` (the task's common arms, 0 unless ``common``) and ``more`` (the
        family also ran arms that are not common ones).
    """
    cols = ["task", "family", "n_arms", "basis", "n_common", "more"]
    rows = []
    for task, a in arms.groupby("task", sort=True):
        c = compared[compared["task"] == task]
        n_arms = a.groupby("family").size()
        if len(n_arms) == 1:
            basis, n_common = "single", 0
        elif c["common"].any():
            basis, n_common = "common", len(c[["optimizer", "regularizers"]].drop_duplicates())
        else:
            basis, n_common = ("unequal" if n_arms.nunique() > 1 else "different"), 0
        rows += [{"task": task, "family": f, "n_arms": int(n), "basis": basis, "n_common": n_common,
                  "more": basis == "common" and int(n) > n_common} for f, n in n_arms.items()]
    return pd.DataFrame(rows, columns=cols)


def not_chosen(arms: pd.DataFrame, best: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The groups of ``by`` columns that have arms but no chosen one in ``best`` (:func:`best_of`):
    none of their arms has a selection key, and the test metric never chooses.

    Returns:
        ``by`` columns (as text, sorted) and ``reason``.
    """
    by = list(by)

    def keys(frame: pd.DataFrame) -> set[tuple[str, ...]]:
        return set(map(tuple, frame[by].astype(str).to_numpy())) if len(frame) else set()

    left = sorted(keys(arms) - keys(best))
    return pd.DataFrame([[*k, "no confirm validation value"] for k in left], columns=[*by, "reason"])


def ineligible(arms: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``arms`` that cannot be chosen (no selection key, :func:`selection_keys`), in
    their order, with ``reason``."""
    out = arms[selection_keys(arms)["selected_on"].isna()]
    return out.assign(reason="no confirm validation value")


def regularized(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the (task, family, optimizer) pairs that ran with a regularizer set, ``none``
    included: the pairs a regularizer can be compared within (rows in their order, index reset)."""
    pairs = runs.loc[runs["regularizers"] != "none", ["task", "family", "optimizer"]].drop_duplicates()
    return runs.merge(pairs, on=["task", "family", "optimizer"])


def regularizer_effects(arms: pd.DataFrame) -> pd.DataFrame:
    """Each regularized arm against the same (task, family, optimizer) without regularizers.

    Returns:
        One row per arm whose regularizers are not ``none``, grouped by (task, family, optimizer):
        ``ARM`` columns, ``n``, ``mean`` (test), ``vs_none`` (``mean`` minus the unregularized arm's),
        ``gap_mean``, ``gap_vs_none``; both differences None where no arm without regularizers ran
        (``reason`` says so).
    """
    cols = [*ARM, "n", "mean", "vs_none", "gap_mean", "gap_vs_none", "reason"]
    rows = []
    for (task, fam, opt), g in arms.groupby(["task", "family", "optimizer"], sort=True):
        base = g[g["regularizers"] == "none"]
        for _, r in g[g["regularizers"] != "none"].iterrows():
            rows.append({"task": task, "family": fam, "optimizer": opt, "regularizers": r["regularizers"],
                         "n": r["n"], "mean": r["mean"],
                         "vs_none": r["mean"] - base["mean"].iloc[0] if len(base) else None,
                         "gap_mean": r["gap_mean"],
                         "gap_vs_none": r["gap_mean"] - base["gap_mean"].iloc[0] if len(base) else None,
                         "reason": None if len(base) else "no arm without regularizers"})
    return pd.DataFrame(rows, columns=cols)
