"""The report's sections: one module per section in this package, found by :func:`discover`.

A section module declares ``SLUG`` (its anchor on the page), ``TITLE`` and
``render(ctx: reports.context.Context) -> list[Block]`` (blocks: :mod:`reports.blocks`). The
statistics layer decides, the section phrases: its ``render`` words, draws and tabulates frames that
:mod:`reports.stats` and its siblings compute.

:data:`PAGE_ORDER` places the sections it names. A module whose slug it does not name is shown all
the same: right after the section its ``AFTER`` names, or else before the :data:`APPENDIX`. So adding
a section is one new file (and the tests generated over :func:`page` render it at once). Modules
whose names start with ``_`` hold phrasing the sections share and are no section.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: the page, top to bottom: what the data support first, then the evidence, reference material last
PAGE_ORDER = ["findings", "provenance", "leaderboard", "tuning", "architectures", "optimizers",
              "regularizers", "activations", "footprint", "hardware", "statistics", "optuna"]
#: the tail of :data:`PAGE_ORDER` that a section without a place (no ``AFTER``) comes before
APPENDIX = ["statistics", "optuna"]


@dataclass(frozen=True)
class Section:
    """One section of the page: ``render(ctx)`` returns its blocks; ``after`` places a section that
    :data:`PAGE_ORDER` does not name; ``module`` is where it is declared."""

    slug: str
    title: str
    render: Callable[[Any], list[dict[str, Any]]]
    module: str
    after: str | None = None


def _section(module: ModuleType) -> Section:
    slug, title, render = (getattr(module, name, None) for name in ("SLUG", "TITLE", "render"))
    after = getattr(module, "AFTER", None)
    if not (isinstance(slug, str) and slug and isinstance(title, str) and title and callable(render)):
        raise ValueError(f"report section module {module.__name__} must declare SLUG and TITLE (non-empty "
                         f"strings) and render(ctx), got {slug=}, {title=}, render={render!r}")
    if after is not None and not isinstance(after, str):
        raise ValueError(f"AFTER of report section module {module.__name__} must be a slug, got {after=}")
    return Section(slug, title, render, module.__name__, after)


def discover(package: ModuleType | None = None) -> dict[str, Section]:
    """Import every module of ``package`` (default: this one) whose name does not start with ``_``,
    in name order, and return its sections by slug.

    Raises:
        ValueError: a module declares no section, or two declare one slug.
    """
    package = package or importlib.import_module(__name__)
    found: dict[str, Section] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        s = _section(importlib.import_module(f"{package.__name__}.{info.name}"))
        if s.slug in found:
            raise ValueError(f"report section {s.slug!r} is declared twice: {found[s.slug].module} and "
                             f"{s.module}")
        found[s.slug] = s
    return found


def ordered(sections: Mapping[str, Section], *, order: list[str] | None = None,
            appendix: list[str] | None = None) -> list[Section]:
    """``sections`` in page order: those ``order`` names (default :data:`PAGE_ORDER`) in its order; the
    others right after the section their ``after`` names (several: in name order), or else, without
    ``after``, before the ``appendix`` (default :data:`APPENDIX`) in name order.

    Raises:
        ValueError: ``order`` names a section that no module declares, or an ``after`` names a slug
            that is not on the page (or the sections name each other in a cycle).
    """
    order = PAGE_ORDER if order is None else order
    appendix = APPENDIX if appendix is None else appendix
    missing = [slug for slug in order if slug not in sections]
    if missing:
        raise ValueError(f"the page order names {missing} but no section module declares them; "
                         f"declared: {sorted(sections)}")
    extra = sorted(slug for slug in sections if slug not in order)
    unplaced = [slug for slug in extra if sections[slug].after is None]
    base = [s for s in order if s not in appendix] + unplaced + [s for s in order if s in appendix]
    followers: dict[str, list[str]] = {}
    for slug in extra:
        if sections[slug].after is not None:
            followers.setdefault(str(sections[slug].after), []).append(slug)
    page: list[str] = []

    def place(slug: str) -> None:
        page.append(slug)
        for follower in followers.pop(slug, []):
            place(follower)

    for slug in base:
        place(slug)
    if followers:
        lost = {f: sections[f].after for fs in followers.values() for f in fs}
        raise ValueError(f"report sections placed AFTER a slug that is not on the page: {lost}; "
                         f"on the page: {page}")
    return [sections[slug] for slug in page]


def page() -> list[Section]:
    """Every section of this package, in page order."""
    return ordered(discover())
