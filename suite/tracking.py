"""Experiment tracking for every trial: W&B runs, CodeCarbon and NVML energy, hardware fingerprint.

* W&B: one run per trial through Lightning's ``WandbLogger``; offline by default (files under the
  run folder), online when the user sets ``WANDB_MODE=online`` or has an API key, off with
  ``--no-wandb``. ``wandb.finish()`` runs in a ``finally`` for every trial, so trials never merge.
  wandb's capture of ``sys.argv``, git and machine metadata is off, and no key is ever written.
* CodeCarbon: one ``OfflineEmissionsTracker`` per process (its first start costs ~2.5 s of
  hardware probing here, later trials ~0.01 s) measuring each trial as a task; no network call.
  A CodeCarbon failure never fails the trial: the energy fields are null with the reason.
* NVML: on NVIDIA GPUs, ``nvmlDeviceGetTotalEnergyConsumption`` before and after the trial (all
  visible GPUs summed), recorded beside CodeCarbon's figure.
* Fingerprint: device, GPU model/count/driver, CUDA, CPU model/cores, RAM, host, git commit.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

DEFAULT_COUNTRY = "USA"  # ISO 3166-1 alpha-3; carbon intensity of the grid used for kg CO2eq
WANDB_PROJECT = "dl-benchsuite"


@dataclass
class Tracking:
    """What to track for a trial, and where.

    Args:
        out_dir: run folder; W&B files go to ``out_dir/wandb``, energy rows to
            ``out_dir/emissions.csv``.
        wandb: log a W&B run.
        wandb_mode: ``offline``, ``online`` or ``disabled``; ``None`` = ``$WANDB_MODE``, else
            ``online`` when an API key is configured, else ``offline``.
        project, group, job_type, name: W&B naming (group = arm, job_type = tune/confirm).
        energy: measure energy with CodeCarbon (and NVML where present).
        country: ISO alpha-3 country code of the electricity grid (default ``USA``).
    """

    out_dir: Path
    wandb: bool = True
    wandb_mode: str | None = None
    project: str = WANDB_PROJECT
    group: str | None = None
    job_type: str = "run"
    name: str | None = None
    energy: bool = True
    country: str = DEFAULT_COUNTRY
    apportion: bool = False  # one of several concurrent jobs: record CPU time, the parent apportions


# ----------------------------------------------------------------------------------------- W&B


def wandb_mode(requested: str | None = None) -> str:
    """Resolve the W&B mode: explicit, ``$WANDB_MODE``, online with a key, else offline."""
    if requested:
        return requested
    env = os.environ.get("WANDB_MODE")
    if env:
        return "offline" if env == "dryrun" else env
    return "online" if _has_wandb_key() else "offline"


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_logger(tracking: Tracking, config: dict[str, Any], tags: list[str]):
    """A ``WandbLogger`` for one trial, with metadata capture off."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    logging.getLogger("wandb").setLevel(logging.ERROR)
    os.environ.setdefault("WANDB_SILENT", "true")
    save_dir = tracking.out_dir
    save_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(
        x_disable_meta=True,  # no sys.argv, host metadata or environment in the run files
        x_disable_stats=True,  # no system-metrics sampler thread (cost, and not needed)
        x_disable_machine_info=True,
        disable_git=True,
        save_code=False,
        console="off",
        silent=True,
    )
    logger = WandbLogger(
        project=tracking.project,
        name=tracking.name,
        group=tracking.group,
        job_type=tracking.job_type,
        tags=tags,
        config=config,
        save_dir=str(save_dir),
        mode=wandb_mode(tracking.wandb_mode),
        settings=settings,
        reinit="finish_previous",
        resume=None,  # WandbLogger asks for resume="allow"; a trial is always a new run
    )
    logger._wandb_init.pop("anonymous", None)  # deprecated in wandb; passing it only warns
    return logger


