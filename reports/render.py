"""The report: sections built from :class:`reports.load.ReportData`, rendered to one HTML page.

Each section is a function ``(ctx) -> list of blocks`` in :data:`SECTIONS` (in page order). A
block is a small dict (``text``, ``note``, ``sub``, ``table``, ``figure``, ``code``) that the Jinja2
template renders with autoescaping on, so every string from the data is shown as text. Figures are
SVG ``data:`` URIs, and the page's Content-Security-Policy forbids every request but ``data:``
images: the file is self-contained and opens offline.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports import figures, stats
from reports.findings import comparisons, report_findings, units_text
from reports.load import ReportData, load

Block = dict[str, Any]
MAX_ROWS = 200


# --------------------------------------------------------------------------- blocks


def fmt(value: Any, digits: int = 4) -> str:
    """A cell as text: ``-`` for missing, 4 significant digits for floats, thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isinf(v):
            return "inf"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.{digits}g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def text(s: str) -> Block:
    return {"kind": "text", "text": s}


def note(s: str) -> Block:
    """A one-line 'no data' or caveat message."""
    return {"kind": "note", "text": s}


def sub(s: str) -> Block:
    return {"kind": "sub", "text": s}


def code(s: str) -> Block:
    return {"kind": "code", "text": s}


def figure(uri: str, alt: str, caption: str = "") -> Block:
    return {"kind": "figure", "uri": uri, "alt": alt, "caption": caption}


def table(df: pd.DataFrame, caption: str = "", *, max_rows: int = MAX_ROWS) -> Block:
    """A table block of ``df`` (column names as headers), cut to ``max_rows`` with a note."""
    rows = [[fmt(v) for v in row] for row in df.head(max_rows).itertuples(index=False)]
    more = len(df) - max_rows if len(df) > max_rows else 0
    return {"kind": "table", "columns": [str(c) for c in df.columns], "rows": rows, "caption": caption,
            "more": more}


def readable(value: Any, *, top: bool = True) -> str:
    """A protocol value as text: a dict as ``key=value, ...``, a list as ``a, b`` (nested ones in
    parentheses or brackets), anything else as :func:`fmt` writes it."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={readable(v, top=False)}" for k, v in value.items())
        return inner if top else f"({inner})"
    if isinstance(value, list | tuple):
        inner = ", ".join(readable(v, top=False) for v in value)
        return (inner or "-") if top else f"[{inner}]"
    return fmt(value)


def join_and(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def kv_table(items: Sequence[tuple[str, Any]], caption: str = "") -> Block:
    return table(pd.DataFrame(items, columns=["", "value"]), caption)


def ci_text(row: pd.Series) -> str:
    """An arm's test interval as the leaderboard shows it, or why there is none (the same rules as
    the findings: fewer than 6 units give no exact 95% interval; no spread is said)."""
    n = int(row["n"])
    if not (math.isfinite(float(row["ci_low"])) and math.isfinite(float(row["ci_high"]))):
        return f"none from {n} unit{'s' if n != 1 else ''} (needs 6)"
    interval = f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
    return f"{interval} (no spread)" if not row.get("spread", True) else interval


def arm_label(row: pd.Series) -> str:
    return f"{row['optimizer']} / {row['regularizers']}"


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    """The data and the derived frames the sections share (computed once, on first use)."""

    data: ReportData
    level: float = 0.95
    alpha: float = 0.05

    @cached_property
    def separated(self) -> tuple[pd.DataFrame, list[str]]:
        """The trials with budgets and sources told apart (:func:`reports.stats.separate_arms`)."""
        return stats.separate_arms(self.data.trials)

    @property
    def trials(self) -> pd.DataFrame:
        return self.separated[0]

    @cached_property
    def confirm(self) -> pd.DataFrame:
        return stats.confirm_trials(self.trials)

    @cached_property
    def arms(self) -> pd.DataFrame:
        """Per arm: confirm numbers (failures scored), the selection key, ``tune_best_val``."""
        return stats.arm_summary(self.confirm, level=self.level, tuning=self.trials)

    @cached_property
    def family_arms(self) -> pd.DataFrame:
        """The arms each task's families are compared on (:func:`reports.stats.equal_budget`)."""
        return stats.equal_budget(self.arms, by=["task"], across="family")

    @cached_property
    def family_best(self) -> pd.DataFrame:
        """Each (task, family)'s best arm among :attr:`family_arms` (:func:`reports.stats.best_of`)."""
        return stats.best_of(self.family_arms, ["task", "family"])

    def family_budget(self, task: str) -> list[Block]:
        """One sentence on which arms ``task``'s families are compared on, and notes on arms that
        could not be chosen (no validation value)."""
        arms = self.arms[self.arms["task"] == task]
        compared = self.family_arms[self.family_arms["task"] == task]
        if arms.empty:
            return []
        n_arms = arms.groupby("family").size()
        fams = [str(f) for f in n_arms.index]
        if len(fams) == 1:
            blocks = [text(f"Only {fams[0]} has confirm results for this task: its best of "
                           f"{plural(int(n_arms.iloc[0]), 'arm')} is shown.")]
        elif compared["common"].any():
            common = compared[["optimizer", "regularizers"]].drop_duplicates().sort_values(
                ["optimizer", "regularizers"])
            labels = ", ".join(arm_label(r) for _, r in common.iterrows())
            more = [f for f in fams if n_arms[f] > len(common)]
            if more:
                blocks = [text(f"Families compared on their common arms: {labels}; {join_and(more)} "
                               f"{'was' if len(more) == 1 else 'were'} also tuned with other arms ("
                               + ", ".join(f"{f}: {int(n_arms[f])} in all" for f in more)
                               + "), shown in the Optimizers and Regularizers sections.")]
            else:
                blocks = [text(f"Every family ran the same {plural(len(common), 'arm')} ({labels}): each "
                               "family's best is chosen among all of them.")]
        else:
            counts = ", ".join(f"{f} {plural(int(n), 'arm')}" for f, n in n_arms.items())
            how = "the budgets differ" if n_arms.nunique() > 1 else "they were tuned on different arms"
            blocks = [text(f"The families share no arm: each family's best arm is shown, and {how} "
                           f"({counts}).")]
        best = self.family_best[self.family_best["task"] == task]
        unranked = sorted(set(compared["family"].astype(str)) - set(best["family"].astype(str)))
        bad = compared[stats.selection_keys(compared)["selected_on"].isna()]
        if unranked:
            blocks.append(note(f"Not ranked: {join_and(unranked)} (no confirm validation value on the arms "
                               "compared, and the test metric never chooses)."))
        bad = bad[~bad["family"].astype(str).isin(unranked)]
        if len(bad):
            blocks.append(note("Not eligible to be chosen (no confirm validation value): "
                               + ", ".join(f"{r['family']} {arm_label(r)}" for _, r in bad.iterrows()) + "."))
        return blocks

    @cached_property
    def tests(self) -> pd.DataFrame:
        """Every paired test, Holm-corrected per question (:func:`reports.findings.comparisons`)."""
        return comparisons(self.arms, self.family_best, self.confirm, level=self.level, alpha=self.alpha)

    @cached_property
    def findings(self) -> list[dict[str, Any]]:
        """Every task's findings (:func:`reports.findings.report_findings`), also ``findings.json``."""
        return report_findings(self.arms, self.family_best, self.confirm, self.budgets, level=self.level,
                               alpha=self.alpha, tests=self.tests)

    @cached_property
    def budgets(self) -> dict[str, tuple[str | None, str | None]]:
        """Per task: its budget label and benchmark names (joined when several)."""
        out = {}
        for task, g in self.trials.groupby("task", sort=True):
            budget, bench = ({str(v) for v in g[col].dropna()} for col in ("budget", "benchmark"))
            out[str(task)] = (", ".join(sorted(budget)) or None, ", ".join(sorted(bench)) or None)
        return out

    @cached_property
    def tasks(self) -> list[str]:
        return sorted(self.trials["task"].dropna().astype(str).unique())

    def task_info(self, task: str) -> tuple[str, str, float]:
        """Metric, direction and target of ``task`` (from its trials)."""
        t = self.trials[self.trials["task"] == task]
        metric = t["metric"].dropna()
        direction = t["direction"].dropna()
        target = t["target"].dropna()
        return (str(metric.iloc[0]) if len(metric) else "metric",
                str(direction.iloc[0]) if len(direction) else "maximize",
                float(target.iloc[0]) if len(target) else math.nan)

    def task_heading(self, task: str) -> str:
        metric, direction, target = self.task_info(task)
        tgt = f", target {fmt(target)}" if math.isfinite(target) else ""
        return f"{task}: {metric} ({'higher' if direction == 'maximize' else 'lower'} is better{tgt})"

    def best_trials(self, best: pd.DataFrame) -> pd.DataFrame:
        """The confirm trials of the arms in ``best``."""
        return self.confirm.merge(best[stats.ARM], on=stats.ARM)


