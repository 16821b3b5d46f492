"""Across devices: the same arms set side by side per machine (:func:`reports.costs.device_table`)."""

from __future__ import annotations

import numpy as np

from reports import costs, figures
from reports.blocks import Block, figure, note, table, text
from reports.context import Context

SLUG = "devices"
TITLE = "Across devices"
PANELS = [("samples_per_s", "throughput (samples/s)"), ("time_to_target_s", "time to target (s)"),
          ("kwh_1k", "kWh per 1,000 samples")]
COLUMNS = {"arm_label": "arm", "machine": "machine", "n": "n", "samples_per_s": "samples/s",
           "time_to_target_s": "time to target s", "kwh_1k": "kWh / 1k samples", "test": "test mean"}


def render(ctx: Context) -> list[Block]:
    machines = sorted(ctx.trials["machine"].dropna().astype(str).unique())
    if not machines:
        return [note("The records name no machine (no device or hardware field): nothing to compare.")]
    if len(machines) < 2:
        return [note(f"All trials ran on one machine ({machines[0]}): nothing to compare across devices.")]
    if ctx.confirm.empty:
        return [note(f"{len(machines)} machines in the data but no completed confirm trials to compare.")]
    g = costs.device_table(ctx.confirm)
    blocks = [text(f"Machines (device: model): {', '.join(machines)}. Same arms, confirm trials, means per "
                   "machine; energy per 1,000 training samples = kWh / (samples/s x fit time) x 1,000.")]
    if g.empty:
        blocks.append(note("No arm ran on more than one machine: nothing to set side by side."))
        return blocks
    g = g.assign(arm_label=g["task"].astype(str) + " / " + g["family"].astype(str) + " / "
                 + g["optimizer"].astype(str) + " / " + g["regularizers"].astype(str))
    panels = [p for p in PANELS if np.isfinite(g[p[0]].astype(float)).any()]
    for col, label in [("time_to_target_s", "time to target"), ("kwh_1k", "energy per 1,000 samples")]:
        if col not in [p[0] for p in panels]:
            blocks.append(note(f"No {label} recorded for these arms."))
    if panels:
        blocks.append(figure(figures.devices_figure(g, panels), "arms side by side per machine"))
    blocks.append(table(g[list(COLUMNS)].rename(columns=COLUMNS).sort_values(["arm", "machine"])))
    return blocks
