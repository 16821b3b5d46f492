"""The report end to end: real Optuna storages (SQLite, journal) written with synthetic records that
follow the data contract, one real record from ``suite.train``, and the page in headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import reports.sections
from reports import build_report
from reports.blocks import readable
from reports.context import Context
from reports.load import load
from reports.render import render_html
from reports.sections import PAGE_ORDER, Section, discover, ordered, page
from suite.errors import SuiteError
from tests.report_data import CPU_HW, GPU_HW, expected_figures, write_arm, write_benchmark

# a figure whose layout collapsed is a broken figure
pytestmark = pytest.mark.filterwarnings("error:constrained_layout not applied:UserWarning")

SECTIONS = page()  # every module of reports/sections, in page order
TITLES = [f"{i}. {s.title}" for i, s in enumerate(SECTIONS, start=1)]
BLOCK_KINDS = {"text", "note", "sub", "code", "figure", "table"}
SCRIPT = "<script>alert(1)</script>"
BENCH_TASKS = ("digits", "sunspots")


class Sections(HTMLParser):
    """Headings and figure counts per ``<section id=...>`` of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.ids: list[str] = []
        self.figures: dict[str, int] = {}
        self.headings: list[str] = []
        self.scripts = 0
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.current = a.get("id")
            self.ids.append(self.current)
            self.figures[self.current] = 0
        elif tag == "svg" and "figure" in (a.get("class") or "") and self.current:
            assert a.get("role") == "img"  # an accessible image, named by its <title>
            self.figures[self.current] += 1
        elif tag == "img":
            raise AssertionError(f"figures are inline SVG, not images: {str(a)[:200]}")
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings[-1] += data


def parse(page: str) -> Sections:
    p = Sections()
    p.feed(page)
    return p


def section_of(page: str, slug: str) -> str:
    return page.split(f'id="{slug}"')[1].split("</section>")[0]


def board(page: str, slug: str = "leaderboard") -> dict[str, str]:
    """The HTML of each task's part of a section, keyed by the task (the heading's first word)."""
    parts = re.split(r"<h3>", section_of(page, slug))[1:]
    return {html.unescape(part.split(":", 1)[0]): part for part in parts}


def ranked(part: str) -> list[tuple[str, str]]:
    """(family, best arm) of each leaderboard row, in rank order."""
    return [(f, html.unescape(a)) for f, a in re.findall(r"<tr><td>\d+</td><td>([^<]+)</td><td>([^<]+)</td>", part)]


def assert_complete(page: str) -> Sections:
    """Every section heading and anchor in page order, no <script>, no section that failed to draw."""
    p = parse(page)
    assert p.headings == TITLES
    assert p.ids == [s.slug for s in SECTIONS]
    assert p.scripts == 0
    assert "could not be drawn" not in page
    return p