def finish_wandb(logger: Any, summary: dict[str, Any], failed: bool) -> None:
    """Write the run summary and finish the run (always called, also for failed trials)."""
    import wandb

    try:
        if logger is not None and logger._experiment is not None:
            logger.experiment.summary.update(summary)
    finally:
        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)


# -------------------------------------------------------------------------------------- energy


class EnergyMeter:
    """One CodeCarbon tracker per process, measuring each trial as a task, plus NVML counters."""

    _tracker: Any = None
    _country: str | None = None

    @classmethod
    def _get_tracker(cls, country: str):
        if cls._tracker is None or cls._country != country:
            cls._tracker = make_tracker(country)
            cls._country = country
        return cls._tracker

    def __init__(self, country: str = DEFAULT_COUNTRY) -> None:
        self.country = country
        self.error: str | None = None
        self._nvml_start: float | None = None
        self._started = 0.0
        try:
            self.tracker = self._get_tracker(country)
        except Exception as exc:  # a failing tracker never fails the trial
            self.tracker = None
            self.error = f"codecarbon unavailable: {type(exc).__name__}: {exc}"

    def start(self, name: str) -> None:
        self._started = time.perf_counter()
        self._nvml_start = nvml_energy_mj()
        if self.tracker is None:
            return
        try:
            self.tracker.start_task(name)
        except Exception as exc:
            self.error = f"codecarbon start failed: {type(exc).__name__}: {exc}"
            self.tracker = None

    def stop(self) -> dict[str, Any]:
        """Energy fields of the record; ``kwh`` is ``None`` with ``error`` when measuring failed."""
        duration = time.perf_counter() - self._started
        nvml_end = nvml_energy_mj()
        nvml_kwh = None
        if self._nvml_start is not None and nvml_end is not None:
            nvml_kwh = (nvml_end - self._nvml_start) / 3.6e9  # mJ -> kWh
        out: dict[str, Any] = {
            "kwh": None, "emissions_kg": None, "duration_s": duration, "method": None,
            "cpu_power_w": None, "gpu_power_w": None, "ram_power_w": None,
            "nvml_kwh": nvml_kwh, "country": self.country, "error": self.error,
        }
        if self.tracker is None:
            return out
        try:
            data = self.tracker.stop_task()
            if data is None:
                raise RuntimeError("stop_task returned no data")
            out.update(
                kwh=float(data.energy_consumed),
                emissions_kg=float(data.emissions),
                cpu_power_w=float(data.cpu_power),
                gpu_power_w=float(data.gpu_power),
                ram_power_w=float(data.ram_power),
                method=measurement_method(self.tracker),
            )
        except Exception as exc:
            out["error"] = f"codecarbon stop failed: {type(exc).__name__}: {exc}"
        return out


APPORTION_PENDING = "apportioned: pending (the run's machine measurement is shared out at its end)"


class CpuTimeMeter:
    """For a trial run beside others (``suite benchmark --jobs N``): no tracker of its own (each would
    measure the whole machine), but this process's CPU seconds over the trial, its wall time and the
    GPU it ran on, so the parent can give it its share of the machine's measured energy
    (:func:`suite.jobs.apportion`)."""

    def __init__(self, country: str = DEFAULT_COUNTRY) -> None:
        self.country = country
        self._cpu = self._wall = 0.0

    def start(self, name: str) -> None:
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def stop(self) -> dict[str, Any]:
        return {"kwh": None, "emissions_kg": None, "duration_s": time.perf_counter() - self._wall,
                "cpu_s": time.process_time() - self._cpu, "method": APPORTION_PENDING,
                "gpu": os.environ.get("CUDA_VISIBLE_DEVICES") if torch.cuda.is_available() else None,
                "job": os.environ.get("SUITE_JOB_RUN"), "cpu_power_w": None, "gpu_power_w": None,
                "ram_power_w": None, "nvml_kwh": None, "country": self.country, "error": None}


