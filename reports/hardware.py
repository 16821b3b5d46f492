"""Hardware speed apart from algorithmic speed, per machine (pure functions from frames to frames).

AlgoPerf separates the steps a method needs to reach its target (a property of the method) from the
seconds each step takes (a property of the machine); ML.ENERGY states energy per unit of work and
the average power; MLPerf's power rules want a measurement window of at least 60 samples at 1 Hz.
This module computes those per confirm run (:func:`per_run`) and summarises them per task, arm and
machine (:func:`hardware_table`) with Student-t intervals over seeds (:func:`reports.stats.mean_ci`).

A *machine* is a hardware setup told apart by its fingerprint (:func:`setup_label`): the device and
its model, how many there are, how many trials shared a device while they were measured (``--jobs``),
intra-op threads per trial and the numeric precision. Two run folders on one host with ``--jobs 1``
and ``--jobs 2`` are two machines; two identical hosts are one. Folder and host names play no part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from reports.stats import ARM, mean_ci
from suite.errors import SuiteError

#: shorter per-trial energy windows are flagged (MLPerf power: >= 60 samples at 1 Hz)
RELIABLE_WINDOW_S = 60.0
#: the fingerprint's parts, in label order
SETUP_FIELDS = ("machine", "device_count", "devices", "jobs_per_device", "torch_threads", "precision",
                "matmul_precision")
#: energy methods whose every part is a measurement (RAPL, NVML); others estimate some part (TDP x load)
MEASURED = ("rapl", "nvml", "powermetrics", "power gadget")


def _whole(value: object) -> str:
    v = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return str(int(v)) if pd.notna(v) and math.isfinite(float(v)) else "?"


def setup_label(row: Mapping[str, object]) -> str:
    """``cpu: AMD EPYC x2 · 2 jobs/device · 1 thread · 32-true`` for one trial row (``?`` for a part
    the record does not say; ``matmul highest`` is left out, TF32 named)."""
    count = _whole(row.get("device_count"))
    jobs, threads = _whole(row.get("jobs_per_device")), _whole(row.get("torch_threads"))
    devices = _whole(row.get("devices"))
    parts = [f"{row.get('machine') or 'unknown'} x{count}", f"{jobs} job{'' if jobs == '1' else 's'}/device",
             f"{threads} thread{'' if threads == '1' else 's'}"]
    if devices not in ("1", "?"):
        parts.append(f"DDP on {devices}")
    precision = str(row.get("precision") or "?")
    matmul = row.get("matmul_precision")
    parts.append(precision + (f" (TF32: matmul {matmul})" if matmul and matmul != "highest" else ""))
    return " · ".join(parts)


def with_setups(trials: pd.DataFrame, ids: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``trials`` with ``device_count`` (GPUs on CUDA, cores on CPU), ``setup`` (:func:`setup_label`)
    and ``machine_id``: from ``ids`` (setup -> id, :func:`machine_ids` of the whole report, so that
    the confirm runs' ids are the machine headers'), else ``M1``, ``M2``, ... in label order."""
    out = trials.copy()
    cuda = out["device"].astype(str) == "cuda"
    out["device_count"] = np.where(cuda, out["gpu_count"].astype(float), out["cpu_cores"].astype(float))
    out["setup"] = [setup_label(r) for r in out.to_dict("records")]
    if ids is None:
        ids = {s: f"M{i + 1}" for i, s in enumerate(sorted(out["setup"].unique()))}
    out["machine_id"] = out["setup"].map(ids)
    return out


def machine_ids(trials: pd.DataFrame) -> dict[str, str]:
    """Each setup of ``trials`` (every trial of a report) and its id, ``M1``, ``M2``, ... in label order."""
    t = with_setups(trials)
    return dict(zip(t["setup"], t["machine_id"], strict=True))


def is_measured(method: object) -> bool | None:
    """Whether an energy method measured its CPU and GPU parts with a counter (RAPL, NVML; ``None``:
    no method recorded). RAM is left out: CodeCarbon always estimates it (watts per GB)."""
    if method is None or (isinstance(method, float) and math.isnan(method)):
        return None
    text = str(method).lower().replace("ram: estimate", "")
    if "tdp" in text or "estimate" in text or "constant" in text:
        return False
    return any(m in text for m in MEASURED)


