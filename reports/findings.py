"""Findings: what the data support, as sentences with their evidence and budget (pure functions).

Three questions are asked of every task (each budget of a task is a task of its own here,
:func:`reports.selection.separate_arms`):

* **families**: each family's best arm among the arms the task's families share, compared pairwise;
* **optimizers**: within each family, each optimizer's best arm over the regularizer sets every
  optimizer of that family ran (an optimizer tuned with more sets is not favoured by its best of more);
* **regularizers**: within each family and optimizer, every regularizer set.

A pair is compared on its per-unit differences (:mod:`reports.paired`: a unit is a study with
several studies, else a confirm seed; failures scored at the task's worst value). The exact
sign-flip test decides; Holm's correction runs over **every** test of one question in the report,
and the sentence says over how many. A difference that holds states P(A > B) with a bootstrap
interval; a pair that is not distinguishable states the smallest difference the design had an 80%
chance to detect.

One selection rule (:func:`reports.selection.best_of`: the confirm validation mean) picks every
family's arm and the task's winner, which the leaderboard ranks first. When the test metric says
another family beats the winner, the report recommends none rather than two.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from reports.paired import MIN_UNITS, correct, detectable_effect, pairwise
from reports.selection import optimizer_best, ranked
from reports.stats import ARM, confirm_units

QUESTIONS = {"family": "families", "optimizer": "optimizers", "regularizers": "regularizer sets"}


def g(x: Any) -> str:
    """A number as a sentence shows it (3 significant digits)."""
    return "nan" if x is None or not math.isfinite(float(x)) else f"{float(x):.3g}"


def units_text(n: int, kind: str) -> str:
    """``8 studies`` or ``3 seeds of one tuning study``."""
    if kind == "study":
        return f"{n} {'study' if n == 1 else 'studies'}"
    return f"{n} {'seed' if n == 1 else 'seeds'} of one tuning study"


def interval_text(low: float, high: float, n: int, *, level: float, spread: bool = True) -> str:
    """``95% CI a..b`` (with "no spread" where the values are all equal), or ``no 95% CI from n
    units (needs 6)`` where the exact interval does not exist."""
    if n == 0:
        return "no shared unit"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"no {level:.0%} CI: {n} unit{'s' if n != 1 else ''}, an exact one needs {MIN_UNITS}"
    return f"{level:.0%} CI {g(low)}..{g(high)}" + ("" if spread else ", no spread")


def failures_text(failed: Any, runs: Any, label: str | None = None) -> str:
    """``k of n runs failed (scored ...)`` where k > 0, else empty."""
    k = int(failed or 0)
    if k == 0:
        return ""
    who = f"{label}: " if label else ""
    return f"{who}{k} of {int(runs)} runs failed (scored at the task's worst value)"


def arm_text(row: pd.Series) -> str:
    config = row.get("config")
    params = f", {config}" if isinstance(config, str) and config else ""
    return f"{row['optimizer']} / {row['regularizers']}{params}"


def budget_text(budget: str | None, benchmark: str | None) -> str:
    parts = [budget or "not recorded"] + ([f"profile {benchmark}"] if benchmark else [])
    return "budget per arm: " + ", ".join(parts)


def comparisons(arms: pd.DataFrame, family_best: pd.DataFrame, confirm: pd.DataFrame, *,
                level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """Every paired test of the report, one row each: ``question`` (``family``, ``optimizer``,
    ``regularizers``), ``task``, ``where``, :func:`reports.paired.pairwise` fields, ``failed_a`` /
    ``runs_a`` (and ``_b``), ``unit_kind``, ``m`` (tests of that question in the report), ``p_holm``
    (Holm over them) and ``significant``."""
    cols = ["question", "task", "where", "unit_kind", "failed_a", "runs_a", "failed_b", "runs_b"]
    units = confirm_units(confirm).rename(columns={"test": "score"})
    runs = confirm[[*ARM, "unit", "seed", "test"]].rename(columns={"seed": "run", "test": "score"}) \
        if len(confirm) else pd.DataFrame(columns=[*ARM, "unit", "run", "score"])
    tables = []

    def add(group: pd.DataFrame, question: str, where: str) -> None:
        if len(group) < 2:
            return
        table = pairwise(units, runs, group, label=question, key=ARM, level=level)
        info = group.set_index(group[question].astype(str))
        table["question"], table["task"], table["where"] = question, str(group["task"].iloc[0]), where
        table["unit_kind"] = str(group["unit_kind"].iloc[0])
        for side in ("a", "b"):
            table[f"failed_{side}"] = table[side].map(info["failed"]).astype(int)
            table[f"runs_{side}"] = table[side].map(info["runs"]).astype(int)
        tables.append(table)

    for task, b in family_best.groupby("task", sort=True):
        add(b, "family", str(task))
    for (task, family), fa in arms.groupby(["task", "family"], sort=True):
        add(optimizer_best(fa), "optimizer", f"{task} / {family}")
        for optimizer, fo in fa.groupby("optimizer", sort=True):
            add(fo, "regularizers", f"{task} / {family} / {optimizer}")
    if not tables:
        return pd.DataFrame(columns=[*cols, "a", "b", "n", "p", "p_holm", "significant", "m"])
    out = pd.concat(tables, ignore_index=True)
    out["p_holm"], out["significant"], out["m"] = float("nan"), False, 0
    for _question, idx in out.groupby("question").groups.items():
        adjusted, significant, m = correct(out.loc[idx, "p"].to_numpy(float), alpha=alpha)
        out.loc[idx, "p_holm"], out.loc[idx, "significant"], out.loc[idx, "m"] = adjusted, significant, m
    out["significant"] = out["significant"].astype(bool)
    return out


def tests_per_question(tests: pd.DataFrame) -> dict[str, int]:
    """Per question of :data:`QUESTIONS`, how many tests Holm's correction runs over (0: none)."""
    asked = tests["question"]
    return {q: int(tests.loc[asked == q, "m"].max()) if (asked == q).any() else 0 for q in QUESTIONS}


