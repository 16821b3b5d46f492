import json
import math

import pytest
import torch
from typer.testing import CliRunner

from suite.cli import app
from suite.errors import SuiteError
from suite.train import TrialConfig, build_module, resolve_config, train


def cfg(*regs, epochs=3, **params) -> TrialConfig:
    return TrialConfig(task="digits", family="mlp", optimizer="sgd", regularizers=regs,
                       epochs=epochs, seed=0, device="cpu",
                       params={"width": 64, "depth": 2, "lr": 0.1, "schedule": "none", **params})


def test_list_regularizers_json_shows_all_with_strengths():
    result = CliRunner().invoke(app, ["list", "regularizers", "--json"])
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert set(entries) == {"none", "dropout", "l1", "l2", "early_stopping", "augment",
                            "batchnorm", "grad_clip"}
    assert entries["dropout"]["params"] == {"dropout": 0.2}
    assert entries["l2"]["params"] == {"weight_decay": 1e-4}


def test_cli_records_combined_regularizers_with_strengths():
    result = CliRunner().invoke(app, [
        "run", "--task", "digits", "--family", "mlp", "--regularizer", "dropout", "--regularizer",
        "l2", "--param", "dropout=0.3", "--epochs", "1", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["regularizers"] == ["dropout", "l2"]
    assert record["params"]["dropout"] == 0.3 and record["params"]["weight_decay"] == 1e-4


@pytest.mark.parametrize(("reg", "strength"), [("l1", {"l1": 1e-3}), ("l2", {"weight_decay": 0.05})])
def test_l1_and_l2_shrink_weight_norms_versus_none(reg, strength):
    base = train(cfg(epochs=5))
    reg_run = train(cfg(reg, epochs=5, **strength))
    norm = "weight_l1" if reg == "l1" else "weight_l2"
    assert reg_run["diagnostics"][norm] < 0.9 * base["diagnostics"][norm]


def test_l2_is_decoupled_for_adamw_and_coupled_for_adam():
    for optimizer, cls in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)):
        r = resolve_config(TrialConfig(task="digits", family="mlp", optimizer=optimizer,
                                       regularizers=("l2",), params={"weight_decay": 0.01}))
        opt = build_module(r).configure_optimizers()["optimizer"]  # with the default cosine schedule
        assert type(opt) is cls and opt.param_groups[0]["weight_decay"] == 0.01


def test_early_stopping_restores_the_best_epoch():
    record = train(cfg("early_stopping", epochs=40, patience=2, lr=0.5))
    curve = record["curves"]["val/accuracy"]
    best = record["best_epoch"]
    assert record["epochs_run"] < 40, "a plateau should stop training early"
    assert curve[best - 1] == max(curve)
    assert record["metrics"]["val/accuracy"] == pytest.approx(curve[best - 1], abs=1e-7)
    if best < len(curve):
        assert record["epochs_run"] == best + 2


def test_dropout_is_active_in_training_and_off_in_eval():
    module = build_module(resolve_config(cfg("dropout", dropout=0.5)))
    x = torch.rand(16, 1, 8, 8)
    module.train()
    assert not torch.equal(module(x), module(x))
    module.eval()
    assert torch.equal(module(x), module(x))
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in module.modules())


def test_batchnorm_adds_batchnorm_layers():
    module = build_module(resolve_config(cfg("batchnorm")))
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in module.modules()) == 2


def test_grad_clip_reaches_the_trainer():
    from suite.regularizers import REGULARIZERS

    kwargs = REGULARIZERS.get("grad_clip").trainer_kwargs({"clip": 0.5})
    assert kwargs == {"gradient_clip_val": 0.5, "gradient_clip_algorithm": "norm"}
    assert train(cfg("grad_clip", clip=0.5))["status"] == "complete"


def test_augment_changes_training_but_not_evaluation_data():
    plain, aug = train(cfg()), train(cfg("augment"))
    assert plain["curves"]["train/loss"] != aug["curves"]["train/loss"]


def test_combinations_are_checked():
    with pytest.raises(SuiteError, match="given twice"):
        train(cfg("l2", "l2"))


def test_deep_sigmoid_mlp_is_flagged_vanishing_and_relu_batchnorm_is_not():
    deep = dict(depth=10, width=64, epochs=3)
    sig = train(cfg(activation="sigmoid", **deep))
    relu_bn = train(cfg("batchnorm", activation="relu", **deep))
    assert sig["diagnostics"]["flag"] == "vanishing"
    assert sig["diagnostics"]["grad_ratio_median"] < 1e-3
    assert relu_bn["diagnostics"]["flag"] == "ok"
    assert relu_bn["diagnostics"]["grad_ratio_median"] > 1e-3


def test_diagnostics_curves_are_recorded_once_per_epoch():
    record = train(cfg(epochs=3))
    for key in ("grad/first", "grad/middle", "grad/last", "grad/ratio", "dead_relu", "gap",
                "train/accuracy"):
        assert len(record["curves"][key]) == 3, key
    assert 0.0 <= record["curves"]["dead_relu"][-1] <= 1.0
    gap = record["curves"]["train/accuracy"][-1] - record["curves"]["val/accuracy"][-1]
    assert record["curves"]["gap"][-1] == pytest.approx(gap)


def test_probe_is_sampled_every_kth_epoch_and_on_the_last():
    from suite.diagnostics import PROBES, Diagnostics

    assert [Diagnostics.every_for(n) for n in (1, PROBES, PROBES + 1, 3 * PROBES)] == [1, 1, 2, 3]
    record = train(cfg(epochs=PROBES + 3))  # every 2nd epoch (2, 4, ..., 12) and the last (13)
    sampled = [i + 1 for i, v in enumerate(record["curves"]["dead_relu"]) if not math.isnan(v)]
    assert sampled == [*range(2, PROBES + 3, 2), PROBES + 3]
    assert not any(math.isnan(v) for v in record["curves"]["grad/ratio"])  # grad norms: every epoch
    assert record["diagnostics"]["gap_final"] == pytest.approx(record["curves"]["gap"][-1])


def test_gradient_flag_rule():
    from suite.diagnostics import gradient_flag

    assert gradient_flag([1e-5, 1e-4, 1e-2], [1.0]) == "vanishing"
    assert gradient_flag([1.0, 2.0], [1.0]) == "ok"
    assert gradient_flag([1e4, 1e5], [1.0]) == "exploding"
    assert gradient_flag([1.0], [float("nan")]) == "exploding"
