"""Rank tests over problems (blocks) and solvers (treatments): Friedman with the Iman-Davenport F and
an exact permutation p-value, the Nemenyi critical difference and the groups a CD diagram joins
(pure functions; Demsar 2006)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps


def problem_table(best: pd.DataFrame, problem: Sequence[str], solver: str) -> tuple[pd.DataFrame, pd.Series]:
    """Problems x solvers table of best-arm test means, and each problem's direction.

    Args:
        best: rows of :func:`best_of` grouped by ``[*problem, solver]``.
        problem: columns naming a problem (``["task"]`` or ``["task", "family"]``).
        solver: the column naming a solver (``family`` or ``optimizer``).
    """
    problem = list(problem)
    if best.empty:
        return pd.DataFrame(), pd.Series(dtype=object)
    table = best.pivot_table(index=problem, columns=solver, values="mean", aggfunc="first")
    direction = best.groupby(problem)["direction"].first().reindex(table.index)
    if len(problem) > 1:
        table.index = [" / ".join(map(str, i)) for i in table.index]
        direction.index = table.index
    table.columns = [str(c) for c in table.columns]
    return table, direction


def rank_table(values: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Ranks within each row (block) of a blocks x treatments table: 1 = best, ties averaged."""
    return values.rank(axis=1, ascending=direction != "maximize", method="average")


def orient(values: pd.DataFrame, directions: pd.Series) -> pd.DataFrame:
    """``values`` with the rows of ``minimize`` problems negated, so higher is better in every row.

    Rank-based statistics (Friedman, Nemenyi) can then mix tasks whose metrics point different ways.
    """
    sign = np.where(directions.reindex(values.index) == "minimize", -1.0, 1.0)
    return values.astype(float).mul(sign, axis=0)


