"""``suite benchmark --dry-run``: what a profile runs and which rank tests its results allow."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from suite.cli import app
from suite.plan import RANKINGS, plan, presence
from suite.profile import builtin_profiles, load_profile


def test_standard_profile_has_a_complete_family_and_optimizer_subtable():
    p = plan(load_profile("standard"))
    fam, opt = p["rank_tests"]["families"], p["rank_tests"]["optimizers"]
    assert fam["runs"] and len(fam["treatments"]) >= 3 and len(fam["blocks"]) >= 2
    assert opt["runs"] and len(opt["treatments"]) >= 3 and len(opt["blocks"]) >= 2
    # the families that have a task of their own are left out, and said to be
    assert {"autoencoder", "gan", "transfer"} <= set(fam["left_out"])
    assert p["trials"] == p["arms"] * p["trials_per_arm"]


def test_paired_tests_plan_counts_the_reports_tests_and_the_exact_floor():
    from suite.plan import paired_tests
    from suite.profile import parse_profile

    base = {"name": "p", "tune_trials": 2, "confirm_seeds": 3, "matrix": [
        {"tasks": ["digits"], "families": ["mlp", "cnn", "rnn"], "optimizers": ["adam"]},
        {"tasks": ["digits"], "families": ["mlp"], "optimizers": ["sgd"], "regularizers": [["none"], ["l2"]]}]}
    seeds = paired_tests(parse_profile(base))
    assert seeds["families"]["tests"] == 3 and seeds["optimizers"]["tests"] == 1
    assert seeds["regularizers"]["tests"] == 1 and seeds["families"]["units"] == 3
    assert seeds["families"]["unit"] == "confirm seeds of one study" and not seeds["families"]["can_claim"]
    studies = paired_tests(parse_profile({**base, "studies": 8, "confirm_seeds": 1}))
    assert studies["families"]["p_min"] == 2 / 2**8 and studies["families"]["can_claim"]  # 3 x 0.0078
    assert "no difference can hold" in paired_tests(parse_profile({**base, "studies": 6}))["families"]["text"]


@pytest.mark.parametrize("name", builtin_profiles())
def test_every_builtin_profile_has_a_plan(name):
    prof = load_profile(name)
    p = plan(prof)
    assert p["arms"] == len(prof.arms) and sum(t["arms"] for t in p["tasks"].values()) == p["arms"]
    for kind, (problem, solver) in RANKINGS.items():  # a sub-table that runs is complete in the arms
        r = p["rank_tests"][kind]
        table = presence(prof.arms, problem, solver)
        if r["runs"]:
            assert table.loc[r["blocks"], r["treatments"]].notna().all().all()


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["benchmark", "--profile", "standard", "--dry-run"])
    assert done.exit_code == 0, done.output
    assert "standard: 40 arms x 60 trials (10 studies x 6) = 2,400 trials" in done.output
    assert "families: 24 tests over 10 studies; exact p >= 0.00195, after Holm over 24 at best 0.0469: a " \
           "difference can hold" in done.output
    assert "families: Friedman over 4 families x 4 blocks" in done.output
    assert "optimizers: Friedman over 3 optimizers x 4 blocks" in done.output
    assert list(tmp_path.iterdir()) == []  # no run folder, no storage
    done = CliRunner().invoke(app, ["benchmark", "--profile", "nosuch", "--dry-run"])
    assert done.exit_code == 2 and "error:" in done.output


def test_estimate_from_earlier_timings_and_what_it_lacks():
    import pandas as pd

    from suite.plan import estimate

    prof = load_profile("quick")
    pairs = {(a.task, a.family) for a in prof.arms}
    times = pd.DataFrame([{"task": t, "family": f, "s_per_epoch": 0.5, "overhead_s": 1.0, "n": 3}
                          for t, f in sorted(pairs)])
    per_arm = plan(prof)["trials_per_arm"]
    expected = sum(per_arm * (a.epochs * 0.5 + 1.0) for a in prof.arms)
    full = estimate(prof, times, jobs=2)
    assert full["missing"] == [] and full["hours"] == pytest.approx(expected / 2 / 3600)
    part = estimate(prof, times[times["family"] != "mlp"], jobs=1)
    assert part["hours"] is None and part["missing"] == ["mnist1d/mlp"] and part["hours_known"] > 0


@pytest.mark.parametrize("name", ["quick", "standard", "full"])
def test_dry_run_of_each_builtin_profile_creates_no_storage(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["benchmark", "--profile", name, "--dry-run", "--jobs", "2"])
    assert done.exit_code == 0, done.output
    assert f"{name}: " in done.output and "estimate with 2 job(s): unknown" in done.output
    assert list(tmp_path.iterdir()) == []


def test_max_hours_stops_a_run_before_it_starts(tmp_path, monkeypatch):
    import pandas as pd

    from suite import plan as plan_mod

    monkeypatch.chdir(tmp_path)
    prof = load_profile("quick")
    slow = pd.DataFrame([{"task": a.task, "family": a.family, "s_per_epoch": 100.0, "overhead_s": 0.0, "n": 1}
                         for a in prof.arms]).drop_duplicates(["task", "family"])
    monkeypatch.setattr(plan_mod, "timings", lambda sources, host: slow)
    done = CliRunner().invoke(app, ["benchmark", "--profile", "quick", "--max-hours", "1", "--jobs", "2"])
    assert done.exit_code == 2 and "> --max-hours 1: cut arms" in done.stderr
    assert list(tmp_path.iterdir()) == []
    done = CliRunner().invoke(app, ["benchmark", "--profile", "quick", "--jobs", "x"])
    assert done.exit_code == 2 and "--jobs must be auto or a whole number" in done.stderr


def test_calibrate_times_the_pairs_without_records_and_stores_nothing(tmp_path, monkeypatch):
    import yaml

    monkeypatch.chdir(tmp_path)
    prof = tmp_path / "p.yaml"
    prof.write_text(yaml.safe_dump({"name": "cal", "tune_trials": 2, "confirm_seeds": 1, "epochs": 4,
                                    "matrix": [{"tasks": ["digits"], "families": ["mlp"],
                                                "optimizers": ["adam", "sgd"],
                                                "params": {"width": 16, "depth": 1}}]}))
    done = CliRunner().invoke(app, ["benchmark", "--profile", str(prof), "--dry-run", "--jobs", "1",
                                    "--calibrate", "--device", "cpu"])
    assert done.exit_code == 0, done.output
    assert "calibrating: 2 epochs of digits/mlp" in done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("estimate with 1 job(s): "))
    assert "1 pair(s) timed now" in line and float(line.split(": ")[1].split(" h")[0]) >= 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]  # no run folder, no storage
