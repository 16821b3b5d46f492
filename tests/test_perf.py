"""``suite perf``: the four paths do the same work and the command reports every ratio.

Timings themselves are not asserted (speed targets live in the benchmark, not in unit tests); what
must hold is that the bare loop, Lightning's floor and the suite train the same steps to the same
loss, and that the JSON carries what the README's table is made of.
"""

import json
import math

import pytest
from typer.testing import CliRunner

from suite.cli import app
from suite.perf import bare_loop, lightning_loop, parse_pair
from suite.train import TrialConfig, train


def test_bare_lightning_and_suite_paths_end_on_the_same_loss():
    config = TrialConfig(task="digits", family="mlp", epochs=2, seed=3, device="cpu",
                         params={"width": 32, "depth": 1, "schedule": "none"})  # as suite perf pins
    _, bare_loss, steps = bare_loop(config)
    _, lightning_loss = lightning_loop(config)
    record = train(config)
    assert steps == record["steps"]
    suite_loss = record["curves"]["train/loss"][-1]
    assert lightning_loss == pytest.approx(bare_loss, rel=1e-5)
    assert suite_loss == pytest.approx(bare_loss, rel=1e-5)
    # and a different seed is different work: the check can fail
    _, other_loss, _ = bare_loop(TrialConfig(task="digits", family="mlp", epochs=2, seed=4, device="cpu",
                                             params={"width": 32, "depth": 1, "schedule": "none"}))
    assert other_loss != pytest.approx(bare_loss, rel=1e-5)


@pytest.mark.slow
def test_perf_json_reports_every_ratio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    done = CliRunner().invoke(app, ["perf", "--device", "cpu", "--pair", "digits/mlp", "--pair",
                                    "sunspots/rnn/gru", "--epochs", "1", "--repeats", "1", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["hardware"]["cpu_cores"] >= 1
    pairs = {(p["task"], p["family"]): p for p in report["pairs"]}
    assert set(pairs) == {("digits", "mlp"), ("sunspots", "rnn")}
    assert pairs[("sunspots", "rnn")]["params"] == {"cell": "gru"}
    for p in pairs.values():
        assert p["same_loss"] and p["steps"] > 0 and p["epochs"] == 1 and p["repeats"] == 1
        for key in ("ratio_suite", "ratio_tracked", "ratio_lightning", "ratio_suite_over_lightning",
                    "suite_fixed_s", "tracked_fixed_s", "samples_per_s_bare", "samples_per_s_suite"):
            assert math.isfinite(p[key]) and p[key] > 0, key
        assert p["ratio_suite"] == pytest.approx(p["suite_s"] / p["bare_s"])


@pytest.mark.parametrize("args, message", [
    (["--pair", "digits"], "pair 'digits' is not valid; expected task/family"),
    (["--pair", "nope/mlp"], "nope"),
    (["--pair", "digits/mlp", "--repeats", "0"], "repeats must be an integer >= 1, got 0"),
])
def test_perf_rejects_bad_input_in_one_line(args, message):
    done = CliRunner().invoke(app, ["perf", "--device", "cpu", *args])
    assert done.exit_code == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_parse_pair():
    assert parse_pair("mnist1d/rnn/gru") == ("mnist1d", "rnn", {"cell": "gru"}, None)
    assert parse_pair("digits/cnn") == ("digits", "cnn", {}, None)
