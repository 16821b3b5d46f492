"""Optuna tuning with an equal, written-down protocol per arm, then confirm runs on shared seeds.

The protocol (identical for every arm; the README's protocol section says the same):

1. **Tune**: ``tune_trials`` Optuna trials per arm, every one with the arm's epoch budget and the
   profile's training seed, over the arm's search space (:func:`tuned_params`): ``space: core``
   (the learning rate, each regularizer's strength and at most two size params of the family) or
   ``space: full`` (every tunable declared param), minus the params the profile fixes. Ranges are
   declared once, next to each default (``suite.params.Param``).

   * Trial 0 is the arm's defaults, enqueued, so a tuned arm never ends below its own defaults on
     the validation metric of the tuning seed.
   * Trials 1 .. ``STARTUP_TRIALS - 1`` are scrambled Sobol points (scipy) with one seed for every
     arm of a profile, so that compared arms see comparable draws; trial k gets point k, so parallel
     workers never share a point and a resumed run continues the sequence.
   * Later trials: multivariate TPE (``constant_liar`` for parallel workers), seeded by the profile
     seed and the trial number (never the same stream twice, also after a resume; optuna#3255).
   * Pruning only from ``MIN_TRIALS_TO_PRUNE`` trials per arm (``pruner: auto``): a
     ``MedianPruner`` with 5 start-up trials and a warm-up of a third of the epochs, fed by
     optuna-integration's ``PyTorchLightningPruningCallback`` with the validation primary metric.
2. **Confirm**: the best tuning trial's params (by validation metric) re-run with ``confirm_seeds``
   seeds shared by every arm (``seed + 1 .. seed + K``), without pruning; with
   ``confirm_candidates: 2`` (the default) the defaults (or the runner-up, when the defaults are
   the best) too, and the arm stands for the candidate with the better mean validation metric over
   the confirm seeds (study attr ``confirm_choice``). Reports compare arms on the chosen
   candidate's confirm runs, paired by seed, and never choose on test.

Confirm runs live in the arm's confirm study (``<study>/confirm``, attr ``confirm_of``), so the
tuning study holds only tuning trials and its best trial (optuna-dashboard's) is a tuning trial.

Every trial, pruned and failed ones too, stores its full record in ``system_attrs["record"]``, a
summary under optuna-dashboard's 1,024-character cut in ``user_attrs["result"]`` and its phase in
``user_attrs["phase"]``; the trial value is the validation primary metric, reported every epoch.

Budget accounting: a tune trial counts towards the budget once it is COMPLETE, PRUNED, or FAILED
with a record (a crash or divergence is a result, and is not retried forever). A trial left
RUNNING by a killed process has no record: it is marked FAILED (on resume, by heartbeat on a
shared RDB storage, or by a dead-pid check on a journal file) and requeued with the same params.

Workers: any number of processes may run the same profile on one shared storage (``suite worker``).
Each trial is claimed before it runs (:func:`claimed_before`): a trial claimed beyond the arm's
budget (or a second claim of a confirm seed, or of the defaults) is marked ``surplus`` and does not
run, so every arm gets exactly its budget. :func:`run_arms` visits the arms with the fewest running
trials first and runs one trial of the first arm with unclaimed work; only when every unfinished
arm's remaining work is held by other workers does it wait (and fail the trials of dead workers).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from suite import record as rec
from suite.accounting import (
    PHASE_CONFIRM,
    PHASE_TUNE,
    claimed_before,
    confirm_study_name,
    confirm_trials,
    defaults_claimed_before,
    done_tune,
    is_done,
    phase_of,
    ranked_tune_trials,
)
from suite.config import TrialConfig
from suite.profile import Arm, Profile
from suite.record import Status, is_result, objective_value
from suite.search import (
    ProtocolSampler,
    defaults_point,
    describe_pruner,
    describe_sampler,
    make_pruner,
    search_distributions,
    search_space,
    tuned_params,
)
from suite.tracking import Tracking
from suite.workers import fail_dead_trials, frozen, requeue, worker_id


def train(config: TrialConfig, **kwargs: Any) -> dict[str, Any]:
    """:func:`suite.train.train`, imported at the first trial: Lightning is imported where training
    starts, so that planning, validation and resuming a finished study stay fast."""
    from suite.train import train as train_trial

    return train_trial(config, **kwargs)


RAN, WAIT, DONE = "ran", "wait", "done"
log = logging.getLogger(__name__)


class TrialFailed(Exception):
    """A trial that ran and failed or diverged; its record is stored and it counts as done."""


class SurplusTrial(Exception):
    """A trial claimed after the arm's budget was already claimed by other trials (workers)."""


