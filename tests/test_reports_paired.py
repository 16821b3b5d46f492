"""Paired comparisons over units (reports/paired.py) with hand values, scipy and statsmodels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from reports.paired import (
    compare,
    correct,
    detectable_effect,
    holm,
    no_spread,
    p_min,
    pairwise,
    prob_improvement,
    sign_flip_interval,
    sign_flip_pvalue,
)

DATA = pd.read_csv(Path(__file__).parent / "data" / "paired_seeds.csv", comment="#")


def test_sign_flip_test_matches_scipy_exact_permutation_test():
    for other in ("mlp", "rnn"):
        ref = sps.permutation_test((DATA["cnn"].to_numpy(), DATA[other].to_numpy()),
                                   lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                   permutation_type="samples", n_resamples=np.inf)
        assert sign_flip_pvalue(DATA["cnn"] - DATA[other]) == pytest.approx(ref.pvalue)
    assert sign_flip_pvalue([0.1, 0.2, 0.3]) == pytest.approx(0.25)  # 3 units: 2 / 8 at best
    assert [p_min(n) for n in (1, 2, 3, 5, 6)] == [1.0, 0.5, 0.25, 0.0625, 0.03125]


def test_equal_differences_float32_rounded_are_no_spread_and_never_significant_on_two_units():
    """The issue's case: two seeds whose differences are 0.136 up to float32 rounding once gave
    'CI 0.136..0.136, p = 1.4e-07'. Now: no spread, not testable by t, exact p = 0.5, no interval."""
    a = np.array([0.75, 0.7], dtype=np.float32).astype(float)
    b = (a - np.float32(0.136)).astype(np.float32).astype(float)
    assert np.std(a - b) > 0  # rounding leaves a spread a t-test would divide by
    res = compare(a, b, direction="maximize")
    assert res["n"] == 2 and not res["spread"] and res["sd"] == 0
    assert math.isnan(res["p_t"])  # not testable by t
    assert res["p"] == pytest.approx(0.5) and res["p_min"] == 0.5
    assert res["ci_low"] == -math.inf and res["ci_high"] == math.inf
    assert res["diff"] == pytest.approx(0.136, abs=1e-6)


def test_exactly_equal_differences_decide_by_the_exact_test_only():
    """GAN modes 8,8,8 vs 7,7,7: exact, no spread: p = 0.25 (3 units), never 0."""
    res = compare([8, 8, 8], [7, 7, 7], direction="maximize")
    assert not res["spread"] and math.isnan(res["p_t"]) and res["p"] == pytest.approx(0.25)
    six = compare([8] * 6, [7] * 6, direction="maximize")
    assert six["p"] == pytest.approx(1 / 32) and (six["ci_low"], six["ci_high"]) == (1.0, 1.0)


def test_ties_n1_n2_n3():
    tie = compare([0.9, 0.8, 0.7], [0.9, 0.8, 0.7], direction="maximize")
    assert tie["diff"] == 0 and tie["p"] == 1.0 and not tie["spread"] and tie["prob"] == 0.5
    one = compare([0.9], [0.8], direction="maximize")
    assert one["n"] == 1 and one["p"] == 1.0 and math.isinf(one["ci_low"]) and math.isnan(one["p_t"])
    two = compare([0.9, 0.7], [0.8, 0.75], direction="maximize")
    assert two["spread"] and two["p"] == pytest.approx(1.0) and math.isnan(two["p_t"])  # no t on 1 df
    three = compare([0.50, 0.52, 0.49], [0.60, 0.63, 0.61], direction="minimize")
    assert three["diff"] == pytest.approx(0.11) and three["p"] == pytest.approx(0.25)
    assert three["p_t"] < 0.05  # reported beside, never deciding: 3 units cannot reach p < 0.05 exactly
    assert math.isinf(three["ci_low"])
    gaps = compare([0.9, math.nan, 0.7], [0.8, 0.6, 0.5], direction="maximize")
    assert gaps["n"] == 2
    with pytest.raises(ValueError, match="aligned by unit"):
        compare([1.0], [1.0, 2.0], direction="maximize")


def test_interval_inverts_the_test():
    d = (DATA["cnn"] - DATA["mlp"]).to_numpy()
    extra = np.concatenate([d, d[:3] - 0.01])  # 8 units
    low, high = sign_flip_interval(extra)
    assert low < extra.mean() < high
    for c, inside in ((low + 1e-4, True), (high - 1e-4, True), (low - 1e-3, False), (high + 1e-3, False)):
        assert (sign_flip_pvalue(extra - c) >= 0.05) is inside
    assert sign_flip_interval(d) == (-math.inf, math.inf)  # 5 units: the test rejects nothing at 0.05
    assert sign_flip_interval([0.3] * 7) == (0.3, 0.3)


def test_no_spread_is_relative_to_float32_rounding():
    assert no_spread([0.136, 0.136 + 1e-8]) and not no_spread([0.136, 0.137]) and no_spread([5.0])


def test_holm_matches_statsmodels_on_a_known_example():
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    with_nan = holm([0.01, math.nan, 0.04])
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1]) and with_nan[2] == pytest.approx(0.04)
    adjusted, significant, m = correct([0.01, 0.04, 0.03, 0.005])
    assert m == 4 and significant.tolist() == [True, False, False, True]


def test_detectable_effect_grows_as_units_shrink_and_is_none_below_the_exact_floor():
    assert math.isinf(detectable_effect(5, 0.05))  # 2 / 32 > 0.05
    effects = [detectable_effect(n, 0.05) for n in (6, 8, 12)]
    assert effects[0] > effects[1] > effects[2] > 0
    # close to the paired t-test's requirement where the exact test is not limited by its floor
    from statsmodels.stats.power import TTestPower

    t_effect = TTestPower().solve_power(nobs=12, alpha=0.05, power=0.8)
    assert effects[2] == pytest.approx(t_effect, rel=0.25)
    assert detectable_effect(8, 0.05 / 3) > detectable_effect(8, 0.05)  # a correction costs power


def test_prob_improvement_counts_ties_half_and_resamples_whole_units():
    p, low, high = prob_improvement(np.array([1, 1, 0, 2.0]), np.array([0, 1, 1, 1.0]), np.array([0, 0, 1, 1]))
    assert p == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert 0 <= low <= p <= high <= 1
    same = prob_improvement(np.ones(6), np.zeros(6), np.arange(6))
    assert same == (1.0, 1.0, 1.0)


def test_pairwise_over_units_orders_the_better_first():
    long = DATA.melt(id_vars="seed", var_name="family", value_name="score")
    long = long.assign(task="mnist1d", optimizer="adam", regularizers="none", unit=long["seed"], run=long["seed"])
    arms = long.drop_duplicates("family")[["task", "family", "optimizer", "regularizers"]].assign(
        direction="maximize")
    key = ["task", "family", "optimizer", "regularizers"]
    table = pairwise(long.drop(index=[0]), long, arms, label="family", key=key).set_index(["a", "b"])
    assert len(table) == 3 and (table["diff"] >= 0).all()
    row = table.loc[("cnn", "mlp")]
    assert row["n"] == 4 and row["p"] == pytest.approx(2 / 16) and row["prob"] == 1.0
