"""Amending a finished offline W&B run (its ``.wandb`` file) with what is known only after it ended.

A trial's W&B run finishes with the trial, but two of its facts come later: its share of the machine's
energy (``suite benchmark --jobs N`` apportions the run's measurement when every job has ended) and
whether its arm stands for it (``chosen``: fixed when the arm's last confirm run is done). Rather than a
second W&B run with the same id (wandb starts one beside the first in offline mode, and syncing both
would race), the suite adds a summary record and a config record to the run's own file, before its exit
record, so that the one run reads (and syncs) with them.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB
blocks of LevelDB-log records (crc32 of type and data, little-endian length, type: full, first, middle,
last), each holding one serialized ``wandb_internal_pb2.Record`` (the protobuf schema wandb ships).
This module reads and writes that framing itself, so it depends on wandb's protobuf messages only, not
on wandb's internal reader classes; tests read the amended file back with wandb's own reader.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
RECORD_HEADER = 7  # crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) & 0xFFFFFFFF for t in (FULL, FIRST, MIDDLE, LAST)}


class WandbFileError(ValueError):
    """A ``.wandb`` file that is not a W&B transaction log, or is torn."""


def read_chunks(data: bytes) -> Iterator[bytes]:
    """The records (serialized protobufs) of a ``.wandb`` file's bytes, in order.

    Raises:
        WandbFileError: a wrong header, a bad checksum or a torn record.
    """
    if not data.startswith(HEADER):
        raise WandbFileError("not a W&B transaction log (no :W&B header)")
    pos, pending = len(HEADER), b""
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD_HEADER:  # the block's tail is padding
            pos += left
            continue
        if pos + RECORD_HEADER > len(data):
            raise WandbFileError(f"torn record header at byte {pos}")
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + RECORD_HEADER])
        if kind == 0 and length == 0 and crc == 0:  # zero padding to the block's end
            pos += left
            continue
        body = data[pos + RECORD_HEADER:pos + RECORD_HEADER + length]
        if len(body) != length or kind not in _TYPE_CRC:
            raise WandbFileError(f"torn record at byte {pos}")
        if zlib.crc32(body, _TYPE_CRC[kind]) & 0xFFFFFFFF != crc:
            raise WandbFileError(f"bad checksum at byte {pos}")
        pos += RECORD_HEADER + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = body
        elif kind == MIDDLE:
            pending += body
        else:
            yield pending + body
            pending = b""


def write_chunks(records: list[bytes]) -> bytes:
    """The bytes of a ``.wandb`` file holding ``records`` (split across blocks as wandb does)."""
    out = bytearray(HEADER)
    for data in records:
        first = True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < RECORD_HEADER:
                out += b"\x00" * left
                left = BLOCK
            room = left - RECORD_HEADER
            piece, data = data[:room], data[room:]
            kind = (FULL if not data else FIRST) if first else (LAST if not data else MIDDLE)
            crc = zlib.crc32(piece, _TYPE_CRC[kind]) & 0xFFFFFFFF
            out += struct.pack("<IHB", crc, len(piece), kind) + piece
            first = False
            if not data:
                break
    return bytes(out)


def _items(message_type: Any, values: Mapping[str, Any]) -> list[Any]:
    return [message_type(key=k, value_json=json.dumps(v, default=str)) for k, v in values.items()]


def read_run(path: Path) -> dict[str, Any]:
    """``{"config", "summary", "exited"}`` of a ``.wandb`` file (config and summary as last set)."""
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {"config": {}, "summary": {}, "exited": False}
    for data in read_chunks(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        items = (record.run.config.update if kind == "run" else record.config.update if kind == "config"
                 else record.summary.update if kind == "summary" else [])
        target = out["summary"] if kind == "summary" else out["config"]
        for item in items:
            key = "/".join(item.nested_key) if item.nested_key else item.key
            target[key] = json.loads(item.value_json)
        out["exited"] = out["exited"] or kind == "exit"
    return out


def amend(path: Path, *, summary: Mapping[str, Any] | None = None,
          config: Mapping[str, Any] | None = None) -> bool:
    """Add the ``summary`` and ``config`` values that differ from the run's to the finished run in
    ``path``, before its exit record (at the end when it has none); the file is replaced atomically.
    Returns whether anything was added (amending twice adds nothing the second time).

    Raises:
        WandbFileError: ``path`` is not a readable W&B transaction log.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    records = list(read_chunks(Path(path).read_bytes()))
    now = read_run(path)
    config = {k: v for k, v in (config or {}).items() if now["config"].get(k, object()) != v}
    summary = {k: v for k, v in (summary or {}).items() if now["summary"].get(k, object()) != v}
    if not config and not summary:
        return False
    exit_at = len(records)
    for i, data in enumerate(records):
        record = pb.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "exit":
            exit_at = i
            break
    added = []
    if config:
        added.append(pb.Record(config=pb.ConfigRecord(update=_items(pb.ConfigItem, config))))
    if summary:
        added.append(pb.Record(summary=pb.SummaryRecord(update=_items(pb.SummaryItem, summary))))
    added = [r.SerializeToString() for r in added]
    tmp = Path(path).with_name(Path(path).name + ".amend")
    tmp.write_bytes(write_chunks(records[:exit_at] + added + records[exit_at:]))
    os.replace(tmp, path)
    return True


