"""Regularizers: each regularizer set against the same family and optimizer without one
(:func:`reports.selection.regularizer_effects`)."""

from __future__ import annotations

import pandas as pd

from reports import figures, selection
from reports.blocks import Block, figure, note, table, task_heading, text
from reports.context import Context

SLUG = "regularizers"
TITLE = "Regularizers"


def render(ctx: Context) -> list[Block]:
    c = ctx.confirm
    if c.empty:
        return [note("No completed confirm trials to compare regularizers.")]
    if set(c["regularizers"].astype(str)) <= {"none"}:
        return [note("Every confirm trial ran without regularizers: nothing to compare.")]
    blocks = [text("Test metric and generalization gap (train minus validation primary metric at the last "
                   "epoch) of each regularizer set, per seed, for the family and optimizer pairs that ran "
                   "with a regularizer (so 'none' is the same optimizer without one); the table gives the "
                   "change of the means against that baseline.")]
    effects = selection.regularizer_effects(ctx.arms)
    for task in ctx.tasks:
        metric, _, _ = ctx.task_info(task)
        ct = selection.regularized(c[c["task"] == task])
        blocks.append(task_heading(ctx, task))
        if ct.empty:
            blocks.append(note("No confirm trials with a regularizer for this task."))
            continue
        blocks.append(figure(figures.regularizer_figure(metric, ct), f"{task}: regularizers compared"))
        rows = [{"family": r["family"], "optimizer": r["optimizer"], "regularizers": r["regularizers"],
                 "n": r["n"], "test mean": r["mean"], "vs none": r["vs_none"], "gap": r["gap_mean"],
                 "gap vs none": r["gap_vs_none"]}
                for _, r in effects[effects["task"] == task].iterrows()]
        blocks.append(table(pd.DataFrame(rows), "'-' in 'vs none': no arm without regularizers to compare"))
    return blocks
