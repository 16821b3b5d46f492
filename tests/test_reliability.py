"""Reliability: torn journal files, one writer per run folder, hostile or mistyped profiles.

Everything here is real: journals written by a real ``suite worker`` process and cut at byte
offsets, lock files held by real processes, profiles read from files by the CLI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from suite.accounting import PHASE_CONFIRM, PHASE_TUNE, phase_of
from suite.cli import app
from suite.errors import SuiteError
from suite.journal import is_record, repair_torn_tail
from suite.profile import parse_profile
from suite.runlock import LOCK, run_lock
from suite.storage import RUN_DB, RUN_JOURNAL, open_storage
from tests.arms import ArmStudy, record, tuning_summaries

ROOT = Path(__file__).resolve().parent.parent
REL = {"name": "rel", "tune_trials": 2, "confirm_seeds": 1, "confirm_candidates": 1, "pruner": "none",
       "epochs": 1, "tracking": {"wandb": False, "energy": False},
       "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam"],
                   "params": {"width": 16, "depth": 1, "batch_size": 128}}]}
TOTAL = 3  # trials of REL: 2 tuning + 1 confirm
QUIET = ("--device", "cpu", "--no-wandb", "--no-energy")


def env_of(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "CODECARBON_"))}
    env.update(HOME=str(tmp), WANDB_MODE="disabled", COLUMNS="200")
    return env


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(*args: str) -> str:
    """Run the CLI; assert it refused in one ``error:`` line with exit code 2; return the line."""
    done = cli(*args)
    assert done.exit_code == 2, (done.exit_code, done.output, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.output + done.stderr
    return lines[0]


def records(data: bytes) -> list[bytes]:
    """The lines of a journal, each with its newline (the last may lack it)."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def finished(path: Path) -> dict[tuple[str, int], tuple]:
    """(study, number) -> (state, value, params, seed) of every finished trial Optuna reads in ``path``."""
    store = open_storage(str(path), write=False)
    out = {}
    for s in optuna.get_all_study_summaries(store):  # confirm studies too, under their own names
        for t in optuna.load_study(study_name=s.study_name, storage=store).get_trials():
            if t.state.is_finished():
                out[(s.study_name, t.number)] = (t.state, t.value, t.params, t.user_attrs.get("seed"))
    return out


def counted(storage: str) -> list[optuna.trial.FrozenTrial]:
    store = open_storage(storage, write=False)
    (summary,) = tuning_summaries(store)
    return [t for t in ArmStudy(store, summary.study_name).get_trials()
            if not t.user_attrs.get("surplus") and t.state.is_finished() and record(t) is not None]


def assert_exact_budget(storage: str) -> None:
    trials = counted(storage)
    assert sorted(phase_of(t) for t in trials) == [PHASE_CONFIRM, PHASE_TUNE, PHASE_TUNE], trials
    assert all(t.state == TrialState.COMPLETE for t in trials)


