"""What ran: compute spent, search spaces, sources, machines and studies (pure functions from the
report's frames to frames)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def epoch_totals(trials: pd.DataFrame) -> dict[str, float]:
    """The compute the trials actually spent, in epochs (a pruned trial is not a full trial).

    Returns:
        ``epochs_run`` (sum over the trials that recorded it), ``epochs_run_pruned`` (the part run by
        PRUNED trials), ``full_trials`` (full-trial equivalents: the sum of ``epochs_run / epochs``
        over the trials that recorded both, with ``epochs > 0``), ``recorded`` (how many trials
        recorded ``epochs_run``) and ``trials`` (how many trials in all). Ten trials pruned after 2
        of 20 epochs are 20 epochs and 1 full-trial equivalent.
    """
    run = pd.to_numeric(trials["epochs_run"], errors="coerce").astype(float)
    planned = pd.to_numeric(trials["epochs"], errors="coerce").astype(float)
    has_run = np.isfinite(run)
    frac = np.isfinite(planned) & (planned > 0) & has_run
    return {"epochs_run": float(run[has_run].sum()),
            "epochs_run_pruned": float(run[has_run & (trials["state"] == "PRUNED")].sum()),
            "full_trials": float((run[frac] / planned[frac]).sum()),
            "recorded": int(has_run.sum()), "trials": len(trials)}


def search_spaces(trials: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, which search space was tuned: from the trial records and the study protocols.

    Args:
        trials: the trial frame (its ``benchmark`` and ``space`` columns; ``space`` is ``core``,
            ``full`` or missing).
        studies: the study frame (its ``benchmark`` and ``protocol`` dicts, key ``space``).

    Returns:
        One row per benchmark of either frame, sorted: ``benchmark`` (``unknown`` when not recorded),
        ``records`` (``core (40 trials)``, several joined by ``, ``; missing when no trial of it
        records a space) and ``protocol`` (the distinct protocol ``space`` values joined by ``, ``;
        missing when no study of it records one).
    """
    def bench(value: Any) -> str:
        return "unknown" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

    records: dict[str, list[str]] = {}
    protocol: dict[str, set[str]] = {}
    for b in [*trials["benchmark"], *studies["benchmark"]]:
        records.setdefault(bench(b), [])
    if "space" in trials:
        t = trials[trials["space"].notna()]
        for b, g in t.groupby(t["benchmark"].map(bench), sort=True):
            counts = g["space"].astype(str).value_counts().sort_index()
            records[b] = [f"{s} ({n} trial{'s' if n != 1 else ''})" for s, n in counts.items()]
    for _, row in studies.iterrows():
        proto = row["protocol"]
        space = proto.get("space") if isinstance(proto, dict) else None
        if space is not None:
            protocol.setdefault(bench(row["benchmark"]), set()).add(str(space))
    rows = [{"benchmark": b, "records": ", ".join(r) or None,
             "protocol": ", ".join(sorted(protocol[b])) if b in protocol else None}
            for b, r in sorted(records.items())]
    return pd.DataFrame(rows, columns=["benchmark", "records", "protocol"])


def source_table(trials: pd.DataFrame, studies: pd.DataFrame, sources: Sequence[Any]) -> pd.DataFrame:
    """Per source (objects with ``label`` and ``kind``, in order): ``source``, ``kind``, ``studies``,
    ``trials``, ``first`` and ``last`` (the earliest and latest ``started_at`` of its trials)."""
    rows = []
    for s in sources:
        st = trials[trials["source"] == s.label]
        rows.append({"source": s.label, "kind": s.kind, "studies": int((studies["source"] == s.label).sum()),
                     "trials": len(st), "first": st["started_at"].min(), "last": st["started_at"].max()})
    return pd.DataFrame(rows, columns=["source", "kind", "studies", "trials", "first", "last"])