def once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once per test run, shared by the xdist workers (the pytest-xdist recipe).

    The worker is read from ``PYTEST_XDIST_WORKER`` (not the ``worker_id`` fixture, which is missing
    under ``-p no:xdist``)."""
    if os.environ.get("PYTEST_XDIST_WORKER", "master") == "master":
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent / name
    with FileLock(f"{root}.lock"):
        marker = root / "built"
        if marker.exists():
            return Path(marker.read_text())
        root.mkdir(exist_ok=True)
        out = build(root)
        marker.write_text(str(out))
        return out


@pytest.fixture(scope="session")
def bench_report(tmp_path_factory) -> Path:
    """The report of a run folder: 2 tasks (maximize, minimize) x 3 families x 4 arms, tune + confirm."""

    def build(root: Path) -> Path:
        run = root / "cpu-run"
        run.mkdir()
        write_benchmark(f"sqlite:///{run / 'optuna.db'}", tasks=BENCH_TASKS)
        (run / "profile.yaml").write_text("name: quick\ntasks: [digits, sunspots]\nepochs: 5\n")
        return build_report([str(run)], root / "report")

    return once(tmp_path_factory, "bench", build)


@pytest.fixture(scope="session")
def script_report(tmp_path_factory) -> Path:
    """A report whose study, task and family names are HTML."""
    return once(tmp_path_factory, "script", build_script_report)


def build_script_report(root: Path) -> Path:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from tests.report_data import make_record

    storage = optuna.storages.RDBStorage(f"sqlite:///{root / 'optuna.db'}")
    name = f"quick/{SCRIPT}/{SCRIPT}/adam/none"
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for k, v in {"task": SCRIPT, "family": SCRIPT, "optimizer": "adam", "regularizers": ["none"],
                 "direction": "maximize", "metric": "accuracy", "benchmark": "quick"}.items():
        study.set_user_attr(k, v)
    for i, phase in enumerate(["tune", "tune", "confirm", "confirm"]):
        rec = make_record(task=SCRIPT, family=SCRIPT, optimizer="adam", regs=["none"], seed=i, phase=phase,
                          quality=0.8 + 0.01 * i, lr=10 ** -(i + 1), activation=SCRIPT)
        rec["hardware"] = {**CPU_HW, "hostname": SCRIPT}
        study.add_trial(create_trial(value=0.8 + 0.01 * i, params={"lr": 10 ** -(i + 1)},
                                     distributions={"lr": FloatDistribution(1e-6, 1, log=True)},
                                     state=TrialState.COMPLETE, user_attrs={"record": rec, "phase": phase}))
    return build_report([str(root)], root / "report")


def test_report_has_every_section_and_the_expected_figures(bench_report):
    page = bench_report.read_text()
    p = assert_complete(page)
    expected = expected_figures(len(BENCH_TASKS))
    # the figures of every section this test knows; a section added as a file is checked by the
    # test generated over the discovered sections (it renders, in its place), not counted here
    assert {slug: n for slug, n in p.figures.items() if slug in expected} == expected
    assert set(expected) <= set(p.figures)
    # provenance: machine, profile.yaml, protocol, energy totals, trial counts
    for text in ("cpu: AMD EPYC 7B13", "profile.yaml in", "tune_trials", "tdp estimate x load", "PRUNED",
                 "abc1234", "CPU device-hours"):
        assert text in page, text
    prov = section_of(page, "provenance")
    # 24 arms x (4 tuning + 3 confirm) trials of 5 epochs, but each arm's pruned trial stopped after 2:
    # 144 x 5 + 24 x 2 = 768 epochs = 153.6 full trials, 48 of them epochs of pruned trials
    for label, value in (("trials", "168"), ("full-trial equivalents (sum of epochs run / epochs)", "153.6"),
                         ("epochs run (sum over trials)", "768"), ("epochs run by pruned trials", "48")):
        assert f"<tr><td>{label}</td><td>{value}</td></tr>" in prov, label
    # the protocol's new keys show, the nested pruner dict as text; the space per benchmark
    for text in ("<th scope=\"col\">space</th>", "<th scope=\"col\">sampler</th>", "<td>tpe</td>",
                 "<td>name=median, n_startup_trials=2, n_warmup_steps=1</td>",
                 "<tr><td>quick</td><td>core (168 trials)</td><td>core</td></tr>"):
        assert text in prov, text
    # the leaderboard ranks cnn first on digits (accuracy) and on sunspots (rmse, lower is better)
    board = page.split('id="leaderboard"')[1].split("</section>")[0]
    rows = re.findall(r"<tr><td>1</td><td>(\w+)</td>", board)
    assert rows == ["cnn", "cnn"]
    assert "lower is better" in board
    stats_section = page.split('id="statistics"')[1].split("</section>")[0]
    assert "NOT significant" in stats_section  # families: 2 blocks only (permutation p = 1/6)
    assert "no critical-difference diagram is drawn" in stats_section
    assert "permutation p = 0.167 (k = 3 families, n = 2 blocks)" in stats_section
    assert "optimizers differ significantly" in stats_section
    assert "suite dashboard" in page
    hw = page.split('id="hardware"')[1].split("</section>")[0]
    assert "<td>M1</td>" in hw and "<td>M2</td>" not in hw  # one machine, its own header and rows



@pytest.fixture(scope="session")
def bench_context(bench_report) -> Context:
    """The context of the bench report's data (the frames every section is drawn from)."""
    return Context(load([str(bench_report.parent.parent / "cpu-run")]))


@pytest.mark.parametrize("section", SECTIONS, ids=[s.slug for s in SECTIONS])
def test_every_section_renders_on_the_bench_data_in_its_place(section: Section, bench_context, bench_report):
    """Generated from reports/sections: a new section module is tested the moment it exists. It renders
    without raising on the bench data, into blocks the template knows, and the page shows it under its
    title and anchor at its place in the page order."""
    blocks = section.render(bench_context)
    assert blocks and all(b["kind"] in BLOCK_KINDS for b in blocks), blocks
    for b in blocks:
        if b["kind"] == "figure":
            assert b["svg"].startswith("<svg") and f"<title>{html.escape(b['alt'])}</title>" in b["svg"]
            assert "<text" in b["svg"]  # chart text is text, not glyph paths
        if b["kind"] == "table":
            assert all(len(row) == len(b["columns"]) for row in b["rows"])
    page_html = bench_report.read_text()
    p = parse(page_html)
    i = p.ids.index(section.slug)
    assert i == [s.slug for s in SECTIONS].index(section.slug)
    assert p.headings[i] == f"{i + 1}. {section.title}"
    assert "could not be drawn" not in section_of(page_html, section.slug)


