"""The ``suite`` command line (typer + rich): one module per command group, registered here.

User errors (unknown names, bad values, incompatible combinations) print one line on stderr and
exit with code 2, without a traceback (:mod:`suite.cli.console`). Commands keep Lightning and torch
out of what trains nothing: each imports what it needs when it runs. A new command group is one
module with its command functions and one ``app.command`` line below.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from suite.cli import benchmark, catalogue, check, perf, results, run, tune
from suite.cli.console import err, fail, say
from suite.errors import SuiteError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark deep-learning architectures, optimizers and regularizers on standardized tasks.",
)

app.command("list")(catalogue.list_cmd)
app.command()(run.run)
app.command()(benchmark.benchmark)
app.command()(benchmark.worker)
app.command()(tune.tune)
app.command()(results.dashboard)
app.command()(results.report)
app.command()(results.export)
app.command()(perf.perf)
app.command()(check.check)


@app.callback()
def _plugins(ctx: typer.Context, plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", help="a .py file or module that registers tasks, families, optimizers or regularizers; "
                         "repeatable (also accepted after the command)")] = None) -> None:
    """Load the plug-ins named here, in $SUITE_PLUGINS and by installed packages' entry points."""
    ctx.obj = {"plugins": list(plugin or [])}  # what `suite check` checks
    from suite.plugins import ENV, load_entry_points, load_from_env, load_plugin

    try:
        if os.environ.get(ENV):
            load_from_env()
        for spec in plugin or []:
            load_plugin(spec)
        load_entry_points()
    except SuiteError as exc:
        raise fail(exc) from None


def split_plugins(argv: list[str]) -> list[str]:
    """``argv`` with every ``--plugin X`` / ``--plugin=X`` moved before the command, so a plug-in can
    be named anywhere on the command line."""
    head, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--plugin" and i + 1 < len(argv):
            head += [a, argv[i + 1]]
            i += 2
            continue
        if a.startswith("--plugin="):
            head.append(a)
        else:
            rest.append(a)
        i += 1
    return head + rest


def main() -> None:
    """Console-script entry point: every user error, typer's own (an unknown option, a value that is
    not an integer, a missing option) included, is one ``error:`` line on stderr and exit 2."""
    import signal

    from typer import _click

    def terminate(signum: int, frame: Any) -> None:  # SIGTERM stops a run as Ctrl-C does
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=split_plugins(sys.argv[1:]), prog_name="suite", standalone_mode=False)
    except _click.exceptions.UsageError as exc:
        message = exc.format_message().strip().replace("\n", " ")
        where = exc.ctx.command_path if exc.ctx is not None else "suite"
        say(f"error: {message[:1].lower()}{message[1:]} (see '{where} --help')", to=err)
        sys.exit(2)
    except _click.exceptions.ClickException as exc:
        say(f"error: {exc.format_message()}", to=err)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("error: interrupted", markup=False)
        sys.exit(130)
    except SuiteError as exc:  # a user error that escaped a command: still one line
        say(f"error: {exc}", to=err)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # a file, disk or storage fault no command foresaw: one line, with its cause
        if os.environ.get("SUITE_DEBUG"):
            raise
        from suite.errors import describe

        say(f"error: {describe(exc)} (SUITE_DEBUG=1 shows the traceback)", to=err)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
