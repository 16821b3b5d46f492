"""Statistics: Friedman rankings of families and optimizers over problems, with the Nemenyi
critical-difference diagram after a rejection (:mod:`reports.ranks`)."""

from __future__ import annotations

from reports import figures, ranks, selection
from reports.blocks import Block, figure, note, sub, table, text
from reports.context import Context

SLUG = "statistics"
TITLE = "Statistics"


def render(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials: no ranking.")]
    blocks = [text(f"Friedman test over blocks (problems) of the best-arm test means, treatments ranked "
                   f"within each block (1 = best; tasks to minimize are ranked low-to-high), on the "
                   f"largest complete sub-table (the treatments and blocks in which every one of them "
                   f"ran), decided at alpha = {ctx.alpha} by the permutation p-value (every ordering of a "
                   f"block's values equally likely; exact for small tables), with the chi-square and "
                   f"Iman-Davenport F beside it. Only when it rejects "
                   f"is the Nemenyi critical difference (CD) drawn, telling which average ranks differ. "
                   f"Families are ranked by their best common arm per task, as in the leaderboard.")]
    for kind, problem, solver in selection.RANKINGS:
        values, directions = ranks.problem_table(ctx.solver_best(solver), problem, solver)
        blocks.append(sub(f"Ranking of {kind} (blocks: {' / '.join(problem)})"))
        res = ranks.friedman(ranks.orient(values, directions), "maximize", alpha=ctx.alpha)
        blocks.extend(friedman_blocks(res, kind, solver, ctx.alpha))
    return blocks


def friedman_blocks(res: ranks.FriedmanResult, kind: str, solver: str, alpha: float) -> list[Block]:
    """The ranking table, what was left out, the verdict and (only after a rejection) the CD diagram."""
    blocks: list[Block] = []
    if len(res.ranks):
        blocks.append(table(res.ranks.rename("average rank").rename_axis(solver).reset_index()))
    if res.left_out:
        blocks.append(note(f"Left out ({kind} missing in the blocks kept): "
                           f"{', '.join(map(str, res.left_out))}."))
    if res.dropped:
        blocks.append(note(f"Left out (blocks where a compared {solver} did not run): "
                           f"{', '.join(map(str, res.dropped))}."))
    if not res.ran:
        blocks.append(note(f"The Friedman test cannot run for {kind}: {res.reason}."))
        return blocks
    verdict = (f"the {kind} differ significantly (p < {alpha})." if res.significant else
               f"the differences between {kind} are NOT significant (p >= {alpha}); the ranking may be "
               f"chance, so no critical-difference diagram is drawn.")
    blocks.append(text(f"Friedman chi-square = {res.statistic:.3f} (asymptotic p = {res.pvalue:.3g}), "
                       f"Iman-Davenport F = {res.f_statistic:.3f} on ({res.k - 1}, "
                       f"{(res.k - 1) * (res.n - 1)}) df (p = {res.f_pvalue:.3g}), permutation p = "
                       f"{res.perm_pvalue:.3g} (k = {res.k} {kind}, n = {res.n} blocks): {verdict}"
                       + (f" Nemenyi CD = {res.cd:.3f}." if res.significant else "")))
    if res.significant:
        groups = ranks.cd_groups(res.ranks, res.cd)
        blocks.append(figure(figures.cd_diagram(res.ranks, res.cd, groups, f"{kind}: average rank"),
                             f"critical-difference diagram of {kind}",
                             "Treatments joined by a thick bar are not significantly different (Nemenyi)."))
    return blocks
