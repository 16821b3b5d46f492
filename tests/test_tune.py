import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

from suite.accounting import done_tune, phase_of
from suite.benchmark import run_benchmark
from suite.errors import SuiteError
from suite.profile import builtin_profiles, load_profile, parse_profile
from suite.storage import mask_url, open_storage
from tests.arms import ArmStudy, arm_studies, record

TINY = Path(__file__).parent / "profiles" / "tiny.yaml"


def studies(url: str) -> list[ArmStudy]:
    """Every arm study, its confirm runs among its trials."""
    return arm_studies(url)


def test_builtin_profiles_load_and_resolve():
    assert {"quick", "standard", "full"} <= set(builtin_profiles())
    for name in builtin_profiles():
        profile = load_profile(name)
        assert profile.arms and profile.tune_trials >= 1


def test_quick_and_standard_can_support_every_claim_they_test():
    """A property, not today's list: every paired test the quick and standard reports make compares
    at least 5 paired units and can hold after Holm over its question (the exact sign-flip floor
    2 / 2**units times the number of tests below 0.05); quick asks all three questions; the units
    are independent studies, so tuning luck is inside every interval."""
    from suite.plan import paired_tests

    for name in ("quick", "standard"):
        prof = load_profile(name)
        assert prof.studies >= 5, name
        tests = paired_tests(prof)
        for question, t in tests.items():
            assert t["tests"] == 0 or (t["units"] >= 5 and t["can_claim"]), (name, question, t)
    assert all(t["tests"] >= 1 for t in paired_tests(load_profile("quick")).values())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"matrix": []}, "matrix must be a non-empty list"),
        ({"matrix": [{"tasks": ["nope"], "families": ["mlp"], "optimizers": ["adam"]}]},
         "matrix[0]: unknown task 'nope'; known:"),
        ({"matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["lion"]}]},
         "matrix[0]: unknown optimizer 'lion'"),
        ({"matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"],
                      "params": {"depth": 0}}]}, "matrix[0]: param depth=0 is out of range"),
        ({"tune_trials": 0, "matrix": [{"tasks": ["digits"]}]}, "tune_trials must be an integer >= 1"),
        ({"pruner": "magic", "matrix": [{"tasks": ["digits"]}]}, "pruner 'magic' is not valid; allowed: auto, median"),
        ({"matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"], "colour": 1}]},
         "matrix[0]: unknown key 'colour'; allowed:"),
        ({"trials": 3, "matrix": []}, "unknown key 'trials'; allowed:"),
    ],
)
def test_bad_profiles_fail_before_anything_runs(data, message):
    with pytest.raises(SuiteError) as info:
        parse_profile(data, "bad.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_corrupt_profile_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmatrix: [\n  - tasks: [digits\n")
    with pytest.raises(SuiteError, match=r"profile '.*bad.yaml' is not valid YAML at line"):
        load_profile(str(bad))
    with pytest.raises(SuiteError, match="unknown profile 'nope'; built-in:"):
        load_profile("nope")


def test_unsafe_yaml_is_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\nmatrix: []\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_profile(str(evil))


def test_benchmark_runs_the_protocol_and_stores_every_record(tmp_path):
    profile = load_profile(str(TINY))
    result = run_benchmark(profile, out_dir=tmp_path / "run", report=False, wandb=False, energy=False)
    assert (tmp_path / "run" / "optuna.db").is_file()
    all_studies = studies(result.storage)
    assert sorted(s.study_name for s in all_studies) == ["tiny/digits/mlp/adam/none",
                                                         "tiny/digits/mlp/sgd/none"]
    for study in all_studies:
        trials = study.get_trials()
        tune = [t for t in trials if phase_of(t) == "tune"]
        confirm = [t for t in trials if phase_of(t) == "confirm"]
        assert len(tune) == 3 and len(confirm) == 1
        assert study.user_attrs["protocol"]["tune_trials"] == 3
        best = max((t for t in tune if t.value is not None), key=lambda t: t.value)
        assert confirm[0].params == best.params and confirm[0].user_attrs["seed"] == 1
        for t in trials:
            rec = record(t)
            assert rec["arm"] == study.study_name and rec["phase"] == phase_of(t)
            assert rec["params"]["width"] == 16  # fixed by the profile, never tuned
            assert "width" not in t.params and "lr" in t.params
            assert t.value == pytest.approx(rec["metrics"]["val/accuracy"])
            # every epoch reported, also without a pruner (learning curves in optuna-dashboard)
            assert [t.intermediate_values[e] for e in sorted(t.intermediate_values)] == \
                pytest.approx(rec["curves"]["val/accuracy"])


