"""The benchmark matrix: expand a profile into arms and run each arm's protocol (suite/tune.py).

Everything lands in one run folder: ``optuna.db`` (every trial with its record), ``wandb/``,
``emissions.csv``, ``profile.yaml`` and ``report/index.html``. Running the same command again
resumes: finished trials are kept, trials left RUNNING by a killed process are failed and redone.
One ``suite benchmark`` at a time writes a run folder (``.lock``, :mod:`suite.runlock`).

``worker=True`` (``suite worker``) is one more process on a shared storage: the same protocol, no
report, and no failing of other workers' RUNNING trials (only those of dead workers: heartbeat on
PostgreSQL/MySQL, pid on this host for a journal file).
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from suite.accounting import arm_trial_counts, confirm_study_name, confirm_trials, ranked_tune_trials
from suite.energy import DEFAULT_COUNTRY
from suite.errors import Interrupted
from suite.plan import trials_per_study
from suite.profile import Profile
from suite.record import stored_record
from suite.runlock import run_lock
from suite.storage import (
    SQLITE,
    close_storage,
    mask_url,
    open_storage,
    parse_storage,
    shared_storage,
    storage_url,
)
from suite.tracking import Tracking
from suite.tune import ArmRunner, open_arm_studies, run_arms
from suite.workers import fail_dead_running, has_heartbeat, worker_id


@dataclass
class BenchmarkResult:
    out_dir: Path
    storage: str
    arms: int
    trials_run: int
    resumed_trials: int
    failed_leftovers: int
    wall_s: float
    report: Path | None = None
    studies: list[str] = field(default_factory=list)
    jobs: int = 1
    machine_energy: dict[str, Any] | None = None  # --jobs N: the run's machine measurement
    apportioned: int = 0  # --jobs N: trials given a share of it


def run_benchmark(
    profile: Profile,
    *,
    out_dir: Path,
    storage: str | None = None,
    device: str = "auto",
    wandb: bool | None = None,
    energy: bool | None = None,
    report: bool = True,
    console: Console | None = None,
    worker: bool = False,
    wait_s: float = 2.0,
    job: bool = False,
) -> BenchmarkResult:
    """Run (or resume) every arm of ``profile``; return what was done.

    Args:
        profile: validated profile.
        out_dir: run folder (created): W&B files, ``emissions.csv``, ``profile.yaml``, the report;
            held by this process (``.lock``, :mod:`suite.runlock`) unless ``worker``: a second
            process on it is refused.
        storage: Optuna storage URL or journal path; default ``sqlite:///<out_dir>/optuna.db``.
        device: ``auto``, ``cpu`` or ``cuda`` for every trial.
        wandb, energy: override the profile's tracking settings (default on).
        report: build ``out_dir/report/index.html`` at the end when the reports package exists.
        worker: one of several processes on a shared ``storage`` (PostgreSQL/MySQL URL or journal
            file; SQLite is refused): no report, and RUNNING trials are failed only when their
            worker is dead. Each worker starts at another arm (by a hash of ``hostname:pid``).
        wait_s: seconds between checks while other workers hold the remaining work.
        job: one of the processes of ``suite benchmark --jobs N`` (implies ``worker``): no progress
            bar; one line per trial on ``console`` (the parent reads them) and a ``@start`` line as
            each trial starts; energy is left to the parent to apportion (:mod:`suite.jobs`).
    """
    console = console or Console(stderr=True)
    quiet_optuna()
    started = time.perf_counter()
    worker = worker or job
    if worker:
        check_worker_storage(storage)
    out_dir.mkdir(parents=True, exist_ok=True)
    # one writer per run folder (a worker shares a storage with others and takes no lock)
    with contextlib.nullcontext() if worker else run_lock(out_dir):
        (out_dir / "profile.yaml").write_text(yaml.safe_dump(profile.source, sort_keys=False))
        url = storage_url(out_dir, storage)
        store = open_storage(url)
        settings = dict(profile.tracking)
        tracking = Tracking(
            out_dir=out_dir,
            wandb=settings.get("wandb", True) if wandb is None else wandb,
            energy=settings.get("energy", True) if energy is None else energy,
            country=settings.get("country", DEFAULT_COUNTRY),
            apportion=job,
        )
        confirm_runs = trials_per_study(profile) - profile.tune_trials
        arm_studies = profile.arm_studies()
        total = trials_per_study(profile) * len(arm_studies)
        salt = zlib.crc32(worker_id().encode()) if worker else 0
        pairs = open_arm_studies(store, profile, salt=salt)  # (tuning study, confirm study) per arm study
        studies = [study for study, _ in pairs]
        failed_leftovers = 0
        if not has_heartbeat(store):  # heartbeat storages fail stale trials as they go (study.optimize)
            # SQLite: we are the only process, every leftover is dead; journal: only dead workers' trials
            sqlite = parse_storage(url).kind == SQLITE
            failed_leftovers = sum(fail_dead_running(s, all_running=sqlite) for pair in pairs for s in pair)
        resumed = trials_done(profile, pairs)
        say_resumed(console, profile, resumed, total, failed_leftovers)
        ran = 0
        warned: set[str] = set()
        if job:
            def on_start(arm: str, phase: str, seed: int) -> None:
                console.print(f"@start {arm} {phase} seed {seed}", markup=False, highlight=False,
                              soft_wrap=True)

            def on_done(phase: str, record: dict[str, Any]) -> None:
                nonlocal ran
                ran += 1
                console.print(trial_line(phase, record), markup=False, highlight=False, soft_wrap=True)
                warn_tracking(console, record, warned)

            runners = [ArmRunner(profile, arm, study, device=device, tracking=tracking, on_trial=on_done,
                                 on_start=on_start, study_index=k, storage=store, confirm=confirm)
                       for (arm, k), (study, confirm) in zip(arm_studies, pairs, strict=True)]
            run_stopping_on_interrupt(runners, salt, wait_s, profile, pairs, total, url)
            return BenchmarkResult(out_dir, url, len(profile.arms), ran, resumed, failed_leftovers,
                                   time.perf_counter() - started, studies=[s.study_name for s in studies])
        unit = "arms" if profile.studies == 1 else "studies"
        with run_progress(console, "arms") as progress:
            bar = progress.add_task(profile.name, total=total, completed=resumed,
                                    arms=f"{unit} 0/{len(studies)}")

            def on_trial(phase: str, record: dict[str, Any]) -> None:
                nonlocal ran
                ran += 1
                counts = [arm_trial_counts(*pair) for pair in pairs]  # other workers' trials count too
                complete = sum(c["tune"] >= profile.tune_trials and c["confirm"] >= confirm_runs
                               for c in counts)
                progress.update(bar, description=f"{profile.name} | {record['arm']}",
                                completed=trials_done(profile, pairs, counts),
                                arms=f"{unit} {complete}/{len(studies)}")
                progress.console.print(trial_line(phase, record), markup=False, highlight=False,
                                       soft_wrap=True)
                warn_tracking(progress.console, record, warned)

            runners = [ArmRunner(profile, arm, study, device=device, tracking=tracking, on_trial=on_trial,
                                 study_index=k, storage=store, confirm=confirm)
                       for (arm, k), (study, confirm) in zip(arm_studies, pairs, strict=True)]
            run_stopping_on_interrupt(runners, salt, wait_s, profile, pairs, total, url)
            progress.update(bar, completed=total, arms=f"{unit} {len(studies)}/{len(studies)}")
        amend_wandb(out_dir, pairs, console)
        close_storage(store)  # the pool's connections go back to the server now, not at exit
        result = BenchmarkResult(out_dir, url, len(profile.arms), ran, resumed, failed_leftovers,
                                 time.perf_counter() - started, studies=[s.study_name for s in studies])
        if report and not worker:
            result.report = build_report_if_available([url if storage else str(out_dir)], out_dir / "report",
                                                      console)
        return result


def run_stopping_on_interrupt(runners: list[ArmRunner], salt: int, wait_s: float, profile: Profile,
                              pairs: list[tuple[optuna.Study, optuna.Study]], total: int, url: str) -> None:
    """:func:`run_arms`; Ctrl-C (or SIGTERM) becomes :class:`Interrupted` saying what is kept."""
    try:
        run_arms(runners, start=salt % len(runners), wait_s=wait_s)
    except KeyboardInterrupt:
        raise Interrupted(f"{trials_done(profile, pairs)}/{total} trials done are kept in {mask_url(url)}; "
                          "the trial that was running is recorded as interrupted and redone on resume: run "
                          "the same command again to resume") from None


def trials_done(profile: Profile, pairs: list[tuple[optuna.Study, optuna.Study]],
                counts: list[dict[str, int]] | None = None) -> int:
    """Trials done towards the profile's budgets (beyond an arm's budget does not count); ``pairs``:
    each arm study's (tuning study, confirm study)."""
    confirm_runs = trials_per_study(profile) - profile.tune_trials
    counts = counts if counts is not None else [arm_trial_counts(*pair) for pair in pairs]
    return sum(min(c["tune"], profile.tune_trials) + min(c["confirm"], confirm_runs) for c in counts)