# --------------------------------------------------------------------------- sections

SectionFn = Callable[[Context], list[Block]]
SECTIONS: list[tuple[str, str, SectionFn]] = []


def section(slug: str, title: str) -> Callable[[SectionFn], SectionFn]:
    """Register a report section (page order = registration order); a duplicate slug is an error."""

    def deco(fn: SectionFn) -> SectionFn:
        if any(s == slug for s, _, _ in SECTIONS):
            raise ValueError(f"report section {slug!r} is already registered")
        SECTIONS.append((slug, title, fn))
        return fn

    return deco


@section("findings", "Findings")
def findings_section(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials: no finding can be stated yet.")]
    kinds = sorted({str(k) for k in ctx.arms["unit_kind"].dropna()})
    unit = ("a unit is one study (an independent tuning run of the arm, with its own sampler stream and "
            "tuning seed, confirmed on its own seeds; its value is the mean over them), so tuning luck is "
            "inside every interval" if kinds == ["study"] else
            "a unit is one confirm seed of the arm's single tuning study, so the intervals cover "
            "initialisation and batch order but not tuning luck (run studies: 3 or more for that)"
            if kinds == ["seed"] else "a unit is a study where an arm ran several, else a confirm seed")
    m = {q: int(ctx.tests.loc[ctx.tests["question"] == q, "m"].max()) if (ctx.tests["question"] == q).any()
         else 0 for q in ("family", "optimizer", "regularizers")}
    blocks: list[Block] = [text(
        f"What the data support, per task. Families (each family's best arm among the arms they share), "
        f"then the optimizers within each family (each optimizer's best arm among the regularizer sets "
        f"they share), then the regularizer sets within each family and optimizer, are compared on "
        f"their paired per-unit differences: {unit}. A "
        f"failed or diverged run counts, scored at the task's worst value. The exact two-sided sign-flip "
        f"test decides (no normality assumed; its smallest p is 2 / 2^n, so 6 units are needed for p < "
        f"0.05), its inversion gives the {ctx.level:.0%} interval, and Holm's correction runs over every "
        f"test of one question in this report ({m['family']} of families, {m['optimizer']} of "
        f"optimizers, {m['regularizers']} of regularizer sets; alpha {ctx.alpha:g}). A difference that "
        f"holds gives P(A > B) over the paired runs with a bootstrap interval over units; a pair that "
        f"does not gives the smallest difference this design had an 80% chance to detect. One rule "
        f"chooses every arm and the winner: the confirm validation mean (the test metric is reported, "
        f"never used to choose); the leaderboard ranks by it. Each finding states its budget.")]
    for line in ctx.separated[1]:
        blocks.append(note(line))
    heads = {"optimizer": "Optimizers, within each family:",
             "regularizers": "Regularizer sets, within each family and optimizer:"}
    for task in ctx.tasks:
        found = [f for f in ctx.findings if f["task"] == task]
        blocks.append(sub(ctx.task_heading(task)))
        if not found:
            blocks.append(note("No finding: no family of this task has a chosen arm with confirm results."))
        subject = "family"
        for f in found:
            if f.get("subject", "family") != subject:
                subject = f["subject"]
                blocks.append(text(heads.get(subject, f"{subject}:")))
            blocks.append(text(f["text"]))
    return blocks


@section("provenance", "Provenance")
def provenance(ctx: Context) -> list[Block]:
    t, data = ctx.trials, ctx.data
    blocks: list[Block] = []
    src_rows = []
    for s in data.sources:
        st = t[t["source"] == s.label]
        src_rows.append({"source": s.label, "kind": {"run": "run folder", "rdb": "storage URL",
                                                     "journal": "journal file"}[s.kind],
                         "studies": int((data.studies["source"] == s.label).sum()), "trials": len(st),
                         "first trial": st["started_at"].min(), "last trial": st["started_at"].max()})
    blocks.append(table(pd.DataFrame(src_rows), "Sources (storage passwords masked)"))
    if t.empty:
        blocks.append(note("The sources hold no trials."))
        return blocks

    energy = t["energy_kwh"].astype(float)
    co2 = t["emissions_kg"].astype(float)
    hours = t.assign(h=t["wall_s"].astype(float) / 3600, device=t["device"].fillna("unknown"))
    dev_hours = hours.groupby("device")["h"].sum()
    methods = sorted(t["energy_method"].dropna().astype(str).unique())
    countries = sorted(t["energy_country"].dropna().astype(str).unique())
    commits = sorted(t["git_commit"].dropna().astype(str).unique())
    ep = stats.epoch_totals(t)
    unrecorded = ep["trials"] - ep["recorded"]
    totals = [
        ("studies (arms)", len(data.studies)),
        ("trials", len(t)),
        ("full-trial equivalents (sum of epochs run / epochs)", ep["full_trials"]),
        ("epochs run (sum over trials)", ep["epochs_run"]),
        ("epochs run by pruned trials", ep["epochs_run_pruned"]),
        ("first trial started", t["started_at"].min()),
        ("last trial started", t["started_at"].max()),
        ("git commits", ", ".join(commits) if commits else "not recorded"),
        *[(f"{'GPU' if d == 'cuda' else str(d).upper() + ' device'}-hours (trial wall time)", float(h))
          for d, h in dev_hours.items()],
        ("energy, kWh (sum over trials)", float(energy.sum()) if energy.notna().any() else None),
        ("emissions, kg CO2eq", float(co2.sum()) if co2.notna().any() else None),
        ("trials with an energy measurement", f"{int(energy.notna().sum())} of {len(t)}"),
        ("energy measurement method", ", ".join(methods) if methods else "not recorded"),
        ("grid country (emissions factor)", ", ".join(countries) if countries else "not recorded"),
    ]
    blocks.append(kv_table(totals, "Totals"))
    if unrecorded:
        blocks.append(note(f"{plural(unrecorded, 'trial')} recorded no epochs run (failed before training, "
                           "still running, or an older record): not counted in the epochs."))
    if not energy.notna().any():
        blocks.append(note("No trial recorded energy (tracking was off or unavailable): kWh and CO2 "
                           "are not shown."))
    states = t.pivot_table(index="phase", columns="state", values="uid", aggfunc="count", fill_value=0)
    blocks.append(table(states.reset_index(), "Trials by phase and state"))

    blocks.append(sub("Machines"))
    m = t.assign(machine=t["machine"].fillna("unknown"))
    mrows = []
    for mach, g in m.groupby("machine", sort=True):
        first = g.iloc[0]
        mrows.append({"machine": mach, "device": first["device"], "gpu": first["gpu_model"],
                      "gpus": first["gpu_count"], "driver": first["gpu_driver"], "cuda": first["cuda"],
                      "cpu": first["cpu_model"], "cores": first["cpu_cores"], "RAM GB": first["ram_gb"],
                      "host": ", ".join(sorted(g["hostname"].dropna().astype(str).unique())) or None,
                      "software": "; ".join(sorted(g["versions"].dropna().astype(str).unique())) or None,
                      "trials": len(g)})
    blocks.append(table(pd.DataFrame(mrows), "Hardware and software of every machine in the data"))
    if t["gpu_model"].isna().all() and t["cpu_model"].isna().all():
        blocks.append(note("The records carry no hardware fingerprint; machines are told apart by "
                           "device only."))

    blocks.append(sub("Profile and budgets"))
    profiles: dict[str, list[str]] = {}
    for _, row in data.studies.iterrows():
        if row["profile"]:
            benches = profiles.setdefault(json.dumps(row["profile"], sort_keys=True, default=str), [])
            if str(row["benchmark"]) not in benches:
                benches.append(str(row["benchmark"]))
    for key, benches in profiles.items():
        blocks.append(kv_table(flatten(json.loads(key)), f"Profile of benchmark {', '.join(benches)}"))
    for p in data.profiles:
        if "error" in p:
            blocks.append(note(f"profile.yaml of {p['source']} could not be read: {p['error']}"))
        else:
            blocks.append(kv_table(flatten(p["profile"]), f"profile.yaml in {p['source']}"))
    if not profiles and not data.profiles:
        blocks.append(note("No profile recorded (no study attribute 'profile', no profile.yaml)."))
    proto = data.studies[data.studies["protocol"].map(bool)]
    if len(proto):
        rows = pd.DataFrame([{"benchmark": fmt(r["benchmark"]),
                              **{str(k): readable(v) for k, v in r["protocol"].items()}}
                             for _, r in proto.iterrows()])
        rows = rows.fillna("-").drop_duplicates()
        blocks.append(table(rows, "Tuning protocol (budget per arm; '-': not recorded on that study)"))
    else:
        blocks.append(note("No tuning protocol recorded on the studies."))
    spaces = stats.search_spaces(t, data.studies)
    if spaces[["records", "protocol"]].notna().any().any():
        blocks.append(table(spaces.rename(columns={"records": "space (trial records)",
                                                   "protocol": "space (study protocol)"}),
                            "Search space tuned per benchmark (core or full; '-': not recorded)"))
    else:
        blocks.append(note("No search space recorded (no record field 'space', no protocol key 'space'): "
                           "which space was tuned is unknown."))
    return blocks


def flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as ``(dotted.key, value)`` pairs; lists stay values."""
    if not isinstance(d, dict):
        return [(prefix or "value", d)]
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out += flatten(v, key) if isinstance(v, dict) and v else [(key, v)]
    return out


@section("leaderboard", "Leaderboard per task")
def leaderboard(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        n_tune = int((ctx.trials["phase"] == "tune").sum())
        return [note(f"No completed confirm trials: the leaderboard compares confirm re-runs only "
                     f"({n_tune} tuning trials exist).")]
    blocks = [text(f"Each family's best arm (optimizer / regularizers) among the arms the task's families "
                   f"have in common, ranked by the one selection rule of the report: the mean validation "
                   f"metric of the arm's confirm units (failed runs scored at the task's worst value); rank "
                   f"1 is the family the findings recommend, unless the test metric says another beats it. "
                   f"'params of': what the confirm runs re-run (with one study). Numbers are the test "
                   f"metric over the confirm units: mean and the exact {ctx.level:.0%} interval (the "
                   f"sign-flip test inverted, within the metric's bounds; none below 6 units).")]
    best = ctx.family_best
    for task in ctx.tasks:
        b = best[best["task"] == task]
        blocks.append(sub(ctx.task_heading(task)))
        blocks += ctx.family_budget(task)
        if b.empty:
            blocks.append(note("No completed confirm trials for this task." if
                               ctx.arms[ctx.arms["task"] == task].empty else
                               "No arm of this task has a validation value to be chosen by."))
            continue
        b = stats.ranked(b)
        rows = [{"rank": i + 1, "family": r["family"], "best arm": arm_label(r), "params of": r["config"],
                 "confirm val (chooses)": r["select_key"],
                 "units": units_text(int(r["n"]), str(r["unit_kind"])),
                 "failed runs": f"{r['failed']} of {r['runs']}" if r["failed"] else "",
                 "test mean": r["mean"], f"{ctx.level:.0%} CI": ci_text(r), "std": r["std"],
                 "params": r["n_params"], "train time s": r["fit_s"], "energy kWh": r["energy_kwh"]}
                for i, (_, r) in enumerate(b.iterrows())]
        blocks.append(table(pd.DataFrame(rows)))
    return blocks


@section("tuning", "Tuning curves and selection optimism")
def tuning(ctx: Context) -> list[Block]:
    curves = stats.tuning_curves(ctx.trials)
    if curves.empty:
        return [note("No tuning trials: no tuning curve.")]
    blocks = [text("Per arm, the best tuning validation metric so far against the number of tuning trials "
                   "run (pruned and failed trials count as run): a curve still rising at its last trial says "
                   "more trials could change the answer. The table sets the tuning validation value of the "
                   "params each arm stands for beside its confirm seeds' mean validation value; optimism = "
                   "the first minus the second (for metrics to minimize, the reverse): how much of the "
                   "tuning result was the luck of picking the best of several noisy trials.")]
    optimism = stats.selection_optimism(ctx.arms)
    for task in ctx.tasks:
        metric, _, _ = ctx.task_info(task)
        c = curves[curves["task"] == task]
        blocks.append(sub(ctx.task_heading(task)))
        if c.empty or not np.isfinite(c["best"].astype(float)).any():
            blocks.append(note("No completed tuning trial with a validation value for this task."))
            continue
        blocks.append(figure(figures.tuning_figure(metric, c), f"{task}: tuning curves",
                             "Step lines: best validation value after each tuning trial, per arm."))
        n_run = c.groupby(stats.ARM, dropna=False)["trials"].max().rename("n_run").reset_index()
        ends = c.merge(n_run, on=stats.ARM)
        final = ends[ends["trials"] == ends["n_run"]].set_index(stats.ARM)["best"]
        before = ends[ends["trials"] == ends["n_run"] - 1].set_index(stats.ARM)["best"]
        rising = [k for k in final.index
                  if k in before.index and pd.notna(before[k]) and final[k] != before[k]]
        if rising:
            blocks.append(note("Still improving at the last tuning trial: "
                               + ", ".join(f"{k[1]} {k[2]} / {k[3]}" for k in rising)
                               + " (more trials could change these arms' results)."))
        o = optimism[optimism["task"] == task].merge(n_run, on=stats.ARM, how="left")
        if len(o):
            rows = [{"family": r["family"], "arm": arm_label(r), "tuning trials": r["n_run"],
                     "tuning val (params chosen)": r["tune_best_val"], "confirm val mean": r["val_mean"],
                     "seeds": r["n"], "optimism": r["optimism"]}
                    for _, r in o.sort_values(stats.ARM).iterrows()]
            blocks.append(table(pd.DataFrame(rows)))
    return blocks


@section("architectures", "Architectures")
def architectures(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials to compare architecture families.")]
    best = ctx.family_best
    blocks: list[Block] = []
    for task in ctx.tasks:
        metric, direction, _ = ctx.task_info(task)
        b = best[best["task"] == task].sort_values("mean", ascending=direction != "maximize")
        blocks.append(sub(ctx.task_heading(task)))
        blocks += ctx.family_budget(task)
        if b.empty:
            blocks.append(note("No completed confirm trials for this task."))
            continue
        uri = figures.architecture_figure(ctx.best_trials(b), b, ctx.data.curves, metric)
        blocks.append(figure(uri, f"{task}: families compared",
                             "Left: each point is one confirm run of the family's best arm (as in the "
                             "leaderboard); bar: mean and exact "
                             f"{ctx.level:.0%} CI (none below 6 units). Right: validation {metric} per "
                             "epoch, mean over runs."))
    return blocks


@section("optimizers", "Optimizers")
def optimizers(ctx: Context) -> list[Block]:
    tune = ctx.trials[(ctx.trials["phase"] == "tune") & (ctx.trials["state"] == "COMPLETE")]
    if ctx.confirm.empty and tune.empty:
        return [note("No completed trials to compare optimizers.")]
    blocks: list[Block] = []
    best = stats.optimizer_best(ctx.arms)
    for task in ctx.tasks:
        metric, direction, _ = ctx.task_info(task)
        b = best[best["task"] == task] if len(best) else best
        tt = tune[tune["task"] == task]
        blocks.append(sub(ctx.task_heading(task)))
        if b.empty and tt.empty:
            blocks.append(note("No completed trials for this task."))
            continue
        fams = sorted(set(b["family"].astype(str)) | set(tt["family"].astype(str)))
        a = ctx.arms[ctx.arms["task"] == task]
        shown = set(zip(b["family"].astype(str), b["optimizer"].astype(str), strict=True))
        left = sorted({(str(f), str(o)) for f, o in zip(a["family"], a["optimizer"], strict=True)} - shown)
        if left:
            blocks.append(note("Not shown (no confirm validation value to choose an arm by; the "
                               "test metric never chooses): " + ", ".join(f"{f} {o}" for f, o in left) + "."))
        b = b.sort_values(["family", "mean"], ascending=[True, direction != "maximize"])
        trials = ctx.best_trials(b) if len(b) else ctx.confirm.iloc[0:0]
        uri = figures.optimizer_figure(metric, fams, trials, b, ctx.data.curves, tt)
        blocks.append(figure(uri, f"{task}: optimizers compared",
                             "Per family: runs and mean with the exact CI of each optimizer's best arm "
                             "(left), its validation curves (middle), and the validation metric of every "
                             "completed tuning trial against its learning rate (right, log scale)."))
    blocks.append(sub("Performance profiles across tasks"))
    blocks.append(text(
        "Dolan-More profiles: for each solver, the fraction of problems on which its cost is within a "
        "factor tau of the best solver's. Problems: tasks (families) and task / family pairs "
        "(optimizers); a solver's result on a problem is the test mean of its best arm (families: among "
        "their common arms, as in the leaderboard). The cost is the normalized regret "
        "(ideal - value) / (ideal - baseline) on the scale each task declares (accuracy: 1 and chance; "
        "ROC-AUC: 1 and 0.5; RMSE: 0 and the naive forecast's; modes: all and none): 0 is ideal, 1 the "
        f"trivial predictor; regrets are floored at {stats.REGRET_FLOOR:g}. Only problems that every "
        "compared solver ran count."))
    panels = {}
    reasons = []
    for kind, problem, solver in (("families", ["task"], "family"),
                                  ("optimizers", ["task", "family"], "optimizer")):
        if ctx.confirm.empty:
            reasons.append(f"{kind}: no confirm trials")
            continue
        best = best_per(ctx, problem, solver)
        values, _ = stats.problem_table(best, problem, solver)
        if values.shape[1] < 2:
            reasons.append(f"{kind}: needs >= 2 {kind} to compare, has {values.shape[1]}")
            continue
        regrets, incomplete, unscaled = stats.regret_table(values, stats.problem_scales(best, problem))
        if incomplete:
            blocks.append(note(f"{kind.capitalize()}: left out of the profile (not every {solver} ran them): "
                               f"{', '.join(incomplete)}."))
        if unscaled:
            blocks.append(note(f"{kind.capitalize()}: left out of the profile (their records declare no "
                               f"ideal and baseline): {', '.join(unscaled)}."))
        if len(regrets) < 2:
            reasons.append(f"{kind}: needs >= 2 problems that every compared {solver} ran, "
                           f"has {len(regrets)}")
            continue
        panels[kind] = stats.performance_profile(regrets)
    if panels:
        blocks.append(figure(figures.profile_figure(panels), "performance profiles",
                             "Higher and further left is better; rho at tau = 1 is the share of problems "
                             "on which the solver is the best."))
    for r in reasons:
        blocks.append(note(f"No performance profile for {r}."))
    return blocks


def best_per(ctx: Context, problem: Sequence[str], solver: str) -> pd.DataFrame:
    """Each solver's best arm per problem: families on their common arms (:attr:`Context.family_best`),
    optimizers on their common regularizer sets (:func:`reports.stats.optimizer_best`)."""
    return ctx.family_best if solver == "family" else stats.optimizer_best(ctx.arms)


@section("regularizers", "Regularizers")
def regularizers(ctx: Context) -> list[Block]:
    c = ctx.confirm
    if c.empty:
        return [note("No completed confirm trials to compare regularizers.")]
    if set(c["regularizers"].astype(str)) <= {"none"}:
        return [note("Every confirm trial ran without regularizers: nothing to compare.")]
    blocks = [text("Test metric and generalization gap (train minus validation primary metric at the last "
                   "epoch) of each regularizer set, per seed, for the family and optimizer pairs that ran "
                   "with a regularizer (so 'none' is the same optimizer without one); the table gives the "
                   "change of the means against that baseline.")]
    arms = ctx.arms
    for task in ctx.tasks:
        metric, _, _ = ctx.task_info(task)
        ct = c[c["task"] == task]
        regged = ct.loc[ct["regularizers"] != "none", ["family", "optimizer"]].drop_duplicates()
        ct = ct.merge(regged, on=["family", "optimizer"])
        blocks.append(sub(ctx.task_heading(task)))
        if ct.empty:
            blocks.append(note("No confirm trials with a regularizer for this task."))
            continue
        blocks.append(figure(figures.regularizer_figure(metric, ct), f"{task}: regularizers compared"))
        a = arms[arms["task"] == task]
        rows = []
        for (fam, opt), g in a.groupby(["family", "optimizer"], sort=True):
            base = g[g["regularizers"] == "none"]
            for _, r in g[g["regularizers"] != "none"].iterrows():
                rows.append({"family": fam, "optimizer": opt, "regularizers": r["regularizers"], "n": r["n"],
                             "test mean": r["mean"],
                             "vs none": r["mean"] - base["mean"].iloc[0] if len(base) else None,
                             "gap": r["gap_mean"],
                             "gap vs none": r["gap_mean"] - base["gap_mean"].iloc[0] if len(base) else None})
        blocks.append(table(pd.DataFrame(rows), "'-' in 'vs none': no arm without regularizers to compare"))
    return blocks


@section("activations", "Activations and gradient health")
def activations(ctx: Context) -> list[Block]:
    t = ctx.trials[ctx.trials["flag"].notna()]
    if t.empty:
        return [note("No trial recorded gradient diagnostics.")]
    blocks = [text("Every trial (tuning and confirm) is flagged from its gradient norms: vanishing when "
                   "the median over epochs of |grad first layer| / |grad last layer| is below 1e-3, "
                   "exploding above 1e3 or on any non-finite gradient or loss, ok otherwise.")]
    blocks.append(figure(figures.health_figure(t), "gradient-health flags per activation"))
    blocks.append(table(stats.flag_counts(t), "Flags per family and activation (dead ReLU: mean final "
                                              "fraction of units that never fire on a probe batch)"))
    flagged = t[t["flag"] != "ok"]
    if flagged.empty:
        blocks.append(note("No trial was flagged vanishing or exploding."))
    else:
        cols = ["task", "family", "optimizer", "regularizers", "phase", "number", "activation", "lr",
                "flag", "grad_ratio_median", "status"]
        blocks.append(table(flagged[cols].sort_values(["task", "family", "number"]), "Flagged trials"))
    return blocks


@section("footprint", "Footprint")
def footprint(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials: no footprint per arm.")]
    has_energy = bool(np.isfinite(ctx.arms["energy_kwh"].astype(float)).any())
    methods = sorted(ctx.confirm["energy_method"].dropna().astype(str).unique())
    blocks = [text("Per arm (confirm trials, mean per trial): energy and emissions, and the time and energy "
                   "until the validation metric first reached the task's target (time_s of the curves at "
                   "that epoch; energy prorated as kWh x time-to-target / fit time), averaged over the "
                   "seeds that reached it (\"reached by k of n\": n counts failed seeds too). Energy "
                   "method: " + (", ".join(methods) or "not recorded") + ".")]
    if not has_energy:
        blocks.append(note("No energy recorded: the Pareto front is drawn against training time instead."))
    cost, label = ("energy_kwh", "energy per trial (kWh)") if has_energy else ("fit_s", "train time (s)")
    for task in ctx.tasks:
        metric, direction, _ = ctx.task_info(task)
        a = ctx.arms[ctx.arms["task"] == task].copy()
        blocks.append(sub(ctx.task_heading(task)))
        if a.empty:
            blocks.append(note("No completed confirm trials for this task."))
            continue
        a["pareto"] = stats.pareto_front(a, cost, "mean", direction)
        if np.isfinite(a[cost].astype(float)).any():
            blocks.append(figure(figures.footprint_figure(metric, a, cost, label),
                                 f"{task}: metric against {label}",
                                 "Ringed points joined by the dashed line: the Pareto front (no other arm "
                                 "is both cheaper and better)."))
        else:
            blocks.append(note(f"No arm of this task recorded {label}."))
        rows = [{"family": r["family"], "arm": arm_label(r), "n": r["n"], f"test {metric}": r["mean"],
                 "kWh / trial": r["energy_kwh"], "kg CO2 / trial": r["emissions_kg"],
                 "train time s": r["fit_s"],
                 "time to target s": reached_text(r["time_to_target_s"], r),
                 "energy to target kWh": reached_text(r["energy_to_target_kwh"], r),
                 "Pareto": bool(r["pareto"])}
                for _, r in a.sort_values(["family", "optimizer", "regularizers"]).iterrows()]
        blocks.append(table(pd.DataFrame(rows)))
    return blocks


def reached_text(value: float, arm: pd.Series) -> str:
    """A to-target mean with how many of the arm's confirm runs (failed ones too) it averages."""
    k, n = int(arm["reached"]), int(arm.get("runs", arm["n"]))
    if k == 0:
        return f"not reached (0 of {n})"
    return f"{fmt(value) if np.isfinite(float(value)) else '-'} (reached by {k} of {n})"


@section("devices", "Across devices")
def devices(ctx: Context) -> list[Block]:
    machines = sorted(ctx.trials["machine"].dropna().astype(str).unique())
    if not machines:
        return [note("The records name no machine (no device or hardware field): nothing to compare.")]
    if len(machines) < 2:
        return [note(f"All trials ran on one machine ({machines[0]}): nothing to compare across devices.")]
    c = ctx.confirm
    if c.empty:
        return [note(f"{len(machines)} machines in the data but no completed confirm trials to compare.")]
    # the same arm at the same budget, whichever source it came from: the original family name (the
    # other sections tell sources apart in the family label, stats.separate_arms)
    c = stats.to_target(c).assign(kwh_1k=lambda d: stats.per_1k_samples(d), family=c["family_name"])
    g = c.groupby([*stats.ARM, "machine"], dropna=False).agg(
        n=("uid", "count"), samples_per_s=("samples_per_s", "mean"),
        time_to_target_s=("time_to_target_s", "mean"), kwh_1k=("kwh_1k", "mean"),
        test=("test", "mean")).reset_index()
    shared = g.groupby(stats.ARM, dropna=False)["machine"].transform("nunique") >= 2
    g = g[shared]
    blocks = [text(f"Machines (device: model): {', '.join(machines)}. Same arms, confirm trials, means per "
                   "machine; energy per 1,000 training samples = kWh / (samples/s x fit time) x 1,000.")]
    if g.empty:
        blocks.append(note("No arm ran on more than one machine: nothing to set side by side."))
        return blocks
    g = g.assign(arm_label=g["task"].astype(str) + " / " + g["family"].astype(str) + " / "
                 + g["optimizer"].astype(str) + " / " + g["regularizers"].astype(str))
    panels = [("samples_per_s", "throughput (samples/s)"), ("time_to_target_s", "time to target (s)"),
              ("kwh_1k", "kWh per 1,000 samples")]
    panels = [p for p in panels if np.isfinite(g[p[0]].astype(float)).any()]
    for col, label in [("time_to_target_s", "time to target"), ("kwh_1k", "energy per 1,000 samples")]:
        if col not in [p[0] for p in panels]:
            blocks.append(note(f"No {label} recorded for these arms."))
    if panels:
        blocks.append(figure(figures.devices_figure(g, panels), "arms side by side per machine"))
    cols = {"arm_label": "arm", "machine": "machine", "n": "n", "samples_per_s": "samples/s",
            "time_to_target_s": "time to target s", "kwh_1k": "kWh / 1k samples", "test": "test mean"}
    blocks.append(table(g[list(cols)].rename(columns=cols).sort_values(["arm", "machine"])))
    return blocks


@section("statistics", "Statistics")
def statistics(ctx: Context) -> list[Block]:
    if ctx.confirm.empty:
        return [note("No completed confirm trials: no ranking.")]
    blocks = [text(f"Friedman test over blocks (problems) of the best-arm test means, treatments ranked "
                   f"within each block (1 = best; tasks to minimize are ranked low-to-high), on the "
                   f"largest complete sub-table (the treatments and blocks in which every one of them "
                   f"ran), decided at alpha = {ctx.alpha} by the permutation p-value (every ordering of a "
                   f"block's values equally likely; exact for small tables), with the chi-square and "
                   f"Iman-Davenport F beside it. Only when it rejects "
                   f"is the Nemenyi critical difference (CD) drawn, telling which average ranks differ. "
                   f"Families are ranked by their best common arm per task, as in the leaderboard.")]
    for kind, problem, solver in (("families", ["task"], "family"),
                                  ("optimizers", ["task", "family"], "optimizer")):
        values, directions = stats.problem_table(best_per(ctx, problem, solver), problem, solver)
        blocks.append(sub(f"Ranking of {kind} (blocks: {' / '.join(problem)})"))
        res = stats.friedman(stats.orient(values, directions), "maximize", alpha=ctx.alpha)
        blocks.extend(friedman_blocks(res, kind, solver, ctx.alpha))
    return blocks


def friedman_blocks(res: stats.FriedmanResult, kind: str, solver: str, alpha: float) -> list[Block]:
    """The ranking table, what was left out, the verdict and (only after a rejection) the CD diagram."""
    blocks: list[Block] = []
    if len(res.ranks):
        blocks.append(table(res.ranks.rename("average rank").rename_axis(solver).reset_index()))
    if res.left_out:
        blocks.append(note(f"Left out ({kind} missing in the blocks kept): "
                           f"{', '.join(map(str, res.left_out))}."))
    if res.dropped:
        blocks.append(note(f"Left out (blocks where a compared {solver} did not run): "
                           f"{', '.join(map(str, res.dropped))}."))
    if not res.ran:
        blocks.append(note(f"The Friedman test cannot run for {kind}: {res.reason}."))
        return blocks
    verdict = (f"the {kind} differ significantly (p < {alpha})." if res.significant else
               f"the differences between {kind} are NOT significant (p >= {alpha}); the ranking may be "
               f"chance, so no critical-difference diagram is drawn.")
    blocks.append(text(f"Friedman chi-square = {res.statistic:.3f} (asymptotic p = {res.pvalue:.3g}), "
                       f"Iman-Davenport F = {res.f_statistic:.3f} on ({res.k - 1}, "
                       f"{(res.k - 1) * (res.n - 1)}) df (p = {res.f_pvalue:.3g}), permutation p = "
                       f"{res.perm_pvalue:.3g} (k = {res.k} {kind}, n = {res.n} blocks): {verdict}"
                       + (f" Nemenyi CD = {res.cd:.3f}." if res.significant else "")))
    if res.significant:
        groups = stats.cd_groups(res.ranks, res.cd)
        blocks.append(figure(figures.cd_diagram(res.ranks, res.cd, groups, f"{kind}: average rank"),
                             f"critical-difference diagram of {kind}",
                             "Treatments joined by a thick bar are not significantly different (Nemenyi)."))
    return blocks


@section("optuna", "Optuna")
def optuna_section(ctx: Context) -> list[Block]:
    data = ctx.data
    blocks: list[Block] = []
    if data.studies.empty:
        blocks.append(note("The sources hold no Optuna studies."))
    else:
        t = ctx.trials
        rows = []
        for _, s in data.studies.iterrows():
            tt = t[(t["source"] == s["source"]) & (t["study"] == s["study"]) & (t["phase"] == "tune")
                   & (t["state"] == "COMPLETE") & np.isfinite(t["value"].astype(float))]
            best = None
            if len(tt):
                best = tt.loc[tt["value"].idxmax() if s["direction"] == "maximize" else tt["value"].idxmin()]
            imp = data.importances[(data.importances["source"] == s["source"])
                                   & (data.importances["study"] == s["study"])]
            params = best["optuna_params"] if best is not None else {}
            rows.append({"study": s["study"], "source": s["source"], "direction": s["direction"],
                         "complete": s["complete"], "pruned": s["pruned"], "failed": s["fail"],
                         "running": s["running"],
                         "best value (tune)": None if best is None else best["value"],
                         "best params": ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) or None,
                         "importances": ", ".join(f"{p} {fmt(v, 2)}" for p, v in
                                                  imp.sort_values("importance", ascending=False)
                                                  [["param", "importance"]].itertuples(index=False))
                         or f"not computed: {s['importance_note']}"})
        blocks.append(table(pd.DataFrame(rows), "Per study: trial counts, best tuning trial, parameter "
                                                "importances (Optuna's default evaluator)"))
        if data.importances.empty:
            blocks.append(note("No study had parameter importances (see the reasons in the table)."))
        else:
            blocks.append(figure(figures.importance_figure(data.importances), "parameter importances"))
    blocks.append(sub("Dashboard"))
    for s in data.sources:
        blocks.append(code(f"suite dashboard {shlex.quote(s.label)}"))
        if s.kind == "rdb" and s.label != s.target:
            blocks.append(note("The password is masked here; give the real storage URL."))
    return blocks


