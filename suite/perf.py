"""``suite perf``: the suite's overhead against a bare PyTorch loop, measured in one process.

For each (task, family) pair the same network, data, optimizer, seed and number of steps run
through four paths, interleaved (a, l, b, c, a, l, b, c, ...) over several repeats after a one-epoch
warm-up of each:

* (a) ``bare``: a hand-written loop: index-slice batches, forward, loss, backward, step, and a
  validation pass per epoch (what a careful script does);
* (l) ``lightning``: the same network, loss and optimizer in a minimal ``LightningModule`` (a
  ``training_step`` returning the loss, a ``validation_step``) under a ``Trainer`` with the suite's
  flags: Lightning's own floor, which the suite cannot go below while it trains with the Trainer;
* (b) ``suite``: ``suite.train.train`` without tracking (Lightning, metrics, diagnostics, final
  evaluation of train/val/test);
* (c) ``tracked``: the same with W&B offline and CodeCarbon.

Reported: median wall times, the ratios b/a, c/a and l/a (and b/l, what the suite adds over
Lightning), the fixed per-trial cost of (b) and (c) (wall time minus the time spent in the epochs:
set-up, final evaluation, tracking start/stop), and samples/s. The final training loss of (a), (l)
and (b) must agree (same work), or the pair fails.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from suite.train import TrialConfig, build_module, resolve_config, train

# (task, family, params, epochs): ``None`` = the task's default budget (a standard trial); the
# slower pairs run fewer epochs so that ``make perf`` takes a few minutes on a 2-core CPU.
PAIRS: tuple[tuple[str, str, dict[str, Any], int | None], ...] = (
    ("mnist1d", "mlp", {"depth": 2, "width": 256}, None),  # the network README's table measured
    ("mnist1d", "cnn", {}, 15),
    ("mnist1d", "rnn", {"cell": "gru"}, 5),
    ("digits", "cnn", {}, None),
)
LOSS_RTOL = 1e-3


@dataclass
class PairResult:
    """Median timings of one pair over ``repeats`` interleaved rounds."""

    task: str
    family: str
    params: dict[str, Any]
    epochs: int
    steps: int
    samples: int
    bare_s: float
    lightning_s: float
    suite_s: float
    tracked_s: float
    suite_fixed_s: float
    tracked_fixed_s: float
    bare_loss: float
    lightning_loss: float
    suite_loss: float
    repeats: int
    torch_threads: int

    @property
    def name(self) -> str:
        """``task/family`` (``task/rnn/cell`` for a recurrent cell), as ``--pair`` takes it."""
        return f"{self.task}/{self.family}" + (f"/{self.params['cell']}" if "cell" in self.params else "")

    @property
    def ratio_suite(self) -> float:
        return self.suite_s / self.bare_s

    @property
    def ratio_tracked(self) -> float:
        return self.tracked_s / self.bare_s

    @property
    def ratio_lightning(self) -> float:
        return self.lightning_s / self.bare_s

    @property
    def ratio_suite_over_lightning(self) -> float:
        return self.suite_s / self.lightning_s

    @property
    def same_loss(self) -> bool:
        return all(same_loss(self.bare_loss, other) for other in (self.lightning_loss, self.suite_loss))

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(ratio_suite=self.ratio_suite, ratio_tracked=self.ratio_tracked,
                 ratio_lightning=self.ratio_lightning,
                 ratio_suite_over_lightning=self.ratio_suite_over_lightning,
                 same_loss=self.same_loss, samples_per_s_bare=self.samples / self.bare_s,
                 samples_per_s_suite=self.samples / self.suite_s)
        return d


def same_loss(reference: float, other: float) -> bool:
    """Whether two final training losses agree within :data:`LOSS_RTOL` (the same work was done)."""
    return abs(reference - other) <= LOSS_RTOL * max(abs(reference), 1e-8)


def _start(config: TrialConfig):
    """What both reference loops share: the resolved config, the splits on the device, a device
    sync, and (from the timer's start) the seeded module and training batches of a trial."""
    import lightning.pytorch as pl

    from suite.data import IndexBatches

    r = resolve_config(config)
    splits = r.task.load().to(r.device)
    sync = torch.cuda.synchronize if r.device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_module(r).to(r.device)  # the same network, loss and optimizer as the trial
    batches = IndexBatches(splits.train, r.params["batch_size"], shuffle=True, seed=config.seed)
    return r, splits, sync, start, module, batches


def bare_loop(config: TrialConfig) -> tuple[float, float, int]:
    """(wall seconds, final-epoch mean training loss, steps) of a hand-written loop."""
    r, splits, sync, start, module, batches = _start(config)
    optimizer = module.configure_optimizers()  # used as a plain nn.Module from here
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    steps, last = 0, float("nan")
    for _ in range(r.epochs):
        module.train()
        total = torch.zeros((), device=r.device)
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = module.loss_fn(module.net(x), y)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
        last = float(total) / len(batches)
        module.eval()
        with torch.inference_mode():
            val_out = module.net(splits.val.x)
            _ = float(module.loss_fn(val_out, splits.val.y))
    sync()
    return time.perf_counter() - start, last, steps


def lightning_loop(config: TrialConfig) -> tuple[float, float]:
    """(wall seconds, final-epoch mean training loss) of the minimal Lightning version of
    :func:`bare_loop`: Lightning's per-step floor under the suite's ``Trainer`` flags."""
    import lightning.pytorch as pl

    from suite.data import IndexBatches
    from suite.train import quiet_lightning, trainer_flags

    class Minimal(pl.LightningModule):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.losses: list[torch.Tensor] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = self.inner.loss_fn(self.inner.net(x), y)
            self.losses.append(loss.detach())
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            _ = float(self.inner.loss_fn(self.inner.net(x), y))

        def configure_optimizers(self):
            return self.inner.configure_optimizers()

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            return batch  # already on the device, as in the suite

    quiet_lightning()
    r, splits, sync, start, inner, batches = _start(config)
    module = Minimal(inner)
    trainer = pl.Trainer(**trainer_flags(r.device), devices=1, max_epochs=r.epochs, logger=False)
    trainer.fit(module, train_dataloaders=batches, val_dataloaders=IndexBatches(splits.val, 4096))
    sync()
    wall = time.perf_counter() - start
    last = float(torch.stack(module.losses[-len(batches):]).mean())
    return wall, last


def measure_pair(task: str, family: str, params: dict[str, Any], *, epochs: int | None, repeats: int,
                 device: str, out_dir: Path) -> PairResult:
    """Time the four paths for one pair, interleaved, after a one-epoch warm-up of each."""
    from suite.tracking import Tracking

    # a constant learning rate: the bare loop and Lightning's floor have no schedule, and all four
    # paths must do the same work (the schedule's own cost is one step per epoch)
    config = TrialConfig(task=task, family=family, optimizer="adam", params={"schedule": "none", **params},
                         epochs=epochs, seed=0, device=device)
    r = resolve_config(config)
    tracking = Tracking(out_dir=out_dir, wandb=True, wandb_mode="offline", energy=True)
    runs: dict[str, list[float]] = {"bare": [], "lightning": [], "suite": [], "tracked": []}
    fixed: dict[str, list[float]] = {"suite": [], "tracked": []}
    bare_loss = lightning_loss = suite_loss = float("nan")
    steps = 0
    warm_up = replace(config, epochs=1)  # imports, caches, allocator, W&B and CodeCarbon set-up
    for i in range(repeats + 1):
        run = warm_up if i == 0 else config
        wall, bare_loss, steps = bare_loop(run)
        l_wall, lightning_loss = lightning_loop(run)
        s = train(run)
        t = train(run, tracking=tracking)
        if s["status"] != "complete" or t["status"] != "complete":
            raise RuntimeError(f"{task}/{family}: suite trial {s['status']}/{t['status']}: "
                               f"{s.get('error') or t.get('error')}")
        suite_loss = s["curves"]["train/loss"][-1]
        if i == 0:
            continue
        runs["bare"].append(wall)
        runs["lightning"].append(l_wall)
        runs["suite"].append(s["wall_s"])
        runs["tracked"].append(t["wall_s"])
        fixed["suite"].append(s["wall_s"] - s["curves"]["time_s"][-1])
        fixed["tracked"].append(t["wall_s"] - t["curves"]["time_s"][-1])
    med = {k: statistics.median(v) for k, v in runs.items()}
    return PairResult(
        task=task, family=family, params=dict(params), epochs=r.epochs, steps=steps,
        samples=r.epochs * len(r.task.load().train), bare_s=med["bare"], lightning_s=med["lightning"],
        suite_s=med["suite"], tracked_s=med["tracked"],
        suite_fixed_s=statistics.median(fixed["suite"]),
        tracked_fixed_s=statistics.median(fixed["tracked"]), bare_loss=bare_loss,
        lightning_loss=lightning_loss, suite_loss=suite_loss, repeats=repeats,
        torch_threads=torch.get_num_threads(),
    )


def parse_pair(text: str) -> tuple[str, str, dict[str, Any], int | None]:
    """``task/family[/cell]`` (``mnist1d/rnn/gru``) as a pair at the task's default budget."""
    from suite.errors import SuiteError

    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SuiteError(f"pair {text!r} is not valid; expected task/family or task/rnn/cell "
                         "(e.g. mnist1d/mlp, mnist1d/rnn/gru)")
    return parts[0], parts[1], ({"cell": parts[2]} if len(parts) == 3 else {}), None


def run_perf(*, device: str = "auto", repeats: int = 3, epochs: int | None = None,
             pairs: tuple[tuple[str, str, dict[str, Any], int | None], ...] = PAIRS) -> list[PairResult]:
    """Measure every pair (``epochs`` overrides each pair's budget); W&B and energy artefacts go to
    a temporary folder. Configs are validated before anything is timed."""
    from suite.config import resolve_device
    from suite.errors import SuiteError
    from suite.train import quiet_lightning

    if repeats < 1:
        raise SuiteError(f"repeats must be an integer >= 1, got {repeats!r}")
    device = resolve_device(device)
    runs = [(t, f, p, epochs if epochs is not None else e) for t, f, p, e in pairs]
    for task, family, params, n in runs:
        resolve_config(TrialConfig(task=task, family=family, params=dict(params), epochs=n, device=device))
    quiet_lightning()
    with tempfile.TemporaryDirectory(prefix="suite-perf-") as tmp:
        return [measure_pair(task, family, params, epochs=n, repeats=repeats, device=device,
                             out_dir=Path(tmp)) for task, family, params, n in runs]
