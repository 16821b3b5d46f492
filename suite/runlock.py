"""One writer per run folder: ``suite benchmark`` (and the parent of ``--jobs N``) holds
``<run folder>/.lock`` while it runs.

Two processes on one SQLite run folder would fail each other's running trials (each takes every
RUNNING trial it finds for a leftover of a crash), and two parents of one folder would both write
its report and energy files. The documented ways to run several processes are ``--jobs N`` (one
parent supervising its own workers) and ``suite worker`` on a shared storage: workers take no lock.

The lock file is created with ``O_CREAT | O_EXCL`` and holds JSON ``{pid, host, started, command}``
for the message a second process gets. Its holder also keeps an ``flock`` on it for as long as it
runs, which the kernel drops when the process dies however it dies: a lock file whose ``flock`` is
free and whose pid is gone on this host is stale and taken over (with a line saying so). A lock
from another host is never taken over automatically (its pid cannot be checked from here). On a
filesystem without ``flock`` the pid alone decides.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from suite.errors import SuiteError, warn
from suite.secrets import mask_url
from suite.workers import pid_alive

LOCK = ".lock"
SEVERAL = ("to run several processes on one benchmark use --jobs N (workers on this machine) or "
           "`suite worker` on a shared storage (a journal file or PostgreSQL)")


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line (``suite benchmark ...``), storage passwords masked."""
    argv = list(sys.argv if argv is None else argv)
    head = Path(argv[0]).name if argv else "python"
    if head in ("cli.py", "__main__.py", "suite"):
        head = "suite"
    return shlex.join([head, *(mask_url(a) for a in argv[1:])])


def _read(fd: int) -> dict[str, Any] | None:
    """The holder written in the lock file, ``None`` while it is empty (being written) or unreadable."""
    try:
        data = json.loads(os.pread(fd, 1 << 16, 0) or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _holder(path: Path) -> dict[str, Any] | None:
    """The holder of a held lock, waiting a little while its new holder is still writing it."""
    for _ in range(20):
        try:
            data = json.loads(path.read_bytes() or b"null")
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return data
        time.sleep(0.05)
    return None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another process (its lock file is empty or unreadable)"
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')} "
            f"({holder.get('command')})")


def _in_use(folder: Path, holder: dict[str, Any] | None) -> SuiteError:
    return SuiteError(f"run folder {folder} is in use by {_describe(holder)}: one process writes a run "
                      f"folder at a time; {SEVERAL}")


def _pid_alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and pid_alive(pid)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def acquire(folder: Path, *, command: str | None = None) -> int:
    """Take ``folder``'s lock (``folder`` must exist); return the open file descriptor that holds it.

    Raises:
        SuiteError: a live process holds it (one line naming it and how to run several processes),
            or a process on another host does.
    """
    path = folder / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
          "command": command if command is not None else command_line()}
    for _ in range(100):
        created = True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            created = False
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # released meanwhile: try again
                continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            flocks = True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):  # a filesystem without flock (some NFS)
                flocks = False
            else:
                os.close(fd)
                raise _in_use(folder, _holder(path)) from None
        if not _same_file(fd, path):  # the holder released (removed) it between our open and flock
            os.close(fd)
            continue
        old = None if created else _read(fd)
        if old is not None:
            if not flocks and old.get("host") == me["host"] and _pid_alive(old.get("pid")):
                os.close(fd)  # without flock the pid is all there is to go by
                raise _in_use(folder, old)
            if old.get("host") != me["host"]:
                os.close(fd)
                raise SuiteError(f"run folder {folder} is locked by {_describe(old)}, another host, so "
                                 "this one cannot tell whether it still runs; if that run is over, delete "
                                 f"{path}; {SEVERAL}")
            state = "is no longer running" if not _pid_alive(old.get("pid")) else "no longer holds it"
            warn(f"took over the stale lock {path} of pid {old.get('pid')} on {old.get('host')} (since "
                 f"{old.get('started')}): that process {state}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return fd
    raise SuiteError(f"run folder {folder}: could not take its lock {path} (it kept changing hands)")


def release(folder: Path, fd: int) -> None:
    """Remove ``folder``'s lock file if it is still the one ``fd`` holds, and drop the lock."""
    try:
        if _same_file(fd, folder / LOCK):
            (folder / LOCK).unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: Path, *, command: str | None = None) -> Iterator[Path]:
    """Hold ``folder``'s lock (the folder is created) for the ``with`` block; released however it
    ends (return, exception, Ctrl-C). Yields the lock file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = acquire(folder, command=command)
    try:
        yield folder / LOCK
    finally:
        release(folder, fd)
