"""Read trial records from Optuna storages into tidy pandas frames.

A *source* is one of:

* a run folder holding ``optuna.db`` (an SQLite Optuna storage) and optionally ``profile.yaml``;
* an Optuna storage URL (``sqlite:///runs/x/optuna.db``, ``postgresql+psycopg2://user:pw@host/db``);
* a journal file whose name ends in ``.log`` or ``.jsonl`` (``JournalStorage(JournalFileBackend)``).

Every study is one arm; every trial carries the full trial record in ``user_attrs["record"]`` and its
phase (``tune`` or ``confirm``) in ``user_attrs["phase"]``. Records may lack fields (older or failed
trials): every field is read with a default, so the frames always have the same columns. The record's
``space`` (``core`` or ``full``: which search space was tuned) is the ``space`` column, None when the
record predates it; a study's ``protocol`` user attr (budget, ``space``, ``sampler``, ``pruner``, ...)
is kept as a dict in the study frame.

This module imports nothing from the training code.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from suite.errors import SuiteError
from suite.record import PHASE, RECORD, is_result
from suite.storage import JOURNAL, RUN_DB, RUN_JOURNAL, is_storage_spec, parse_storage, run_folder_storage
from suite.storage import open_storage as storage_of

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")

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
)
CURVE_COLUMNS = ("uid", "epoch", "series", "value")


@dataclass(frozen=True)
class Source:
    """One place trial records are read from.

    Attributes:
        spec: the string as given.
        kind: ``run`` (run folder), ``rdb`` (storage URL) or ``journal`` (journal file).
        target: the storage URL (``run``, ``rdb``) or the journal file path (``journal``).
        label: what the report shows: the folder or file path, or the URL with its password masked.
        folder: the run folder, for ``run`` sources.
    """

    spec: str
    kind: str
    target: str
    label: str
    folder: Path | None = None


def parse_source(spec: str) -> Source:
    """Classify ``spec`` as a run folder, a storage URL or a journal file (the storage kinds are
    :func:`suite.storage.parse_storage`'s).

    Raises:
        SuiteError: ``spec`` is none of these (the message says what is accepted).
    """
    text = str(spec)
    path = Path(text)
    if "://" not in text and path.is_dir():
        target = run_folder_storage(path)
        if target is None:
            raise SuiteError(f"run folder {text!r} has no {RUN_DB} or {RUN_JOURNAL}; a source is a "
                             "run folder, a storage URL (sqlite:///..., postgresql://...) or a "
                             "journal file (.log/.jsonl)")
        return Source(text, "run", target, text, folder=path)
    if is_storage_spec(text):
        storage = parse_storage(text)
        if storage.kind == JOURNAL and not path.is_file():
            raise SuiteError(f"journal file {text!r} does not exist")
        return Source(text, "journal" if storage.kind == JOURNAL else "rdb",
                      str(path.resolve()) if storage.kind == JOURNAL else text, storage.label)
    if path.suffix == ".db" and path.is_file():
        return Source(text, "rdb", f"sqlite:///{path.resolve()}", text)
    raise SuiteError(f"source {text!r} is not a run folder with optuna.db, a storage URL "
                     "(sqlite:///..., postgresql+psycopg2://...) or a journal file (.log/.jsonl)")


def open_storage(source: Source):
    """The Optuna storage of ``source``, read as it is: no tables are created, nothing is changed (a
    torn last journal record is skipped, as Optuna does)."""
    return storage_of(source.target, write=False)


@dataclass
class ReportData:
    """Everything a report is drawn from.

    Attributes:
        sources: the sources read, in order.
        trials: one row per trial, columns :data:`TRIAL_COLUMNS`.
        curves: per-epoch values, long form: ``uid``, ``epoch``, ``series`` (``val/accuracy``,
            ``time_s``, ...), ``value``.
        studies: one row per (source, study): its user attrs and trial counts by state.
        importances: ``source``, ``study``, ``param``, ``importance`` (normalized to sum 1).
        profiles: per run folder, the parsed ``profile.yaml`` (``{"source", "profile"}`` or
            ``{"source", "error"}``).
    """

    sources: list[Source]
    trials: pd.DataFrame
    curves: pd.DataFrame
    studies: pd.DataFrame
    importances: pd.DataFrame
    profiles: list[dict[str, Any]] = field(default_factory=list)


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
    never pooled nor compared (:func:`reports.stats.separate_arms`)."""
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


def trials_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A trial frame (columns :data:`TRIAL_COLUMNS`) from rows made by :func:`trial_row`."""
    frame = pd.DataFrame(list(rows), columns=list(TRIAL_COLUMNS))
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def param_importances(trials: Sequence[Any], direction: str) -> tuple[dict[str, float], str | None]:
    """Optuna parameter importances of the COMPLETE tuning trials, or ``({}, why not)``.

    Needs at least two complete trials with a value and a param that varies among them; errors of
    the importance evaluator are caught and returned as the reason.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value) and t.params]
    if len(done) < 2:
        return {}, f"needs >= 2 completed tuning trials with params, has {len(done)}"
    varying = [p for p in done[0].params
               if len({json.dumps(t.params.get(p), default=str) for t in done}) > 1]
    if not varying:
        return {}, "no parameter varies among the completed tuning trials"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize" if direction == "minimize" else "maximize")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.add_trials([create_trial(value=t.value, params=t.params, distributions=t.distributions)
                              for t in done])
            imp = optuna.importance.get_param_importances(study)
    except Exception as exc:
        return {}, f"importance evaluation failed: {type(exc).__name__}: {exc}"
    return {k: float(v) for k, v in imp.items()}, None