def test_pruning_happens_where_it_should(tmp_path):
    data = {"name": "prune", "tune_trials": 12, "confirm_seeds": 0, "epochs": 6,
            "tracking": {"wandb": False, "energy": False},
            "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["sgd"],
                        "params": {"width": 16, "depth": 1, "batch_size": 128, "schedule": "none"}}]}
    profile = parse_profile(data)
    assert profile.pruner == "median"  # auto: 12 trials per arm allow a median pruner
    result = run_benchmark(profile, out_dir=tmp_path / "run", report=False)
    (study,) = studies(result.storage)
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    for t in pruned:
        rec = record(t)
        assert rec["status"] == "pruned" and rec["epochs_run"] < 6
        assert t.number >= 5  # 5 start-up trials are never pruned
        assert rec["epochs_run"] >= 3  # a warm-up of a third of the epochs (steps 0-1), then pruned
        assert len(t.intermediate_values) >= 3  # reported every epoch up to the prune
    assert len(done_tune(study)) == 12


def test_optuna_dashboard_shows_tuning_studies_whose_best_is_a_tuning_trial_with_curves_and_whole_attrs(tmp_path):
    """optuna-dashboard's own API on a finished run: every tuning study's best trial is a tuning trial
    (the confirm runs are in the arm's confirm study), every trial has its learning curve, and no attr
    is longer than the dashboard shows (it cuts at 1,024 characters: a record there was broken JSON)."""
    from optuna_dashboard import wsgi

    profile = load_profile(str(TINY))
    result = run_benchmark(profile, out_dir=tmp_path / "run", report=False)
    app = wsgi(open_storage(result.storage, heartbeat=False))

    def get(path: str) -> dict:
        environ: dict = {}
        setup_testing_defaults(environ)
        environ["PATH_INFO"] = path
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
        assert status[0].startswith("200"), (path, status)
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    names = {s["study_name"] for s in summaries}
    arms = {"tiny/digits/mlp/adam/none", "tiny/digits/mlp/sgd/none"}
    assert names == arms | {f"{n}/confirm" for n in arms}
    epochs = profile.arms[0].epochs
    for summary in summaries:
        study = get(f"/api/studies/{summary['study_id']}")
        for t in study["trials"]:
            attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
            assert len(t["intermediate_values"]) == epochs, t  # a learning curve for every trial
            assert all(len(v) < 1024 for v in attrs.values()), attrs  # nothing cut (JSON is cut at 1,024)
            result_attr = json.loads(attrs["result"])  # whole JSON: the summary of the record
            assert result_attr["status"] == "complete" and result_attr["metric"] == "accuracy"
            assert result_attr["val"] == pytest.approx(t["values"][0])
        phases = {a["value"] for t in study["trials"] for a in t["user_attrs"] if a["key"] == "phase"}
        if summary["study_name"] in arms:
            assert phases == {"tune"} and len(study["trials"]) == 3
            (best,) = study["best_trials"]
            assert {"key": "phase", "value": "tune"} in best["user_attrs"]
        else:
            assert phases == {"confirm"} and len(study["trials"]) == 1
        assert all(len(a["value"]) < 1024 for a in summary["user_attrs"]), summary["user_attrs"]