def per_run(confirm: pd.DataFrame, ids: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per confirm run with the hardware quantities (NaN where a part is not recorded):

    * ``steps_to_target`` = ``epochs_to_target`` x ``steps / epochs_run`` (optimizer steps until the
      epoch whose validation first reached the target);
    * ``s_per_step`` = ``fit_s / steps`` (the fit's seconds per optimizer step, validation included);
    * ``energy_to_target_wh`` = ``energy_kwh`` x 1000 x ``time_to_target_s / fit_s``;
    * ``j_per_1k`` = ``energy_kwh`` x 3.6e6 / ``samples`` x 1000 (J per 1,000 training samples);
    * ``power_w`` = ``energy_kwh`` x 3.6e6 / ``energy_duration_s``, the average power over the trial's
      own energy window; under ``--jobs`` (energy apportioned from one run-long measurement, start-up
      and idle time included) the machine's average power over the run (``machine_power_w``);
    * ``mfu`` = ``flops_per_sample`` x ``samples_per_s`` / (``peak_flops`` x ``devices``): model FLOPs
      utilisation over the fit, where the device's peak is known.
    """
    c = with_setups(confirm, ids)
    f = {k: pd.to_numeric(c[k], errors="coerce").astype(float) for k in (
        "steps", "epochs_run", "epochs_to_target", "fit_s", "time_to_target_s", "energy_kwh", "samples",
        "energy_duration_s", "flops_per_sample", "samples_per_s", "peak_flops", "devices")}
    per_epoch = f["steps"] / f["epochs_run"].where(f["epochs_run"] > 0)
    c["steps_to_target"] = f["epochs_to_target"] * per_epoch
    c["s_per_step"] = f["fit_s"] / f["steps"].where(f["steps"] > 0)
    fit = f["fit_s"].where(f["fit_s"] > 0)
    c["energy_to_target_wh"] = f["energy_kwh"] * 1000 * f["time_to_target_s"] / fit
    c["j_per_1k"] = f["energy_kwh"] * 3.6e6 / f["samples"].where(f["samples"] > 0) * 1000
    apportioned = c["energy_method"].astype(str).str.startswith("apportioned")
    own = f["energy_kwh"] * 3.6e6 / f["energy_duration_s"].where(f["energy_duration_s"] > 0)
    c["power_w"] = own.where(~apportioned, pd.to_numeric(c["machine_power_w"], errors="coerce").astype(float))
    ranks = f["devices"].fillna(1).clip(lower=1)
    c["mfu"] = f["flops_per_sample"] * f["samples_per_s"] / (f["peak_flops"] * ranks)
    window = f["energy_duration_s"]
    c["short_window"] = np.isfinite(f["energy_kwh"]) & ~apportioned & (window < RELIABLE_WINDOW_S)
    return c


#: columns of :func:`hardware_table` averaged over every run (the others over the runs that reached)
MEANS = ("s_per_step", "samples_per_s", "j_per_1k", "power_w", "mfu")
#: columns with an interval over the seeds that reached the target
TO_TARGET = ("steps_to_target", "time_to_target_s", "energy_to_target_wh")


def hardware_table(confirm: pd.DataFrame, prices: Mapping[str, float] | None = None, *,
                   ids: Mapping[str, str] | None = None, level: float = 0.95) -> pd.DataFrame:
    """Per task, arm (and ``fixed`` params) and machine: ``runs``, ``reached`` (runs whose validation
    reached the target), the means of :data:`MEANS` over every run, and of :data:`TO_TARGET` over the
    runs that reached with their ``<col>_low``/``<col>_high`` interval (``level``; NaN under two runs), and
    ``cost_to_target_usd`` = the machine's price per hour (``prices``: by machine id, as
    :func:`machine_prices` resolves them) x time to target. ``ids``: as :func:`with_setups`.
    """
    runs = per_run(confirm, ids)
    keys = [*ARM, "fixed", "machine_id", "setup"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "runs", "reached", *MEANS, *TO_TARGET, "cost_to_target_usd"])
    # one arm whichever run folder it came from (the other sections tell sources apart in the family
    # label), but never two sets of fixed params; budgets are told apart in the task label
    fixed = runs["fixed"] if "fixed" in runs else pd.Series(None, index=runs.index, dtype=object)
    runs = runs.assign(family=runs.get("family_name", runs["family"]), fixed=fixed.fillna("").astype(str))
    g = runs.groupby(keys, dropna=False)
    out = g.agg(runs=("uid", "count"), short_windows=("short_window", "sum"),
                **{m: (m, "mean") for m in MEANS}).reset_index()
    out["reached"] = g["time_to_target_s"].apply(lambda s: int(np.isfinite(s.astype(float)).sum())).to_numpy()
    for col in TO_TARGET:
        ci = mean_ci(runs, keys, col, level=level).rename(
            columns={"mean": col, "ci_low": f"{col}_low", "ci_high": f"{col}_high"})
        out = out.merge(ci[[*keys, col, f"{col}_low", f"{col}_high"]], on=keys, how="left")
    price = out["machine_id"].map(dict(prices or {})).astype(float)
    out["cost_to_target_usd"] = price * out["time_to_target_s"] / 3600
    return out.sort_values([*ARM, "machine_id"]).reset_index(drop=True)


def machine_prices(runs: pd.DataFrame, prices: Mapping[str, float]) -> dict[str, float]:
    """Each machine's price per hour: a key of ``prices`` names the machines whose id (``M1``) it
    equals or whose label (:func:`setup_label`) contains it, ignoring case.

    Raises:
        SuiteError: a key names no machine, or two keys name one machine.
    """
    setups = dict(zip(runs["machine_id"], runs["setup"], strict=False))
    out: dict[str, float] = {}
    for key, usd in prices.items():
        found = [m for m, label in setups.items()
                 if key.casefold() == m.casefold() or key.casefold() in str(label).casefold()]
        if not found:
            listed = "; ".join(f"{m} = {label}" for m, label in sorted(setups.items())) or "none"
            raise SuiteError(f"--price-per-hour {key!r} names no machine of this report; machines: {listed}")
        for m in found:
            if m in out:
                raise SuiteError(f"--price-per-hour: machine {m} ({setups[m]}) is named twice")
            out[m] = float(usd)
    return out


def parse_prices(items: list[str]) -> dict[str, float]:
    """``["H100=2.49", "M2=0.4"]`` -> ``{"H100": 2.49, "M2": 0.4}``.

    Raises:
        SuiteError: an item is not ``MACHINE=USD`` with a finite price >= 0.
    """
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        try:
            usd = float(value)
        except ValueError:
            usd = math.nan
        if not sep or not key.strip() or not math.isfinite(usd) or usd < 0:
            raise SuiteError(f"--price-per-hour {item!r} must be MACHINE=USD (a machine id such as M1 or "
                             "part of its label, and a price per hour >= 0), e.g. 'H100=2.49'")
        out[key.strip()] = usd
    return out


def machine_headers(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per machine (every trial, tuning too): ``machine_id``, ``setup``, ``trials``, ``hosts``,
    ``driver``, ``cuda``, ``power_limit_w``, ``jobs`` (runs of several jobs: how many), ``others``
    (the most compute processes of others seen on one of its GPUs while measuring), ``energy``
    (``measured``, ``estimated`` or ``not recorded``) and ``energy_method`` (the methods seen)."""
    t = with_setups(trials)
    rows = []
    for (mid, setup), g in t.groupby(["machine_id", "setup"], sort=True):
        methods = sorted(g["energy_method"].dropna().astype(str).unique())
        kinds = {is_measured(m) for m in methods} - {None}
        rows.append({
            "machine_id": mid, "setup": setup, "trials": len(g),
            "hosts": len(set(g["hostname"].dropna().astype(str))),
            "driver": ", ".join(sorted(g["gpu_driver"].dropna().astype(str).unique())) or "-",
            "cuda": ", ".join(sorted(g["cuda"].dropna().astype(str).unique())) or "-",
            "power_limit_w": ", ".join(f"{v:g}" for v in sorted(pd.to_numeric(
                g["gpu_power_limit_w"], errors="coerce").dropna().unique())) or "-",
            "jobs": ", ".join(_whole(v) for v in sorted(pd.to_numeric(g["jobs"], errors="coerce").dropna()
                                                         .unique())) or "?",
            "others": _whole(pd.to_numeric(g["gpu_other_processes"], errors="coerce").max())
            if g["gpu_other_processes"].notna().any() else "-",
            "energy": "not recorded" if not kinds else "measured" if kinds == {True} else "estimated"
            if kinds == {False} else "measured in part",
            "energy_method": "; ".join(methods) or "-"})
    return pd.DataFrame(rows, columns=["machine_id", "setup", "trials", "hosts", "driver", "cuda",
                                       "power_limit_w", "jobs", "others", "energy", "energy_method"])
