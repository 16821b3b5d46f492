"""The ``suite`` command line (typer + rich).

User errors (unknown names, bad values, incompatible combinations) print one line on stderr and
exit with code 2, without a traceback.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suite.errors import SuiteError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark deep-learning architectures, optimizers and regularizers on standardized tasks.",
)
out = Console()
err = Console(stderr=True)


class What(StrEnum):
    tasks = "tasks"
    families = "families"
    optimizers = "optimizers"
    regularizers = "regularizers"


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def catalogue(what: What) -> list[dict[str, Any]]:
    """Summaries of every registered entry of one kind."""
    from suite.families import FAMILIES
    from suite.optimizers import OPTIMIZERS
    from suite.regularizers import REGULARIZERS
    from tasks import TASKS

    registry = {
        What.tasks: TASKS,
        What.families: FAMILIES,
        What.optimizers: OPTIMIZERS,
        What.regularizers: REGULARIZERS,
    }[what]
    return [entry.summary() for _, entry in registry.items()]


@app.command("list")
def list_cmd(
    what: Annotated[What | None, typer.Argument(help="what to list; all kinds when omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List registered tasks, families, optimizers or regularizers."""
    kinds = [what] if what else list(What)
    data = {k.value: catalogue(k) for k in kinds}
    if as_json:
        print(json.dumps(data[what.value] if what else data, indent=2))
        return
    for kind, entries in data.items():
        table = Table(title=kind, title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("details")
        for e in entries:
            if kind == "tasks":
                detail = (f"{e['kind']}; {e['metric']} ({e['direction']}, target {e['target']}); "
                          f"families: {', '.join(e['families'])}")
            else:
                detail = e.get("description", "")
                if e.get("params"):
                    detail += "  [" + ", ".join(f"{k}={v}" for k, v in e["params"].items()) + "]"
            table.add_row(e["name"], detail)
        out.print(table)


@app.command()
def run(
    task: Annotated[str, typer.Option(help="task name (suite list tasks)")],
    family: Annotated[str, typer.Option(help="architecture family (suite list families)")],
    optimizer: Annotated[str, typer.Option(help="optimizer name")] = "adam",
    regularizer: Annotated[
        list[str] | None, typer.Option(help="regularizer; may repeat (default: none)")
    ] = None,
    param: Annotated[list[str] | None, typer.Option(help="key=value; may repeat")] = None,
    epochs: Annotated[int | None, typer.Option(help="epoch budget (default: the task's)")] = None,
    seed: Annotated[int, typer.Option(help="seed of initialisation and batch order")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder to write the record to")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as one JSON object")] = False,
) -> None:
    """Train one trial and print its record."""
    from suite.params import parse_assignments
    from suite.train import TrialConfig, train

    try:
        config = TrialConfig(
            task=task, family=family, optimizer=optimizer, regularizers=tuple(regularizer or ()),
            params=parse_assignments(param or ()), epochs=epochs, seed=seed, device=device,
        )
        record = train(config)
    except SuiteError as exc:
        fail(str(exc))
    if out_dir is not None:
        path = write_record(record, out_dir)
        if not as_json:
            err.print(f"record written to {path}")
    if as_json:
        print(json.dumps(record, default=str))
    else:
        print_record(record)
    if record["status"] == "failed":
        raise typer.Exit(1)


def write_record(record: dict[str, Any], out_dir: Path) -> Path:
    """Write ``record`` as JSON into ``out_dir`` under a name made of its arm and seed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    regs = "+".join(record["regularizers"])
    stamp = record["started_at"].replace(":", "").replace("-", "")
    name = f"{record['task']}_{record['family']}_{record['optimizer']}_{regs}_s{record['seed']}"
    path = out_dir / f"{name}_{stamp}.json"
    path.write_text(json.dumps(record, indent=1, default=str))
    return path


def print_record(record: dict[str, Any]) -> None:
    """A readable summary of one trial record."""
    regs = ", ".join(record["regularizers"])
    out.print(
        f"[bold]{record['task']}[/] / {record['family']} / {record['optimizer']} / {regs}  "
        f"seed {record['seed']}  status [bold]{record['status']}[/]"
    )
    if record.get("error"):
        out.print(f"error: {record['error']}", markup=False)
    metrics = record.get("metrics") or {}
    if metrics:
        names = sorted({k.split("/", 1)[1] for k in metrics})
        table = Table()
        table.add_column("metric")
        for split in ("train", "val", "test"):
            table.add_column(split, justify="right")
        for n in names:
            table.add_row(n, *(f"{metrics.get(f'{s}/{n}', float('nan')):.4f}"
                               for s in ("train", "val", "test")))
        out.print(table)
    out.print(
        f"epochs {record.get('epochs_run', 0)}/{record['epochs']}  steps {record.get('steps', 0)}  "
        f"params {record.get('n_params', 0):,}  wall {record['wall_s']:.1f} s  "
        f"{(record.get('samples_per_s') or 0):,.0f} samples/s on {record['device']}"
    )


@app.command()
def benchmark(
    epochs: Annotated[int, typer.Option(help="epochs per run")] = 5,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the records")] = Path(
        "runs/smoke"
    ),
) -> None:
    """Run every registered family on every compatible task once and print a results table."""
    from suite.families import FAMILIES
    from suite.train import TrialConfig, train
    from tasks import TASKS

    table = Table(title=f"smoke benchmark: {epochs} epochs, seed {seed}")
    for col in ("task", "family", "status", "metric", "test", "wall s", "samples/s"):
        table.add_column(col, justify="right" if col in ("test", "wall s", "samples/s") else "left")
    failed = 0
    for task_name, task in TASKS.items():
        for family in task.families:
            if family not in FAMILIES:
                continue
            try:
                record = train(TrialConfig(task=task_name, family=family, epochs=epochs,
                                           seed=seed, device=device))
            except SuiteError as exc:
                fail(str(exc))
            write_record(record, out_dir)
            failed += record["status"] == "failed"
            value = (record.get("primary") or {}).get("value")
            table.add_row(task_name, family, record["status"], task.metric,
                          "-" if value is None else f"{value:.4f}", f"{record['wall_s']:.1f}",
                          f"{record.get('samples_per_s') or 0:,.0f}")
            err.print(f"done {task_name}/{family}: {record['status']}")
    out.print(table)
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SuiteError as exc:  # a user error that escaped a command: still one line
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
