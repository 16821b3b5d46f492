"""What a profile will run and what its results can be tested for, before anything runs
(``suite benchmark --dry-run``): arms, trials and epochs, and the largest complete sub-tables on
which the report's Friedman tests of families and optimizers can run.

Pure functions of a :class:`~suite.profile.Profile`: no training code is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from suite.profile import Arm, Profile

#: treatments (columns) and blocks (rows) of each ranking the report makes, as in ``reports.render``
RANKINGS = {"families": (("task",), "family"), "optimizers": (("task", "family"), "optimizer")}


@dataclass(frozen=True)
class RankPlan:
    """The sub-table a ranking of ``kind`` will be tested on."""

    kind: str
    treatments: list[str]
    blocks: list[str]
    left_out: list[str]
    dropped: list[str]

    @property
    def runs(self) -> bool:
        return bool(self.treatments)

    def text(self) -> str:
        if not self.runs:
            return (f"{self.kind}: no Friedman test can run (needs >= 3 {self.kind} that all ran on the "
                    f"same >= 2 blocks)")
        out = (f"{self.kind}: Friedman over {len(self.treatments)} {self.kind} x {len(self.blocks)} blocks "
               f"({', '.join(self.treatments)} on {', '.join(self.blocks)})")
        if self.left_out:
            out += f"; left out: {', '.join(self.left_out)}"
        if self.dropped:
            out += f"; blocks dropped: {', '.join(self.dropped)}"
        return out


def presence(arms: tuple[Arm, ...] | list[Arm], problem: tuple[str, ...], solver: str) -> pd.DataFrame:
    """Problems x solvers table: 1.0 where some arm runs that solver on that problem, else NaN."""
    rows = {(" / ".join(str(getattr(a, p)) for p in problem), getattr(a, solver)) for a in arms}
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(sorted(rows), columns=["problem", "solver"]).assign(v=1.0)
    table = frame.pivot_table(index="problem", columns="solver", values="v", aggfunc="first")
    order = list(dict.fromkeys(getattr(a, solver) for a in arms))
    return table[[c for c in order if c in table.columns]]


def rank_plans(profile: Profile) -> list[RankPlan]:
    """For each ranking of the report, the largest complete sub-table the profile's arms give."""
    from reports.stats import complete_subtable

    plans = []
    for kind, (problem, solver) in RANKINGS.items():
        table = presence(profile.arms, problem, solver)
        if table.empty:
            plans.append(RankPlan(kind, [], [], [], []))
            continue
        treatments, blocks = complete_subtable(table)
        if not treatments:
            plans.append(RankPlan(kind, [], [], list(map(str, table.columns)), list(map(str, table.index))))
            continue
        plans.append(RankPlan(kind, list(map(str, treatments)), list(map(str, blocks)),
                              [str(c) for c in table.columns if c not in treatments],
                              [str(b) for b in table.index if b not in blocks]))
    return plans


def trials_per_study(profile: Profile) -> int:
    """Tuning trials plus confirm runs (seeds x candidates) of one study of an arm."""
    return profile.tune_trials + profile.confirm_seeds * min(profile.confirm_candidates, profile.tune_trials)


def trials_per_arm(profile: Profile) -> int:
    """Every trial of one arm: :func:`trials_per_study` times ``studies``."""
    return trials_per_study(profile) * profile.studies


def timings(sources: list[str], hostname: str) -> pd.DataFrame:
    """Seconds per epoch and per-trial overhead of each (task, family) from earlier records of this
    machine (``hardware.hostname``) in ``sources`` (run folders or storages); empty when none.

    Columns ``task``, ``family``, ``s_per_epoch`` (median of ``fit_s / epochs_run``), ``overhead_s``
    (median of ``wall_s - fit_s``), ``n``.
    """
    cols = ["task", "family", "s_per_epoch", "overhead_s", "n"]
    if not sources:
        return pd.DataFrame(columns=cols)
    from reports.load import load

    try:
        t = load(sources).trials
    except Exception:  # an unreadable folder gives no timing, never a failed dry run
        return pd.DataFrame(columns=cols)
    t = t[(t["hostname"] == hostname) & (t["epochs_run"] > 0) & (t["fit_s"] > 0)]
    if t.empty:
        return pd.DataFrame(columns=cols)
    t = t.assign(s_per_epoch=t["fit_s"] / t["epochs_run"],
                 overhead_s=(t["wall_s"] - t["fit_s"]).clip(lower=0))
    g = t.groupby(["task", "family"]).agg(s_per_epoch=("s_per_epoch", "median"),
                                          overhead_s=("overhead_s", "median"), n=("uid", "count"))
    return g.reset_index()[cols]


CALIBRATION_EPOCHS = 2


def calibrate(profile: Profile, pairs: list[str], *, jobs: int, device: str = "auto") -> pd.DataFrame:
    """Time :data:`CALIBRATION_EPOCHS` epochs of each ``task/family`` pair (its first arm's params,
    defaults otherwise, no tracking) in this process, with the intra-op threads a job would use (1
    when ``jobs`` > 1); rows as :func:`timings`. Nothing is stored."""
    import torch

    from suite.train import TrialConfig, train

    threads = torch.get_num_threads()
    if jobs > 1:
        torch.set_num_threads(1)
    rows = []
    try:
        for pair in pairs:
            task, family = pair.split("/", 1)
            arm = next(a for a in profile.arms if a.task == task and a.family == family)
            rec = train(TrialConfig(task=task, family=family, optimizer=arm.optimizer,
                                    regularizers=arm.regularizers, params=dict(arm.params),
                                    epochs=CALIBRATION_EPOCHS, device=device))
            runs = rec.get("epochs_run") or CALIBRATION_EPOCHS
            if rec.get("fit_s"):
                rows.append({"task": task, "family": family, "s_per_epoch": rec["fit_s"] / runs,
                             "overhead_s": max(0.0, rec["wall_s"] - rec["fit_s"]), "n": 1})
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows, columns=["task", "family", "s_per_epoch", "overhead_s", "n"])