# ------------------------------------------------------------------------------- torn journals


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "rel.yaml"
    path.write_text(yaml.safe_dump(REL))
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory, profile) -> bytes:
    """A whole journal written by a real ``suite worker`` process running ``profile``, which has
    exited (the trials it ran have a dead owner, as after a crash)."""
    d = tmp_path_factory.mktemp("written")
    journal = d / RUN_JOURNAL
    done = subprocess.run([sys.executable, "-m", "suite.cli", "worker", "--storage", str(journal),
                           "--profile", str(profile), "--out", str(d), *QUIET],
                          cwd=ROOT, env=env_of(d), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = journal.read_bytes()
    assert all(is_record(line) for line in records(data))
    return data


def record_line(lines: list[bytes], trial_id: int) -> int:
    """Index of the line that stores trial ``trial_id``'s record (the longest line of a trial)."""
    return next(i for i, line in enumerate(lines)
                if b'"system_attr":{"record":' in line and f'"trial_id":{trial_id},'.encode() in line)


def cut(data: bytes, case: str) -> bytes:
    lines = records(data)
    r = record_line(lines, 1)
    head, rec = b"".join(lines[:r]), lines[r]
    return {
        "mid-last-line": b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2],
        "last-newline-missing": data[:-1],
        "mid-record": head + rec[: len(rec) // 2],  # killed while writing trial 1's record
        "torn-then-newline": head + rec[: len(rec) // 2] + b"\n",  # a last line that is not JSON
        # record, then its summary (user attr "result"), then the COMPLETE state: cut right after it
        "after-a-newline": b"".join(lines[: r + 3]),
        "inside-first-line": lines[0][:25],
    }[case]


@pytest.mark.parametrize("case", ["mid-last-line", "last-newline-missing", "mid-record", "torn-then-newline",
                                  "after-a-newline", "inside-first-line"])
def test_a_torn_journal_is_repaired_with_a_copy_and_worker_report_and_resume_keep_working(written, profile,
                                                                                        tmp_path, case):
    data = cut(written, case)
    torn = case != "after-a-newline"
    run = tmp_path / "run"
    run.mkdir()
    path = run / RUN_JOURNAL
    path.write_bytes(data)
    before = finished(path)  # what Optuna's reader makes of the torn file
    if case == "mid-record":
        assert len(before) == 1  # trial 0; trial 1 is RUNNING with a dead owner

    done = cli("worker", "--storage", path, "--profile", profile, "--out", run, *QUIET)
    assert done.exit_code == 0, (done.output, done.stderr)
    copies = sorted(run.glob(f"{RUN_JOURNAL}.torn-*"))
    warnings = [ln for ln in done.stderr.splitlines() if ln.startswith("warning:")]
    if torn:
        assert len(copies) == 1 and copies[0].read_bytes() == data  # the file as it was
        assert len(warnings) == 1, done.stderr
        assert warnings[0].startswith(f"warning: journal {path} ended in a torn record")
        assert warnings[0].endswith(f"the file as it was is kept in {copies[0]}")
    else:
        assert not copies and not warnings, done.stderr
    assert all(is_record(line) for line in records(path.read_bytes()))
    after = finished(path)
    assert {k: after[k] for k in before} == before  # every result read before is kept
    assert_exact_budget(str(path))

    report = cli("report", run, "--out", tmp_path / "report")
    assert report.exit_code == 0, (report.output, report.stderr)
    assert (tmp_path / "report" / "index.html").is_file()
    again = cli("benchmark", "--profile", profile, "--out", run, "--jobs", "1", "--no-report", *QUIET)
    assert again.exit_code == 0, (again.output, again.stderr)
    assert f"resuming rel: {TOTAL}/{TOTAL} trials already done" in again.stderr
    assert finished(path) == after and len(sorted(run.glob(f"{RUN_JOURNAL}.torn-*"))) == len(copies)


@pytest.mark.parametrize("case", ["appended-after-a-torn-line", "garbage-line"])
def test_a_bad_record_in_the_middle_is_refused_with_its_line_and_left_as_it_is(written, profile, tmp_path,
                                                                               case):
    lines = records(written)
    if case == "appended-after-a-torn-line":  # what a worker did before the repair existed
        r = record_line(lines, 1)
        lines = [*lines[:r], lines[r][: len(lines[r]) // 2] + lines[r + 1], *lines[r + 2:]]
        bad = r + 1
    else:
        lines = [*lines[:4], b"garbage\n", *lines[5:]]
        bad = 5
    run = tmp_path / "run"
    run.mkdir()
    path = run / RUN_JOURNAL
    data = b"".join(lines)
    path.write_bytes(data)
    for args in (("worker", "--storage", path, "--profile", profile, "--out", run, *QUIET),
                 ("benchmark", "--profile", profile, "--out", run, "--jobs", "1", *QUIET),
                 ("report", run, "--out", tmp_path / "report")):
        line = refused(*args)
        assert line.startswith(f"error: journal {path} line {bad} of {len(lines)} is not a complete record")
        assert f"sed -i '{bad}d' {path}" in line and f"head -n {bad - 1} {path}" in line
    assert path.read_bytes() == data and not list(run.glob("*.torn-*"))
    assert not (run / LOCK).exists()  # the refusing benchmark released its run folder


def test_a_journal_in_a_missing_folder_is_one_line(tmp_path, profile):
    path = tmp_path / "missing" / RUN_JOURNAL
    line = refused("worker", "--storage", path, "--profile", profile, "--out", tmp_path / "run", *QUIET)
    assert line == f"error: journal file {str(path)!r} cannot be opened: FileNotFoundError: No such file or directory"


def test_a_record_being_appended_by_a_live_writer_is_never_cut(written, tmp_path):
    """The repair takes Optuna's journal lock: a half-written last line whose writer holds the lock is
    waited for, not mistaken for a torn record."""
    from optuna.storages.journal import JournalFileSymlinkLock

    lines = records(written)
    path = tmp_path / RUN_JOURNAL
    lock = JournalFileSymlinkLock(str(path))
    path.write_bytes(b"".join(lines[:-1]))
    lock.acquire()  # as JournalFileBackend.append_logs does
    with path.open("ab") as f:
        f.write(lines[-1][:10])
        f.flush()
        result: list = []
        repair = threading.Thread(target=lambda: result.append(repair_torn_tail(path)))
        repair.start()
        time.sleep(0.5)
        assert repair.is_alive()  # waiting for the lock
        f.write(lines[-1][10:])
    lock.release()
    repair.join(timeout=30)
    assert result == [None] and path.read_bytes() == written
    assert not list(tmp_path.glob("*.torn-*"))


# --------------------------------------------------------------------------- one writer per folder


def test_a_second_benchmark_on_a_sqlite_run_folder_is_refused_and_the_first_finishes(tmp_path):
    profile = tmp_path / "rel.yaml"
    profile.write_text(yaml.safe_dump({**REL, "epochs": 25}))  # seconds of trials: the lock is held meanwhile
    run = tmp_path / "run"
    args = ["benchmark", "--profile", str(profile), "--out", str(run), "--jobs", "1", "--no-report", *QUIET]
    first = subprocess.Popen([sys.executable, "-m", "suite.cli", *args], cwd=ROOT, env=env_of(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = run / LOCK
    deadline = time.monotonic() + 180
    while not lock.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-3000:]
        time.sleep(0.05)
    holder = json.loads(lock.read_text())
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
    assert holder["command"].startswith("suite benchmark --profile")

    line = refused(*args)
    assert first.poll() is None  # refused while the first one ran
    assert line.startswith(f"error: run folder {run} is in use by pid {first.pid} on {socket.gethostname()} "
                           f"since {holder['started']} (suite benchmark")
    assert "--jobs N" in line and "`suite worker` on a shared storage" in line

    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert not lock.exists()
    assert_exact_budget(f"sqlite:///{run / RUN_DB}")


def test_a_held_run_folder_refuses_a_jobs_parent_but_never_a_worker(tmp_path, profile):
    run = tmp_path / "run"
    with run_lock(run, command="suite benchmark --jobs 2"):
        line = refused("benchmark", "--profile", profile, "--out", run, "--jobs", "2", *QUIET)
        assert f"is in use by pid {os.getpid()} on {socket.gethostname()}" in line
        assert not (run / RUN_JOURNAL).exists()  # refused before anything was written or started
        done = cli("worker", "--storage", run / RUN_JOURNAL, "--profile", profile, "--out", run, *QUIET)
        assert done.exit_code == 0, (done.output, done.stderr)
        assert (run / LOCK).exists()
    assert not (run / LOCK).exists()
    assert_exact_budget(str(run / RUN_JOURNAL))


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_line(tmp_path, profile):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(),
                                        "started": "2026-01-01T00:00:00Z", "command": "suite benchmark"}))
    done = cli("benchmark", "--profile", profile, "--out", run, "--jobs", "1", "--no-report", *QUIET)
    assert done.exit_code == 0, (done.output, done.stderr)
    (warning,) = [ln for ln in done.stderr.splitlines() if ln.startswith("warning:")]
    assert warning == (f"warning: took over the stale lock {run / LOCK} of pid {gone.pid} on "
                       f"{socket.gethostname()} (since 2026-01-01T00:00:00Z): that process is no longer running")
    assert not (run / LOCK).exists()
    assert_exact_budget(f"sqlite:///{run / RUN_DB}")


def test_a_lock_from_another_host_is_not_taken_over(tmp_path, profile):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2026-01-01T00:00:00Z",
                                        "command": "suite benchmark"}))
    line = refused("benchmark", "--profile", profile, "--out", run, "--jobs", "1", *QUIET)
    assert "locked by pid 1 on elsewhere since 2026-01-01T00:00:00Z" in line
    assert f"if that run is over, delete {run / LOCK}" in line
    assert (run / LOCK).exists() and not (run / RUN_DB).exists()


