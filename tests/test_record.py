"""The trial-record contract (``suite/record.py``): every field a real record carries is declared,
every status has one Optuna state, what counts towards a budget, and how ``outcome`` classifies a
failure, salvages what ran and cleans up."""

from __future__ import annotations

import json

import pytest
import torch

from suite import record as rec
from suite.errors import SuiteError
from suite.record import ErrorKind, Status, TrialRecord, counts, is_result, objective_value, outcome
from suite.train import TrialConfig, train


def test_every_field_of_a_real_record_is_declared():
    record = train(TrialConfig(task="digits", family="mlp", epochs=1, seed=0, device="cpu",
                               params={"width": 16, "depth": 1}),
                   meta={"phase": "tune", "arm": "a", "defaults": True})
    assert record["status"] == Status.COMPLETE
    undeclared = set(record) - set(TrialRecord.__annotations__)
    assert not undeclared, f"record fields not declared in suite.record.TrialRecord: {sorted(undeclared)}"
    assert objective_value(record) == record["metrics"]["val/accuracy"]


def test_every_status_leaves_its_trial_in_one_optuna_state():
    assert set(rec.OPTUNA_STATE) == set(Status)
    assert {rec.OPTUNA_STATE[s] for s in (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED)} == {"FAIL"}


@pytest.mark.parametrize("state, record, surplus, expected", [
    ("COMPLETE", {"status": "complete"}, False, True),
    ("PRUNED", {"status": "pruned"}, False, True),
    ("FAIL", {"status": "diverged"}, False, True),  # a divergence is a result of the method
    ("FAIL", {"status": "failed", "error_kind": "oom"}, False, True),
    ("FAIL", {"status": "failed", "error_kind": "environment"}, False, False),  # the disk: redone
    ("FAIL", {"status": "interrupted"}, False, False),  # the user: redone
    ("FAIL", None, False, False),  # killed before it recorded: requeued
    ("COMPLETE", {"status": "complete"}, True, False),  # a surplus claim never counts
    ("RUNNING", None, False, False),
])
def test_what_counts_towards_a_budget(state, record, surplus, expected):
    assert counts(state, record, surplus=surplus) is expected
    assert is_result(record) is (record is not None and record.get("status") != "interrupted"
                                 and record.get("error_kind") != "environment")


class TrialPruned(Exception):  # Optuna's exception is matched by name, as the record module imports no Optuna
    pass


@pytest.mark.parametrize("exc, status, kind", [
    (RuntimeError("boom"), Status.FAILED, None),
    (torch.cuda.OutOfMemoryError("CUDA out of memory"), Status.FAILED, ErrorKind.OOM),
    (MemoryError(), Status.FAILED, ErrorKind.OOM),
    (OSError(28, "No space left on device"), Status.FAILED, ErrorKind.ENVIRONMENT),
    (KeyboardInterrupt(), Status.INTERRUPTED, None),
    (TrialPruned("pruned at epoch 3"), Status.PRUNED, None),
])
def test_outcome_classifies_a_failure_and_keeps_what_ran(exc, status, kind):
    record = {"status": Status.RUNNING.value}
    released, exited = [], []
    with outcome(record, on_exit=lambda: exited.append(record["wall_s"])) as attempt:
        attempt.epoch = lambda: 4
        attempt.salvage = lambda st: {"epochs_run": 3, "salvaged_as": st}
        attempt.release = lambda: released.append(True)
        raise exc
    assert record["status"] == status and record.get("error_kind") == kind
    assert record["epochs_run"] == 3 and record["salvaged_as"] == status
    assert released == ([True] if kind == ErrorKind.OOM else [])  # the device is freed after OOM only
    assert exited == [record["wall_s"]] and record["wall_s"] >= 0
    if status == Status.INTERRUPTED:
        assert record["error"] == "interrupted by the user (SIGINT/SIGTERM) at epoch 4"
    if status == Status.FAILED:
        assert "Traceback" in record["traceback"]


def test_outcome_lets_configuration_errors_through_and_still_times():
    record: dict = {}
    with pytest.raises(SuiteError), outcome(record, reraise=(SuiteError,)):
        raise SuiteError("bad config")
    assert "status" not in record and record["wall_s"] >= 0


def test_the_summary_a_dashboard_shows_is_whole_json_under_its_cut():
    """optuna-dashboard cuts a JSON attr at 1,024 characters: the summary stays under it however long
    the error, and keeps what a dashboard user reads first."""
    from suite.record import DASHBOARD_ATTR_LIMIT, summary

    record = {"status": "failed", "task_info": {"metric": "accuracy"}, "error": "RuntimeError: " + "x" * 5000,
              "metrics": {"val/accuracy": 0.5, "test/accuracy": 0.4}, "epochs_run": 2, "wall_s": 1.5,
              "energy": {"kwh": 1e-5, "method": "measured"}, "curves": {"val/accuracy": [0.1] * 500}}
    out = summary(record)
    assert len(json.dumps(out)) <= DASHBOARD_ATTR_LIMIT
    assert out["error"].startswith("RuntimeError: xx") and out["error"].endswith("...")
    assert (out["val"], out["test"], out["kwh"], out["status"]) == (0.5, 0.4, 1e-5, "failed")
    assert "curves" not in out
