"""``gan``: an MLP generator and an MLP discriminator trained adversarially.

The generator maps ``latent`` standard-normal values to one input (squashed by a sigmoid into the
task's ``value_range`` when it has one, linear otherwise); the discriminator gives one
logit per group of ``pack`` samples, concatenated (PacGAN, Lin et al. 2018: a discriminator that
sees several samples at once penalizes a generator that repeats itself; ``pack`` = 1 is the plain
GAN). Both have ``depth`` hidden layers of ``width`` units (the ``mlp`` family's blocks, so
``dropout`` and ``batchnorm`` apply to both). Default ``pack`` = 2: at the task defaults (seeds 0-2)
it covered 8/8/8 modes of ``ring-gan`` where ``pack`` = 1 ended with 7/7/4, while ``digits-gan``'s
FD (17.6/6.5/18.3 against 12.0/6.8/13.4) stayed within its epoch-to-epoch noise (about +-5).

Training uses Lightning's manual optimization: per batch, one discriminator step on
``BCE(D(real), 1) + BCE(D(G(z)), 0)``, then one generator step on the non-saturating
``BCE(D(G(z)), 1)``, each with its own optimizer built from the trial's optimizer entry (same
hyperparameters and schedule). The family sets ``beta1`` = 0.5 for ``adam``/``adamw`` (the DCGAN
setting; with the optimizers' 0.9 the discriminator wins on ``digits-gan`` and modes are lost more
often on ``ring-gan``); non-Adam optimizers ignore it. ``train/loss`` is the sum of the two
losses; the curves also hold ``train/d_loss`` and ``train/g_loss``. ``steps`` in the record counts
optimizer steps of both networks (2 per batch). Evaluation generates as many samples as the split
has, from fixed noise (seed 0) so it is deterministic, and scores them with the task's ``score``;
it adds ``d_loss``, ``g_loss`` and their sum ``loss`` on that split. The ``grad_clip``
regularizer is refused (Lightning clips only under automatic optimization).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from suite.errors import SuiteError
from suite.families.base import ACTIVATIONS, register_family
from suite.families.mlp import mlp
from suite.optimizers import OPTIMIZERS, SCHEDULE, build_schedule
from suite.params import Param
from tasks.base import Split, Task

EVAL_SEED = 0

PARAMS = (
    # constant by default, as GANs are usually trained (every other family decays: SCHEDULE)
    dataclasses.replace(SCHEDULE, default="none"),
    Param("latent", 16, low=1, high=1024, log=True, search=(2, 128), help="size of the noise input"),
    Param("depth", 2, low=1, high=16, search=(1, 4), core=True, help="hidden layers of each network"),
    Param("width", 128, low=1, high=8192, log=True, search=(32, 512), core=True,
          help="units per hidden layer"),
    Param("activation", "leaky_relu", choices=tuple(ACTIVATIONS), help="hidden activation"),
    Param("pack", 2, low=1, high=64, search=(1, 4),
          help="samples the discriminator judges together (PacGAN; 1 = a plain GAN)"),
    # Replaces the adam/adamw default of 0.9 (a later declaration wins); other optimizers ignore it.
    Param("beta1", 0.5, low=0.0, high=0.9999, search=(0.0, 0.9),
          help="Adam beta1 of both optimizers (DCGAN's 0.5; ignored by non-Adam optimizers)"),
)


class Squash(nn.Module):
    """``low + (high - low) * sigmoid(x)``."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(x)


