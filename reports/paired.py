"""Paired comparisons over independent units (pure functions: arrays and frames in, dicts and frames out).

A *unit* is the smallest independent replicate of an arm's whole protocol:

* with ``studies: N >= 2`` a unit is one study (an independent tuning run, its own sampler stream and
  tuning seed, then its chosen params re-run on the study's confirm seeds); its value is the mean
  over those seeds, so tuning luck lies between units and is inside every interval;
* with one study a unit is one confirm seed; the interval then covers initialisation and batch
  order only, which the sentences say.

Every arm of a profile runs the same units (the same study indices and confirm seeds), so two arms
are compared on their per-unit differences. The test that decides is the exact two-sided sign-flip
permutation test of the mean difference (all ``2**n`` sign assignments; assumes only that the
differences are symmetric about 0 under the null): its smallest p is ``2 / 2**n``, so at least 6
units are needed for p < 0.05. The interval is that test inverted (the shifts it does not reject),
so a finding's interval and its p can never disagree; with fewer than 6 units there is no 95%
interval at all, and the sentences say so instead of printing one.

A spread below the metric's resolution (:data:`RESOLUTION`: float32 rounding) is no spread: a
t-test on it is undefined ("not testable by t"), and it never decides here anyway.

Differences are oriented so that a positive value means the first arm is better.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

MAX_EXACT = 16  # sign flips are enumerated up to 2**16 assignments; beyond, 2**16 random ones
RESOLUTION = 1e-6  # relative: float32 keeps ~7 digits, so spreads below this are rounding noise
POWER = 0.8
BOOTSTRAP_RESAMPLES = 2000
MDE_SIMULATIONS = 2000
MIN_UNITS = 6  # 2 / 2**6 = 0.031: the fewest units that can give an exact two-sided p < 0.05


def no_spread(values: Sequence[float]) -> bool:
    """Whether ``values`` are equal up to :data:`RESOLUTION` (relative to their size, at least 1)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return True
    return float(v.max() - v.min()) <= RESOLUTION * max(1.0, float(np.abs(v).max()))


@functools.lru_cache(maxsize=32)
def _signs(n: int) -> np.ndarray:
    """Every sign assignment of ``n`` values (``2**n x n``), or 2**16 random ones beyond :data:`MAX_EXACT`."""
    if n <= MAX_EXACT:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    rng = np.random.default_rng(0)
    signs = rng.choice((1.0, -1.0), size=(2**MAX_EXACT - 1, n))
    return np.vstack([np.ones((1, n)), signs])  # the observed assignment is one of them


def sign_flip_pvalue(diffs: Sequence[float]) -> float:
    """Two-sided exact permutation p-value of the mean of paired differences (sign flips).

    The share of the ``2**n`` sign assignments whose absolute sum is at least the observed one
    (differences within :data:`RESOLUTION` of 0 count as 0). NaN for no differences; beyond
    :data:`MAX_EXACT` values, ``2**16`` random assignments.
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan
    scale = max(1.0, float(np.abs(d).max()))
    d = np.where(np.abs(d) <= RESOLUTION * scale, 0.0, d)
    sums = np.abs(_signs(n) @ d)
    return float(np.mean(sums >= abs(d.sum()) - 1e-9 * scale))


def p_min(n: int) -> float:
    """The smallest two-sided p the sign-flip test can give with ``n`` units (``2 / 2**n``)."""
    return 2.0 / 2**n if n > 0 else math.nan


def sign_flip_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """The sign-flip test inverted: the centres of symmetry ``c`` whose test of ``values - c`` has
    p >= ``1 - level``.

    ``(-inf, inf)`` when the test cannot reject anything (fewer than :data:`MIN_UNITS` values at
    0.95); ``(x, x)`` when every value is ``x`` and the test can reject (no spread). Found by
    bisection between the mean and the extremes (at most 60 steps a side).
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    alpha = 1 - level
    if n == 0 or p_min(n) >= alpha:
        return -math.inf, math.inf
    centre = float(v.mean())
    if no_spread(v):
        return centre, centre
    tol = RESOLUTION * max(1.0, float(np.abs(v).max()))

    def accepted(c: float) -> bool:
        return sign_flip_pvalue(v - c) >= alpha

    bounds = []
    for far in (float(v.min()) - tol, float(v.max()) + tol):  # beyond the extremes every sign agrees
        inside, outside = centre, far
        for _ in range(60):
            mid = (inside + outside) / 2
            if accepted(mid):
                inside = mid
            else:
                outside = mid
            if abs(outside - inside) <= tol:
                break
        bounds.append(inside)
    return bounds[0], bounds[1]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN and is not counted).

    ``p_(i)`` sorted ascending among the ``m`` finite values is adjusted to
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


