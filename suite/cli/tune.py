"""``suite tune``: one arm tuned (and confirmed) by the benchmark protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from suite.cli.console import command, err, out


@command
def tune(
    task: Annotated[str, typer.Option(help="task name")],
    family: Annotated[str, typer.Option(help="architecture family")],
    optimizer: Annotated[str, typer.Option(help="optimizer name")] = "adam",
    regularizer: Annotated[list[str] | None, typer.Option(help="regularizer; may repeat")] = None,
    param: Annotated[list[str] | None, typer.Option(help="fixed key=value (not tuned); may repeat")] = None,
    trials: Annotated[int, typer.Option(help="tuning trials")] = 10,
    confirm_seeds: Annotated[int, typer.Option(help="confirm re-runs with fresh seeds")] = 0,
    studies: Annotated[int, typer.Option(help="independent tunings of the arm (own sampler stream and "
                                              "seeds), each confirmed on its own seeds")] = 1,
    epochs: Annotated[int | None, typer.Option(help="epoch budget per trial")] = None,
    pruner: Annotated[str, typer.Option(help="auto (median from 10 trials, none below), median, hyperband "
                                             "or none")] = "auto",
    space: Annotated[str | None, typer.Option(help="core (lr, regularizer strengths, two family sizes) or "
                                                   "full (every declared param) [default: core below 16 "
                                                   "trials, full from 16]")] = None,
    sampler_seed: Annotated[int | None, typer.Option(
        help="seed of the sampler [default: derived from --study]")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL or journal file")] = None,
    study: Annotated[str, typer.Option(help="benchmark name (study-name prefix; also seeds the sampler "
                                            "unless --sampler-seed is given)")] = "tune",
    out_dir: Annotated[Path, typer.Option("--out", help="run folder")] = Path("runs/tune"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="do not log W&B runs")] = False,
    no_energy: Annotated[bool, typer.Option("--no-energy", help="do not measure energy")] = False,
) -> None:
    """Tune one arm with Optuna (one study), optionally confirming the best params on fresh seeds.

    The same protocol as a benchmark arm: trial 0 = the defaults, Sobol start-up, then TPE."""
    import zlib

    from suite.benchmark import run_benchmark
    from suite.config import resolve_device
    from suite.params import parse_assignments
    from suite.profile import check_seed, parse_profile

    if sampler_seed is not None:
        check_seed(sampler_seed, "--sampler-seed")
    resolve_device(device)
    data = {"name": study, "tune_trials": trials, "confirm_seeds": confirm_seeds, "pruner": pruner,
            "studies": studies,
            "sampler_seed": zlib.crc32(study.encode()) % 2**31 if sampler_seed is None else sampler_seed,
            "matrix": [{"tasks": [task], "families": [family], "optimizers": [optimizer],
                        "regularizers": [list(regularizer or ["none"])],
                        "params": parse_assignments(param or ())}]}
    if epochs is not None:
        data["epochs"] = epochs
    if space is not None:
        data["space"] = space
    prof = parse_profile(data, "suite tune")
    result = run_benchmark(prof, out_dir=out_dir, storage=storage, device=device,
                           wandb=False if no_wandb else None, energy=False if no_energy else None,
                           report=False, console=err)
    from suite.benchmark import arm_summaries

    for row in arm_summaries(result.storage, result.studies):
        out.print(f"{row['arm']}: {row['tune']} tuning trials done; {row['best']}; {row['defaults']}; "
                  f"confirm {row['confirm']}", markup=False, highlight=False, soft_wrap=True)