def say_resumed(console: Console, profile: Profile, resumed: int, total: int, failed_leftovers: int) -> None:
    if resumed:
        console.print(f"resuming {profile.name}: {resumed}/{total} trials already done"
                      + (f", {failed_leftovers} interrupted trial(s) marked failed and redone"
                         if failed_leftovers else ""), soft_wrap=True, markup=False)


def run_progress(console: Console, field: str) -> Progress:
    """The run's progress bar: description, bar, done/total, ``task.fields[field]``, elapsed, ETA."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn(f"{{task.fields[{field}]}}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, transient=False)


def quiet_optuna() -> None:
    """Optuna's warnings stay on, but not its per-trial "Trial N failed ... Traceback" report: the
    suite prints its own one line per trial (:func:`trial_line`) and keeps the traceback in the
    trial's record."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)


def trial_line(phase: str, record: dict[str, Any]) -> str:
    """One line per finished trial: arm, phase, seed, status, validation metric, seconds, and for a
    trial that did not complete the first line of its error (the traceback is in the record)."""
    metric = record["task_info"]["metric"]
    value = (record.get("metrics") or {}).get(f"val/{metric}")
    shown = "-" if value is None else f"{value:.4f}"
    line = (f"  {record['arm']} {phase} seed {record['seed']}: {record['status']} val/{metric} {shown} "
            f"({record['wall_s']:.1f} s)")
    if record["status"] in ("failed", "diverged") and record.get("error"):
        line += f": {(str(record['error']).splitlines() or [''])[0][:200]}"
    return line


