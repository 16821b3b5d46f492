"""Tuning curves and selection optimism (:mod:`reports.tuning`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import figures
from reports.blocks import Block, arm_label, figure, note, table, task_heading, text
from reports.context import Context
from reports.stats import ARM
from reports.tuning import selection_optimism, tuning_curves, tuning_progress

SLUG = "tuning"
TITLE = "Tuning curves and selection optimism"


def render(ctx: Context) -> list[Block]:
    curves = tuning_curves(ctx.trials)
    if curves.empty:
        return [note("No tuning trials: no tuning curve.")]
    blocks = [text("Per arm, the best tuning validation metric so far against the number of tuning trials "
                   "run (pruned and failed trials count as run): a curve still rising at its last trial says "
                   "more trials could change the answer. The table sets the tuning validation value of the "
                   "params each arm stands for beside its confirm seeds' mean validation value; optimism = "
                   "the first minus the second (for metrics to minimize, the reverse): how much of the "
                   "tuning result was the luck of picking the best of several noisy trials.")]
    optimism = selection_optimism(ctx.arms)
    progress = tuning_progress(curves)
    for task in ctx.tasks:
        metric, _, _ = ctx.task_info(task)
        c = curves[curves["task"] == task]
        blocks.append(task_heading(ctx, task))
        if c.empty or not np.isfinite(c["best"].astype(float)).any():
            blocks.append(note("No completed tuning trial with a validation value for this task."))
            continue
        blocks.append(figure(figures.tuning_figure(metric, c), f"{task}: tuning curves",
                             "Step lines: best validation value after each tuning trial, per arm."))
        p = progress[progress["task"] == task]
        rising = p[p["rising"]]
        if len(rising):
            blocks.append(note("Still improving at the last tuning trial: "
                               + ", ".join(f"{r['family']} {arm_label(r)}" for _, r in rising.iterrows())
                               + " (more trials could change these arms' results)."))
        o = optimism[optimism["task"] == task].merge(p[[*ARM, "n_run"]], on=ARM, how="left")
        if len(o):
            rows = [{"family": r["family"], "arm": arm_label(r), "tuning trials": r["n_run"],
                     "tuning val (params chosen)": r["tune_best_val"], "confirm val mean": r["val_mean"],
                     "seeds": r["n"], "optimism": r["optimism"]}
                    for _, r in o.sort_values(ARM).iterrows()]
            blocks.append(table(pd.DataFrame(rows)))
    return blocks
