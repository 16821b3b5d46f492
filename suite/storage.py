"""Optuna storages: the one place a storage spec is parsed, its kind decided and the storage opened,
for the engine and the report alike (Optuna and SQLAlchemy are imported where a storage opens).

Three kinds (:class:`Storage`):

* ``sqlite``: ``sqlite:///...``, one process at a time (a run folder's ``optuna.db``);
* ``journal``: a file path ending in ``.log`` / ``.jsonl`` (Optuna's ``JournalFileBackend``), for
  several processes on one machine (``suite benchmark --jobs N`` writes the run folder's
  ``optuna.journal.log``); no heartbeats: dead workers are found by pid (:mod:`suite.workers`);
* ``rdb``: any other SQLAlchemy URL (``postgresql+psycopg2://...``), shared by workers on many
  machines, with heartbeats.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.secrets import check_password_encoding, mask_url, redact, remember

RUN_DB = "optuna.db"
RUN_JOURNAL = "optuna.journal.log"  # written by suite benchmark --jobs N
JOURNAL_SUFFIXES = (".log", ".jsonl")
SQLITE, JOURNAL, RDB = "sqlite", "journal", "rdb"


@dataclass(frozen=True)
class Storage:
    """A parsed storage spec.

    Attributes:
        kind: ``sqlite``, ``journal`` or ``rdb``.
        target: the URL (``sqlite``, ``rdb``) or the journal file's path (``journal``).
        label: what logs and reports show: the path, or the URL with its password masked.
    """

    kind: str
    target: str
    label: str

    @property
    def shared(self) -> bool:
        """Whether several processes may write it at once (a journal file or a server)."""
        return self.kind != SQLITE

    @property
    def path(self) -> Path | None:
        """The file holding the storage (SQLite database or journal), ``None`` for a server."""
        if self.kind == JOURNAL:
            return Path(self.target)
        if self.kind == SQLITE and self.target.startswith("sqlite:///"):
            return Path(self.target.removeprefix("sqlite:///"))
        return None


def is_storage_spec(spec: str) -> bool:
    """Whether ``spec`` names a storage (a URL or a journal file), not a folder or another file."""
    return "://" in str(spec) or str(spec).endswith(JOURNAL_SUFFIXES)


def parse_storage(spec: str | Storage) -> Storage:
    """Classify a storage URL or journal file path (``Storage`` values pass through).

    Raises:
        SuiteError: ``spec`` is neither (the message says what is accepted).
    """
    if isinstance(spec, Storage):
        return spec
    text = str(spec)
    if "://" in text:
        why = check_password_encoding(text)
        if why:
            raise SuiteError(why)
        remember(text)  # from now on no line of this process shows its password, in any form
        return Storage(SQLITE if text.startswith("sqlite") else RDB, text, mask_url(text))
    if text.endswith(JOURNAL_SUFFIXES):
        return Storage(JOURNAL, text, text)
    raise SuiteError(f"storage {text!r} is not a storage URL (sqlite:///..., postgresql+psycopg2://...) "
                     "or a journal file (.log/.jsonl)")


def run_folder_storage(folder: Path) -> str | None:
    """The storage a run folder holds: ``sqlite:///<folder>/optuna.db`` when it has one (a folder
    from before ``--jobs``, or run with one job), else its journal file path, else ``None``."""
    db, journal = folder / RUN_DB, folder / RUN_JOURNAL
    if db.is_file():
        return f"sqlite:///{db.resolve()}"
    if journal.is_file():
        return str(journal.resolve())
    return None


def source_storage(source: str) -> str:
    """A run folder's ``optuna.db`` as a URL, or the storage URL / journal path itself."""
    if is_storage_spec(source):
        return source
    found = run_folder_storage(Path(source))
    if found:
        return found
    raise SuiteError(f"{source!r} is neither a run folder (optuna.db or optuna.journal.log) nor a storage "
                     "URL or journal file")


def storage_url(out_dir: Path, storage: str | None) -> str:
    """``storage`` as given; else the run folder's journal file (``optuna.journal.log``, written by
    ``suite benchmark --jobs N``) when it has one; else ``sqlite:///<out_dir>/optuna.db``."""
    if storage:
        return storage
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_folder_storage(out_dir) or f"sqlite:///{(out_dir / RUN_DB).resolve()}"


def open_storage(spec: str | Storage, *, heartbeat: bool = True, write: bool = True) -> Any:
    """The Optuna storage of ``spec``.

    * ``sqlite``: an ``RDBStorage`` that waits up to 60 s for the database lock; opening a new file
      while another process creates its tables is retried;
    * ``rdb``: with heartbeats (``heartbeat``; settings and the requeue callback from
      :func:`suite.workers.heartbeat_kwargs`) so the trials of dead workers are failed and requeued
      with the same params; the schema creation is retried when workers start at the same moment;
    * ``journal``: opened for writing (``write``) a torn last record is repaired first, a bad
      record in the middle refused (:func:`suite.journal.open_journal`).

    ``write=False`` only reads: nothing is created or changed (a missing SQLite file or journal is
    an error, no tables are created), as the report needs.
    """
    import optuna

    s = parse_storage(spec)
    if s.kind == JOURNAL:
        from suite.journal import open_journal

        if not write and not Path(s.target).is_file():
            raise SuiteError(f"journal file {s.label!r} does not exist")
        return open_journal(s.target, write=write)
    if not write:
        if s.kind == SQLITE and s.path is not None and not s.path.is_file():
            raise SuiteError(f"SQLite storage {s.label!r} does not exist")
        try:
            return optuna.storages.RDBStorage(s.target, skip_table_creation=True)
        except Exception as exc:
            from suite.errors import describe

            raise SuiteError(f"cannot open storage {s.label!r}: {redact(describe(exc), s.target)}") from None
    if s.kind == SQLITE:
        for attempt in range(6):
            try:
                return optuna.storages.RDBStorage(s.target, engine_kwargs={"connect_args": {"timeout": 60}})
            except Exception as exc:  # a corrupt or unreadable file: name it
                from suite.errors import describe

                racing = any(m in str(exc) for m in ("already exists", "UNIQUE constraint failed: alembic"))
                if racing and attempt < 5:
                    # another process (a second command, a dashboard) created the tables or stamped
                    # the schema version between SQLAlchemy's check and its write: open it again
                    time.sleep(0.2 + random.random())
                    continue
                raise SuiteError(f"SQLite storage {str(s.path or s.label)!r} cannot be opened: "
                                 f"{describe(exc)}") from None
    if heartbeat:
        from suite.workers import heartbeat_kwargs

        return _rdb_storage(s.target, **heartbeat_kwargs(), engine_kwargs=pool_kwargs())
    return _rdb_storage(s.target, engine_kwargs=pool_kwargs())


