"""Statistics of the report against hand-computed values on the checked-in data in tests/data/."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports import costs, inventory, profiles, ranks, selection, stats, tuning
from reports.load import parse_source
from reports.rows import regs_name, trial_row
from suite.errors import SuiteError
from suite.storage import mask_url

DATA = Path(__file__).parent / "data"


def test_mean_ci_matches_hand_computed_t_interval():
    df = pd.read_csv(DATA / "report_ci.csv")
    ci = stats.mean_ci(df, ["arm"], "value").set_index("arm")
    # a: 0.80, 0.82, 0.84 -> mean 0.82, s = 0.02, t(0.975, 2) = 4.302653, half = 4.302653 * 0.02 / sqrt(3)
    assert ci.loc["a", "n"] == 3
    assert ci.loc["a", "mean"] == pytest.approx(0.82)
    assert ci.loc["a", "std"] == pytest.approx(0.02)
    assert ci.loc["a", "half_width"] == pytest.approx(0.049683, abs=1e-6)
    assert ci.loc["a", "ci_low"] == pytest.approx(0.82 - 0.049683, abs=1e-6)
    # b: 0.5, 0.7 -> s = 0.141421, t(0.975, 1) = 12.706205, half = 12.706205 * 0.141421 / sqrt(2) = 1.270620
    assert ci.loc["b", "half_width"] == pytest.approx(1.270620, abs=1e-6)
    assert ci.loc["b", "ci_high"] == pytest.approx(0.6 + 1.270620, abs=1e-6)
    # c: the NaN is left out; one value has no interval
    assert ci.loc["c", "n"] == 1
    assert ci.loc["c", "mean"] == pytest.approx(0.9)
    assert math.isnan(ci.loc["c", "half_width"])
    with pytest.raises(ValueError, match="level"):
        stats.mean_ci(df, ["arm"], "value", level=95)


def test_friedman_and_nemenyi_match_hand_computed_values():
    table = pd.read_csv(DATA / "report_friedman.csv", index_col="block")
    res = ranks.friedman(table, "maximize")
    # b5 lacks B: dropped. Ranks per block (1 = best): b1 1,2,3; b2 2,1,3; b3 1,2,3; b4 1,3,2
    assert res.ran and res.dropped == ["b5"]
    assert (res.k, res.n) == (3, 4)
    assert res.ranks.to_dict() == pytest.approx({"A": 1.25, "B": 2.0, "C": 2.75})
    # chi2 = 12 / (n k (k+1)) * (5^2 + 8^2 + 11^2) - 3 n (k+1) = 0.25 * 210 - 48 = 4.5; p = exp(-4.5 / 2)
    assert res.statistic == pytest.approx(4.5)
    assert res.pvalue == pytest.approx(math.exp(-2.25))
    # Iman-Davenport: F = (n - 1) chi2 / (n (k - 1) - chi2) = 3 * 4.5 / 3.5 on (2, 6) df; for F(2, d)
    # the survival function is (1 + 2 F / d) ** (-d / 2)
    assert res.f_statistic == pytest.approx(13.5 / 3.5)
    assert res.f_pvalue == pytest.approx((1 + 2 * (13.5 / 3.5) / 6) ** -3)
    # exact within-block permutation p-value: 6^4 orderings, P(chi2 >= 4.5) = 0.125 for k = 3, n = 4
    # (the exact Friedman table, e.g. Hollander & Wolfe)
    assert res.perm_pvalue == pytest.approx(0.125)
    assert not res.significant and res.left_out == []
    # CD = q(0.05, 3, inf) / sqrt(2) * sqrt(3 * 4 / (6 * 4)) = 2.343701 * 0.707107 (Demsar 2006, table 5)
    assert res.cd == pytest.approx(1.657247, abs=1e-5)
    assert ranks.cd_groups(res.ranks, res.cd) == [("A", "B", "C")]
    # ranks for a metric to minimize are reversed
    low = ranks.friedman(table, "minimize")
    assert low.ranks.to_dict() == pytest.approx({"C": 1.25, "B": 2.0, "A": 2.75})


def test_friedman_says_why_it_cannot_run():
    table = pd.read_csv(DATA / "report_friedman.csv", index_col="block")
    two = ranks.friedman(table[["A", "B"]], "maximize")
    assert not two.ran and "3 treatments" in two.reason
    one_block = ranks.friedman(table.loc[["b1", "b5"]], "maximize")
    assert not one_block.ran and "no such sub-table" in one_block.reason
    ties = ranks.friedman(pd.DataFrame({"A": [1, 2], "B": [1, 2], "C": [1, 2]}), "maximize")
    assert not ties.ran and "tie" in ties.reason


def test_friedman_runs_on_the_largest_complete_subtable():
    # D ran only on b1: the 3 x 4 table without D (12 cells) beats the 4 x 1 one with it
    table = pd.DataFrame({"A": [0.9, 0.8, 0.7, 0.6], "B": [0.8, 0.9, 0.6, 0.5], "C": [0.7, 0.7, 0.5, 0.4],
                          "D": [0.95, None, None, None]}, index=["t1", "t2", "t3", "t4"])
    res = ranks.friedman(table, "maximize")
    assert res.ran and (res.k, res.n) == (3, 4) and res.left_out == ["D"] and res.dropped == []
    # a treatment missing in one block of five: keeping it (4 x 4 = 16) beats dropping it (3 x 5)
    table5 = pd.concat([table.assign(D=[0.95, 0.1, 0.2, 0.3]),
                        pd.DataFrame({"A": [0.5], "B": [0.4], "C": [0.3], "D": [None]}, index=["t5"])])
    res5 = ranks.friedman(table5, "maximize")
    assert (res5.k, res5.n, res5.dropped, res5.left_out) == (4, 4, ["t5"], [])
    assert ranks.complete_subtable(table5.iloc[:1]) == ([], [])
    # every block ranking alike: F is infinite and p = 0, but with 2 blocks one in 3! pairs of random
    # orderings agrees: the permutation p-value is 1/6 and decides (no rejection); with 3 blocks 1/36
    same = pd.DataFrame({"A": [3, 3, 3], "B": [2, 2, 2], "C": [1, 1, 1]}, dtype=float)
    assert ranks.iman_davenport(6.0, 3, 3) == (math.inf, 0.0)
    two = ranks.friedman(same.iloc[:2], "maximize")
    assert two.f_pvalue == 0.0 and two.perm_pvalue == pytest.approx(1 / 6) and not two.significant
    three = ranks.friedman(same, "maximize")
    assert three.perm_pvalue == pytest.approx(1 / 36) and three.significant


def test_nemenyi_cd_table_values():
    # Demsar 2006 table 5a: q_0.05 = 2.343 (k=3), 2.569 (k=4), 2.728 (k=5)
    assert ranks.nemenyi_cd(3, 1) == pytest.approx(2.343 * math.sqrt(2), abs=2e-3)
    assert ranks.nemenyi_cd(4, 10) == pytest.approx(2.569 * math.sqrt(20 / 60), abs=1e-3)
    assert ranks.nemenyi_cd(5, 6) == pytest.approx(2.728 * math.sqrt(30 / 36), abs=1e-3)
    with pytest.raises(ValueError, match="k >= 2"):
        ranks.nemenyi_cd(1, 5)


def test_cd_groups_split_distant_treatments():
    avg = pd.Series({"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2})
    assert ranks.cd_groups(avg, 1.0) == [("a", "b"), ("c", "d")]


def test_performance_profile_matches_hand_computed_fractions():
    costs = pd.read_csv(DATA / "report_profile.csv", index_col="problem")
    ratios = profiles.performance_ratios(costs)
    # p1: X 0.1 best, Y 0.2 -> 2; p2: Y 0.15 best, X 0.3 -> 2; p3: Y missing -> inf
    assert ratios["X"].tolist() == pytest.approx([1, 2, 1])
    assert ratios["Y"].tolist()[:2] == pytest.approx([2, 1]) and math.isinf(ratios.loc["p3", "Y"])
    prof = profiles.performance_profile(costs)
    rho = {(r.solver, r.tau): r.rho for r in prof.itertuples()}
    assert sorted(prof["tau"].unique()) == [1.0, 2.0]
    assert rho[("X", 1.0)] == pytest.approx(2 / 3) and rho[("X", 2.0)] == pytest.approx(1)
    assert rho[("Y", 1.0)] == pytest.approx(1 / 3) and rho[("Y", 2.0)] == pytest.approx(2 / 3)
    custom = profiles.performance_profile(costs, taus=[1.5, 4])
    assert custom[custom["solver"] == "Y"]["rho"].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_normalized_regret_on_declared_scales():
    # accuracy, chance 0.1: (1 - v) / 0.9; a perfect score is floored, not zero
    assert profiles.normalized_regret([0.91, 0.1, 1.0], 1.0, 0.1).tolist() == pytest.approx(
        [0.1, 1.0, profiles.REGRET_FLOOR])
    # RMSE, ideal 0, naive forecast 0.88: v / 0.88; worse than the baseline is above 1
    assert profiles.normalized_regret([0.44, 1.76, np.nan], 0.0, 0.88)[:2].tolist() == pytest.approx([0.5, 2.0])
    assert np.isnan(profiles.normalized_regret([np.nan], 0.0, 0.88)[0])
    # ring-gan modes, ideal 8, baseline 0: every value of 0..8 has a regret (no ValueError)
    assert profiles.normalized_regret([0.0, 1.0, 8.0], 8.0, 0.0).tolist() == pytest.approx(
        [1.0, 7 / 8, profiles.REGRET_FLOOR])
    with pytest.raises(ValueError, match="ideal"):
        profiles.normalized_regret([0.5], 1.0, 1.0)


def test_regret_table_keeps_the_problems_every_solver_ran():
    values = pd.DataFrame({"X": [0.0, 0.91, 0.5, 0.4], "Y": [8.0, 0.82, np.nan, 0.3]},
                          index=["ring-gan", "digits", "sunspots", "mystery"])
    scales = pd.DataFrame({"ideal": [8.0, 1.0, 0.0, np.nan], "baseline": [0.0, 0.1, 0.88, np.nan]},
                          index=values.index)
    table, incomplete, unscaled = profiles.regret_table(values, scales)
    assert list(table.index) == ["ring-gan", "digits"] and incomplete == ["sunspots"] and unscaled == ["mystery"]
    assert table.loc["ring-gan"].tolist() == pytest.approx([1.0, profiles.REGRET_FLOOR])
    assert table.loc["digits"].tolist() == pytest.approx([0.1, 0.2])
    prof = profiles.performance_profile(table)
    rho = {(r.solver, r.tau): r.rho for r in prof.itertuples()}
    assert rho[("X", 1.0)] == pytest.approx(0.5) and rho[("Y", 1.0)] == pytest.approx(0.5)


def test_pareto_front_matches_hand_marked_points():
    df = pd.read_csv(DATA / "report_pareto.csv")
    front = costs.pareto_front(df, "energy_kwh", "accuracy", "maximize")
    assert front.tolist() == df["front"].tolist()
    # minimizing the score: lowest accuracy at lowest cost is e (0.5, 0.70); h (0.7, 0.70) is dominated
    low = costs.pareto_front(df, "energy_kwh", "accuracy", "minimize")
    assert df["name"][low].tolist() == ["e"]


def test_time_and_energy_to_target_and_per_sample_energy():
    t = pd.DataFrame({"energy_kwh": [0.01, 0.01, np.nan], "time_to_target_s": [30.0, np.nan, 10.0],
                      "fit_s": [60.0, 60.0, 20.0], "samples": [5000.0, 0.0, 100.0]})
    out = stats.to_target(t)
    assert out["reached"].tolist() == [True, False, True]
    assert out["energy_to_target_kwh"].iloc[0] == pytest.approx(0.005)  # 0.01 * 30 / 60
    assert np.isnan(out["energy_to_target_kwh"].iloc[1]) and np.isnan(out["energy_to_target_kwh"].iloc[2])


def arm_rows(**cols) -> pd.DataFrame:
    """A small arm-summary-like frame: one task ``t``, columns given as lists."""
    n = len(next(iter(cols.values())))
    base = {"task": ["t"] * n, "family": ["mlp"] * n, "regularizers": ["none"] * n,
            "direction": ["maximize"] * n}
    return pd.DataFrame(base | cols)


def test_best_of_chooses_on_the_confirm_validation_mean_never_on_tuning_luck_or_test():
    # the tuning trial's value says adam (one lucky seed); the confirm units' validation says sgd:
    # the one selection rule of the report is the confirm validation mean
    arms = arm_rows(optimizer=["adam", "sgd"], tune_best_val=[0.90, 0.85], val_mean=[0.80, 0.95],
                    mean=[0.97, 0.70], failed=[0, 0])
    best = selection.best_of(arms, ["task", "family"])
    assert best["optimizer"].tolist() == ["sgd"]  # though adam's test mean is higher
    assert best["selected_on"].tolist() == ["confirm"] and best["select_key"].tolist() == [0.95]
    low = selection.best_of(arms.assign(direction="minimize"), ["task", "family"])
    assert low["optimizer"].tolist() == ["adam"]  # 0.80 < 0.95
    tie = selection.best_of(arms.assign(val_mean=[0.9, 0.9], failed=[1, 0]), ["task", "family"])
    assert tie["optimizer"].tolist() == ["sgd"]  # a tie goes to fewer failed runs


def test_best_of_never_falls_back_to_the_test_metric():
    # momentum has the best test mean but no validation value at all: it is not eligible
    arms = arm_rows(optimizer=["adam", "sgd", "momentum"], tune_best_val=[0.70, np.nan, np.nan],
                    val_mean=[0.60, 0.65, np.nan], mean=[0.50, 0.55, 0.99])
    keys = selection.selection_keys(arms)
    assert keys["selected_on"].tolist() == ["confirm", "confirm", None]
    assert keys["select_key"].tolist()[:2] == [0.60, 0.65] and math.isnan(keys["select_key"].iloc[2])
    assert selection.best_of(arms, ["task", "family"])["optimizer"].tolist() == ["sgd"]
    # a group whose arms have no validation value anywhere is left out, not chosen on test
    none = selection.best_of(arms.assign(val_mean=np.nan), ["task", "family"])
    assert none.empty and {"select_key", "selected_on"} <= set(none.columns)


def tuning_trials() -> pd.DataFrame:
    rows = [  # (optimizer, phase, state, val, direction)
        ("adam", "tune", "COMPLETE", 0.80, "maximize"),
        ("adam", "tune", "COMPLETE", 0.85, "maximize"),
        ("adam", "tune", "PRUNED", 0.99, "maximize"),  # pruned: not a tuning result
        ("adam", "tune", "COMPLETE", np.nan, "maximize"),  # no validation value
        ("adam", "confirm", "COMPLETE", 0.97, "maximize"),  # confirm: never the key
        ("sgd", "tune", "COMPLETE", 0.40, "minimize"),
        ("sgd", "tune", "COMPLETE", 0.30, "minimize"),
        ("sgd", "confirm", "COMPLETE", 0.10, "minimize"),
        ("momentum", "confirm", "COMPLETE", 0.90, "maximize"),  # no tuning trial at all
    ]
    t = pd.DataFrame(rows, columns=["optimizer", "phase", "state", "val", "direction"])
    return t.assign(task="t", family="mlp", regularizers="none", test=t["val"] - 0.01, metric="accuracy",
                    gap_final=0.0, n_params=1.0, fit_s=1.0, samples_per_s=1.0, energy_kwh=np.nan,
                    emissions_kg=np.nan, time_to_target_s=np.nan)


def test_tune_best_val_reads_only_complete_tuning_trials():
    t = tuning_trials()
    tb = stats.tune_best_val(t).set_index("optimizer")
    assert tb.loc["adam", "tune_best_val"] == pytest.approx(0.85)  # not the pruned 0.99, not confirm 0.97
    assert tb.loc["adam", "n_tune"] == 2
    assert tb.loc["sgd", "tune_best_val"] == pytest.approx(0.30)  # minimize: the smallest
    assert "momentum" not in tb.index
    summary = stats.arm_summary(stats.confirm_trials(t), tuning=t).set_index("optimizer")
    assert summary.loc["adam", "tune_best_val"] == pytest.approx(0.85)
    assert summary.loc["adam", "val_mean"] == pytest.approx(0.97)
    assert math.isnan(summary.loc["momentum", "tune_best_val"]) and summary.loc["momentum", "n_tune"] == 0
    assert stats.arm_summary(stats.confirm_trials(t))["tune_best_val"].isna().all()


def test_an_arm_standing_for_its_defaults_is_keyed_by_the_defaults_tuning_value():
    t = tuning_trials()
    first = t.index[(t["optimizer"] == "adam") & (t["phase"] == "tune")][0]  # val 0.80: the defaults
    t = t.assign(chosen=None)
    t.loc[t["optimizer"] == "adam", "chosen"] = False
    t.loc[first, "chosen"] = True  # confirm validation chose the defaults over the 0.85 trial
    tb = stats.tune_best_val(t).set_index("optimizer")
    assert tb.loc["adam", "tune_best_val"] == pytest.approx(0.80)
    assert tb.loc["sgd", "tune_best_val"] == pytest.approx(0.30)  # no choice recorded: the best
    confirm_of_other = t.index[(t["optimizer"] == "adam") & (t["phase"] == "confirm")]
    t.loc[confirm_of_other, "chosen"] = False  # a confirm run of the candidate not chosen
    assert "adam" not in set(stats.confirm_trials(t)["optimizer"])


def test_families_are_compared_on_their_common_arms():
    rows = [  # (task, family, optimizer, regularizers, val_mean: the selection key)
        ("a", "mlp", "adam", "none", 0.80), ("a", "mlp", "adam", "dropout", 0.99),
        ("a", "mlp", "sgd", "none", 0.70), ("a", "mlp", "sgd", "dropout", 0.90),
        ("a", "cnn", "adam", "none", 0.85), ("a", "cnn", "sgd", "dropout", 0.80),
        ("a", "rnn", "adam", "none", 0.60), ("a", "rnn", "sgd", "dropout", 0.50),
        ("b", "mlp", "adam", "none", 0.80), ("b", "mlp", "sgd", "none", 0.90),
        ("b", "rnn", "momentum", "none", 0.70),
    ]
    arms = pd.DataFrame(rows, columns=[*stats.ARM, "val_mean"]).assign(direction="maximize")
    common = selection.common_arms(arms)
    assert common.values.tolist() == [["a", "adam", "none"], ["a", "sgd", "dropout"]]
    fair = selection.equal_budget(arms)
    a = fair[fair["task"] == "a"]
    assert a["common"].all() and len(a) == 6  # mlp's adam / dropout and sgd / none are left out
    assert a.groupby("family")["n_arms"].first().to_dict() == {"cnn": 2, "mlp": 4, "rnn": 2}
    best = selection.best_of(fair, ["task", "family"]).set_index(["task", "family"])
    # mlp's best arm overall is adam / dropout (0.99), not a common arm: its best common one is chosen
    assert selection.best_of(arms, ["task", "family"]).set_index(["task", "family"]).loc[
        ("a", "mlp"), "regularizers"] == "dropout"
    assert tuple(best.loc[("a", "mlp"), ["optimizer", "regularizers"]]) == ("sgd", "dropout")
    assert tuple(best.loc[("a", "cnn"), ["optimizer", "regularizers"]]) == ("adam", "none")
    # task b shares no arm: every arm kept, flagged, and each family's best of its own arms
    b = fair[fair["task"] == "b"]
    assert len(b) == 3 and not b["common"].any()
    assert best.loc[("b", "mlp"), "optimizer"] == "sgd" and best.loc[("b", "rnn"), "optimizer"] == "momentum"
    assert selection.common_arms(arms[arms["task"] == "b"]).empty


def test_a_familys_best_arm_outside_the_common_arms_is_not_chosen():
    # mlp's best validation is adam / dropout, which rnn never ran: mlp is represented by adam / none
    arms = arm_rows(family=["mlp", "mlp", "rnn"], optimizer=["adam"] * 3,
                    regularizers=["dropout", "none", "none"], tune_best_val=[0.95, 0.80, 0.85],
                    val_mean=[0.95, 0.80, 0.85], mean=[0.95, 0.80, 0.85])
    assert selection.best_of(arms, ["task", "family"])["regularizers"].tolist() == ["dropout", "none"]
    best = selection.best_of(selection.equal_budget(arms), ["task", "family"])
    assert best[["family", "regularizers"]].values.tolist() == [["mlp", "none"], ["rnn", "none"]]
    # across optimizers within a family: the regularizer sets every optimizer ran
    by_opt = selection.common_arms(arms.assign(optimizer=["adam", "adam", "sgd"], family="mlp"),
                                   by=["task", "family"], across="optimizer")
    assert by_opt["regularizers"].tolist() == ["none"]


def test_epoch_totals_count_pruned_trials_by_the_epochs_they_ran():
    t = pd.DataFrame({"state": ["PRUNED"] * 10 + ["COMPLETE", "FAIL"],
                      "epochs": [20.0] * 12, "epochs_run": [2.0] * 10 + [20.0, np.nan]})
    tot = inventory.epoch_totals(t)
    assert tot["epochs_run"] == 40 and tot["epochs_run_pruned"] == 20
    assert tot["full_trials"] == pytest.approx(2.0)  # 10 pruned after 2 of 20 epochs = 1 trial, + 1
    assert (tot["recorded"], tot["trials"]) == (11, 12)
    assert inventory.epoch_totals(t.iloc[:10])["full_trials"] == pytest.approx(1.0)


def test_search_spaces_per_benchmark_from_records_and_protocol():
    trials = pd.DataFrame({"benchmark": ["quick", "quick", "quick", "full", None],
                           "space": ["core", "core", "full", None, None]})
    studies = pd.DataFrame({"benchmark": ["quick", "full", "old"],
                            "protocol": [{"space": "core"}, {"space": "full", "sampler": "tpe"}, {}]})
    out = inventory.search_spaces(trials, studies).set_index("benchmark")
    assert out.loc["quick", "records"] == "core (2 trials), full (1 trial)"
    assert out.loc["quick", "protocol"] == "core"
    assert pd.isna(out.loc["full", "records"]) and out.loc["full", "protocol"] == "full"
    assert out.loc["old"].isna().all() and out.loc["unknown"].isna().all()


def test_orient_negates_minimize_rows():
    values = pd.DataFrame({"X": [0.9, 0.3]}, index=["acc", "rmse"])
    out = ranks.orient(values, pd.Series({"acc": "maximize", "rmse": "minimize"}))
    assert out["X"].tolist() == [0.9, -0.3]


def test_trial_row_is_robust_to_missing_fields():
    row = trial_row(None, study="s", study_attrs={"task": "digits", "family": "mlp", "optimizer": "adam",
                                                  "regularizers": [], "direction": "maximize"},
                    number=3, state="FAIL")
    assert (row["task"], row["family"], row["regularizers"], row["status"]) == ("digits", "mlp", "none", "failed")
    assert math.isnan(row["test"]) and row["machine"] is None
    rec = {"task": "digits", "metrics": {"test/accuracy": 0.9}, "primary": {"metric": "accuracy",
           "epochs_to_target": 2, "time_to_target_s": None}, "curves": {"time_s": [1.0, 2.5, 4.0]},
           "params": {"lr": "bad"}, "energy": None, "hardware": {"device_type": "cuda", "gpu_model": "H100"},
           "started_at": "not a date", "regularizers": ["dropout", "l2"]}
    row = trial_row(rec, study="s")
    assert row["test"] == pytest.approx(0.9)  # from metrics when primary.value is missing
    assert row["time_to_target_s"] == pytest.approx(2.5)  # curves time_s at epochs_to_target
    assert math.isnan(row["lr"]) and math.isnan(row["energy_kwh"])
    assert row["machine"] == "cuda: H100" and row["regularizers"] == "dropout+l2"
    assert row["started_at"] is pd.NaT and row["space"] is None
    assert trial_row({"space": "full"})["space"] == "full"


def test_sources_are_parsed_and_passwords_masked(tmp_path):
    assert mask_url("postgresql+psycopg2://user:s3cret@db.example:5432/optuna") == \
        "postgresql+psycopg2://user:***@db.example:5432/optuna"
    src = parse_source("postgresql://user:s3cret@localhost/db")
    assert src.kind == "rdb" and "s3cret" not in src.label and src.target.endswith("@localhost/db")
    (tmp_path / "run").mkdir()
    with pytest.raises(SuiteError, match="no optuna.db"):
        parse_source(str(tmp_path / "run"))
    (tmp_path / "run" / "optuna.db").touch()
    run = parse_source(str(tmp_path / "run"))
    assert run.kind == "run" and run.target == f"sqlite:///{(tmp_path / 'run' / 'optuna.db').resolve()}"
    with pytest.raises(SuiteError, match="does not exist"):
        parse_source(str(tmp_path / "missing.jsonl"))
    with pytest.raises(SuiteError, match="not a run folder"):
        parse_source(str(tmp_path / "nothing"))
    assert regs_name(["dropout", "l2"]) == "dropout+l2" and regs_name(None) == "none"


def test_reports_never_imports_training_code():
    """Every module of reports (every section too) imported: no training code comes with them."""
    code = ("import importlib, pkgutil, sys, reports\n"
            "names = [m.name for m in pkgutil.walk_packages(reports.__path__, 'reports.')]\n"
            "assert 'reports.render' in names and 'reports.sections.leaderboard' in names, names\n"
            "for name in names: importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'tasks') or "
            "m.startswith(('suite.train', 'suite.module', 'suite.families', 'suite.tune')))\n"
            "print(bad); assert not bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_an_arm_with_one_seed_is_marked_and_never_gets_a_zero_width_bar():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reports.blocks import ci_text
    from reports.figures import _points_with_ci

    summary = pd.DataFrame({"family": ["cnn", "mlp"], "n": [6, 1], "mean": [0.9, 0.7],
                            "half_width": [0.02, np.nan], "ci_low": [0.88, np.nan], "ci_high": [0.93, np.nan]})
    trials = pd.DataFrame({"family": ["cnn"] * 6 + ["mlp"], "test": [0.89, 0.9, 0.91, 0.88, 0.92, 0.9, 0.7]})
    fig, ax = plt.subplots()
    _points_with_ci(ax, trials, summary, "family", {"cnn": "C0", "mlp": "C1"})
    (bars,) = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    (segments,) = [seg for seg in bars.lines[2]]  # the vertical bar collection
    assert len(segments.get_segments()) == 1  # cnn's interval only
    assert [t.get_text() for t in ax.texts] == ["1 unit"]
    (low, high), = segments.get_segments()[0][:, 1].reshape(1, 2)
    assert (low, high) == pytest.approx((0.88, 0.93))  # the exact interval is not symmetric
    plt.close(fig)
    assert ci_text(summary.iloc[1]) == "none from 1 unit (needs 6)" and ci_text(summary.iloc[0]) == "[0.88, 0.93]"


def test_failed_confirm_seeds_are_counted_not_dropped():
    t = tuning_trials().assign(started_at=pd.Timestamp("2026-12-01", tz="UTC"), status="complete", chosen=None)
    extra = t[(t["optimizer"] == "adam") & (t["phase"] == "confirm")].assign(
        state="FAIL", status="diverged", test=np.nan, val=np.nan)
    killed = extra.assign(started_at=pd.NaT)  # killed before recording: requeued, not a result
    t = pd.concat([t, extra, killed], ignore_index=True)
    fails = stats.confirm_failures(t).set_index("optimizer")
    assert fails.loc["adam", "runs"] == 2 and fails.loc["adam", "failed"] == 1
    summary = stats.arm_summary(stats.confirm_trials(t), tuning=t).set_index("optimizer")
    assert summary.loc["adam", "failed"] == 1 and summary.loc["adam", "runs"] == 2
    assert summary.loc["sgd", "failed"] == 0 and summary.loc["sgd", "runs"] == 1


def test_a_failed_seed_lowers_its_arm():
    """A diverged seed is scored at the metric's worst bound (accuracy 0), in the mean, the units and
    the selection key; never dropped so that the survivors stand for the arm."""
    runs = pd.DataFrame({"task": "t", "family": "mlp", "optimizer": "adam", "regularizers": "none",
                         "phase": "confirm", "state": ["COMPLETE", "COMPLETE", "FAIL"],
                         "status": ["complete", "complete", "diverged"], "seed": [1, 2, 3],
                         "test": [0.9, 0.8, np.nan], "val": [0.88, 0.82, np.nan], "direction": "maximize",
                         "metric": "accuracy", "low": 0.0, "high": 1.0, "baseline": 0.1, "ideal": 1.0,
                         "started_at": pd.Timestamp("2026-12-01", tz="UTC"), "gap_final": 0.0,
                         "n_params": 1.0, "fit_s": 1.0, "samples_per_s": 1.0, "energy_kwh": np.nan,
                         "emissions_kg": np.nan, "time_to_target_s": np.nan})
    conf = stats.confirm_trials(runs)
    assert conf["failed"].tolist() == [False, False, True] and conf["test"].tolist() == [0.9, 0.8, 0.0]
    s = stats.arm_summary(conf).iloc[0]
    assert s["mean"] == pytest.approx(1.7 / 3) and s["val_mean"] == pytest.approx(1.7 / 3)
    assert (s["n"], s["runs"], s["failed"]) == (3, 3, 1)
    # an unbounded metric (RMSE): the worse of the trivial baseline and the worst value seen
    rmse = runs.assign(direction="minimize", metric="rmse", high=np.inf, baseline=1.5,
                       test=[0.9, 2.0, np.nan], val=[0.8, 1.0, np.nan])
    assert stats.confirm_trials(rmse)["test"].tolist() == [0.9, 2.0, 2.0]
    assert stats.worst_values(rmse.assign(test=[0.9, 1.0, np.nan]))["t"] == 1.5


def test_tuning_curves_count_every_trial_and_improve_only_on_complete_ones():
    t = tuning_trials().assign(number=range(9))
    curves = tuning.tuning_curves(t)
    adam = curves[curves["optimizer"] == "adam"]
    # trials 1..4: 0.80, 0.85, pruned 0.99 (counts as run, never the best), no value
    assert adam["trials"].tolist() == [1, 2, 3, 4]
    assert adam["best"].tolist() == pytest.approx([0.80, 0.85, 0.85, 0.85])
    sgd = curves[curves["optimizer"] == "sgd"]
    assert sgd["best"].tolist() == pytest.approx([0.40, 0.30])  # minimize: the smallest so far
    assert "momentum" not in set(curves["optimizer"])  # no tuning trial


def test_selection_optimism_is_oriented_by_direction():
    summary = pd.DataFrame({"task": "t", "family": "mlp", "optimizer": ["adam", "sgd"], "regularizers": "none",
                            "metric": ["accuracy", "rmse"], "direction": ["maximize", "minimize"], "n": 3,
                            "tune_best_val": [0.85, 0.30], "val_mean": [0.80, 0.36]})
    o = tuning.selection_optimism(summary).set_index("optimizer")["optimism"]
    assert o["adam"] == pytest.approx(0.05) and o["sgd"] == pytest.approx(0.06)  # both fell short


def test_intervals_stay_within_the_metric_bounds():
    # six accuracies near 1: the exact interval is clipped to 1; RMSE near 0 to 0
    conf = pd.DataFrame({"task": ["a"] * 6 + ["r"] * 6, "family": "mlp", "optimizer": "adam",
                         "regularizers": "none", "seed": list(range(6)) * 2,
                         "test": [0.99, 0.97, 1.0, 1.0, 0.93, 1.0, 0.01, 0.2, 0.02, 0.0, 0.3, 0.01],
                         "metric": ["accuracy"] * 6 + ["rmse"] * 6,
                         "direction": ["maximize"] * 6 + ["minimize"] * 6, "low": 0.0,
                         "high": [1.0] * 6 + [np.inf] * 6, "ideal": [1.0] * 6 + [0.0] * 6,
                         "baseline": [0.1] * 6 + [0.88] * 6, "val": 0.5, "gap_final": 0.0, "n_params": 1.0,
                         "fit_s": 1.0, "samples_per_s": 1.0, "energy_kwh": np.nan, "emissions_kg": np.nan,
                         "time_to_target_s": np.nan})
    s = stats.arm_summary(conf).set_index("task")
    raw = stats.exact_ci(conf, ["task"], "test").set_index("task")
    assert raw.loc["a", "ci_high"] > 1 or raw.loc["r", "ci_low"] < 0
    assert s.loc["a", "ci_high"] <= 1.0 and s.loc["r", "ci_low"] >= 0.0
    assert s.loc["a", "ci_low"] == pytest.approx(raw.loc["a", "ci_low"])
    three = stats.arm_summary(conf[conf["seed"] < 3])  # 3 units: no exact interval exists at all
    assert three["ci_low"].isna().all() and three["ci_high"].isna().all()


def test_an_interrupted_or_disk_failed_confirm_run_is_no_failed_run():
    """Such a run keeps its record but is redone (suite.record.is_result): the report must not count
    it against the arm, while a real failure still counts."""
    from reports.rows import trial_row

    t = tuning_trials().assign(started_at=pd.Timestamp("2026-12-01", tz="UTC"), status="complete", chosen=None,
                               result=True)
    adam = t[(t["optimizer"] == "adam") & (t["phase"] == "confirm")]
    stopped = adam.assign(state="FAIL", status="interrupted", test=np.nan, val=np.nan,
                          result=trial_row({"status": "interrupted"})["result"])
    disk = adam.assign(state="FAIL", status="failed", test=np.nan, val=np.nan,
                       result=trial_row({"status": "failed", "error_kind": "environment"})["result"])
    diverged = adam.assign(state="FAIL", status="diverged", test=np.nan, val=np.nan,
                           result=trial_row({"status": "diverged"})["result"])
    fails = stats.confirm_failures(pd.concat([t, stopped, disk], ignore_index=True)).set_index("optimizer")
    assert fails.loc["adam", "runs"] == 1 and fails.loc["adam", "failed"] == 0
    fails = stats.confirm_failures(pd.concat([t, stopped, diverged], ignore_index=True)).set_index("optimizer")
    assert fails.loc["adam", "runs"] == 2 and fails.loc["adam", "failed"] == 1


def test_family_basis_says_how_each_tasks_families_are_compared():
    rows = [  # (task, family, optimizer, regularizers)
        ("one", "mlp", "adam", "none"), ("one", "mlp", "sgd", "none"),
        ("common", "mlp", "adam", "none"), ("common", "mlp", "sgd", "none"), ("common", "cnn", "adam", "none"),
        ("unequal", "mlp", "adam", "none"), ("unequal", "cnn", "sgd", "none"), ("unequal", "cnn", "sgd", "l2"),
        ("different", "mlp", "adam", "none"), ("different", "cnn", "sgd", "none"),
    ]
    arms = pd.DataFrame(rows, columns=stats.ARM).assign(val_mean=0.5, direction="maximize")
    basis = selection.family_basis(arms, selection.equal_budget(arms)).set_index(["task", "family"])
    assert basis["basis"].to_dict() == {
        ("common", "cnn"): "common", ("common", "mlp"): "common", ("different", "cnn"): "different",
        ("different", "mlp"): "different", ("one", "mlp"): "single", ("unequal", "cnn"): "unequal",
        ("unequal", "mlp"): "unequal"}
    assert basis.loc[("common", "mlp"), "n_common"] == 1 and basis.loc[("unequal", "cnn"), "n_arms"] == 2
    # mlp ran sgd / none as well, which cnn never did: it was tuned with more than the common arm
    assert basis["more"][lambda m: m].index.tolist() == [("common", "mlp")]


def test_what_cannot_be_chosen_is_named_with_its_reason():
    arms = arm_rows(family=["mlp", "mlp", "cnn"], optimizer=["adam", "sgd", "adam"],
                    val_mean=[0.8, np.nan, np.nan], mean=[0.8, 0.9, 0.95])
    best = selection.best_of(arms, ["task", "family"])
    assert best["family"].tolist() == ["mlp"]  # cnn has no validation value: never chosen on test
    left = selection.not_chosen(arms, best, ["task", "family"])
    assert left.values.tolist() == [["t", "cnn", "no confirm validation value"]]
    assert selection.ineligible(arms)[["family", "optimizer"]].values.tolist() == [["mlp", "sgd"], ["cnn", "adam"]]
    assert selection.not_chosen(arms, best.iloc[:0], ["task", "family"])["family"].tolist() == ["cnn", "mlp"]


def test_regularizer_effects_are_against_the_same_optimizer_without_regularizers():
    arms = arm_rows(family=["mlp", "mlp", "mlp", "cnn"], optimizer=["adam", "adam", "sgd", "sgd"],
                    regularizers=["none", "dropout", "none", "l2"], n=[3, 3, 3, 3],
                    mean=[0.80, 0.85, 0.70, 0.60], gap_mean=[0.06, 0.02, 0.05, 0.01])
    eff = selection.regularizer_effects(arms)
    assert eff[["family", "optimizer", "regularizers"]].values.tolist() == [["cnn", "sgd", "l2"],
                                                                             ["mlp", "adam", "dropout"]]
    mlp = eff.iloc[1]
    assert mlp["vs_none"] == pytest.approx(0.05) and mlp["gap_vs_none"] == pytest.approx(-0.04)
    assert pd.isna(eff.iloc[0]["vs_none"]) and eff.iloc[0]["reason"] == "no arm without regularizers"
    # the runs a regularizer is compared within: mlp / sgd never ran with one, so it is left out
    runs = arms.loc[arms.index.repeat(2), [*stats.ARM]].reset_index(drop=True)
    kept = selection.regularized(runs)
    assert sorted(set(zip(kept["family"], kept["optimizer"], kept["regularizers"], strict=True))) == [
        ("cnn", "sgd", "l2"), ("mlp", "adam", "dropout"), ("mlp", "adam", "none")]


def test_tuning_progress_marks_the_arms_whose_last_trial_changed_the_best():
    def curve(optimizer: str, best: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"task": "t", "family": "mlp", "optimizer": optimizer, "regularizers": "none",
                             "trials": range(1, len(best) + 1), "best": best})

    curves = pd.concat([curve("adam", [0.5, 0.6, 0.6]), curve("sgd", [np.nan, 0.4, 0.7]),
                        curve("lion", [0.3]), curve("rmsprop", [np.nan, 0.2])], ignore_index=True)
    p = tuning.tuning_progress(curves).set_index("optimizer")
    assert p["n_run"].to_dict() == {"adam": 3, "lion": 1, "rmsprop": 2, "sgd": 3}
    assert p["rising"][lambda r: r].index.tolist() == ["sgd"]  # lion: one trial; rmsprop: nothing before
    assert p.loc["sgd", "reason"] == "still improving at the last tuning trial" and pd.isna(p.loc["adam", "reason"])
    assert tuning.tuning_progress(curves.iloc[:0]).empty


def test_a_performance_profile_says_why_it_cannot_be_drawn():
    def best(rows) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=["task", "family", "mean"]).assign(
            direction="maximize", ideal=1.0, baseline=0.0)

    one = profiles.solver_profile(best([("a", "mlp", 0.9), ("b", "mlp", 0.8)]), ["task"], "family")
    assert one.profile is None and one.reason == "solvers" and one.solvers == 1
    rows = [("a", "mlp", 0.9), ("a", "cnn", 0.8), ("b", "mlp", 0.5), ("c", "cnn", 0.7)]
    few = profiles.solver_profile(best(rows), ["task"], "family")
    assert few.profile is None and few.reason == "problems" and few.incomplete == ["b", "c"]
    ok = profiles.solver_profile(best([*rows, ("b", "cnn", 0.6), ("d", "mlp", 0.6), ("d", "cnn", 0.6)])
                                 .assign(ideal=lambda d: np.where(d["task"] == "d", np.nan, 1.0)),
                                 ["task"], "family")
    assert ok.reason is None and ok.problems == 2 and ok.incomplete == ["c"] and ok.unscaled == ["d"]
    # on a: mlp regret 0.1 is best, cnn 0.2 (ratio 2); on b: cnn 0.4, mlp 0.5 (ratio 1.25)
    rho = ok.profile.set_index(["solver", "tau"])["rho"]
    assert rho[("mlp", 1.0)] == 0.5 and rho[("cnn", 1.25)] == 0.5 and rho[("cnn", 2.0)] == 1.0


def test_footprint_keeps_the_decisions_out_of_the_section():
    arms = pd.DataFrame({"task": ["up", "up", "down", "down"], "mean": [0.9, 0.8, 0.9, 0.8],
                         "fit_s": [2.0, 1.0, 2.0, 1.0], "energy_kwh": [np.nan] * 4})
    assert costs.cost_column(arms) == "fit_s" and costs.cost_column(arms.assign(energy_kwh=1.0)) == "energy_kwh"
    fp = costs.footprint(arms, "fit_s", {"up": "maximize", "down": "minimize"})
    assert fp["pareto"].tolist() == [True, True, False, True]  # down: 0.8 in 1 s beats 0.9 in 2 s


def test_study_table_picks_each_studys_best_complete_tuning_trial_by_its_direction():
    studies = pd.DataFrame({"source": "s", "study": ["up", "down"], "direction": ["maximize", "minimize"],
                            "complete": 2, "pruned": 0, "fail": 0, "running": 0,
                            "importance_note": [None, "needs 2 params"]})
    trials = pd.DataFrame({"source": "s", "study": ["up"] * 3 + ["down"] * 3,
                           "phase": ["tune", "tune", "confirm"] * 2, "state": "COMPLETE",
                           "value": [0.5, 0.7, 0.9, 0.5, 0.7, 0.1],
                           "optuna_params": [{"lr": 0.1}, {"lr": 0.2}, {}, {"lr": 0.3}, {"lr": 0.4}, {}]})
    imp = pd.DataFrame({"source": "s", "study": "up", "param": ["lr", "depth"], "importance": [0.3, 0.7]})
    t = inventory.study_table(trials, studies, imp).set_index("study")
    assert t.loc["up", "best_value"] == 0.7 and t.loc["up", "best_params"] == {"lr": 0.2}  # confirm ignored
    assert t.loc["down", "best_value"] == 0.5 and t.loc["down", "best_params"] == {"lr": 0.3}
    assert t.loc["up", "importances"] == [("depth", 0.7), ("lr", 0.3)] and t.loc["down", "importances"] == []
