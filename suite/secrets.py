"""Secrets never shown: the password of a storage URL is masked in every log line, record, message
and report (no imports of the project: every layer may use it).

Three defences, because a driver's message may quote any part of a password (a password with an
unescaped ``@`` is cut by URL parsers, and the driver then prints the rest as a host name):

* :func:`mask_url` masks the password of a URL written in a line;
* :func:`check_password_encoding` refuses a URL whose password holds characters a URL must encode
  (``@``, ``:``, ``/``), before any driver sees it;
* every storage URL the process opens is remembered (:func:`remember`), and :func:`redact` removes
  its password from any text, whole, URL-decoded or encoded, and each of its pieces between
  ``@``, ``:`` and ``/``: the console and :func:`suite.errors.describe` pass every line through it.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

MASK = "***"
MIN_PIECE = 3  # shorter pieces of a password are not told apart from ordinary text
_KNOWN: set[str] = set()
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def _credentials(url: str) -> tuple[str, str] | None:
    """``(user, password)`` of ``url`` as written, ``None`` when it has no password. The credentials
    end at the last ``@`` before the query string (a password may hold an unescaped ``@``), and the
    password is everything after the user's first ``:``."""
    head, sep, tail = str(url).partition("://")
    if not sep:
        return None
    authority = tail.partition("?")[0]
    cred, at, _ = authority.rpartition("@")
    if not at or ":" not in cred:
        return None
    user, _, password = cred.partition(":")
    return user, password


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``postgresql://user:***@host/db``), for logs,
    records and reports. Parsed by hand, not by SQLAlchemy, so that URLs it cannot parse are masked
    too. A URL without credentials is returned as it is."""
    head, sep, tail = str(url).partition("://")
    if not sep or _credentials(url) is None:
        return str(url)
    authority, q, query = tail.partition("?")
    cred, _, host = authority.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}:{MASK}@{host}{q}{query}"


def secret_forms(url: str) -> list[str]:
    """Every form of ``url``'s password a message could carry, longest first: as written, decoded,
    encoded, the pieces of each between ``@``, ``:``, ``/``, and what lies before and after each of
    those (a URL parser cuts a password there), of ``MIN_PIECE`` characters or more. Empty when the
    URL has no password."""
    found = _credentials(url)
    if found is None or not found[1]:
        return []
    raw = found[1]
    forms = {raw, unquote(raw), quote(unquote(raw), safe="")}
    for form in list(forms):
        forms.update(p for p in re.split(r"[@:/]", form) if len(p) >= MIN_PIECE)
        for i, c in enumerate(form):  # what a parser cut at a separator leaves on either side
            if c in "@:/":
                forms.update(p for p in (form[:i], form[i + 1:]) if len(p) >= MIN_PIECE)
    return sorted((f for f in forms if f), key=len, reverse=True)


def remember(url: str) -> None:
    """Remember ``url``'s password, so that :func:`redact` removes it from every later line."""
    _KNOWN.update(secret_forms(url))


def redact(text: str, url: str | None = None) -> str:
    """``text`` with the password of ``url`` and of every remembered URL replaced by ``***`` (in every
    form, :func:`secret_forms`), and the password of any URL written in it masked."""
    forms = set(_KNOWN) | (set(secret_forms(url)) if url else set())
    out = _URL.sub(lambda m: mask_url(m.group(0)), str(text))
    for form in sorted(forms, key=len, reverse=True):
        out = out.replace(form, MASK)
    return out


def check_password_encoding(url: str) -> str | None:
    """Why ``url`` cannot be given to a driver as it is (its password holds ``@``, ``:`` or ``/``
    unencoded, so the driver would read part of it as the host or the database, and print it), or
    ``None``."""
    found = _credentials(url)
    if found is None:
        return None
    bad = sorted({c for c in found[1] if c in "@:/"})
    if not bad:
        return None
    codes = ", ".join(f"{c} as {quote(c, safe='')}" for c in bad)
    chars = " ".join(repr(c) for c in bad)
    return (f"the password in storage URL {mask_url(url)!r} holds {chars} unencoded: write it "
            f"URL-encoded ({codes}; a literal % as %25)")
