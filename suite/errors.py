"""Errors the user can fix: the CLI prints them as one line and exits with code 2; and warnings,
the one-line notes of what was done on the user's behalf."""

import sys


class SuiteError(ValueError):
    """Bad input (an unknown name, a value out of range, an incompatible combination).

    The message names the bad value and what is allowed; it is shown without a traceback.
    """


def warn(message: str) -> None:
    """Print ``warning: <message>`` as one line on stderr: something was done on the user's behalf
    (a repair, a merge, a take-over) that they should know about."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