def make_tracker(country: str, mode: str = "process"):
    """A quiet ``OfflineEmissionsTracker`` that never calls the network or writes files."""
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker = OfflineEmissionsTracker(
        country_iso_code=country,
        log_level="error",
        output_methods=[],  # nothing written by CodeCarbon: the suite writes emissions.csv
        measure_power_secs=1,
        allow_multiple_runs=True,
        tracking_mode=mode,
        project_name=WANDB_PROJECT,
    )
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return tracker


CPU_METHODS = {
    "intel_rapl": "rapl",
    "cpu_load": "tdp estimate x load",
    "constant": "tdp constant",
    "intel_power_gadget": "power gadget",
    "apple_powermetrics": "powermetrics",
}


def measurement_method(tracker: Any) -> str:
    """How CodeCarbon measured: per component, RAPL / TDP estimate / NVML (e.g.
    ``cpu: tdp estimate x load (8 W); ram: estimate; gpu: nvml``)."""
    parts = []
    for hw in getattr(tracker, "_hardware", []):
        kind = type(hw).__name__
        if kind == "CPU":
            mode = getattr(hw, "_mode", "?")
            tdp = getattr(hw, "_tdp", None)
            label = CPU_METHODS.get(mode, mode)
            parts.append(f"cpu: {label}" + (f" ({tdp} W)" if tdp and "tdp" in label else ""))
        elif kind == "GPU":
            parts.append("gpu: nvml")
        elif kind == "RAM":
            parts.append("ram: estimate")
        else:
            parts.append(kind.lower())
    return "; ".join(parts) or "unknown"


def nvml_energy_per_gpu_mj() -> dict[str, float]:
    """Total energy of each visible NVIDIA GPU since driver load, in millijoules, by index ({}: no
    NVML)."""
    if not torch.cuda.is_available():
        return {}
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex
        return {str(i): float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle(i)))
                for i in range(pynvml.nvmlDeviceGetCount())}
    except Exception:
        return {}


def nvml_energy_mj() -> float | None:
    """Total energy of all visible NVIDIA GPUs since driver load, in millijoules (None: no NVML)."""
    per_gpu = nvml_energy_per_gpu_mj()
    return sum(per_gpu.values()) if per_gpu else None


def append_emissions(out_dir: Path, row: dict[str, Any]) -> None:
    """Append one trial's energy row to ``out_dir/emissions.csv``."""
    path = out_dir / "emissions.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


