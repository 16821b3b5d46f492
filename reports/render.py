"""The report page: the sections of :mod:`reports.sections` rendered in page order to one HTML file.

A section's ``render(ctx)`` returns a list of blocks. A block is a small dict (``text``, ``note``,
``sub``, ``table``, ``figure``, ``code``) that the Jinja2 template renders with autoescaping on, so
every string from the data is shown as text. Figures are SVG ``data:`` URIs, and the page's
Content-Security-Policy forbids every request but ``data:`` images: the file is self-contained and
opens offline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from reports.blocks import note
from reports.context import Context
from reports.load import ReportData, load
from reports.sections import Section, page

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


def build_report(sources: list[str], out_dir: Path, *, prices: dict[str, float] | None = None) -> Path:
    """Read ``sources``, write ``out_dir/index.html`` (self-contained) and return its path.

    Args:
        sources: run folders (with ``optuna.db``), Optuna storage URLs, or journal files
            (``.log``/``.jsonl``); several are merged into one report.
        out_dir: created if missing.
        prices: price per hour by machine (an id such as ``M1`` or part of its label), for the
            hardware section's cost to target.

    Raises:
        SuiteError: a source cannot be parsed or opened, or a price names no machine.
    """
    import matplotlib

    matplotlib.set_loglevel("error")
    data = load(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    ctx = Context(data, prices=dict(prices or {}))
    if ctx.prices:
        from reports.hardware import machine_prices, with_setups

        machine_prices(with_setups(ctx.trials), ctx.prices)  # a price naming no machine: before writing
    path.write_text(render_html(data, ctx=ctx), encoding="utf-8")
    (out_dir / "findings.json").write_text(json.dumps(ctx.findings, indent=1, default=_json_value),
                                           encoding="utf-8")
    return path


def _json_value(value: Any) -> Any:
    """numpy scalars and other values ``json`` does not know, for ``findings.json``."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
