"""Experiment tracking for every trial: W&B runs and the trial's energy meter (:mod:`suite.energy`).

* W&B: one run per trial through Lightning's ``WandbLogger``; offline by default (files under the
  run folder), online when the user sets ``WANDB_MODE=online`` or has an API key, off with
  ``--no-wandb``. ``wandb.finish()`` runs in a ``finally`` for every trial, so trials never merge.
  wandb's capture of ``sys.argv``, git and machine metadata is off, and no key is ever written.
* Energy: the trial's meter (:class:`suite.energy.EnergyMeter`, or its CPU seconds for a share of
  the run's measurement under ``--jobs``), stopped into ``record["energy"]`` and one
  ``emissions.csv`` row.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.energy import DEFAULT_COUNTRY, CpuTimeMeter, EnergyMeter, append_emissions, emissions_row
from suite.record import Status

WANDB_PROJECT = "dl-benchsuite"


@dataclass
class Tracking:
    """What to track for a trial, and where.

    Args:
        out_dir: run folder; W&B files go to ``out_dir/wandb``, energy rows to
            ``out_dir/emissions.csv``; ``None``: no files (``suite run`` without ``--out``: the
            energy is in the record only, and there is no W&B run).
        wandb: log a W&B run.
        wandb_mode: ``offline``, ``online`` or ``disabled``; ``None`` = ``$WANDB_MODE``, else
            ``online`` when an API key is configured, else ``offline``.
        project, group, job_type, name: W&B naming (group = arm, job_type = tune/confirm).
        energy: measure energy with CodeCarbon (and NVML where present).
        country: ISO alpha-3 country code of the electricity grid (default ``USA``).
    """

    out_dir: Path | None
    wandb: bool = True
    wandb_mode: str | None = None
    project: str = WANDB_PROJECT
    group: str | None = None
    job_type: str = "run"
    name: str | None = None
    energy: bool = True
    country: str = DEFAULT_COUNTRY
    apportion: bool = False  # one of several concurrent jobs: record CPU time, the parent apportions


# ----------------------------------------------------------------------------------------- W&B


def wandb_mode(requested: str | None = None) -> str:
    """Resolve the W&B mode: explicit, ``$WANDB_MODE``, online with a key, else offline."""
    if requested:
        return requested
    env = os.environ.get("WANDB_MODE")
    if env:
        return "offline" if env == "dryrun" else env
    return "online" if _has_wandb_key() else "offline"


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_logger(tracking: Tracking, config: dict[str, Any], tags: list[str]):
    """A ``WandbLogger`` for one trial, with metadata capture off."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    logging.getLogger("wandb").setLevel(logging.ERROR)
    os.environ.setdefault("WANDB_SILENT", "true")
    save_dir = tracking.out_dir
    save_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(
        x_disable_meta=True,  # no sys.argv, host metadata or environment in the run files
        x_disable_stats=True,  # no system-metrics sampler thread (cost, and not needed)
        x_disable_machine_info=True,
        disable_git=True,
        save_code=False,
        console="off",
        silent=True,
    )
    logger = WandbLogger(
        project=tracking.project,
        name=tracking.name,
        group=tracking.group,
        job_type=tracking.job_type,
        tags=tags,
        config=config,
        save_dir=str(save_dir),
        mode=wandb_mode(tracking.wandb_mode),
        settings=settings,
        reinit="finish_previous",
        resume=None,  # WandbLogger asks for resume="allow"; a trial is always a new run
    )
    logger._wandb_init.pop("anonymous", None)  # deprecated in wandb; passing it only warns
    return logger


def finish_wandb(logger: Any, summary: dict[str, Any], failed: bool) -> Path | None:
    """Write the run summary and finish the run (always called, also for failed trials); return the
    run's folder."""
    import wandb

    run_dir = Path(wandb.run.dir).parent if wandb.run is not None else None
    try:
        if logger is not None and logger._experiment is not None:
            logger.experiment.summary.update(summary)
    finally:
        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)
        if run_dir is not None:
            localize_links(run_dir.parent)  # the run folder's wandb/
    return run_dir


def localize_links(folder: Path) -> None:
    """Make ``folder`` portable: a symlink to a file outside it (wandb links ``logs/debug-core.log``
    to its cache in the home folder) becomes a copy of that file (or goes, when the file is gone), and
    an absolute symlink inside it (``latest-run``, ``debug.log``) becomes relative, so a run folder
    copied to another machine has no broken link."""
    import shutil

    root = folder.resolve()
    for link in [p for p in folder.rglob("*") if p.is_symlink()]:
        target = link.resolve()
        if target.is_relative_to(root):
            if os.path.isabs(os.readlink(link)):
                link.unlink()
                link.symlink_to(os.path.relpath(target, link.parent.resolve()))
            continue
        link.unlink()
        if target.is_file():
            shutil.copyfile(target, link)


