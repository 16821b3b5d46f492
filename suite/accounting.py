"""Trial accounting: which trials of an arm's study count towards its budget, and who claimed what.

A tune trial counts once it is COMPLETE, PRUNED, or FAILED with a record that is a result
(:func:`suite.record.counts`); a surplus claim (a worker that claimed beyond the budget) never does.
"""

from __future__ import annotations

from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from suite import record as rec
from suite.record import CONFIRM, TUNE

PHASE_TUNE, PHASE_CONFIRM = TUNE, CONFIRM


def phase_of(t: FrozenTrial) -> str:
    return t.user_attrs.get(rec.PHASE, PHASE_TUNE)


def is_done(t: FrozenTrial) -> bool:
    """A trial that counts towards its budget (:func:`suite.record.counts`)."""
    return rec.counts(t.state.name, rec.stored_record(t), surplus=bool(t.user_attrs.get(rec.SURPLUS)))


def confirm_study_name(name: str) -> str:
    """The Optuna study that holds the confirm runs of tuning study ``name``: kept apart, so that the
    tuning study's best trial (optuna-dashboard's, ``study.best_trial``) is a tuning trial."""
    return f"{name}/confirm"


def confirm_trials(study: optuna.Study, confirm: optuna.Study | None) -> list[FrozenTrial]:
    """An arm's confirm runs: those of its confirm study, and those that runs made before confirm
    studies existed kept in the tuning study."""
    old = [t for t in study.get_trials(deepcopy=False) if phase_of(t) == PHASE_CONFIRM]
    return old + ([] if confirm is None else list(confirm.get_trials(deepcopy=False)))


def done_tune(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if phase_of(t) == PHASE_TUNE and is_done(t)]


def claim_order(t: FrozenTrial) -> tuple[datetime, int]:
    """When a trial was claimed: it started RUNNING (a new trial when created, an enqueued one when a
    worker popped it), then its number. Numbers alone misorder claims: an enqueued trial (a requeued
    copy, a confirm claim) gets its number when it is enqueued, but is claimed when it is popped,
    maybe after a newer trial that could not yet count it."""
    return (t.datetime_start or datetime.max, t.number)


def _claimed_earlier(trials: list[FrozenTrial], number: int) -> list[FrozenTrial]:
    """The live claims (RUNNING or done, not surplus) that came before trial ``number``'s."""
    mine = next((t for t in trials if t.number == number), None)
    key = claim_order(mine) if mine is not None else (datetime.max, number)
    return [t for t in trials if t.number != number and claim_order(t) < key
            and not t.user_attrs.get("surplus") and (t.state == TrialState.RUNNING or is_done(t))]


def defaults_claimed_before(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether another defaults trial (enqueued by a worker that opened the new study at the same
    moment) was claimed before this one."""
    earlier = _claimed_earlier(study.get_trials(deepcopy=False), trial.number)
    return any(t.user_attrs.get("defaults") for t in earlier)


def ranked_tune_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The COMPLETE tuning trials, best validation value first (ties: the earlier trial, so the
    defaults, trial 0, win a tie)."""
    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    complete = [t for t in done_tune(study) if t.state == TrialState.COMPLETE]
    return sorted(complete, key=lambda t: (-sign * t.value, t.number))


def claimed_before(study: optuna.Study, trial: optuna.Trial, phase: str, seed: int | None,
                   candidate: int | None = None) -> int:
    """How many other trials of the same phase (and, for confirm runs, seed and candidate) were
    claimed before this one (:func:`claim_order`) and still hold their claim."""
    count = 0
    for t in _claimed_earlier(study.get_trials(deepcopy=False), trial.number):
        if phase_of(t) != phase:
            continue
        if phase == PHASE_CONFIRM and (t.user_attrs.get("seed") != seed
                                       or t.user_attrs.get("candidate") != candidate):
            continue
        count += 1
    return count


def arm_trial_counts(study: optuna.Study, confirm: optuna.Study | None = None) -> dict[str, int]:
    """Done trials by phase of an arm's tuning study and confirm study (progress, resume messages)."""
    return {"tune": sum(phase_of(t) == PHASE_TUNE and is_done(t) for t in study.get_trials(deepcopy=False)),
            "confirm": sum(is_done(t) for t in confirm_trials(study, confirm))}
