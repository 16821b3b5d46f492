"""The ``suite`` command line (typer + rich).

User errors (unknown names, bad values, incompatible combinations) print one line on stderr and
exit with code 2, without a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suite.errors import Interrupted, SuiteError

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


@app.callback()
def _plugins(plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", help="a .py file or module that registers tasks, families, optimizers or regularizers; "
                         "repeatable (also accepted after the command)")] = None) -> None:
    """Load the plug-ins named here, in $SUITE_PLUGINS and by installed packages' entry points."""
    from suite.plugins import ENV, load_entry_points, load_from_env, load_plugin

    try:
        if os.environ.get(ENV):
            load_from_env()
        for spec in plugin or []:
            load_plugin(spec)
        load_entry_points()
    except SuiteError as exc:
        fail(exc)


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


def fail(message: str | SuiteError) -> None:
    """Print a one-line error and exit with code 2; an :class:`Interrupted` run prints what it kept
    and exits with 130."""
    if isinstance(message, Interrupted):
        err.print(f"interrupted: {message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130)
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
    if what == What.tasks:  # which families fit is asked of the family registry, not of the task
        from suite.families import families_for, not_offered

        return [{**t.summary(), "families": list(families_for(t)), "not_offered": not_offered(t)}
                for _, t in TASKS.items()]
    return [entry.summary() for _, entry in registry.items()]


@app.command("list")
def list_cmd(
    what: Annotated[What | None, typer.Argument(help="what to list; all kinds when omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List registered tasks, families, optimizers or regularizers."""
    from suite.plugins import LOADED, UNAVAILABLE

    kinds = [what] if what else list(What)
    data = {k.value: catalogue(k) for k in kinds}
    if as_json:
        print(json.dumps(data[what.value] if what else
                         {**data, "plugins": [{k: v for k, v in p.items() if k != "key"} for p in LOADED],
                          "unavailable": UNAVAILABLE}, indent=2))
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
    for p in LOADED:
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items()) or "nothing"
        out.print(f"plugin {p['name']} ({p['path']}): {regs}", markup=False, highlight=False, soft_wrap=True)
    for u in UNAVAILABLE:
        out.print(f"unavailable: {u['name']} ({u['group']}): {u['reason']}", markup=False, highlight=False,
                  soft_wrap=True)


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
    devices: Annotated[int, typer.Option(help="processes (GPUs or CPU processes) training this trial "
                                              "with DDP; same global batch size")] = 1,
    strategy: Annotated[str, typer.Option(help="auto or ddp (gloo on CPU, NCCL on CUDA)")] = "auto",
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder to write the record to")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as one JSON object")] = False,
    target: Annotated[str | None, typer.Option(help="with --task data:FILE.csv|.parquet: the target "
                                                    "column")] = None,
    kind: Annotated[str | None, typer.Option(help="with --task data:FILE: classification or regression "
                                                  "(default: from the target's values)")] = None,
) -> None:
    """Train one trial and print its record."""
    from suite.config import TrialConfig, resolve_config
    from suite.params import parse_assignments
    from suite.profile import check_seed

    try:
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
        from suite.train import train

        record = train(config)
    except SuiteError as exc:
        fail(exc)
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


@app.command()
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

    try:
        prof = load_profile(profile)
    except SuiteError as exc:
        fail(exc)
    if jobs != "auto" and (not jobs.isdigit() or int(jobs) < 1):
        fail(f"--jobs must be auto or a whole number >= 1, got {jobs!r}")
    folder = out_dir or Path("runs") / prof.name
    if dry_run or max_hours is not None:
        from suite.jobs import auto_jobs

        n_est = int(jobs) if jobs != "auto" else auto_jobs(cpus=os.cpu_count() or 1, gpus=[])
        est = plan_estimate(prof, folder, storage, n_est, calibrate=calibrate, device=device)
        if dry_run:
            print_plan(prof, est)
            return
        if est["hours"] is None:
            err.print(f"--max-hours: no estimate ({', '.join(est['missing'])} never ran on this machine): "
                      "running without a limit", markup=False, highlight=False, soft_wrap=True)
        elif est["hours"] > max_hours:
            fail(f"estimated {est['hours']:.2f} h with {n_est} jobs > --max-hours {max_hours:g}: cut arms, "
                 "tune_trials, confirm_seeds or epochs in the profile, or raise --jobs")
    from suite.benchmark import run_benchmark
    from suite.config import resolve_device
    from suite.storage import check_storage_url, mask_url

    try:
        resolve_device(device)
        if storage:
            check_storage_url(storage)
        n_jobs, gpus = choose_jobs(jobs, folder, storage, device)
        if n_jobs > 1:
            from suite.jobs import run_jobs

            result = run_jobs(prof, profile, jobs=n_jobs, out_dir=folder, storage=storage, device=device,
                              wandb=False if no_wandb else None, energy=False if no_energy else None,
                              report=not no_report, console=err, gpus=gpus)
        else:
            result = run_benchmark(prof, out_dir=folder, storage=storage, device=device,
                                   wandb=False if no_wandb else None, energy=False if no_energy else None,
                                   report=not no_report, console=err)
    except SuiteError as exc:
        fail(exc)
    print_arms(result, title=f"benchmark {prof.name}: {result.arms} arms, {result.trials_run} trials run "
                             f"({result.resumed_trials} resumed) in {result.wall_s:.0f} s"
                             + (f" with {n_jobs} jobs" if n_jobs > 1 else ""))
    out.print(f"storage: {mask_url(result.storage)}")
    if result.report:
        print_findings(result.report.parent / "findings.json")
        out.print(f"report: {result.report}")


