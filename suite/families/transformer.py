"""``transformer``: a pre-norm Transformer encoder over patches of the input.

A signal ``(C, L)`` is cut into ``ceil(L / patch)`` patches of ``patch`` steps, an image
``(C, H, W)`` into ``patch`` x ``patch`` squares (the input is zero-padded at the end to a whole
number of patches); each patch is embedded linearly into ``width`` features (a conv with stride =
kernel = ``patch``), (BatchNorm over the embeddings,) plus ``learned`` or ``sinusoidal`` positions.
``layers`` encoder layers (``heads`` attention heads, feed-forward ``ffn`` x ``width``, ``activation``,
dropout) and a final LayerNorm follow; the head reads a CLS token (``pool=cls``) or the mean of
the tokens (``pool=mean``) through dropout and a linear layer.

``width`` must be divisible by ``heads``. The search space guarantees it by construction (widths
32..256 are multiples of 8, heads 1..8 powers of two); an explicit pair that breaks it is refused
with a :class:`SuiteError` before training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from suite.errors import SuiteError
from suite.families.base import ACTIVATIONS, activation, register_family
from suite.params import Param
from tasks.base import Task

WIDTHS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
HEADS = (1, 2, 3, 4, 6, 8, 12, 16)

PARAMS = (
    Param("width", 64, choices=WIDTHS, search=(32, 64, 128, 256), core=True,
          help="model width d_model (features per token)"),
    Param("heads", 4, choices=HEADS, search=(1, 2, 4, 8), help="attention heads; must divide width"),
    Param("layers", 2, low=1, high=24, search=(1, 4), core=True, help="encoder layers"),
    Param("ffn", 2, low=1, high=8, search=(1, 4), help="feed-forward width as a multiple of width"),
    Param("patch", 4, low=1, high=64, search=(1, 8),
          help="patch size: time steps of a signal, side of a square of an image"),
    Param("positions", "learned", choices=("learned", "sinusoidal"), help="position encoding"),
    Param("pool", "cls", choices=("cls", "mean"), help="read a CLS token or the mean over tokens"),
    Param("activation", "gelu", choices=tuple(ACTIVATIONS), help="feed-forward activation"),
)

CONV = {1: nn.Conv1d, 2: nn.Conv2d}
BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}


def sinusoidal(n: int, width: int) -> torch.Tensor:
    """Fixed ``(n, width)`` sine/cosine position encodings (Vaswani et al., 2017)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(n, width)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: width // 2])
    return table


class Transformer(nn.Module):
    """Patch embedding, position encoding, a pre-norm Transformer encoder and a linear head.

    Args:
        input_shape: ``(C, L)`` or ``(C, H, W)``.
        outputs: output size.
        params: the family params and the regularizer params ``dropout`` (default 0; embeddings,
            attention, feed-forward and head) and ``batchnorm`` (default off; normalizes the patch
            embeddings).

    Raises:
        SuiteError: ``width`` is not divisible by ``heads``, or the input is not 2D/3D.
    """

    def __init__(self, input_shape: tuple[int, ...], outputs: int, params: Mapping[str, Any]) -> None:
        super().__init__()
        width, heads, patch = params["width"], params["heads"], params["patch"]
        if width % heads:
            ok = ", ".join(str(h) for h in HEADS if width % h == 0)
            raise SuiteError(
                f"param width={width} is not divisible by heads={heads}; with width={width} allowed "
                f"heads: {ok}"
            )
        dims = len(input_shape) - 1
        if dims not in CONV:
            raise SuiteError(
                f"family transformer needs inputs of shape (C, L) or (C, H, W), got {tuple(input_shape)}"
            )
        dropout = params.get("dropout", 0.0)
        self.patch = patch
        self.padding = [0, 0] * dims  # F.pad order: last dimension first, (left, right) pairs
        tokens = 1
        for i, size in enumerate(reversed(input_shape[1:])):
            self.padding[2 * i + 1] = -size % patch
            tokens *= math.ceil(size / patch)
        self.embed = CONV[dims](input_shape[0], width, patch, stride=patch)
        self.norm = BATCHNORM[dims](width) if params.get("batchnorm", False) else nn.Identity()
        self.cls = nn.Parameter(torch.zeros(1, 1, width)) if params["pool"] == "cls" else None
        tokens += self.cls is not None
        if params["positions"] == "learned":
            self.positions = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        else:
            self.register_buffer("positions", sinusoidal(tokens, width)[None], persistent=False)
        self.embed_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=params["ffn"] * width, dropout=dropout,
            activation=activation(params["activation"]), batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, params["layers"], norm=nn.LayerNorm(width),
                                             enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.padding):
            x = F.pad(x, self.padding)
        z = self.norm(self.embed(x)).flatten(2).transpose(1, 2)  # (B, tokens, width)
        if self.cls is not None:
            z = torch.cat([self.cls.expand(len(z), -1, -1), z], dim=1)
        z = self.encoder(self.embed_dropout(z + self.positions))
        z = z[:, 0] if self.cls is not None else z.mean(dim=1)
        return self.head(self.dropout(z))


@register_family("transformer", params=PARAMS, ranks=(2, 3),
                 tiny={"width": 16, "heads": 2, "layers": 1, "ffn": 1},
                 description="pre-norm Transformer encoder over signal patches or image squares")
def build_transformer(task: Task, params: Mapping[str, Any]) -> nn.Module:
    return Transformer(task.input_shape, task.outputs, params)
