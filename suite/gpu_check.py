"""``make gpu-check``: the checks that need an NVIDIA GPU, in one command, into one run folder.

1. A short benchmark on CUDA with ``--jobs auto`` (two families on mnist1d, 4 tuning trials and 2
   confirm seeds per arm), its report included: the run folder the cross-machine report reads.
2. One trial with ``suite run --device cuda --out``: NVML's GPU energy (``nvml_kwh``) against
   CodeCarbon's GPU figure (``gpu_kwh``) of the same trial, and their ratio.
3. ``suite perf --device cuda``: the suite's trial path against a bare PyTorch loop.
4. With two or more GPUs: one trial with ``--devices 2 --strategy ddp`` (NCCL).

Without a GPU it says so in one ``error:`` line and exits 2. Each step's output goes to a log file
in the run folder (``runs/gpu-check`` or ``$OUT``); a summary is printed and written to
``gpu-check.json``. A step that fails is reported and the others still run (exit 1 at the end).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

PROFILE = {
    "name": "gpu-check", "tune_trials": 4, "confirm_seeds": 2, "confirm_candidates": 1, "epochs": 5,
    "tracking": {"wandb": True, "energy": True},
    "matrix": [{"tasks": ["mnist1d"], "families": ["mlp", "cnn"], "optimizers": ["adam"],
                "regularizers": [["none"]]}],
}


def cuda_devices() -> int:
    """How many CUDA devices torch sees (0 without CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _step(name: str, cmd: list[str], out: Path, timeout: int) -> dict[str, Any]:
    log = out / f"{name}.log"  # stdout; stderr (progress, warnings) in <name>.err
    started = time.perf_counter()
    with log.open("w") as f, (out / f"{name}.err").open("w") as e:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=e, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return {"step": name, "command": " ".join(cmd), "rc": rc,
            "wall_s": round(time.perf_counter() - started, 1), "log": str(log)}


def main(out: Path | None = None) -> int:
    gpus = cuda_devices()
    if gpus == 0:
        print("error: make gpu-check needs an NVIDIA GPU with a CUDA build of torch "
              "(torch.cuda.is_available() is False here); on a CPU machine, make benchmark and make test "
              "cover every code path", file=sys.stderr)
        return 2
    out = Path(out or os.environ.get("OUT") or "runs/gpu-check")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.yaml").write_text(yaml.safe_dump(PROFILE, sort_keys=False))
    suite = [sys.executable, "-m", "suite.cli"]
    steps = [
        _step("benchmark", [*suite, "benchmark", "--profile", str(out / "gpu-check.yaml"), "--out",
                            str(out / "bench"), "--device", "cuda", "--jobs", "auto"], out, 1800),
        _step("run", [*suite, "run", "--task", "mnist1d", "--family", "cnn", "--device", "cuda", "--epochs",
                      "20", "--out", str(out / "trial"), "--json"], out, 900),
        _step("perf", [*suite, "perf", "--device", "cuda", "--json"], out, 1800),
    ]
    if gpus >= 2:
        steps.append(_step("ddp", [*suite, "run", "--task", "mnist1d", "--family", "cnn", "--device",
                                   "cuda", "--devices", "2", "--strategy", "ddp", "--epochs", "3", "--json"],
                           out, 900))
    summary: dict[str, Any] = {"gpus": gpus, "steps": steps}
    try:
        text = (out / "run.log").read_text()
        record = json.loads(text[text.index("{"):])
        energy = record.get("energy") or {}
        nvml, cc = energy.get("nvml_kwh"), energy.get("gpu_kwh")
        summary["energy"] = {"nvml_kwh": nvml, "codecarbon_gpu_kwh": cc, "method": energy.get("method"),
                             "ratio_nvml_to_codecarbon": nvml / cc if nvml and cc else None}
    except (OSError, ValueError):
        summary["energy"] = {"error": f"no record in {out / 'run.log'}"}
    (out / "gpu-check.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if all(s["rc"] == 0 for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
