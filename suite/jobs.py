"""``suite benchmark --jobs N``: N worker processes on this machine share the run folder's storage.

The parent opens every study first (so the defaults are enqueued once), then starts N ``suite
worker`` processes on a journal file inside the run folder (``optuna.journal.log``: safe for
several processes, portable with the folder). They run the same protocol with the same exact
budgets as one process (claims beyond a budget are marked surplus; see :mod:`suite.tune`). Each job
keeps its process for all its trials, so CodeCarbon's probe, W&B's start-up and the imports are paid
once per job. On CPU each job trains with one intra-op thread (``OMP_NUM_THREADS=1``, recorded as
``torch_threads``); on GPUs the jobs are spread over the visible devices, one
``CUDA_VISIBLE_DEVICES`` per job.

**Energy.** Concurrent trials share the CPU, RAM and GPU power that a tracker measures for the whole
device, so adding per-trial measurements would count the machine N times. The parent runs one
CodeCarbon tracker for the machine over the run (and reads NVML's energy counter per GPU); each trial
records its process's CPU seconds and wall time (:class:`suite.energy.CpuTimeMeter`). At the end
the machine's CPU and RAM energy is shared out by CPU seconds and each GPU's energy by the time
trials ran on it (:func:`suite.energy.apportion`); the shares are stored in the study attr
``energy_apportioned`` (finished trials cannot be changed) and the report reads them in place of
the record's pending energy, so its totals equal the measured machine total.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from suite.energy import MachineMeter, store_apportioned
from suite.errors import Interrupted, SuiteError
from suite.runlock import run_lock
from suite.storage import RUN_DB, SQLITE, parse_storage
from suite.storage import RUN_JOURNAL as JOURNAL

#: jobs per GPU with ``--jobs auto``: the networks of the built-in tasks leave a GPU mostly idle
#: (Lightning's per-step dispatch is longer than their kernels); not yet measured on a GPU machine
JOBS_PER_GPU = 4
#: GPU memory a job may take with ``--jobs auto`` (GiB); fewer jobs where the free memory is smaller
GPU_GIB_PER_JOB = 4.0


def auto_jobs(*, cpus: int, gpus: Sequence[str], gpu_free_gib: Mapping[str, float] | None = None) -> int:
    """How many jobs ``--jobs auto`` starts: on CPU one per core (each trial then uses one thread); on
    GPUs :data:`JOBS_PER_GPU` per device, no more than its free memory holds at :data:`GPU_GIB_PER_JOB`
    each, and no more than the CPU cores that feed them."""
    if not gpus:
        return max(1, cpus)
    free = gpu_free_gib or {}
    per = [max(1, min(JOBS_PER_GPU, int(free[g] // GPU_GIB_PER_JOB) if g in free else JOBS_PER_GPU))
           for g in gpus]
    return max(1, min(sum(per), cpus))


def job_envs(jobs: int, gpus: Sequence[str], run_id: str) -> list[dict[str, str]]:
    """The environment of each job: one intra-op thread, its GPU (round robin over ``gpus``), the
    run's id (so the parent can tell this run's trials from a resumed run's), how many jobs run and
    how many share its device (recorded with each trial: :func:`suite.train.concurrency`)."""
    envs = []
    for i in range(jobs):
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SUITE_JOB_RUN": run_id,
               "PYTHONUNBUFFERED": "1", "COLUMNS": "1000", "SUITE_JOBS": str(jobs),
               "SUITE_JOBS_PER_DEVICE": str(jobs)}  # on CPU every job shares the one device
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            env["SUITE_JOBS_PER_DEVICE"] = str(len(range(i % len(gpus), jobs, len(gpus))))
        envs.append(env)
    return envs


def visible_gpus() -> list[str]:
    """Indices of the GPUs this process may use (``CUDA_VISIBLE_DEVICES`` or all), none without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_free_gib(gpus: Sequence[str]) -> dict[str, float]:
    import torch

    out = {}
    for i, g in enumerate(gpus):
        try:
            free, _ = torch.cuda.mem_get_info(i)
            out[g] = free / 2**30
        except Exception:
            continue
    return out


def choose_jobs(jobs: str, folder: Path, storage: str | None, device: str
                ) -> tuple[int, list[str], str | None]:
    """How many jobs to start, on which GPUs, and why one when ``auto`` chose one: ``auto`` falls back
    to one process where the storage is SQLite (an existing ``optuna.db`` run folder, or ``--storage
    sqlite:...``)."""
    gpus = visible_gpus() if device != "cpu" else []
    sqlite = (parse_storage(storage).kind == SQLITE) if storage else (folder / RUN_DB).exists()
    if jobs == "auto":
        if sqlite:
            return 1, gpus, f"one job: {storage or folder / RUN_DB} is SQLite (one process at a time)"
        return auto_jobs(cpus=os.cpu_count() or 1, gpus=gpus, gpu_free_gib=gpu_free_gib(gpus)), gpus, None
    return int(jobs), gpus, None


