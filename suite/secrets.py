"""Secrets never shown: the password of a storage URL is masked in every log line, record, message
and report (no imports: every layer may use it)."""

from __future__ import annotations


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


def redact(text: str, url: str) -> str:
    """``text`` with the password of storage ``url`` (if any) replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text
