"""The blocks a report section phrases with: small dicts (``text``, ``note``, ``sub``, ``table``,
``figure``, ``code``) that the page template renders with autoescaping on, and the formatting
helpers every section shares."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports.context import Context

Block = dict[str, Any]
MAX_ROWS = 200


# --------------------------------------------------------------------------- blocks


def fmt(value: Any, digits: int = 4) -> str:
    """A cell as text: ``-`` for missing, 4 significant digits for floats, thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isinf(v):
            return "inf"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.{digits}g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def text(s: str) -> Block:
    return {"kind": "text", "text": s}


def note(s: str) -> Block:
    """A one-line 'no data' or caveat message."""
    return {"kind": "note", "text": s}


def sub(s: str) -> Block:
    return {"kind": "sub", "text": s}


def code(s: str) -> Block:
    return {"kind": "code", "text": s}


def figure(svg: str, alt: str, caption: str = "") -> Block:
    """A figure: ``svg`` (:func:`reports.figures.to_uri`'s markup) with ``alt`` as its accessible
    name (``role="img"``, ``<title>``) and ``caption`` as its ``<desc>`` and visible caption."""
    from markupsafe import escape

    head, rest = svg.split(">", 1)
    labelled = (f'{head} role="img" class="figure"><title>{escape(alt)}</title>'
                + (f"<desc>{escape(caption)}</desc>" if caption else "") + rest)
    return {"kind": "figure", "svg": labelled, "alt": alt, "caption": caption}


def table(df: pd.DataFrame, caption: str = "", *, max_rows: int = MAX_ROWS) -> Block:
    """A table block of ``df`` (column names as headers), cut to ``max_rows`` with a note."""
    rows = [[fmt(v) for v in row] for row in df.head(max_rows).itertuples(index=False)]
    more = len(df) - max_rows if len(df) > max_rows else 0
    return {"kind": "table", "columns": [str(c) for c in df.columns], "rows": rows, "caption": caption,
            "more": more}


def readable(value: Any, *, top: bool = True) -> str:
    """A protocol value as text: a dict as ``key=value, ...``, a list as ``a, b`` (nested ones in
    parentheses or brackets), anything else as :func:`fmt` writes it."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={readable(v, top=False)}" for k, v in value.items())
        return inner if top else f"({inner})"
    if isinstance(value, list | tuple):
        inner = ", ".join(readable(v, top=False) for v in value)
        return (inner or "-") if top else f"[{inner}]"
    return fmt(value)


def join_and(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def kv_table(items: Sequence[tuple[str, Any]], caption: str = "") -> Block:
    return table(pd.DataFrame(items, columns=["", "value"]), caption)


def ci_text(row: pd.Series) -> str:
    """An arm's test interval as the leaderboard shows it, or why there is none (the same rules as
    the findings: fewer than 6 units give no exact 95% interval; no spread is said)."""
    n = int(row["n"])
    if not (math.isfinite(float(row["ci_low"])) and math.isfinite(float(row["ci_high"]))):
        return f"none from {n} unit{'s' if n != 1 else ''} (needs 6)"
    interval = f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
    return f"{interval} (no spread)" if not row.get("spread", True) else interval


def arm_label(row: pd.Series) -> str:
    return f"{row['optimizer']} / {row['regularizers']}"


def task_heading(ctx: Context, task: str) -> Block:
    """A task's sub-heading: its metric, which way is better and its target."""
    metric, direction, target = ctx.task_info(task)
    tgt = f", target {fmt(target)}" if math.isfinite(target) else ""
    return sub(f"{task}: {metric} ({'higher' if direction == 'maximize' else 'lower'} is better{tgt})")
