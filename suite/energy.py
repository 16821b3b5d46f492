"""Energy and CO2 of trials: CodeCarbon and NVML, measured per trial or per run and apportioned.

* One trial alone: :class:`EnergyMeter`, one ``OfflineEmissionsTracker`` per process (its first
  start costs ~2.5 s of hardware probing here, later trials ~0.01 s) measuring each trial as a
  task, and NVML's ``nvmlDeviceGetTotalEnergyConsumption`` before and after (all visible GPUs
  summed), recorded beside CodeCarbon's figure. A CodeCarbon failure never fails the trial: the
  energy fields are null with the reason.
* Trials run beside others (``suite benchmark --jobs N``): concurrent trials share the CPU, RAM and
  GPU power that a tracker measures for the whole device, so adding per-trial measurements would
  count the machine N times. The parent measures the machine over the run (:class:`MachineMeter`);
  each trial records its process's CPU seconds and wall time (:class:`CpuTimeMeter`). At the end the
  machine's CPU and RAM energy is shared out by CPU seconds and each GPU's energy by the time trials
  ran on it (:func:`apportion`); the shares are stored in the study attr ``energy_apportioned``
  (:func:`store_apportioned`; finished trials cannot be changed) and the report reads them in place
  of the record's pending energy, so its totals equal the measured machine total.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from suite.record import ENERGY_APPORTIONED, stored_record

DEFAULT_COUNTRY = "USA"  # ISO 3166-1 alpha-3; carbon intensity of the grid used for kg CO2eq
CODECARBON_PROJECT = "dl-benchsuite"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


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
        self._others: dict[str, int] = {}
        self._started = 0.0
        try:
            self.tracker = self._get_tracker(country)
        except Exception as exc:  # a failing tracker never fails the trial
            self.tracker = None
            self.error = f"codecarbon unavailable: {type(exc).__name__}: {exc}"

    def start(self, name: str) -> None:
        self._started = time.perf_counter()
        self._nvml_start = nvml_energy_mj()
        self._others = nvml_other_processes()
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
            "gpu_other_processes": most_others(self._others, nvml_other_processes()),
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
                cpu_kwh=float(data.cpu_energy),
                gpu_kwh=float(data.gpu_energy),
                ram_kwh=float(data.ram_energy),
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
    (:func:`apportion`)."""

    def __init__(self, country: str = DEFAULT_COUNTRY) -> None:
        self.country = country
        self._cpu = self._wall = 0.0

    def start(self, name: str) -> None:
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def stop(self) -> dict[str, Any]:
        return {"kwh": None, "emissions_kg": None, "duration_s": time.perf_counter() - self._wall,
                "cpu_s": time.process_time() - self._cpu, "method": APPORTION_PENDING,
                "gpu": os.environ.get("CUDA_VISIBLE_DEVICES") if _cuda_available() else None,
                "job": os.environ.get("SUITE_JOB_RUN"), "cpu_power_w": None, "gpu_power_w": None,
                "ram_power_w": None, "nvml_kwh": None, "country": self.country, "error": None}


def tracker_kwargs(country: str, mode: str, gpu_ids: list[int] | None) -> dict[str, Any]:
    """The ``OfflineEmissionsTracker`` arguments: quiet, no network, no file of its own, and the
    GPUs to measure as NVML indices (:func:`nvml_visible_indices`) when the suite knows them."""
    kwargs: dict[str, Any] = {
        "country_iso_code": country,
        "log_level": "error",
        "output_methods": [],  # nothing written by CodeCarbon: the suite writes emissions.csv
        "measure_power_secs": 1,
        "allow_multiple_runs": True,
        "tracking_mode": mode,
        "project_name": CODECARBON_PROJECT,
    }
    if gpu_ids:
        kwargs["gpu_ids"] = list(gpu_ids)
    return kwargs


def nvml_visible_indices() -> list[int] | None:
    """The NVML indices of the physical GPUs this process may use (:mod:`suite.nvml`), for CodeCarbon,
    whose own reading of ``CUDA_VISIBLE_DEVICES`` (3.3) takes numbers as NVML indices whatever
    ``CUDA_DEVICE_ORDER`` says, matches no ``GPU-<uuid>`` entry (it strips the letters M, I, G and
    ``-`` from the left) and no MIG slice. ``None``: no CUDA or no NVML."""
    return _on_visible_gpus(
        lambda lib, devices: sorted({int(lib.nvmlDeviceGetIndex(v.handle)) for v in devices}) or None, None)