# ------------------------------------------------------------------------------------- profiles


BASE = "name: p\nmatrix:\n  - tasks: [digits]\n    families: [mlp]\n    optimizers: [adam]\n"


def profile_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def dry_run_refused(tmp_path: Path, text: str) -> str:
    path = profile_file(tmp_path, text)
    line = refused("benchmark", "--profile", path, "--dry-run", "--out", tmp_path / "run")
    assert line.startswith(f"error: profile '{path}'"), line
    assert not (tmp_path / "run").exists()
    return line


def test_a_profile_over_one_mebibyte_is_refused_unread(tmp_path):
    line = dry_run_refused(tmp_path, BASE + "description: " + "x" * (1 << 20) + "\n")
    assert "a profile may have at most 1,048,576 bytes (1 MiB)" in line


def test_a_yaml_alias_bomb_in_the_description_is_refused_without_expanding_it(tmp_path):
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 7):  # 10**7 leaves once expanded; a real bomb goes on to 10**9
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = BASE + "description:\n" + "".join(f"  - {lv}\n" for lv in levels)
    started = time.perf_counter()
    line = dry_run_refused(tmp_path, text)
    assert time.perf_counter() - started < 5
    assert "YAML aliases (*a) are not allowed in a profile" in line and "at line 8" in line


