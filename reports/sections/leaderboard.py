"""Leaderboard per task: each family's compared arm, ranked by the one selection rule
(:func:`reports.selection.ranked`)."""

from __future__ import annotations

import pandas as pd

from reports.blocks import Block, arm_label, ci_text, note, table, task_heading, text
from reports.context import Context
from reports.findings import units_text
from reports.sections._shared import family_budget
from reports.selection import ranked

SLUG = "leaderboard"
TITLE = "Leaderboard per task"


def render(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        n_tune = int((ctx.trials["phase"] == "tune").sum())
        return [note(f"No completed confirm trials: the leaderboard compares confirm re-runs only "
                     f"({n_tune} tuning trials exist).")]
    blocks = [text(f"Each family's best arm (optimizer / regularizers) among the arms the task's families "
                   f"have in common, ranked by the one selection rule of the report: the mean validation "
                   f"metric of the arm's confirm units (failed runs scored at the task's worst value); rank "
                   f"1 is the family the findings recommend, unless the test metric says another beats it. "
                   f"'params of': what the confirm runs re-run (with one study). Numbers are the test "
                   f"metric over the confirm units: mean and the exact {ctx.level:.0%} interval (the "
                   f"sign-flip test inverted, within the metric's bounds; none below 6 units).")]
    best = ctx.family_best
    for task in ctx.tasks:
        b = best[best["task"] == task]
        blocks.append(task_heading(ctx, task))
        blocks += family_budget(ctx, task)
        if b.empty:
            blocks.append(note("No completed confirm trials for this task." if
                               ctx.arms[ctx.arms["task"] == task].empty else
                               "No arm of this task has a validation value to be chosen by."))
            continue
        rows = [{"rank": i + 1, "family": r["family"], "best arm": arm_label(r), "params of": r["config"],
                 "confirm val (chooses)": r["select_key"],
                 "units": units_text(int(r["n"]), str(r["unit_kind"])),
                 "failed runs": f"{r['failed']} of {r['runs']}" if r["failed"] else "",
                 "test mean": r["mean"], f"{ctx.level:.0%} CI": ci_text(r), "std": r["std"],
                 "params": r["n_params"], "train time s": r["fit_s"], "energy kWh": r["energy_kwh"]}
                for i, (_, r) in enumerate(ranked(b).iterrows())]
        blocks.append(table(pd.DataFrame(rows)))
    return blocks
