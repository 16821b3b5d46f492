import math

import pytest
import torch

from suite.errors import SuiteError
from suite.optimizers import OPTIMIZERS
from suite.train import TrialConfig, build_module, resolve_config, train


def tiny(**kw) -> TrialConfig:
    base = dict(task="digits", family="mlp", epochs=2, seed=0, device="cpu",
                params={"width": 32, "depth": 1})
    base.update(kw)
    return TrialConfig(**base)


def test_record_has_the_documented_fields():
    record = train(tiny())
    assert record["status"] == "complete", record.get("error")
    for key in ("task", "family", "optimizer", "regularizers", "params", "seed", "epochs",
                "epochs_run", "steps", "metrics", "curves", "wall_s", "samples_per_s", "device",
                "n_params", "versions", "primary"):
        assert key in record, key
    assert record["regularizers"] == ["none"]
    assert record["epochs_run"] == 2 and record["steps"] == 2 * math.ceil(1078 / 64)
    for split in ("train", "val", "test"):
        for name in ("accuracy", "precision", "recall", "f1", "auroc", "loss"):
            assert math.isfinite(record["metrics"][f"{split}/{name}"])
    assert len(record["curves"]["val/accuracy"]) == 2
    assert record["primary"]["value"] == record["metrics"]["test/accuracy"]
    assert record["n_params"] == 64 * 32 + 32 + 32 * 10 + 10


@pytest.mark.parametrize("task, metrics", [
    ("sunspots", ("mse", "rmse", "mae", "r2")),  # forecasting
    ("diabetes", ("mse", "rmse", "mae", "r2")),  # regression
    ("breast-cancer", ("accuracy", "precision", "recall", "f1", "auroc")),  # binary
])
def test_every_task_kind_trains_past_the_first_probe(task, metrics):
    """Epoch 2 validates after epoch 1's diagnostics probe: per-epoch metric states must stay usable
    (a probe and validation sharing a collection broke every regression task once)."""
    record = train(tiny(task=task, epochs=3, params={"width": 16, "depth": 1}))
    assert record["status"] == "complete", record.get("error")
    assert record["epochs_run"] == 3
    metric = record["primary"]["metric"]
    assert len(record["curves"][f"val/{metric}"]) == 3 and len(record["curves"]["gap"]) == 3
    assert set(k for k in record["curves"] if k.startswith("val/")) == {f"val/{metric}", "val/loss"}
    for split in ("train", "val", "test"):
        for name in (*metrics, "loss"):
            assert math.isfinite(record["metrics"][f"{split}/{name}"]), f"{split}/{name}"


def test_same_seed_same_metrics_different_seed_differs():
    a, b, c = train(tiny()), train(tiny()), train(tiny(seed=1))
    assert a["metrics"] == b["metrics"] and a["curves"]["train/loss"] == b["curves"]["train/loss"]
    assert a["metrics"] != c["metrics"]


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_each_optimizer_takes_steps_that_lower_the_loss(name):
    r = resolve_config(tiny(optimizer=name))
    module = build_module(r)
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    split = r.task.load().train
    x, y = split.x[:256], split.y[:256]
    before = [p.detach().clone() for p in module.parameters()]
    torch.manual_seed(0)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss, _, _ = module.model_step((x, y))
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert any(not torch.equal(a, p) for a, p in zip(before, module.parameters(), strict=True))
    final, _, _ = module.model_step((x, y))
    assert float(final.detach()) < first, name


def test_full_batch_and_stochastic_gd_are_sgd_with_batch_size():
    full = train(tiny(optimizer="sgd", params={"width": 16, "depth": 1, "batch_size": 100000},
                      epochs=3))
    assert full["steps"] == 3 and full["batch_size"] == 100000
    sgd1 = train(tiny(optimizer="sgd", params={"width": 16, "depth": 1, "batch_size": 1},
                      epochs=1))
    assert sgd1["steps"] == 1078


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_schedules_lower_the_learning_rate(schedule):
    record = train(tiny(params={"width": 16, "depth": 1, "schedule": schedule}, epochs=4))
    lrs = record["curves"]["lr"]
    assert lrs[-1] < lrs[0]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (tiny(task="nope"), "unknown task 'nope'; known: adding, breast-cancer"),
        (tiny(family="nope"), "unknown family 'nope'; known:"),
        (tiny(optimizer="nope"), "unknown optimizer 'nope'; known: adagrad, adam"),
        (tiny(regularizers=("nope",)), "unknown regularizer 'nope'; known:"),
        (tiny(params={"depth": "0"}), "param depth=0 is out of range; allowed: an integer in [1, 32]"),
        (tiny(params={"colour": "red"}), "unknown param 'colour'; known for this run:"),
        (tiny(params={"dropout": "0.5"}), "unknown param 'dropout' (it needs --regularizer dropout)"),
        (tiny(params={"activation": "swish"}), "param activation='swish' is not valid; allowed: one of sigmoid"),
        (tiny(regularizers=("none", "l2")), "regularizer 'none' cannot be combined"),
        (tiny(epochs=0), "epochs must be an integer >= 1, got 0"),
        (tiny(device="tpu"), "device 'tpu' is not valid; allowed: auto, cpu, cuda"),
    ],
)
def test_bad_configs_raise_one_clear_error(config, message):
    with pytest.raises(SuiteError) as info:
        train(config)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(SuiteError, match="CUDA is not available"):
        train(tiny(device="cuda"))


def test_a_crash_inside_training_becomes_a_failed_record(monkeypatch):
    from suite.module import SuiteModule

    def boom(self, batch, batch_idx):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(SuiteModule, "training_step", boom)
    record = train(tiny())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: injected failure"


def test_non_finite_loss_stops_the_trial_as_diverged(monkeypatch):
    from suite.module import SuiteModule

    original = SuiteModule.model_step

    def nan_from_second_epoch(self, batch):
        loss, preds, target = original(self, batch)
        if self.training and self.current_epoch >= 1:
            loss = loss * float("nan")
        return loss, preds, target

    monkeypatch.setattr(SuiteModule, "model_step", nan_from_second_epoch)
    record = train(tiny(epochs=5))
    assert record["status"] == "diverged" and record["error"] == "non-finite training loss"
    assert record["epochs_run"] == 2
    assert math.isnan(record["curves"]["train/loss"][1])


@pytest.mark.slow
def test_mlp_on_mnist1d_reaches_the_documented_accuracy():
    record = train(TrialConfig(task="mnist1d", family="mlp", epochs=30, seed=0, device="cpu"))
    assert record["status"] == "complete"
    assert record["metrics"]["test/accuracy"] > 0.55
