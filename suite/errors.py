"""Errors the user can fix: the CLI prints them as one line and exits with code 2; and warnings,
the one-line notes of what was done on the user's behalf."""

import sys


class SuiteError(ValueError):
    """Bad input (an unknown name, a value out of range, an incompatible combination).

    The message names the bad value and what is allowed; it is shown without a traceback.
    """


class Interrupted(SuiteError):
    """The user stopped a run (SIGINT, Ctrl-C, or SIGTERM): what finished is kept, the trial that was
    running is recorded as ``interrupted`` and redone on resume. The CLI prints the message and exits
    with 130, the shell's code for a run stopped by SIGINT."""


def describe(exc: BaseException, depth: int = 3) -> str:
    """One line for an unexpected exception: its type and first message line, then the same for
    what caused it (``__cause__``/``__context__``, up to ``depth`` levels), so that the line names
    the cause (``StorageInternalError: ... <- DatabaseError: file is not a database``) and not only
    a wrapper's class. Storage URLs in it, and every remembered storage password in any form, are
    masked (:func:`suite.secrets.redact`)."""
    from suite.secrets import redact

    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and len(parts) < depth and id(current) not in seen:
        seen.add(id(current))
        first = (str(current).strip().splitlines() or [""])[0][:300]
        parts.append(f"{type(current).__name__}: {first}" if first else type(current).__name__)
        current = current.__cause__ or current.__context__
    return redact(" <- ".join(parts))


def warn(message: str) -> None:
    """Print ``warning: <message>`` as one line on stderr: something was done on the user's behalf
    (a repair, a merge, a take-over) that they should know about."""
    from suite.secrets import redact

    print(f"warning: {redact(message)}", file=sys.stderr, flush=True)
