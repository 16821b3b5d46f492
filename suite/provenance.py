"""Provenance of a trial: what shaped its result besides its config (library versions, the git
commit, the hardware fingerprint, peak memory). Machines are told apart by the fingerprint."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    """Hardware and driver fingerprint of this machine (cached per process)."""
    info: dict[str, Any] = {
        "device_type": "cuda" if torch.cuda.is_available() else "cpu",
        "gpu_model": None,
        "gpu_count": 0,
        "gpu_driver": None,
        "gpu_power_limit_w": None,  # the enforced power limit of the first visible GPU (NVML)
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
            from suite import nvml

            first = nvml.visible(pynvml)[:1]
            if first:
                info["gpu_power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(first[0].handle) / 1000
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