def pair_sentence(r: pd.Series, metric: str, *, level: float, alpha: float) -> tuple[str, str]:
    """The kind (``difference``, ``indistinguishable``, ``not compared``) and sentence of one test."""
    n, m = int(r["n"]), int(r["m"])
    if n == 0:
        return "not compared", (f"{r['a']} and {r['b']} on {r['where']} cannot be compared: they share no "
                                "unit (study or confirm seed)")
    question = QUESTIONS[str(r["question"])]
    fails = [failures_text(r[f"failed_{s}"], r[f"runs_{s}"], r[s]) for s in "ab"]
    fails = "".join(f"; {t}" for t in fails if t)
    tests = f"the {m} tests of {question}" if m != 1 else f"the 1 test of {question}"
    no_t = "" if r["spread"] else "; all differences equal: not testable by t"
    ci = interval_text(r["ci_low"], r["ci_high"], n, level=level, spread=bool(r["spread"]))
    evidence = (f"{g(r['diff'])} {metric} over {units_text(n, str(r['unit_kind']))} ({ci}; exact sign-flip "
                f"p = {g(r['p'])}, {g(r['p_holm'])} after Holm over {tests}{no_t})")
    if r["significant"]:
        prob = f"P({r['a']} > {r['b']}) = {g(r['prob'])} over paired runs"
        if r["prob_low"] == r["prob_high"] == r["prob"] == 1:
            prob += " (ahead in every unit)"
        elif math.isfinite(float(r["prob_low"])) and r["prob_low"] != r["prob_high"]:
            prob += f", {level:.0%} bootstrap interval over units {g(r['prob_low'])}..{g(r['prob_high'])}"
        return "difference", f"{r['a']} beats {r['b']} on {r['where']} by {evidence}; {prob}{fails}"
    level_m = alpha / max(m, 1)
    effect = detectable_effect(n, level_m)
    if not r["spread"] and r["diff"] == 0:
        detect = "identical on every unit"
    elif not math.isfinite(effect):
        detect = (f"nothing was detectable: {n} units give p >= {g(r['p_min'])}, and Holm over {m} tests "
                  f"needs p < {g(level_m)}")
    elif r["sd"] > 0:
        detect = (f"this design had an 80% chance to detect a difference of {g(effect * r['sd'])} {metric} "
                  f"or more (spread of the differences {g(r['sd'])}, {n} units, alpha {alpha:g} / {m})")
    else:
        detect = "the differences have no spread: the number of units, not the noise, limits this test"
    return "indistinguishable", (f"{r['a']} and {r['b']} are not distinguishable on {r['where']} at this "
                                 f"budget: difference {evidence}; {detect}{fails}")