class TrialTracking:
    """The tracking steps of one trial as one context manager, each step guarded.

    Entering starts W&B (the run is created now, not lazily at the first log, so that a W&B that
    cannot start is found here) and the energy meter; leaving stops the meter into
    ``record["energy"]``, appends the trial's ``emissions.csv`` line and finishes the W&B run with
    the record's summary. A step that cannot start or finish never fails the trial: the trial runs
    without it and ``record["tracking_errors"]`` names it (``wandb: ...``, ``energy: ...``).
    ``rank`` > 0 (a DDP worker rank) tracks nothing: rank 0 speaks for the trial.
    """

    def __init__(self, record: dict[str, Any], tracking: Tracking | None, *, rank: int = 0) -> None:
        self.record = record
        self.tracking = tracking if rank == 0 else None
        self.logger: Any = None
        self.meter: Any = None

    def __enter__(self) -> TrialTracking:
        t, record = self.tracking, self.record
        if t is not None and t.wandb and t.out_dir is not None:
            tags = [record["task"], record["family"], record["optimizer"], *record["regularizers"]]
            self.logger = guarded(record, "wandb",
                                  lambda: started(wandb_logger(t, wandb_config(record), tags)))
        if t is not None and t.energy:
            meter = CpuTimeMeter(t.country) if t.apportion else EnergyMeter(t.country)
            name = f"{record['task']}/{record['family']}/s{record['seed']}"
            if guarded(record, "energy", lambda: meter.start(name) or True):
                self.meter = meter
        return self

    def __exit__(self, *exc: Any) -> None:
        t, record = self.tracking, self.record
        if self.meter is not None:
            record["energy"] = guarded(record, "energy", self.meter.stop)
        if t is not None and t.energy and record.get("energy") and not t.apportion and t.out_dir is not None:
            guarded(record, "emissions.csv", lambda: append_emissions(t.out_dir, emissions_row(record)))
        if t is not None and t.wandb and t.out_dir is not None:  # also when it did not start: close it
            run_dir = guarded(record, "wandb", lambda: finish_wandb(self.logger, wandb_summary(record),
                                                                    failed=record["status"] == Status.FAILED))
            if run_dir is not None and self.logger is not None:  # where suite.wandb_file amends it later
                record["wandb_run"] = os.path.relpath(run_dir, t.out_dir)


def started(logger: Any) -> Any:
    """``logger`` with its W&B run created (``WandbLogger`` creates it at the first use)."""
    _ = logger.experiment
    return logger


# -------------------------------------------------------------------------- the record's views


def guarded(record: dict[str, Any], what: str, fn: Any) -> Any:
    """``fn()``, or ``None`` with the failure appended to ``record["tracking_errors"]``."""
    try:
        return fn()
    except Exception as exc:
        record.setdefault("tracking_errors", []).append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def wandb_config(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B run config: the trial's full configuration (no results), with the protocol fields that
    tell a W&B user which runs the report compares: ``phase``, ``study``, ``defaults`` (trial 0 of a
    tuning study), ``candidate`` (the tuning trial a confirm run re-runs)."""
    keys = ("task", "family", "optimizer", "regularizers", "params", "seed", "epochs", "batch_size",
            "device", "phase", "arm", "benchmark", "study", "optuna_study", "trial_number", "study_index",
            "studies",
            "space", "defaults", "candidate", "candidate_defaults", "retry_of", "worker", "torch_threads",
            "task_info", "versions", "hardware", "git_commit")
    return {k: record[k] for k in keys if k in record}


def wandb_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B run summary: final metrics, status, energy, diagnostics flag."""
    summary: dict[str, Any] = dict(record.get("metrics") or {})
    summary.update(status=record["status"], wall_s=record.get("wall_s"), n_params=record.get("n_params"),
                   samples_per_s=record.get("samples_per_s"), epochs_run=record.get("epochs_run"))
    energy = record.get("energy") or {}
    summary.update({f"energy/{k}": v for k, v in energy.items() if k in ("kwh", "emissions_kg", "method",
                                                                         "nvml_kwh")})
    if record.get("diagnostics"):
        summary["diagnostics/flag"] = record["diagnostics"]["flag"]
    if record.get("error"):
        summary["error"] = record["error"]
    return {k: v for k, v in summary.items() if v is not None}
