"""suite/wandb_file.py: its framing against wandb's own writer and reader."""

from __future__ import annotations

import pytest

from suite.wandb_file import WandbFileError, amend, read_chunks, write_chunks
from tests.wandb_reader import read_run


def wandb_written(path, n: int = 3000) -> list[bytes]:
    """A .wandb file written by wandb's own DataStore: records of many sizes, some spanning blocks."""
    from wandb.proto import wandb_internal_pb2 as pb
    from wandb.sdk.internal.datastore import DataStore

    store = DataStore()
    store.open_for_write(str(path))
    records = []
    for i in range(n):
        item = pb.SummaryItem(key=f"k{i}", value_json=str(i) * (1 + (i * 37) % 900))
        data = pb.Record(summary=pb.SummaryRecord(update=[item])).SerializeToString()
        store.write(pb.Record.FromString(data))
        records.append(data)
    store.close()
    return records


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
    wandb_written(path, n=10)
    assert amend(path, summary={"energy/kwh": 0.5}, config={"chosen": True})
    run = read_run(path, timeout=0)
    assert run["summary"]["energy/kwh"] == 0.5 and run["config"]["chosen"] is True
    size = path.stat().st_size
    assert not amend(path, summary={"energy/kwh": 0.5}, config={"chosen": True}) and path.stat().st_size == size
