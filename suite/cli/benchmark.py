"""``suite benchmark`` and ``suite worker``: a profile run by one process, by ``--jobs N`` on this
machine, or by workers on a shared storage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from suite.cli.console import command, err, out, say
from suite.errors import SuiteError


@command
def benchmark(
    profile: Annotated[str, typer.Option(help="auto (quick on CPU, standard with a GPU), a built-in "
                                              "profile name, or a .yaml file")] = "auto",
    out_dir: Annotated[Path | None, typer.Option("--out", help="run folder (default runs/<profile>)")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL or journal file "
                                                     "(default sqlite in the run folder)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="do not log W&B runs")] = False,
    no_energy: Annotated[bool, typer.Option("--no-energy", help="do not measure energy")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="do not build the HTML report")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would run (arms, trials, epochs) "
                                                            "and which rank tests the results allow; "
                                                            "run nothing")] = False,
    jobs: Annotated[str, typer.Option(help="worker processes on this machine sharing the run: auto (one "
                                           "per CPU core, or per GPU a few), or a number; 1 = one "
                                           "process, as before")] = "auto",
    max_hours: Annotated[float | None, typer.Option(help="stop before starting when the estimated wall "
                                                         "time (from earlier records of this machine) "
                                                         "exceeds this")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="with --dry-run or --max-hours: time "
                                                                "2 epochs of each task/family that has "
                                                                "no earlier record on this machine")] = False,
) -> None:
    """Run (or resume) a benchmark profile: tune every arm, confirm with fresh seeds, write the report."""
    from suite.profile import load_profile

    prof = load_profile(profile)
    if jobs != "auto" and (not jobs.isdigit() or int(jobs) < 1):
        raise SuiteError(f"--jobs must be auto or a whole number >= 1, got {jobs!r}")
    folder = out_dir or Path("runs") / prof.name
    if dry_run or max_hours is not None:
        from suite.jobs import auto_jobs
        from suite.plan import plan_estimate

        n_est = int(jobs) if jobs != "auto" else auto_jobs(cpus=os.cpu_count() or 1, gpus=[])
        est = plan_estimate(prof, folder, storage, n_est, calibrate_missing=calibrate, device=device,
                            say=lambda line: say(line, to=err))
        if dry_run:
            print_plan(prof, est)
            return
        if est["hours"] is None:
            say(f"--max-hours: no estimate ({', '.join(est['missing'])} never ran on this machine): "
                "running without a limit", to=err)
        elif est["hours"] > max_hours:
            raise SuiteError(f"estimated {est['hours']:.2f} h with {n_est} jobs > --max-hours {max_hours:g}: "
                             "cut arms, tune_trials, confirm_seeds or epochs in the profile, or raise --jobs")
    from suite.benchmark import run_benchmark
    from suite.config import resolve_device
    from suite.storage import check_storage_url, close_storage, mask_url

    resolve_device(device)
    if storage:
        close_storage(check_storage_url(storage))
    from suite.jobs import choose_jobs

    n_jobs, gpus, why = choose_jobs(jobs, folder, storage, device)
    if why:
        say(why, to=err)
    if n_jobs > 1:
        from suite.jobs import run_jobs

        result = run_jobs(prof, profile, jobs=n_jobs, out_dir=folder, storage=storage, device=device,
                          wandb=False if no_wandb else None, energy=False if no_energy else None,
                          report=not no_report, console=err, gpus=gpus)
    else:
        result = run_benchmark(prof, out_dir=folder, storage=storage, device=device,
                               wandb=False if no_wandb else None, energy=False if no_energy else None,
                               report=not no_report, console=err)
    print_arms(result, title=f"benchmark {prof.name}: {result.arms} arms, {result.trials_run} trials run "
                             f"({result.resumed_trials} resumed) in {result.wall_s:.0f} s"
                             + (f" with {n_jobs} jobs" if n_jobs > 1 else ""))
    out.print(f"storage: {mask_url(result.storage)}")
    if result.report:
        print_findings(result.report.parent / "findings.json")
        out.print(f"report: {result.report}")


def print_plan(prof: Any, est: dict[str, Any] | None = None) -> None:
    """``suite benchmark --dry-run``: the profile's arms, trials and epochs, its rank tests, and the
    wall-time estimate."""
    from suite.plan import plan

    p = plan(prof)
    studies = f" ({p['studies']} studies x {p['trials_per_study']})" if p["studies"] > 1 else ""
    out.print(f"{p['profile']}: {p['arms']} arms x {p['trials_per_arm']} trials{studies} = {p['trials']:,} "
              f"trials, at most {p['epochs']:,} epochs (pruning only lowers it)", markup=False,
              highlight=False, soft_wrap=True)
    for task, t in p["tasks"].items():
        arms = f"{t['arms']} arm{'s' if t['arms'] != 1 else ''}"
        out.print(f"  {task}: {arms}, {t['epochs']} epochs; families {', '.join(t['families'])}; "
                  f"optimizers {', '.join(t['optimizers'])}", markup=False, highlight=False, soft_wrap=True)
    out.print("paired tests the report will make (Holm over each question):", markup=False)
    for r in p["paired_tests"].values():
        out.print(f"  {r['text']}", markup=False, highlight=False, soft_wrap=True)
    out.print("rank tests the report can run:", markup=False)
    for r in p["rank_tests"].values():
        out.print(f"  {r['text']}", markup=False, highlight=False, soft_wrap=True)
    if est is not None:
        if est["hours"] is not None:
            how = (f"earlier records of this machine and {est['calibrated']} pair(s) timed now"
                   if est.get("calibrated") else "earlier records of this machine")
            line = (f"estimate with {est['jobs']} job(s): {est['hours']:.2f} h on this machine ({how}; every "
                    "trial at full epochs, jobs assumed to scale linearly)")
        else:
            line = (f"estimate with {est['jobs']} job(s): unknown: no earlier record of "
                    f"{', '.join(est['missing'])} on this machine"
                    + (f" (the pairs that did run: {est['hours_known']:.2f} h)" if est["hours_known"] else "")
                    + "; add --calibrate to time them now")
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def print_findings(path: Path) -> None:
    """The report's findings, one per line (nothing when the report wrote none)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if found:
        out.print("findings:", style="bold")
    for f in found:
        out.print(f"- {f['text']}", markup=False, highlight=False, soft_wrap=True)


