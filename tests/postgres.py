"""A real PostgreSQL server on 127.0.0.1 for the scale-out tests (Debian's ``postgresql`` package).

``postgres_url`` is a session fixture: it installs the package when ``initdb`` is missing (``apt-get``,
as root), runs ``initdb -A trust`` and ``pg_ctl start`` as the ``postgres`` user in a fresh folder on a
free port, yields ``postgresql+psycopg2://postgres@127.0.0.1:PORT/postgres`` and stops the server at
the end. It skips, saying why, only when the server cannot be installed or started. Trust
authentication accepts any password, so tests can also put a secret in the URL.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install() -> str | None:
    """Install Debian's postgresql package; return why it failed, or None."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2-binary is not installed (pip install psycopg2-binary)")
    bin_dir = _bin_dir()
    if bin_dir is None:
        why = _install()
        bin_dir = _bin_dir()
        if bin_dir is None:
            pytest.skip(f"PostgreSQL is not installed and could not be installed: {why}")
    root = Path(tempfile.mkdtemp(prefix="suite-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    made = _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    if made.returncode != 0:
        pytest.skip(f"initdb failed: {made.stderr.strip()[-300:]}")
    # one role that must give its password (the others are trusted): the masking tests log in wrongly
    hba = data / "pg_hba.conf"
    hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    port = _free_port()
    started = _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                           "-o", f"-k {root} -h 127.0.0.1 -p {port} -c max_connections=200", "start")
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        pytest.skip(f"pg_ctl start failed: {started.stderr.strip()[-300:]} {log[-300:]}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


PASSWORD_ROLE = "masked"  # logs in with a password on the test server (pg_hba.conf: scram-sha-256)


def fresh_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url`` and return its URL (one per test)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"
