"""Generated from the registries: every family trains one epoch with its declared tiny params on a
small task it fits, and builds and runs forward on every built-in task it fits, so a family added
as one new file (or a plug-in) is tested the moment it exists."""

from __future__ import annotations

import math

import pytest
import torch

from suite.families import FAMILIES, families_for
from suite.params import resolve
from suite.train import TrialConfig, train
from tasks import TASKS

#: small tasks first; any other built-in task a family fits comes after them
SMALL = ("digits", "mnist1d", "ring-gan", "digits-anomaly", "digits-transfer", "breast-cancer", "diabetes")


def smoke_task(family: str) -> str:
    fits = [t for t in TASKS.names() if family in families_for(TASKS.get(t)) and not TASKS.get(t).download]
    assert fits, f"family {family!r} fits no built-in task"
    return min(fits, key=lambda t: (SMALL.index(t) if t in SMALL else len(SMALL), t))


@pytest.mark.parametrize("family", FAMILIES.names())
def test_every_family_trains_one_epoch_on_a_task_it_fits(family):
    fam = FAMILIES.get(family)
    task = smoke_task(family)
    record = train(TrialConfig(task=task, family=family, epochs=1, seed=0, device="cpu",
                               params={**fam.tiny, "batch_size": 256}))
    assert record["status"] == "complete", record.get("error")
    assert record["epochs_run"] == 1
    assert all(math.isfinite(v) for v in record["metrics"].values() if isinstance(v, float))


PAIRS = [(t, f) for t in TASKS.names() for f in FAMILIES.names()
         if f in families_for(TASKS.get(t)) and FAMILIES.get(f).module is None]


@pytest.mark.parametrize(("task", "family"), PAIRS)
def test_every_supervised_pair_builds_and_maps_inputs_to_outputs(task, family):
    """Data-free: the network of every (task, fitting family) pair maps a batch of the task's input
    shape to its output size (families with their own training module are covered above)."""
    fam, t = FAMILIES.get(family), TASKS.get(task)
    params = resolve(fam.declared(t), dict(fam.tiny))
    net = fam.build(t, params).eval()
    with torch.no_grad():
        y = net(torch.randn(2, *t.input_shape))
    assert y.shape[0] == 2 and y.reshape(2, -1).shape[1] == t.outputs