class GanNet(nn.Module):
    """``generator`` (noise -> sample) and ``discriminator`` (``pack`` samples -> one logit).

    Args:
        input_shape: shape of one sample.
        params: ``latent``, ``depth``, ``width``, ``activation``, ``pack`` (and ``dropout``,
            ``batchnorm``).
        value_range: bounds of every sample value, or ``None``.
    """

    def __init__(self, input_shape: tuple[int, ...], params: Mapping[str, Any],
                 value_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent = params["latent"]
        n = math.prod(input_shape)
        layers: list[nn.Module] = [mlp(self.latent, n, params)]
        if value_range is not None:
            layers.append(Squash(*value_range))
        self.generator = nn.Sequential(*layers)
        self.pack = params.get("pack", 1)
        self.discriminator = nn.Sequential(nn.Flatten(), mlp(self.pack * n, 1, params))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Samples of shape ``(len(z), *input_shape)`` from noise ``z`` of shape ``(N, latent)``."""
        return self.generator(z).reshape(len(z), *self.input_shape)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per group of ``pack`` consecutive samples (a trailing remainder is dropped)."""
        groups = len(x) // self.pack
        return self.discriminator(x[: groups * self.pack].reshape(groups, -1))

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` standard-normal noise vectors on the network's device, drawn there from the
        global random state, or on the CPU from ``generator`` when one is given."""
        device = next(self.parameters()).device
        if generator is None:
            return torch.randn(n, self.latent, device=device)
        return torch.randn(n, self.latent, generator=generator).to(device)


def discriminator_loss(net: GanNet, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``BCE(D(real), 1) + BCE(D(fake), 0)``, with no gradient into the generator."""
    d_real, d_fake = net.discriminate(real), net.discriminate(fake.detach())
    return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def generator_loss(net: GanNet, fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss ``BCE(D(fake), 1)``."""
    d_fake = net.discriminate(fake)
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


def adversarial_losses(net: GanNet, real: torch.Tensor, fake: torch.Tensor):
    """``(discriminator loss, generator loss)`` of one batch."""
    return discriminator_loss(net, real, fake), generator_loss(net, fake)


@functools.cache
def gan_module() -> type:
    """The LightningModule of the ``gan`` family: adversarial training of a :class:`GanNet` with two
    optimizers (manual optimization).

    Defined on first use (``Family.module``), so that listing and validating do not import
    Lightning."""
    from suite.module import SuiteModule

    class GanModule(SuiteModule):
        """Adversarial training of a :class:`GanNet` with two optimizers (manual optimization)."""

        def __init__(self, net: GanNet, **kwargs: Any) -> None:
            super().__init__(net, **kwargs)
            self.automatic_optimization = False
            clipped = [r.name for r in self.regularizers if r.trainer_kwargs is not None]
            if clipped:
                raise SuiteError(f"regularizer {clipped[0]!r} is not supported by family 'gan' (manual "
                                 "optimization of two networks); use the others")
            self._d_sum = torch.zeros(())
            self._g_sum = torch.zeros(())
            self._val_real: list[torch.Tensor] = []

        # ----------------------------------------------------------------------------------- train
        def on_train_epoch_start(self) -> None:
            super().on_train_epoch_start()
            self._d_sum = torch.zeros((), device=self.device)
            self._g_sum = torch.zeros((), device=self.device)

        def training_step(self, batch, batch_idx: int) -> None:
            opt_g, opt_d = self.optimizers()
            real, _ = batch
            fake = self.net(self.net.noise(len(real)))
            d_loss = discriminator_loss(self.net, real, fake)
            opt_d.zero_grad()
            self.manual_backward(d_loss + self.penalty())
            opt_d.step()
            g_loss = generator_loss(self.net, fake)  # judged by the updated discriminator
            opt_g.zero_grad()
            self.manual_backward(g_loss + self.penalty())
            opt_g.step()
            self._d_sum.add_(d_loss.detach())  # in place: no nn.Module.__setattr__ per step
            self._g_sum.add_(g_loss.detach())
            self._train_loss_sum.add_((d_loss + g_loss).detach())
            self._train_batches += 1

        def on_train_epoch_end(self) -> None:
            n = max(self._train_batches, 1)  # into the epoch's row before the base records and logs it
            self.epoch_end_metrics.update({"train/d_loss": float(self._d_sum) / n,
                                           "train/g_loss": float(self._g_sum) / n})
            super().on_train_epoch_end()
            schedules = self.lr_schedulers()
            for schedule in schedules if isinstance(schedules, list) else [schedules]:
                if schedule is not None:
                    schedule.step()

        # ------------------------------------------------------------------------------ validation
        def on_validation_epoch_start(self) -> None:
            self._val_real = []

        def validation_step(self, batch, batch_idx: int) -> None:
            self._val_real.append(batch[0])

        def on_validation_epoch_end(self) -> None:
            values = self.score(torch.cat(self._val_real), "val")
            self._val_real = []
            self.publish(values)  # merged with the grad norms sampled earlier this epoch

        # ------------------------------------------------------------------------------ evaluation
        @torch.inference_mode()
        def score(self, real: torch.Tensor, name: str) -> dict[str, float]:
            """The task's score of ``len(real)`` samples generated from fixed noise, plus the losses."""
            was_training = self.training
            self.eval()
            z = self.net.noise(len(real), torch.Generator().manual_seed(EVAL_SEED))
            fake = self.net(z)
            d_loss, g_loss = adversarial_losses(self.net, real, fake)
            out = {f"{name}/{k}": float(v) for k, v in self.task.score(fake, real).items()}
            out.update({f"{name}/d_loss": float(d_loss), f"{name}/g_loss": float(g_loss),
                        f"{name}/loss": float(d_loss + g_loss)})
            self.train(was_training)
            return out

        def evaluate(self, split: Split, name: str, batch_size: int = 4096, *,
                     full: bool = True) -> dict[str, float]:
            return self.score(split.x, name)

        # ------------------------------------------------------------------------------- optimizer
        def configure_optimizers(self):
            spec = OPTIMIZERS.get(self.optimizer_name)
            weight_decay = sum(r.weight_decay(self.params) for r in self.regularizers if r.weight_decay)
            optimizers = [spec.build(self.net.generator.parameters(), self.params, weight_decay),
                          spec.build(self.net.discriminator.parameters(), self.params, weight_decay)]
            schedules = [build_schedule(o, self.params.get("schedule", "none"), self.epochs)
                         for o in optimizers]
            if schedules[0] is None:
                return optimizers
            return optimizers, schedules

    return GanModule


@register_family("gan", params=PARAMS, module=gan_module, kinds=("generation",),
                 tiny={"width": 16, "depth": 1, "latent": 4},
                 description="MLP generator and discriminator trained adversarially (manual optimization)")
def build_gan(task: Task, params: Mapping[str, Any]) -> nn.Module:
    return GanNet(task.input_shape, params, getattr(task, "value_range", None))
