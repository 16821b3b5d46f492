"""Fault injection through the benchmark: every fault becomes a clear record, nothing finished is
lost, nothing is retried forever, and no secret reaches output, records or tracking files."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

import suite.tune
from suite.accounting import PHASE_CONFIRM, PHASE_TUNE, done_tune, is_done, phase_of
from suite.benchmark import run_benchmark
from suite.cli import app
from suite.module import SuiteModule
from suite.profile import parse_profile
from suite.storage import open_storage
from tests.arms import ArmStudy, record, tuning_summaries
from tests.postgres import fresh_database, postgres_url  # noqa: F401  (session fixture)

ROOT = Path(__file__).resolve().parent.parent
ONE_ARM = {"name": "faults", "tune_trials": 3, "confirm_seeds": 1, "confirm_candidates": 1, "pruner": "none",
           "epochs": 2,
           "tracking": {"wandb": False, "energy": False},
           "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"],
                       "params": {"width": 16, "depth": 1, "batch_size": 128}}]}


def trials_of(result) -> list[optuna.trial.FrozenTrial]:
    """The arm's trials: the tuning study's, then its confirm study's."""
    (name,) = result.studies
    return ArmStudy(open_storage(result.storage, heartbeat=False), name).get_trials()


def inject(monkeypatch, fault, on_calls: set[int]) -> None:
    """Make ``fault`` replace the training step in the trials the benchmark runs ``on_calls`` (1-based)."""
    calls = {"n": 0, "active": False}
    real_train, real_step = suite.tune.train, SuiteModule.training_step

    def counting_train(config, **kw):
        calls["n"] += 1
        calls["active"] = calls["n"] in on_calls
        return real_train(config, **kw)

    def step(self, batch, batch_idx):
        if calls["active"]:
            return fault(self, batch, batch_idx, real_step)
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(suite.tune, "train", counting_train)
    monkeypatch.setattr(SuiteModule, "training_step", step)


def crash(self, batch, batch_idx, real):
    raise RuntimeError("injected crash")


def nan_loss(self, batch, batch_idx, real):
    return real(self, batch, batch_idx) * float("nan")


def cuda_oom(self, batch, batch_idx, real):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.11 GiB total)")


@pytest.mark.parametrize(
    ("fault", "status", "error", "extra"),
    [
        (crash, "failed", "RuntimeError: injected crash", {}),
        (nan_loss, "diverged", "non-finite training loss", {"epochs_run": 1}),
        (cuda_oom, "failed", "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB",
         {"error_kind": "oom"}),
    ],
    ids=["raising-trial", "nan-loss", "cuda-oom"],
)
def test_a_faulty_trial_is_recorded_and_the_arm_completes_its_budget(tmp_path, monkeypatch, fault, status,
                                                                    error, extra):
    inject(monkeypatch, fault, on_calls={2})
    result = run_benchmark(parse_profile(ONE_ARM), out_dir=tmp_path / "run", report=False)
    trials = trials_of(result)
    assert len(trials) == 4  # 3 tune + 1 confirm: the faulty trial was not retried
    bad = trials[1]
    rec = record(bad)
    assert bad.state == TrialState.FAIL and rec["status"] == status
    assert rec["error"].startswith(error)
    assert all(rec.get(k) == v for k, v in extra.items()), rec
    if status == "failed":
        assert error.split(": ", 1)[1][:20] in rec["traceback"]
    tune = [t for t in trials if phase_of(t) == PHASE_TUNE]
    assert len(done_tune(optuna.load_study(study_name=result.studies[0],
                                           storage=open_storage(result.storage, heartbeat=False)))) == 3
    assert [t.state for t in tune] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    (confirm,) = [t for t in trials if phase_of(t) == PHASE_CONFIRM]
    assert confirm.state == TrialState.COMPLETE and confirm.params != bad.params
    assert result.trials_run == 4


def disk_full(self, batch, batch_idx, real):
    raise OSError(28, "No space left on device")


