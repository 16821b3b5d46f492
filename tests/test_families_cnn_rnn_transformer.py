"""The cnn, rnn and transformer families: every (task, family) pair trains, parameter counts match
hand-computed formulas, outputs have the task's shape, every activation builds and runs, and a
width that heads do not divide is refused with one clear error."""

import math

import pytest
import torch

from suite.errors import SuiteError
from suite.families import ACTIVATIONS, FAMILIES, families_for
from suite.params import resolve
from suite.train import TrialConfig, train
from tasks import TASKS

FAMILY_NAMES = ("cnn", "rnn", "transformer")
TINY = {
    "cnn": {"blocks": 2, "channels": 4, "kernel": 3},
    "rnn": {"hidden": 8},
    "transformer": {"width": 16, "heads": 2, "layers": 1, "ffn": 1},
}
# Trained end to end on the two small built-in tasks; every registered task that lists a family is
# covered by the (data-free) build-and-forward test below, so a new task is checked the moment it
# is registered without loading its data here.
PAIRS = [(t, f) for t in ("digits", "mnist1d") for f in FAMILY_NAMES]
REGISTERED = [(t, f) for t in TASKS.names() for f in FAMILY_NAMES if f in families_for(TASKS.get(t))]


def build(task: str, family: str, **given):
    """The network of ``family`` for ``task`` with declared defaults overridden by ``given``."""
    fam, t = FAMILIES.get(family), TASKS.get(task)
    regularizer = {k: given.pop(k) for k in ("dropout", "batchnorm") if k in given}
    params = resolve(fam.declared(t), given) | regularizer
    return fam.build(t, params), t


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def output_shape(net: torch.nn.Module, task) -> tuple[int, ...]:
    net.eval()
    with torch.no_grad():
        return tuple(net(torch.randn(3, *task.input_shape)).shape)


def test_families_are_listed_by_both_tasks():
    for task in ("digits", "mnist1d"):
        assert set(FAMILY_NAMES) <= set(families_for(TASKS.get(task)))


@pytest.mark.parametrize(("task", "family"), PAIRS)
def test_every_task_family_pair_trains(task, family):
    record = train(TrialConfig(task=task, family=family, epochs=1, seed=0, device="cpu",
                               params={**TINY[family], "batch_size": 256}))
    assert record["status"] == "complete", record.get("error")
    assert record["family"] == family and record["epochs_run"] == 1
    assert all(math.isfinite(v) for v in record["metrics"].values())
    assert record["n_params"] == n_params(build(task, family, **TINY[family])[0])


@pytest.mark.parametrize(("task", "family"), REGISTERED)
@pytest.mark.parametrize("regularized", [False, True])
def test_output_has_the_task_shape(task, family, regularized):
    extra = {"dropout": 0.3, "batchnorm": True} if regularized else {}
    net, t = build(task, family, **TINY[family], **extra)
    assert output_shape(net, t) == (3, t.outputs)
    net.train()
    net(torch.randn(3, *t.input_shape)).sum().backward()
    if regularized:
        kinds = {type(m).__name__ for m in net.modules()}
        assert "Dropout" in kinds and any(k.startswith("BatchNorm") for k in kinds)


# ---------------------------------------------------------------------------- parameter counts
# Hand-computed: conv = c_in * c_out * k^d + c_out; linear = n_in * n_out + n_out.


@pytest.mark.parametrize(
    ("task", "head", "expected"),
    [
        # conv 1->4 (k=3) + conv 4->4 + linear; mnist1d length 40 -> 20 -> 10, digits 8x8 -> 4x4 -> 2x2
        ("mnist1d", "global", (1 * 4 * 3 + 4) + (4 * 4 * 3 + 4) + (4 * 10 + 10)),
        ("mnist1d", "flatten", (1 * 4 * 3 + 4) + (4 * 4 * 3 + 4) + (4 * 10 * 10 + 10)),
        ("digits", "global", (1 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 10 + 10)),
        ("digits", "flatten", (1 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 2 * 2 * 10 + 10)),
    ],
)
def test_cnn_parameter_count(task, head, expected):
    net, _ = build(task, "cnn", blocks=2, channels=4, kernel=3, head=head)
    assert n_params(net) == expected


def test_cnn_with_batchnorm_drops_conv_bias_and_adds_scale_and_shift():
    net, _ = build("mnist1d", "cnn", blocks=2, channels=4, kernel=3, head="global", batchnorm=True)
    assert n_params(net) == (1 * 4 * 3 + 2 * 4) + (4 * 4 * 3 + 2 * 4) + (4 * 10 + 10)


@pytest.mark.parametrize("task", ["digits", "mnist1d"])
def test_cnn_pooling_never_shrinks_below_one(task):
    net, t = build(task, "cnn", blocks=8, channels=4, kernel=3, head="flatten")
    # 8x8 and 40 both end at size 1 after at most 6 halvings; the flattened map is 4 x 1 (x 1)
    assert net.head.in_features == 4
    assert output_shape(net, t) == (3, 10)


