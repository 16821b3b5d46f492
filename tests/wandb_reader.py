"""Read an offline W&B run back from its ``.wandb`` file: wandb's own record messages, framed by
:func:`suite.wandb_file.read_chunks` (wandb 0.30 removed its Python reader; the framing is checked
against wandb's writer in tests/test_wandb_file.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_run(path: Path, timeout: float = 30.0) -> dict[str, Any]:
    """``{"run", "config", "history", "summary"}`` of a ``.wandb`` file.

    ``wandb.finish()`` can return before wandb-core has flushed the file (seen under CPU load),
    so this waits up to ``timeout`` seconds for the run's exit record.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = _read(path)
        if out["exited"] or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _read(path: Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2

    from suite.wandb_file import WandbFileError, read_chunks

    out: dict[str, Any] = {"run": {}, "config": {}, "history": [], "summary": {}, "exited": False}
    try:
        chunks = list(read_chunks(Path(path).read_bytes()))
    except WandbFileError:  # still being written: its last record is not complete yet
        return out
    for data in chunks:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {"id": record.run.run_id, "project": record.run.project,
                          "group": record.run.run_group, "job_type": record.run.job_type,
                          "tags": list(record.run.tags), "name": record.run.display_name}
            for item in record.run.config.update:
                out["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                out["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "exit":
            out["exited"] = True
        elif kind == "summary":
            for item in record.summary.update:
                out["summary"][_key(item)] = json.loads(item.value_json)
    return out


def runs_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("run-*.wandb"))
