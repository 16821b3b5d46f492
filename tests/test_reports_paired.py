"""Paired comparisons over shared seeds (reports/paired.py) against scipy and statsmodels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from reports.paired import holm, paired_difference, pairwise, sign_flip_pvalue

DATA = pd.read_csv(Path(__file__).parent / "data" / "paired_seeds.csv", comment="#")


def test_paired_difference_matches_scipy_t_test_and_interval():
    res = paired_difference(DATA["cnn"], DATA["rnn"], direction="maximize")
    ref = sps.ttest_rel(DATA["cnn"], DATA["rnn"])
    ci = ref.confidence_interval(0.95)
    assert res["n"] == 5
    assert res["diff"] == pytest.approx((DATA["cnn"] - DATA["rnn"]).mean())
    assert res["p_t"] == pytest.approx(ref.pvalue)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_sign_flip_test_matches_scipy_exact_permutation_test():
    for other in ("mlp", "rnn"):
        ref = sps.permutation_test((DATA["cnn"].to_numpy(), DATA[other].to_numpy()),
                                   lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                   permutation_type="samples", n_resamples=np.inf)
        assert sign_flip_pvalue(DATA["cnn"] - DATA[other]) == pytest.approx(ref.pvalue)
    assert sign_flip_pvalue([0.1, 0.2, 0.3]) == pytest.approx(0.25)  # 3 seeds: 2 / 8 at best


def test_minimize_orients_the_difference_and_three_seeds_can_reach_significance_with_t():
    rmse_a, rmse_b = [0.50, 0.52, 0.49], [0.60, 0.63, 0.61]
    res = paired_difference(rmse_a, rmse_b, direction="minimize")
    assert res["diff"] == pytest.approx(0.11)  # a is better: lower error
    assert res["p_t"] < 0.05 and res["p_perm"] == pytest.approx(0.25) and res["p_perm_min"] == 0.25
    swapped = paired_difference(rmse_b, rmse_a, direction="minimize")
    assert swapped["diff"] == pytest.approx(-0.11) and swapped["p_t"] == pytest.approx(res["p_t"])


def test_degenerate_inputs():
    one = paired_difference([0.9], [0.8], direction="maximize")
    assert one["n"] == 1 and math.isnan(one["ci_low"]) and math.isnan(one["p_t"])
    same = paired_difference([0.9, 0.8], [0.8, 0.7], direction="maximize")
    assert same["ci_low"] == same["ci_high"] == pytest.approx(0.1) and same["p_t"] == 0.0
    tied = paired_difference([0.9, 0.8], [0.9, 0.8], direction="maximize")
    assert tied["diff"] == 0 and tied["p_t"] == 1.0
    gaps = paired_difference([0.9, math.nan, 0.7], [0.8, 0.6, 0.5], direction="maximize")
    assert gaps["n"] == 2  # a failed seed has no pair
    with pytest.raises(ValueError, match="aligned by seed"):
        paired_difference([1.0], [1.0, 2.0], direction="maximize")


def test_holm_matches_statsmodels_on_a_known_example():
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    with_nan = holm([0.01, math.nan, 0.04])
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1]) and with_nan[2] == pytest.approx(0.04)


def test_pairwise_table_over_shared_seeds_with_holm():
    long = DATA.melt(id_vars="seed", var_name="family", value_name="test")
    confirm = long.assign(task="mnist1d", optimizer="adam", regularizers="none", direction="maximize")
    arms = confirm.drop_duplicates("family")[["task", "family", "optimizer", "regularizers", "direction"]]
    table = pairwise(confirm.drop(index=[0]), arms, label="family").set_index(["a", "b"])  # cnn seed 1 failed
    assert len(table) == 3
    row = table.loc[("cnn", "mlp")]
    assert row["n"] == 4 and row["significant"]
    assert table["p_holm"].to_numpy() == pytest.approx(multipletests(table["p_t"], method="holm")[1])
    cnn_rnn = table.loc[("cnn", "rnn")] if ("cnn", "rnn") in table.index else table.loc[("rnn", "cnn")]
    assert not cnn_rnn["significant"]
    assert (table["diff"] >= 0).all()  # the better arm first