def trial_updates(record: Mapping[str, Any], study_attrs: Mapping[str, Any],
                  tuning_attrs: Mapping[str, Any], number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a trial's W&B run lacks: ``(summary, config)``. The summary gets the trial's share of the
    machine's energy (``energy_apportioned`` of its study, by trial number), the config ``chosen``:
    whether the arm stands for this trial (a tuning trial that is the arm's ``confirm_choice``, or a
    confirm run of it), once the arm has chosen."""
    summary: dict[str, Any] = {}
    share = (study_attrs.get("energy_apportioned") or {}).get(str(number))
    if share:
        summary.update({f"energy/{k}": v for k, v in share.items()
                        if k in ("kwh", "emissions_kg", "method", "cpu_ram_kwh", "gpu_kwh")
                        and v is not None})
    config: dict[str, Any] = {}
    choice = tuning_attrs.get("confirm_choice")
    if choice is not None:
        if record.get("phase") == "confirm":
            config["chosen"] = record.get("candidate") in (None, choice)
        else:
            config["chosen"] = number == choice
    return summary, config


def amend_runs(out_dir: Path, studies: list[Any]) -> tuple[int, list[str]]:
    """Amend the W&B runs under ``out_dir`` of the trials of ``studies`` (tuning and confirm studies,
    Optuna ``Study`` objects) with :func:`trial_updates`; return how many runs changed and the errors
    (a run file that cannot be read is named and left as it is). A run is only amended when its
    config names the same Optuna study and trial number as the record (another machine's worker may
    have written a run folder of the same name elsewhere)."""
    from suite.record import CONFIRM_OF, stored_record

    by_name = {s.study_name: s for s in studies}
    changed, errors = 0, []
    for study in studies:
        attrs = study.user_attrs
        tuning = by_name.get(attrs.get(CONFIRM_OF), study)
        for t in study.get_trials(deepcopy=False):
            record = stored_record(t) or {}
            if not record.get("wandb_run"):
                continue
            path = run_file(Path(out_dir) / record["wandb_run"])
            if path is None:
                continue
            summary, config = trial_updates(record, attrs, tuning.user_attrs, t.number)
            if not summary and not config:
                continue
            try:
                seen = read_run(path)["config"]
                if (seen.get("optuna_study", study.study_name), seen.get("trial_number")) != (
                        study.study_name, t.number):
                    continue
                changed += amend(path, summary=summary, config=config)
            except (OSError, WandbFileError) as exc:
                errors.append(f"{path}: {exc}")
    return changed, errors


def run_file(run_dir: Path) -> Path | None:
    """The ``run-<id>.wandb`` file of a W&B run folder, if there is one."""
    found = sorted(Path(run_dir).glob("run-*.wandb"))
    return found[0] if found else None
