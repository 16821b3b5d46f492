"""``suite check --plugin FILE``: the contract tests generated from the registries, run on what a
plug-in registers (like ``benchopt test``)."""

from __future__ import annotations

from typing import Annotated

import typer

from suite.cli.console import command, err, say
from suite.errors import SuiteError


@command
def check(
    ctx: typer.Context,
    pytest_arg: Annotated[list[str] | None, typer.Option(
        "--pytest-arg", help="extra argument for pytest (repeatable), e.g. --pytest-arg=-x")] = None,
) -> None:
    """Run the generated contract tests on what each plug-in named by --plugin registers.

    Every task (shapes, splits, metric scale, deterministic load()), every family (every parameter
    gets a gradient, one epoch trains), optimizers and regularizers. Exit 0 when they pass, 1 when
    one fails."""
    from suite.check import check_plugin

    plugins = (ctx.obj or {}).get("plugins") or []
    if not plugins:
        raise SuiteError("name the plug-in to check: suite check --plugin FILE.py")
    failed = [p for p in plugins if check_plugin(p, pytest_args=tuple(pytest_arg or ()))]
    if failed:
        say(f"suite check: {', '.join(failed)} failed its contract tests (the lines above name each entry)",
            to=err)
        raise typer.Exit(1)