def choose_jobs(jobs: str, folder: Path, storage: str | None, device: str) -> tuple[int, list[str]]:
    """How many jobs to start and on which GPUs. ``auto`` falls back to one process where the storage
    is SQLite (an existing ``optuna.db`` run folder, or ``--storage sqlite:...``), saying so."""
    from suite.jobs import auto_jobs, gpu_free_gib, visible_gpus
    from suite.storage import RUN_DB

    gpus = visible_gpus() if device != "cpu" else []
    sqlite = (storage or "").startswith("sqlite") or (not storage and (folder / RUN_DB).exists())
    if jobs == "auto":
        if sqlite:
            where = storage or folder / RUN_DB
            err.print(f"one job: {where} is SQLite (one process at a time)", markup=False, highlight=False,
                      soft_wrap=True)
            return 1, gpus
        return auto_jobs(cpus=os.cpu_count() or 1, gpus=gpus, gpu_free_gib=gpu_free_gib(gpus)), gpus
    return int(jobs), gpus


def plan_estimate(prof: Any, folder: Path, storage: str | None, jobs: int, *, calibrate: bool = False,
                  device: str = "auto") -> dict[str, Any]:
    """The wall-time estimate of ``prof`` from earlier records of this machine: the run folder (or
    ``storage``) and every run folder under ``runs/``; with ``calibrate``, the pairs without one are
    timed here (:func:`suite.plan.calibrate`)."""
    import socket

    import pandas as pd

    from suite import plan as plan_mod
    from suite.storage import run_folder_storage

    sources = [storage] if storage else []
    sources += [str(d) for d in {folder, *Path("runs").glob("*/")} if run_folder_storage(d)]
    times = plan_mod.timings(sorted(set(sources)), socket.gethostname())
    est = plan_mod.estimate(prof, times, jobs)
    if calibrate and est["missing"]:
        err.print(f"calibrating: {plan_mod.CALIBRATION_EPOCHS} epochs of {', '.join(est['missing'])}",
                  markup=False, highlight=False, soft_wrap=True)
        measured = plan_mod.calibrate(prof, est["missing"], jobs=jobs, device=device)
        est = plan_mod.estimate(prof, pd.concat([times, measured], ignore_index=True), jobs)
        est["calibrated"] = len(measured)
    return est


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


@app.command()
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
    from suite.storage import check_storage_url, mask_url
    from suite.workers import worker_id

    try:
        prof = load_profile(profile)
        resolve_device(device)
        check_worker_storage(storage)
        check_storage_url(storage)
        err.print(f"worker {worker_id()} on {mask_url(storage)}: profile {prof.name}, "
                  f"{len(prof.arms)} arms", markup=False, highlight=False, soft_wrap=True)
        result = run_benchmark(prof, out_dir=out_dir or Path("runs") / prof.name, storage=storage,
                               device=device, wandb=False if no_wandb else None,
                               energy=False if no_energy else None, report=False,
                               console=out if job else err, worker=True, job=job)
    except SuiteError as exc:
        fail(exc)
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
    for row in arm_summaries(result.storage, result.studies):
        table.add_row(row["arm"], str(row["tune"]), row["confirm"])
    out.print(table)