@pytest.mark.parametrize(("text", "expected"), [
    ("description: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 32 levels"),
    (BASE + "seed: 2024-13-45\n", "ValueError: month must be in 1..12"),
    (BASE + "description: {a: 1}\n", "description must be text, got a dict"),
    ("1: a\nx: b\n", "unknown key 1"),
    (BASE + "    regularizers: [[dropout], 5]\n", "regularizers must be a list of lists of names, got 5"),
], ids=["deeply-nested", "bad-timestamp", "description-mapping", "mixed-keys", "regularizer-not-a-list"])
def test_any_profile_parse_error_is_one_line(tmp_path, text, expected):
    assert expected in dry_run_refused(tmp_path, text)


def test_regularizer_sets_in_another_order_are_one_arm_with_a_line(capsys):
    data = {**REL, "matrix": [{**REL["matrix"][0], "regularizers": [["dropout", "l2"], ["l2", "dropout"],
                                                                     ["none"], []]}]}
    prof = parse_profile(data, "p.yaml")
    assert [a.regularizers for a in prof.arms] == [("dropout", "l2"), ("none",)]
    warnings = capsys.readouterr().err.strip().splitlines()
    assert warnings == ["warning: profile 'p.yaml' matrix[0]: regularizers ['l2', 'dropout'] repeat "
                        "['dropout', 'l2'] (the order does not matter): merged into one arm (dropout+l2)",
                        "warning: profile 'p.yaml' matrix[0]: regularizers [] repeat ['none'] (the order "
                        "does not matter): merged into one arm (none)"]
    twice = {**REL, "matrix": [{**REL["matrix"][0], "regularizers": [["dropout", "l2"]]},
                               {**REL["matrix"][0], "regularizers": [["l2", "dropout"]]}]}
    with pytest.raises(SuiteError, match=r"arm 'rel/digits/mlp/adam/l2\+dropout' appears twice in the matrix "
                                         r"\(as 'rel/digits/mlp/adam/dropout\+l2': the same regularizers"):
        parse_profile(twice, "p.yaml")


