"""The report page: the sections of :mod:`reports.sections` rendered in page order to one HTML file,
and the block helpers the sections phrase with.

A section's ``render(ctx)`` returns a list of blocks. A block is a small dict (``text``, ``note``,
``sub``, ``table``, ``figure``, ``code``) that the Jinja2 template renders with autoescaping on, so
every string from the data is shown as text. Figures are SVG ``data:`` URIs, and the page's
Content-Security-Policy forbids every request but ``data:`` images: the file is self-contained and
opens offline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.context import Context
from reports.load import ReportData, load
from reports.sections import Section, page

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


def figure(uri: str, alt: str, caption: str = "") -> Block:
    return {"kind": "figure", "uri": uri, "alt": alt, "caption": caption}


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


# --------------------------------------------------------------------------- page


def render_sections(ctx: Context, sections: Sequence[Section] | None = None) -> list[dict[str, Any]]:
    """Every section's blocks (``sections``: default :func:`reports.sections.page`, in page order); a
    section that raises shows the error instead of breaking the page."""
    out = []
    for i, s in enumerate(page() if sections is None else sections, start=1):
        try:
            blocks = s.render(ctx)
        except Exception as exc:  # one broken section must not lose the report
            blocks = [note(f"This section could not be drawn: {type(exc).__name__}: {exc}")]
        out.append({"slug": s.slug, "number": i, "title": s.title, "blocks": blocks})
    return out


def render_html(data: ReportData, *, title: str = "Benchmark report", ctx: Context | None = None,
                sections: Sequence[Section] | None = None) -> str:
    """The report page as one HTML string (``ctx``: a context to reuse, e.g. for ``findings.json``;
    ``sections``: default every section of :mod:`reports.sections`, in page order)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    ctx = ctx or Context(data)
    return env.get_template("report.html").render(
        title=title, sections=render_sections(ctx, sections), sources=[s.label for s in data.sources],
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), n_trials=len(data.trials),
    )


def build_report(sources: list[str], out_dir: Path) -> Path:
    """Read ``sources``, write ``out_dir/index.html`` (self-contained) and return its path.

    Args:
        sources: run folders (with ``optuna.db``), Optuna storage URLs, or journal files
            (``.log``/``.jsonl``); several are merged into one report.
        out_dir: created if missing.

    Raises:
        SuiteError: a source cannot be parsed or opened.
    """
    import matplotlib

    matplotlib.set_loglevel("error")
    data = load(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    ctx = Context(data)
    path.write_text(render_html(data, ctx=ctx), encoding="utf-8")
    (out_dir / "findings.json").write_text(json.dumps(ctx.findings, indent=1, default=_json_value),
                                           encoding="utf-8")
    return path


def _json_value(value: Any) -> Any:
    """numpy scalars and other values ``json`` does not know, for ``findings.json``."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