def test_the_page_order_names_only_declared_sections_in_its_order():
    slugs = [s.slug for s in SECTIONS]
    assert [s for s in slugs if s in PAGE_ORDER] == PAGE_ORDER
    assert all(s.module == f"reports.sections.{s.slug}" for s in SECTIONS)  # one file per section


def _fake(slug: str, after: str | None = None) -> Section:
    return Section(slug, slug.upper(), lambda ctx: [], f"fake.{slug}", after)


def test_a_section_outside_the_page_order_goes_after_its_anchor_or_before_the_appendix():
    found = {s: _fake(s) for s in ("a", "b", "z", "plain")}
    found |= {"n2": _fake("n2", after="a"), "n1": _fake("n1", after="a"), "deep": _fake("deep", after="n1"),
              "last": _fake("last", after="z")}
    page_slugs = [s.slug for s in ordered(found, order=["a", "b", "z"], appendix=["z"])]
    assert page_slugs == ["a", "n1", "deep", "n2", "b", "plain", "z", "last"]
    with pytest.raises(ValueError, match=r"names \['c'\] but no section module declares them"):
        ordered(found, order=["a", "c"], appendix=[])
    with pytest.raises(ValueError, match="'lost': 'nowhere'"):
        ordered({**found, "lost": _fake("lost", after="nowhere")}, order=["a", "b", "z"], appendix=["z"])
    with pytest.raises(ValueError, match="not on the page"):  # two sections placed after each other
        ordered({"a": _fake("a"), "x": _fake("x", after="y"), "y": _fake("y", after="x")}, order=["a"],
                appendix=[])


@pytest.fixture
def sections_folder(tmp_path, monkeypatch):
    """A folder on the path of the package reports.sections: a module written there is one of its
    modules (and is forgotten afterwards)."""
    folder = tmp_path / "more_sections"
    folder.mkdir()
    monkeypatch.setattr(reports.sections, "__path__", [*reports.sections.__path__, str(folder)])
    yield folder
    for path in folder.glob("*.py"):
        sys.modules.pop(f"reports.sections.{path.stem}", None)
        if hasattr(reports.sections, path.stem):
            delattr(reports.sections, path.stem)


def test_one_new_file_in_reports_sections_adds_a_section_to_the_page(sections_folder, tmp_path):
    """A module dropped next to the others is found, placed after the section its AFTER names, and
    drawn; a module there that declares no section is an error."""
    import optuna

    (sections_folder / "zz_extra.py").write_text(
        'SLUG = "extra"\nTITLE = "An extra section"\nAFTER = "leaderboard"\n\n\n'
        'def render(ctx):\n    return [{"kind": "text", "text": f"{len(ctx.tasks)} tasks here"}]\n')
    run = tmp_path / "run"
    run.mkdir()
    optuna.storages.RDBStorage(f"sqlite:///{run / 'optuna.db'}")
    html_page = render_html(load([str(run)]))
    p = parse(html_page)
    at = PAGE_ORDER.index("leaderboard") + 1
    assert p.ids == [*PAGE_ORDER[:at], "extra", *PAGE_ORDER[at:]]
    assert p.headings[at] == f"{at + 1}. An extra section" and "0 tasks here" in section_of(html_page, "extra")
    (sections_folder / "zz_broken.py").write_text("TITLE = 'no slug'\n")
    with pytest.raises(ValueError, match="reports.sections.zz_broken must declare SLUG"):
        discover()


def test_leaderboard_ranks_by_the_one_selection_rule_and_names_the_findings_winner(bench_report):
    """Independently of reports.stats: each family's arm is the one with the best mean confirm
    validation value, the rows are ranked by that value (not by test), and rank 1 is the family the
    findings recommend: one winner per task."""
    trials = load([str(bench_report.parent.parent / "cpu-run")]).trials
    confirm = trials[trials["phase"] == "confirm"]
    boards = board(bench_report.read_text())
    found = json.loads((bench_report.parent / "findings.json").read_text())
    for task in ("digits", "sunspots"):
        sign = 1 if task == "digits" else -1  # accuracy up, rmse down
        chosen = ranked(boards[task])
        keys = {}
        for family, arm in chosen:
            c = confirm[(confirm["task"] == task) & (confirm["family"] == family)]
            by_val = c.groupby(c["optimizer"] + " / " + c["regularizers"])["val"].mean()
            assert arm == (by_val.idxmax() if sign > 0 else by_val.idxmin()), (task, family)
            keys[family] = by_val[arm]
        order = sorted(keys, key=lambda f: -sign * keys[f])
        assert [f for f, _ in chosen] == order
        (rec,) = [f for f in found if f["task"] == task and f["kind"] in ("recommendation", "no recommendation")]
        assert rec["kind"] == "recommendation" and rec["evidence"]["family"] == order[0]