# --------------------------------------------------------------------------- page


def render_sections(ctx: Context) -> list[dict[str, Any]]:
    """Every section's blocks; a section that raises shows the error instead of breaking the page."""
    out = []
    for i, (slug, title, fn) in enumerate(SECTIONS, start=1):
        try:
            blocks = fn(ctx)
        except Exception as exc:  # one broken section must not lose the report
            blocks = [note(f"This section could not be drawn: {type(exc).__name__}: {exc}")]
        out.append({"slug": slug, "number": i, "title": title, "blocks": blocks})
    return out


def render_html(data: ReportData, *, title: str = "Benchmark report", ctx: Context | None = None) -> str:
    """The report page as one HTML string (``ctx``: a context to reuse, e.g. for ``findings.json``)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    ctx = ctx or Context(data)
    return env.get_template("report.html").render(
        title=title, sections=render_sections(ctx), sources=[s.label for s in data.sources],
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), n_trials=len(data.trials),
    )


def build_report(sources: list[str], out_dir: Path) -> Path:
    """Read ``sources``, write ``out_dir/index.html`` (self-contained) and return its path.

    Args:
        sources: run folders (with ``optuna.db``), Optuna storage URLs, or journal files
            (``.log``/``.jsonl``); several are merged into one report.
        out_dir: created if missing.

    Raises:
        SuiteError: a source cannot be parsed or opened.
    """
    import matplotlib

    matplotlib.set_loglevel("error")
    data = load(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    ctx = Context(data)
    path.write_text(render_html(data, ctx=ctx), encoding="utf-8")
    (out_dir / "findings.json").write_text(json.dumps(ctx.findings, indent=1, default=_json_value),
                                           encoding="utf-8")
    return path


def _json_value(value: Any) -> Any:
    """numpy scalars and other values ``json`` does not know, for ``findings.json``."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
