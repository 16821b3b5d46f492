"""The command line's console: where output and errors go, and the one exit policy.

Helpers raise (:class:`suite.errors.SuiteError` for bad input); only commands exit, through
:func:`command`: a ``SuiteError`` becomes one ``error:`` line on stderr and exit 2, an
:class:`suite.errors.Interrupted` run prints what it kept and exits 130.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from suite.errors import Interrupted, SuiteError
from suite.secrets import redact


class MaskingConsole(Console):
    """A rich console that passes every string it prints through :func:`suite.secrets.redact`: no
    line of the command line shows a storage password, whoever wrote the line."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003
        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)


out = MaskingConsole()
err = MaskingConsole(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def say(text: str, *, to: Console | None = None) -> None:
    """One plain line (no rich markup or highlighting; long lines wrap softly); passwords masked."""
    (to or out).print(text, markup=False, highlight=False, soft_wrap=True)


def fail(error: str | SuiteError) -> typer.Exit:
    """Print ``error`` as the command's last line and return the exit to raise (2, or 130 for an
    :class:`Interrupted` run)."""
    if isinstance(error, Interrupted):
        say(f"interrupted: {error}", to=err)
        return typer.Exit(130)
    say(f"error: {error}", to=err)
    return typer.Exit(2)


def command(fn: F) -> F:
    """A command function whose :class:`SuiteError` is one ``error:`` line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SuiteError as exc:
            raise fail(exc) from None

    return wrapper  # type: ignore[return-value]
