"""Synthetic trial records and Optuna storages for the report tests (following the data contract).

``write_benchmark(url, ...)`` writes one study per arm with tuning and confirm trials, each trial
carrying ``user_attrs = {"record": ..., "phase": ...}`` as the tuning code does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from suite.record import OPTUNA_STATE, PHASE, RECORD, SCHEMA, Status

TASKS = {  # name: (metric, direction, target, base quality)
    "digits": ("accuracy", "maximize", 0.95, 0.93),
    "mnist1d": ("accuracy", "maximize", 0.85, 0.80),
    "sunspots": ("rmse", "minimize", 0.40, 0.45),
}
#: the tasks' declared scales, as records carry them (``task_info.scale``; tests/test_task_base.py checks
#: them against the registry)
SCALES = {
    "digits": {"ideal": 1.0, "baseline": 0.1, "low": 0.0, "high": 1.0},
    "mnist1d": {"ideal": 1.0, "baseline": 0.1, "low": 0.0, "high": 1.0},
    "sunspots": {"ideal": 0.0, "baseline": 0.8805, "low": 0.0, "high": None},
}
FAMILIES = {"mlp": 0.0, "cnn": 0.03, "rnn": -0.02}
ARMS = [("adam", ["none"]), ("sgd", ["none"]), ("momentum", ["none"]), ("adam", ["dropout"])]
OPT_BONUS = {"adam": 0.01, "sgd": -0.02, "momentum": 0.0}
TUNE_TRIALS = 4  # 3 complete + 1 pruned
CONFIRM_SEEDS = 3
EPOCHS = 5
PRUNED_AFTER = 2  # epochs a pruned tuning trial ran
SPACE = "core"

CPU_HW = {"device_type": "cpu", "gpu_model": None, "gpu_count": 0, "gpu_driver": None, "cuda": None,
          "cpu_model": "AMD EPYC 7B13", "cpu_cores": 2, "ram_gb": 24.0, "hostname": "cpu-box"}
GPU_HW = {"device_type": "cuda", "gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 1,
          "gpu_driver": "580.1", "cuda": "13.0", "cpu_model": "Intel Xeon 8480", "cpu_cores": 16,
          "ram_gb": 128.0, "hostname": "gpu-box"}
PROFILE = {"name": "quick", "tasks": list(TASKS), "families": list(FAMILIES), "epochs": EPOCHS}
PROTOCOL = {"tune_trials": TUNE_TRIALS, "confirm_seeds": CONFIRM_SEEDS, "epochs": EPOCHS, "space": SPACE,
            "sampler": "tpe", "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1}}


def stored(record: dict[str, Any], phase: str) -> dict[str, Any]:
    """A trial's user attrs as the tuner stores them (:mod:`suite.record`'s keys)."""
    return {RECORD: record, PHASE: phase}


def make_record(*, task: str, family: str, optimizer: str, regs: list[str], seed: int, phase: str,
                quality: float, lr: float, activation: str | None, benchmark: str = "quick",
                device: str = "cpu", hardware: dict | None = None, flag: str = "ok",
                energy: bool = True, speed: float = 1.0, epochs_run: int = EPOCHS,
                space: str | None = SPACE) -> dict[str, Any]:
    """One trial record: ``quality`` is the final validation/test primary metric."""
    metric, direction, target, _ = TASKS.get(task, ("accuracy", "maximize", 0.9, 0.8))
    sign = 1 if direction == "maximize" else -1
    val = [quality - sign * 0.2 * (EPOCHS - e) / EPOCHS for e in range(1, EPOCHS + 1)]
    time_s = [round(2.0 * e / speed, 3) for e in range(1, EPOCHS + 1)]
    hit = next((i for i, v in enumerate(val) if (v >= target if sign > 0 else v <= target)), None)
    fit_s = time_s[-1] + 0.1
    n_train = 1000
    ratio = {"ok": 0.5, "vanishing": 1e-5, "exploding": 5e4}[flag]
    params = {"batch_size": 64, "schedule": "none", "lr": lr, "depth": 2, "width": 128}
    if activation is not None:
        params["activation"] = activation
    if "dropout" in regs:
        params["dropout"] = 0.2
    gap = 0.02 if "dropout" in regs else 0.06
    rec: dict[str, Any] = {
        "schema": SCHEMA, "task": task, "family": family, "optimizer": optimizer, "regularizers": regs,
        "params": params, "seed": seed, "phase": phase, "benchmark": benchmark,
        "arm": f"{benchmark}/{task}/{family}/{optimizer}/{'+'.join(regs)}", "epochs": EPOCHS,
        "epochs_run": epochs_run, "steps": epochs_run * 16, "batch_size": 64, "status": Status.COMPLETE.value,
        "error": None,
        "metrics": {f"train/{metric}": quality + sign * gap, f"val/{metric}": val[-1],
                    f"test/{metric}": quality - sign * 0.005},
        "curves": {"epoch": list(range(1, EPOCHS + 1)), "train/loss": [1.0 / e for e in range(1, EPOCHS + 1)],
                   f"val/{metric}": val, "lr": [lr] * EPOCHS, "time_s": time_s, "gap": [gap] * EPOCHS,
                   "grad/ratio": [ratio] * EPOCHS, "dead_relu": [0.1] * EPOCHS},
        "primary": {"metric": metric, "direction": direction, "target": target, "value": quality - sign * 0.005,
                    "epochs_to_target": None if hit is None else hit + 1,
                    "time_to_target_s": None if hit is None else time_s[hit]},
        "diagnostics": {"flag": flag, "rule": "median ratio rule", "grad_ratio_median": ratio,
                        "dead_relu_final": 0.1, "gap_final": gap, "gap_max": gap, "weight_l1": 10.0,
                        "weight_l2": 2.0},
        "n_params": {"mlp": 20000, "cnn": 35000, "rnn": 15000}.get(family, 1000),
        "wall_s": fit_s + 1.5, "fit_s": fit_s, "samples_per_s": EPOCHS * n_train / fit_s,
        "device": device, "started_at": f"2026-01-0{1 + seed % 3}T10:{seed % 60:02d}:00+00:00",
        "versions": {"torch": "2.13.0", "lightning": "2.6.6", "python": "3.11.7"},
        "hardware": hardware or CPU_HW, "git_commit": "abc1234", "peak_memory_mb": 512.0,
    }
    if space is not None:
        rec["space"] = space
    if task in SCALES:
        rec["task_info"] = {"scale": SCALES[task]}
    if energy:
        kwh = 1e-4 * fit_s * (3 if device == "cuda" else 1)
        rec["energy"] = {"kwh": kwh, "emissions_kg": kwh * 0.4, "method": "tdp estimate x load",
                         "duration_s": fit_s, "nvml_kwh": None, "cpu_power_w": 30.0, "gpu_power_w": None,
                         "country": "DEU", "error": None}
    return rec


def quality_of(task: str, family: str, optimizer: str, regs: list[str]) -> float:
    _, direction, _, base = TASKS.get(task, ("accuracy", "maximize", 0.9, 0.8))
    sign = 1 if direction == "maximize" else -1
    q = FAMILIES.get(family, 0) + OPT_BONUS.get(optimizer, 0) + (0.005 if "dropout" in regs else 0)
    return base + sign * q


def write_benchmark(url_or_storage: Any, *, tasks=tuple(TASKS), families=tuple(FAMILIES), arms=tuple(ARMS),
                    device: str = "cpu", hardware: dict | None = None, benchmark: str = "quick",
                    energy: bool = True, speed: float = 1.0, seed0: int = 0) -> int:
    """Write one study per arm into the storage; return the number of trials written."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(url_or_storage) if isinstance(url_or_storage, str) \
        else url_or_storage
    rng = np.random.default_rng(seed0)
    n = 0
    for task in tasks:
        metric, direction, _, _ = TASKS.get(task, ("accuracy", "maximize", 0.9, 0.8))
        for family in families:
            for optimizer, regs in arms:
                name = f"{benchmark}/{task}/{family}/{optimizer}/{'+'.join(regs)}"
                study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                            load_if_exists=True)
                for key, value in {"benchmark": benchmark, "task": task, "family": family,
                                   "optimizer": optimizer, "regularizers": regs, "direction": direction,
                                   "metric": metric, "profile": PROFILE, "protocol": PROTOCOL}.items():
                    study.set_user_attr(key, value)
                q = quality_of(task, family, optimizer, regs)
                arm_speed = speed * {"mlp": 1.0, "cnn": 0.5, "rnn": 0.7}.get(family, 1.0) \
                    * {"sgd": 1.2, "momentum": 1.1}.get(optimizer, 1.0)
                act_choices = ["relu", "tanh", "sigmoid"] if family != "rnn" else [None]
                dists = {"lr": FloatDistribution(1e-4, 1.0, log=True)}
                if family != "rnn":
                    dists["activation"] = CategoricalDistribution(["relu", "tanh", "sigmoid"])
                for i in range(TUNE_TRIALS):
                    lr = float(10 ** rng.uniform(-4, -0.5))
                    act = act_choices[i % len(act_choices)]
                    flag = "vanishing" if act == "sigmoid" and i == 2 else "ok"
                    if optimizer == "sgd" and lr > 0.2:
                        flag = "exploding"
                    quality = q - (0.02 * abs(math.log10(lr) + 2.5)) * (1 if direction == "maximize" else -1)
                    rec = make_record(task=task, family=family, optimizer=optimizer, regs=regs, seed=i,
                                      phase="tune", quality=quality, lr=lr, activation=act,
                                      benchmark=benchmark, device=device, hardware=hardware, flag=flag,
                                      energy=energy, speed=arm_speed,
                                      epochs_run=PRUNED_AFTER if i == TUNE_TRIALS - 1 else EPOCHS)
                    params = {"lr": lr} | ({"activation": act} if act else {})
                    pruned = i == TUNE_TRIALS - 1
                    value = rec["metrics"][f"val/{metric}"]
                    study.add_trial(create_trial(
                        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                        value=None if pruned else value, params=params,
                        distributions={k: dists[k] for k in params},
                        user_attrs=stored(rec, "tune"),
                        intermediate_values={e: v for e, v in enumerate(rec["curves"][f"val/{metric}"])}))
                    n += 1
                for seed in range(CONFIRM_SEEDS):
                    act = "relu" if family != "rnn" else None
                    rec = make_record(task=task, family=family, optimizer=optimizer, regs=regs, seed=seed,
                                      phase="confirm", quality=q + 0.004 * (seed - 1), lr=3e-3, activation=act,
                                      benchmark=benchmark, device=device, hardware=hardware, energy=energy,
                                      speed=arm_speed)
                    params = {"lr": 3e-3} | ({"activation": act} if act else {})
                    study.add_trial(create_trial(
                        state=TrialState.COMPLETE, value=rec["metrics"][f"val/{metric}"], params=params,
                        distributions={k: dists[k] for k in params},
                        user_attrs=stored(rec, "confirm")))
                    n += 1
    return n


