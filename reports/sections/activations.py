"""Activations and gradient health: the flags of every trial (:mod:`reports.health`)."""

from __future__ import annotations

from reports import figures, health
from reports.blocks import Block, figure, note, table, text
from reports.context import Context

SLUG = "activations"
TITLE = "Activations and gradient health"


def render(ctx: Context) -> list[Block]:
    t = ctx.trials[ctx.trials["flag"].notna()]
    if t.empty:
        return [note("No trial recorded gradient diagnostics.")]
    blocks = [text("Every trial (tuning and confirm) is flagged from its gradient norms: vanishing when "
                   "the median over epochs of |grad first layer| / |grad last layer| is below 1e-3, "
                   "exploding above 1e3 or on any non-finite gradient or loss, ok otherwise.")]
    blocks.append(figure(figures.health_figure(t), "gradient-health flags per activation"))
    blocks.append(table(health.flag_counts(t), "Flags per family and activation (dead ReLU: mean final "
                                               "fraction of units that never fire on a probe batch)"))
    flagged = health.flagged(t)
    if flagged.empty:
        blocks.append(note("No trial was flagged vanishing or exploding."))
    else:
        blocks.append(table(flagged, "Flagged trials"))
    return blocks
