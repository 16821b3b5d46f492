"""Generated from the optimizer and regularizer registries.

* Every optimizer declares ``lr``, builds from its declared defaults, lowers a small least-squares
  loss in a few steps with finite weights, and applies the weight decay it is given
  (``build(parameters, params, weight_decay)``).
* Every regularizer trains a complete two-epoch trial on the smallest task (that needs no download)
  where it fits a family of the shared module, and its penalty and weight decay, if any, are
  finite.
"""

from __future__ import annotations

import math

import pytest
import torch

from suite.checks import names
from suite.config import TrialConfig, resolve_config
from suite.errors import SuiteError
from suite.families import FAMILIES, families_for
from suite.optimizers import OPTIMIZERS
from suite.params import resolve
from suite.regularizers import REGULARIZERS
from suite.train import build_module, train
from tasks import TASKS


def least_squares(seed: int = 0) -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=gen)
    y = x @ torch.randn(8, 1, generator=gen)
    net = torch.nn.Linear(8, 1)
    with torch.no_grad():
        net.weight.copy_(torch.randn(1, 8, generator=gen))
        net.bias.zero_()
    return net, x, y


def steps(name: str, weight_decay: float, n: int) -> tuple[list[float], torch.nn.Linear]:
    spec = OPTIMIZERS.get(name)
    net, x, y = least_squares()
    optimizer = spec.build(net.parameters(), resolve(spec.params, {}), weight_decay)
    losses = []
    for _ in range(n):
        loss = torch.nn.functional.mse_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, net


@pytest.mark.parametrize("name", names("optimizers"))
def test_optimizer_declares_lr_lowers_a_loss_and_applies_weight_decay(name):
    spec = OPTIMIZERS.get(name)
    assert "lr" in {p.name for p in spec.params}, f"optimizer {name!r} declares no 'lr' param"
    losses, net = steps(name, 0.0, 20)
    assert all(math.isfinite(v) for v in losses) and all(torch.isfinite(p).all() for p in net.parameters()), \
        f"optimizer {name!r}: non-finite loss or weights at its defaults: {losses}"
    assert losses[-1] < losses[0], \
        f"optimizer {name!r} at its defaults does not lower a least-squares loss: {losses}"
    _, plain = steps(name, 0.0, 5)  # several steps: Adam's first step is the same whatever the decay
    _, decayed = steps(name, 0.5, 5)
    assert not torch.equal(plain.weight, decayed.weight), \
        f"optimizer {name!r} ignores the weight_decay it is built with"


def regularizer_trial(name: str) -> TrialConfig | None:
    """Two epochs of the smallest trial ``name`` fits: tasks that need no download by input size,
    families of the shared module by name, tiny params; ``None`` when it fits none."""
    tasks = sorted((t for _, t in TASKS.items() if not t.download),
                   key=lambda t: (math.prod(t.input_shape), t.name))
    for task in tasks:
        for family in families_for(task):
            fam = FAMILIES.get(family)
            if fam.module is not None:
                continue
            config = TrialConfig(task=task.name, family=family, regularizers=(name,), epochs=2, seed=0,
                                 device="cpu", params={**fam.tiny, "batch_size": 256})
            try:
                resolve_config(config)
            except SuiteError:
                continue
            return config
    return None


@pytest.mark.parametrize("name", names("regularizers"))
def test_regularizer_trains_and_its_penalty_is_finite(name):
    config = regularizer_trial(name)
    assert config is not None, f"regularizer {name!r} fits no task and family of the shared module"
    reg = REGULARIZERS.get(name)
    r = resolve_config(config)
    if reg.penalty is not None:
        penalty = reg.penalty(build_module(r).net, r.params)
        assert torch.is_tensor(penalty) and penalty.ndim == 0 and torch.isfinite(penalty), \
            f"regularizer {name!r}: penalty {penalty!r} is not a finite scalar tensor"
    if reg.weight_decay is not None:
        decay = reg.weight_decay(r.params)
        assert math.isfinite(decay) and decay >= 0, f"regularizer {name!r}: weight decay {decay}"
    record = train(config)
    where = f"regularizer {name!r} on {config.task}/{config.family}"
    assert record["status"] == "complete", f"{where}: {record.get('error')}"
    assert record["regularizers"] == [name] and record["epochs_run"] >= 1, where