#: connections one process keeps to a server storage: the main thread and Optuna's heartbeat thread
#: use one each; the overflow covers a short burst (``$SUITE_DB_POOL_SIZE`` and
#: ``$SUITE_DB_MAX_OVERFLOW`` override them). While it opens the storage a process holds one more
#: (:data:`START_CONNECTIONS`: the schema lock, see :func:`_rdb_storage`). 16 workers hold at most
#: 16 x (2 + 2 + 1) = 80 of PostgreSQL's default 100.
POOL_SIZE, MAX_OVERFLOW, START_CONNECTIONS = 2, 2, 1


def pool_kwargs() -> dict[str, Any]:
    """SQLAlchemy engine arguments for a server storage: a bounded pool (:data:`POOL_SIZE` +
    :data:`MAX_OVERFLOW` connections), connections checked before use and recycled after 5 minutes
    (a server or proxy that drops idle connections costs a reconnect, not a failed trial)."""
    import os

    sizes = {}
    for name, default in (("SUITE_DB_POOL_SIZE", POOL_SIZE), ("SUITE_DB_MAX_OVERFLOW", MAX_OVERFLOW)):
        value = os.environ.get(name, "")
        if value and not value.isdigit():
            raise SuiteError(f"{name} must be a whole number >= 0, got {value!r}")
        sizes[name] = int(value) if value else default
    if sizes["SUITE_DB_POOL_SIZE"] < 1:
        raise SuiteError("SUITE_DB_POOL_SIZE must be at least 1")
    return {"pool_size": sizes["SUITE_DB_POOL_SIZE"], "max_overflow": sizes["SUITE_DB_MAX_OVERFLOW"],
            "pool_pre_ping": True, "pool_recycle": 300}


def _rdb_storage(url: str, **kwargs: Any) -> Any:
    """``RDBStorage(url)``. On PostgreSQL the schema check runs under an advisory lock, so workers
    that start together create the tables one at a time; elsewhere (and should the lock fail) a
    concurrent ``CREATE TABLE`` answered with a unique violation is retried. A failed attempt's
    engine is collected at once, so its pooled connection does not outlive it."""
    import gc

    import optuna
    import sqlalchemy
    import sqlalchemy.exc

    lock = None
    if url.startswith(("postgresql", "postgres")):
        try:
            lock = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool).connect()
            lock.execute(sqlalchemy.text("SELECT pg_advisory_lock(20231)"))  # the suite's schema lock
        except sqlalchemy.exc.SQLAlchemyError:
            lock = None  # RDBStorage below reports what is wrong with the server
    try:
        for attempt in range(6):
            try:
                return optuna.storages.RDBStorage(url, **kwargs)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                gc.collect()
                if attempt == 5:
                    raise
                time.sleep(0.2 + random.random())
        raise AssertionError  # unreachable
    finally:
        if lock is not None:
            lock.close()  # ends the session: the advisory lock goes with it


def close_storage(storage: Any) -> None:
    """Close the connections ``storage`` (as :func:`open_storage` returned it) holds: a server
    storage's pool; other kinds hold none between calls. ``None`` is ignored."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def check_storage_url(url: str) -> Any:
    """Open storage ``url`` (without heartbeats) and return it, or fail early in one line naming the
    cause. A journal file is opened for writing, so a torn last record is repaired (or a bad one in
    the middle refused) here, first. A path that is no storage spec is left to its caller (``None``)."""
    from suite.errors import describe

    if not is_storage_spec(url):
        return None
    try:
        return open_storage(url, heartbeat=False)
    except SuiteError:
        raise
    except OSError as exc:  # a journal in a missing folder, no permission
        raise SuiteError(f"journal file {url!r} cannot be opened: {type(exc).__name__}: "
                         f"{exc.strerror or exc}") from None
    except Exception as exc:
        raise SuiteError(f"storage {mask_url(url)!r} cannot be opened: "
                         f"{redact(describe(exc), url)}") from None


def shared_storage(storage: str | None, what: str) -> str:
    """``storage`` when several processes can share it (a journal file or a server).

    Raises:
        SuiteError: it is missing or SQLite (``what`` names who needs it).
    """
    if not storage or parse_storage(storage).kind == SQLITE:
        raise SuiteError(f"{what} needs a storage that several processes can share: a PostgreSQL URL "
                         "(many machines) or a journal file ending in .log (one machine), not SQLite")
    return storage