def report_findings(arms: pd.DataFrame, family_best: pd.DataFrame, confirm: pd.DataFrame,
                    budgets: dict[str, tuple[str | None, str | None]], *, level: float = 0.95,
                    alpha: float = 0.05, tests: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Every task's findings: the recommendation (or why there is none), then the tests of families,
    optimizers and regularizer sets.

    Args:
        arms: :func:`reports.stats.arm_summary` rows of every arm.
        family_best: each (task, family)'s compared arm (:func:`reports.selection.best_of` on the
            equal-budget arms).
        confirm: the confirm runs (:func:`reports.stats.confirm_trials`).
        budgets: per task, ``(budget label, benchmark)``.
        tests: :func:`comparisons` (computed here when not given).

    Returns:
        Dicts with ``task``, ``kind`` (``recommendation``, ``no recommendation``, ``difference``,
        ``indistinguishable``, ``not compared``), ``subject``, ``text``, ``evidence``, ``budget``.
    """
    tests = comparisons(arms, family_best, confirm, level=level, alpha=alpha) if tests is None else tests
    out: list[dict[str, Any]] = []
    for task in sorted(set(arms["task"].astype(str))):
        budget, bench = budgets.get(task, (None, None))
        bud = {"budget": budget, "profile": bench}
        suffix = f" [{budget_text(budget, bench)}]"
        a = arms[arms["task"] == task]
        metric = str(a["metric"].iloc[0])
        t = tests[tests["task"] == task]
        out += recommendation(task, family_best[family_best["task"] == task], t[t["question"] == "family"],
                              metric, suffix, bud, level=level)
        for question in QUESTIONS:
            for _, r in t[t["question"] == question].iterrows():
                kind, text = pair_sentence(r, metric, level=level, alpha=alpha)
                evidence = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in r.items()}
                evidence["metric"] = metric
                out.append({"task": task, "kind": kind, "subject": question, "text": text + suffix,
                            "evidence": evidence, "budget": bud})
    return out


def recommendation(task: str, best: pd.DataFrame, family_tests: pd.DataFrame, metric: str, suffix: str,
                   bud: dict[str, Any], *, level: float) -> list[dict[str, Any]]:
    """The one winner of a task by the selection rule, or no recommendation when the test metric
    says another family beats it."""
    if best.empty:
        return []
    order = ranked(best)
    top = order.iloc[0]
    n = int(top["n"])
    evidence = {"family": top["family"], "optimizer": top["optimizer"], "regularizers": top["regularizers"],
                "config": top.get("config"), "metric": metric, "mean": top["mean"], "n": n,
                "unit_kind": top["unit_kind"], "ci": [top["ci_low"], top["ci_high"]],
                "select_key": top["select_key"], "failed": int(top["failed"]), "runs": int(top["runs"])}
    beaten = family_tests[(family_tests["b"] == str(top["family"])) & family_tests["significant"]]
    if len(beaten):
        r = beaten.sort_values("p_holm").iloc[0]
        text = (f"On {task}, no family is recommended at this budget: the selection rule (confirm validation "
                f"{metric}) chose {top['family']} ({g(top['select_key'])}), but {r['a']} beats it on test by "
                f"{g(r['diff'])} {metric} (p = {g(r['p_holm'])} after Holm): validation and test disagree")
        return [{"task": task, "kind": "no recommendation", "subject": "family", "text": text + suffix,
                 "evidence": {**evidence, "beaten_by": r["a"]}, "budget": bud}]
    ci = interval_text(top["ci_low"], top["ci_high"], n, level=level, spread=bool(top["spread"]))
    others = len(order) - 1
    chosen = (f"chosen on its confirm validation {metric} {g(top['select_key'])}"
              + (f", the best of {others + 1} families" if others else ", the only family"))
    fails = failures_text(top["failed"], top["runs"])
    several = bool(top.get("common", False)) and int(top.get("n_arms", 1)) > 1
    shared = ", the arm the families share" if several else ""
    text = (f"On {task}, use {top['family']} ({arm_text(top)}{shared}): test {metric} {g(top['mean'])} over "
            f"{units_text(n, str(top['unit_kind']))} ({ci}), {chosen}" + (f"; {fails}" if fails else ""))
    mine = family_tests[(family_tests["a"] == str(top["family"])) | (family_tests["b"] == str(top["family"]))]
    ties = sorted({str(r["b"] if r["a"] == str(top["family"]) else r["a"]) for _, r in mine.iterrows()
                   if not r["significant"]})
    if ties:
        text += f"; not distinguishable from {', '.join(ties)} at this budget"
        evidence["not_distinguishable_from"] = ties
    return [{"task": task, "kind": "recommendation", "subject": "family", "text": text + suffix,
             "evidence": evidence, "budget": bud}]

