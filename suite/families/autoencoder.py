"""``autoencoder``: an MLP encoder to a ``latent`` code and an MLP decoder back; scores anomalies.

Variants (param ``variant``):

* ``ae``: reconstruct the input; loss = mean squared error per pixel.
* ``denoising``: the same, from the input plus Gaussian noise of std ``noise`` (training only).
* ``vae``: the encoder gives the mean and log-variance of a Gaussian code, the decoder reconstructs
  from a sample (from the mean in evaluation); loss = MSE + ``beta`` * KL(q(z|x) || N(0, I)) / D,
  with D the number of input values. Against the summed squared error this is an ELBO with a
  Gaussian decoder of variance ``beta / 2``, so the default ``beta`` = 0.01 means pixel noise of
  std 0.07 on [0, 1] images; ``beta`` = 1 all but collapses the code (ROC-AUC 0.57 on
  ``digits-anomaly`` against 0.86 at 0.01).

Encoder and decoder each have ``depth`` hidden layers of ``width`` units (the ``mlp`` family's
blocks, so ``dropout`` and ``batchnorm`` apply); the decoder output is linear. On ``anomaly``
tasks the anomaly score of an image is its reconstruction error (mean squared error over its
values; for the VAE from the code's mean), judged by ROC-AUC (``auroc``) and average precision
(``ap``); a split with a single class (the normal-only training split) reports only ``loss``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torchmetrics
from torch import nn

from suite.errors import SuiteError
from suite.families.base import ACTIVATION, register_family
from suite.families.mlp import mlp
from suite.metrics import MetricSet
from suite.module import SuiteModule
from suite.params import Param
from tasks.base import Split, Task

VARIANTS = ("ae", "denoising", "vae")

PARAMS = (
    Param("variant", "ae", choices=VARIANTS, tune=False,
          help="ae, denoising (noisy inputs) or vae; fixed per arm, not tuned"),
    Param("depth", 1, low=1, high=16, search=(1, 3), help="hidden layers of encoder and of decoder"),
    Param("width", 128, low=1, high=8192, log=True, search=(32, 512), core=True,
          help="units per hidden layer"),
    Param("latent", 8, low=1, high=1024, log=True, search=(2, 64), core=True, help="size of the code"),
    ACTIVATION,
    Param("noise", 0.2, low=0.0, high=10.0, search=(0.05, 0.5),
          help="std of the Gaussian noise added to training inputs (variant denoising only)"),
    Param("beta", 0.01, low=0.0, high=100.0, log=True, search=(1e-3, 1.0),
          help="weight of the KL term (variant vae only)"),
)


class AutoencoderNet(nn.Module):
    """Encoder ``x -> code`` and decoder ``code -> x`` on the flattened input.

    Args:
        input_shape: shape of one input.
        params: ``variant``, ``depth``, ``width``, ``latent``, ``activation`` (and the regularizer
            params ``dropout``, ``batchnorm``).
    """

    def __init__(self, input_shape: tuple[int, ...], params: Mapping[str, Any]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.variational = params["variant"] == "vae"
        n, latent = math.prod(input_shape), params["latent"]
        self.encoder = nn.Sequential(nn.Flatten(), mlp(n, 2 * latent if self.variational else latent,
                                                       params))
        self.decoder = mlp(latent, n, params)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mean, log_variance)`` of the code; ``log_variance`` is ``None`` unless a VAE."""
        h = self.encoder(x)
        return h.chunk(2, dim=1) if self.variational else (h, None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(len(z), *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` (from the code's mean for a VAE)."""
        return self.decode(self.encode(x)[0])


class AutoencoderModule(SuiteModule):
    """Trains an :class:`AutoencoderNet` to reconstruct its (noisy) input; on ``anomaly`` tasks the
    metrics rank images by reconstruction error against the labels (1 = anomaly)."""

    def make_metrics(self) -> MetricSet:
        if self.task.kind != "anomaly":
            raise SuiteError(f"family 'autoencoder' scores anomaly tasks; task {self.task.name!r} is "
                             f"of kind {self.task.kind!r}")
        return MetricSet(torchmetrics.MetricCollection(
            {"auroc": torchmetrics.AUROC(task="binary"),
             "ap": torchmetrics.AveragePrecision(task="binary")}
        ), epoch_metric=self.task.metric)

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        """``(loss, anomaly scores, labels)``: noise and sampling only while training."""
        x, y = batch
        variant = self.params["variant"]
        inputs = x
        if self.training and variant == "denoising":
            inputs = x + self.params["noise"] * torch.randn_like(x)
        mean, log_var = self.net.encode(inputs)
        z = mean
        if self.training and log_var is not None:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        error = (self.net.decode(z) - x).flatten(1).pow(2).mean(dim=1)
        loss = error.mean()
        if log_var is not None:
            kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(dim=1).mean()
            loss = loss + self.params["beta"] * kl / x[0].numel()
        return loss, error.detach(), y

    def evaluate(self, split: Split, name: str, batch_size: int = 4096, *,
                 full: bool = True) -> dict[str, float]:
        """As the base, but ranking metrics are left out on a split with a single class."""
        if len(torch.unique(split.y)) > 1:
            return super().evaluate(split, name, batch_size, full=full)
        with warnings.catch_warnings():  # AUROC warns (and is meaningless) without positives
            warnings.simplefilter("ignore")
            out = super().evaluate(split, name, batch_size, full=full)
        return {k: v for k, v in out.items() if k == f"{name}/loss"}


@register_family("autoencoder", params=PARAMS, module=AutoencoderModule, kinds=("anomaly",),
                 tiny={"width": 16, "latent": 2},
                 description="MLP autoencoder (ae, denoising, vae); anomaly score = reconstruction error")
def build_autoencoder(task: Task, params: Mapping[str, Any]) -> nn.Module:
    return AutoencoderNet(task.input_shape, params)