@functools.lru_cache(maxsize=256)
def detectable_effect(n: int, alpha: float, *, power: float = POWER) -> float:
    """The smallest mean difference, in standard deviations of the differences, that the sign-flip
    test over ``n`` units detects at level ``alpha`` with probability ``power`` (normal
    differences; Monte Carlo with a fixed seed, :data:`MDE_SIMULATIONS` draws, up to 12 units; beyond,
    the paired t-test's power, which the sign-flip test's approaches; ``inf`` when the test cannot
    reach ``alpha`` with ``n`` units)."""
    if n < 1 or p_min(n) >= alpha:
        return math.inf
    if n > 12:
        from statsmodels.stats.power import TTestPower

        return float(TTestPower().solve_power(nobs=n, alpha=alpha, power=power, alternative="two-sided"))
    signs = _signs(n)
    noise = np.random.default_rng(12345).standard_normal((MDE_SIMULATIONS, n))

    def detected(effect: float) -> float:
        d = noise + effect
        sums = np.abs(d @ signs.T)  # (sims, 2**n)
        observed = np.abs(d.sum(axis=1, keepdims=True))
        p = np.mean(sums >= observed - 1e-9, axis=1)
        return float(np.mean(p < alpha))

    low, high = 0.0, 1.0
    while detected(high) < power:
        low, high = high, high * 2
        if high > 1e4:
            return math.inf
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if detected(mid) < power else (low, mid)
    return high


