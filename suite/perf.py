"""``suite perf``: the suite's overhead against a bare PyTorch loop, measured in one process.

For each (task, family) pair the same network, data, optimizer, seed and number of steps run
through three paths, interleaved (a, b, c, a, b, c, ...) over several repeats after one warm-up:

* (a) ``bare``: a hand-written loop: index-slice batches, forward, loss, backward, step, and a
  validation pass per epoch (what a careful script does);
* (b) ``suite``: ``suite.train.train`` without tracking (Lightning, metrics, diagnostics, final
  evaluation of train/val/test);
* (c) ``tracked``: the same with W&B offline and CodeCarbon.

Reported: median wall times, the ratios b/a and c/a, the fixed per-trial cost of (b) and (c)
(wall time minus the time spent in the epochs: set-up, final evaluation, tracking start/stop), and
samples/s. The final training loss of (a) and (b) must agree (same work), or the pair fails.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from suite.train import TrialConfig, build_module, resolve_config, train

PAIRS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("mnist1d", "mlp", {}),
    ("mnist1d", "cnn", {}),
    ("mnist1d", "rnn", {"cell": "gru"}),
    ("digits", "cnn", {}),
)
LOSS_RTOL = 1e-3


@dataclass
class PairResult:
    task: str
    family: str
    params: dict[str, Any]
    epochs: int
    steps: int
    samples: int
    bare_s: float
    suite_s: float
    tracked_s: float
    suite_fixed_s: float
    tracked_fixed_s: float
    bare_loss: float
    suite_loss: float
    repeats: int

    @property
    def ratio_suite(self) -> float:
        return self.suite_s / self.bare_s

    @property
    def ratio_tracked(self) -> float:
        return self.tracked_s / self.bare_s

    @property
    def same_loss(self) -> bool:
        return abs(self.bare_loss - self.suite_loss) <= LOSS_RTOL * max(abs(self.bare_loss), 1e-8)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(ratio_suite=self.ratio_suite, ratio_tracked=self.ratio_tracked, same_loss=self.same_loss,
                 samples_per_s_bare=self.samples / self.bare_s,
                 samples_per_s_suite=self.samples / self.suite_s)
        return d


def bare_loop(config: TrialConfig) -> tuple[float, float, int]:
    """(wall seconds, final-epoch mean training loss, steps) of a hand-written loop."""
    import lightning.pytorch as pl

    from suite.data import IndexBatches

    r = resolve_config(config)
    splits = r.task.load().to(r.device)
    sync = torch.cuda.synchronize if r.device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_module(r).to(r.device)  # same network and loss; used as a plain nn.Module
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    batches = IndexBatches(splits.train, r.params["batch_size"], shuffle=True, seed=config.seed)
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


def measure_pair(task: str, family: str, params: dict[str, Any], *, epochs: int | None, repeats: int,
                 device: str, out_dir: Path) -> PairResult:
    """Time the three paths for one pair, interleaved, after a warm-up of each."""
    from suite.tracking import Tracking

    config = TrialConfig(task=task, family=family, optimizer="adam", params=dict(params), epochs=epochs,
                         seed=0, device=device)
    r = resolve_config(config)
    tracking = Tracking(out_dir=out_dir, wandb=True, wandb_mode="offline", energy=True)
    runs: dict[str, list[float]] = {"bare": [], "suite": [], "tracked": []}
    fixed: dict[str, list[float]] = {"suite": [], "tracked": []}
    bare_loss = suite_loss = float("nan")
    steps = 0
    for i in range(repeats + 1):  # the first round warms up every path (imports, caches, trackers)
        wall, bare_loss, steps = bare_loop(config)
        s = train(config)
        t = train(config, tracking=tracking)
        if s["status"] != "complete" or t["status"] != "complete":
            raise RuntimeError(f"{task}/{family}: suite trial {s['status']}/{t['status']}: "
                               f"{s.get('error') or t.get('error')}")
        suite_loss = s["curves"]["train/loss"][-1]
        if i == 0:
            continue
        runs["bare"].append(wall)
        runs["suite"].append(s["wall_s"])
        runs["tracked"].append(t["wall_s"])
        fixed["suite"].append(s["wall_s"] - s["curves"]["time_s"][-1])
        fixed["tracked"].append(t["wall_s"] - t["curves"]["time_s"][-1])
    med = {k: statistics.median(v) for k, v in runs.items()}
    return PairResult(
        task=task, family=family, params=dict(params), epochs=r.epochs, steps=steps,
        samples=r.epochs * len(r.task.load().train), bare_s=med["bare"], suite_s=med["suite"],
        tracked_s=med["tracked"], suite_fixed_s=statistics.median(fixed["suite"]),
        tracked_fixed_s=statistics.median(fixed["tracked"]), bare_loss=bare_loss, suite_loss=suite_loss,
        repeats=repeats,
    )


def run_perf(*, device: str = "auto", repeats: int = 3, epochs: int | None = 5,
             pairs: tuple[tuple[str, str, dict[str, Any]], ...] = PAIRS) -> list[PairResult]:
    """Measure every pair; W&B and energy artefacts go to a temporary folder."""
    from suite.train import quiet_lightning, resolve_device

    device = resolve_device(device)
    quiet_lightning()
    with tempfile.TemporaryDirectory(prefix="suite-perf-") as tmp:
        return [measure_pair(task, family, params, epochs=epochs, repeats=repeats, device=device,
                             out_dir=Path(tmp)) for task, family, params in pairs]
