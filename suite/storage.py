"""Storage URLs: the one function that masks a password, and where a run folder keeps its trials
(no heavy imports, so the report uses them too)."""

from __future__ import annotations

from pathlib import Path


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``postgresql://user:***@host/db``), for logs,
    records and reports.

    Parsed by hand, not by SQLAlchemy, so that URLs it cannot parse are masked too: the credentials
    end at the last ``@`` before the query string (a password may contain an unescaped ``@``), and
    the password is everything after the user's first ``:``. A URL without credentials is returned
    as it is.
    """
    head, sep, tail = str(url).partition("://")
    if not sep:
        return str(url)
    authority, q, query = tail.partition("?")
    cred, at, host = authority.rpartition("@")
    if not at or ":" not in cred:
        return str(url)
    user = cred.split(":", 1)[0]
    return f"{head}://{user}:***@{host}{q}{query}"


RUN_DB = "optuna.db"
RUN_JOURNAL = "optuna.journal.log"  # written by suite benchmark --jobs N


def run_folder_storage(folder: Path) -> str | None:
    """The storage a run folder holds: ``sqlite:///<folder>/optuna.db`` when it has one (a folder
    from before ``--jobs``, or run with one job), else its journal file path, else ``None``."""
    db, journal = folder / RUN_DB, folder / RUN_JOURNAL
    if db.is_file():
        return f"sqlite:///{db.resolve()}"
    if journal.is_file():
        return str(journal.resolve())
    return None