def test_a_file_system_fault_in_a_trial_is_redone_with_the_same_params_and_not_counted(tmp_path, monkeypatch):
    """A fault from outside the method (the disk) is no result of the method: the trial keeps its
    record (``error_kind: environment``), does not count, and a copy with its params is redone."""
    inject(monkeypatch, disk_full, on_calls={2})
    result = run_benchmark(parse_profile(ONE_ARM), out_dir=tmp_path / "run", report=False)
    trials = trials_of(result)
    bad = trials[1]
    assert bad.state == TrialState.FAIL and record(bad)["error_kind"] == "environment"
    assert not is_done(bad)
    (redo,) = [t for t in trials if t.system_attrs.get("failed_trial") == bad.number]
    assert redo.state == TrialState.COMPLETE and redo.params == bad.params
    study = optuna.load_study(study_name=result.studies[0], storage=open_storage(result.storage, heartbeat=False))
    assert len(done_tune(study)) == 3 and len(trials) == 5  # 3 tune counted + the redone one's original + 1 confirm


def test_every_trial_diverging_ends_the_arm_instead_of_retrying_forever(tmp_path, monkeypatch):
    """Every tuning trial diverges: the arm's defaults are confirmed on the shared seed (they diverge
    too), so the report counts the arm as failed there instead of leaving it out."""
    from reports.load import load
    from reports.stats import arm_summary, confirm_trials

    inject(monkeypatch, nan_loss, on_calls={1, 2, 3, 4, 5, 6})
    result = run_benchmark(parse_profile(ONE_ARM), out_dir=tmp_path / "run", report=False)
    trials = trials_of(result)
    assert [record(t)["status"] for t in trials] == ["diverged"] * 4
    assert all(t.state == TrialState.FAIL for t in trials)
    assert [t.user_attrs.get("phase") for t in trials] == ["tune"] * 3 + ["confirm"]
    assert trials[3].params == trials[0].params and trials[0].user_attrs.get("defaults")
    summary = arm_summary(confirm_trials(load([str(tmp_path / "run")]).trials)).iloc[0]
    assert (summary["runs"], summary["failed"], summary["mean"]) == (1, 1, 0.0)  # accuracy's worst bound
    from suite.benchmark import arm_summaries

    (row,) = arm_summaries(result.storage, result.studies)  # what suite benchmark prints
    assert row["confirm"].endswith(" of the defaults"), row["confirm"]


@pytest.mark.parametrize("where", ["start", "stop"])
def test_a_failing_energy_tracker_leaves_every_trial_complete(tmp_path, monkeypatch, where):
    import suite.energy as energy

    class StopFails:
        _hardware: list = []

        def start_task(self, name):
            pass

        def stop_task(self):
            raise RuntimeError("forced tracker failure")

    def make(country):
        if where == "start":
            raise RuntimeError("forced tracker failure")
        return StopFails()

    monkeypatch.setattr(energy, "make_tracker", make)
    monkeypatch.setattr(energy.EnergyMeter, "_tracker", None)
    result = run_benchmark(parse_profile(ONE_ARM), out_dir=tmp_path / "run", report=False, energy=True)
    trials = trials_of(result)
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    expected = {"start": "codecarbon unavailable: RuntimeError: forced tracker failure",
                "stop": "codecarbon stop failed: RuntimeError: forced tracker failure"}[where]
    for t in trials:
        energy = record(t)["energy"]
        assert energy["kwh"] is None and energy["error"] == expected
    rows = list(csv.DictReader((tmp_path / "run" / "emissions.csv").open()))
    assert len(rows) == 4 and {r["error"] for r in rows} == {expected}


