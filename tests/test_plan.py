"""``suite benchmark --dry-run``: what a profile runs and which rank tests its results allow."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from suite.cli import app
from suite.plan import plan, presence
from suite.profile import builtin_profiles, load_profile


def test_standard_profile_has_a_complete_family_and_optimizer_subtable():
    p = plan(load_profile("standard"))
    fam, opt = p["rank_tests"]["families"], p["rank_tests"]["optimizers"]
    assert fam["runs"] and len(fam["treatments"]) >= 3 and len(fam["blocks"]) >= 2
    assert opt["runs"] and len(opt["treatments"]) >= 3 and len(opt["blocks"]) >= 2
    # the families that have a task of their own are left out, and said to be
    assert {"autoencoder", "gan", "transfer"} <= set(fam["left_out"])
    assert p["trials"] == p["arms"] * p["trials_per_arm"]


@pytest.mark.parametrize("name", builtin_profiles())
def test_every_builtin_profile_has_a_plan(name):
    prof = load_profile(name)
    p = plan(prof)
    assert p["arms"] == len(prof.arms) and sum(t["arms"] for t in p["tasks"].values()) == p["arms"]
    for r in p["rank_tests"].values():  # a sub-table that runs is complete in the profile's arms
        table = presence(prof.arms, ("task",) if r is p["rank_tests"]["families"] else ("task", "family"),
                         "family" if r is p["rank_tests"]["families"] else "optimizer")
        if r["runs"]:
            assert table.loc[r["blocks"], r["treatments"]].notna().all().all()


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["benchmark", "--profile", "standard", "--dry-run"])
    assert done.exit_code == 0, done.output
    assert "standard: 96 arms x " in done.output
    assert "families: Friedman over 4 families x 4 blocks" in done.output
    assert "optimizers: Friedman over 3 optimizers x 8 blocks" in done.output
    assert list(tmp_path.iterdir()) == []  # no run folder, no storage
    done = CliRunner().invoke(app, ["benchmark", "--profile", "nosuch", "--dry-run"])
    assert done.exit_code == 2 and "error:" in done.output