def rnn_count(cell: str, n_in: int, hidden: int, layers: int, bidirectional: bool) -> int:
    """gates x (W_ih + W_hh + b_ih + b_hh) per layer and direction."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(layers):
        i = n_in if layer == 0 else d * hidden
        total += d * gates * (hidden * i + hidden * hidden + 2 * hidden)
    return total


@pytest.mark.parametrize(("task", "n_in"), [("mnist1d", 1), ("digits", 8)])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True)])
def test_rnn_parameter_count(task, n_in, cell, layers, bidirectional):
    net, t = build(task, "rnn", cell=cell, hidden=8, layers=layers, bidirectional=bidirectional)
    d = 2 if bidirectional else 1
    assert n_params(net) == rnn_count(cell, n_in, 8, layers, bidirectional) + (d * 8 * 10 + 10)
    assert output_shape(net, t) == (3, 10)


def test_rnn_gru_count_written_out():
    # GRU, 1 input feature, 8 hidden: 3 * (8*1 + 8*8 + 8 + 8) = 264; head 8*10 + 10 = 90
    assert n_params(build("mnist1d", "rnn", cell="gru", hidden=8)[0]) == 264 + 90


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_rnn_reads_images_as_rows_and_both_readouts_run(readout):
    net, t = build("digits", "rnn", hidden=8, readout=readout, bidirectional=True)
    assert net.rnn.input_size == 8  # a row of C * W = 1 * 8 pixels per step
    assert output_shape(net, t) == (3, 10)


def test_rnn_sequence_order_matters():
    net, t = build("digits", "rnn", hidden=8)
    x = torch.randn(2, *t.input_shape)
    assert not torch.allclose(net(x), net(x.flip(-2)))


def transformer_count(n_patch_in: int, tokens: int, w: int, layers: int, ffn: int, cls: bool,
                      learned: bool) -> int:
    embed = n_patch_in * w + w
    layer = (3 * w * w + 3 * w) + (w * w + w) + (w * ffn * w + ffn * w) + (ffn * w * w + w) + 4 * w
    return (embed + (w if cls else 0) + ((tokens + cls) * w if learned else 0) + layers * layer
            + 2 * w + (w * 10 + 10))


@pytest.mark.parametrize(
    ("task", "patch", "n_patch_in", "tokens"),
    [
        ("mnist1d", 4, 4, 10),  # 40 steps -> 10 patches of 4
        ("mnist1d", 3, 3, 14),  # 40 -> padded to 42 -> 14 patches of 3
        ("digits", 4, 16, 4),  # 8x8 -> 2x2 squares of 4x4
        ("digits", 3, 9, 9),  # 8x8 -> padded to 9x9 -> 3x3 squares of 3x3
    ],
)
@pytest.mark.parametrize(("pool", "positions"), [("cls", "learned"), ("mean", "sinusoidal")])
def test_transformer_parameter_count(task, patch, n_patch_in, tokens, pool, positions):
    net, t = build(task, "transformer", width=16, heads=2, layers=2, ffn=2, patch=patch, pool=pool,
                   positions=positions)
    assert n_params(net) == transformer_count(n_patch_in, tokens, 16, 2, 2, pool == "cls",
                                              positions == "learned")
    assert output_shape(net, t) == (3, 10)


def test_transformer_width_not_divisible_by_heads_is_one_clear_error():
    with pytest.raises(SuiteError) as info:
        train(TrialConfig(task="mnist1d", family="transformer", epochs=1, device="cpu",
                          params={"width": "16", "heads": "3"}))
    assert str(info.value) == (
        "param width=16 is not divisible by heads=3; with width=16 allowed heads: 1, 2, 4, 8, 16"
    )


def test_transformer_search_space_only_gives_valid_widths_and_heads():
    space = {p.name: p for p in FAMILIES.get("transformer").params}
    assert all(w % h == 0 for w in space["width"].search for h in space["heads"].search)


@pytest.mark.parametrize("family", ["cnn", "transformer"])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_activation_builds_and_runs(family, name):
    net, t = build("mnist1d", family, **TINY[family], activation=name)
    assert any(isinstance(m, ACTIVATIONS[name]) for m in net.modules())
    x = torch.randn(4, *t.input_shape)
    loss = torch.nn.functional.cross_entropy(net(x), torch.arange(4))
    loss.backward()
    assert math.isfinite(float(loss.detach()))


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_search_space_is_the_declaration(family):
    optuna = pytest.importorskip("optuna")
    fam, task = FAMILIES.get(family), TASKS.get("mnist1d")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        params = resolve(fam.declared(task), {p.name: p.suggest(trial) for p in fam.declared(task) if p.tune})
        assert set(params) == {p.name for p in fam.declared(task)}
        assert output_shape(fam.build(task, params), task) == (3, 10)
