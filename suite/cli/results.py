"""``suite report``, ``suite export`` and ``suite dashboard``: what a run folder or storage holds,
read without training code (no torch, no Lightning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from suite.cli.console import command, err, out, say


@command
def dashboard(
    source: Annotated[str, typer.Argument(help="run folder, storage URL or journal file")],
    port: Annotated[int, typer.Option(help="port")] = 8080,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
) -> None:
    """Open optuna-dashboard on a run folder's storage."""
    from optuna_dashboard import run_server

    from suite.storage import check_storage_url, mask_url, source_storage

    url = source_storage(source)
    storage = check_storage_url(url)  # unreachable, no driver, corrupt: one line, nothing served
    err.print(f"optuna-dashboard on http://{host}:{port} for {mask_url(url)} (Ctrl-C to stop)")
    run_server(storage, host=host, port=port)


@command
def report(
    sources: Annotated[list[str], typer.Argument(help="run folders, storage URLs or journal files")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder")] = None,
    price_per_hour: Annotated[list[str] | None, typer.Option(
        "--price-per-hour", help="MACHINE=USD: a machine's price per hour (its id, e.g. M1, or part of "
                                 "its label, e.g. H100), for the hardware section's cost to target; "
                                 "repeatable")] = None,
) -> None:
    """Build the self-contained HTML comparison report from one or more sources."""
    from reports import build_report
    from reports.hardware import parse_prices

    prices = parse_prices(price_per_hour or [])
    target = out_dir or (Path(sources[0]) / "report" if Path(sources[0]).is_dir() else Path("report"))
    path = build_report(sources, target, prices=prices)
    out.print(f"report: {path}")


@command
def export(
    sources: Annotated[list[str], typer.Argument(help="run folders, storage URLs or journal files")],
    out_file: Annotated[Path, typer.Option("--out", help="file to write: .parquet or .csv")] = Path(
        "trials.parquet"),
    curves: Annotated[bool, typer.Option("--curves", help="also write the per-epoch curves to "
                                                          "NAME.curves.parquet (or .csv)")] = False,
    long: Annotated[bool, typer.Option(
        "--long", help="also write every metric as rows (uid, split, metric, value) to NAME.metrics.parquet "
                       "(or .csv)")] = False,
) -> None:
    """Write the tidy trial frame (one row per trial: config, params, metrics, energy, hardware)."""
    from reports.export import beside, curves_path
    from reports.export import export as write

    rows = write(sources, out_file, curves=curves, long=long)
    also = f" and their curves to {curves_path(out_file)}" if curves else ""
    also += f" and every metric as rows to {beside(out_file, 'metrics')}" if long else ""
    say(f"wrote {rows} trials to {out_file}{also}")
