"""Findings: what the data support per task, as sentences (:mod:`reports.findings` decides them)."""

from __future__ import annotations

from reports.blocks import Block, note, task_heading, text
from reports.context import Context
from reports.findings import tests_per_question

SLUG = "findings"
TITLE = "Findings"


def render(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials: no finding can be stated yet.")]
    kinds = sorted({str(k) for k in ctx.arms["unit_kind"].dropna()})
    unit = ("a unit is one study (an independent tuning run of the arm, with its own sampler stream and "
            "tuning seed, confirmed on its own seeds; its value is the mean over them), so tuning luck is "
            "inside every interval" if kinds == ["study"] else
            "a unit is one confirm seed of the arm's single tuning study, so the intervals cover "
            "initialisation and batch order but not tuning luck (run studies: 3 or more for that)"
            if kinds == ["seed"] else "a unit is a study where an arm ran several, else a confirm seed")
    m = tests_per_question(ctx.tests)
    blocks: list[Block] = [text(
        f"What the data support, per task. Families (each family's best arm among the arms they share), "
        f"then the optimizers within each family (each optimizer's best arm among the regularizer sets "
        f"they share), then the regularizer sets within each family and optimizer, are compared on "
        f"their paired per-unit differences: {unit}. A "
        f"failed or diverged run counts, scored at the task's worst value. The exact two-sided sign-flip "
        f"test decides (no normality assumed; its smallest p is 2 / 2^n, so 6 units are needed for p < "
        f"0.05), its inversion gives the {ctx.level:.0%} interval, and Holm's correction runs over every "
        f"test of one question in this report ({m['family']} of families, {m['optimizer']} of "
        f"optimizers, {m['regularizers']} of regularizer sets; alpha {ctx.alpha:g}). A difference that "
        f"holds gives P(A > B) over the paired runs with a bootstrap interval over units; a pair that "
        f"does not gives the smallest difference this design had an 80% chance to detect. One rule "
        f"chooses every arm and the winner: the confirm validation mean (the test metric is reported, "
        f"never used to choose); the leaderboard ranks by it. Each finding states its budget.")]
    for line in ctx.separated[1]:
        blocks.append(note(line))
    heads = {"optimizer": "Optimizers, within each family:",
             "regularizers": "Regularizer sets, within each family and optimizer:"}
    for task in ctx.tasks:
        found = [f for f in ctx.findings if f["task"] == task]
        blocks.append(task_heading(ctx, task))
        if not found:
            blocks.append(note("No finding: no family of this task has a chosen arm with confirm results."))
        subject = "family"
        for f in found:
            if f.get("subject", "family") != subject:
                subject = f["subject"]
                blocks.append(text(heads.get(subject, f"{subject}:")))
            blocks.append(text(f["text"]))
    return blocks
