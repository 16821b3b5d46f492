"""Storage URLs: the one function that masks a password (no heavy imports, so the report uses it
too)."""

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