def expected_figures(n_tasks: int, *, machines: int = 1, families: int = 3, optimizers: int = 3,
                     cd_families: bool | None = None, cd_optimizers: bool = True) -> dict[str, int]:
    """Figures per section for a benchmark written by :func:`write_benchmark` (every arm confirmed).

    A critical-difference diagram is drawn only where the Friedman test rejects: for families only
    with 3 or more tasks (blocks) by default (over 2 blocks the exact permutation p is >= 1/6)."""
    cd_families = n_tasks >= 3 if cd_families is None else cd_families
    return {
        "findings": 0,
        "provenance": 0,
        "leaderboard": 0,
        "tuning": n_tasks,
        "architectures": n_tasks,
        "optimizers": n_tasks + (1 if families >= 2 or optimizers >= 2 else 0),
        "regularizers": n_tasks,
        "activations": 1,
        "footprint": n_tasks,
        "hardware": 1 if machines >= 2 else 0,
        "statistics": int(cd_families) + int(cd_optimizers),
        "optuna": 1,
    }


def write_arm(storage: Any, *, task: str, family: str, optimizer: str, regs: list[str],
              tune: list[float | None], confirm: list[tuple[float | None, float]],
              benchmark: str = "quick", space: str | None = SPACE, protocol: dict | None = None,
              statuses: list[str] | None = None) -> None:
    """One study (arm) with hand-set values: ``tune`` the tuning trials' validation values,
    ``confirm`` the confirm seeds' ``(validation, test)`` values; a validation of None leaves the
    record without one (all trials COMPLETE). ``protocol``: the study's protocol attr (default
    :data:`PROTOCOL`); ``statuses``: per confirm run, ``complete`` or ``diverged`` (a FAIL trial)."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    metric, direction, _, _ = TASKS[task]
    study = optuna.create_study(storage=storage, study_name=f"{benchmark}/{task}/{family}/{optimizer}/"
                                f"{'+'.join(regs)}", direction=direction, load_if_exists=True)
    for key, value in {"benchmark": benchmark, "task": task, "family": family, "optimizer": optimizer,
                       "regularizers": regs, "direction": direction, "metric": metric,
                       "protocol": protocol or PROTOCOL}.items():
        study.set_user_attr(key, value)
    trials = [("tune", v, v if v is not None else 0.5) for v in tune] + [("confirm", v, t) for v, t in confirm]
    statuses = ["complete"] * len(tune) + list(statuses or ["complete"] * len(confirm))
    for seed, (phase, val, test) in enumerate(trials):
        rec = make_record(task=task, family=family, optimizer=optimizer, regs=regs, seed=seed, phase=phase,
                          quality=0.5 if test is None else test, lr=1e-3, activation="relu",
                          benchmark=benchmark, space=space)
        rec["epochs"] = (protocol or PROTOCOL)["epochs"]
        rec["metrics"][f"test/{metric}"] = rec["primary"]["value"] = test
        if val is None:
            del rec["metrics"][f"val/{metric}"]
        else:
            rec["metrics"][f"val/{metric}"] = val
        failed = statuses[seed] != Status.COMPLETE
        if failed:
            rec["status"], rec["error"] = statuses[seed], "loss is nan"
            rec["metrics"] = {}
            rec["primary"]["value"] = None
        study.add_trial(create_trial(value=None if failed else (val if val is not None else test),
                                     state=TrialState[OPTUNA_STATE[Status(statuses[seed])]],
                                     params={"lr": 1e-3},
                                     distributions={"lr": FloatDistribution(1e-5, 1, log=True)},
                                     user_attrs=stored(rec, phase)))
