"""Reading a run's arms as tests need them: an arm's tuning study and its confirm study as one."""

from __future__ import annotations

from typing import Any

import optuna

from suite.accounting import confirm_study_name
from suite.record import CONFIRM_OF, stored_record
from suite.storage import open_storage


class ArmStudy:
    """An arm's tuning study with its confirm study's trials added (``get_trials``); ``study_name``,
    ``user_attrs``, ``direction`` and the rest are the tuning study's."""

    def __init__(self, store: Any, name: str) -> None:
        self.tuning = optuna.load_study(study_name=name, storage=store)
        try:
            self.confirm: optuna.Study | None = optuna.load_study(study_name=confirm_study_name(name),
                                                                  storage=store)
        except KeyError:
            self.confirm = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tuning, name)

    def get_trials(self, *args: Any, **kwargs: Any) -> list[optuna.trial.FrozenTrial]:
        confirm = self.confirm.get_trials(*args, **kwargs) if self.confirm is not None else []
        return [*self.tuning.get_trials(*args, **kwargs), *confirm]

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.get_trials()


def arm_studies(storage: Any) -> list[ArmStudy]:
    """Every arm study of a storage (a URL, or an opened storage), confirm studies folded in."""
    store = open_storage(storage, heartbeat=False) if isinstance(storage, str) else storage
    return [ArmStudy(store, s.study_name) for s in optuna.get_all_study_summaries(store)
            if CONFIRM_OF not in s.user_attrs]


def record(trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    """The trial's stored record."""
    return stored_record(trial)


def tuning_summaries(store: Any) -> list[optuna.study.StudySummary]:
    """The storage's study summaries without the confirm studies (one per arm study)."""
    return [s for s in optuna.get_all_study_summaries(store) if CONFIRM_OF not in s.user_attrs]
