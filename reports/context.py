"""The data a report is drawn from and the frames its sections share, each computed once.

Every frame here is a call of the statistics layer (:mod:`reports.stats`, :mod:`reports.selection`,
:mod:`reports.findings`); the sections (:mod:`reports.sections`) phrase them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from reports import selection, stats
from reports.findings import comparisons, report_findings
from reports.load import ReportData


@dataclass
class Context:
    """The data and the derived frames the sections share (computed once, on first use)."""

    data: ReportData
    level: float = 0.95
    alpha: float = 0.05
    #: price per hour of machines (``suite report --price-per-hour``; :func:`reports.hardware.machine_prices`)
    prices: dict[str, float] = field(default_factory=dict)

    @cached_property
    def separated(self) -> tuple[pd.DataFrame, list[str]]:
        """The trials with budgets and sources told apart (:func:`reports.selection.separate_arms`)."""
        return selection.separate_arms(self.data.trials)

    @property
    def trials(self) -> pd.DataFrame:
        return self.separated[0]

    @cached_property
    def confirm(self) -> pd.DataFrame:
        return stats.confirm_trials(self.trials)

    @cached_property
    def arms(self) -> pd.DataFrame:
        """Per arm: confirm numbers (failures scored), the selection key, ``tune_best_val``."""
        return stats.arm_summary(self.confirm, level=self.level, tuning=self.trials)

    @cached_property
    def family_arms(self) -> pd.DataFrame:
        """The arms each task's families are compared on (:func:`reports.selection.equal_budget`)."""
        return selection.equal_budget(self.arms, by=["task"], across="family")

    @cached_property
    def family_best(self) -> pd.DataFrame:
        """Each (task, family)'s best arm among :attr:`family_arms` (:func:`reports.selection.best_of`)."""
        return selection.best_of(self.family_arms, ["task", "family"])

    @cached_property
    def family_basis(self) -> pd.DataFrame:
        """How each task's families are compared (:func:`reports.selection.family_basis`)."""
        return selection.family_basis(self.arms, self.family_arms)

    @cached_property
    def optimizer_best(self) -> pd.DataFrame:
        """Each (task, family, optimizer)'s compared arm (:func:`reports.selection.optimizer_best`)."""
        return selection.optimizer_best(self.arms)

    def solver_best(self, solver: str) -> pd.DataFrame:
        """Each solver's compared arm per problem (see :data:`reports.selection.RANKINGS`): families on
        their common arms (:attr:`family_best`), optimizers on their common regularizer sets
        (:attr:`optimizer_best`)."""
        if solver not in ("family", "optimizer"):
            raise ValueError(f"solver must be 'family' or 'optimizer', got {solver=}")
        return self.family_best if solver == "family" else self.optimizer_best

    @cached_property
    def tests(self) -> pd.DataFrame:
        """Every paired test, Holm-corrected per question (:func:`reports.findings.comparisons`)."""
        return comparisons(self.arms, self.family_best, self.confirm, level=self.level, alpha=self.alpha)

    @cached_property
    def findings(self) -> list[dict[str, Any]]:
        """Every task's findings (:func:`reports.findings.report_findings`), also ``findings.json``."""
        return report_findings(self.arms, self.family_best, self.confirm, self.budgets, level=self.level,
                               alpha=self.alpha, tests=self.tests)

    @cached_property
    def budgets(self) -> dict[str, tuple[str | None, str | None]]:
        """Per task: its budget label and benchmark names (joined when several)."""
        out = {}
        for task, g in self.trials.groupby("task", sort=True):
            budget, bench = ({str(v) for v in g[col].dropna()} for col in ("budget", "benchmark"))
            out[str(task)] = (", ".join(sorted(budget)) or None, ", ".join(sorted(bench)) or None)
        return out

    @cached_property
    def tasks(self) -> list[str]:
        return sorted(self.trials["task"].dropna().astype(str).unique())

    def task_info(self, task: str) -> tuple[str, str, float]:
        """Metric, direction and target of ``task`` (from its trials)."""
        t = self.trials[self.trials["task"] == task]
        metric = t["metric"].dropna()
        direction = t["direction"].dropna()
        target = t["target"].dropna()
        return (str(metric.iloc[0]) if len(metric) else "metric",
                str(direction.iloc[0]) if len(direction) else "maximize",
                float(target.iloc[0]) if len(target) else math.nan)

    def best_trials(self, best: pd.DataFrame) -> pd.DataFrame:
        """The confirm trials of the arms in ``best``."""
        return self.confirm.merge(best[stats.ARM], on=stats.ARM)
