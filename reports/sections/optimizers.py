"""Optimizers: within each family, each optimizer's compared arm; performance profiles across tasks
(:mod:`reports.profiles`)."""

from __future__ import annotations

from reports import figures, selection
from reports.blocks import Block, figure, note, sub, task_heading, text
from reports.context import Context
from reports.profiles import REGRET_FLOOR, solver_profile

SLUG = "optimizers"
TITLE = "Optimizers"


def render(ctx: Context) -> list[Block]:
    tune = ctx.trials[(ctx.trials["phase"] == "tune") & (ctx.trials["state"] == "COMPLETE")]
    if ctx.confirm.empty and tune.empty:
        return [note("No completed trials to compare optimizers.")]
    blocks: list[Block] = []
    best = ctx.optimizer_best
    left = selection.not_chosen(ctx.arms, best, ["task", "family", "optimizer"])
    for task in ctx.tasks:
        metric, direction, _ = ctx.task_info(task)
        b = best[best["task"] == task] if len(best) else best
        tt = tune[tune["task"] == task]
        blocks.append(task_heading(ctx, task))
        if b.empty and tt.empty:
            blocks.append(note("No completed trials for this task."))
            continue
        fams = sorted(set(b["family"].astype(str)) | set(tt["family"].astype(str)))
        lt = left[left["task"] == task]
        if len(lt):
            blocks.append(note("Not shown (no confirm validation value to choose an arm by; the test metric "
                               "never chooses): " + ", ".join(f"{r['family']} {r['optimizer']}"
                                                              for _, r in lt.iterrows()) + "."))
        b = b.sort_values(["family", "mean"], ascending=[True, direction != "maximize"])
        trials = ctx.best_trials(b) if len(b) else ctx.confirm.iloc[0:0]
        uri = figures.optimizer_figure(metric, fams, trials, b, ctx.data.curves, tt)
        blocks.append(figure(uri, f"{task}: optimizers compared",
                             "Per family: runs and mean with the exact CI of each optimizer's best arm "
                             "(left), its validation curves (middle), and the validation metric of every "
                             "completed tuning trial against its learning rate (right, log scale)."))
    return blocks + profiles(ctx)


def profiles(ctx: Context) -> list[Block]:
    """Dolan-More profiles of families and of optimizers (:func:`reports.profiles.solver_profile`)."""
    blocks = [sub("Performance profiles across tasks"), text(
        "Dolan-More profiles: for each solver, the fraction of problems on which its cost is within a "
        "factor tau of the best solver's. Problems: tasks (families) and task / family pairs "
        "(optimizers); a solver's result on a problem is the test mean of its best arm (families: among "
        "their common arms, as in the leaderboard). The cost is the normalized regret "
        "(ideal - value) / (ideal - baseline) on the scale each task declares (accuracy: 1 and chance; "
        "ROC-AUC: 1 and 0.5; RMSE: 0 and the naive forecast's; modes: all and none): 0 is ideal, 1 the "
        f"trivial predictor; regrets are floored at {REGRET_FLOOR:g}. Only problems that every "
        "compared solver ran count.")]
    panels = {}
    reasons = []
    for kind, problem, solver in selection.RANKINGS:
        if ctx.confirm.empty:
            reasons.append(f"{kind}: no confirm trials")
            continue
        res = solver_profile(ctx.solver_best(solver), problem, solver)
        if res.reason == "solvers":
            reasons.append(f"{kind}: needs >= 2 {kind} to compare, has {res.solvers}")
            continue
        if res.incomplete:
            blocks.append(note(f"{kind.capitalize()}: left out of the profile (not every {solver} ran them): "
                               f"{', '.join(res.incomplete)}."))
        if res.unscaled:
            blocks.append(note(f"{kind.capitalize()}: left out of the profile (their records declare no "
                               f"ideal and baseline): {', '.join(res.unscaled)}."))
        if res.profile is None:
            reasons.append(f"{kind}: needs >= 2 problems that every compared {solver} ran, "
                           f"has {res.problems}")
            continue
        panels[kind] = res.profile
    if panels:
        blocks.append(figure(figures.profile_figure(panels), "performance profiles",
                             "Higher and further left is better; rho at tau = 1 is the share of problems "
                             "on which the solver is the best."))
    for r in reasons:
        blocks.append(note(f"No performance profile for {r}."))
    return blocks