def test_a_crafted_study_where_the_old_rules_named_two_winners_names_one(tmp_path):
    """mlp has the better confirm validation, cnn the better test mean (not significantly, 3 seeds):
    the old leaderboard ranked cnn first by test while the findings recommended mlp. Now the
    leaderboard ranks mlp first, the findings recommend mlp, and no sentence says cnn beats it."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    write_arm(storage, task="digits", family="mlp", optimizer="adam", regs=["none"], tune=[0.80],
              confirm=[(0.91, 0.86), (0.92, 0.88), (0.90, 0.87)])
    write_arm(storage, task="digits", family="cnn", optimizer="adam", regs=["none"], tune=[0.95],
              confirm=[(0.89, 0.90), (0.88, 0.86), (0.90, 0.89)])
    page = build_report([str(tmp_path)], tmp_path / "report").read_text()
    assert_complete(page)
    assert [f for f, _ in ranked(board(page)["digits"])] == ["mlp", "cnn"]
    found = json.loads((tmp_path / "report" / "findings.json").read_text())
    recs = [f for f in found if f["kind"] in ("recommendation", "no recommendation")]
    assert len(recs) == 1 and recs[0]["evidence"]["family"] == "mlp"
    assert not any(f["kind"] == "difference" for f in found)
    assert "On digits, use mlp" in section_of(page, "findings")


def test_no_family_is_recommended_when_test_significantly_contradicts_validation(tmp_path):
    """Validation chooses mlp, but on 8 seeds cnn is ahead on test in every one: the report
    recommends none rather than two."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    write_arm(storage, task="digits", family="mlp", optimizer="adam", regs=["none"], tune=[0.8],
              confirm=[(0.95, 0.80 + 0.001 * i) for i in range(8)])
    write_arm(storage, task="digits", family="cnn", optimizer="adam", regs=["none"], tune=[0.8],
              confirm=[(0.90, 0.85 + 0.002 * i) for i in range(8)])
    page = build_report([str(tmp_path)], tmp_path / "report").read_text()
    found = json.loads((tmp_path / "report" / "findings.json").read_text())
    (rec,) = [f for f in found if f["subject"] == "family" and "recommend" in f["kind"]]
    assert rec["kind"] == "no recommendation" and rec["evidence"]["beaten_by"] == "cnn"
    assert "no family is recommended" in rec["text"] and "On digits, use" not in page


def test_families_are_compared_on_their_common_arms(tmp_path):
    """mlp and cnn ran 4 arms, rnn only adam / none: every family is ranked by its adam / none arm."""
    run = tmp_path / "run"
    run.mkdir()
    url = f"sqlite:///{run / 'optuna.db'}"
    write_benchmark(url, tasks=("digits",), families=("mlp", "cnn"))
    write_benchmark(url, tasks=("digits",), families=("rnn",), arms=[("adam", ["none"])])
    page = build_report([str(run)], tmp_path / "report").read_text()
    assert_complete(page)
    sentence = ("Families compared on their common arms: adam / none; cnn and mlp were also tuned with other "
                "arms (cnn: 4 in all, mlp: 4 in all), shown in the Optimizers and Regularizers sections.")
    for slug in ("leaderboard", "architectures"):
        assert html.escape(sentence, quote=False) in board(page, slug)["digits"], slug
    assert sorted(ranked(board(page)["digits"])) == [("cnn", "adam / none"), ("mlp", "adam / none"),
                                                     ("rnn", "adam / none")]
    # the other arms still show where they are compared: mlp's adam / dropout in Regularizers
    assert "<tr><td>mlp</td><td>adam</td><td>dropout</td>" in section_of(page, "regularizers")