def test_failing_tracking_writes_never_lose_a_finished_trial(tmp_path, monkeypatch):
    import suite.tracking

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    real_finish = suite.tracking.finish_wandb

    def wandb_down(*a, **k):  # the run is closed, then finishing reports an error (e.g. upload)
        real_finish(*a, **k)
        raise RuntimeError("wandb exploded")

    monkeypatch.setattr(suite.tracking, "append_emissions", disk_full)
    monkeypatch.setattr(suite.tracking, "finish_wandb", wandb_down)
    result = run_benchmark(parse_profile(ONE_ARM), out_dir=tmp_path / "run", report=False, energy=True,
                           wandb=True)
    trials = trials_of(result)
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        errors = record(t)["tracking_errors"]
        assert errors == ["emissions.csv: OSError: [Errno 28] No space left on device",
                          "wandb: RuntimeError: wandb exploded"]


@pytest.mark.parametrize("text", [b"name: x\nmatrix: [\n  - tasks: [digits\n", b"\x00\x01binary\xff\xfe",
                                  b"name: x\x00\n", b"- just\n- a list\n"],
                         ids=["truncated", "not-utf8", "nul", "a-list"])
@pytest.mark.parametrize("command", ["benchmark", "worker"])
def test_a_corrupt_profile_file_is_one_line_and_runs_nothing(tmp_path, text, command):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(text)
    args = [command, "--profile", str(bad), "--out", str(tmp_path / "run"), "--no-wandb", "--no-energy"]
    if command == "worker":
        args += ["--storage", str(tmp_path / "bench.log")]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: profile '{bad}'"), done.stderr
    assert "Traceback" not in done.output and not (tmp_path / "run").exists()


def calls(code: str, opening: str) -> list[str]:
    """The argument text of every call ``opening...)`` in ``code`` (parentheses balanced)."""
    out = []
    for m in re.finditer(re.escape(opening), code):
        depth, i = 1, m.end()
        while depth and i < len(code):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        out.append(code[m.end() : i - 1])
    return out


def test_code_loads_nothing_unsafely():
    """YAML with safe_load, torch weights with weights_only=True, pickles only through the restricted
    unpickler, HTML through an autoescaping Jinja2 environment."""
    sources = {p: p.read_text() for d in ("suite", "tasks", "reports") for p in (ROOT / d).rglob("*.py")}
    for path, text in sources.items():
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"\byaml\.(load|unsafe_load|full_load)\(", code), path
        for call in calls(code, "torch.load("):
            assert "weights_only=True" in call, (path, call)
        assert not re.search(r"\bpickle\.loads?\(", code), path
        assert "allow_pickle=True" not in code, path
        for call in calls(code, "jinja2.Environment("):
            assert "autoescape=True" in call, (path, call)
    assert any("weights_only=True" in t for t in sources.values())


@pytest.mark.slow
def test_storage_url_with_a_password_is_masked_everywhere(postgres_url, tmp_path):  # noqa: F811
    secret, key = "Pw-0f-the-db-9", "fakekey" + "0123456789abcdef" * 2 + "zz"
    base = fresh_database(postgres_url, "masking")
    url = base.replace("postgres@", f"postgres:{secret}@")
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({**ONE_ARM, "tune_trials": 1, "tracking": {}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "CODECARBON_"))}
    env.update(HOME=str(tmp_path), WANDB_MODE="offline", WANDB_API_KEY=key, COLUMNS="200")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "suite.cli", "benchmark", "--profile", str(profile),
                           "--storage", url, "--out", str(out), "--device", "cpu", "--jobs", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "postgres:***@127.0.0.1" in done.stdout
    for secret_text in (secret, key):
        assert secret_text not in done.stdout and secret_text not in done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"emissions.csv", "profile.yaml"} <= names and any(p.suffix == ".wandb" for p in files)
    assert (out / "report" / "index.html").is_file()
    for p in files:
        blob = p.read_bytes()
        assert secret.encode() not in blob and key.encode() not in blob, p
    store = open_storage(url, heartbeat=False)
    for summary in tuning_summaries(store):
        study = optuna.load_study(study_name=summary.study_name, storage=store)
        blob = json.dumps([study.user_attrs, [(t.user_attrs, t.system_attrs) for t in study.get_trials()]],
                          default=str)
        assert secret not in blob and key not in blob
        assert all(t.state == TrialState.COMPLETE for t in study.get_trials())


