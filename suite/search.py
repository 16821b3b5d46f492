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


class _SpaceRecorder:
    """Stands in for an Optuna trial to read the distributions that :meth:`Param.suggest` asks for
    (the declaration stays the only copy of the search space)."""

    def __init__(self) -> None:
        self.found: dict[str, optuna.distributions.BaseDistribution] = {}

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self.found[name] = optuna.distributions.FloatDistribution(low, high, log=log)
        return low

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        self.found[name] = optuna.distributions.IntDistribution(low, high, log=log)
        return low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.found[name] = optuna.distributions.CategoricalDistribution(choices)
        return choices[0]


def search_distributions(arm: Arm, space: str) -> dict[str, optuna.distributions.BaseDistribution]:
    """The arm's search space as Optuna distributions, by Optuna param name."""
    recorder = _SpaceRecorder()
    for p in tuned_params(arm, space):
        p.suggest(recorder)
    return recorder.found


def _from_unit(dist: optuna.distributions.BaseDistribution, u: float) -> Any:
    """The value of ``dist`` at ``u`` in [0, 1): uniform on its (log) scale."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
    lo, hi = float(dist.low), float(dist.high)
    if isinstance(dist, optuna.distributions.IntDistribution):
        if dist.log:
            value = math.floor(math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo))))
        else:
            value = int(lo) + math.floor(u * ((int(hi) - int(lo)) // dist.step + 1)) * dist.step
        return int(min(max(value, int(lo)), int(hi)))
    value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if dist.log else lo + u * (hi - lo)
    return min(max(value, lo), hi)


def sobol_point(space: dict[str, optuna.distributions.BaseDistribution], seed: int,
                index: int) -> dict[str, Any]:
    """Point ``index`` of the scrambled Sobol sequence of ``seed`` (scipy), mapped onto ``space``
    (params in name order; numbers uniform on their scale, choices in equal parts)."""
    from scipy.stats import qmc

    names = sorted(space)
    if not names:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the power-of-2 balance note
        engine = qmc.Sobol(d=len(names), scramble=True, rng=seed)
        if index:
            engine.fast_forward(index)
        unit = engine.random(1)[0]
    return {n: _from_unit(space[n], float(u)) for n, u in zip(names, unit, strict=True)}


class ProtocolSampler(optuna.samplers.BaseSampler):
    """The protocol's sampler: scrambled Sobol points while fewer than ``startup`` tuning trials
    are done (trial 0, the defaults, is enqueued and needs no sampler), multivariate TPE after.

    Args:
        seed: the profile's sampler seed, the same for every arm (comparable Sobol draws).
        space: the arm's search space (:func:`search_distributions`).
        salt: a worker's offset for TPE (workers of one study must not share a TPE stream).
        startup: tuning trials (defaults included) before TPE.

    Sobol point ``k`` goes to trial number ``k``: trial numbers are handed out once by the storage,
    so parallel workers never draw one point twice (a point index kept in the study, as Optuna's
    ``QMCSampler`` does, is read and written by two workers at once under load), and a resumed run
    continues the sequence. TPE is re-created per trial, seeded by ``seed + salt + trial number``:
    its only state is its random stream, and a trial number is never used twice, so a resumed run
    draws no stream twice.
    """

    def __init__(self, seed: int, space: dict[str, optuna.distributions.BaseDistribution], *,
                 salt: int = 0, startup: int = STARTUP_TRIALS) -> None:
        self.seed, self.space, self.salt, self.startup = seed, dict(space), salt, startup
        self._current: tuple[int, optuna.samplers.BaseSampler | None] | None = None

    def _for(self, study: optuna.Study, trial: FrozenTrial) -> optuna.samplers.BaseSampler | None:
        """TPE for this trial, or None while Sobol points are drawn."""
        if self._current is None or self._current[0] != trial.number:
            done = sum(phase_of(t) == PHASE_TUNE and is_done(t) for t in study.get_trials(deepcopy=False))
            sampler = None if done < self.startup else optuna.samplers.TPESampler(
                seed=(self.seed + self.salt + trial.number) % 2**32, n_startup_trials=0,
                multivariate=True, constant_liar=True)
            self._current = (trial.number, sampler)
        return self._current[1]

    def infer_relative_search_space(self, study, trial):
        tpe = self._for(study, trial)
        if tpe is None:
            return dict(self.space)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        tpe = self._for(study, trial)
        if tpe is None:
            point = sobol_point(self.space, self.seed, trial.number)
            return {k: v for k, v in point.items() if k in search_space}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental options
            return tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        tpe = self._for(study, trial)
        if tpe is None:  # a param outside the declared space (never, for the suite's own arms)
            point = sobol_point({param_name: param_distribution}, self.seed, trial.number)
            return point[param_name]
        return tpe.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        tpe = self._for(study, trial)
        if tpe is not None:
            tpe.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        tpe = self._for(study, trial)
        if tpe is not None:
            tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        pass  # every stream is a function of the seed and the trial number


def describe_sampler(profile: Profile) -> str:
    return (f"trial 0 = defaults; trials 1-{STARTUP_TRIALS - 1} scrambled Sobol (scipy, seed "
            f"{profile.sampler_seed}, point k for trial k, shared by every arm); then multivariate TPE")


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