def test_leaderboard_never_chooses_on_tuning_luck_or_test(tmp_path):
    """Hand-set values: on digits mlp's confirm validation favours sgd / none (its test too), its
    tuning favours adam / none; mlp's best of all, adam / dropout, is no common arm. On sunspots the
    two families share no arm and cnn has no validation value anywhere."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    for opt, regs, tune, conf in (("adam", ["none"], [0.90, 0.80], (0.85, 0.99)),
                                  ("sgd", ["none"], [0.88], (0.99, 0.86)),
                                  ("adam", ["dropout"], [0.995], (0.995, 0.90))):
        write_arm(storage, task="digits", family="mlp", optimizer=opt, regs=regs, tune=tune, confirm=[conf] * 2)
    for opt, tune, conf in (("adam", [0.70], (0.75, 0.75)), ("sgd", [0.60], (0.65, 0.65))):
        write_arm(storage, task="digits", family="rnn", optimizer=opt, regs=["none"], tune=tune, confirm=[conf] * 2)
    write_arm(storage, task="sunspots", family="mlp", optimizer="adam", regs=["none"], tune=[0.5],
              confirm=[(0.5, 0.5)] * 2)
    write_arm(storage, task="sunspots", family="cnn", optimizer="sgd", regs=["none"], tune=[None],
              confirm=[(None, 0.1)] * 2)
    page = build_report([str(tmp_path)], tmp_path / "report").read_text()
    assert_complete(page)
    boards = board(page)
    assert ranked(boards["digits"]) == [("mlp", "sgd / none"), ("rnn", "adam / none")]
    assert "common arms: adam / none, sgd / none; mlp was also tuned with other arms (mlp: 3 in all)" in \
        boards["digits"]
    assert "confirm val (chooses)" in boards["digits"]
    # cnn's test mean (0.1 rmse) would win, but it has no validation value: not ranked, and said so
    assert ranked(boards["sunspots"]) == [("mlp", "adam / none")]
    assert "The families share no arm" in boards["sunspots"] and "(cnn 1 arm, mlp 1 arm)" in boards["sunspots"]
    assert "Not ranked: cnn" in boards["sunspots"]
    assert ranked(board(page, "architectures")["sunspots"]) == []  # a figure, no table
    assert "Not ranked: cnn" in board(page, "architectures")["sunspots"]
    assert "Not shown (no confirm validation value" in board(page, "optimizers")["sunspots"]


def test_a_merged_report_of_two_budgets_keeps_two_arms_and_never_compares_across_them(tmp_path):
    """The same two arms run at 5 and at 10 epochs, in two run folders: the report shows two
    budgets of digits, each with its own leaderboard and findings; nothing pools the 5-epoch and
    10-epoch runs (n stays 3 per arm) and no test sets a 5-epoch arm against a 10-epoch one."""
    import optuna

    from tests.report_data import PROTOCOL

    folders = []
    for epochs, shift in ((5, 0.0), (10, 0.05)):
        folder = tmp_path / f"e{epochs}"
        folder.mkdir()
        storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
        for family, q in (("mlp", 0.80), ("cnn", 0.85)):
            write_arm(storage, task="digits", family=family, optimizer="adam", regs=["none"], tune=[q],
                      confirm=[(q + shift + d, q + shift + d) for d in (0.0, 0.01, -0.01)],
                      protocol={**PROTOCOL, "epochs": epochs})
        folders.append(str(folder))
    page = build_report(folders, tmp_path / "report").read_text()
    assert_complete(page)
    found = json.loads((tmp_path / "report" / "findings.json").read_text())
    tasks = sorted({f["task"] for f in found})
    assert len(tasks) == 2 and all(t.startswith("digits [") for t in tasks)
    assert any("5 epochs" in t for t in tasks) and any("10 epochs" in t for t in tasks)
    recs = [f for f in found if f["kind"] == "recommendation"]
    assert len(recs) == 2 and all(f["evidence"]["n"] == 3 for f in recs)  # never 6: not pooled
    pairs = [f for f in found if f["subject"] == "family" and "a" in f["evidence"]]
    assert len(pairs) == 2 and all({f["evidence"]["a"], f["evidence"]["b"]} == {"mlp", "cnn"} for f in pairs)
    assert "digits ran with 2 budgets" in section_of(page, "findings")


def test_a_failed_seed_lowers_its_arm_in_the_report_and_is_named(tmp_path):
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    write_arm(storage, task="digits", family="mlp", optimizer="adam", regs=["none"], tune=[0.8],
              confirm=[(0.8, 0.8)] * 3)
    write_arm(storage, task="digits", family="cnn", optimizer="adam", regs=["none"], tune=[0.9],
              confirm=[(0.9, 0.9), (0.91, 0.91), (None, None)], statuses=["complete", "complete", "diverged"])
    page = build_report([str(tmp_path)], tmp_path / "report").read_text()
    found = json.loads((tmp_path / "report" / "findings.json").read_text())
    (pair,) = [f for f in found if f["subject"] == "family" and "a" in f["evidence"]]
    assert pair["evidence"]["mean_a"] == pytest.approx(0.8) and pair["evidence"]["b"] == "cnn"
    assert pair["evidence"]["mean_b"] == pytest.approx(1.81 / 3)  # the diverged seed scores 0
    assert "cnn: 1 of 3 runs failed (scored at the task's worst value)" in pair["text"]
    (rec,) = [f for f in found if f["kind"] == "recommendation"]
    assert rec["evidence"]["family"] == "mlp"  # cnn's validation mean counts its failure too
    assert "1 of 3" in section_of(page, "leaderboard")


def test_protocol_values_are_readable_text():
    assert readable({"name": "median", "kwargs": {"n_startup_trials": 2}, "grid": [1, 2.5]}) == \
        "name=median, kwargs=(n_startup_trials=2), grid=[1, 2.5]"
    assert readable(["a", "b"]) == "a, b" and readable([]) == "-" and readable(None) == "-"


def test_two_machines_give_the_hardware_section_side_by_side(tmp_path):
    journal = tmp_path / "gpu.jsonl"
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    arms = [("adam", ["none"]), ("sgd", ["none"])]
    write_benchmark(JournalStorage(JournalFileBackend(str(journal))), tasks=("digits",), families=("mlp", "cnn"),
                    arms=arms, device="cuda", hardware=GPU_HW, speed=4.0, benchmark="gpu")
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    write_benchmark(f"sqlite:///{cpu / 'optuna.db'}", tasks=("digits",), families=("mlp", "cnn"), arms=arms)
    # the same storage twice (folder and URL) is read once
    out = build_report([str(cpu), str(journal), f"sqlite:///{cpu / 'optuna.db'}"], tmp_path / "report")
    page = out.read_text()
    p = assert_complete(page)
    assert p.figures["hardware"] == 1
    hw = page.split('id="hardware"')[1].split("</section>")[0]
    assert "cpu: AMD EPYC 7B13" in hw and "cuda: NVIDIA H100 80GB HBM3" in hw  # M1 and M2 headers
    assert "samples/s" in hw and "J / 1k samples" in hw and "steps to target" in hw
    assert hw.count("<tr><td>mlp / adam / none</td>") == 2  # one row per machine
    assert "GPU-hours" in page
    # family Friedman needs 3 families: it says why it cannot run
    assert "cannot run for families" in page
    assert p.figures["statistics"] == 0


def test_names_from_data_are_escaped(script_report):
    page = script_report.read_text()
    assert_complete(page)
    assert SCRIPT not in page
    assert html.escape(SCRIPT, quote=False) in page


def test_bad_sources_raise_clear_errors_without_secrets(tmp_path):
    with pytest.raises(SuiteError, match="not a run folder") as err:
        build_report([str(tmp_path / "nope")], tmp_path / "out")
    with pytest.raises(SuiteError, match=r"user:\*\*\*@127.0.0.1") as err:
        build_report(["postgresql+psycopg2://user:s3cret@127.0.0.1:1/db"], tmp_path / "out")
    assert "s3cret" not in str(err.value)


def test_empty_storage_gives_a_page_that_says_so(tmp_path, capsys):
    import optuna

    from reports.__main__ import main

    run = tmp_path / "run"
    run.mkdir()
    optuna.storages.RDBStorage(f"sqlite:///{run / 'optuna.db'}")
    assert main([str(run), "--out", str(tmp_path / "report")]) == 0
    page = Path(capsys.readouterr().out.strip()).read_text()
    p = assert_complete(page)
    assert sum(p.figures.values()) == 0
    assert "The sources hold no trials." in page and "The sources hold no Optuna studies." in page
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_report_from_real_training_records(tmp_path):
    """A real record from suite.train, a failed one and a RUNNING trial without a record."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from suite.train import TrialConfig, train

    rec = train(TrialConfig(task="digits", family="mlp", epochs=2, device="cpu"))
    failed = {**{k: rec[k] for k in ("task", "family", "optimizer", "regularizers", "params", "seed")},
              "status": "failed", "error": "RuntimeError: boom"}
    run = tmp_path / "run"
    run.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{run / 'optuna.db'}", study_name="quick/digits/mlp/adam/none",
                                direction="maximize")
    study.set_user_attr("task", "digits")
    dist = {"lr": FloatDistribution(1e-5, 1, log=True)}
    value = rec["metrics"]["val/accuracy"]
    for phase in ("tune", "confirm"):
        study.add_trial(create_trial(value=value, params={"lr": 1e-3}, distributions=dist,
                                     user_attrs={"record": {**rec, "phase": phase}, "phase": phase}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 0.5}, distributions=dist,
                                 user_attrs={"record": failed, "phase": "tune"}))
    study.add_trial(create_trial(state=TrialState.RUNNING, params={"lr": 0.1}, distributions=dist))
    page = build_report([str(run)], tmp_path / "report").read_text()
    p = assert_complete(page)
    assert p.figures["architectures"] == 1 and p.figures["footprint"] == 1
    assert "No trial recorded energy" in page  # tracking is off in this record
    assert "FAIL" in page and "RUNNING" in page
    assert "needs &gt;= 2 completed tuning trials" in page


