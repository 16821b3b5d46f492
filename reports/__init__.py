"""The benchmark report: trial records from Optuna storages -> statistics -> one HTML page.

``build_report(sources, out_dir)`` is the entry point (``suite report`` and ``python -m reports``
call it). The package never imports training code: it reads what the storages hold. The figures'
libraries (seaborn, matplotlib) are imported with the sections (:mod:`reports.sections`), on the
first use of ``build_report``: ``reports.load`` alone (the dry run's timings) stays light.
"""

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from reports.render import build_report

        return build_report
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
