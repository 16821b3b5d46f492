"""The trial record: one contract for the engine that writes it and the report that reads it.

A record is the flat, JSON-able dict that :func:`suite.train.train` returns and that every Optuna
trial stores whole in ``system_attrs["record"]`` (:data:`RECORD`; runs before issue 23 kept it in
``user_attrs["record"]``, and :func:`stored_record` reads both), with a short :func:`summary` in
``user_attrs["result"]`` (:data:`RESULT`): optuna-dashboard shows user attrs cut at 1,024
characters, so the whole record there read as broken JSON. Its fields are declared once, here
(:class:`TrialRecord`); how a trial ended is a :class:`Status`, and the one table
:data:`OPTUNA_STATE` says which Optuna state each status leaves its trial in.

A record is a *result* of the method it ran (:func:`is_result`) unless the trial was stopped by the
user (``interrupted``) or failed for a reason outside the method (``error_kind: environment``, a
file-system error). Such a trial keeps its record, does not count towards its arm's budget, and a
copy with the same params is redone; the report does not count it as a failed run either.

:func:`outcome` is the one place a trial's failure is classified (out of memory, divergence,
pruning, interrupt, environment) and cleaned up after, like lightning-hydra-template's
``task_wrapper``: ``train()`` stays a recipe.

No heavy imports (the report and ``suite dashboard`` read records without torch).
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any, TypedDict

SCHEMA = 1


class Status(StrEnum):
    """How a trial ended (``record["status"]``)."""

    RUNNING = "running"  # only while the trial runs
    COMPLETE = "complete"
    DIVERGED = "diverged"  # trained to the end with a non-finite training loss
    FAILED = "failed"  # an exception during training (``error``, ``error_kind``, ``traceback``)
    PRUNED = "pruned"  # stopped early by the Optuna pruner (curves so far)
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM: no result, redone on resume


class ErrorKind(StrEnum):
    """Why a failed trial failed, where it is known (``record["error_kind"]``)."""

    OOM = "oom"  # out of memory: a result (the configuration does not fit)
    ENVIRONMENT = "environment"  # the disk or the file system: no result, redone


#: the Optuna trial state each status leaves its trial in (interrupted trials are failed and requeued)
OPTUNA_STATE: dict[Status, str] = {
    Status.RUNNING: "RUNNING",
    Status.COMPLETE: "COMPLETE",
    Status.DIVERGED: "FAIL",
    Status.FAILED: "FAIL",
    Status.PRUNED: "PRUNED",
    Status.INTERRUPTED: "FAIL",
}

# ------------------------------------------------------------------- keys stored on Optuna objects

#: trial user attrs
RECORD, PHASE, SEED, WORKER, DEFAULTS, SURPLUS = "record", "phase", "seed", "worker", "defaults", "surplus"
RESULT = "result"  # user attr: the record's summary (:func:`summary`)
CONFIRM_OF = "confirm_of"  # study attr of an arm's confirm study: the tuning study's name
CANDIDATE, CANDIDATE_DEFAULTS = "candidate", "candidate_defaults"
#: trial system attrs of a requeued copy (the names Optuna's ``RetryHeartbeatStaleTrialCallback`` uses)
FAILED_TRIAL, RETRY_HISTORY = "failed_trial", "retry_history"
#: study user attrs
ARM, PROTOCOL, FIXED_PARAMS = "arm", "protocol", "fixed_params"
STUDY_INDEX, STUDY_SEEDS = "study_index", "study_seeds"
CONFIRM_CANDIDATES, CONFIRM_CHOICE = "confirm_candidates", "confirm_choice"
BEST_TUNE_TRIAL, ENERGY_APPORTIONED = "best_tune_trial", "energy_apportioned"
#: phases
TUNE, CONFIRM = "tune", "confirm"


class Primary(TypedDict, total=False):
    """The task's primary metric of a trial (``record["primary"]``)."""

    metric: str
    direction: str
    target: float
    value: float | None  # on test
    epochs_to_target: int | None  # first epoch whose validation value reached the target
    time_to_target_s: float | None