def make_tracker(country: str, mode: str = "process"):
    """A quiet ``OfflineEmissionsTracker`` that never calls the network or writes files, measuring
    the GPUs this process may use (:func:`tracker_kwargs`)."""
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker = OfflineEmissionsTracker(**tracker_kwargs(country, mode, nvml_visible_indices()))
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


def _on_visible_gpus(read: Callable[[Any, list[Any]], Any], default: Any) -> Any:
    """``read(pynvml, devices)`` on the NVML devices this process may use (:func:`suite.nvml.visible`:
    NVML itself sees every GPU of the host whatever ``CUDA_VISIBLE_DEVICES`` says), or ``default``
    without CUDA or NVML, or when NVML fails."""
    if not _cuda_available():
        return default
    try:
        import pynvml

        from suite import nvml

        pynvml.nvmlInit()
        return read(pynvml, nvml.visible(pynvml))
    except Exception:
        return default


def nvml_energy_per_gpu_mj(*, per_gpu: bool = False) -> dict[str, float]:
    """Total energy of each NVIDIA GPU this process may use since driver load, in millijoules, by its
    label in ``CUDA_VISIBLE_DEVICES`` ({}: no NVML); ``per_gpu``: each physical GPU once (MIG slices
    share one counter)."""
    from suite import nvml

    return _on_visible_gpus(lambda lib, devices: nvml.energy_mj(lib, devices, per_gpu=per_gpu), {})


def nvml_gpu_groups() -> dict[str, str]:
    """Each visible GPU's label mapped to the label its physical GPU's energy is read under with
    ``per_gpu`` ({}: no NVML): MIG slices of one GPU share one (:func:`suite.nvml.physical`)."""
    from suite import nvml

    return _on_visible_gpus(lambda lib, devices: nvml.physical(devices), {})


def nvml_other_processes() -> dict[str, int]:
    """Per visible GPU, how many compute processes that are neither this process nor one it started
    (DDP ranks, ``--jobs`` jobs) run on it now, where NVML can tell ({}: no NVML). Their draw is in
    the GPU's energy counter too."""
    import psutil

    from suite import nvml

    def others(lib: Any, devices: list[Any]) -> dict[str, int]:
        me = psutil.Process()
        own = {me.pid, *(child.pid for child in me.children(recursive=True))}
        return nvml.other_processes(lib, devices, own)

    return _on_visible_gpus(others, {})


def most_others(*samples: Mapping[str, int]) -> dict[str, int] | None:
    """The most other processes seen on each GPU over ``samples`` (None: none could be read)."""
    out: dict[str, int] = {}
    for sample in samples:
        for label, n in sample.items():
            out[label] = max(out.get(label, 0), int(n))
    return out or None


def nvml_energy_mj() -> float | None:
    """Total energy of the GPUs this process may use since driver load, each GPU once, in millijoules
    (None: no NVML)."""
    per_gpu = nvml_energy_per_gpu_mj(per_gpu=True)
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


def codecarbon_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("codecarbon")
    except Exception:
        return None