# --------------------------------------------------------------------------- browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (skip only if that fails)."""
    if not Path(CHROMIUM).exists():
        if shutil.which("apt-get") is None:
            pytest.skip("Chromium is missing and apt-get is not available to install it")
        try:
            for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
                subprocess.run(cmd, check=True, capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"could not install Debian chromium with apt-get: {exc}")
        if not Path(CHROMIUM).exists():
            pytest.skip("apt-get install chromium did not provide /usr/bin/chromium")
    return CHROMIUM


def open_page(chromium: str, report: Path, tmp_path: Path, screenshot: str):
    """Load ``report`` in headless Chromium; return what the page did."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    profile = tmp_path / f"profile-{screenshot}"
    profile.mkdir()
    seen = {"requests": [], "errors": [], "dialogs": []}
    with sync_api.sync_playwright() as pw:
        # Playwright passes the (new, empty) user_data_dir as --user-data-dir itself
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.goto(report.resolve().as_uri(), wait_until="load")
            seen["headings"] = page.locator("h2").all_inner_texts()
            seen["figures"] = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('section')]
                .map(s => [s.id, s.querySelectorAll('img.figure, svg').length]))""")
            seen["broken"] = page.evaluate("""() => [...document.images]
                .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)""")
            # chart text is real text: select every <text> of the page's figures and read the selection
            seen["chart_text"] = page.evaluate("""() => {
                const figures = [...document.querySelectorAll('svg.figure')];
                const sel = window.getSelection();
                const selected = figures.map(f => {
                    const range = document.createRange();
                    range.selectNodeContents(f);
                    sel.removeAllRanges();
                    sel.addRange(range);
                    return sel.toString();
                });
                return {n: document.querySelectorAll('svg.figure text').length, selected: selected.join(' '),
                        named: figures.every(f => f.querySelector('title'))};
            }""")
            seen["text"] = page.locator("body").inner_text()
            seen["findings"] = page.locator("section#findings").inner_text()
            shot = tmp_path / f"{screenshot}.png"
            page.screenshot(path=str(shot), full_page=True)
            seen["screenshot"] = shot
        finally:
            ctx.close()
    return seen


