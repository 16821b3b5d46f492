"""One stored trial as one row of the report's frames (pure functions; any record field may be
missing, so every row has every column: older or failed trials still count).

The record's fields are :class:`suite.record.TrialRecord`'s. Identity fields (task, family, ...)
fall back to the study's user attrs; a trial of ``suite benchmark --jobs N`` takes its energy from
the study attr ``energy_apportioned`` (its share of the run's machine measurement).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from suite.record import is_result

# Columns of the trial frame, in order (every row has all of them; missing values are None/NaN).
TRIAL_COLUMNS = (
    "uid", "source", "study", "benchmark", "task", "family", "optimizer", "regularizers", "arm",
    "number", "state", "phase", "chosen", "config", "space", "study_index", "studies", "budget", "fixed",
    "value", "seed", "status", "result", "error",
    "metric", "direction", "target", "ideal", "baseline", "low", "high", "test", "val", "train",
    "lr", "batch_size", "activation", "params", "optuna_params",
    "epochs", "epochs_run", "steps", "n_params", "wall_s", "fit_s", "samples_per_s", "samples",
    "epochs_to_target", "time_to_target_s",
    "flag", "grad_ratio_median", "dead_relu_final", "gap_final", "gap_max",
    "energy_kwh", "emissions_kg", "energy_method", "energy_country", "energy_error",
    "device", "device_type", "gpu_model", "gpu_count", "gpu_driver", "cuda", "cpu_model", "cpu_cores",
    "ram_gb", "hostname", "machine", "versions", "git_commit", "peak_memory_mb", "started_at",
    "candidate", "defaults", "worker", "torch_threads", "tracking_errors",
    "devices", "jobs", "jobs_per_device", "precision", "matmul_precision", "flops_per_sample", "peak_flops",
    "gpu_power_limit_w", "energy_duration_s", "machine_power_w", "gpu_other_processes", "metrics",
)
CURVE_COLUMNS = ("uid", "epoch", "series", "value")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float:
    """A finite-or-not float, or NaN for anything that is not a number."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def regs_name(regularizers: Any) -> str:
    """``dropout+l2`` for a list of regularizer names; ``none`` for an empty or missing list."""
    if isinstance(regularizers, str):
        return regularizers or "none"
    names = [str(r) for r in regularizers or [] if r is not None]
    return "+".join(names) if names else "none"


def machine_fingerprint(device: Any, gpu_model: Any, cpu_model: Any) -> str:
    """``cuda: NVIDIA H100`` or ``cpu: AMD EPYC ...``: device plus its model (``unknown`` if missing)."""
    dev = str(device) if device else "unknown"
    model = gpu_model if dev == "cuda" else cpu_model
    return f"{dev}: {model or 'unknown model'}"


def chosen_candidate(record: dict[str, Any], study_attrs: dict[str, Any], phase: str,
                     number: int | None = None) -> bool | None:
    """Whether a trial belongs to the candidate its arm stands for.

    With ``confirm_candidates: 2`` an arm confirms two tuning trials (the best and the defaults or
    the runner-up) and stands for the one with the better mean confirm validation metric (study attr
    ``confirm_choice``; until every confirm run is done, the best tuning trial, the first of
    ``confirm_candidates``). A confirm run belongs to it when it re-runs that trial's params (runs
    without a ``candidate``, from one-candidate or older records, always do); a tuning trial when it
    is that trial. ``None`` when the study records no choice (a tuning trial) or nothing is known.
    """
    choice = study_attrs.get("confirm_choice")
    if choice is None:
        choice = (study_attrs.get("confirm_candidates") or [None])[0]
    if phase != "confirm":
        return None if choice is None or number is None else number == choice
    candidate = record.get("candidate")
    return candidate is None or choice is None or candidate == choice


def budget_label(protocol: dict[str, Any], epochs: Any) -> str | None:
    """What an arm's budget was, as the report tells budgets apart: ``20 epochs, 4 trials, 8 studies x
    1 seed, space core`` (the parts recorded; ``None`` when nothing is). Arms whose labels differ are
    never pooled nor compared (:func:`reports.selection.separate_arms`)."""
    parts = []
    ep = _num(epochs if epochs is not None else protocol.get("epochs"))
    if math.isfinite(ep):
        parts.append(f"{int(ep)} epochs")
    if protocol.get("tune_trials") is not None:
        parts.append(f"{protocol['tune_trials']} trials")
    if protocol.get("confirm_seeds") is not None:
        n, k = int(protocol.get("studies") or 1), int(protocol["confirm_seeds"])
        parts.append(f"{n} {'study' if n == 1 else 'studies'} x {k} {'seed' if k == 1 else 'seeds'}")
    if protocol.get("confirm_candidates") is not None:
        c = int(protocol["confirm_candidates"])
        parts.append(f"{c} {'candidate' if c == 1 else 'candidates'}")
    if protocol.get("space") is not None:
        parts.append(f"space {protocol['space']}")
    return ", ".join(parts) or None


