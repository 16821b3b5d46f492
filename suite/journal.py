"""Journal files (Optuna's ``JournalFileBackend``): one JSON record per line, appended by every
process that writes the storage.

A process killed mid-write (a crash, a full disk) leaves a torn last record: a line without its
newline, or one that is not valid JSON. Optuna's reader skips a torn *last* line, but the next
append lands after it and from then on every read fails. So before a journal is opened for
writing, :func:`open_journal` repairs a torn last record: it keeps a copy of the file
(``<name>.torn-<UTC time>``), cuts the partial record and says so in one line. What the readers saw
is what remains: a repaired journal reads the same trials as before. A bad record in the *middle*
(records follow it) is never repaired silently: Optuna cannot read past it, and cutting would drop
the records after it, so it is refused with the line number and how to repair it by hand.

The check and the repair hold Optuna's own journal lock (``<name>.lock``), so a record that
another process is appending at that moment is never mistaken for a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from suite.errors import SuiteError, warn

TORN = ".torn-"
_CHUNK = 1 << 16


def is_record(line: bytes) -> bool:
    """Whether ``line`` is a complete journal record: newline-terminated JSON object with an op code."""
    if not line.endswith(b"\n"):
        return False
    try:
        data = json.loads(line)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return False
    return isinstance(data, dict) and "op_code" in data


def last_line(path: Path) -> tuple[int, bytes]:
    """``(offset, bytes)`` of the file's last line (with its newline, if it has one); ``(0, b"")``
    for an empty file. Reads backwards from the end, so a long journal costs one block or two."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0, b""
        f.seek(size - 1)
        pos = size - 1 if f.read(1) == b"\n" else size  # the last line's own newline is not its start
        begin = 0
        while pos > 0:
            lo = max(0, pos - _CHUNK)
            f.seek(lo)
            i = f.read(pos - lo).rfind(b"\n")
            if i >= 0:
                begin = lo + i + 1
                break
            pos = lo
        f.seek(begin)
        return begin, f.read()


def _whole(last: bytes) -> bool:
    """An empty file or a complete last record: nothing to repair."""
    return last == b"" or is_record(last)


def first_bad_line(path: Path) -> tuple[int, int, int] | None:
    """``(line number, byte offset, number of lines)`` of the first line of ``path`` that is not a
    complete record, or ``None`` when every line is one."""
    bad, n = None, 0
    offset = 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if bad is None and not is_record(line):
                bad = (n, offset)
            offset += len(line)
    return None if bad is None else (*bad, n)


def bad_record_error(path: Path, line: int, lines: int) -> SuiteError:
    """The one-line refusal of a journal with a bad record at ``line`` (of ``lines``) that is not the last."""
    return SuiteError(
        f"journal {path} line {line} of {lines} is not a complete record (torn or garbage) and records "
        f"follow it, so Optuna cannot read the file past it; not repaired automatically (it would drop "
        f"{lines - line} later records). Keep a copy, then delete that line (sed -i '{line}d' {path}) or "
        f"cut the file before it (head -n {line - 1} {path} > {path}.cut && mv {path}.cut {path}), "
        "and run again")


def repair_torn_tail(path: Path) -> Path | None:
    """Cut a torn last record of journal ``path``, after copying the file to
    ``<name>.torn-<UTC time>``; return the copy's path (``None`` when the last record is whole).

    Holds Optuna's journal lock while it checks and cuts. Refuses (:class:`SuiteError`) a journal
    whose bad record is not the last one, and a repair whose copy cannot be written (a full disk):
    the file is then left as it was.
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    if not path.is_file() or _whole(last_line(path)[1]):
        return None
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        offset, tail = last_line(path)  # again under the lock: a live writer may have finished it
        if _whole(tail):
            return None
        line, bad_offset, lines = first_bad_line(path) or (0, offset, 0)
        if bad_offset != offset:
            raise bad_record_error(path, line, lines)
        copy = torn_copy_path(path)
        try:
            shutil.copyfile(path, copy)
        except OSError as exc:
            copy.unlink(missing_ok=True)
            raise SuiteError(f"journal {path} ends in a torn record (line {line}) but no copy of it can be "
                             f"kept in {copy} ({exc.strerror or exc}); it was not repaired: free some space "
                             "and run again") from None
        with open(path, "r+b") as f:
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())
    finally:
        # RuntimeError: force-released meanwhile by a writer that waited past Optuna's grace period
        with contextlib.suppress(RuntimeError):
            lock.release()
    what = "no newline" if not tail.endswith(b"\n") else "not a JSON record"
    warn(f"journal {path} ended in a torn record (line {line}, {len(tail)} bytes, {what}), left by a "
         f"process that stopped while writing: cut it, keeping the {line - 1} whole records before it; "
         f"the file as it was is kept in {copy}")
    return copy


def torn_copy_path(path: Path) -> Path:
    """``<path>.torn-<UTC time>``, with a counter when that name is taken."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    copy = path.with_name(f"{path.name}{TORN}{stamp}")
    i = 1
    while copy.exists():
        copy = path.with_name(f"{path.name}{TORN}{stamp}-{i}")
        i += 1
    return copy


def open_journal(path: str | Path, *, write: bool = True) -> Any:
    """``JournalStorage(JournalFileBackend(path))``; for writing (``write``) a torn last record is
    repaired first (:func:`repair_torn_tail`). A journal that Optuna cannot read because of a bad
    record in the middle gives one :class:`SuiteError` line naming the file and the line."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    path = Path(path)
    if write:
        repair_torn_tail(path)
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except ValueError:  # Optuna's "Invalid log format." or a JSONDecodeError, raised on reading
        bad = first_bad_line(path) if path.is_file() else None
        if bad is None:
            raise
        raise bad_record_error(path, bad[0], bad[2]) from None
