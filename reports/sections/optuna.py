"""Optuna: per study its trial counts, best tuning trial and parameter importances
(:func:`reports.inventory.study_table`), and how to open the dashboard."""

from __future__ import annotations

import shlex

import pandas as pd

from reports import figures, inventory
from reports.blocks import Block, code, figure, fmt, note, sub, table
from reports.context import Context
from reports.load import IMPORTANCE_EVALUATOR

SLUG = "optuna"
TITLE = "Optuna"


def render(ctx: Context) -> list[Block]:
    data = ctx.data
    blocks: list[Block] = []
    if data.studies.empty:
        blocks.append(note("The sources hold no Optuna studies."))
    else:
        studies = inventory.study_table(ctx.trials, data.studies, data.importances)
        rows = [{"study": s["study"], "source": s["source"], "direction": s["direction"],
                 "complete": s["complete"], "pruned": s["pruned"], "failed": s["failed"],
                 "running": s["running"], "best value (tune)": s["best_value"],
                 "best params": ", ".join(f"{k}={fmt(v)}" for k, v in s["best_params"].items()) or None,
                 "importances": ", ".join(f"{p} {fmt(v, 2)}" for p, v in s["importances"])
                 or f"not computed: {s['importance_note']}"}
                for _, s in studies.iterrows()]
        blocks.append(table(pd.DataFrame(rows), "Per study: trial counts, best tuning trial, parameter "
                                                f"importances ({IMPORTANCE_EVALUATOR})"))
        if data.importances.empty:
            blocks.append(note("No study had parameter importances (see the reasons in the table)."))
        else:
            blocks.append(figure(figures.importance_figure(data.importances), "parameter importances"))
    blocks.append(sub("Dashboard"))
    for s in data.sources:
        blocks.append(code(f"suite dashboard {shlex.quote(s.label)}"))
        if s.kind == "rdb" and s.label != s.target:
            blocks.append(note("The password is masked here; give the real storage URL."))
    return blocks