def config_label(record: dict[str, Any]) -> str | None:
    """What a confirm run re-runs: ``defaults`` or ``tuned #N`` (the tuning trial), ``None`` if unknown."""
    if record.get("phase") != "confirm" or record.get("candidate") is None:
        return None
    return "defaults" if record.get("candidate_defaults") else f"tuned #{record['candidate']}"


def trial_row(
    record: dict[str, Any] | None,
    *,
    source: str = "",
    study: str = "",
    study_attrs: dict[str, Any] | None = None,
    number: int | None = None,
    state: str = "COMPLETE",
    phase: str | None = None,
    value: float | None = None,
    optuna_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Flatten one trial record into one row of the trial frame (pure; any field may be missing).

    Identity fields (task, family, ...) come from the record, falling back to the study's user
    attrs, so trials that failed before writing a record still count. A trial of ``suite benchmark
    --jobs N`` takes its energy from the study attr ``energy_apportioned`` (its share of the run's
    machine measurement) instead of the record's pending figure.
    """
    rec = _dict(record)
    attrs = _dict(study_attrs)
    params = _dict(rec.get("params"))
    metrics = _dict(rec.get("metrics"))
    prim = _dict(rec.get("primary"))
    diag = _dict(rec.get("diagnostics"))
    energy = _dict(rec.get("energy"))
    share = _dict(_dict(attrs.get("energy_apportioned")).get(str(number)))
    if share:
        energy = {**energy, **share}
    hw = _dict(rec.get("hardware"))

    def pick(key: str) -> Any:
        v = rec.get(key)
        return attrs.get(key) if v is None else v

    metric = prim.get("metric") or attrs.get("metric")
    direction = prim.get("direction") or attrs.get("direction")
    test = _num(prim.get("value"))
    if math.isnan(test) and metric:
        test = _num(metrics.get(f"test/{metric}"))
    curves = _dict(rec.get("curves"))
    ttt = _num(prim.get("time_to_target_s"))
    ett = prim.get("epochs_to_target")
    if math.isnan(ttt) and isinstance(ett, int) and 0 < ett <= len(curves.get("time_s") or []):
        ttt = _num(curves["time_s"][ett - 1])
    device = rec.get("device") or hw.get("device_type")
    gpu_model, cpu_model = hw.get("gpu_model"), hw.get("cpu_model")
    fit_s, sps = _num(rec.get("fit_s")), _num(rec.get("samples_per_s"))
    versions = _dict(rec.get("versions"))
    regs = pick("regularizers")
    scale = _dict(_dict(rec.get("task_info")).get("scale"))
    protocol = _dict(attrs.get("protocol"))
    fixed = _dict(attrs.get("fixed_params"))
    bound = {side: (_num(scale[side]) if scale.get(side) is not None else inf) if scale else math.nan
             for side, inf in (("low", -math.inf), ("high", math.inf))}
    return {
        "uid": f"{source}|{study}|{number}",
        "source": source,
        "study": study,
        "benchmark": pick("benchmark"),
        "task": pick("task"),
        "family": pick("family"),
        "optimizer": pick("optimizer"),
        "regularizers": regs_name(regs),
        "arm": rec.get("arm") or study or None,
        "number": number,
        "state": state,
        "phase": phase or rec.get("phase") or "tune",
        "chosen": chosen_candidate(rec, attrs, phase or rec.get("phase") or "tune", number),
        "config": config_label(rec),
        "space": rec.get("space"),
        "study_index": int(_num(pick("study_index"))) if math.isfinite(_num(pick("study_index"))) else 0,
        "studies": int(protocol.get("studies") or 1),
        "budget": budget_label(protocol, rec.get("epochs")),
        "fixed": ", ".join(f"{k}={v}" for k, v in sorted(fixed.items())) or None,
        "value": _num(value),
        "seed": rec.get("seed"),
        "status": rec.get("status") or ("failed" if state == "FAIL" else None),
        "result": is_result(rec or None),
        "error": rec.get("error"),
        "metric": metric,
        "direction": direction,
        "target": _num(prim.get("target")),
        "ideal": _num(scale.get("ideal")),
        "baseline": _num(scale.get("baseline")),
        "low": bound["low"],
        "high": bound["high"],
        "test": test,
        "val": _num(metrics.get(f"val/{metric}")) if metric else math.nan,
        "train": _num(metrics.get(f"train/{metric}")) if metric else math.nan,
        "lr": _num(params.get("lr", _dict(optuna_params).get("lr"))),
        "batch_size": _num(rec.get("batch_size", params.get("batch_size"))),
        "activation": params.get("activation"),
        "params": params,
        "optuna_params": _dict(optuna_params),
        "epochs": _num(rec.get("epochs")),
        "epochs_run": _num(rec.get("epochs_run")),
        "steps": _num(rec.get("steps")),
        "n_params": _num(rec.get("n_params")),
        "wall_s": _num(rec.get("wall_s")),
        "fit_s": fit_s,
        "samples_per_s": sps,
        "samples": sps * fit_s,
        "epochs_to_target": _num(ett),
        "time_to_target_s": ttt,
        "flag": diag.get("flag"),
        "grad_ratio_median": _num(diag.get("grad_ratio_median")),
        "dead_relu_final": _num(diag.get("dead_relu_final")),
        "gap_final": _num(diag.get("gap_final")),
        "gap_max": _num(diag.get("gap_max")),
        "energy_kwh": _num(energy.get("kwh")),
        "emissions_kg": _num(energy.get("emissions_kg")),
        "energy_method": energy.get("method"),
        "energy_country": energy.get("country"),
        "energy_error": energy.get("error"),
        "device": device,
        "device_type": hw.get("device_type"),
        "gpu_model": gpu_model,
        "gpu_count": _num(hw.get("gpu_count")),
        "gpu_driver": hw.get("gpu_driver"),
        "cuda": hw.get("cuda"),
        "cpu_model": cpu_model,
        "cpu_cores": _num(hw.get("cpu_cores")),
        "ram_gb": _num(hw.get("ram_gb")),
        "hostname": hw.get("hostname"),
        "machine": machine_fingerprint(device, gpu_model, cpu_model) if (device or hw) else None,
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v) or None,
        "git_commit": rec.get("git_commit"),
        "peak_memory_mb": _num(rec.get("peak_memory_mb")),
        "started_at": pd.to_datetime(rec.get("started_at"), errors="coerce", utc=True),
        "candidate": rec.get("candidate"),
        "defaults": rec.get("defaults"),
        "worker": rec.get("worker"),
        "torch_threads": rec.get("torch_threads"),
        "tracking_errors": rec.get("tracking_errors"),
        "devices": _num(rec.get("world_size", rec.get("devices"))),
        "jobs": _num(rec.get("jobs")),
        "jobs_per_device": _num(rec.get("jobs_per_device")),
        "precision": rec.get("precision"),
        "matmul_precision": rec.get("matmul_precision"),
        "flops_per_sample": _num(rec.get("flops_per_sample")),
        "peak_flops": _num(rec.get("peak_flops")),
        "gpu_power_limit_w": _num(hw.get("gpu_power_limit_w")),
        "energy_duration_s": _num(energy.get("duration_s")),
        "gpu_other_processes": max((int(_num(v)) for v in _dict(energy.get("gpu_other_processes")).values()
                                    if math.isfinite(_num(v))), default=math.nan),
        "machine_power_w": (_num(energy.get("machine_kwh")) * 3.6e6 / _num(energy.get("machine_s"))
                            if _num(energy.get("machine_s")) > 0 else math.nan),
        "metrics": metrics,
    }


def curve_rows(uid: str, curves: Any) -> list[tuple[str, int, str, float]]:
    """Long-form rows ``(uid, epoch, series, value)`` of a record's ``curves`` dict."""
    curves = _dict(curves)
    epochs = curves.get("epoch")
    rows = []
    for series, values in curves.items():
        if series == "epoch" or not isinstance(values, list):
            continue
        for i, v in enumerate(values):
            ep = epochs[i] if isinstance(epochs, list) and i < len(epochs) else i + 1
            rows.append((uid, int(_num(ep)) if math.isfinite(_num(ep)) else i + 1, series, _num(v)))
    return rows