def emissions_row(record: dict[str, Any], energy: dict[str, Any] | None = None) -> dict[str, Any]:
    """One line of ``emissions.csv``: CodeCarbon's column names where they mean the same
    (``timestamp``, ``project_name``, ``run_id``, ``duration`` in s, ``emissions`` in kg CO2eq,
    ``emissions_rate``, ``cpu_power``/``gpu_power``/``ram_power`` in W, ``cpu_energy``/
    ``gpu_energy``/``ram_energy``/``energy_consumed`` in kWh, ``country_iso_code``,
    ``codecarbon_version``, ``tracking_mode``), then the suite's own (the trial's arm, phase, seed,
    status, ``nvml_kwh``, ``method``, ``error``). ``energy`` replaces the record's (an apportioned
    share)."""
    e = energy if energy is not None else record["energy"]
    duration = e.get("duration_s")
    kg = e.get("emissions_kg")
    return {
        "timestamp": record.get("started_at"), "project_name": CODECARBON_PROJECT,
        "run_id": f"{record.get('study') or record.get('arm') or 'run'}#{record.get('trial_number', '')}",
        "duration": duration, "emissions": kg,
        "emissions_rate": kg / duration if kg is not None and duration else None,
        "cpu_power": e.get("cpu_power_w"), "gpu_power": e.get("gpu_power_w"),
        "ram_power": e.get("ram_power_w"),
        "cpu_energy": e.get("cpu_kwh"), "gpu_energy": e.get("gpu_kwh"), "ram_energy": e.get("ram_kwh"),
        "energy_consumed": e.get("kwh"), "country_iso_code": e.get("country"),
        "codecarbon_version": codecarbon_version(),
        "tracking_mode": "machine, apportioned" if str(e.get("method", "")).startswith("apportioned")
        else "process",
        "arm": record.get("arm", ""), "phase": record.get("phase", ""), "task": record["task"],
        "family": record["family"], "optimizer": record["optimizer"],
        "regularizers": "+".join(record["regularizers"]), "seed": record["seed"], "status": record["status"],
        "cpu_ram_energy": e.get("cpu_ram_kwh"), "nvml_kwh": e.get("nvml_kwh"), "method": e.get("method"),
        "error": e.get("error"),
    }


# ------------------------------------------------------------------------- runs of several jobs


def apportion(trials: Mapping[Any, Mapping[str, Any]], *, cpu_ram_kwh: float, gpu_kwh: Mapping[str, float],
              kg_per_kwh: float, gpu_group: Mapping[str, str] | None = None,
              measured_by: str | None = None) -> dict[Any, dict[str, Any]]:
    """Share a run's measured machine energy out to its trials.

    Args:
        trials: per trial key, ``cpu_s`` (CPU seconds of its process over the trial), ``duration_s``
            and ``gpu`` (the device it ran on, or None).
        cpu_ram_kwh: the machine's CPU and RAM energy over the run; shared by CPU seconds.
        gpu_kwh: each GPU's energy over the run; shared by the time trials ran on that GPU.
        kg_per_kwh: the run's emissions per kWh.
        gpu_group: a trial's ``gpu`` label mapped to the ``gpu_kwh`` key of its physical GPU (MIG
            slices of one GPU: one key, whose energy the trials on either slice share by time).
        measured_by: how the machine was measured (:func:`measurement_method`), named in ``method``.

    Returns:
        Per trial: ``kwh``, ``emissions_kg``, ``cpu_ram_kwh``, ``gpu_kwh``, ``method``. The kWh add
        up to the measured total (up to energy of GPUs no trial ran on, and rounding).
    """
    group = dict(gpu_group or {})

    def gpu_of(t: Mapping[str, Any]) -> str | None:
        return None if t.get("gpu") is None else group.get(str(t["gpu"]), str(t["gpu"]))

    cpu_total = sum(max(0.0, float(t.get("cpu_s") or 0.0)) for t in trials.values())
    gpu_time: dict[str, float] = {}
    for t in trials.values():
        if (g := gpu_of(t)) is not None:
            gpu_time[g] = gpu_time.get(g, 0.0) + float(t.get("duration_s") or 0.0)
    out = {}
    for key, t in trials.items():
        cpu_share = max(0.0, float(t.get("cpu_s") or 0.0)) / cpu_total if cpu_total > 0 else 1 / len(trials)
        g = gpu_of(t)
        gpu_part = 0.0
        if g is not None and gpu_time.get(g, 0.0) > 0:
            gpu_part = gpu_kwh.get(g, 0.0) * float(t.get("duration_s") or 0.0) / gpu_time[g]
        kwh = cpu_ram_kwh * cpu_share + gpu_part
        out[key] = {"kwh": kwh, "emissions_kg": kwh * kg_per_kwh, "cpu_ram_kwh": cpu_ram_kwh * cpu_share,
                    "gpu_kwh": gpu_part,
                    "method": "apportioned: the run's machine measurement (one CodeCarbon tracker"
                              + (", NVML per GPU" if gpu_kwh else "") + "), CPU and RAM by the trial "
                              "process's CPU seconds" + (", GPU by its time on the GPU" if g else "")
                              + (f"; machine measured by {measured_by}" if measured_by else "")}
    return out


