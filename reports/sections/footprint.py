"""Footprint: energy, emissions and time to target per arm, and the Pareto front of cost against
quality (:mod:`reports.costs`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import costs, figures
from reports.blocks import Block, arm_label, figure, fmt, note, table, task_heading, text
from reports.context import Context

SLUG = "footprint"
TITLE = "Footprint"
COSTS = {"energy_kwh": "energy per trial (kWh)", "fit_s": "train time (s)"}


def render(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials: no footprint per arm.")]
    methods = sorted(ctx.confirm["energy_method"].dropna().astype(str).unique())
    blocks = [text("Per arm (confirm trials, mean per trial): energy and emissions, and the time and energy "
                   "until the validation metric first reached the task's target (time_s of the curves at "
                   "that epoch; energy prorated as kWh x time-to-target / fit time), averaged over the "
                   "seeds that reached it (\"reached by k of n\": n counts failed seeds too). Energy "
                   "method: " + (", ".join(methods) or "not recorded") + ".")]
    cost = costs.cost_column(ctx.arms)
    label = COSTS[cost]
    if cost != "energy_kwh":
        blocks.append(note("No energy recorded: the Pareto front is drawn against training time instead."))
    arms = costs.footprint(ctx.arms, cost, {task: ctx.task_info(task)[1] for task in ctx.tasks})
    for task in ctx.tasks:
        metric, _, _ = ctx.task_info(task)
        a = arms[arms["task"] == task]
        blocks.append(task_heading(ctx, task))
        if a.empty:
            blocks.append(note("No completed confirm trials for this task."))
            continue
        if np.isfinite(a[cost].astype(float)).any():
            blocks.append(figure(figures.footprint_figure(metric, a, cost, label),
                                 f"{task}: metric against {label}",
                                 "Ringed points joined by the dashed line: the Pareto front (no other arm "
                                 "is both cheaper and better)."))
        else:
            blocks.append(note(f"No arm of this task recorded {label}."))
        rows = [{"family": r["family"], "arm": arm_label(r), "n": r["n"], f"test {metric}": r["mean"],
                 "kWh / trial": r["energy_kwh"], "kg CO2 / trial": r["emissions_kg"],
                 "train time s": r["fit_s"],
                 "time to target s": reached_text(r["time_to_target_s"], r),
                 "energy to target kWh": reached_text(r["energy_to_target_kwh"], r),
                 "Pareto": bool(r["pareto"])}
                for _, r in a.sort_values(["family", "optimizer", "regularizers"]).iterrows()]
        blocks.append(table(pd.DataFrame(rows)))
    return blocks


def reached_text(value: float, arm: pd.Series) -> str:
    """A to-target mean with how many of the arm's confirm runs (failed ones too) it averages."""
    k, n = int(arm["reached"]), int(arm.get("runs", arm["n"]))
    if k == 0:
        return f"not reached (0 of {n})"
    return f"{fmt(value) if np.isfinite(float(value)) else '-'} (reached by {k} of {n})"