class StaleTrial(Exception):
    """Our trial was failed by another worker as heartbeat-stale while it ran; its requeue redoes it."""


def open_study(storage, profile: Profile, arm: Arm, *, study: int = 0, salt: int = 0) -> optuna.Study:
    """Create or load study ``study`` (0-based) of the arm, enqueue its defaults as trial 0 when it is
    new, and store what the report needs on it (``salt``: see :class:`ProtocolSampler`).

    Each study of an arm is an independent tuning: its own sampler stream
    (:meth:`Profile.study_sampler_seed`), tuning seed and confirm seeds, all shared by every arm."""
    from tasks import TASKS

    task = TASKS.get(arm.task)
    name = arm.study_name(profile.name, study)
    index = study
    study = optuna.create_study(
        storage=storage, study_name=name, load_if_exists=True,
        direction="maximize" if task.direction == "maximize" else "minimize",
        sampler=ProtocolSampler(profile.study_sampler_seed(index), search_distributions(arm, profile.space),
                                salt=salt),
        pruner=make_pruner(profile.pruner, arm.epochs),
    )
    if "arm" not in study.user_attrs:
        tuned = tuned_params(arm, profile.space)
        attrs = {"benchmark": profile.name, "task": arm.task, "family": arm.family,
                 "optimizer": arm.optimizer, "regularizers": list(arm.regularizers),
                 "direction": task.direction, "metric": task.metric, "target": task.target,
                 "profile": profile.settings(), "arm": name,
                 "protocol": {"tune_trials": profile.tune_trials, "studies": profile.studies,
                              "confirm_seeds": profile.confirm_seeds,
                              "confirm_candidates": profile.confirm_candidates,
                              "epochs": arm.epochs, "space": profile.space,
                              "tuned": [p.describe_search() for p in tuned],
                              "sampler": describe_sampler(profile),
                              "pruner": describe_pruner(profile.pruner, arm.epochs),
                              "seed": profile.seed},
                 "study_index": index,
                 "study_seeds": {"sampler": profile.study_sampler_seed(index),
                                 "tune": profile.tune_seed(index),
                                 "confirm": profile.confirm_seed_list(index)},
                 "fixed_params": dict(arm.params)}
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(defaults_point(arm, profile.space),
                            user_attrs={"phase": PHASE_TUNE, "defaults": True})
    return study


#: what the confirm study copies of its tuning study's attrs (the rest is read from the tuning study)
CONFIRM_STUDY_ATTRS = ("benchmark", "task", "family", "optimizer", "regularizers", "direction", "metric",
                       "target", "arm", "study_index", "study_seeds", "protocol", "fixed_params")


def open_confirm(storage, study: optuna.Study) -> optuna.Study:
    """Create or load the study that holds the confirm runs of tuning study ``study``
    (:func:`suite.accounting.confirm_study_name`); its ``confirm_of`` attr names the tuning study,
    and the report reads both as one arm. Confirm runs are enqueued with fixed params: the sampler
    draws nothing, and nothing is pruned."""
    confirm = optuna.create_study(storage=storage, study_name=confirm_study_name(study.study_name),
                                  load_if_exists=True, direction=study.direction,
                                  sampler=optuna.samplers.RandomSampler(seed=0),
                                  pruner=optuna.pruners.NopPruner())
    if rec.CONFIRM_OF not in confirm.user_attrs:
        for key in CONFIRM_STUDY_ATTRS:
            if key in study.user_attrs:
                confirm.set_user_attr(key, study.user_attrs[key])
        confirm.set_user_attr(rec.PHASE, PHASE_CONFIRM)
        confirm.set_user_attr(rec.CONFIRM_OF, study.study_name)
    return confirm


def open_arm_studies(storage, profile: Profile, *, salt: int = 0) -> list[tuple[optuna.Study, optuna.Study]]:
    """Every (tuning study, confirm study) of the profile, in :meth:`Profile.arm_studies` order."""
    out = []
    for arm, k in profile.arm_studies():
        study = open_study(storage, profile, arm, study=k, salt=salt)
        out.append((study, open_confirm(storage, study)))
    return out


