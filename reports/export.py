"""``suite export``: the tidy trial frame the report is built from, as one parquet or CSV file.

One row per trial (every phase and state) with the columns of :data:`reports.rows.TRIAL_COLUMNS`,
every metric of the record as ``metric.<split>/<name>`` (``metric.test/accuracy``,
``metric.val/f1``, ...), and one ``param.<name>`` column per resolved hyperparameter. Nested values
(``params``, the Optuna params, library versions, tracking errors) are kept as JSON text as well, so
nothing the frame holds is lost. With ``curves`` the per-epoch curves go to a second file
(``<name>.curves.<suffix>``: ``uid, epoch, series, value``); with ``long`` every metric also goes
to a long table (``<name>.metrics.<suffix>``: ``uid, split, metric, value``, one row per trial and
metric), which a query filters by name instead of knowing the column names.

The schema is fixed, whatever the data: whole numbers are nullable ``Int64``, flags nullable
booleans, text ``string`` (also a column that is empty in this export), metrics and measurements
``float64``, ``started_at`` a UTC timestamp; so exports of several machines concatenate (DuckDB
``read_parquet([...])``, ``polars.concat``). ``chosen`` marks the rows the report compares: a
confirm run of the candidate its arm stands for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reports.load import load
from suite.errors import SuiteError

FORMATS = (".parquet", ".csv")
NESTED = ("params", "optuna_params", "tracking_errors")
INTEGERS = ("number", "study_index", "studies", "seed", "candidate", "torch_threads", "epochs", "epochs_run",
            "steps", "n_params", "batch_size", "epochs_to_target", "gpu_count", "cpu_cores", "devices",
            "jobs", "jobs_per_device", "gpu_other_processes")
BOOLEANS = ("chosen", "result", "defaults")
TIMESTAMPS = ("started_at",)


def _json(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _param_column(values: list[Any]) -> pd.Series:
    """One ``param.<name>`` column: flags as booleans, numbers as float64 (an int on one machine and a
    float on another must concatenate), anything else as text (JSON for nested values)."""
    present = [v for v in values if not _missing(v)]
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean")
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series([None if _missing(v) else float(v) for v in values], dtype="float64")
    return pd.Series([None if _missing(v) else v if isinstance(v, str) else _json(v) for v in values],
                     dtype="string")


def export_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """The trial frame made flat and typed for a file (pure): the fixed schema of the module
    docstring. Row order and count are kept."""
    out = trials.drop(columns=["metrics"]).reset_index(drop=True)
    metrics = [m if isinstance(m, dict) else {} for m in trials["metrics"]]
    for name in sorted({k for m in metrics for k in m}):
        out[f"metric.{name}"] = pd.Series([m.get(name) for m in metrics], dtype="float64")
    params = [p if isinstance(p, dict) else {} for p in trials["params"]]
    for name in sorted({k for p in params for k in p}):
        out[f"param.{name}"] = _param_column([p.get(name) for p in params])
    for col in NESTED:
        out[col] = out[col].map(_json)
    for col in out.columns:
        if col.startswith(("metric.", "param.")):
            continue
        if col in INTEGERS:
            out[col] = pd.Series([None if _missing(v) else int(v) for v in out[col]], dtype="Int64")
        elif col in BOOLEANS:
            out[col] = pd.Series([None if _missing(v) else bool(v) for v in out[col]], dtype="boolean")
        elif col in TIMESTAMPS:
            out[col] = pd.to_datetime(out[col], utc=True)
        elif pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype("float64")
        else:
            out[col] = pd.Series([None if _missing(v) else str(v) for v in out[col]], dtype="string")
    return out


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def long_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``metric.<split>/<name>`` columns of an export frame as rows ``uid, split, metric, value``
    (missing values left out)."""
    cols = [c for c in frame.columns if c.startswith("metric.")]
    table = frame[["uid", *cols]].melt(id_vars="uid", var_name="column", value_name="value").dropna(
        subset=["value"])
    split_name = table["column"].str.removeprefix("metric.").str.split("/", n=1, expand=True)
    out = pd.DataFrame({"uid": table["uid"].to_numpy(), "split": split_name[0].to_numpy(),
                        "metric": split_name[1].to_numpy(), "value": table["value"].to_numpy()})
    return out.astype({"uid": "string", "split": "string", "metric": "string", "value": "float64"})


def export(sources: Sequence[str], path: Path, *, curves: bool = False, long: bool = False) -> int:
    """Write every trial of ``sources`` to ``path`` (``.parquet`` or ``.csv``), and with ``curves`` the
    per-epoch curves to ``<stem>.curves<suffix>`` beside it; return the trial row count.

    Raises:
        SuiteError: an unknown file suffix, a source that cannot be read, or a file that cannot be
            written (one line each).
    """
    if path.suffix not in FORMATS:
        raise SuiteError(f"export file {str(path)!r} must end in {' or '.join(FORMATS)}")
    data = load(list(sources))
    frame = export_frame(data.trials)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(frame, path)
        if curves:
            table = data.curves.astype({"uid": "string", "epoch": "Int64", "series": "string",
                                        "value": "float64"})
            _write(table, curves_path(path))
        if long:
            _write(long_metrics(frame), beside(path, "metrics"))
    except (OSError, ValueError, ImportError) as exc:
        raise SuiteError(f"cannot write {str(path)!r}: {type(exc).__name__}: {exc}") from None
    return len(frame)


def beside(path: Path, what: str) -> Path:
    """A second table written beside ``path``: ``trials.<what>.parquet``."""
    return path.with_name(f"{path.stem}.{what}{path.suffix}")


def curves_path(path: Path) -> Path:
    """Where ``export(..., curves=True)`` writes the curves of ``path``: ``trials.curves.parquet``."""
    return beside(path, "curves")
