"""Hardware: per task and machine, how many steps the target took (the method's) apart from the
seconds per step (the machine's), time and energy to target with intervals, work per joule, average
power, FLOPs utilisation and cost (:mod:`reports.hardware`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import figures, hardware
from reports.blocks import Block, figure, fmt, note, table, task_heading, text
from reports.context import Context

SLUG = "hardware"
TITLE = "Hardware"
PANELS = [("s_per_step", "seconds per step"), ("time_to_target_s", "time to target (s)"),
          ("j_per_1k", "J per 1,000 samples")]
HEADER = {"machine_id": "machine", "setup": "device x count · jobs per device · threads · precision",
          "trials": "trials", "hosts": "hosts", "driver": "driver", "cuda": "CUDA",
          "power_limit_w": "power limit W", "jobs": "jobs at once", "others": "others' GPU processes",
          "energy": "energy",
          "energy_method": "energy method"}


def interval(row: pd.Series, col: str) -> str:
    """``mean [low, high]`` of a to-target column, ``-`` where no run reached."""
    mean, low, high = (float(row.get(c, np.nan)) for c in (col, f"{col}_low", f"{col}_high"))
    if not np.isfinite(mean):
        return "-"
    return fmt(mean) + (f" [{fmt(low)}, {fmt(high)}]" if np.isfinite(low) else "")


def header_table(headers: pd.DataFrame) -> pd.DataFrame:
    """The machines' headers, without the columns no machine records (driver, CUDA and power limit
    on CPU-only reports)."""
    keep = [c for c in HEADER if c in ("machine_id", "setup") or (headers[c].astype(str) != "-").any()]
    return headers[keep].rename(columns=HEADER)


def rate(value: float) -> str:
    """A throughput: whole numbers with separators from 100 up, else :func:`fmt`."""
    v = float(value)
    return f"{v:,.0f}" if np.isfinite(v) and abs(v) >= 100 else fmt(v)


def render(ctx: Context) -> list[Block]:
    if ctx.trials.empty or ctx.trials["machine"].dropna().empty:
        return [note("The records name no machine (no device or hardware field): no hardware view.")]
    headers = hardware.machine_headers(ctx.trials)
    level = f"{ctx.level:.0%}"
    blocks = [text(
        "Machines are hardware setups told apart by their fingerprint (device and model, how many, how many "
        "trials shared a device while measured, threads per trial, precision), not by folder or host name. "
        "Per task, arm and machine (confirm runs): steps to target (the method's: optimizer steps until the "
        "epoch whose validation first reached the target) apart from seconds per step (the machine's: fit "
        "seconds / steps, validation included); time and energy to target with a " + level + " Student-t "
        "interval over the runs that reached it; samples/s, J per 1,000 training samples and average power "
        "over every run; MFU = forward+backward FLOPs per sample (Lightning's measure_flops) x samples/s / "
        "the device's peak FLOP/s, where Lightning's table knows the peak (not for CPUs)."),
        table(header_table(headers), "machines")]
    ids = hardware.machine_ids(ctx.trials)  # one id per machine on the whole page
    runs = hardware.per_run(ctx.confirm, ids) if not ctx.confirm.empty else pd.DataFrame()
    short = int(runs["short_window"].sum()) if not runs.empty else 0
    if short:
        blocks.append(note(
            f"{short} of {len(runs)} confirm runs measured their energy over a window shorter than "
            f"{hardware.RELIABLE_WINDOW_S:.0f} s (MLPerf's power rules ask for at least 60 samples at 1 Hz; "
            "CodeCarbon samples power every second): their energy and power are rough. Longer budgets or "
            "--jobs (one run-long measurement, apportioned) help."))
    busy = headers[headers["others"].astype(str).str.isdigit() & (headers["others"].astype(str) != "0")]
    if not busy.empty:
        blocks.append(note(
            f"Machines {', '.join(busy['machine_id'])}: other users' processes ran on a GPU while it was "
            "measured (NVML, at the start and end of each window): the energy counter includes their draw."))
    if "estimated" in set(headers["energy"]) or "measured in part" in set(headers["energy"]):
        blocks.append(note("Energy marked estimated comes in part from CodeCarbon's TDP x load model, not "
                           "a power counter: compare it across machines with care (RAM is CodeCarbon's "
                           "estimate everywhere)."))
    shared_energy = runs["energy_method"].astype(str).str.startswith("apportioned") if not runs.empty else []
    if len(shared_energy) and shared_energy.any() and not shared_energy.all():
        blocks.append(note(
            "Some machines measured each trial alone, others (--jobs) measured the run once and shared it "
            "out by CPU seconds, start-up and idle time included: their energy per sample carries that "
            "overhead, a per-trial window does not. Their average power is the machine's over the run."))
    if ctx.confirm.empty:
        blocks.append(note("No completed confirm trials: no per-machine figures."))
        return blocks
    prices = hardware.machine_prices(hardware.with_setups(ctx.trials, ids), ctx.prices)
    tab = hardware.hardware_table(ctx.confirm, prices, ids=ids, level=ctx.level)
    tab = tab.assign(arm_label=tab["family"].astype(str) + " / " + tab["optimizer"].astype(str) + " / "
                     + tab["regularizers"].astype(str)
                     + tab["fixed"].map(lambda f: f" [{f}]" if f else ""), machine=tab["machine_id"])
    shared = tab.groupby(["task", "arm_label"])["machine_id"].transform("nunique") >= 2
    panels = [p for p in PANELS if np.isfinite(tab.loc[shared, p[0]].astype(float)).any()]
    if shared.any() and panels:
        blocks.append(figure(figures.hardware_figure(tab[shared].assign(
            arm_label=tab["task"].astype(str) + " / " + tab["arm_label"]), panels),
            "arms that ran on several machines, side by side", "One bar per machine (its id in the table)."))
    if not np.isfinite(tab["mfu"].astype(float)).any():
        blocks.append(note("MFU: no machine of this report has a peak FLOP/s in Lightning's table."))
    for task in ctx.tasks:
        t = tab[tab["task"] == task]
        blocks.append(task_heading(ctx, task))
        if t.empty:
            blocks.append(note("No completed confirm trials for this task."))
            continue
        rows = []
        for _, r in t.iterrows():
            row = {"arm": r["arm_label"], "machine": r["machine_id"],
                   "reached": f"{r['reached']} of {r['runs']}",
                   "steps to target": interval(r, "steps_to_target"), "s / step": fmt(r["s_per_step"]),
                   "time to target s": interval(r, "time_to_target_s"),
                   "energy to target Wh": interval(r, "energy_to_target_wh"),
                   "samples/s": rate(r["samples_per_s"]), "J / 1k samples": fmt(r["j_per_1k"]),
                   "avg power W": fmt(r["power_w"]),
                   "MFU %": fmt(100 * float(r["mfu"]), 3) if np.isfinite(float(r["mfu"])) else "-"}
            if ctx.prices:
                row["cost to target USD"] = fmt(r["cost_to_target_usd"])
            rows.append(row)
        blocks.append(table(pd.DataFrame(rows)))
    return blocks
