"""Dolan-More performance profiles of solvers over problems, on normalized regret (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.ranks import problem_table

REGRET_FLOOR = 1e-3


def normalized_regret(values: pd.Series | np.ndarray, ideal: float, baseline: float, *,
                      floor: float = REGRET_FLOOR) -> np.ndarray:
    """Normalized regret ``(ideal - v) / (ideal - baseline)`` of metric values of one problem.

    0 is the ideal value, 1 the trivial predictor's (the task's declared ``baseline``), above 1
    worse than it; the direction is in the scale (RMSE: ideal 0, baseline the naive forecast's).
    Regrets below ``floor`` are raised to it, so a perfect score does not make every other ratio
    infinite. NaN stays NaN (the solver did not run that problem).

    Raises:
        ValueError: ``ideal`` equals ``baseline`` or either is not finite.
    """
    if not (math.isfinite(ideal) and math.isfinite(baseline)) or ideal == baseline:
        raise ValueError(f"a scale needs finite, different ideal and baseline, got {ideal=}, {baseline=}")
    v = np.asarray(values, dtype=float)
    regret = (ideal - v) / (ideal - baseline)
    return np.where(np.isfinite(regret), np.maximum(regret, floor), np.nan)


def regret_table(values: pd.DataFrame, scales: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Problems x solvers table of :func:`normalized_regret`, on the problems every solver ran.

    Args:
        values: problems x solvers metric values (NaN: the solver did not run the problem).
        scales: indexed by problem, columns ``ideal`` and ``baseline``.

    Returns:
        The regret table, the problems left out because a solver did not run them, and those left
        out because their task declares no scale.
    """
    values = values.astype(float)
    sc = scales.reindex(values.index)
    unscaled = [str(i) for i in values.index
                if not (np.isfinite(sc.loc[i, "ideal"]) and np.isfinite(sc.loc[i, "baseline"]))]
    incomplete = [str(i) for i in values.index if str(i) not in unscaled and values.loc[i].isna().any()]
    keep = [i for i in values.index if str(i) not in unscaled and str(i) not in incomplete]
    out = pd.DataFrame({c: pd.Series(dtype=float) for c in values.columns}, index=pd.Index(keep))
    for i in keep:
        out.loc[i] = normalized_regret(values.loc[i].to_numpy(float), float(sc.loc[i, "ideal"]),
                                       float(sc.loc[i, "baseline"]))
    return out.astype(float), incomplete, unscaled


def performance_ratios(costs: pd.DataFrame) -> pd.DataFrame:
    """Dolan-More performance ratios: each cost over the best cost of its problem (row).

    A missing cost (the solver did not run that problem) gives ``inf``.
    """
    best = costs.min(axis=1, skipna=True)
    return costs.div(best, axis=0).fillna(np.inf)


def performance_profile(costs: pd.DataFrame, taus: Sequence[float] | None = None) -> pd.DataFrame:
    """Dolan-More performance profile of solvers (columns) over problems (rows).

    ``rho_s(tau)`` is the fraction of problems on which solver ``s`` is within a factor ``tau`` of
    the best solver: ``|{p : r_ps <= tau}| / n_problems``.

    Args:
        costs: problems x solvers, positive costs (lower is better; see :func:`normalized_regret`).
        taus: the tau values (>= 1); default: 1 and every finite ratio, sorted (the corners of the
            step functions).

    Returns:
        Long frame ``solver``, ``tau``, ``rho``.
    """
    ratios = performance_ratios(costs)
    if taus is None:
        finite = ratios.to_numpy().ravel()
        taus = sorted({1.0, *finite[np.isfinite(finite)].tolist()})
    rows = [(s, float(t), float((ratios[s] <= t).mean())) for s in ratios.columns for t in taus]
    return pd.DataFrame(rows, columns=["solver", "tau", "rho"])


def problem_scales(best: pd.DataFrame, problem: Sequence[str]) -> pd.DataFrame:
    """Each problem's declared ``ideal`` and ``baseline`` (NaN when its records declare none), indexed
    like :func:`problem_table`."""
    problem = list(problem)
    if best.empty:
        return pd.DataFrame(columns=["ideal", "baseline"])
    cols = {c: (best.get(c, np.nan)) for c in ("ideal", "baseline")}
    frame = best[problem].assign(**cols)
    sc = frame.groupby(problem)[["ideal", "baseline"]].first().astype(float)
    if len(problem) > 1:
        sc.index = [" / ".join(map(str, i)) for i in sc.index]
    return sc


@dataclass
class ProfileResult:
    """Outcome of :func:`solver_profile`.

    Attributes:
        profile: :func:`performance_profile` of the solvers; None when it cannot be drawn, and then
            ``reason`` says why: ``solvers`` (fewer than 2 solvers to compare) or ``problems`` (fewer
            than 2 problems that every solver ran, with a declared scale).
        solvers, problems: how many solvers were compared, on how many problems.
        incomplete: problems left out because not every solver ran them.
        unscaled: problems left out because their records declare no ideal and baseline.
    """

    profile: pd.DataFrame | None
    reason: str | None = None
    solvers: int = 0
    problems: int = 0
    incomplete: list[str] = field(default_factory=list)
    unscaled: list[str] = field(default_factory=list)


def solver_profile(best: pd.DataFrame, problem: Sequence[str], solver: str) -> ProfileResult:
    """The performance profile of each ``solver``'s best-arm test mean over the problems, on
    :func:`normalized_regret`: only problems with a declared scale that every solver ran count.

    Args:
        best: one compared arm per (problem, solver) (:func:`reports.selection.solver_best`).
        problem: the columns naming a problem; solver: the column naming a solver.
    """
    values, _ = problem_table(best, problem, solver)
    if values.shape[1] < 2:
        return ProfileResult(None, "solvers", solvers=values.shape[1])
    regrets, incomplete, unscaled = regret_table(values, problem_scales(best, problem))
    result = ProfileResult(None, None, values.shape[1], len(regrets), incomplete, unscaled)
    if len(regrets) < 2:
        result.reason = "problems"
    else:
        result.profile = performance_profile(regrets)
    return result