def prob_improvement(a: np.ndarray, b: np.ndarray, units: np.ndarray, *, level: float = 0.95
                     ) -> tuple[float, float, float]:
    """P(A > B): the share of paired runs in which ``a`` beats ``b`` (ties count one half), with a
    percentile bootstrap interval that resamples whole units (``scipy.stats.bootstrap``), so runs
    of one study move together.

    Args:
        a, b: oriented values per paired run (larger is better).
        units: the unit of each run (a study index or a seed).

    Returns:
        ``(p, low, high)``; the interval is NaN with fewer than 2 units.
    """
    a, b, units = np.asarray(a, float), np.asarray(b, float), np.asarray(units)
    if len(a) == 0:
        return math.nan, math.nan, math.nan
    tol = RESOLUTION * max(1.0, float(np.abs(np.concatenate([a, b])).max()))
    win = np.where(np.abs(a - b) <= tol, 0.5, (a > b).astype(float))
    labels, index = np.unique(units, return_inverse=True)
    wins = np.bincount(index, weights=win)
    counts = np.bincount(index).astype(float)
    p = float(wins.sum() / counts.sum())
    if len(labels) < 2:
        return p, math.nan, math.nan
    if np.ptp(wins / counts) == 0:  # every unit alike: every resample gives the same share
        return p, p, p

    def share(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = idx.astype(int)
        return wins[idx].sum(axis=axis) / counts[idx].sum(axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((np.arange(len(labels)),), share, vectorized=True, method="percentile",
                            confidence_level=level, n_resamples=BOOTSTRAP_RESAMPLES,
                            rng=np.random.default_rng(0))
    return p, float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare(a: Sequence[float], b: Sequence[float], *, direction: str, level: float = 0.95,
            runs: pd.DataFrame | None = None) -> dict[str, float]:
    """Compare arm ``a`` with arm ``b`` on the same units (values aligned by unit).

    Args:
        a, b: the metric per shared unit; pairs with a non-finite value are left out (a failed run
            is scored before it gets here, see :func:`reports.stats.confirm_trials`).
        direction: ``maximize`` or ``minimize``; the difference is oriented so that > 0 means
            ``a`` is better.
        level: confidence level of the interval.
        runs: optional paired runs (columns ``a``, ``b``, ``unit``) for :func:`prob_improvement`;
            default: the units themselves.

    Returns:
        ``n`` (paired units), ``mean_a``, ``mean_b``, ``diff`` (oriented mean difference), ``sd``
        (standard deviation of the differences, 0 when there is no spread), ``spread`` (False when
        the differences are equal up to :data:`RESOLUTION`: "not testable by t"), ``ci_low`` and
        ``ci_high`` (the inverted sign-flip interval; infinite when ``n`` is too small), ``p``
        (exact sign-flip p), ``p_min`` (the smallest p ``n`` units allow), ``p_t`` (paired t-test;
        NaN without spread or with fewer than 3 units), ``prob`` with ``prob_low``/``prob_high``
        (P(a > b) over runs with its bootstrap interval).
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be maximize or minimize, got {direction=}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level=}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"a and b must be aligned by unit, got {len(x)} and {len(y)} values")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    sign = 1.0 if direction == "maximize" else -1.0
    d = sign * (x - y)
    n = len(d)
    spread = n >= 2 and not no_spread(d)
    out = {"n": n, "mean_a": float(x.mean()) if n else math.nan, "mean_b": float(y.mean()) if n else math.nan,
           "diff": float(d.mean()) if n else math.nan, "sd": float(d.std(ddof=1)) if spread else 0.0,
           "spread": spread, "p": sign_flip_pvalue(d), "p_min": p_min(n), "p_t": math.nan}
    out["ci_low"], out["ci_high"] = sign_flip_interval(d, level=level) if n else (math.nan, math.nan)
    if spread and n >= 3:
        out["p_t"] = float(sps.ttest_1samp(d, 0.0).pvalue)
    if runs is not None and len(runs):
        prob = prob_improvement(sign * runs["a"].to_numpy(float), sign * runs["b"].to_numpy(float),
                                runs["unit"].to_numpy(), level=level)
    else:
        prob = prob_improvement(sign * x, sign * y, np.arange(n), level=level)
    out["prob"], out["prob_low"], out["prob_high"] = prob
    return out


COLUMNS = ["a", "b", "n", "mean_a", "mean_b", "diff", "sd", "spread", "ci_low", "ci_high", "p", "p_min",
           "p_t", "prob", "prob_low", "prob_high"]


def pairwise(units: pd.DataFrame, runs: pd.DataFrame, arms: pd.DataFrame, *, label: str, key: Sequence[str],
             level: float = 0.95) -> pd.DataFrame:
    """Every pair of ``arms`` compared on the units both ran (no correction here: the report applies
    Holm over every test of one question, :func:`correct`).

    Args:
        units: one row per (arm, unit): the ``key`` columns, ``unit`` and ``score`` (the unit's test
            value, failures scored, see :func:`reports.stats.confirm_units`).
        runs: one row per confirm run: the ``key`` columns, ``unit``, ``run`` (the run within its
            unit: the seed) and ``score``; for P(A > B).
        arms: the arms to compare (one comparison group) with the ``key`` columns, ``label`` and
            ``direction``.
        label: the column that tells the arms apart (``family``).
        key: the columns that identify an arm.

    Returns:
        One row per pair (the better arm ``a`` first by mean difference) with :func:`compare`'s fields.
    """
    key = list(key)
    per_arm, per_run = {}, {}
    for _, arm in arms.iterrows():
        ident = arm[key].to_frame().T
        per_arm[str(arm[label])] = units.merge(ident, on=key).set_index("unit")["score"]
        per_run[str(arm[label])] = runs.merge(ident, on=key).set_index(["unit", "run"])["score"]
    direction = str(arms["direction"].iloc[0]) if len(arms) else "maximize"
    out = []
    sign = 1.0 if direction == "maximize" else -1.0
    for left, right in itertools.combinations(per_arm, 2):
        shared = sorted(set(per_arm[left].index) & set(per_arm[right].index))
        a, b = per_arm[left].reindex(shared), per_arm[right].reindex(shared)
        if sign * float((a - b).mean()) < 0:  # the better one first, decided before the costly parts
            left, right, a, b = right, left, b, a
        both = per_run[left].to_frame("a").join(per_run[right].to_frame("b"), how="inner").reset_index()
        res = compare(a, b, direction=direction, level=level, runs=both[both["unit"].isin(shared)])
        out.append({"a": left, "b": right, **res})
    return pd.DataFrame(out, columns=COLUMNS)


def correct(p: Sequence[float], *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, int]:
    """Holm over the tests of one question: adjusted p, which are significant, and ``m`` (the number
    of tests corrected for)."""
    adjusted = holm(p)
    return adjusted, adjusted < alpha, int(np.isfinite(np.asarray(p, dtype=float)).sum())