def warn_tracking(console: Console, record: dict[str, Any], warned: set[str]) -> None:
    """One warning line the first time a tracking step (W&B, energy, emissions.csv) fails in this
    run; the trial ran without it and its record's ``tracking_errors`` names each failure."""
    for error in record.get("tracking_errors") or []:
        step = error.split(":", 1)[0]
        if step not in warned:
            warned.add(step)
            console.print(f"warning: tracking step {error[:300]} (trials run without it; each record's "
                          "tracking_errors lists its failures)", markup=False, highlight=False,
                          soft_wrap=True)


def check_worker_storage(storage: str | None) -> None:
    """Refuse storages that several worker processes cannot share."""
    shared_storage(storage, "a worker")


def amend_wandb(out_dir: Path, pairs: list[tuple[optuna.Study, optuna.Study]], console: Console) -> int:
    """Add to this run folder's W&B runs what was known only after they ended (energy shares,
    ``chosen``: :func:`suite.wandb_file.amend_runs`); a run file that cannot be amended is one warning."""
    from suite.wandb_file import amend_runs

    changed, errors = amend_runs(out_dir, [s for pair in pairs for s in pair])
    if errors:
        console.print(f"warning: {len(errors)} W&B run file(s) not amended with energy shares and `chosen`, "
                      f"first: {errors[0]}", markup=False, highlight=False, soft_wrap=True)
    return changed


def build_report_if_available(sources: list[str], out: Path, console: Console) -> Path | None:
    """Build the HTML report when the ``reports`` package is installed; never fail the benchmark."""
    try:
        from reports import build_report
    except ImportError:
        return None
    try:
        return build_report(sources, out)
    except Exception as exc:  # the results are safe in the storage; say why the report failed
        console.print(f"report failed: {type(exc).__name__}: {exc}", markup=False)
        return None


def arm_summaries(storage: str, studies: list[str]) -> list[dict[str, Any]]:
    """Per arm: done tuning trials, the best tuning trial and the defaults trial (validation and
    test metric), and the mean confirm test metric."""
    store = open_storage(storage, heartbeat=False, write=False)
    try:
        return [arm_summary(store, name) for name in studies]
    finally:
        close_storage(store)


def _shown_trial(t: Any, what: str, metric: str) -> str:
    if t is None:
        return f"{what}: -"
    m = (stored_record(t) or {}).get("metrics") or {}
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
    return (f"{what} #{t.number}: val {m.get(f'val/{metric}', float('nan')):.4f} test "
            f"{m.get(f'test/{metric}', float('nan')):.4f}" + (f" ({params})" if params else ""))


def arm_summary(store: Any, name: str) -> dict[str, Any]:
    """:func:`arm_summaries` of one arm study ``name`` of ``store``."""
    study = optuna.load_study(study_name=name, storage=store)
    try:
        confirm = optuna.load_study(study_name=confirm_study_name(name), storage=store)
    except KeyError:  # a run from before confirm studies
        confirm = None
    counts = arm_trial_counts(study, confirm)
    tune = ranked_tune_trials(study)
    best = tune[0] if tune else None
    defaults = next((t for t in tune if t.user_attrs.get("defaults")), None)
    choice = study.user_attrs.get("confirm_choice")
    values = [stored_record(t).get("primary", {}).get("value") for t in confirm_trials(study, confirm)
              if stored_record(t) is not None and t.user_attrs.get("candidate", choice) == choice]
    values = [v for v in values if v is not None]
    metric = study.user_attrs.get("metric", "")
    # among all its trials: an arm whose tuning trials all failed stands for its defaults
    chosen = next((t for t in study.get_trials(deepcopy=False) if t.number == choice), None)
    shown = f"{metric} {sum(values) / len(values):.4f} (n={len(values)})" if values else "-"
    if chosen is not None:
        shown += " of the defaults" if chosen.user_attrs.get("defaults") else f" of #{chosen.number}"
    return {"arm": name, "tune": counts["tune"], "confirm": shown,
            "best": _shown_trial(best, "best", metric),
            "defaults": _shown_trial(defaults, "defaults", metric)}
