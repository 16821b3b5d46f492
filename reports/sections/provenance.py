"""Provenance: the sources, what the trials spent, the machines, the profiles, protocols and search
spaces (:mod:`reports.inventory` counts them)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports import inventory
from reports.blocks import Block, fmt, kv_table, note, plural, readable, sub, table
from reports.context import Context

SLUG = "provenance"
TITLE = "Provenance"
KINDS = {"run": "run folder", "rdb": "storage URL", "journal": "journal file"}


def render(ctx: Context) -> list[Block]:
    t, data = ctx.trials, ctx.data
    sources = inventory.source_table(t, data.studies, data.sources)
    sources = sources.assign(kind=sources["kind"].map(KINDS)).rename(
        columns={"first": "first trial", "last": "last trial"})
    blocks: list[Block] = [table(sources, "Sources (storage passwords masked)")]
    if t.empty:
        blocks.append(note("The sources hold no trials."))
        return blocks
    blocks += totals(ctx)
    blocks.append(table(inventory.state_counts(t), "Trials by phase and state"))

    blocks.append(sub("Machines"))
    blocks.append(table(inventory.machine_table(t).rename(columns={"ram_gb": "RAM GB"}),
                        "Hardware and software of every machine in the data"))
    if t["gpu_model"].isna().all() and t["cpu_model"].isna().all():
        blocks.append(note("The records carry no hardware fingerprint; machines are told apart by "
                           "device only."))

    blocks.append(sub("Profile and budgets"))
    blocks += profiles(ctx)
    return blocks


def totals(ctx: Context) -> list[Block]:
    """The totals table (:func:`reports.inventory.trial_totals`) and what it could not count."""
    t = ctx.trials
    tot = inventory.trial_totals(t)
    rows = [
        ("studies (arms)", len(ctx.data.studies)),
        ("trials", len(t)),
        ("full-trial equivalents (sum of epochs run / epochs)", tot["full_trials"]),
        ("epochs run (sum over trials)", tot["epochs_run"]),
        ("epochs run by pruned trials", tot["epochs_run_pruned"]),
        ("first trial started", tot["first"]),
        ("last trial started", tot["last"]),
        ("git commits", joined(tot["commits"])),
        *[(f"{'GPU' if d == 'cuda' else str(d).upper() + ' device'}-hours (trial wall time)", float(h))
          for d, h in tot["device_hours"].items()],
        ("energy, kWh (sum over trials)", tot["energy_kwh"]),
        ("emissions, kg CO2eq", tot["emissions_kg"]),
        ("trials with an energy measurement", f"{tot['measured']} of {len(t)}"),
        ("energy measurement method", joined(tot["methods"])),
        ("grid country (emissions factor)", joined(tot["countries"])),
    ]
    blocks = [kv_table(rows, "Totals")]
    if tot["unrecorded"]:
        blocks.append(note(f"{plural(tot['unrecorded'], 'trial')} recorded no epochs run (failed before "
                           "training, still running, or an older record): not counted in the epochs."))
    if tot["energy_kwh"] is None:
        blocks.append(note("No trial recorded energy (tracking was off or unavailable): kWh and CO2 "
                           "are not shown."))
    return blocks


def profiles(ctx: Context) -> list[Block]:
    """The profiles the studies and run folders record, the tuning protocols and the search spaces."""
    data, blocks = ctx.data, []
    recorded = inventory.study_profiles(data.studies)
    for _, row in recorded.iterrows():
        blocks.append(kv_table(flatten(row["profile"]),
                               f"Profile of benchmark {', '.join(row['benchmarks'])}"))
    for p in data.profiles:
        if "error" in p:
            blocks.append(note(f"profile.yaml of {p['source']} could not be read: {p['error']}"))
        else:
            blocks.append(kv_table(flatten(p["profile"]), f"profile.yaml in {p['source']}"))
    if recorded.empty and not data.profiles:
        blocks.append(note("No profile recorded (no study attribute 'profile', no profile.yaml)."))
    proto = data.studies[data.studies["protocol"].map(bool)]
    if len(proto):
        rows = pd.DataFrame([{"benchmark": fmt(r["benchmark"]),
                              **{str(k): readable(v) for k, v in r["protocol"].items()}}
                             for _, r in proto.iterrows()])
        rows = rows.fillna("-").drop_duplicates()
        blocks.append(table(rows, "Tuning protocol (budget per arm; '-': not recorded on that study)"))
    else:
        blocks.append(note("No tuning protocol recorded on the studies."))
    spaces = inventory.search_spaces(ctx.trials, data.studies)
    if spaces[["records", "protocol"]].notna().any().any():
        blocks.append(table(spaces.rename(columns={"records": "space (trial records)",
                                                   "protocol": "space (study protocol)"}),
                            "Search space tuned per benchmark (core or full; '-': not recorded)"))
    else:
        blocks.append(note("No search space recorded (no record field 'space', no protocol key 'space'): "
                           "which space was tuned is unknown."))
    return blocks


def flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as ``(dotted.key, value)`` pairs; lists stay values."""
    if not isinstance(d, dict):
        return [(prefix or "value", d)]
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out += flatten(v, key) if isinstance(v, dict) and v else [(key, v)]
    return out


def joined(values: list[str]) -> str:
    """``a, b``, or ``not recorded`` when there is none."""
    return ", ".join(values) if values else "not recorded"
