"""``transfer``: a backbone pre-trained on the task's source data, then a new linear head on the target.

``backbone`` = ``cnn``: two 3x3 conv layers of ``channels`` and 2 x ``channels`` channels, each
-> (BatchNorm) -> activation -> max-pool by 2 while the map is larger than 4 per side, then
(dropout and) the flattened map as features (1,024 for an 8x8 digit at ``channels`` 32); or ``mlp``:
``depth`` hidden layers of ``width`` units (the ``mlp`` family's blocks). The head is linear.
``dropout`` and ``batchnorm`` apply to both backbones. ``mode``:

* ``finetune``: start from the pre-trained backbone and train all layers on the target;
* ``freeze``: linear probe: the backbone is frozen (no gradients, BatchNorm/dropout in eval mode),
  only the head is trained;
* ``scratch``: no pre-training: the same network trained on the target from random weights.

Pre-training (``finetune``/``freeze``): backbone + a temporary linear head on the task's source
classes, cross-entropy, Adam (lr 1e-3), batch 64, ``pretrain_epochs`` epochs, on the CPU, seeded by
the trial seed (the seed ``train()`` gives torch) and off the trial's random stream, so it is
deterministic and cached in-process: arms with the same backbone and seed pre-train once. The
target phase is the ordinary trial (the trial's optimizer, regularizers, epochs) with a fresh head.
The defaults (``channels`` 32, ``pretrain_epochs`` 20) were picked on ``digits-transfer`` (5
seeds): at ``channels`` 16 and 10 epochs pre-training gave finetune 0.938 against scratch 0.935,
at 32 and 20 epochs 0.955 against 0.944 (freeze 0.951).

``weights=PATH`` starts from a backbone state dict on disk instead of pre-training, e.g. one saved
with ``torch.save(module.net.backbone.state_dict(), PATH)`` (a whole ``TransferNet`` state dict
works too: its ``backbone.`` entries are used). It is read with ``torch.load(PATH,
weights_only=True)``; a missing, unreadable or non-matching file is a :class:`SuiteError`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from suite.errors import SuiteError
from suite.families.base import ACTIVATION, activation, register_family
from suite.families.mlp import hidden_block
from suite.params import Param
from tasks.base import Task, TransferTask

MODES = ("finetune", "freeze", "scratch")
PRETRAIN_LR = 1e-3
PRETRAIN_BATCH = 64

PARAMS = (
    Param("mode", "finetune", choices=MODES, tune=False,
          help="finetune (all layers), freeze (linear probe) or scratch (no pre-training); not tuned"),
    Param("backbone", "cnn", choices=("cnn", "mlp"), help="backbone architecture"),
    Param("width", 128, low=1, high=8192, log=True, search=(32, 512), core=True,
          help="units per hidden layer of the mlp backbone"),
    Param("depth", 2, low=1, high=16, search=(1, 4), help="hidden layers of the mlp backbone"),
    Param("channels", 32, low=1, high=512, log=True, search=(8, 64), core=True,
          help="channels of the first conv layer of the cnn backbone (the second has twice as many)"),
    ACTIVATION,
    Param("pretrain_epochs", 20, low=1, high=10000, tune=False,
          help="epochs of pre-training on the source (Adam 1e-3, batch 64)"),
    Param("weights", "", tune=False,
          help="path of backbone weights (a state dict) to start from instead of pre-training"),
)

CONV = {1: nn.Conv1d, 2: nn.Conv2d}
BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
POOL_DOWN_TO = 4  # the cnn backbone pools by 2 after a conv only while the map is larger than this


def make_backbone(input_shape: tuple[int, ...], params: Mapping[str, Any]) -> tuple[nn.Sequential, int]:
    """The backbone for inputs of ``input_shape`` and the number of features it gives."""
    if params["backbone"] == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        n = math.prod(input_shape)
        for _ in range(params["depth"]):
            layers += hidden_block(n, params["width"], params)
            n = params["width"]
        return nn.Sequential(*layers), n
    dims = len(input_shape) - 1
    if dims not in CONV:
        raise SuiteError(f"the cnn backbone needs inputs of shape (C, L) or (C, H, W), got {input_shape}")
    channels, size = input_shape[0], list(input_shape[1:])
    layers = []
    for out in (params["channels"], 2 * params["channels"]):
        layers.append(CONV[dims](channels, out, 3, padding=1))
        if params.get("batchnorm", False):
            layers.append(BATCHNORM[dims](out))
        layers.append(activation(params["activation"]))
        if min(size) > POOL_DOWN_TO:
            layers.append(POOL[dims](2))
            size = [s // 2 for s in size]
        channels = out
    if params.get("dropout", 0.0) > 0:
        layers.append(nn.Dropout(params["dropout"]))
    return nn.Sequential(*layers, nn.Flatten()), channels * math.prod(size)


class TransferNet(nn.Module):
    """``head(backbone(x))``; :meth:`freeze` turns it into a linear probe."""

    def __init__(self, backbone: nn.Module, features: int, outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(features, outputs)
        self.frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def freeze(self) -> None:
        """No gradients into the backbone, and its BatchNorm/dropout always in eval mode."""
        self.frozen = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self


_PRETRAINED: dict[tuple, dict[str, torch.Tensor]] = {}
PRETRAINED_CACHE_SIZE = 32
BACKBONE_KEYS = ("backbone", "width", "depth", "channels", "activation", "dropout", "batchnorm",
                 "pretrain_epochs")  # the params that shape the pre-trained backbone


def pretrained_backbone(task: TransferTask, params: Mapping[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """State dict of a backbone pre-trained on ``task``'s source (cached per config and seed)."""
    key = (task.name, seed, *(params.get(k) for k in BACKBONE_KEYS))
    if key in _PRETRAINED:
        return _PRETRAINED[key]
    source = task.load_source()
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        backbone, features = make_backbone(task.input_shape, params)
        model = nn.Sequential(backbone, nn.Linear(features, task.source_outputs)).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=PRETRAIN_LR)
        order = torch.Generator().manual_seed(seed)
        for _ in range(params["pretrain_epochs"]):
            perm = torch.randperm(len(source), generator=order)
            for start in range(0, len(source), PRETRAIN_BATCH):
                idx = perm[start : start + PRETRAIN_BATCH]
                loss = F.cross_entropy(model(source.x[idx]), source.y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        state = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    if len(_PRETRAINED) >= PRETRAINED_CACHE_SIZE:  # a long tuning run: drop the oldest
        del _PRETRAINED[next(iter(_PRETRAINED))]
    _PRETRAINED[key] = state
    return state


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Load a backbone state dict from ``path`` into ``backbone``; :class:`SuiteError` if the file
    is missing, unreadable, not a state dict, or does not fit the backbone."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SuiteError(f"weights file {path!r} does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise SuiteError(f"weights file {path!r} could not be read as PyTorch weights "
                         f"({type(exc).__name__}: {reason})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SuiteError(f"weights file {path!r} does not hold a state dict (names -> tensors)")
    if any(k.startswith("backbone.") for k in state):  # a whole TransferNet: take its backbone
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    expected = backbone.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        problems = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                    for label, keys in (("missing", missing), ("unexpected", unexpected),
                                        ("wrong shape", wrong)) if keys]
        raise SuiteError(f"weights file {path!r} does not fit this backbone: {'; '.join(problems)}; "
                         "check the backbone, width, depth and channels params")
    backbone.load_state_dict(state)


@register_family("transfer", params=PARAMS, kinds=("transfer",),
                 tiny={"channels": 8, "width": 16, "pretrain_epochs": 1},
                 description="backbone pre-trained on the source task, then finetune / freeze / scratch")
def build_transfer(task: Task, params: Mapping[str, Any]) -> nn.Module:
    """The network with its backbone pre-trained on the source (seeded by the trial seed ``train()``
    gave torch), or loaded from ``weights``, and frozen for ``freeze``; the shared module trains it."""
    backbone, features = make_backbone(task.input_shape, params)
    net = TransferNet(backbone, features, task.outputs)
    mode, path = params["mode"], params["weights"]
    if mode == "scratch":
        if path:
            raise SuiteError(f"param weights={path!r} needs mode finetune or freeze; mode "
                             "scratch trains from random weights")
    elif path:
        load_backbone_weights(net.backbone, path)
    else:
        assert isinstance(task, TransferTask)  # the family takes transfer tasks only
        net.backbone.load_state_dict(pretrained_backbone(task, params, seed=torch.initial_seed()))
    if mode == "freeze":
        net.freeze()
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
    return net