def test_an_unreachable_storage_is_one_masked_line():
    secret = "Pw-unreachable-1"
    done = CliRunner().invoke(app, ["benchmark", "--profile", str(ROOT / "tests" / "profiles" / "tiny.yaml"),
                                    "--storage", f"postgresql+psycopg2://bob:{secret}@127.0.0.1:1/db"])
    assert done.exit_code == 2
    assert "error: storage 'postgresql+psycopg2://bob:***@127.0.0.1:1/db' cannot be opened" in done.stderr
    assert secret not in done.output + done.stderr


PASSWORD = "p@ss:w/rd%40x"  # '@', ':' and '/' unencoded, and a literal '%40'
PIECES = (PASSWORD, "p@ss", "ss:w", "w/rd", "rd%40x", "rd@x", "p%40ss", "%3Aw", "%2Frd", "%2540x", "rd%2540x")


def leaked(text: str) -> list[str]:
    """The parts of :data:`PASSWORD` (whole, decoded, encoded, and across each separator) in ``text``."""
    return [p for p in PIECES if p in text]


@pytest.mark.slow
def test_a_password_with_url_characters_never_shows_in_any_line_or_file(postgres_url, tmp_path):  # noqa: F811
    """A closed port and a wrong password on the real server, the password written unencoded (refused
    before any driver sees it) and URL-encoded (the driver's own messages are masked as a whole)."""
    from urllib.parse import quote

    import sqlalchemy

    from tests.postgres import PASSWORD_ROLE

    base = fresh_database(postgres_url, "masking_wrong")
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP ROLE IF EXISTS {PASSWORD_ROLE}"))
        conn.execute(sqlalchemy.text(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'the-right-one'"))
    engine.dispose()
    host_db = base.split("@", 1)[1]  # 127.0.0.1:PORT/masking_wrong
    encoded = quote(PASSWORD, safe="")
    urls = {
        "unencoded, closed port": f"postgresql+psycopg2://{PASSWORD_ROLE}:{PASSWORD}@127.0.0.1:1/db",
        "encoded, closed port": f"postgresql+psycopg2://{PASSWORD_ROLE}:{encoded}@127.0.0.1:1/db",
        "encoded, wrong password": f"postgresql+psycopg2://{PASSWORD_ROLE}:{encoded}@{host_db}",
        "unencoded, wrong password": f"postgresql+psycopg2://{PASSWORD_ROLE}:{PASSWORD}@{host_db}",
    }
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({**ONE_ARM, "tune_trials": 1, "tracking": {}}))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "CODECARBON_"))},
           "HOME": str(tmp_path), "WANDB_MODE": "offline", "COLUMNS": "300"}
    for case, url in urls.items():
        out = tmp_path / case.replace(" ", "_").replace(",", "")
        commands = [["benchmark", "--profile", str(profile), "--storage", url, "--out", str(out), "--jobs", "1"],
                    ["report", url, "--out", str(out / "report")]]
        if case == "encoded, wrong password":  # every command that opens a storage, on the real server
            commands += [["worker", "--profile", str(profile), "--storage", url, "--out", str(out)],
                         ["export", url, "--out", str(out / "t.parquet")], ["dashboard", url, "--port", "1"]]
        for args in commands:
            done = subprocess.run([sys.executable, "-m", "suite.cli", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (case, args[0],
                                                                                                 done.stderr)
            assert not leaked(done.stdout + done.stderr), (case, args[0], done.stderr)
            if case.startswith("unencoded"):  # refused before a driver saw it
                assert "unencoded: write it URL-encoded (/ as %2F, : as %3A, @ as %40" in lines[0], lines[0]
            elif case.endswith("wrong password"):
                assert "password authentication failed" in lines[0], lines[0]
        for path in (p for p in tmp_path.rglob("*") if p.is_file()):
            assert not leaked(path.read_text(errors="replace")), path