def run_storage(out_dir: Path, storage: str | None) -> str:
    """The storage the jobs share: ``storage`` when it is a shared one, else the run folder's journal.

    Raises:
        SuiteError: ``storage`` is SQLite, or the run folder keeps its trials in ``optuna.db``.
    """
    if storage:
        if parse_storage(storage).kind == SQLITE:
            raise SuiteError(f"--jobs needs a storage several processes can share, not SQLite ({storage}); "
                             "leave --storage out (a journal file in the run folder), or use --jobs 1")
        return storage
    if (out_dir / RUN_DB).exists():
        raise SuiteError(f"{out_dir} keeps its trials in optuna.db (SQLite, one process at a time): resume "
                         "it with --jobs 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    return str((out_dir / JOURNAL).resolve())


def run_jobs(profile: Any, profile_arg: str, *, jobs: int, out_dir: Path, storage: str | None,
             device: str, wandb: bool | None, energy: bool | None, report: bool, console: Any,
             gpus: Sequence[str] = (), wait_s: float = 1.0) -> Any:
    """Run ``profile`` with ``jobs`` worker processes on one storage; the parent shows one progress
    display, measures the machine's energy, apportions it and builds the report.

    Returns:
        A :class:`suite.benchmark.BenchmarkResult`.
    """
    from suite.benchmark import (
        BenchmarkResult,
        amend_wandb,
        build_report_if_available,
        quiet_optuna,
        run_progress,
        say_resumed,
        trials_done,
    )
    from suite.energy import DEFAULT_COUNTRY
    from suite.plan import trials_per_study
    from suite.storage import open_storage
    from suite.tune import open_arm_studies
    from suite.workers import fail_dead_running

    quiet_optuna()
    started = time.perf_counter()
    url = run_storage(out_dir, storage)
    with run_lock(out_dir):  # the one writer of the run folder; its own workers take no lock
        (out_dir / "profile.yaml").write_text(yaml.safe_dump(profile.source, sort_keys=False))
        store = open_storage(url)
        pairs = open_arm_studies(store, profile)  # defaults enqueued once
        studies = [s for pair in pairs for s in pair]
        failed_leftovers = sum(fail_dead_running(s) for s in studies)

        def done() -> int:
            return trials_done(profile, pairs)

        total = trials_per_study(profile) * len(pairs)
        resumed = done()
        say_resumed(console, profile, resumed, total, failed_leftovers)
        settings = dict(profile.tracking)
        measure = settings.get("energy", True) if energy is None else energy
        run_id = uuid.uuid4().hex[:12]
        meter = MachineMeter(settings.get("country", DEFAULT_COUNTRY)) if measure else None
        cmd = [sys.executable, "-m", "suite.cli", "worker", "--storage", url, "--profile", profile_arg,
               "--out", str(out_dir), "--device", device, "--job"]
        if wandb is False:
            cmd.append("--no-wandb")
        if not measure:
            cmd.append("--no-energy")
        lines: queue.Queue[tuple[int, str]] = queue.Queue()
        procs = []
        for i, env in enumerate(job_envs(jobs, gpus, run_id)):
            p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
            procs.append(p)
            threading.Thread(target=_pump, args=(i, p, lines), daemon=True).start()
        status = {i: "starting" for i in range(jobs)}
        tail: dict[int, list[str]] = {i: [] for i in range(jobs)}
        interrupted = False
        try:
            with run_progress(console, "jobs") as progress:
                bar = progress.add_task(profile.name, total=total, completed=resumed, jobs=f"{jobs} jobs")
                last_poll = 0.0
                while any(p.poll() is None for p in procs) or not lines.empty():
                    try:
                        i, line = lines.get(timeout=wait_s)
                    except queue.Empty:
                        i, line = -1, ""
                    if line.startswith("@start "):
                        status[i] = line.removeprefix("@start ")
                    elif line.startswith("  "):  # a finished trial
                        progress.console.print(f"{line} [job {i + 1}]", markup=False, highlight=False,
                                               soft_wrap=True)
                        status[i] = "idle"
                    elif line:
                        tail[i] = [*tail[i][-20:], line]
                    if time.monotonic() - last_poll > 2 * wait_s:
                        last_poll = time.monotonic()
                        running = "; ".join(f"{k + 1}: {v}" for k, v in status.items())
                        progress.update(bar, completed=done(), description=profile.name,
                                        jobs=f"{jobs} jobs ({running})" if progress.console.is_terminal else
                                        f"{jobs} jobs")
                progress.update(bar, completed=done())
        except KeyboardInterrupt:
            interrupted = True
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        machine = meter.stop() if meter is not None else None
        for s in studies:
            fail_dead_running(s)  # a job that died mid-trial: its trial is requeued for a resume
        apportioned = store_apportioned(studies, run_id, machine, out_dir) if machine is not None else 0
        amend_wandb(out_dir, pairs, console)  # the shares and `chosen` into each trial's W&B run
        if machine is not None:  # the run's machine measurement, beside the trials' shares of it
            with (out_dir / "energy_runs.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps({"run": run_id, "jobs": jobs, "trials_apportioned": apportioned,
                                    "wall_s": time.perf_counter() - started, **machine}) + "\n")
        if interrupted:
            raise Interrupted(f"{done()}/{total} trials done are kept in {url}; the trials that were "
                              "running are recorded as interrupted and redone on resume: run the same "
                              "command again to resume")
        bad = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
        if bad:
            i, rc = bad[0]
            last = next((ln for ln in reversed(tail[i]) if ln.startswith("error:")),
                        tail[i][-1] if tail[i] else "")
            raise SuiteError(f"job {i + 1} of {jobs} exited with {rc}: {last} (finished trials are kept in "
                             f"{url})")
        ran = done() - resumed
        result = BenchmarkResult(out_dir, url, len(profile.arms), ran, resumed, failed_leftovers,
                                 time.perf_counter() - started, studies=[s.study_name for s, _ in pairs],
                                 jobs=jobs, machine_energy=machine, apportioned=apportioned)
        if report:
            result.report = build_report_if_available([str(out_dir) if not storage else url],
                                                      out_dir / "report", console)
        return result


def _pump(i: int, proc: subprocess.Popen, lines: queue.Queue) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put((i, line.rstrip("\n")))
