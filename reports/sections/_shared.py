"""Phrasing that several sections share (no section itself: the name starts with ``_``)."""

from __future__ import annotations

from reports import selection
from reports.blocks import Block, arm_label, join_and, note, plural, text
from reports.context import Context


def family_budget(ctx: Context, task: str) -> list[Block]:
    """One sentence on which arms ``task``'s families are compared on
    (:func:`reports.selection.family_basis`), and notes on the families and arms that could not be
    chosen (:func:`reports.selection.not_chosen`, :func:`reports.selection.ineligible`)."""
    basis = ctx.family_basis[ctx.family_basis["task"] == task]
    if basis.empty:
        return []
    n_arms = {str(f): int(n) for f, n in zip(basis["family"], basis["n_arms"], strict=True)}
    how = str(basis["basis"].iloc[0])
    compared = ctx.family_arms[ctx.family_arms["task"] == task]
    if how == "single":
        (fam, n), = n_arms.items()
        blocks = [text(f"Only {fam} has confirm results for this task: its best of {plural(n, 'arm')} is "
                       "shown.")]
    elif how == "common":
        common = compared[["optimizer", "regularizers"]].drop_duplicates().sort_values(
            ["optimizer", "regularizers"])
        labels = ", ".join(arm_label(r) for _, r in common.iterrows())
        more = [str(f) for f in basis.loc[basis["more"], "family"]]
        if more:
            blocks = [text(f"Families compared on their common arms: {labels}; {join_and(more)} "
                           f"{'was' if len(more) == 1 else 'were'} also tuned with other arms ("
                           + ", ".join(f"{f}: {n_arms[f]} in all" for f in more)
                           + "), shown in the Optimizers and Regularizers sections.")]
        else:
            blocks = [text(f"Every family ran the same {plural(len(common), 'arm')} ({labels}): each "
                           "family's best is chosen among all of them.")]
    else:
        counts = ", ".join(f"{f} {plural(n, 'arm')}" for f, n in n_arms.items())
        why = "the budgets differ" if how == "unequal" else "they were tuned on different arms"
        blocks = [text(f"The families share no arm: each family's best arm is shown, and {why} ({counts}).")]
    best = ctx.family_best[ctx.family_best["task"] == task]
    unranked = list(selection.not_chosen(compared, best, ["family"])["family"])
    if unranked:
        blocks.append(note(f"Not ranked: {join_and(unranked)} (no confirm validation value on the arms "
                           "compared, and the test metric never chooses)."))
    bad = selection.ineligible(compared)
    bad = bad[~bad["family"].astype(str).isin(unranked)]
    if len(bad):
        blocks.append(note("Not eligible to be chosen (no confirm validation value): "
                           + ", ".join(f"{r['family']} {arm_label(r)}" for _, r in bad.iterrows()) + "."))
    return blocks
