"""Worker liveness and requeueing: who runs a trial, whether that process is alive, and how the
trial of a dead worker is failed and redone with the same params (on every storage kind alike).

* Server storages (PostgreSQL) have heartbeats: every running trial beats every
  ``heartbeat_interval`` seconds; a trial silent for ``grace_period`` seconds is failed by the next
  worker that looks, and Optuna's ``RetryHeartbeatStaleTrialCallback`` requeues it.
* Journal files and SQLite have none: a trial's ``worker`` user attr (``host:pid``) names its
  process, and a trial whose process is gone on this host is failed and requeued by
  :func:`fail_dead_running`, the same way (system attrs ``failed_trial`` and ``retry_history``).

Either way a trial is redone at most ``MAX_RETRY`` times.
"""

from __future__ import annotations

import os
import socket
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.record import FAILED_TRIAL, RECORD, RESULT, RETRY_HISTORY, WORKER

HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S, MAX_RETRY = 10, 30, 2
ORPHAN_AFTER_S = 120  # a RUNNING trial without a worker attr for this long has no live owner


def worker_id() -> str:
    """``hostname:pid`` of this process, stored on every trial it runs (``user_attrs["worker"]``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust the signal check
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _env_seconds(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SuiteError(f"{name} must be a whole number of seconds >= 1, got {value!r}")
    return int(value)


def heartbeat_kwargs() -> dict[str, Any]:
    """``RDBStorage`` arguments for heartbeats: ``heartbeat_interval`` 10 s and ``grace_period`` 30 s
    (``$SUITE_HEARTBEAT_INTERVAL`` and ``$SUITE_GRACE_PERIOD`` override them, in seconds), and the
    callback that requeues a stale trial with the same params at most ``MAX_RETRY`` times."""
    import optuna

    interval = _env_seconds("SUITE_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL_S)
    grace = _env_seconds("SUITE_GRACE_PERIOD", GRACE_PERIOD_S)
    if grace <= interval:
        raise SuiteError(f"SUITE_GRACE_PERIOD ({grace}) must be longer than SUITE_HEARTBEAT_INTERVAL "
                         f"({interval})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    return {"heartbeat_interval": interval, "grace_period": grace, "heartbeat_stale_trial_callback": callback}


def frozen(study: Any, number: int) -> Any:
    """The stored (frozen) trial ``number`` of ``study``, read through the public API."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def requeue(study: Any, trial: Any) -> None:
    """Enqueue a copy of a dead (or interrupted) trial with the same params and attrs, at most
    ``MAX_RETRY`` times; the copy drops the ``worker``, ``record`` and ``result`` attrs."""
    import optuna
    from optuna.trial import TrialState

    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    if len(history) > MAX_RETRY:
        return
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k not in (WORKER, RECORD, RESULT)},
        system_attrs={FAILED_TRIAL: trial.system_attrs.get(FAILED_TRIAL, trial.number),
                      RETRY_HISTORY: history},
    ))


def fail_dead_running(study: Any, *, all_running: bool = False) -> int:
    """Fail the RUNNING trials of dead processes and requeue each with the same params; return how many.

    For storages without heartbeats. A trial is dead when ``all_running`` (SQLite: one process at a
    time, so whatever is RUNNING when we start is left over), when its worker ran on this host and
    that pid is gone (journal files are shared on one machine), or when it has had no ``worker``
    attr for over ``ORPHAN_AFTER_S`` (it predates them; a live worker sets it right after claiming).
    The requeue is what ``RetryHeartbeatStaleTrialCallback`` does on RDB storages, so both behave
    alike; the copy drops the dead ``worker`` attr, so it is never mistaken for dead once popped.
    """
    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get(WORKER)
        if all_running:
            pass
        elif owner is None:  # just claimed (attrs not yet set), or a trial from before workers
            age = (datetime.now() - t.datetime_start).total_seconds() if t.datetime_start else 0.0
            if age < ORPHAN_AFTER_S:
                continue
        else:
            owner_host, _, pid = owner.rpartition(":")
            if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
                continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # finished meanwhile, or failed by another worker
        requeue(study, t)
        n += 1
    return n


def fail_dead_trials(study: Any, storage: Any) -> None:
    """Fail (and requeue) the trials of dead workers: by heartbeat where ``storage`` (the study's,
    as :func:`suite.storage.open_storage` returned it) has it, else by pid."""
    import optuna

    if has_heartbeat(storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    else:
        fail_dead_running(study)


def has_heartbeat(storage: Any) -> bool:
    """Whether ``storage`` (as :func:`suite.storage.open_storage` returned it) fails stale trials by
    heartbeat (a server storage), not by pid."""
    import optuna

    return isinstance(storage, optuna.storages.RDBStorage) and bool(storage.get_heartbeat_interval())
