"""Read trial records from Optuna storages into tidy pandas frames.

A *source* is one of:

* a run folder holding ``optuna.db`` (an SQLite Optuna storage) and optionally ``profile.yaml``;
* an Optuna storage URL (``sqlite:///runs/x/optuna.db``, ``postgresql+psycopg2://user:pw@host/db``);
* a journal file whose name ends in ``.log`` or ``.jsonl`` (``JournalStorage(JournalFileBackend)``).

Every tuning study is one arm (study) and its confirm study (attr ``confirm_of``) is read with it, as
one study; every trial carries the full trial record (:func:`suite.record.stored_record`) and its
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

from reports.rows import CURVE_COLUMNS, TRIAL_COLUMNS, _dict, curve_rows, regs_name, trial_row
from suite.errors import SuiteError
from suite.record import CONFIRM_OF, ENERGY_APPORTIONED, PHASE, stored_record
from suite.storage import JOURNAL, RUN_DB, RUN_JOURNAL, is_storage_spec, parse_storage, run_folder_storage
from suite.storage import open_storage as storage_of

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
#: the importance evaluator, named: Optuna's default changed (fANOVA up to 4.x, PED-ANOVA in 5)
IMPORTANCE_EVALUATOR = "fANOVA (optuna FanovaImportanceEvaluator, seed 0)"

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
            imp = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
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
        tuning = {fs.study_name: dict(fs.user_attrs) for fs in frozen_studies
                  if CONFIRM_OF not in fs.user_attrs}
        entries: dict[str, dict[str, Any]] = {}
        tune_trials: dict[str, list[Any]] = {}
        # tuning studies first: a confirm study's trials join the entry of the study it confirms
        for fs in sorted(frozen_studies, key=lambda f: CONFIRM_OF in f.user_attrs):
            own = dict(fs.user_attrs)
            arm = own.get(CONFIRM_OF) if own.get(CONFIRM_OF) in tuning else fs.study_name
            attrs = dict(tuning.get(arm, own))
            if arm != fs.study_name:  # a confirm study: its trials' energy shares are its own
                attrs[ENERGY_APPORTIONED] = own.get(ENERGY_APPORTIONED)
            direction = attrs.get("direction") or (
                "minimize" if fs.directions and fs.directions[0].name == "MINIMIZE" else "maximize")
            attrs.setdefault("direction", direction)
            trials = storage.get_all_trials(storage.get_study_id_from_name(fs.study_name), deepcopy=False)
            entry = entries.get(arm)
            if entry is None:
                entry = entries[arm] = {
                    "source": src.label, "study": arm,
                    "benchmark": attrs.get("benchmark"), "task": attrs.get("task"),
                    "family": attrs.get("family"), "optimizer": attrs.get("optimizer"),
                    "regularizers": regs_name(attrs.get("regularizers")),
                    "direction": direction, "metric": attrs.get("metric"),
                    "profile": _dict(attrs.get("profile")), "protocol": _dict(attrs.get("protocol")),
                    "n_trials": 0, **{s.lower(): 0 for s in STATES}, "importance_note": None,
                }
            for t in trials:
                entry["n_trials"] += 1
                entry[t.state.name.lower()] = entry.get(t.state.name.lower(), 0) + 1
                phase = t.user_attrs.get(PHASE)
                record = stored_record(t)
                row = trial_row(record, source=src.label, study=arm, study_attrs=attrs, number=t.number,
                                state=t.state.name, phase=phase, value=t.value, optuna_params=t.params)
                row["uid"] = f"{src.label}|{fs.study_name}|{t.number}"
                rows.append(row)
                curves += curve_rows(row["uid"], _dict(record).get("curves"))
                if row["phase"] == "tune":
                    tune_trials.setdefault(arm, []).append(t)
        for arm, entry in entries.items():
            imp, why = param_importances(tune_trials.get(arm, []), entry["direction"])
            importances += [(src.label, arm, p, v) for p, v in imp.items()]
            entry["importance_note"] = why
            studies.append(entry)
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
