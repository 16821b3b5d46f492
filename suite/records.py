"""What a stored trial record means, for the engine and the report alike (no heavy imports).

A record is a *result* of the method it ran unless the trial was stopped by the user
(``status: interrupted``) or failed for a reason outside the method (``error_kind: environment``,
a file-system error). Such a trial keeps its record, does not count towards its arm's budget, and
a copy with the same params is redone; the report does not count it as a failed run either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_result(record: Mapping[str, Any] | None) -> bool:
    """Whether ``record`` (a trial's stored record, ``None`` when it has none) is a result."""
    return (record is not None and record.get("status") != "interrupted"
            and record.get("error_kind") != "environment")
