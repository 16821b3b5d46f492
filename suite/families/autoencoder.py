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
values; for the VAE from the code's mean); the task's kind judges the scores (ROC-AUC ``auroc`` and
average precision ``ap``; a split with a single class, the normal-only training split, reports only
``loss``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from suite.families.base import ACTIVATION, register_family
from suite.families.mlp import mlp
from suite.params import Param
from tasks.base import Task

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


@functools.cache
def autoencoder_module() -> type:
    """The LightningModule of the ``autoencoder`` family: the shared module, with a step that
    trains an :class:`AutoencoderNet` to reconstruct its (noisy) input and gives each input its
    anomaly score, the reconstruction error (the task's kind turns scores into its metrics).

    Defined on first use (``Family.module``), so that listing and validating do not import
    Lightning."""
    from suite.module import SuiteModule

    class AutoencoderModule(SuiteModule):
        def model_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
            """``(loss, metric inputs of the anomaly scores)``: noise and sampling only while training."""
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
            return (loss, *self.metric_inputs(error.detach(), y))

    return AutoencoderModule


@register_family("autoencoder", params=PARAMS, module=autoencoder_module, kinds=("anomaly",),
                 tiny={"width": 16, "latent": 2},
                 description="MLP autoencoder (ae, denoising, vae); anomaly score = reconstruction error")
def build_autoencoder(task: Task, params: Mapping[str, Any]) -> nn.Module:
    return AutoencoderNet(task.input_shape, params)
