"""Paired comparisons of arms over shared confirm seeds (pure functions: frames in, frames out).

Every arm of a profile is confirmed on the same seeds (``seed + 1 .. seed + K``), so two arms are
compared on their per-seed differences, which removes the seed-to-seed variance they share:

* the mean difference with a Student-t interval on the differences (``scipy.stats.t``);
* the paired t-test (``scipy.stats.ttest_rel``), the test that decides: with 3 seeds it can reach
  p < 0.05, which rank tests cannot;
* the exact sign-flip permutation test (all ``2**n`` sign assignments of the differences), reported
  beside it: it assumes no normality, but its smallest two-sided p is ``2 / 2**n`` (0.25 with 3
  seeds, 0.0625 with 5), which the sentence says when it limits what can be claimed;
* Holm's step-down correction across the comparisons of one table (:func:`holm`).

Differences are oriented so that a positive value means the first arm is better, whatever the
metric's direction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

MAX_EXACT = 16  # sign flips are enumerated up to 2**16 assignments


def sign_flip_pvalue(diffs: Sequence[float]) -> float:
    """Two-sided exact permutation p-value of the mean of paired differences (sign flips).

    The share of the ``2**n`` sign assignments whose absolute mean is at least the observed one.
    NaN for no differences or more than :data:`MAX_EXACT`.
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0 or n > MAX_EXACT:
        return math.nan
    observed = abs(d.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    means = np.abs((signs * d).mean(axis=1))
    return float(np.mean(means >= observed - 1e-12))


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


def paired_difference(a: Sequence[float], b: Sequence[float], *, direction: str,
                      level: float = 0.95) -> dict[str, float]:
    """Compare arm ``a`` with arm ``b`` on the same seeds (values aligned by seed).

    Args:
        a, b: the metric per shared seed; pairs with a non-finite value are left out.
        direction: ``maximize`` or ``minimize``; the difference is oriented so that > 0 means
            ``a`` is better.
        level: confidence level of the interval.

    Returns:
        ``n`` (pairs), ``mean_a``, ``mean_b``, ``diff`` (oriented mean difference), ``ci_low`` and
        ``ci_high`` (Student-t interval of ``diff``; NaN with fewer than 2 pairs; ``diff`` itself
        when all differences are equal), ``p_t`` (paired t-test, two-sided; 0 or 1 when all
        differences are equal and non-zero or zero), ``p_perm`` (exact sign flips) and
        ``p_perm_min`` (the smallest p the sign-flip test can give with ``n`` pairs).
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be maximize or minimize, got {direction=}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level=}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"a and b must be aligned by seed, got {len(x)} and {len(y)} values")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    sign = 1.0 if direction == "maximize" else -1.0
    d = sign * (x - y)
    n = len(d)
    out = {"n": n, "mean_a": float(x.mean()) if n else math.nan, "mean_b": float(y.mean()) if n else math.nan,
           "diff": float(d.mean()) if n else math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "p_t": math.nan, "p_perm": sign_flip_pvalue(d) if n else math.nan,
           "p_perm_min": 2.0 / 2 ** n if 0 < n <= MAX_EXACT else math.nan}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(out["diff"])):  # equal differences (up to rounding): no spread
        out.update(ci_low=out["diff"], ci_high=out["diff"], p_t=0.0 if out["diff"] != 0 else 1.0)
        return out
    half = float(sps.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n))
    out.update(ci_low=out["diff"] - half, ci_high=out["diff"] + half,
               p_t=float(sps.ttest_rel(sign * x, sign * y).pvalue))
    return out


def pairwise(confirm: pd.DataFrame, arms: pd.DataFrame, *, label: str, level: float = 0.95,
             alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of ``arms`` (rows with the arm columns and ``label``) compared on the seeds both
    confirmed, with Holm's correction across all pairs of the table.

    Args:
        confirm: confirm trials (``task``, ``family``, ``optimizer``, ``regularizers``, ``seed``,
            ``test``, ``direction``).
        arms: the arms to compare (one task), e.g. each family's best arm; ``label`` names a column
            that tells them apart (``family``).
        level, alpha: interval level and significance level after Holm.

    Returns:
        One row per pair (``a`` better or equal first by mean difference): ``a``, ``b``, the
        :func:`paired_difference` fields, ``p_holm`` and ``significant`` (``p_holm < alpha``).
    """
    key = ["task", "family", "optimizer", "regularizers"]
    per_arm = {}
    for _, arm in arms.iterrows():
        rows = confirm.merge(arm[key].to_frame().T, on=key)
        per_arm[str(arm[label])] = rows.groupby("seed")["test"].mean()
    direction = str(arms["direction"].iloc[0]) if len(arms) else "maximize"
    out = []
    for left, right in itertools.combinations(per_arm, 2):
        seeds = sorted(set(per_arm[left].index) & set(per_arm[right].index))
        res = paired_difference(per_arm[left].reindex(seeds), per_arm[right].reindex(seeds),
                                direction=direction, level=level)
        if res["diff"] < 0:  # the better one first
            left, right = right, left
            res = paired_difference(per_arm[left].reindex(seeds), per_arm[right].reindex(seeds),
                                    direction=direction, level=level)
        out.append({"a": left, "b": right, **res})
    cols = ["a", "b", "n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_t", "p_perm", "p_perm_min",
            "p_holm", "significant"]
    frame = pd.DataFrame(out, columns=cols[:-2])
    frame["p_holm"] = holm(frame["p_t"].to_numpy()) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    return frame[cols]
