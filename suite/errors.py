"""Errors the user can fix: the CLI prints them as one line and exits with code 2."""


class SuiteError(ValueError):
    """Bad input (an unknown name, a value out of range, an incompatible combination).

    The message names the bad value and what is allowed; it is shown without a traceback.
    """


class Interrupted(SuiteError):
    """The user stopped a run (SIGINT, Ctrl-C, or SIGTERM): what finished is kept, the trial that was
    running is recorded as ``interrupted`` and redone on resume. The CLI prints the message and exits
    with 130, the shell's code for a run stopped by SIGINT."""
