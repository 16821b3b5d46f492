"""The autoencoder, gan and transfer families and their tasks (digits-anomaly, ring-gan, digits-gan,
digits-transfer): every pair trains through ``train()``, networks have the hand-computed sizes and
shapes, the objectives go down, pre-training is deterministic and off the trial's random stream,
weights files load (or fail with one clear error), and the task splits are as documented."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from suite.errors import SuiteError
from suite.families import ACTIVATIONS, FAMILIES
from suite.params import resolve
from suite.train import TrialConfig, build_module, resolve_config, train
from tasks import get_task


def cfg(task: str, family: str, epochs: int = 1, seed: int = 0, regularizers=(), **params) -> TrialConfig:
    return TrialConfig(task=task, family=family, epochs=epochs, seed=seed, device="cpu",
                       regularizers=regularizers, params=params)


AE = {"width": 16, "latent": 4}
GAN = {"width": 16, "latent": 4}
TRANSFER = {"channels": 4, "width": 16, "depth": 1, "pretrain_epochs": 1}
PAIRS = [
    *[cfg("digits-anomaly", "autoencoder", variant=v, **AE) for v in ("ae", "denoising", "vae")],
    cfg("ring-gan", "gan", batch_size=1024, **GAN),
    cfg("digits-gan", "gan", **GAN),
    *[cfg("digits-transfer", "transfer", mode=m, backbone=b, **TRANSFER)
      for m, b in (("finetune", "cnn"), ("freeze", "cnn"), ("scratch", "mlp"), ("finetune", "mlp"))],
]


def build(task: str, family: str, **given):
    """The network of ``family`` for ``task`` with declared defaults overridden by ``given``."""
    fam, t = FAMILIES.get(family), get_task(task)
    return fam.build(t, resolve(fam.declared(t), given)), t


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("config", PAIRS, ids=lambda c: f"{c.task}-{c.family}-{'-'.join(map(str, c.params.values()))}")
def test_each_pair_trains_to_a_complete_record(config):
    record = train(config)
    assert record["status"] == "complete", (record.get("error"), record.get("traceback"))
    task = get_task(config.task)
    metrics = record["metrics"]
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert record["primary"]["value"] == metrics[f"test/{task.metric}"]
    for split in ("val", "test"):
        assert f"{split}/{task.metric}" in metrics and f"{split}/loss" in metrics
    assert len(record["curves"][f"val/{task.metric}"]) == 1
    assert record["n_params"] > 0


def test_autoencoder_reports_ranking_metrics_only_where_both_classes_exist():
    record = train(cfg("digits-anomaly", "autoencoder", **AE))
    m = record["metrics"]
    assert set(m) == {"train/loss", "val/auroc", "val/ap", "val/loss", "test/auroc", "test/ap", "test/loss"}
    assert 0.0 <= m["test/auroc"] <= 1.0


def test_gan_record_has_both_losses_and_counts_both_optimizer_steps():
    record = train(cfg("ring-gan", "gan", epochs=2, batch_size=2000, **GAN))
    assert record["steps"] == 2 * 2 * 4  # 2 epochs x 4 batches x (discriminator + generator)
    for key in ("train/d_loss", "train/g_loss", "val/modes", "val/quality", "grad/ratio"):
        assert len(record["curves"][key]) == 2
    assert record["curves"]["train/loss"][0] == pytest.approx(
        record["curves"]["train/d_loss"][0] + record["curves"]["train/g_loss"][0])
    assert record["params"]["beta1"] == 0.5 and record["params"]["pack"] == 2


@pytest.mark.parametrize("task", ["ring-gan", "digits-transfer"])
def test_same_seed_same_record(task):
    config = (cfg("ring-gan", "gan", batch_size=1024, **GAN) if task == "ring-gan"
              else cfg("digits-transfer", "transfer", **TRANSFER))
    a, b = train(config), train(config)  # the second transfer run takes the cached backbone
    assert a["metrics"] == b["metrics"] and a["curves"]["train/loss"] == b["curves"]["train/loss"]


def test_gan_refuses_gradient_clipping_with_one_clear_error():
    with pytest.raises(SuiteError, match="regularizer 'grad_clip' is not supported by family 'gan'"):
        train(cfg("ring-gan", "gan", regularizers=("grad_clip",), **GAN))


# ------------------------------------------------------------------------- sizes and shapes


def test_autoencoder_sizes_and_shapes():
    ae, _ = build("digits-anomaly", "autoencoder", depth=1, width=16, latent=4)
    # encoder 64-16-4, decoder 4-16-64
    assert n_params(ae) == (64 * 16 + 16 + 16 * 4 + 4) + (4 * 16 + 16 + 16 * 64 + 64) == 2276
    vae, _ = build("digits-anomaly", "autoencoder", variant="vae", depth=1, width=16, latent=4)
    assert n_params(vae) == 2276 + 16 * 4 + 4  # the encoder also gives the log-variance
    x = torch.rand(5, 1, 8, 8)
    assert ae(x).shape == (5, 1, 8, 8)
    mean, log_var = vae.encode(x)
    assert mean.shape == log_var.shape == (5, 4) and vae(x).shape == (5, 1, 8, 8)


def test_gan_sizes_shapes_and_value_range():
    net, _ = build("ring-gan", "gan", depth=1, width=16, latent=4, pack=1)
    assert n_params(net.generator) == 4 * 16 + 16 + 16 * 2 + 2
    assert n_params(net.discriminator) == 2 * 16 + 16 + 16 + 1
    z = net.noise(7)
    assert z.shape == (7, 4) and net(z).shape == (7, 2)
    assert net.discriminate(net(z)).shape == (7, 1)
    packed, _ = build("ring-gan", "gan", depth=1, width=16, latent=4, pack=3)
    assert n_params(packed.discriminator) == 3 * 2 * 16 + 16 + 16 + 1  # sees 3 points at once
    assert packed.discriminate(packed(z)).shape == (2, 1)  # 7 samples: 2 groups of 3, 1 dropped
    digits, _ = build("digits-gan", "gan", depth=1, width=16, latent=4)
    images = digits(10 * digits.noise(50))
    assert images.shape == (50, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


def test_transfer_sizes_and_shapes():
    cnn, _ = build("digits-transfer", "transfer", backbone="cnn", channels=4)
    # conv 1->4 (pool to 4x4), conv 4->8 (no pool at 4x4): 8*4*4 = 128 features, head 128->5
    assert n_params(cnn.backbone) == (1 * 4 * 9 + 4) + (4 * 8 * 9 + 8)
    assert n_params(cnn.head) == 128 * 5 + 5
    mlp, _ = build("digits-transfer", "transfer", backbone="mlp", depth=1, width=16)
    assert n_params(mlp) == (64 * 16 + 16) + (16 * 5 + 5)
    x = torch.rand(3, 1, 8, 8)
    assert cnn(x).shape == mlp(x).shape == (3, 5)


@pytest.mark.parametrize("family", ["autoencoder", "gan", "transfer"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_every_activation_builds_and_runs(family, act):
    task = {"autoencoder": "digits-anomaly", "gan": "ring-gan", "transfer": "digits-transfer"}[family]
    net, t = build(task, family, activation=act, width=8)
    x = torch.rand(4, *t.input_shape)
    out = net(net.noise(4)) if family == "gan" else net(x)
    assert torch.isfinite(out).all()
    assert any(isinstance(m, ACTIVATIONS[act]) for m in net.modules())


# ------------------------------------------------------------------------- objectives go down


@pytest.mark.parametrize("variant", ["vae", "ae"])
def test_reconstruction_loss_goes_down_over_epochs(variant):
    record = train(cfg("digits-anomaly", "autoencoder", epochs=4, variant=variant, **AE))
    losses = record["curves"]["train/loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert record["curves"]["val/loss"][-1] < record["curves"]["val/loss"][0]


def test_each_gan_player_lowers_its_loss_against_a_fixed_opponent():
    from suite.families.gan import adversarial_losses

    module = build_module(resolve_config(cfg("ring-gan", "gan", **GAN)))
    opt_g, opt_d = module.configure_optimizers()
    net = module.net
    real = get_task("ring-gan").load().train.x[:256]
    z = net.noise(256, torch.Generator().manual_seed(0))

    def losses():
        return adversarial_losses(net, real, net(z))

    def value(loss: torch.Tensor) -> float:
        return float(loss.detach())

    d_first = value(losses()[0])
    for _ in range(20):  # the discriminator learns; the generator stays
        opt_d.zero_grad()
        losses()[0].backward()
        opt_d.step()
    d_last, g_first = (value(v) for v in losses())
    assert d_last < d_first
    for _ in range(20):  # the generator learns against the now fixed discriminator
        opt_g.zero_grad()
        losses()[1].backward()
        opt_g.step()
    assert value(losses()[1]) < g_first


# ----------------------------------------------------------------------- pre-training, weights


def test_pretraining_is_deterministic_cached_and_leaves_the_random_state_alone():
    from suite.families import transfer

    task = get_task("digits-transfer")
    params = resolve(FAMILIES.get("transfer").declared(task), TRANSFER)
    before = torch.get_rng_state()
    a = transfer.pretrained_backbone(task, params, seed=123)
    assert torch.equal(before, torch.get_rng_state())
    assert transfer.pretrained_backbone(task, params, seed=123) is a  # in-process cache
    key = next(k for k, v in transfer._PRETRAINED.items() if v is a)
    del transfer._PRETRAINED[key]
    b = transfer.pretrained_backbone(task, params, seed=123)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = transfer.pretrained_backbone(task, params, seed=124)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_finetune_starts_from_the_pretrained_backbone_and_freeze_keeps_it():
    from suite.families import transfer

    r = resolve_config(cfg("digits-transfer", "transfer", mode="freeze", **TRANSFER))
    torch.manual_seed(7)
    module = build_module(r)
    state = transfer.pretrained_backbone(r.task, r.params, seed=7)
    assert all(torch.equal(v, state[k]) for k, v in module.net.backbone.state_dict().items())
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt  # with a schedule: {optimizer, lr_scheduler}
    split = r.task.load().train
    head = module.net.head.weight.detach().clone()
    module.train()
    for _ in range(5):
        opt.zero_grad()
        module.model_step((split.x, split.y))[0].backward()
        opt.step()
    assert all(torch.equal(v, state[k]) for k, v in module.net.backbone.state_dict().items())
    assert not torch.equal(head, module.net.head.weight)
    assert not module.net.backbone.training  # dropout / batch norm of a probe stay in eval mode


@pytest.mark.parametrize("whole_net", [False, True])
def test_weights_file_is_loaded_instead_of_pretraining(tmp_path, whole_net):
    donor, _ = build("digits-transfer", "transfer", **{k: v for k, v in TRANSFER.items()
                                                        if k != "pretrain_epochs"})
    path = tmp_path / "backbone.pt"
    torch.save(donor.state_dict() if whole_net else donor.backbone.state_dict(), path)
    module = build_module(resolve_config(cfg("digits-transfer", "transfer", weights=str(path), **TRANSFER)))
    for k, v in module.net.backbone.state_dict().items():
        assert torch.equal(v, donor.backbone.state_dict()[k])
    record = train(cfg("digits-transfer", "transfer", weights=str(path), mode="freeze", **TRANSFER))
    assert record["status"] == "complete" and record["params"]["weights"] == str(path)


def test_bad_weights_files_give_one_clear_error(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"these are not weights")
    mlp_weights = tmp_path / "mlp.pt"
    net, _ = build("digits-transfer", "transfer", backbone="mlp", depth=1, width=16)
    torch.save(net.backbone.state_dict(), mlp_weights)
    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], not_a_dict)
    cases = [
        (tmp_path / "missing.pt", "does not exist"),
        (corrupt, "could not be read as PyTorch weights"),
        (not_a_dict, "does not hold a state dict"),
        (mlp_weights, "does not fit this backbone: missing 0.bias, 0.weight, 3.bias ...; unexpected 1.bias"),
    ]
    for path, message in cases:
        with pytest.raises(SuiteError) as info:
            train(cfg("digits-transfer", "transfer", weights=str(path), **TRANSFER))
        assert f"weights file '{path}' {message}" in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(SuiteError, match="needs mode finetune or freeze"):
        train(cfg("digits-transfer", "transfer", weights=str(mlp_weights), mode="scratch", **TRANSFER))


def test_cli_exits_2_on_a_corrupt_weights_file(tmp_path):
    from suite.cli import app

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage")
    result = CliRunner().invoke(app, ["run", "--task", "digits-transfer", "--family", "transfer",
                                      "--param", f"weights={corrupt}", "--device", "cpu", "--json"])
    assert result.exit_code == 2
    assert "could not be read as PyTorch weights" in result.output


# ------------------------------------------------------------------------------------- tasks


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def _digit_rows(digits) -> set[bytes]:
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = np.isin(data.target, digits)
    x = torch.as_tensor((data.data[keep] / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    return _rows(x)


def test_digits_anomaly_split_holds_the_anomaly_out_of_training():
    from tasks.digits_anomaly import ANOMALY

    task = get_task("digits-anomaly")
    s = task.load()
    assert s.sizes() == {"train": 970, "val": 413, "test": 414}
    assert int(s.train.y.sum()) == 0 and int(s.val.y.sum()) == int(s.test.y.sum()) == 90
    nines = _digit_rows([ANOMALY])
    assert not (_rows(s.train.x) & nines)
    for split in (s.val, s.test):
        assert _rows(split.x[split.y == 1]) <= nines and not (_rows(split.x[split.y == 0]) & nines)
    train, val, test = _rows(s.train.x), _rows(s.val.x), _rows(s.test.x)
    assert not (train & val) and not (train & test) and not (val & test)
    assert task.load() is task.load(task.split_seed)


def test_ring_split_and_score():
    from tasks.ring_gan import RADIUS, centres, score_ring

    task = get_task("ring-gan")
    s = task.load()
    assert s.sizes() == {"train": 8000, "val": 2000, "test": 2000}
    assert not (_rows(s.train.x) & _rows(s.test.x))
    assert torch.allclose(s.train.x.norm(dim=1).mean(), torch.tensor(RADIUS), atol=0.01)
    real = score_ring(s.test.x, s.test.x)
    assert real["modes"] == 8 and real["quality"] > 0.98
    collapsed = centres()[2].float().repeat(2000, 1)
    assert score_ring(collapsed, s.test.x) == {"modes": 1.0, "quality": 1.0}
    two = torch.cat([centres()[0].repeat(1990, 1), centres()[1].repeat(10, 1)]).float()
    assert score_ring(two, s.test.x)["modes"] == 1.0  # 10 of 2,000 is under the 1% needed
    assert score_ring(torch.zeros(100, 2), s.test.x) == {"modes": 0.0, "quality": 0.0}


def test_digits_gan_frechet_distance_orders_real_above_noise_and_leaves_rng_alone():
    from tasks.digits_gan import frechet_distance, score_digits

    a = np.random.default_rng(0).normal(size=(500, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(3.0, abs=1e-6)  # mean shift of 1 in 3 dims
    task = get_task("digits-gan")
    s = task.load()
    assert s.sizes() == get_task("digits").load().sizes()
    before = torch.get_rng_state()
    real = score_digits(s.val.x, s.test.x)["fd"]
    assert torch.equal(before, torch.get_rng_state())
    noise = score_digits(torch.rand(360, 1, 8, 8, generator=torch.Generator().manual_seed(0)), s.test.x)
    assert real < 5 < task.target < noise["fd"]
    assert noise["fd"] == pytest.approx(task.baselines["uniform_noise"], rel=0.05)
    assert math.isnan(score_digits(torch.full((10, 1, 8, 8), float("nan")), s.test.x)["fd"])


def test_digits_transfer_split_has_ten_labels_per_class_and_a_disjoint_source():
    task = get_task("digits-transfer")
    s = task.load()
    assert s.sizes() == {"train": 50, "val": 50, "test": 796}
    assert torch.bincount(s.train.y).tolist() == [10] * 5 == torch.bincount(s.val.y).tolist()
    train, val, test = _rows(s.train.x), _rows(s.val.x), _rows(s.test.x)
    assert not (train & val) and not (train & test) and not (val & test)
    target = train | val | test
    assert target == _digit_rows([5, 6, 7, 8, 9])
    source = task.load_source()
    assert len(source) == 901 and set(source.y.tolist()) == {0, 1, 2, 3, 4}
    assert _rows(source.x) == _digit_rows([0, 1, 2, 3, 4]) and not (_rows(source.x) & target)
    assert not torch.equal(task.loader.__wrapped__(1).train.x, s.train.x)