def nemenyi_cd(k: int, n: int, *, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks for ``k`` treatments over ``n`` blocks.

    ``CD = q_alpha * sqrt(k (k + 1) / (6 n))`` with ``q_alpha`` the studentized range quantile
    (infinite degrees of freedom) divided by sqrt(2) (Demsar 2006, table 5: 2.343 for k = 3).
    """
    if k < 2 or n < 1:
        raise ValueError(f"Nemenyi CD needs k >= 2 treatments and n >= 1 blocks, got {k=}, {n=}")
    q = sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


@dataclass
class FriedmanResult:
    """Outcome of :func:`friedman`.

    Attributes:
        ran: whether the test could run; when not, ``reason`` says why.
        statistic, pvalue: the Friedman chi-square and its p-value (NaN when not run).
        f_statistic, f_pvalue: the Iman-Davenport F, ``(n - 1) chi2 / (n (k - 1) - chi2)`` on
            ``(k - 1, (k - 1)(n - 1))`` degrees of freedom, and its p-value: less conservative than
            the chi-square (Demsar 2006), so it decides ``significant``.
        k, n: treatments and complete blocks used.
        ranks: average rank per treatment (1 = best), ascending; empty when not run.
        cd: Nemenyi critical difference at ``alpha`` (NaN when not run).
        perm_pvalue: the permutation p-value of the chi-square: every ordering of the values within
            each block equally likely under the null (exact when there are at most
            :data:`PERMUTATIONS` orderings, else that many random ones with a fixed seed). The
            asymptotic p-values mislead with few blocks (two blocks that agree give F = inf, p = 0,
            yet one in k! pairs of random orderings agrees), so this one decides.
        significant: ``perm_pvalue < alpha``; only then may a critical-difference diagram be drawn.
        dropped: blocks left out because a treatment was missing in them.
        left_out: treatments left out to keep a complete sub-table (:func:`complete_subtable`).
    """

    ran: bool
    reason: str | None = None
    statistic: float = math.nan
    pvalue: float = math.nan
    k: int = 0
    n: int = 0
    alpha: float = 0.05
    ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    cd: float = math.nan
    significant: bool = False
    dropped: list = field(default_factory=list)
    f_statistic: float = math.nan
    f_pvalue: float = math.nan
    left_out: list = field(default_factory=list)
    perm_pvalue: float = math.nan


PERMUTATIONS = 9999


def friedman_permutation_pvalue(values: pd.DataFrame, direction: str = "maximize", *,
                                n_resamples: int = PERMUTATIONS, seed: int = 0) -> float:
    """p-value of the Friedman statistic under within-block permutations (blocks are rows).

    The statistic is the sum of squared rank sums, monotone in the chi-square (the tie correction
    is unchanged by permuting within a block). ``scipy.stats.permutation_test`` with
    ``permutation_type="samples"`` permutes each block's values among the treatments; exact when
    ``(k!)^n <= n_resamples``.
    """
    x = values.to_numpy(float)
    if direction != "maximize":
        x = -x

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        data = np.stack(samples, axis=-1)  # (..., n blocks, k treatments)
        ranks = sps.rankdata(data, axis=-1)
        return (ranks.sum(axis=-2) ** 2).sum(axis=-1)

    res = sps.permutation_test([x[:, j] for j in range(x.shape[1])], statistic, permutation_type="samples",
                               vectorized=True, n_resamples=n_resamples, alternative="greater",
                               rng=np.random.default_rng(seed))
    return float(res.pvalue)


def iman_davenport(chi2: float, k: int, n: int) -> tuple[float, float]:
    """Iman-Davenport's F from a Friedman chi-square over ``k`` treatments and ``n`` blocks, and its
    p-value on ``(k - 1, (k - 1)(n - 1))`` degrees of freedom (F is infinite, p 0, when every block
    ranks the treatments alike)."""
    denom = n * (k - 1) - chi2
    if denom <= 0:
        return math.inf, 0.0
    f = (n - 1) * chi2 / denom
    return float(f), float(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))


MAX_SUBSET_TREATMENTS = 16


def complete_subtable(values: pd.DataFrame, *, min_treatments: int = 3, min_blocks: int = 2
                      ) -> tuple[list, list]:
    """The largest complete sub-table of a blocks x treatments table: the treatments and blocks
    (rows with a value for every chosen treatment) that maximise treatments x blocks, with at least
    ``min_treatments`` and ``min_blocks`` (ties: more treatments, then the first in column order).

    Every subset of up to :data:`MAX_SUBSET_TREATMENTS` treatments is tried (exact); with more, the
    treatment with the fewest values is dropped one at a time (greedy). Returns ``([], [])`` when no
    sub-table is that large.
    """
    present = values.notna()
    cols = list(values.columns)
    best: tuple[tuple[int, int], list, list] = ((0, 0), [], [])

    def consider(subset: list) -> None:
        nonlocal best
        rows = list(values.index[present[subset].all(axis=1)])
        if len(subset) >= min_treatments and len(rows) >= min_blocks:
            score = (len(subset) * len(rows), len(subset))
            if score > best[0]:
                best = (score, subset, rows)

    if len(cols) <= MAX_SUBSET_TREATMENTS:
        from itertools import combinations

        for size in range(len(cols), min_treatments - 1, -1):
            for subset in combinations(cols, size):
                consider(list(subset))
    else:
        subset = list(cols)
        while len(subset) >= min_treatments:
            consider(subset)
            subset.remove(min(subset, key=lambda c: (int(present[c].sum()), -cols.index(c))))
    return best[1], best[2]


def friedman(values: pd.DataFrame, direction: str, *, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test of treatments (columns) over blocks (rows) on the largest complete sub-table
    (:func:`complete_subtable`), with the Iman-Davenport F and the Nemenyi CD.

    Treatments and blocks outside that sub-table are listed in ``left_out`` and ``dropped``. It runs
    only with >= 3 treatments and >= 2 complete blocks; otherwise ``ran`` is False and ``reason``
    says why.
    """
    values = values.astype(float)
    if values.shape[1] < 3:
        return FriedmanResult(False, f"needs >= 3 treatments to compare, has {values.shape[1]}",
                              k=values.shape[1], n=int(values.notna().all(axis=1).sum()), alpha=alpha)
    treatments, blocks = complete_subtable(values)
    if not treatments:
        n_full = int(values.notna().all(axis=1).sum())
        return FriedmanResult(False, "needs >= 2 blocks in which >= 3 treatments all ran; no such "
                              f"sub-table among {values.shape[1]} treatments and {len(values)} blocks",
                              k=values.shape[1], n=n_full, alpha=alpha,
                              dropped=[b for b in values.index if not values.loc[b].notna().all()])
    complete = values.loc[blocks, treatments]
    dropped = [b for b in values.index if b not in blocks]
    left_out = [c for c in values.columns if c not in treatments]
    k, n = len(treatments), len(blocks)
    ranks = rank_table(complete, direction).mean(axis=0).sort_values()
    if all(complete.iloc[i].nunique() == 1 for i in range(n)):
        return FriedmanResult(False, "all treatments tie in every block", k=k, n=n, alpha=alpha,
                              ranks=ranks, dropped=dropped, left_out=left_out)
    stat, p = sps.friedmanchisquare(*[complete[c].to_numpy() for c in complete.columns])
    f, fp = iman_davenport(float(stat), k, n)
    pp = friedman_permutation_pvalue(complete, direction)
    return FriedmanResult(True, None, float(stat), float(p), k, n, alpha, ranks,
                          nemenyi_cd(k, n, alpha=alpha), bool(pp < alpha), dropped, f, fp, left_out, pp)


def cd_groups(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of treatments (in rank order) whose average ranks differ by less than ``cd``.

    These are the groups a critical-difference diagram joins with a bar; singletons are left out.
    """
    names, r = list(ranks.index), ranks.to_numpy(float)
    groups: list[tuple[str, ...]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and r[j + 1] - r[i] < cd:
            j += 1
        if j > i and not any(set(names[i:j + 1]) <= set(g) for g in groups):
            groups.append(tuple(names[i:j + 1]))
    return groups
