"""The NVML device mapping, against a stand-in NVML with more GPUs than a process may see."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from suite import nvml


class FakeNvml:
    """Four GPUs in PCI order (energy 1000, 2000, ... mJ), the last split into two MIG slices."""

    def __init__(self, models=("H100",) * 4):
        self.gpus = [SimpleNamespace(index=i, uuid=f"GPU-{i}{i}aa-{i}", name=m, energy=1000.0 * (i + 1),
                                     pids=[100 + i]) for i, m in enumerate(models)]
        self.migs = {"MIG-3a": self.gpus[3], "MIG-3b": self.gpus[3]}

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.gpus[i]

    def nvmlDeviceGetName(self, h):
        return h.name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetUUID(self, h):
        return h.uuid

    def nvmlDeviceGetHandleByUUID(self, uuid):
        key = uuid.decode() if isinstance(uuid, bytes) else uuid
        if key not in self.migs:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return ("mig", key)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, mig):
        return self.migs[mig[1]]

    def nvmlDeviceGetIndex(self, h):
        return h.index

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return h.energy

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=p) for p in h.pids]


@pytest.mark.parametrize(("cuda_visible", "labels", "energy"), [
    (None, ["0", "1", "2", "3"], [1000, 2000, 3000, 4000]),  # unset: every GPU
    ("2", ["2"], [3000]),  # a visible subset never sums the other GPUs
    ("3,1", ["3", "1"], [4000, 2000]),  # in the order given
    ("1,9,2", ["1"], []),  # CUDA stops at the first entry that names no device
    ("GPU-22", ["GPU-22"], [3000]),  # a unique UUID prefix
    ("GPU-", [], []),  # an ambiguous prefix names nothing
    ("MIG-3a,MIG-3b", ["MIG-3a", "MIG-3b"], [4000, 4000]),  # slices measured by their parent GPU
    ("MIG-zz", [], []),
    ("0,0", ["0"], []),
    ("", [], []),
])
def test_visible_devices_map_to_their_own_nvml_handles(cuda_visible, labels, energy):
    fake = FakeNvml()
    devices = nvml.visible(fake, cuda_visible, "PCI_BUS_ID")
    assert [d.label for d in devices] == labels
    got = nvml.energy_mj(fake, devices)
    assert list(got) == labels
    if energy:
        assert list(got.values()) == energy
    notes = [d.note for d in devices]
    assert all((n is not None) == d.label.startswith("MIG-") for n, d in zip(notes, devices, strict=True))


def test_numeric_ids_on_mixed_models_without_pci_order_are_noted_as_uncertain():
    fake = FakeNvml(models=("H100", "A100", "H100", "A100"))
    (dev,) = nvml.visible(fake, "1", "FASTEST_FIRST")
    assert dev.handle is fake.gpus[1] and "CUDA_DEVICE_ORDER=PCI_BUS_ID" in dev.note
    (dev,) = nvml.visible(fake, "1", "PCI_BUS_ID")
    assert dev.note is None
    (dev,) = nvml.visible(FakeNvml(), "1", "FASTEST_FIRST")  # one model: the orders agree
    assert dev.note is None


def test_other_processes_on_a_visible_gpu_are_counted():
    fake = FakeNvml()
    devices = nvml.visible(fake, "0,1", "PCI_BUS_ID")
    assert nvml.other_processes(fake, devices, own={100}) == {"0": 0, "1": 1}


@pytest.fixture
def energy_on_fake_nvml(monkeypatch):
    """suite.energy with the fake NVML installed as ``pynvml`` and CUDA reported available."""
    import sys

    from suite import energy

    fake = FakeNvml()
    fake.nvmlInit = lambda: None
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(energy, "_cuda_available", lambda: True)
    return energy


def test_the_energy_reader_uses_the_mapping(energy_on_fake_nvml, monkeypatch):
    """suite.energy reads NVML through suite.nvml: with CUDA_VISIBLE_DEVICES=2 only GPU 2 is read."""
    energy = energy_on_fake_nvml
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert energy.nvml_energy_per_gpu_mj() == {"2": 3000.0}
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert energy.nvml_energy_per_gpu_mj() == {"0": 1000.0, "1": 2000.0, "2": 3000.0, "3": 4000.0}


def test_two_mig_slices_of_one_gpu_are_summed_once(energy_on_fake_nvml, monkeypatch):
    energy = energy_on_fake_nvml
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-3a,MIG-3b")
    assert energy.nvml_energy_mj() == 4000.0
    assert energy.nvml_energy_per_gpu_mj() == {"MIG-3a": 4000.0, "MIG-3b": 4000.0}


def test_jobs_on_two_mig_slices_of_one_gpu_share_its_energy_once(energy_on_fake_nvml, monkeypatch):
    """``--jobs`` apportioning: the run's meter reads the GPU behind both slices once, and the two
    slices' trials share that one figure by time (before: each slice's label carried the whole GPU's
    energy, and the shares summed to twice the measurement)."""
    energy = energy_on_fake_nvml
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-3a,MIG-3b")
    monkeypatch.setattr(energy, "make_tracker", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no cc")))
    meter = energy.MachineMeter("USA")
    import sys

    sys.modules["pynvml"].gpus[3].energy += 3.6e9  # 1 kWh on the shared GPU
    machine = meter.stop()
    assert machine["gpu_kwh"] == {"MIG-3a": pytest.approx(1.0)}
    assert machine["gpu_group"] == {"MIG-3a": "MIG-3a", "MIG-3b": "MIG-3a"}
    trials = {"a": {"cpu_s": 1.0, "duration_s": 30.0, "gpu": "MIG-3a"},
              "b": {"cpu_s": 1.0, "duration_s": 10.0, "gpu": "MIG-3b"}}
    shares = energy.apportion(trials, cpu_ram_kwh=0.0, gpu_kwh=machine["gpu_kwh"], kg_per_kwh=0.0,
                              gpu_group=machine["gpu_group"])
    assert shares["a"]["gpu_kwh"] == pytest.approx(0.75) and shares["b"]["gpu_kwh"] == pytest.approx(0.25)
    assert sum(s["kwh"] for s in shares.values()) == pytest.approx(1.0)


def test_processes_of_others_on_the_visible_gpus_are_counted_and_this_process_is_not(energy_on_fake_nvml,
                                                                                      monkeypatch):
    import os
    import sys

    energy = energy_on_fake_nvml
    fake = sys.modules["pynvml"]
    fake.gpus[1].pids = [os.getpid()]  # this process on GPU 1, someone else's on GPU 0 and 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    seen = energy.nvml_other_processes()
    assert seen == {"0": 1, "1": 0}  # GPU 2's other process is not this run's business
    assert energy.most_others(seen, {"0": 0, "1": 2}) == {"0": 1, "1": 2}
    assert energy.most_others({}, {}) is None


@pytest.mark.parametrize(("cuda_visible", "indices"), [
    ("GPU-22", [2]),  # CodeCarbon 3.3 alone matches no GPU-<uuid> entry
    ("MIG-3a,MIG-3b", [3]),  # two slices: their GPU once
    ("2,0", [0, 2]),
    (None, [0, 1, 2, 3]),
])
def test_codecarbon_is_told_the_nvml_indices_of_the_visible_gpus(energy_on_fake_nvml, monkeypatch,
                                                                  cuda_visible, indices):
    energy = energy_on_fake_nvml
    if cuda_visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda_visible)
    assert energy.nvml_visible_indices() == indices
    assert energy.tracker_kwargs("USA", "process", indices)["gpu_ids"] == indices
    assert "gpu_ids" not in energy.tracker_kwargs("USA", "process", None)  # CPU: CodeCarbon's default
