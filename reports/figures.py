"""Figures of the report: each function draws frames made by :mod:`reports.stats` / :mod:`reports.load`
and returns the figure as SVG markup, inlined in the page by :func:`reports.blocks.figure`.

Matplotlib's object API is used (no ``pyplot``, so no global backend or figure state: nothing is
ever shown on a screen). Chart text is real SVG ``<text>`` (``svg.fonttype: none``): it can be
searched, selected and read by a screen reader, and the page stays small (no glyph paths, no
base64). Matplotlib escapes every string it writes, and the page's Content-Security-Policy allows
no script, so an inlined figure can neither run anything nor fetch anything.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

RC = {
    "svg.hashsalt": "dl-benchsuite",  # deterministic ids
    "svg.fonttype": "none",  # text as <text> elements, not glyph paths
    "text.parse_math": False,  # names from data are text, never mathtext
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
}
FLAG_COLORS = {"ok": "#4c9a2a", "vanishing": "#1f77b4", "exploding": "#d62728"}


@contextmanager
def _style():
    with matplotlib.rc_context(RC), sns.axes_style("whitegrid"):
        yield


def palette(names: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per name (sorted, so the same family has the same colour in every figure)."""
    names = sorted({str(n) for n in names})
    colors = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.2):
    """A figure of ``nrows x ncols`` panels of about ``width x height`` inches each."""
    fig = Figure(figsize=(min(ncols * width, 16), min(nrows * height, 40)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _svg(fig: Figure) -> str:
    """The figure's SVG text. A figure whose constrained layout collapses (long labels in a small
    figure) is drawn larger, then without the layout engine: a figure is never lost to its layout."""
    def save() -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        return buf.getvalue().decode("utf-8")

    for attempt in range(3):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="constrained_layout not applied")
            try:
                return save()
            except UserWarning:
                if attempt == 0:
                    width, height = fig.get_size_inches()
                    fig.set_size_inches(width * 1.5, height * 1.5)
                else:
                    fig.set_layout_engine("none")
    return save()


def to_uri(fig: Figure) -> str:
    """The figure as an ``<svg>`` element to inline in the page: no XML prolog or doctype, and its
    ids (clip paths, markers) prefixed with a hash of the drawing, so that many figures on one page
    never share an id."""
    svg = _svg(fig)
    svg = svg[svg.index("<svg"):]
    prefix = "f" + hashlib.sha1(svg.encode()).hexdigest()[:8] + "-"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    return re.sub(r'(url\(#|href="#)([^)"]+)', lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)


def _plain_log(ax, which: str = "x", base: float = 10) -> None:
    """A log scale on ``ax``'s ``which`` axis with plain tick labels (0.001, 0.01 / 1, 2, 4)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=base))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_locator(NullLocator())  # minor log ticks cost more to draw than they tell


def _legend(ax, title: str | None = None) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, loc="best", frameon=True)


def ci_error(summary: pd.DataFrame) -> np.ndarray:
    """``2 x n`` error-bar lengths below and above each mean from ``ci_low``/``ci_high`` (NaN where an
    arm has no interval)."""
    mean = summary["mean"].astype(float).to_numpy()
    low = summary["ci_low"].astype(float).to_numpy()
    high = summary["ci_high"].astype(float).to_numpy()
    return np.vstack([mean - low, high - mean])


def _points_with_ci(ax, trials: pd.DataFrame, summary: pd.DataFrame, x: str, colors: dict) -> None:
    """Runs as points and the mean with its 95% interval (``ci_low``..``ci_high``, asymmetric) as a
    black bar, one column per value of ``x``; an arm without an interval gets its mean and a label."""
    order = [str(v) for v in summary[x]]
    data = trials.assign(**{x: trials[x].astype(str)})
    sns.stripplot(data=data, x=x, y="test", order=order, hue=x, palette=colors, ax=ax, size=5,
                  jitter=0.15, alpha=0.75, legend=False)
    mean = summary["mean"].astype(float).to_numpy()
    err = ci_error(summary)
    has_ci = np.isfinite(err).all(axis=0)
    idx = np.arange(len(order))
    if has_ci.any():  # an interval only where one exists: never a zero-width bar for one unit
        ax.errorbar(idx[has_ci], mean[has_ci], yerr=err[:, has_ci], fmt="_", color="black",
                    markersize=14, capsize=4, lw=1.2, zorder=5)
    for i in idx[~has_ci]:
        ax.plot([i], [mean[i]], marker="_", color="black", markersize=14, zorder=5)
        n = int(summary["n"].iloc[i])
        ax.annotate("1 unit" if n == 1 else f"no CI ({n} units)", (i, mean[i]),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30 if len(order) > 4 else 0)


def _curves(ax, curves: pd.DataFrame, uids: pd.DataFrame, series: str, label: str, colors: dict) -> None:
    """Mean over seeds of ``series`` per epoch, one line per value of ``label`` in ``uids``."""
    c = curves[(curves["series"] == series) & curves["uid"].isin(uids["uid"])]
    c = c.merge(uids[["uid", label]], on="uid")
    c = c[np.isfinite(c["value"].astype(float))]
    for name, g in c.groupby(label, sort=True):
        m = g.groupby("epoch")["value"].mean()
        ax.plot(m.index, m.to_numpy(), marker="o", ms=3, label=str(name), color=colors.get(str(name)))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(series)
    _legend(ax)


def architecture_figure(trials: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame,
                        metric: str) -> str:
    """Families side by side on one task: test metric per seed (left), validation curves (right).

    Args:
        trials: confirm trials of each family's best arm (``family``, ``test``, ``uid``).
        summary: one row per family (``family``, ``mean``, ``ci_low``, ``ci_high``), in display order.
    """
    colors = palette(summary["family"])
    with _style():
        fig, ax = new_figure(1, 2, width=4.6)
        _points_with_ci(ax[0, 0], trials, summary, "family", colors)
        ax[0, 0].set_ylabel(f"test/{metric}")
        ax[0, 0].set_title("best arm per family (runs, mean and exact 95% CI)")
        _curves(ax[0, 1], curves, trials, f"val/{metric}", "family", colors)
        ax[0, 1].set_title("validation curves (mean over runs)")
        return to_uri(fig)


def optimizer_figure(metric: str, families: Sequence[str], trials: pd.DataFrame,
                     summary: pd.DataFrame, curves: pd.DataFrame, tune: pd.DataFrame) -> str:
    """Optimizers on one task, one row per family: seeds and CI, validation curves, LR sensitivity.

    Args:
        trials: confirm trials of each (family, optimizer)'s best arm.
        summary: one row per (family, optimizer).
        tune: COMPLETE tuning trials with ``lr`` and ``value`` (the validation metric).
    """
    colors = palette(pd.concat([summary["optimizer"], tune["optimizer"]]).astype(str))
    with _style():
        fig, ax = new_figure(len(families), 3, width=4.2, height=3.0)
        for i, fam in enumerate(families):
            s = summary[summary["family"] == fam]
            t = trials[trials["family"] == fam]
            if s.empty:
                ax[i, 0].text(0.5, 0.5, "no confirm trials", ha="center", transform=ax[i, 0].transAxes)
                ax[i, 1].set_axis_off()
            else:
                _points_with_ci(ax[i, 0], t, s, "optimizer", colors)
                _curves(ax[i, 1], curves, t, f"val/{metric}", "optimizer", colors)
            ax[i, 0].set_ylabel(f"test/{metric}")
            ax[i, 0].set_title(f"{fam}: optimizers (runs, mean and exact 95% CI)")
            ax[i, 1].set_title(f"{fam}: validation curves")
            lt = tune[(tune["family"] == fam) & (tune["lr"] > 0) & np.isfinite(tune["value"].astype(float))]
            a = ax[i, 2]
            if lt.empty:
                a.text(0.5, 0.5, "no completed tuning trials with lr", ha="center", transform=a.transAxes)
            else:
                for name, g in lt.groupby("optimizer", sort=True):
                    a.scatter(g["lr"], g["value"], s=16, alpha=0.75, label=str(name),
                              color=colors.get(str(name)))
                _plain_log(a)
                _legend(a)
            a.set_xlabel("learning rate (log)")
            a.set_ylabel(f"val/{metric} (tuning)")
            a.set_title(f"{fam}: LR sensitivity (tuning trials)")
        return to_uri(fig)


def profile_figure(profiles: dict[str, pd.DataFrame]) -> str:
    """Performance profiles, one panel per solver kind (``{"families": frame, ...}``).

    Each frame is :func:`reports.profiles.performance_profile` output (``solver``, ``tau``, ``rho``).
    """
    with _style():
        fig, ax = new_figure(1, len(profiles), width=4.8)
        for a, (kind, prof) in zip(ax[0], profiles.items(), strict=True):
            colors = palette(prof["solver"])
            tmax = max(2.0, float(prof["tau"].max()) * 1.1)
            for solver, g in prof.groupby("solver", sort=True):
                g = g.sort_values("tau")
                x = np.append(g["tau"].to_numpy(), tmax)
                y = np.append(g["rho"].to_numpy(), g["rho"].iloc[-1])
                a.step(x, y, where="post", label=str(solver), color=colors[str(solver)], lw=1.6)
            _plain_log(a, base=2)
            a.set_ylim(-0.02, 1.02)
            a.set_xlabel("tau (ratio to the best cost, log2)")
            a.set_ylabel("fraction of problems with ratio <= tau")
            a.set_title(f"performance profile: {kind}")
            _legend(a)
        return to_uri(fig)


def regularizer_figure(metric: str, trials: pd.DataFrame) -> str:
    """Regularizers on one task: test metric (left) and generalization gap (right) per seed.

    Args:
        trials: confirm trials with ``regularizers``, ``family``, ``test``, ``gap_final``.
    """
    order = sorted(trials["regularizers"].astype(str).unique(), key=lambda r: (r != "none", r))
    colors = palette(trials["family"].astype(str))
    data = trials.assign(regularizers=trials["regularizers"].astype(str), family=trials["family"].astype(str))
    with _style():
        fig, ax = new_figure(1, 2, width=4.6)
        for a, col, label in ((ax[0, 0], "test", f"test/{metric}"),
                              (ax[0, 1], "gap_final", f"gap (train - val {metric})")):
            d = data[np.isfinite(data[col].astype(float))]
            if d.empty:
                a.text(0.5, 0.5, "no values recorded", ha="center", transform=a.transAxes)
            else:
                sns.stripplot(data=d, x="regularizers", y=col, hue="family", order=order, palette=colors,
                              dodge=True, ax=a, size=5, alpha=0.8)
                _legend(a, "family")
            a.set_ylabel(label)
            a.set_xlabel("regularizers")
            a.tick_params(axis="x", rotation=30 if len(order) > 3 else 0)
        ax[0, 0].set_title("test metric by regularizer")
        ax[0, 1].set_title("generalization gap by regularizer")
        ax[0, 1].axhline(0, color="grey", lw=0.8)
        return to_uri(fig)


def health_figure(trials: pd.DataFrame) -> str:
    """Gradient-health flags per activation (stacked counts) and the median gradient ratio per trial."""
    t = trials[trials["flag"].notna()].copy()
    t["activation"] = t["activation"].fillna("n/a").astype(str)
    counts = t.groupby(["activation", "flag"]).size().unstack(fill_value=0)
    flags = [f for f in ("ok", "vanishing", "exploding") if f in counts] + \
        [f for f in counts if f not in FLAG_COLORS]
    with _style():
        fig, ax = new_figure(1, 2, width=4.6)
        bottom = np.zeros(len(counts))
        for f in flags:
            ax[0, 0].bar(counts.index.astype(str), counts[f], bottom=bottom, label=str(f),
                         color=FLAG_COLORS.get(str(f), "#888888"))
            bottom += counts[f].to_numpy()
        ax[0, 0].set_ylabel("trials")
        ax[0, 0].set_title("gradient-health flag per activation")
        _legend(ax[0, 0], "flag")
        r = t[t["grad_ratio_median"] > 0]
        acts = sorted(t["activation"].unique())
        pos = {a: i for i, a in enumerate(acts)}
        rng = np.random.default_rng(0)
        for f, g in r.groupby("flag"):
            x = g["activation"].map(pos).to_numpy(float) + rng.uniform(-0.15, 0.15, len(g))
            ax[0, 1].scatter(x, g["grad_ratio_median"], s=14, alpha=0.8, label=str(f),
                             color=FLAG_COLORS.get(str(f), "#888888"))
        ax[0, 1].set_xticks(range(len(acts)), acts)
        _plain_log(ax[0, 1], "y")
        for y in (1e-3, 1e3):
            ax[0, 1].axhline(y, color="grey", lw=0.8, ls="--")
        ax[0, 1].set_ylabel("median |grad first| / |grad last| (log)")
        ax[0, 1].set_title("gradient ratio per trial (dashed: flag thresholds)")
        _legend(ax[0, 1], "flag")
        return to_uri(fig)


def footprint_figure(metric: str, arms: pd.DataFrame, cost: str, cost_label: str) -> str:
    """Test metric against a cost per arm of one task, the Pareto front joined and ringed.

    Args:
        arms: :func:`reports.stats.arm_summary` rows with a boolean ``pareto`` column.
        cost: the cost column (``energy_kwh`` or ``fit_s``).
    """
    colors = palette(arms["family"])
    with _style():
        fig, ax = new_figure(1, 1, width=6.0, height=3.8)
        a = ax[0, 0]
        for fam, g in arms.groupby("family", sort=True):
            # NaN intervals (too few units) draw no bar at all, never a zero-width one
            a.errorbar(g[cost], g["mean"], yerr=ci_error(g), fmt="o", ms=6, capsize=3,
                       label=str(fam), color=colors[str(fam)], alpha=0.85)
        front = arms[arms["pareto"]].sort_values(cost)
        a.plot(front[cost], front["mean"], color="black", lw=1, ls="--", label="Pareto front")
        a.scatter(front[cost], front["mean"], s=130, facecolors="none", edgecolors="black", lw=1.2)
        for _, row in front.iterrows():
            a.annotate(f"{row['optimizer']}/{row['regularizers']}", (row[cost], row["mean"]),
                       textcoords="offset points", xytext=(6, 4), fontsize=7)
        if (arms[cost] > 0).all() and arms[cost].max() / max(arms[cost].min(), 1e-300) > 50:
            _plain_log(a)
        a.set_xlabel(cost_label)
        a.set_ylabel(f"test/{metric} (mean, exact 95% CI)")
        a.set_title(f"metric against {cost_label.split(' (')[0]}")
        _legend(a, "family")
        return to_uri(fig)


def tuning_figure(metric: str, curves: pd.DataFrame) -> str:
    """Best validation value so far against tuning trials run, one line per arm of one task.

    Args:
        curves: :func:`reports.tuning.tuning_curves` rows of one task.
    """
    colors = palette(curves["family"])
    styles = ["-", "--", ":", "-."]
    with _style():
        fig, ax = new_figure(1, 1, width=6.0, height=3.6)
        a = ax[0, 0]
        for i, (key, g) in enumerate(curves.groupby(["family", "optimizer", "regularizers"], sort=True)):
            fam, opt, regs = key
            a.step(g["trials"], g["best"], where="post", color=colors[str(fam)], ls=styles[i % len(styles)],
                   marker="o", ms=3, lw=1.2, label=f"{fam} / {opt} / {regs}")
        a.set_xlabel("tuning trials run")
        a.set_ylabel(f"best val/{metric} so far")
        a.xaxis.get_major_locator().set_params(integer=True)
        a.set_title("tuning curves")
        _legend(a, "arm")
        return to_uri(fig)


def hardware_figure(table: pd.DataFrame, panels: Sequence[tuple[str, str]]) -> str:
    """Grouped bars per arm and machine, one panel per ``(column, label)`` in ``panels``.

    Args:
        table: one row per (arm label ``arm_label``, ``machine``) with the panel columns.
    """
    colors = palette(table["machine"])
    arms = sorted(table["arm_label"].astype(str).unique())
    machines = sorted(table["machine"].astype(str).unique())
    width = 0.8 / len(machines)
    with _style():
        fig, ax = new_figure(len(panels), 1, width=max(6.0, 0.6 * len(arms) * len(machines)), height=3.0)
        for n, (a, (col, label)) in enumerate(zip(ax[:, 0], panels, strict=True)):
            for j, m in enumerate(machines):
                g = table[table["machine"].astype(str) == m].set_index("arm_label").reindex(arms)
                a.bar(np.arange(len(arms)) + (j - (len(machines) - 1) / 2) * width, g[col].astype(float),
                      width=width, label=m, color=colors[m])
            a.set_xticks(range(len(arms)), arms, rotation=30 if len(arms) > 3 else 0, ha="right")
            a.set_ylabel(label)
            if n == 0:
                _legend(a, "machine")
        return to_uri(fig)


def cd_diagram(ranks: pd.Series, cd: float, groups: Sequence[Sequence[str]], title: str) -> str:
    """Critical-difference diagram (Demsar 2006): average ranks on an axis (1 = best, left), the CD
    as a bar above, treatments not significantly different (Nemenyi) joined by a thick line below."""
    k = len(ranks)
    names, r = list(ranks.index), ranks.to_numpy(float)
    lo, hi = 1, max(k, math.ceil(r.max()))
    span = hi - lo
    pad = 0.45 * span + 0.5  # room for the labels left and right of the axis
    half = (k + 1) // 2
    step = 0.5
    bottom = -step * max(half, k - half) - 0.2 - 0.25 * len(groups)
    with _style(), sns.axes_style("white"):
        fig = Figure(figsize=(7.5, 1.3 + 0.3 * max(half, k - half) + 0.15 * len(groups)))
        a = fig.add_axes((0.01, 0.02, 0.98, 0.86))
        a.set_xlim(lo - pad, hi + pad)
        a.set_ylim(bottom, 1.3)
        a.plot([lo, hi], [0, 0], color="black", lw=1)
        for t in range(lo, hi + 1):
            a.plot([t, t], [0, 0.12], color="black", lw=1)
            a.text(t, 0.2, str(t), ha="center", va="bottom", fontsize=8)
        a.plot([lo, lo + cd], [0.95, 0.95], color="black", lw=1.5)
        for x in (lo, lo + cd):
            a.plot([x, x], [0.88, 1.02], color="black", lw=1)
        a.text(lo + cd / 2, 1.05, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
        for i, (name, rank) in enumerate(zip(names, r, strict=True)):
            left = i < half
            y = -step * (i + 1) if left else -step * (k - i)
            xt = lo - 0.1 * span - 0.1 if left else hi + 0.1 * span + 0.1
            a.plot([rank, rank, xt], [0, y, y], color="black", lw=0.8)
            a.text(xt, y, f"{name} ({rank:.2f}) " if left else f" {name} ({rank:.2f})",
                   ha="right" if left else "left", va="center", fontsize=8)
        for j, g in enumerate(groups):
            gr = ranks[list(g)]
            y = -0.15 - 0.2 * j
            a.plot([gr.min() - 0.03, gr.max() + 0.03], [y, y], color="#444444", lw=3.5,
                   solid_capstyle="round")
        a.set_axis_off()
        fig.suptitle(title, fontsize=9)
        return to_uri(fig)


def importance_figure(importances: pd.DataFrame) -> str:
    """Heatmap of parameter importances: one row per study, one column per parameter."""
    several = importances["source"].nunique() > 1
    label = importances["study"].astype(str)
    if several:
        label = importances["source"].astype(str) + " | " + label
    table = importances.assign(label=label).pivot_table(index="label", columns="param",
                                                        values="importance", aggfunc="first")
    longest = max(len(str(i)) for i in table.index)
    with _style(), sns.axes_style("white"):
        fig = Figure(figsize=(min(2.5 + 0.075 * longest + 0.8 * table.shape[1], 18),
                              min(max(2.8, 1.4 + 0.3 * len(table)), 60)), layout="constrained")
        a = fig.subplots()
        sns.heatmap(table, ax=a, cmap="viridis", vmin=0, vmax=1, annot=table.shape[1] <= 12, fmt=".2f",
                    cbar_kws={"label": "importance (normalized)"}, annot_kws={"fontsize": 7})
        a.tick_params(axis="y", labelrotation=0)  # seaborn leaves a lone label vertical
        a.set_xlabel("parameter")
        a.set_ylabel("")
        a.set_title("Optuna parameter importances per study (tuning trials)")
        return to_uri(fig)
