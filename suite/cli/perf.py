"""``suite perf``: the suite's trial path timed against a bare PyTorch loop and Lightning's floor."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from suite.cli.console import command, err, out


@command
def perf(
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    repeats: Annotated[int, typer.Option(help="timed repeats per path (after a one-epoch warm-up)")] = 3,
    epochs: Annotated[int | None, typer.Option(
        help="epochs per run for every pair [default: each pair's budget, see suite/perf.py]")] = None,
    pair: Annotated[list[str] | None, typer.Option(
        help="task/family or task/rnn/cell to time instead of the standard pairs (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Time the suite's trial path against a bare PyTorch loop and Lightning's floor (same model,
    data and steps)."""
    from suite.perf import PAIRS, parse_pair, run_perf
    from suite.provenance import hardware

    pairs = tuple(parse_pair(p) for p in pair) if pair else PAIRS
    results = run_perf(device=device, repeats=repeats, epochs=epochs, pairs=pairs)
    if as_json:
        print(json.dumps({"hardware": hardware(), "pairs": [r.as_dict() for r in results]}, default=str))
    else:
        table = Table(title=f"suite perf: median seconds of {repeats} interleaved repeats",
                      caption="a bare PyTorch loop, l Lightning floor, b suite, c suite + W&B + CodeCarbon; "
                              "fixed = seconds outside the epochs")
        for col in ("pair", "epochs", "steps", "a s", "l s", "b s", "c s", "l/a", "b/a", "c/a", "b/l",
                    "fixed b", "fixed c", "same loss"):
            table.add_column(col, justify="left" if col == "pair" else "right")
        for r in results:
            table.add_row(r.name, str(r.epochs), str(r.steps), f"{r.bare_s:.2f}", f"{r.lightning_s:.2f}",
                          f"{r.suite_s:.2f}", f"{r.tracked_s:.2f}", f"{r.ratio_lightning:.2f}",
                          f"{r.ratio_suite:.2f}", f"{r.ratio_tracked:.2f}",
                          f"{r.ratio_suite_over_lightning:.2f}", f"{r.suite_fixed_s:.2f}",
                          f"{r.tracked_fixed_s:.2f}", "yes" if r.same_loss else "NO")
        out.print(table)
    if not all(r.same_loss for r in results):
        err.print("error: the paths ended at different training losses (not the same work): "
                  + ", ".join(r.name for r in results if not r.same_loss), markup=False)
        raise typer.Exit(1)