def test_mask_url_hides_passwords():
    assert mask_url("postgresql+psycopg2://bob:s3cret@db:5432/x") == "postgresql+psycopg2://bob:***@db:5432/x"
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def _counts(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=30) as c:
            return dict(c.execute("select state, count(*) from trials group by state").fetchall())
    except sqlite3.OperationalError:
        return {}


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(tmp_path):
    out = tmp_path / "run"
    db = out / "optuna.db"
    cmd = [sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(TINY), "--out", str(out),
           "--no-report", "--device", "cpu", "--jobs", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while _counts(db).get("COMPLETE", 0) < 2 or _counts(db).get("RUNNING", 0) < 1:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "benchmark made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    url = f"sqlite:///{db}"
    before = {(s.study_name, phase_of(t), t.number): record(t)["started_at"]
              for s in studies(url) for t in s.get_trials()
              if t.state == optuna.trial.TrialState.COMPLETE}
    assert _counts(db).get("RUNNING", 0) >= 1  # killed mid-trial
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "marked failed and redone" in again.stderr
    after_studies = studies(url)
    for s in after_studies:
        trials = s.get_trials()
        done = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                 optuna.trial.TrialState.PRUNED)]
        assert sum(phase_of(t) == "tune" for t in done) == 3
        assert sum(phase_of(t) == "confirm" for t in done) == 1
        assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        for t in trials:
            if t.state == optuna.trial.TrialState.FAIL:
                assert record(t) is None  # only the killed trial, redone
    after = {(s.study_name, phase_of(t), t.number): record(t)["started_at"]
             for s in after_studies for t in s.get_trials()
             if t.state == optuna.trial.TrialState.COMPLETE}
    for key, started in before.items():
        assert after[key] == started  # kept, not re-run


def test_one_function_masks_every_storage_password_even_in_urls_sqlalchemy_cannot_parse():
    from reports.load import parse_source

    assert parse_source("postgresql://bob:s3cret@h/db").label == "postgresql://bob:***@h/db"  # the report's
    cases = {
        "postgresql+psycopg2://bob:s3cret@db.example:5432/bench": "postgresql+psycopg2://bob:***@db.example:5432/bench",
        # an unescaped '@' in the password: SQLAlchemy would take 'ss@host' as the host
        "postgresql+psycopg2://bob:p@ss@127.0.0.1:5432/db": "postgresql+psycopg2://bob:***@127.0.0.1:5432/db",
        "postgresql://bob:pw@h/db?sslmode=require&x=a@b": "postgresql://bob:***@h/db?sslmode=require&x=a@b",
        "not a url://u:secret@@": "not a url://u:***@",
        "postgresql://bob@h/db": "postgresql://bob@h/db",
        "sqlite:////tmp/x.db": "sqlite:////tmp/x.db",
        "runs/quick/optuna.journal.log": "runs/quick/optuna.journal.log",
    }
    for url, masked in cases.items():
        assert mask_url(url) == masked, url


def test_every_form_of_a_remembered_password_is_redacted_from_any_text():
    from suite.secrets import check_password_encoding, redact, remember, secret_forms

    url = "postgresql://bob:p%40ss%3Aw%2Frd@h:5432/db"
    assert {"p%40ss%3Aw%2Frd", "p@ss:w/rd", "ss:w/rd", "w/rd", "p@ss:w"} <= set(secret_forms(url))
    remember(url)
    for text in ('could not translate host name "ss:w/rd@h"', "user p@ss:w/rd", "x=p%40ss%3Aw%2Frd"):
        assert not any(piece in redact(text) for piece in ("p@ss", "ss:w", "w/rd", "p%40ss")), redact(text)
    assert check_password_encoding("postgresql://bob:p@ss@h/db").startswith(
        "the password in storage URL 'postgresql://bob:***@h/db' holds '@' unencoded")
    assert check_password_encoding(url) is None