@pytest.mark.parametrize(("tracking", "expected"), [
    ('{wandb: "no"}', "tracking wandb must be true or false (a YAML boolean, unquoted), got 'no'"),
    ("{wandb: false, energy: [1]}", "tracking energy must be true or false (a YAML boolean, unquoted), got [1]"),
    ("{energy: 1}", "tracking energy must be true or false (a YAML boolean, unquoted), got 1"),
    ("{wandb: null}", "tracking wandb must be true or false (a YAML boolean, unquoted), got None"),
    ("{country: usa}", "tracking country must be an ISO 3166-1 alpha-3 code (three capital letters, such as "
                       "USA or FRA), got 'usa'"),
    ("{country: 250}", "got 250"),
    ("[wandb]", "tracking must be a mapping, got ['wandb']"),
])
def test_tracking_values_must_have_their_type(tmp_path, tracking, expected):
    assert expected in dry_run_refused(tmp_path, BASE + f"tracking: {tracking}\n")


def test_yaml_booleans_and_a_country_code_are_accepted():
    prof = parse_profile({**REL, "tracking": {"wandb": False, "energy": True, "country": "FRA"}})
    assert dict(prof.tracking) == {"wandb": False, "energy": True, "country": "FRA"}


@pytest.mark.parametrize(("extra", "expected"), [
    ("seed: -1\n", "seed must be an integer in 0..4294967295 (2**32 - 1), got -1"),
    ("seed: 4294967296\n", "seed must be an integer in 0..4294967295 (2**32 - 1), got 4294967296"),
    ("seed: 1.5\n", "got 1.5"),
    ("seed: '3'\n", "got '3'"),
    ("sampler_seed: -1\n", "sampler_seed must be an integer in 0..4294967295 (2**32 - 1), got -1"),
    ("sampler_seed: 4294967296\n", "got 4294967296"),
    ("seed: 4294967295\nconfirm_seeds: 1\n", "seed + studies x confirm_seeds and seed + (studies - 1) x 1000000 must be <= 4294967295"),
])
def test_profile_seeds_must_fit_numpy(tmp_path, extra, expected):
    assert expected in dry_run_refused(tmp_path, BASE + extra)


def test_the_largest_seeds_are_accepted():
    prof = parse_profile({**REL, "seed": 2**32 - 2, "confirm_seeds": 1, "sampler_seed": 2**32 - 1})
    assert (prof.seed, prof.sampler_seed) == (2**32 - 2, 2**32 - 1)


@pytest.mark.parametrize("args", [
    ("run", "--task", "digits", "--family", "mlp", "--seed", "-1"),
    ("run", "--task", "digits", "--family", "mlp", "--seed", "4294967296"),
    ("tune", "--task", "digits", "--family", "mlp", "--sampler-seed", "-1"),
], ids=["run-negative", "run-too-large", "tune-sampler-seed"])
def test_cli_seeds_must_fit_numpy(tmp_path, args):
    option, value = args[-2:]
    line = refused(*args, "--device", "cpu", *(("--out", tmp_path / "run") if args[0] == "tune" else ()))
    assert line == f"error: {option} must be an integer in 0..4294967295 (2**32 - 1), got {value}"
    assert not (tmp_path / "run").exists()


OPEN_AT = """
import sys, time
from suite.storage import open_storage
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
open_storage(sys.argv[1], heartbeat=False)
print("opened")
"""


def test_processes_that_create_one_sqlite_run_folder_together_all_open_it(tmp_path):
    """A benchmark starting while a dashboard (or a test, or a second command) opens the same new
    ``optuna.db``: both run SQLAlchemy's create-if-missing, one ``CREATE TABLE`` answers "already
    exists". Every opener must get the storage (seen in CI: the benchmark exited 2 on it)."""
    url = f"sqlite:///{tmp_path / RUN_DB}"
    start = time.time() + 8  # past every process's imports, so the CREATE TABLEs meet
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, url, str(start)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-600:] for _, err in results if err]
    assert len(optuna.storages.RDBStorage(url, skip_table_creation=True).get_all_studies()) == 0