def estimate(profile: Profile, times: pd.DataFrame, jobs: int) -> dict[str, Any]:
    """Wall-time estimate of ``profile`` with ``jobs`` jobs from :func:`timings` (every trial at its
    full epochs, so pruning only shortens it; jobs assumed to scale linearly, which they do not
    quite: see README's measured ratio). Pairs without a timing are listed, not guessed."""
    per_arm = trials_per_arm(profile)
    known = {(r.task, r.family): r for r in times.itertuples()}
    seconds, missing = 0.0, []
    for a in profile.arms:
        r = known.get((a.task, a.family))
        if r is None:
            if f"{a.task}/{a.family}" not in missing:
                missing.append(f"{a.task}/{a.family}")
            continue
        seconds += per_arm * (a.epochs * float(r.s_per_epoch) + float(r.overhead_s))
    return {"jobs": jobs, "hours": seconds / jobs / 3600 if not missing else None,
            "hours_known": seconds / jobs / 3600, "missing": missing}


def paired_tests(profile: Profile, *, alpha: float = 0.05) -> dict[str, dict[str, Any]]:
    """What the report's paired tests can claim, from the profile alone.

    Per question (``families``: pairs of families per task, ``optimizers``: per task and family,
    ``regularizers``: per task, family and optimizer), how many tests the report will make (Holm runs
    over all of them), the units each compares (studies with ``studies >= 2``, else confirm seeds),
    the smallest p the exact sign-flip test can give (``2 / 2**units``), and whether a difference can
    hold after Holm at all (that p times the number of tests below ``alpha``).
    """
    n = profile.studies if profile.studies >= 2 else profile.confirm_seeds
    kind = "studies" if profile.studies >= 2 else "confirm seeds of one study"
    groups: dict[str, dict[tuple, set]] = {"families": {}, "optimizers": {}, "regularizers": {}}
    for a in profile.arms:
        groups["families"].setdefault((a.task,), set()).add(a.family)
        groups["optimizers"].setdefault((a.task, a.family), set()).add(a.optimizer)
        regs = "+".join(a.regularizers)
        groups["regularizers"].setdefault((a.task, a.family, a.optimizer), set()).add(regs)
    out = {}
    floor = 2.0 / 2**n if n > 0 else 1.0
    for question, g in groups.items():
        m = sum(len(v) * (len(v) - 1) // 2 for v in g.values())
        can = m > 0 and floor * m < alpha
        text = (f"{question}: no pair to compare" if m == 0 else
                f"{question}: {m} test{'s' if m != 1 else ''} over {n} {kind}; exact p >= {floor:.3g}, after "
                f"Holm over {m} at best {min(1.0, floor * m):.3g}: "
                + ("a difference can hold" if can else f"no difference can hold at alpha {alpha:g}"))
        out[question] = {"tests": m, "units": n, "unit": kind, "p_min": floor, "can_claim": can, "text": text}
    return out


def plan(profile: Profile) -> dict[str, Any]:
    """JSON-able plan: arms, studies, trials, epochs (full-trial upper bound: pruning only lowers it),
    tasks, the rank tests that can run and what the paired tests can claim."""
    per_arm = trials_per_arm(profile)
    tasks: dict[str, dict[str, Any]] = {}
    for a in profile.arms:
        t = tasks.setdefault(a.task, {"arms": 0, "families": [], "optimizers": [], "epochs": a.epochs})
        t["arms"] += 1
        for key, value in (("families", a.family), ("optimizers", a.optimizer)):
            if value not in t[key]:
                t[key].append(value)
    return {
        "profile": profile.name, "arms": len(profile.arms), "studies": profile.studies,
        "trials_per_study": trials_per_study(profile), "trials_per_arm": per_arm,
        "trials": per_arm * len(profile.arms),
        "epochs": sum(per_arm * a.epochs for a in profile.arms),
        "tasks": tasks,
        "rank_tests": {p.kind: {"runs": p.runs, "treatments": p.treatments, "blocks": p.blocks,
                                "left_out": p.left_out, "dropped": p.dropped, "text": p.text()}
                       for p in rank_plans(profile)},
        "paired_tests": paired_tests(profile),
    }


def plan_estimate(prof: Any, folder: Path, storage: str | None, jobs: int, *, calibrate_missing: bool = False,
                  device: str = "auto", say: Callable[[str], None] = print) -> dict[str, Any]:
    """The wall-time estimate of ``prof`` from earlier records of this machine: the run folder (or
    ``storage``) and every run folder under ``runs/``; with ``calibrate_missing``, the pairs without one are
    timed here (:func:`calibrate`), after ``say`` tells which."""
    import socket

    import pandas as pd

    from suite.storage import run_folder_storage

    sources = [storage] if storage else []
    sources += [str(d) for d in {folder, *Path("runs").glob("*/")} if run_folder_storage(d)]
    times = timings(sorted(set(sources)), socket.gethostname())
    est = estimate(prof, times, jobs)
    if calibrate_missing and est["missing"]:
        say(f"calibrating: {CALIBRATION_EPOCHS} epochs of {', '.join(est['missing'])}")
        measured = calibrate(prof, est["missing"], jobs=jobs, device=device)
        est = estimate(prof, pd.concat([times, measured], ignore_index=True), jobs)
        est["calibrated"] = len(measured)
    return est
