"""Architectures: each task's families compared on their compared arms (runs, intervals, curves)."""

from __future__ import annotations

from reports import figures
from reports.blocks import Block, figure, note, task_heading
from reports.context import Context
from reports.sections._shared import family_budget

SLUG = "architectures"
TITLE = "Architectures"


def render(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials to compare architecture families.")]
    best = ctx.family_best
    blocks: list[Block] = []
    for task in ctx.tasks:
        metric, direction, _ = ctx.task_info(task)
        b = best[best["task"] == task].sort_values("mean", ascending=direction != "maximize")
        blocks.append(task_heading(ctx, task))
        blocks += family_budget(ctx, task)
        if b.empty:
            blocks.append(note("No completed confirm trials for this task."))
            continue
        uri = figures.architecture_figure(ctx.best_trials(b), b, ctx.data.curves, metric)
        blocks.append(figure(uri, f"{task}: families compared",
                             "Left: each point is one confirm run of the family's best arm (as in the "
                             "leaderboard); bar: mean and exact "
                             f"{ctx.level:.0%} CI (none below 6 units). Right: validation {metric} per "
                             "epoch, mean over runs."))
    return blocks
