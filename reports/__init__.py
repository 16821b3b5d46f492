"""The benchmark report: trial records from Optuna storages -> statistics -> one HTML page.

``build_report(sources, out_dir)`` is the entry point (``suite report`` and ``python -m reports``
call it). The package never imports training code: it reads what the storages hold.
"""

from reports.render import build_report

__all__ = ["build_report"]