def _profile(folder: Path) -> dict[str, Any] | None:
    path = folder / "profile.yaml"
    if not path.is_file():
        return None
    try:
        import yaml

        return {"profile": yaml.safe_load(path.read_text())}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def load(specs: Sequence[str]) -> ReportData:
    """Read every study and trial of ``specs`` (sources as parsed by :func:`parse_source`).

    The same storage named twice is read once.

    Raises:
        SuiteError: a source cannot be parsed or opened.
    """
    logging.getLogger("optuna").setLevel(logging.ERROR)
    sources: list[Source] = []
    seen: set[str] = set()
    for spec in specs:
        src = parse_source(spec)
        if src.target not in seen:
            seen.add(src.target)
            sources.append(src)
    if not sources:
        raise SuiteError("no source given; name a run folder, a storage URL or a journal file")
    rows, curves, studies, importances, profiles = [], [], [], [], []
    for src in sources:
        storage = open_storage(src)
        if src.folder is not None:
            prof = _profile(src.folder)
            if prof is not None:
                profiles.append({"source": src.label, **prof})
        try:
            frozen_studies = storage.get_all_studies()
        except Exception as exc:
            raise SuiteError(f"cannot read studies from {src.label!r}: {type(exc).__name__}") from None
        for fs in frozen_studies:
            attrs = dict(fs.user_attrs)
            direction = attrs.get("direction") or (
                "minimize" if fs.directions and fs.directions[0].name == "MINIMIZE" else "maximize")
            attrs.setdefault("direction", direction)
            trials = storage.get_all_trials(storage.get_study_id_from_name(fs.study_name), deepcopy=False)
            counts = {s: 0 for s in STATES}
            tune = []
            for t in trials:
                counts[t.state.name] = counts.get(t.state.name, 0) + 1
                phase = t.user_attrs.get(PHASE)
                row = trial_row(t.user_attrs.get(RECORD), source=src.label, study=fs.study_name,
                                study_attrs=attrs, number=t.number, state=t.state.name, phase=phase,
                                value=t.value, optuna_params=t.params)
                rows.append(row)
                curves += curve_rows(row["uid"], _dict(t.user_attrs.get(RECORD)).get("curves"))
                if row["phase"] == "tune":
                    tune.append(t)
            imp, why = param_importances(tune, direction)
            importances += [(src.label, fs.study_name, p, v) for p, v in imp.items()]
            studies.append({
                "source": src.label, "study": fs.study_name,
                "benchmark": attrs.get("benchmark"), "task": attrs.get("task"),
                "family": attrs.get("family"), "optimizer": attrs.get("optimizer"),
                "regularizers": regs_name(attrs.get("regularizers")),
                "direction": direction, "metric": attrs.get("metric"),
                "profile": _dict(attrs.get("profile")), "protocol": _dict(attrs.get("protocol")),
                "n_trials": len(trials), **{s.lower(): n for s, n in counts.items()},
                "importance_note": why,
            })
    trials_df = trials_frame(rows)
    return ReportData(
        sources=sources,
        trials=trials_df,
        curves=pd.DataFrame(curves, columns=list(CURVE_COLUMNS)),
        studies=pd.DataFrame(studies, columns=[
            "source", "study", "benchmark", "task", "family", "optimizer", "regularizers", "direction",
            "metric", "profile", "protocol", "n_trials", *[s.lower() for s in STATES],
            "importance_note"]),
        importances=pd.DataFrame(importances, columns=["source", "study", "param", "importance"]),
        profiles=profiles,
    )
