"""What an arm tunes and how: its search space (declared next to each default), the protocol's
sampler (defaults, then scrambled Sobol, then multivariate TPE) and its pruner."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from suite.accounting import PHASE_TUNE, is_done, phase_of
from suite.config import TrialConfig, declared_params, resolve_config
from suite.params import Param
from suite.profile import Arm, Profile

STARTUP_TRIALS = 10  # the defaults and Sobol points before TPE takes over (TPE's own default start-up)
PRUNER_STARTUP_TRIALS = 5


def pruner_warmup(epochs: int) -> int:
    """Epochs a trial runs before it may be pruned: a third of its budget (at least one)."""
    return max(1, math.ceil(epochs / 3))


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner of an arm with an ``epochs`` budget (``name`` as resolved by the profile: the
    profile refuses pruning below ``MIN_TRIALS_TO_PRUNE`` trials per arm)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS,
                                           n_warmup_steps=pruner_warmup(epochs))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=pruner_warmup(epochs), max_resource=epochs)
    return optuna.pruners.NopPruner()


def describe_pruner(name: str, epochs: int) -> str:
    if name == "median":
        return (f"MedianPruner(n_startup_trials={PRUNER_STARTUP_TRIALS}, "
                f"n_warmup_steps={pruner_warmup(epochs)}) of {epochs} epochs")
    if name == "hyperband":
        return f"HyperbandPruner(min_resource={pruner_warmup(epochs)}, max_resource={epochs})"
    return "none"


class ProtocolSampler(optuna.samplers.BaseSampler):
    """The protocol's sampler: scrambled Sobol points while fewer than ``startup`` tuning trials
    are done (trial 0, the defaults, is enqueued and needs no sampler), multivariate TPE after.

    Args:
        seed: the profile's sampler seed, the same for every arm (comparable Sobol draws).
        salt: a worker's offset for TPE (workers of one study must not share a TPE stream; their
            Sobol points differ anyway, the point index being kept in the study).
        startup: tuning trials (defaults included) before TPE.

    TPE is re-created per trial, seeded by ``seed + salt + trial number``: its only state is its
    random stream, and a trial number is never used twice, so a resumed run draws no stream twice.
    """

    def __init__(self, seed: int, *, salt: int = 0, startup: int = STARTUP_TRIALS) -> None:
        self.seed, self.salt, self.startup = seed, salt, startup
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.qmc = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                                  warn_independent_sampling=False)
        self._current: tuple[int, optuna.samplers.BaseSampler] | None = None

    def _for(self, study: optuna.Study, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if self._current is None or self._current[0] != trial.number:
            done = sum(phase_of(t) == PHASE_TUNE and is_done(t) for t in study.get_trials(deepcopy=False))
            if done < self.startup:
                sampler: optuna.samplers.BaseSampler = self.qmc
            else:
                sampler = optuna.samplers.TPESampler(
                    seed=(self.seed + self.salt + trial.number) % 2**32, n_startup_trials=0,
                    multivariate=True, constant_liar=True)
            self._current = (trial.number, sampler)
        return self._current[1]

    def infer_relative_search_space(self, study, trial):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Sobol's power-of-2 balance note, experimental options
            return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._for(study, trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.qmc.reseed_rng()


def describe_sampler(profile: Profile) -> str:
    return (f"trial 0 = defaults; trials 1-{STARTUP_TRIALS - 1} scrambled Sobol (QMCSampler, seed "
            f"{profile.sampler_seed}, shared by every arm); then multivariate TPE")


def tuned_params(arm: Arm, space: str) -> list[Param]:
    """The params an arm tunes, in declaration order: every tunable declared param (the later of
    two declarations of one name, as in resolution) not fixed by the profile; for ``space="core"``
    only those marked ``core`` (learning rate, regularizer strengths, at most two family sizes)."""
    r = resolve_config(TrialConfig(task=arm.task, family=arm.family, optimizer=arm.optimizer,
                                   regularizers=arm.regularizers, params=dict(arm.params), device="cpu"))
    table: dict[str, Param] = {}
    for p in declared_params(r.task, r.family, r.optimizer, r.regularizers):
        table[p.name] = p
    return [p for p in table.values()
            if p.tune and p.name not in arm.params and (space == "full" or p.core)]


def defaults_point(arm: Arm, space: str) -> dict[str, Any]:
    """Trial 0 of an arm, as Optuna params: the default of every tuned param."""
    return {p.optuna_name: p.to_optuna(p.default) for p in tuned_params(arm, space)}


def search_space(trial: optuna.Trial, arm: Arm, space: str) -> dict[str, Any]:
    """Sample the arm's tuned params (:func:`tuned_params`); the profile's fixed params added."""
    return {**{p.name: p.suggest(trial) for p in tuned_params(arm, space)}, **arm.params}
