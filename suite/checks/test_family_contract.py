"""Generated from the family registry: every family, on a small task it fits and with its declared
``tiny`` params,

* gives every trainable parameter a finite gradient through the path it trains (the shared module's
  step, or its own module's: a GAN's two adversarial steps, an autoencoder's reconstruction loss),
  with its tiny params and with each value of its choice params (``variant``, ``mode``, ``cell``,
  ...) and each regularizer that changes its network (timm's ``test_model_backward``);
* trains one epoch to a complete record;
* builds on every task it fits and maps a batch of the task's inputs to the task's outputs
  (supervised families; the others are covered by the two checks above).

So a family added as one new file, or in a plug-in (:func:`suite.check.check_plugin`), is tested
the moment it is registered.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from suite.checks import names
from suite.config import TrialConfig, resolve_config
from suite.data import IndexBatches
from suite.families import FAMILIES, families_for
from suite.params import resolve
from suite.regularizers import REGULARIZERS
from suite.train import build_module, quiet_lightning, train, trainer_flags
from tasks import TASKS, Split

FAMILY_NAMES = names("families")
GRAD_BATCH = 64


def smoke_task(family: str) -> str | None:
    """The task a family's generated checks train on: of the tasks it fits that need no download,
    the one with the smallest inputs (then by name); ``None`` when it fits none."""
    fits = [t for t in TASKS.names() if family in families_for(TASKS.get(t)) and not TASKS.get(t).download]
    return min(fits, key=lambda t: (math.prod(TASKS.get(t).input_shape), t), default=None)


def variants(family: str) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """``(id, params, regularizers)``: the tiny params, then one change at a time: each other value of
    a choice param the family declares (strings and booleans: the structural switches), and each
    regularizer that changes the network and that the family supports."""
    fam, task = FAMILIES.get(family), smoke_task(family)
    out: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [("tiny", {}, ())]
    if task is None:
        return out
    for p in fam.declared(TASKS.get(task)):
        if p.choices and p.name not in fam.tiny and all(isinstance(c, str | bool) for c in p.choices):
            out += [(f"{p.name}={c}", {p.name: c}, ()) for c in p.choices if c != p.default]
    for name, reg in REGULARIZERS.items():
        if reg.network_params and set(reg.network_params) <= set(fam.supports):
            out.append((f"+{name}", {}, (name,)))
    return out


GRADIENT_CASES = [pytest.param(f, params, regs, id=f"{f}-{vid}")
                  for f in FAMILY_NAMES for vid, params, regs in variants(f)]


class GradientProbe(pl.Callback):
    """Keeps, at every optimizer step, the gradient of every parameter that optimizer steps (``None``
    for a parameter without one)."""

    def __init__(self) -> None:
        self.grads: dict[int, list[torch.Tensor | None]] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                self.grads.setdefault(id(p), []).append(None if p.grad is None else p.grad.detach().clone())


@pytest.mark.filterwarnings("ignore:.*validation_step.*:UserWarning")
@pytest.mark.parametrize(("family", "params", "regularizers"), GRADIENT_CASES)
def test_every_parameter_gets_a_gradient(family, params, regularizers, tmp_path):
    """One training step on one batch, through Lightning as ``suite.train`` trains (automatic or the
    family module's manual optimization): every parameter with ``requires_grad`` is stepped by an
    optimizer and has a finite gradient at a step; the gradients are not all zero."""
    task = smoke_task(family)
    assert task is not None, f"family {family!r} fits no registered task that needs no download"
    fam = FAMILIES.get(family)
    r = resolve_config(TrialConfig(task=task, family=family, regularizers=regularizers, epochs=1, seed=0,
                                   device="cpu", params={**fam.tiny, **params, "batch_size": GRAD_BATCH}))
    quiet_lightning()
    pl.seed_everything(0, verbose=False)
    module = build_module(r)
    data = r.task.load().train
    batch = Split(data.x[:GRAD_BATCH], data.y[:GRAD_BATCH])
    probe = GradientProbe()
    trainer = pl.Trainer(**trainer_flags("cpu"), max_epochs=1, limit_train_batches=1, limit_val_batches=0,
                         logger=False, callbacks=[probe], default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=IndexBatches(batch, GRAD_BATCH))
    change = ", ".join([*(f"{k}={v}" for k, v in params.items()), *regularizers]) or "tiny"
    where = f"family {family!r} on task {task!r} ({change})"
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert trainable, f"{where}: the network has no trainable parameter"
    unstepped = [n for n, p in trainable if id(p) not in probe.grads]
    assert not unstepped, f"{where}: parameters no optimizer steps: {', '.join(unstepped)}"
    missing = [n for n, p in trainable if all(g is None for g in probe.grads[id(p)])]
    assert not missing, f"{where}: parameters without a gradient: {', '.join(missing)}"
    grads = [g for _, p in trainable for g in probe.grads[id(p)] if g is not None]
    bad = [n for n, p in trainable
           if any(g is not None and not torch.isfinite(g).all() for g in probe.grads[id(p)])]
    assert not bad, f"{where}: parameters with a non-finite gradient: {', '.join(bad)}"
    assert sum(float(g.abs().sum()) for g in grads) > 0, f"{where}: every gradient is zero"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_trains_one_epoch_on_a_task_it_fits(family):
    fam = FAMILIES.get(family)
    task = smoke_task(family)
    assert task is not None, f"family {family!r} fits no registered task that needs no download"
    record = train(TrialConfig(task=task, family=family, epochs=1, seed=0, device="cpu",
                               params={**fam.tiny, "batch_size": 256}))
    assert record["status"] == "complete", f"family {family!r} on task {task!r}: {record.get('error')}"
    assert record["epochs_run"] == 1
    assert all(math.isfinite(v) for v in record["metrics"].values() if isinstance(v, float))


def pairs() -> list[tuple[str, str]]:
    """Every (task, fitting supervised family) pair; under a plug-in check, those with an entry of
    the plug-in."""
    checked_tasks, checked_families = set(names("tasks")), set(FAMILY_NAMES)
    return [(t, f) for t in TASKS.names() for f in FAMILIES.names()
            if f in families_for(TASKS.get(t)) and FAMILIES.get(f).module is None
            and (t in checked_tasks or f in checked_families)]


@pytest.mark.parametrize(("task", "family"), pairs())
def test_every_supervised_pair_builds_and_maps_inputs_to_outputs(task, family):
    """Data-free: the network of every (task, fitting family) pair maps a batch of the task's input
    shape to its output size (families with their own training module are covered above)."""
    fam, t = FAMILIES.get(family), TASKS.get(task)
    params = resolve(fam.declared(t), dict(fam.tiny))
    net = fam.build(t, params).eval()
    with torch.no_grad():
        y = net(torch.randn(2, *t.input_shape))
    assert y.shape[0] == 2 and y.reshape(2, -1).shape[1] == t.outputs, \
        f"family {family!r} on task {task!r}: outputs of shape {tuple(y.shape)}, the task has {t.outputs}"
