"""``suite run``: one trial, its record printed (and written with ``--out``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from suite.cli.console import command, err, out


@command
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
    devices: Annotated[int, typer.Option(help="processes (GPUs or CPU processes) training this trial "
                                              "with DDP; same global batch size")] = 1,
    strategy: Annotated[str, typer.Option(help="auto or ddp (gloo on CPU, NCCL on CUDA)")] = "auto",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="folder for the record, its W&B offline run (wandb/) and emissions.csv")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as one JSON object")] = False,
    target: Annotated[str | None, typer.Option(help="with --task data:FILE.csv|.parquet: the target "
                                                    "column")] = None,
    kind: Annotated[str | None, typer.Option(help="with --task data:FILE: classification or regression "
                                                  "(default: from the target's values)")] = None,
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="do not log a W&B run (with --out)")] = False,
    no_energy: Annotated[bool, typer.Option("--no-energy", help="do not measure energy")] = False,
) -> None:
    """Train one trial and print its record.

    Tracked like a benchmark trial: energy measured (CodeCarbon, NVML on GPUs) into the record, and
    with --out a W&B run (offline unless WANDB_MODE says otherwise) and an emissions.csv row."""
    from suite.config import TrialConfig, resolve_config
    from suite.params import parse_assignments
    from suite.profile import check_seed

    check_seed(seed, "--seed")
    if task.startswith("data:"):
        from tasks.data import register_data_task

        task = register_data_task(task, target=target, kind=kind)
    config = TrialConfig(
        task=task, family=family, optimizer=optimizer, regularizers=tuple(regularizer or ()),
        params=parse_assignments(param or ()), epochs=epochs, seed=seed, device=device,
        devices=devices, strategy=strategy,
    )
    resolve_config(config)  # a bad value is one line before Lightning is imported
    from suite.tracking import Tracking
    from suite.train import train

    tracking = Tracking(out_dir=out_dir, wandb=out_dir is not None and not no_wandb, energy=not no_energy,
                        group="run", job_type="run", name=f"{config.task}/{family}/s{seed}")
    record = train(config, tracking=tracking)
    if record.get("rank"):  # a DDP rank > 0 (Lightning re-ran this command): rank 0 reports
        raise typer.Exit(1 if record["status"] == "failed" else 0)
    if out_dir is not None:  # a write that fails is the record's tracking error, never a lost record
        from suite.tracking import guarded

        path = guarded(record, f"record file in {out_dir}", lambda: write_record(record, out_dir))
        if path is not None and not as_json:
            err.print(f"record written to {path}")
        elif path is None:
            err.print(f"warning: {record['tracking_errors'][-1]}; the record is printed below", markup=False,
                      highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(record, default=str))
    else:
        print_record(record)
    if record["status"] == "interrupted":  # Ctrl-C or SIGTERM: the record so far is printed above
        raise typer.Exit(130)
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