# ---------------------------------------------------------------------------------- fingerprint


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    """Hardware and driver fingerprint of this machine (cached per process)."""
    info: dict[str, Any] = {
        "device_type": "cuda" if torch.cuda.is_available() else "cpu",
        "gpu_model": None,
        "gpu_count": 0,
        "gpu_driver": None,
        "cuda": torch.version.cuda,
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "ram_gb": ram_gb(),
        "hostname": platform.node(),
        "platform": platform.platform(terse=True),
    }
    if torch.cuda.is_available():
        info["gpu_count"] = torch.cuda.device_count()
        info["gpu_model"] = torch.cuda.get_device_name(0)
        try:
            import pynvml

            pynvml.nvmlInit()
            driver = pynvml.nvmlSystemGetDriverVersion()
            info["gpu_driver"] = driver.decode() if isinstance(driver, bytes) else driver
        except Exception:
            pass
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The project's git commit (with ``-dirty`` when the tree has changes), if available."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def peak_memory_mb(device: str) -> tuple[float | None, str]:
    """Peak memory and what it measures: CUDA allocator peak, or the process's peak RSS on CPU."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_peak_rss"
    except (ImportError, OSError):
        return None, "unavailable"


class TrialTracking:
    """The tracking steps of one trial as one context manager, each step guarded.

    Entering starts W&B (the run is created now, not lazily at the first log, so that a W&B that
    cannot start is found here) and the energy meter; leaving stops the meter into
    ``record["energy"]``, appends the trial's ``emissions.csv`` line and finishes the W&B run with
    the record's summary. A step that cannot start or finish never fails the trial: the trial runs
    without it and ``record["tracking_errors"]`` names it (``wandb: ...``, ``energy: ...``).
    ``rank`` > 0 (a DDP worker rank) tracks nothing: rank 0 speaks for the trial.
    """

    def __init__(self, record: dict[str, Any], tracking: Tracking | None, *, rank: int = 0) -> None:
        self.record = record
        self.tracking = tracking if rank == 0 else None
        self.logger: Any = None
        self.meter: Any = None

    def __enter__(self) -> TrialTracking:
        t, record = self.tracking, self.record
        if t is not None and t.wandb:
            tags = [record["task"], record["family"], record["optimizer"], *record["regularizers"]]
            self.logger = guarded(record, "wandb",
                                  lambda: started(wandb_logger(t, wandb_config(record), tags)))
        if t is not None and t.energy:
            meter = CpuTimeMeter(t.country) if t.apportion else EnergyMeter(t.country)
            name = f"{record['task']}/{record['family']}/s{record['seed']}"
            if guarded(record, "energy", lambda: meter.start(name) or True):
                self.meter = meter
        return self

    def __exit__(self, *exc: Any) -> None:
        t, record = self.tracking, self.record
        if self.meter is not None:
            record["energy"] = guarded(record, "energy", self.meter.stop)
        if t is not None and t.energy and record.get("energy") and not t.apportion:
            guarded(record, "emissions.csv", lambda: append_emissions(t.out_dir, emissions_row(record)))
        if t is not None and t.wandb:  # also when it did not start: close what wandb.init left open
            guarded(record, "wandb", lambda: finish_wandb(self.logger, wandb_summary(record),
                                                          failed=record["status"] == "failed"))


def started(logger: Any) -> Any:
    """``logger`` with its W&B run created (``WandbLogger`` creates it at the first use)."""
    _ = logger.experiment
    return logger


# -------------------------------------------------------------------------- the record's views


def guarded(record: dict[str, Any], what: str, fn: Any) -> Any:
    """``fn()``, or ``None`` with the failure appended to ``record["tracking_errors"]``."""
    try:
        return fn()
    except Exception as exc:
        record.setdefault("tracking_errors", []).append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def wandb_config(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B run config: the trial's full configuration (no results)."""
    keys = ("task", "family", "optimizer", "regularizers", "params", "seed", "epochs", "batch_size",
            "device", "phase", "arm", "benchmark", "trial_number", "task_info", "versions",
            "hardware", "git_commit")
    return {k: record[k] for k in keys if k in record}


def wandb_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B run summary: final metrics, status, energy, diagnostics flag."""
    summary: dict[str, Any] = dict(record.get("metrics") or {})
    summary.update(status=record["status"], wall_s=record.get("wall_s"), n_params=record.get("n_params"),
                   samples_per_s=record.get("samples_per_s"), epochs_run=record.get("epochs_run"))
    energy = record.get("energy") or {}
    summary.update({f"energy/{k}": v for k, v in energy.items() if k in ("kwh", "emissions_kg", "method",
                                                                         "nvml_kwh")})
    if record.get("diagnostics"):
        summary["diagnostics/flag"] = record["diagnostics"]["flag"]
    if record.get("error"):
        summary["error"] = record["error"]
    return {k: v for k, v in summary.items() if v is not None}


def emissions_row(record: dict[str, Any]) -> dict[str, Any]:
    """One line of ``emissions.csv``."""
    e = record["energy"]
    return {
        "started_at": record["started_at"], "arm": record.get("arm", ""), "task": record["task"],
        "family": record["family"], "optimizer": record["optimizer"],
        "regularizers": "+".join(record["regularizers"]), "seed": record["seed"],
        "status": record["status"], "duration_s": e["duration_s"], "energy_kwh": e["kwh"],
        "emissions_kg": e["emissions_kg"], "nvml_kwh": e["nvml_kwh"], "method": e["method"],
        "country": e["country"], "error": e["error"],
    }


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a result."""
    import lightning
    import numpy
    import torchmetrics

    import suite

    return {
        "suite": suite.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