def epoch_reporter(trial: optuna.Trial, monitor: str) -> Any:
    """A Lightning callback that reports ``monitor`` to ``trial`` after every validation epoch (its
    intermediate values), without ever pruning: every trial that is not pruned shows its learning
    curve in optuna-dashboard as pruned ones do."""
    import lightning.pytorch as pl

    class ReportEpochs(pl.Callback):
        def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            value = trainer.callback_metrics.get(monitor)
            if not trainer.sanity_checking and value is not None:
                trial.report(float(value), step=trainer.current_epoch)

    return ReportEpochs()


@dataclass
class ArmRunner:
    """Runs one arm's protocol on a study: tune to budget, then confirm seeds."""

    profile: Profile
    arm: Arm
    study: optuna.Study
    device: str = "auto"
    tracking: Tracking | None = None
    on_trial: Callable[[str, dict[str, Any]], None] | None = None
    on_start: Callable[[str, str, int], None] | None = None  # (arm, phase, seed) as a trial starts
    study_index: int = 0  # which of the profile's ``studies`` of the arm this is (0-based)
    storage: Any = None  # the study's storage as suite.storage.open_storage returned it
    confirm: optuna.Study | None = None  # the arm's confirm study (:func:`open_confirm` when None)

    def __post_init__(self) -> None:
        if self.storage is None:
            raise ValueError("ArmRunner needs the storage its study was opened on")
        if self.confirm is None:
            self.confirm = open_confirm(self.storage, self.study)

    @property
    def name(self) -> str:
        return self.arm.study_name(self.profile.name, self.study_index)

    def objective(self, trial: optuna.Trial) -> float:
        study = trial.study  # the tuning study or the confirm study
        phase = trial.user_attrs.get("phase", PHASE_TUNE)
        if study.study_name != self.study.study_name and phase != PHASE_CONFIRM:
            # another worker popped the confirm claim we meant to run: Optuna made a new, empty trial
            trial.set_user_attr("phase", PHASE_CONFIRM)
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"{self.name}: the confirm claim was taken by another worker")
        seed = trial.user_attrs.get("seed", self.profile.tune_seed(self.study_index))
        trial.set_user_attr("phase", phase)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("worker", worker_id())
        budget = self.profile.tune_trials if phase == PHASE_TUNE else 1
        candidate = trial.user_attrs.get("candidate")
        if (claimed_before(study, trial, phase, seed if phase == PHASE_CONFIRM else None,
                           candidate) >= budget
                or (trial.user_attrs.get("defaults") and defaults_claimed_before(study, trial))):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"{self.name}: {phase} budget already claimed")
        params = search_space(trial, self.arm, self.profile.space)
        if self.on_start is not None:
            self.on_start(self.name, phase, seed)
        from tasks import TASKS

        monitor = f"val/{TASKS.get(self.arm.task).metric}"
        if phase == PHASE_TUNE and self.profile.pruner != "none":
            from optuna_integration import PyTorchLightningPruningCallback

            callbacks = [PyTorchLightningPruningCallback(trial, monitor=monitor)]  # reports and prunes
        else:  # the learning curve reaches the study (optuna-dashboard draws it)
            callbacks = [epoch_reporter(trial, monitor)]
        tracking = None
        if self.tracking is not None:
            tracking = Tracking(**{**self.tracking.__dict__, "group": self.name, "job_type": phase,
                                   "name": f"{study.study_name}#{trial.number}"})
        config = TrialConfig(task=self.arm.task, family=self.arm.family, optimizer=self.arm.optimizer,
                             regularizers=self.arm.regularizers, params=params, epochs=self.arm.epochs,
                             seed=seed, device=self.device)
        meta = {"phase": phase, "arm": self.name, "benchmark": self.profile.name,
                "study": self.name, "optuna_study": study.study_name, "trial_number": trial.number,
                "worker": worker_id(),
                "space": self.profile.space, "defaults": bool(trial.user_attrs.get("defaults")),
                "study_index": self.study_index, "studies": self.profile.studies}
        if phase == PHASE_CONFIRM:
            meta["candidate"] = candidate
            meta["candidate_defaults"] = bool(trial.user_attrs.get("candidate_defaults"))
        retry_of = frozen(study, trial.number).system_attrs.get(rec.FAILED_TRIAL)
        if retry_of is not None:  # a requeued copy of a dead worker's trial
            meta["retry_of"] = retry_of
        record = train(config, callbacks=callbacks, tracking=tracking, meta=meta)
        # JSON round trip: a value the storage cannot serialise must not lose the record
        record = json.loads(json.dumps(record, default=str))
        try:
            self.store(trial, record)
        except optuna.exceptions.UpdateFinishedTrialError:
            self._stale = True
            raise StaleTrial(f"{self.name}#{trial.number} was failed as stale by another worker while it "
                             "ran (missed heartbeats); its requeued copy redoes it") from None
        if self.on_trial is not None:
            self.on_trial(phase, record)
        return self.tell(trial, record)

    def store(self, trial: optuna.Trial, record: dict[str, Any]) -> None:
        """Keep ``record`` whole in the trial's system attrs and its summary in the user attrs (what
        optuna-dashboard shows, under its 1,024-character cut: :func:`suite.record.summary`)."""
        study_id = self.storage.get_study_id_from_name(trial.study.study_name)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        self.storage.set_trial_system_attr(trial_id, rec.RECORD, record)
        trial.set_user_attr(rec.RESULT, rec.summary(record))

    def tell(self, trial: optuna.Trial, record: dict[str, Any]) -> float:
        """The objective's answer for a stored record: its value, or the exception that leaves the
        trial in the Optuna state of its status (:data:`suite.record.OPTUNA_STATE`)."""
        if not is_result(record):  # stopped by the user, or the disk: a copy with its params is redone
            requeue(trial.study, frozen(trial.study, trial.number))
            if record["status"] == Status.INTERRUPTED:
                raise KeyboardInterrupt(f"{self.name}#{trial.number}")
        if record["status"] == Status.PRUNED:
            raise optuna.TrialPruned(record.get("error") or "pruned")
        value = objective_value(record)
        if value is None:  # failed, diverged or unscored: a result that counts (FAIL with its record)
            raise TrialFailed(f"{self.name}#{trial.number}: {record['status']}: {record.get('error')}")
        return value

    def _optimize_one(self, study: optuna.Study | None = None) -> None:
        self._stale = False
        try:
            (study or self.study).optimize(self.objective, n_trials=1,
                                           catch=(TrialFailed, SurplusTrial, StaleTrial))
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            if not self._stale:
                raise
            # optuna could not tell the trial that another worker had already failed: nothing lost
            log.warning("%s: a trial was failed as stale while it ran; its requeue redoes it", self.name)

    def step(self) -> str:
        """Run at most one trial of this arm's protocol; never waits.

        Returns ``RAN`` (a trial ran, or was claimed as surplus), ``WAIT`` (the remaining work is
        claimed by trials running elsewhere) or ``DONE`` (tune budget and confirm seeds done).
        """
        trials = self.study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if sum(phase_of(t) == PHASE_TUNE and is_done(t) for t in trials) < self.profile.tune_trials:
            claimed = sum(phase_of(t) == PHASE_TUNE and (t.state == TrialState.RUNNING or is_done(t))
                          for t in trials)
            if claimed >= self.profile.tune_trials and not waiting:
                return WAIT  # others are running the last trials
            self._optimize_one()  # a new trial, or a requeued one (ours or a dead worker's)
            return RAN
        candidates = self.candidates()
        if not candidates or self.profile.confirm_seeds == 0:
            return DONE
        seeds = self.profile.confirm_seed_list(self.study_index)
        confirm = [t for t in confirm_trials(self.study, self.confirm) if not t.user_attrs.get("surplus")]
        waiting = any(t.state == TrialState.WAITING for t in self.confirm.get_trials(deepcopy=False))
        key = {t.number: (t.user_attrs.get("candidate"), t.user_attrs.get("seed")) for t in confirm}
        done = {key[t.number] for t in confirm if is_done(t)}
        missing = [(c.number, s) for c in candidates for s in seeds if (c.number, s) not in done]
        if not missing:
            self.choose(candidates, [t for t in confirm if is_done(t)])
            return DONE
        if waiting:
            self._optimize_one(self.confirm)  # an enqueued claim (ours, or left by a killed process)
            return RAN
        running = {key[t.number] for t in confirm if t.state == TrialState.RUNNING}
        free = [m for m in missing if m not in running]
        if not free:
            return WAIT
        number, seed = free[0]
        cand = next(c for c in candidates if c.number == number)
        self.confirm.enqueue_trial(cand.params, user_attrs={
            "phase": PHASE_CONFIRM, "seed": seed, "candidate": number,
            "candidate_defaults": bool(cand.user_attrs.get("defaults"))})
        self._optimize_one(self.confirm)
        return RAN

    def candidates(self) -> list[FrozenTrial]:
        """The tuning trials whose params get confirm runs, fixed on the study once tuning is done.

        The best tuning trial (validation metric of the tuning seed), then, with
        ``confirm_candidates: 2``, the defaults trial (or, when the defaults are the best, the
        runner-up): every arm confirms the same number of candidates, and the tuned params must beat
        the defaults on the confirm seeds' validation, not only on the tuning seed's (one lucky seed
        does not make an arm worse than its defaults).

        When every tuning trial failed or diverged, the defaults are the arm's only candidate: the
        confirm seeds re-run them, so the arm's failure is measured on the same seeds as every other
        arm and counts in the report (scored at the task's worst value), instead of leaving the arm
        without results.
        """
        stored = self.study.user_attrs.get("confirm_candidates")
        ranked = ranked_tune_trials(self.study)
        complete = {t.number: t for t in ranked}
        if not ranked:
            fallback = [t for t in done_tune(self.study) if t.user_attrs.get("defaults")]
            complete = {t.number: t for t in fallback}
            ranked = fallback
        if stored is None:
            if not ranked:
                return []
            picked = ranked[:1]
            if self.profile.confirm_candidates > 1:
                defaults = next((t for t in ranked if t.user_attrs.get("defaults")), None)
                second = defaults if defaults is not None and defaults is not ranked[0] else (
                    ranked[1] if len(ranked) > 1 else None)
                picked += [second] if second is not None else []
            stored = [t.number for t in picked]
            self.study.set_user_attr("best_tune_trial", stored[0])
            self.study.set_user_attr("confirm_candidates", stored)
        return [complete[n] for n in stored if n in complete]

    def choose(self, candidates: list[FrozenTrial], confirm: list[FrozenTrial]) -> None:
        """Store on the study which candidate the arm stands for (``confirm_choice``): the one with
        the fewest failed confirm runs, then the best mean validation metric over the confirm seeds;
        a tie goes to the defaults, then to the better tuning trial. Test metrics never choose."""
        if "confirm_choice" in self.study.user_attrs:
            return
        sign = 1 if self.study.direction == optuna.study.StudyDirection.MAXIMIZE else -1

        def key(c: FrozenTrial) -> tuple:
            runs = [t for t in confirm if t.user_attrs.get("candidate") == c.number]
            vals = [t.value for t in runs if t.state == TrialState.COMPLETE and t.value is not None
                    and math.isfinite(t.value)]
            failed = len(runs) - len(vals)
            mean = sum(vals) / len(vals) if vals else -math.inf
            return failed, -sign * mean if vals else math.inf, not c.user_attrs.get("defaults")

        choice = min(candidates, key=key)  # candidates are in tuning order: best first on full ties
        self.study.set_user_attr("confirm_choice", choice.number)
        self.confirm.set_user_attr("confirm_choice", choice.number)  # shown beside the runs it chose among

    def running(self) -> int:
        """Trials of this arm running now (on any worker)."""
        return sum(len(s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
                   for s in (self.study, self.confirm))

    def run(self, wait_s: float = 2.0) -> None:
        """This arm's whole protocol: tune to budget, then confirm (waits on other workers)."""
        run_arms([self], wait_s=wait_s)


def run_arms(runners: Sequence[ArmRunner], *, start: int = 0, wait_s: float = 2.0) -> None:
    """Run every arm's protocol to the end, sharing the work with any other workers on the storage.

    Each pass orders the unfinished arms by how many trials run on them now (fewest first; ties in
    arm order, rotated to begin at ``start``) and runs one trial of the first arm with unclaimed
    work, then starts a new pass. When no unfinished arm has unclaimed work (other workers hold it,
    or a dead worker's trial is still RUNNING), it fails the trials of dead workers (heartbeat, or
    pid on this host) and waits ``wait_s`` seconds. One process alone runs the arms in order.
    """
    n = len(runners)
    finished: set[int] = set()
    while len(finished) < n:
        pending = [i for i in range(n) if i not in finished]
        if n > 1:
            load = {i: runners[i].running() for i in pending}
            pending.sort(key=lambda i: (load[i], (i - start) % n))
        for i in pending:
            outcome = runners[i].step()
            if outcome == DONE:
                finished.add(i)
            elif outcome == RAN:
                break
        else:
            if len(finished) < n:
                for i in range(n):
                    if i not in finished:
                        fail_dead_trials(runners[i].study, runners[i].storage)
                        fail_dead_trials(runners[i].confirm, runners[i].storage)
                time.sleep(wait_s)