def arm_summaries(storage: str, studies: list[str]) -> list[dict[str, Any]]:
    """Per arm: done tuning trials, the best tuning trial and the defaults trial (validation and
    test metric), and the mean confirm test metric."""
    import optuna

    from suite.accounting import PHASE_CONFIRM, arm_trial_counts, phase_of, ranked_tune_trials
    from suite.storage import open_storage

    def shown_trial(t: Any, what: str, metric: str) -> str:
        if t is None:
            return f"{what}: -"
        m = t.user_attrs.get("record", {}).get("metrics") or {}
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in t.params.items())
        return (f"{what} #{t.number}: val {m.get(f'val/{metric}', float('nan')):.4f} test "
                f"{m.get(f'test/{metric}', float('nan')):.4f}" + (f" ({params})" if params else ""))

    store = open_storage(storage, heartbeat=False, write=False)
    rows = []
    for name in studies:
        study = optuna.load_study(study_name=name, storage=store)
        counts = arm_trial_counts(study)
        tune = ranked_tune_trials(study)
        best = tune[0] if tune else None
        defaults = next((t for t in tune if t.user_attrs.get("defaults")), None)
        choice = study.user_attrs.get("confirm_choice")
        values = [t.user_attrs["record"].get("primary", {}).get("value")
                  for t in study.get_trials(deepcopy=False)
                  if phase_of(t) == PHASE_CONFIRM and "record" in t.user_attrs
                  and t.user_attrs.get("candidate", choice) == choice]
        values = [v for v in values if v is not None]
        metric = study.user_attrs.get("metric", "")
        chosen = next((t for t in tune if t.number == choice), None)
        shown = f"{metric} {sum(values) / len(values):.4f} (n={len(values)})" if values else "-"
        if chosen is not None:
            shown += " of the defaults" if chosen.user_attrs.get("defaults") else f" of #{chosen.number}"
        rows.append({"arm": name, "tune": counts["tune"], "confirm": shown,
                     "best": shown_trial(best, "best", metric),
                     "defaults": shown_trial(defaults, "defaults", metric)})
    return rows


@app.command()
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

    try:
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
    except SuiteError as exc:
        fail(exc)
    for row in arm_summaries(result.storage, result.studies):
        out.print(f"{row['arm']}: {row['tune']} tuning trials done; {row['best']}; {row['defaults']}; "
                  f"confirm {row['confirm']}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def dashboard(
    source: Annotated[str, typer.Argument(help="run folder, storage URL or journal file")],
    port: Annotated[int, typer.Option(help="port")] = 8080,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
) -> None:
    """Open optuna-dashboard on a run folder's storage."""
    from optuna_dashboard import run_server

    from suite.storage import check_storage_url, mask_url

    url = source_storage(source)
    try:
        storage = check_storage_url(url)  # unreachable, no driver, corrupt: one line, nothing served
    except SuiteError as exc:
        fail(exc)
    err.print(f"optuna-dashboard on http://{host}:{port} for {mask_url(url)} (Ctrl-C to stop)")
    run_server(storage, host=host, port=port)


def source_storage(source: str) -> str:
    """A run folder's ``optuna.db`` as a URL, or the storage URL / journal path itself."""
    from suite.storage import run_folder_storage

    if "://" in source or source.endswith((".log", ".jsonl")):
        return source
    found = run_folder_storage(Path(source))
    if found:
        return found
    fail(f"{source!r} is neither a run folder (optuna.db or optuna.journal.log) nor a storage URL or "
         "journal file")
    raise AssertionError  # unreachable


@app.command()
def report(
    sources: Annotated[list[str], typer.Argument(help="run folders, storage URLs or journal files")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder")] = None,
) -> None:
    """Build the self-contained HTML comparison report from one or more sources."""
    from reports import build_report

    target = out_dir or (Path(sources[0]) / "report" if Path(sources[0]).is_dir() else Path("report"))
    try:
        path = build_report(sources, target)
    except SuiteError as exc:
        fail(exc)
    out.print(f"report: {path}")


@app.command()
def export(
    sources: Annotated[list[str], typer.Argument(help="run folders, storage URLs or journal files")],
    out_file: Annotated[Path, typer.Option("--out", help="file to write: .parquet or .csv")] = Path(
        "trials.parquet"),
) -> None:
    """Write the tidy trial frame (one row per trial: config, params, metrics, energy, hardware)."""
    from reports.export import export as write

    try:
        rows = write(sources, out_file)
    except SuiteError as exc:
        fail(exc)
    out.print(f"wrote {rows} trials to {out_file}", markup=False, highlight=False, soft_wrap=True)


@app.command()
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

    try:
        pairs = tuple(parse_pair(p) for p in pair) if pair else PAIRS
        results = run_perf(device=device, repeats=repeats, epochs=epochs, pairs=pairs)
    except SuiteError as exc:
        fail(exc)
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
        err.print(f"error: {message[:1].lower()}{message[1:]} (see '{where} --help')", markup=False,
                  highlight=False, soft_wrap=True)
        sys.exit(2)
    except _click.exceptions.ClickException as exc:
        err.print(f"error: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("error: interrupted", markup=False)
        sys.exit(130)
    except SuiteError as exc:  # a user error that escaped a command: still one line
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # a file, disk or storage fault no command foresaw: one line, with its cause
        if os.environ.get("SUITE_DEBUG"):
            raise
        from suite.errors import describe

        err.print(f"error: {describe(exc)} (SUITE_DEBUG=1 shows the traceback)", markup=False,
                  highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
