"""Which NVML devices a process uses: the one mapping from ``CUDA_VISIBLE_DEVICES`` to NVML handles.

NVML ignores ``CUDA_VISIBLE_DEVICES``: ``nvmlDeviceGetCount()`` counts every GPU of the host, in PCI
bus order. Reading energy for ``range(count)`` sums other users' GPUs. This module maps each visible
device, as CUDA names it, to its NVML handle:

* unset: every GPU, labelled by index;
* a whole number: the NVML device of that index (CUDA's order is NVML's with
  ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, or when every GPU is the same model; otherwise the mapping is
  noted as uncertain);
* ``GPU-<uuid>`` (a unique prefix, as CUDA accepts): the device with that UUID;
* ``MIG-<uuid>``: the MIG slice's parent GPU, noted as shared (NVML's energy counter is per GPU, so the
  energy covers the other slices too).

As CUDA does, enumeration stops at the first entry that names no device. Labels are the entries as
written (indices when unset), the same strings :func:`suite.jobs.visible_gpus` hands to jobs, so
per-GPU energy and per-job devices match.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Visible:
    """One device the process may use: its label, the NVML handle that measures it, and a note when
    the measurement covers more than this device or the mapping is uncertain."""

    label: str
    handle: Any
    note: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible(nvml: Any, cuda_visible: str | None = None, device_order: str | None = None) -> list[Visible]:
    """The NVML handles of the devices ``cuda_visible`` (``$CUDA_VISIBLE_DEVICES`` when None and set)
    makes visible; ``nvml`` is the ``pynvml`` module (initialised) or a stand-in with its functions."""
    if cuda_visible is None:
        cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device_order is None:
        device_order = os.environ.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    count = nvml.nvmlDeviceGetCount()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    if cuda_visible is None:
        return [Visible(str(i), h) for i, h in enumerate(handles)]
    same_model = len({_text(nvml.nvmlDeviceGetName(h)) for h in handles}) <= 1
    out: list[Visible] = []
    for entry in (e.strip() for e in cuda_visible.split(",")):
        found = _resolve(nvml, handles, entry, ordered=device_order == "PCI_BUS_ID" or same_model)
        if found is None:
            break  # CUDA ignores this entry and every one after it
        if any(v.label == entry for v in out):
            break  # a device listed twice: CUDA refuses the list from here
        out.append(found)
    return out


def _resolve(nvml: Any, handles: list[Any], entry: str, *, ordered: bool) -> Visible | None:
    if entry.isdigit():
        index = int(entry)
        if index >= len(handles):
            return None
        note = None if ordered else ("CUDA's device order may differ from NVML's on a host with mixed GPU "
                                     "models: set CUDA_DEVICE_ORDER=PCI_BUS_ID")
        return Visible(entry, handles[index], note)
    if entry.startswith("GPU-"):
        matches = [h for h in handles if _text(nvml.nvmlDeviceGetUUID(h)).startswith(entry)]
        return Visible(entry, matches[0]) if len(matches) == 1 else None
    if entry.startswith("MIG-"):
        try:
            mig = nvml.nvmlDeviceGetHandleByUUID(entry.encode())
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
        except Exception:
            return None
        return Visible(entry, parent, "a MIG slice: NVML measures its whole GPU, other slices included")
    return None


def energy_mj(nvml: Any, devices: list[Visible], *, per_gpu: bool = False) -> dict[str, float]:
    """Each visible device's energy counter (millijoules since driver load), by label; a device whose
    counter cannot be read is left out. Two labels on one GPU (MIG slices) read the same counter;
    ``per_gpu`` keeps only the first, so that a sum counts each GPU once."""
    out = {}
    seen: list[Any] = []
    for v in devices:
        if per_gpu and any(v.handle is h for h in seen):
            continue
        seen.append(v.handle)
        try:
            out[v.label] = float(nvml.nvmlDeviceGetTotalEnergyConsumption(v.handle))
        except Exception:
            continue
    return out


def physical(devices: list[Visible]) -> dict[str, str]:
    """Each visible device's label mapped to the label its physical GPU is measured under with
    ``per_gpu`` (:func:`energy_mj`): the first label on the same handle (two MIG slices of one GPU
    map to the first slice's label)."""
    out: dict[str, str] = {}
    firsts: list[Visible] = []
    for v in devices:
        first = next((f for f in firsts if f.handle is v.handle), None)
        if first is None:
            firsts.append(v)
            first = v
        out[v.label] = first.label
    return out


def other_processes(nvml: Any, devices: list[Visible], own: set[int]) -> dict[str, int]:
    """How many compute processes not in ``own`` (pids) run on each visible device now, where NVML
    can tell (their draw is in the device's energy counter too)."""
    out = {}
    for v in devices:
        try:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(v.handle)
        except Exception:
            continue
        out[v.label] = sum(1 for p in procs if int(p.pid) not in own)
    return out