@pytest.mark.slow
def test_report_in_headless_chromium(chromium, bench_report, script_report, tmp_path):
    seen = open_page(chromium, bench_report, tmp_path, "report")
    assert seen["errors"] == []
    assert [u for u in seen["requests"] if not u.startswith("data:")] == [bench_report.resolve().as_uri()]
    assert seen["headings"] == TITLES and TITLES[0] == "1. Findings"
    assert "On digits, use " in seen["findings"] and "[budget per arm: " in seen["findings"]
    assert " beats " in seen["findings"] or "not distinguishable" in seen["findings"]
    assert "Optimizers, within each family:" in seen["findings"]
    assert seen["figures"] == expected_figures(len(BENCH_TASKS))
    assert seen["figures"]["tuning"] == len(BENCH_TASKS)  # the tuning curves drew
    assert seen["broken"] == []
    assert seen["chart_text"]["n"] > 100 and seen["chart_text"]["named"], seen["chart_text"]["n"]
    assert "epoch" in seen["chart_text"]["selected"]  # an axis label, selected as text
    assert seen["screenshot"].stat().st_size > 50_000
    assert bench_report.stat().st_size < 1_000_000  # 24 arms: inline SVG text, no base64, no glyph paths


    seen = open_page(chromium, script_report, tmp_path, "script")
    assert seen["dialogs"] == [] and seen["errors"] == []
    assert SCRIPT in seen["text"]  # shown as text, not run
    assert seen["broken"] == []


