"""Errors the user can fix: the CLI prints them as one line and exits with code 2."""


class SuiteError(ValueError):
    """Bad input (an unknown name, a value out of range, an incompatible combination).

    The message names the bad value and what is allowed; it is shown without a traceback.
    """