class TrialRecord(TypedDict, total=False):
    """The fields of a trial record. Every field may be missing from a stored record (older schemas,
    a trial that failed before it wrote them): readers use ``.get``."""

    schema: int
    # what ran
    task: str
    family: str
    optimizer: str
    regularizers: list[str]
    params: dict[str, Any]
    seed: int
    epochs: int
    batch_size: int
    device: str
    devices: int
    strategy: str
    world_size: int
    task_info: dict[str, Any]  # the task's summary: what the task is, not which families fit it
    # protocol (written by the tuner; ``meta`` of train())
    phase: str
    arm: str
    benchmark: str
    study: str
    trial_number: int
    optuna_study: str  # the Optuna study the trial ran in (the tuning study, or the arm's confirm study)
    worker: str
    space: str
    defaults: bool
    study_index: int
    studies: int
    candidate: int | None
    candidate_defaults: bool
    retry_of: int
    # how it ended
    status: str  # a Status
    error: str | None
    error_kind: str  # an ErrorKind
    traceback: str
    # results
    metrics: dict[str, float]  # "<split>/<metric>" -> value after the last epoch
    curves: dict[str, list[float]]  # per epoch: "epoch", "time_s", "train/loss", "val/<metric>", ...
    primary: Primary
    diagnostics: dict[str, Any]
    best_epoch: int | None
    epochs_run: int
    steps: int
    n_params: int
    wall_s: float
    fit_s: float
    samples_per_s: float | None
    epoch_time_s: float | None
    peak_memory_mb: float | None
    peak_memory_kind: str
    # provenance and cost
    started_at: str
    versions: dict[str, str]
    hardware: dict[str, Any]
    git_commit: str | None
    plugins: list[dict[str, Any]]
    torch_threads: int
    jobs: int  # trials its run ran at once (``suite benchmark --jobs N``; 1 alone)
    jobs_per_device: int  # of those, how many shared its device (CPU: all; CUDA: those on its GPU)
    precision: str  # Lightning's Trainer precision ("32-true", "bf16-mixed", ...)
    matmul_precision: str  # torch.get_float32_matmul_precision(): "highest" = no TF32
    flops_per_sample: float | None  # forward + backward FLOPs per training sample (measure_flops)
    peak_flops: float | None  # the device's peak FLOP/s at that precision, where Lightning knows it
    energy: dict[str, Any]
    tracking_errors: list[str]  # "<step>: <error>" of a tracking step that failed (W&B, energy, ...)
    wandb_run: str  # the trial's W&B run folder, relative to the run folder (amended by suite.wandb_file)


def is_result(record: Mapping[str, Any] | None) -> bool:
    """Whether ``record`` (a trial's stored record, ``None`` when it has none) is a result."""
    return (record is not None and record.get("status") != Status.INTERRUPTED
            and record.get("error_kind") != ErrorKind.ENVIRONMENT)


def counts(state: str, record: Mapping[str, Any] | None, *, surplus: bool = False) -> bool:
    """Whether a trial in Optuna ``state`` (its name) with ``record`` counts towards its arm's budget:
    COMPLETE and PRUNED trials do, a FAIL one when its record is a result (a crash or a divergence
    is a result, and is not retried forever), a surplus claim never."""
    if surplus:
        return False
    if state == "FAIL":
        return is_result(record)
    return state in ("COMPLETE", "PRUNED")


def objective_value(record: Mapping[str, Any]) -> float | None:
    """The validation primary metric a finished record scores, ``None`` when it has no finite one
    (a failed, diverged or unscored trial)."""
    if record.get("status") not in (Status.COMPLETE,):
        return None
    metric = (record.get("task_info") or {}).get("metric") or (record.get("primary") or {}).get("metric")
    value = (record.get("metrics") or {}).get(f"val/{metric}")
    if value is None or value != value or abs(value) == float("inf"):
        return None
    return float(value)


#: the most characters optuna-dashboard shows of one attr (longer ones it cuts)
DASHBOARD_ATTR_LIMIT = 1024