@pytest.mark.slow
def test_report_has_no_html_validate_error(bench_report):
    """html-validate (npm, recommended rules: HTML, WCAG) finds no error in the page."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed")
    done = subprocess.run([npx, "--yes", "html-validate@8", str(bench_report)], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0 and "error" not in done.stdout:  # npm could not fetch the validator
        pytest.skip(f"html-validate could not run: {(done.stderr or done.stdout)[-300:]}")
    assert done.returncode == 0, done.stdout[-3000:]


def test_findings_come_first_with_a_difference_and_an_indistinguishable_pair(tmp_path):
    """3 families on 2 shared tasks, 10 confirm seeds: cnn is ahead of mlp on every seed (significant
    after Holm over the 6 family tests of the report), rnn and mlp overlap (not distinguishable)."""
    import optuna

    from reports import build_report
    from tests.report_data import write_arm

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'f.db'}")
    base = [0.80, 0.82, 0.81, 0.805, 0.815, 0.79, 0.825, 0.80, 0.81, 0.82]
    tests = {"mlp": base, "cnn": [v + 0.1 + 0.002 * (i % 3) for i, v in enumerate(base)],
             "rnn": [v + (0.01 if i % 2 else -0.012) for i, v in enumerate(base)]}
    for task in ("digits", "mnist1d"):
        for family, values in tests.items():
            write_arm(storage, task=task, family=family, optimizer="adam", regs=["none"],
                      tune=[v - 0.01 for v in values], confirm=[(v, v) for v in values])
    page = build_report([f"sqlite:///{tmp_path / 'f.db'}"], tmp_path / "report")
    found = json.loads((tmp_path / "report" / "findings.json").read_text())
    kinds = {(f["task"], f["kind"]) for f in found}
    assert ("digits", "recommendation") in kinds and ("mnist1d", "difference") in kinds
    diff = next(f for f in found if f["task"] == "digits" and f["kind"] == "difference"
                and f["evidence"]["a"] == "cnn" and f["evidence"]["b"] == "mlp")
    assert diff["text"].startswith("cnn beats mlp on digits by 0.102 accuracy over 10 seeds of one tuning "
                                   "study (95% CI 0.101..0.103; exact sign-flip p = 0.00195, 0.0117 after "
                                   "Holm over the 6 tests of families)")
    assert "P(cnn > mlp) = 1 over paired runs (ahead in every unit)" in diff["text"]
    assert diff["evidence"]["p"] == pytest.approx(2 / 2**10) and diff["evidence"]["p_holm"] < 0.05
    assert "3 seeds" in diff["budget"]["budget"]  # the protocol written on the studies
    same = next(f for f in found if f["task"] == "digits" and {f["evidence"].get("a"), f["evidence"].get("b")}
                == {"rnn", "mlp"})
    assert same["kind"] == "indistinguishable" and "not distinguishable on digits at this budget" in same["text"]
    assert "80% chance to detect a difference of " in same["text"]
    rec = next(f for f in found if f["task"] == "digits" and f["kind"] == "recommendation")
    assert rec["evidence"]["family"] == "cnn" and "[budget per arm: " in rec["text"]
    html = page.read_text()
    assert parse(html).headings[:2] == ["1. Findings", "2. Provenance"]
    assert "cnn beats mlp on digits" in html and "not distinguishable on digits" in html
    # the family Friedman test runs on the 3 families x 2 tasks (and cannot reject with 2 blocks)
    stats_section = section_of(html, "statistics")
    assert "(k = 3 families, n = 2 blocks)" in stats_section and "cannot run for families" not in stats_section


def test_findings_compare_optimizers_and_regularizers_within_a_family(bench_report):
    found = json.loads((bench_report.parent / "findings.json").read_text())
    subjects = {f["subject"] for f in found}
    assert subjects == {"family", "optimizer", "regularizers"}
    # 3 optimizers per family -> 3 pairs per (task, family); adam none vs dropout -> 1 pair
    opt = [f for f in found if f["subject"] == "optimizer" and f["evidence"]["where"] == "digits / cnn"]
    assert len(opt) == 3 and all(f["kind"] in ("difference", "indistinguishable") for f in opt)
    reg = [f for f in found if f["subject"] == "regularizers" and f["evidence"]["where"] == "digits / cnn / adam"]
    assert len(reg) == 1 and {reg[0]["evidence"]["a"], reg[0]["evidence"]["b"]} == {"none", "dropout"}
    assert all("[budget per arm: " in f["text"] for f in found)
    section = section_of(bench_report.read_text(), "findings")
    assert "Optimizers, within each family:" in section and "Regularizer sets, within each family" in section
    # tuning curves: one figure per task, the optimism table
    tuning = section_of(bench_report.read_text(), "tuning")
    assert "<th scope=\"col\">optimism</th>" in tuning and "<th scope=\"col\">tuning trials</th>" in tuning


def test_a_figure_whose_layout_collapses_is_still_drawn():
    from reports.figures import new_figure, to_uri

    fig, ax = new_figure(1, 1, width=0.6, height=0.5)  # far too small for its labels
    ax[0, 0].plot([0, 1], [0, 1], label="a very long legend entry " * 4)
    ax[0, 0].set_xlabel("an axis label that cannot fit in a figure this small " * 3)
    ax[0, 0].legend()
    svg = to_uri(fig)  # the module's filter turns a collapse warning into an error: none escapes
    assert svg.startswith("<svg") and "an axis label" in svg
