"""``suite export``: the tidy trial frame the report is built from, as one parquet or CSV file.

One row per trial (every phase and state) with the columns of :data:`reports.load.TRIAL_COLUMNS`,
plus one ``param.<name>`` column per resolved hyperparameter, so that results can be analysed in
pandas (or anything that reads parquet) without the suite. Nested values (``params``, the Optuna
params, library versions) are kept as JSON text as well, so nothing the frame holds is lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reports.load import load
from suite.errors import SuiteError

FORMATS = (".parquet", ".csv")
NESTED = ("params", "optuna_params", "versions")


def _json(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return json.dumps(value, sort_keys=True, default=str)


def export_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """The trial frame made flat and typed for a file (pure).

    Nested columns (:data:`NESTED`) become JSON text; each resolved hyperparameter also gets its own
    ``param.<name>`` column (a value that is not a number, string or bool is written as JSON text);
    object columns that mix types are written as text. Row order and count are kept.
    """
    out = trials.copy()
    params = [p if isinstance(p, dict) else {} for p in out["params"]]
    names = sorted({k for p in params for k in p})
    for name in names:
        values = [p.get(name) for p in params]
        if not all(v is None or isinstance(v, bool | int | float | str) for v in values):
            values = [_json(v) for v in values]
        out[f"param.{name}"] = values
    for col in NESTED:
        out[col] = out[col].map(_json)
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and v != v)}
            if len(kinds) > 1:
                out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and v != v)
                                        else str(v))
    return out


def export(sources: Sequence[str], path: Path) -> int:
    """Write every trial of ``sources`` to ``path`` (``.parquet`` or ``.csv``); return the row count.

    Raises:
        SuiteError: an unknown file suffix, a source that cannot be read, or a file that cannot be
            written (one line each).
    """
    if path.suffix not in FORMATS:
        raise SuiteError(f"export file {str(path)!r} must end in {' or '.join(FORMATS)}")
    frame = export_frame(load(list(sources)).trials)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    except (OSError, ValueError, ImportError) as exc:
        raise SuiteError(f"cannot write {str(path)!r}: {type(exc).__name__}: {exc}") from None
    return len(frame)
