"""suite/wandb_file.py: its framing against wandb's own writer (its DataStore, or the file it wrote
before wandb 0.30 removed it) and against the offline runs the installed wandb writes
(tests/test_tracking.py reads those)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from suite.wandb_file import WandbFileError, amend, read_chunks, write_chunks
from tests.wandb_reader import read_run

#: written by wandb 0.29's own ``DataStore`` with ``wandb_written(path, n=400)`` (gzipped): wandb 0.30
#: removed that Python writer and reader, so the file is kept to check the framing against it
DATASTORE_FILE = Path(__file__).parent / "data" / "datastore_written.wandb.gz"


def summary_records(n: int) -> list[bytes]:
    """``n`` serialized summary records of many sizes (up to ~3.6 KB: some span 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    return [pb.Record(summary=pb.SummaryRecord(update=[pb.SummaryItem(
        key=f"k{i}", value_json=str(i) * (1 + (i * 37) % 900))])).SerializeToString() for i in range(n)]


def wandb_written(path: Path, n: int = 400) -> list[bytes]:
    """A .wandb file of :func:`summary_records` written by wandb's own DataStore (wandb < 0.30), or
    else the one it wrote for :data:`DATASTORE_FILE`."""
    records = summary_records(n)
    try:
        from wandb.sdk.internal.datastore import DataStore
    except ImportError:  # wandb >= 0.30: its Python writer is gone; the file it wrote is kept
        assert n == 400, "the kept DataStore file holds 400 records"
        path.write_bytes(gzip.decompress(DATASTORE_FILE.read_bytes()))
        return records
    from wandb.proto import wandb_internal_pb2 as pb

    store = DataStore()
    store.open_for_write(str(path))
    for data in records:
        store.write(pb.Record.FromString(data))
    store.close()
    return records


def test_the_kept_datastore_file_is_what_wandbs_writer_writes(tmp_path):
    """Where wandb still has its DataStore, it writes the kept file byte for byte."""
    pytest.importorskip("wandb.sdk.internal.datastore")
    wandb_written(tmp_path / "x.wandb")
    assert (tmp_path / "x.wandb").read_bytes() == gzip.decompress(DATASTORE_FILE.read_bytes())


def test_the_framing_reads_what_wandb_writes_and_writes_the_same_bytes(tmp_path):
    path = tmp_path / "run-x.wandb"
    records = wandb_written(path)
    data = path.read_bytes()
    assert len(data) > 3 * 32768  # blocks, padding and split records are exercised
    assert list(read_chunks(data)) == records
    assert write_chunks(records) == data
    with pytest.raises(WandbFileError):
        list(read_chunks(data[: len(data) - 5]))  # torn
    with pytest.raises(WandbFileError):
        list(read_chunks(b"not a wandb file"))


def test_amend_adds_config_and_summary_that_wandbs_reader_reads_and_adds_nothing_twice(tmp_path):
    path = tmp_path / "run-x.wandb"
    wandb_written(path)
    assert amend(path, summary={"energy/kwh": 0.5}, config={"chosen": True})
    run = read_run(path, timeout=0)
    assert run["summary"]["energy/kwh"] == 0.5 and run["config"]["chosen"] is True
    size = path.stat().st_size
    assert not amend(path, summary={"energy/kwh": 0.5}, config={"chosen": True}) and path.stat().st_size == size