class MachineMeter:
    """One CodeCarbon tracker for the whole machine over a run, and NVML's counter per physical GPU
    (MIG slices of one GPU read once; ``gpu_group`` maps each job's device label to its GPU's)."""

    def __init__(self, country: str) -> None:
        self.error: str | None = None
        self._nvml = lambda: nvml_energy_per_gpu_mj(per_gpu=True)
        self._nvml_start = self._nvml()
        self.gpu_group = nvml_gpu_groups()
        self._started = time.perf_counter()
        self._others = nvml_other_processes()  # the jobs start later: they are children, not others
        self.method = ""
        try:
            self.tracker = make_tracker(country, mode="machine")
            self.tracker.start()
            self.method = measurement_method(self.tracker)
        except Exception as exc:
            self.tracker = None
            self.error = f"codecarbon unavailable: {type(exc).__name__}: {exc}"

    def stop(self) -> dict[str, Any]:
        """``cpu_ram_kwh``, ``gpu_kwh`` per GPU, ``kwh``, ``emissions_kg``, ``method``, ``error``."""
        end = self._nvml()
        gpu = {g: (end[g] - self._nvml_start[g]) / 3.6e9 for g in end if g in self._nvml_start}
        out: dict[str, Any] = {"cpu_ram_kwh": 0.0, "gpu_kwh": gpu, "kwh": None, "emissions_kg": None,
                               "method": self.method, "error": self.error, "gpu_group": self.gpu_group,
                               "duration_s": time.perf_counter() - self._started,
                               "gpu_other_processes": most_others(self._others, nvml_other_processes())}
        if self.tracker is None:
            return out
        try:
            self.tracker.stop()
            data = self.tracker.final_emissions_data
            cpu_ram = float(data.cpu_energy) + float(data.ram_energy)
            if not gpu and float(data.gpu_energy) > 0:  # no NVML counter: CodeCarbon's GPU figure
                gpu = {"all": float(data.gpu_energy)}
            total = cpu_ram + sum(gpu.values())
            out.update(cpu_ram_kwh=cpu_ram, gpu_kwh=gpu, kwh=total, emissions_kg=float(data.emissions)
                       * (total / float(data.energy_consumed) if float(data.energy_consumed) > 0 else 1.0))
        except Exception as exc:
            out["error"] = f"codecarbon stop failed: {type(exc).__name__}: {exc}"
        return out


def store_apportioned(studies: Sequence[Any], run_id: str, machine: Mapping[str, Any],
                      out_dir: Path | None = None) -> int:
    """Apportion ``machine`` over the trials this run's jobs recorded (``energy.job == run_id``) and
    store each study's shares in its ``energy_apportioned`` attr; return how many trials got one."""
    pending = {}
    for s in studies:
        for t in s.get_trials(deepcopy=False):
            e = (stored_record(t) or {}).get("energy") or {}
            if e.get("method") == APPORTION_PENDING and e.get("job") == run_id:
                pending[(s.study_name, t.number)] = e
    if not pending or machine.get("kwh") is None:
        for s in studies:
            if machine.get("error"):
                s.set_user_attr("energy_apportion_error", machine["error"])
        return 0
    kwh = float(machine["kwh"])
    shares = apportion(pending, cpu_ram_kwh=float(machine["cpu_ram_kwh"]), gpu_kwh=machine["gpu_kwh"],
                       kg_per_kwh=float(machine["emissions_kg"]) / kwh if kwh > 0 else 0.0,
                       gpu_group=machine.get("gpu_group"), measured_by=machine.get("method") or None)
    run = {"machine_kwh": kwh, "machine_s": machine.get("duration_s"),  # the window all shares come from
           "gpu_other_processes": machine.get("gpu_other_processes")}
    shares = {key: {**share, **run} for key, share in shares.items()}
    for s in studies:
        mine = {str(n): v for (name, n), v in shares.items() if name == s.study_name}
        if mine:
            old = dict(s.user_attrs.get(ENERGY_APPORTIONED) or {})
            s.set_user_attr(ENERGY_APPORTIONED, {**old, **mine})
    if out_dir is not None:  # one emissions.csv row per trial, its share in place of "pending"
        for s in studies:
            for t in s.get_trials(deepcopy=False):
                share = shares.get((s.study_name, t.number))
                if share is not None:
                    record = stored_record(t)
                    energy = {**record["energy"], **share, "error": machine.get("error")}
                    append_emissions(out_dir, emissions_row(record, energy))
    return len(shares)