@command
def worker(
    storage: Annotated[str, typer.Option(envvar="SUITE_STORAGE", show_envvar=True,
                                         help="shared storage: postgresql+psycopg2://user@host:5432/db "
                                              "(many machines) or a journal file ending in .log (one "
                                              "machine); from $SUITE_STORAGE when not given")],
    profile: Annotated[str, typer.Option(help="the profile every worker of this benchmark runs: a "
                                              "built-in name or a .yaml file (the same on every machine)")],
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="local folder for W&B files and emissions.csv (default runs/<profile>)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="do not log W&B runs")] = False,
    no_energy: Annotated[bool, typer.Option("--no-energy", help="do not measure energy")] = False,
    job: Annotated[bool, typer.Option("--job", hidden=True,
                                      help="one job of suite benchmark --jobs N (line output, energy "
                                           "apportioned by the parent)")] = False,
) -> None:
    """One more worker on a shared benchmark: run trials until every arm's protocol is done.

    Start as many as you like, on any machines, with the same profile and storage; build the report
    afterwards with `suite report <storage>`.
    """
    from suite.benchmark import check_worker_storage, run_benchmark
    from suite.config import resolve_device
    from suite.profile import load_profile
    from suite.storage import check_storage_url, close_storage, mask_url
    from suite.workers import worker_id

    prof = load_profile(profile)
    resolve_device(device)
    check_worker_storage(storage)
    close_storage(check_storage_url(storage))  # checked; the run opens its own bounded pool
    err.print(f"worker {worker_id()} on {mask_url(storage)}: profile {prof.name}, "
              f"{len(prof.arms)} arms", markup=False, highlight=False, soft_wrap=True)
    result = run_benchmark(prof, out_dir=out_dir or Path("runs") / prof.name, storage=storage,
                           device=device, wandb=False if no_wandb else None,
                           energy=False if no_energy else None, report=False,
                           console=out if job else err, worker=True, job=job)
    if job:
        return
    out.print(f"worker {worker_id()}: {result.trials_run} trials run in {result.wall_s:.0f} s; benchmark "
              f"{prof.name} done ({result.arms} arms)", markup=False, highlight=False, soft_wrap=True)
    print_arms(result)
    out.print(f"storage: {mask_url(result.storage)}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: suite report '{mask_url(result.storage)}' --out DIR", markup=False, highlight=False,
              soft_wrap=True)


def print_arms(result: Any, title: str | None = None) -> None:
    """One row per arm of a finished benchmark: tuning trials done, mean confirm test metric."""
    table = Table(title=title)
    table.add_column("arm")
    table.add_column("tune done", justify="right")
    table.add_column("confirm test (mean)", justify="right")
    from suite.benchmark import arm_summaries

    for row in arm_summaries(result.storage, result.studies):
        table.add_row(row["arm"], str(row["tune"]), row["confirm"])
    out.print(table)
