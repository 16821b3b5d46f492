"""``make gpu-check`` on a machine without a GPU: one error line, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite.gpu_check import cuda_devices

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(cuda_devices() > 0, reason="this machine has a GPU: make gpu-check runs there")
def test_gpu_check_without_a_gpu_says_so_in_one_line_and_exits_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "suite.gpu_check"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: make gpu-check needs an NVIDIA GPU") and "torch.cuda.is_available()" in line
    assert not any(tmp_path.iterdir())  # no run folder made