def trial_totals(trials: pd.DataFrame) -> dict[str, Any]:
    """What the trials spent and where they ran, summed over every trial.

    Returns:
        :func:`epoch_totals` and ``first``/``last`` (``started_at``), ``commits``, ``methods``
        (energy measurement) and ``countries`` (emissions factor) (sorted distinct values),
        ``device_hours`` (wall-time hours per device, ``unknown`` where none is recorded),
        ``energy_kwh`` and ``emissions_kg`` (sums; None when no trial recorded any), ``measured``
        (trials with an energy value) and ``unrecorded`` (trials without ``epochs_run``).
    """
    energy = trials["energy_kwh"].astype(float)
    co2 = trials["emissions_kg"].astype(float)
    hours = trials.assign(h=trials["wall_s"].astype(float) / 3600, device=trials["device"].fillna("unknown"))
    ep = epoch_totals(trials)

    def distinct(col: str) -> list[str]:
        return sorted(trials[col].dropna().astype(str).unique())

    return {**ep, "unrecorded": ep["trials"] - ep["recorded"],
            "first": trials["started_at"].min(), "last": trials["started_at"].max(),
            "commits": distinct("git_commit"), "methods": distinct("energy_method"),
            "countries": distinct("energy_country"), "device_hours": hours.groupby("device")["h"].sum(),
            "energy_kwh": float(energy.sum()) if energy.notna().any() else None,
            "emissions_kg": float(co2.sum()) if co2.notna().any() else None,
            "measured": int(energy.notna().sum())}


def state_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per phase (rows) and Optuna state (columns)."""
    return trials.pivot_table(index="phase", columns="state", values="uid", aggfunc="count",
                              fill_value=0).reset_index()


def machine_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per machine (``unknown`` where none is recorded), its hardware and software as its
    first trial recorded them, the hosts and library versions seen, and its trial count."""
    m = trials.assign(machine=trials["machine"].fillna("unknown"))
    rows = []
    for mach, g in m.groupby("machine", sort=True):
        first = g.iloc[0]
        rows.append({"machine": mach, "device": first["device"], "gpu": first["gpu_model"],
                     "gpus": first["gpu_count"], "driver": first["gpu_driver"], "cuda": first["cuda"],
                     "cpu": first["cpu_model"], "cores": first["cpu_cores"], "ram_gb": first["ram_gb"],
                     "host": ", ".join(sorted(g["hostname"].dropna().astype(str).unique())) or None,
                     "software": "; ".join(sorted(g["versions"].dropna().astype(str).unique())) or None,
                     "trials": len(g)})
    return pd.DataFrame(rows)


def study_profiles(studies: pd.DataFrame) -> pd.DataFrame:
    """The distinct profiles the studies record (keys sorted) and the benchmarks that ran each
    (in study order): ``profile``, ``benchmarks``."""
    profiles: dict[str, list[str]] = {}
    for _, row in studies.iterrows():
        if row["profile"]:
            benches = profiles.setdefault(json.dumps(row["profile"], sort_keys=True, default=str), [])
            if str(row["benchmark"]) not in benches:
                benches.append(str(row["benchmark"]))
    return pd.DataFrame([{"profile": json.loads(k), "benchmarks": b} for k, b in profiles.items()],
                        columns=["profile", "benchmarks"])


def study_table(trials: pd.DataFrame, studies: pd.DataFrame, importances: pd.DataFrame) -> pd.DataFrame:
    """Per Optuna study: its trial counts, its best complete tuning trial and its parameter
    importances.

    Returns:
        One row per study: ``study``, ``source``, ``direction``, ``complete``, ``pruned``, ``failed``,
        ``running``, ``best_value`` (None when no complete tuning trial has a finite value),
        ``best_params`` (its Optuna params; empty without one), ``importances`` (``(param,
        importance)`` pairs, most important first; empty when not computed) and ``importance_note``
        (why they were not computed).
    """
    rows = []
    for _, s in studies.iterrows():
        tt = trials[(trials["source"] == s["source"]) & (trials["study"] == s["study"])
                    & (trials["phase"] == "tune") & (trials["state"] == "COMPLETE")
                    & np.isfinite(trials["value"].astype(float))]
        best = None
        if len(tt):
            best = tt.loc[tt["value"].idxmax() if s["direction"] == "maximize" else tt["value"].idxmin()]
        imp = importances[(importances["source"] == s["source"]) & (importances["study"] == s["study"])]
        rows.append({"study": s["study"], "source": s["source"], "direction": s["direction"],
                     "complete": s["complete"], "pruned": s["pruned"], "failed": s["fail"],
                     "running": s["running"], "best_value": None if best is None else best["value"],
                     "best_params": best["optuna_params"] if best is not None else {},
                     "importances": list(imp.sort_values("importance", ascending=False)
                                         [["param", "importance"]].itertuples(index=False, name=None)),
                     "importance_note": s["importance_note"]})
    return pd.DataFrame(rows, columns=["study", "source", "direction", "complete", "pruned", "failed",
                                       "running", "best_value", "best_params", "importances",
                                       "importance_note"])