def stored_record(trial: Any) -> dict[str, Any] | None:
    """The record of an Optuna (frozen) trial: the system attr, or the user attr of older runs."""
    record = trial.system_attrs.get(RECORD)
    if record is None:
        record = trial.user_attrs.get(RECORD)
    return record if isinstance(record, dict) else None


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a dashboard user reads of a record in one attr of at most :data:`DASHBOARD_ATTR_LIMIT`
    characters as JSON: status, the primary metric on validation and test, epochs, seconds, energy,
    and the first line of an error."""
    import json

    metric = (record.get("task_info") or {}).get("metric") or (record.get("primary") or {}).get("metric")
    metrics = record.get("metrics") or {}
    energy = record.get("energy") or {}
    out: dict[str, Any] = {"status": record.get("status"), "metric": metric,
                           "val": metrics.get(f"val/{metric}"), "test": metrics.get(f"test/{metric}"),
                           "epochs_run": record.get("epochs_run"), "wall_s": record.get("wall_s"),
                           "kwh": energy.get("kwh"), "energy_method": energy.get("method"),
                           "candidate": record.get("candidate"), "seed": record.get("seed")}
    out = {k: v for k, v in out.items() if v is not None}
    if record.get("error"):
        out["error"] = (str(record["error"]).splitlines() or [""])[0]
    text = json.dumps(out, default=str)
    if len(text) > DASHBOARD_ATTR_LIMIT and "error" in out:
        keep = max(0, len(out["error"]) - (len(text) - DASHBOARD_ATTR_LIMIT) - 4)
        out["error"] = out["error"][:keep] + "..."
    return out


# ------------------------------------------------------------------------------------- outcome


def is_oom(exc: BaseException) -> bool:
    """Out of memory on the device (``torch.cuda.OutOfMemoryError``) or the host allocator."""
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in str(exc).lower())


def classify(exc: BaseException, *, epoch: int) -> dict[str, Any]:
    """The record fields of a trial that raised ``exc`` during training at ``epoch`` (1-based)."""
    if isinstance(exc, KeyboardInterrupt):  # SIGINT/SIGTERM: the caller stops after this record
        return {"status": Status.INTERRUPTED.value,
                "error": f"interrupted by the user (SIGINT/SIGTERM) at epoch {epoch}"}
    if type(exc).__name__ == "TrialPruned":
        return {"status": Status.PRUNED.value, "error": str(exc) or "pruned"}
    fields = {"status": Status.FAILED.value, "error": f"{type(exc).__name__}: {exc}",
              "traceback": traceback.format_exc(limit=8)}
    if is_oom(exc):
        fields["error_kind"] = ErrorKind.OOM.value
    elif isinstance(exc, OSError):  # the disk or the file system, not the method
        fields["error_kind"] = ErrorKind.ENVIRONMENT.value
    return fields


def free_device_memory() -> None:
    """Release what an out-of-memory trial held, so the next trial starts on a free device."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class Attempt:
    """What :func:`outcome` needs to know of the trial it wraps; the trial sets what it has built.

    Attributes:
        epoch: ``epoch() -> int``: the epoch running now (1-based; 0 before training starts).
        salvage: ``salvage(status) -> dict``: the fields a failed trial still records (curves so
            far, epochs run).
        release: ``release()``: drop the trial's references to the model and trainer (before an
            out-of-memory clean-up).
    """

    def __init__(self) -> None:
        self.epoch: Callable[[], int] = lambda: 0
        self.salvage: Callable[[str], dict[str, Any]] = lambda status: {}
        self.release: Callable[[], None] = lambda: None


@contextlib.contextmanager
def outcome(record: dict[str, Any], *, reraise: tuple[type[BaseException], ...] = (),
            on_exit: Callable[[], None] | None = None) -> Iterator[Attempt]:
    """Run a trial's body; whatever it raises becomes the record's status, never a lost result.

    ``reraise``: exception types that are configuration errors (nothing ran) and propagate. Any
    other exception, Ctrl-C included, is classified (:func:`classify`) with what the body salvages
    (:class:`Attempt`); after an out-of-memory failure the device is freed. ``wall_s`` is always
    set, then ``on_exit()`` runs (fields computed from the finished record).
    """
    started = time.perf_counter()
    attempt = Attempt()
    try:
        yield attempt
    except reraise:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        record.update(classify(exc, epoch=attempt.epoch()))
        record.update(attempt.salvage(record["status"]))
    finally:
        if record.get("error_kind") == ErrorKind.OOM:
            with contextlib.suppress(Exception):  # freeing is best effort: never mask the record
                attempt.release()
            free_device_memory()
        record["wall_s"] = time.perf_counter() - started
        if on_exit is not None:
            on_exit()
