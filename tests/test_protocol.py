"""The tuning protocol (suite/tune.py, README "The protocol"): defaults first, search spaces a budget
can cover, one sampler seed per profile, no pruning on small budgets, resume without repeats.

Generated from the registries: a new optimizer, regularizer or family is checked the moment it is
registered.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from suite.accounting import phase_of
from suite.benchmark import run_benchmark
from suite.errors import SuiteError
from suite.families import FAMILIES, families_for
from suite.optimizers import OPTIMIZERS
from suite.profile import MIN_TRIALS_TO_PRUNE, load_profile, parse_profile
from suite.regularizers import REGULARIZERS
from suite.search import defaults_point, make_pruner, tuned_params
from suite.storage import open_storage
from suite.tune import ArmRunner, open_study
from tasks import TASKS
from tests.arms import ArmStudy, arm_studies, record

TINY = Path(__file__).parent / "profiles" / "tiny.yaml"


def studies(url: str) -> list[ArmStudy]:
    """Every arm study, its confirm runs among its trials."""
    return arm_studies(url)


def profile(**over) -> dict:
    """A one-arm-per-optimizer profile on digits, tiny network, seconds per trial."""
    data = {"name": "proto", "tune_trials": 4, "confirm_seeds": 0, "epochs": 1,
            "tracking": {"wandb": False, "energy": False},
            "matrix": [{"tasks": ["digits"], "families": ["mlp"], "optimizers": ["adam", "sgd"],
                        "params": {"width": 16, "depth": 1, "batch_size": 128}}]}
    return {**data, **over}


# ------------------------------------------------------------------------------- search spaces


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_lr_range_has_its_default_in_the_middle_third_on_a_log_scale(name):
    (lr,) = [p for p in OPTIMIZERS.get(name).params if p.name == "lr"]
    lo, hi = lr.search_range()
    position = (math.log(lr.default) - math.log(lo)) / (math.log(hi) - math.log(lo))
    assert lr.log and lr.core
    assert 1 / 3 <= position <= 2 / 3, f"{name}: lr default {lr.default} at {position:.2f} of [{lo}, {hi}]"
    assert 5 <= hi / lr.default <= 50 and 5 <= lr.default / lo <= 50  # a factor ~10-30 either way


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_momentum_and_betas_are_tuned_as_one_minus_on_a_log_scale(name):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    for p in OPTIMIZERS.get(name).params:
        if p.name in ("momentum", "beta1", "beta2", "alpha") and p.default > 0:
            assert p.complement, p.name
            value = p.suggest(trial)
            dist = trial.distributions[f"1-{p.name}"]
            assert dist.log and dist.low == pytest.approx(1 - p.search[1]) and dist.high == pytest.approx(
                1 - p.search[0])
            assert p.search[0] <= value <= p.search[1]
            assert 1 - p.default == pytest.approx(p.to_optuna(p.default))


def test_decoupled_weight_decay_has_its_own_range():
    from suite.config import declared_params

    task, fam, l2 = TASKS.get("digits"), FAMILIES.get("mlp"), REGULARIZERS.get("l2")
    by_opt = {o: next(p for p in declared_params(task, fam, OPTIMIZERS.get(o), [l2]) if p.name == "weight_decay")
              for o in ("adam", "adamw", "momentum")}
    assert by_opt["adamw"].search_range() == (1e-3, 1e-1) and by_opt["adamw"].default == 1e-2
    assert by_opt["adam"] == by_opt["momentum"] and by_opt["adam"].default == 1e-4
    assert by_opt["adam"].search_range()[1] <= 1e-3  # coupled L2 at AdamW's 1e-2 would swamp the gradient


@pytest.mark.parametrize("name", FAMILIES.names())
def test_each_family_has_at_most_two_core_size_params(name):
    fam = FAMILIES.get(name)
    task = TASKS.get(next(t for t in TASKS.names() if name in families_for(TASKS.get(t))))
    core = [p.name for p in fam.declared(task) if p.core]
    assert len(core) <= 2, core
    assert all(p.tune for p in fam.declared(task) if p.core)


@pytest.mark.parametrize("name", [n for n in REGULARIZERS.names()
                                  if any(p.tune for p in REGULARIZERS.get(n).params)])
def test_every_regularizer_strength_is_core(name):
    assert all(p.core for p in REGULARIZERS.get(name).params if p.tune)


def test_core_space_is_lr_regularizer_strengths_and_two_sizes_full_is_everything():
    arm = parse_profile(profile(matrix=[{"tasks": ["mnist1d"], "families": ["cnn"], "optimizers": ["momentum"],
                                         "regularizers": [["dropout", "l2"]]}])).arms[0]
    core = {p.name for p in tuned_params(arm, "core")}
    full = {p.name for p in tuned_params(arm, "full")}
    assert core == {"lr", "blocks", "channels", "dropout", "weight_decay"}
    assert full >= core | {"momentum", "batch_size", "schedule", "kernel", "pool", "head", "activation"}
    fixed = parse_profile(profile(matrix=[{"tasks": ["mnist1d"], "families": ["cnn"], "optimizers": ["adam"],
                                           "params": {"channels": 16}}])).arms[0]
    assert {p.name for p in tuned_params(fixed, "core")} == {"lr", "blocks"}


def test_space_defaults_to_core_below_16_trials_and_is_validated():
    assert parse_profile(profile(tune_trials=8)).space == "core"
    assert parse_profile(profile(tune_trials=16)).space == "full"
    assert parse_profile(profile(tune_trials=4, space="full")).space == "full"
    with pytest.raises(SuiteError, match="space 'wide' is not valid; allowed: core, full"):
        parse_profile(profile(space="wide"))
    for name in ("quick", "standard", "full"):
        p = load_profile(name)
        assert p.space == ("core" if p.tune_trials < 16 else "full")


# ---------------------------------------------------------------------------------- pruning


def test_no_pruning_below_ten_trials():
    assert parse_profile(profile(tune_trials=MIN_TRIALS_TO_PRUNE - 1)).pruner == "none"
    assert parse_profile(profile(tune_trials=MIN_TRIALS_TO_PRUNE)).pruner == "median"
    with pytest.raises(SuiteError, match="pruner 'median' needs tune_trials >= 10, got 8"):
        parse_profile(profile(tune_trials=8, pruner="median"))
    for name in ("quick", "standard"):
        p = load_profile(name)
        assert p.tune_trials >= MIN_TRIALS_TO_PRUNE or p.pruner == "none"


def test_median_pruner_waits_for_five_trials_and_a_third_of_the_epochs():
    pruner = make_pruner("median", 20)
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_startup_trials >= 5 and pruner._n_warmup_steps >= 20 / 3
    assert isinstance(make_pruner("none", 20), optuna.pruners.NopPruner)


# ------------------------------------------------------------------------------ defaults first


def test_trial_zero_of_every_arm_is_its_defaults(tmp_path):
    prof = parse_profile(profile(matrix=[{"tasks": ["digits"], "families": ["mlp"],
                                          "optimizers": ["adam", "momentum"], "regularizers": [["dropout"]],
                                          "params": {"width": 16, "batch_size": 128}}]))
    result = run_benchmark(prof, out_dir=tmp_path / "run", report=False)
    for study in studies(result.storage):
        trials = sorted(study.get_trials(), key=lambda t: t.number)
        first = trials[0]
        arm = next(a for a in prof.arms if a.study_name("proto") == study.study_name)
        assert first.user_attrs.get("defaults") is True and record(first)["defaults"] is True
        assert first.params == pytest.approx(defaults_point(arm, "core"))
        rec = record(first)
        assert rec["params"]["lr"] == OPTIMIZERS.get(arm.optimizer).params[0].default
        assert rec["params"]["dropout"] == 0.2 and rec["params"]["depth"] == 3
        assert rec["space"] == "core"
        assert not any(t.user_attrs.get("defaults") for t in trials[1:])
        assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == len(trials)
        best = max(t.value for t in trials if t.value is not None)
        assert best >= first.value  # a tuned arm never ends below its defaults on validation
        assert study.user_attrs["protocol"]["space"] == "core"
        assert "lr: log" in " ".join(study.user_attrs["protocol"]["tuned"])


def test_a_second_defaults_trial_of_a_racing_worker_is_surplus(tmp_path):
    prof = parse_profile(profile(tune_trials=2, matrix=[{"tasks": ["digits"], "families": ["mlp"],
                                                         "optimizers": ["adam"],
                                                         "params": {"width": 16, "depth": 1}}]))
    store = open_storage(f"sqlite:///{tmp_path / 'x.db'}")
    study = open_study(store, prof, prof.arms[0])
    study.enqueue_trial(defaults_point(prof.arms[0], "core"), user_attrs={"phase": "tune", "defaults": True})
    runner = ArmRunner(prof, prof.arms[0], study, device="cpu", storage=store)
    while runner.step() != "done":
        pass
    trials = study.get_trials()
    assert sum(bool(t.user_attrs.get("defaults")) and not t.user_attrs.get("surplus") for t in trials) == 1
    assert sum(phase_of(t) == "tune" and t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 2


# ------------------------------------------------------------------------------------ sampling


def unit(study: optuna.Study, name: str) -> list[float]:
    """Each non-defaults tuning trial's ``name`` as a position in its log range (0..1)."""
    out = []
    for t in sorted(study.get_trials(), key=lambda t: t.number):
        if phase_of(t) == "tune" and not t.user_attrs.get("defaults"):
            d = t.distributions[name]
            out.append((math.log(t.params[name]) - math.log(d.low)) / (math.log(d.high) - math.log(d.low)))
    return out


def test_one_sampler_seed_gives_every_arm_the_same_quasi_random_draws(tmp_path):
    data = profile(tune_trials=5, matrix=[{"tasks": ["digits"], "families": ["mlp"],
                                           "optimizers": ["adam", "sgd", "adagrad"],
                                           "params": {"width": 16, "depth": 1, "batch_size": 128}}])
    result = run_benchmark(parse_profile(data), out_dir=tmp_path / "run", report=False)
    draws = {s.study_name: unit(s, "lr") for s in studies(result.storage)}
    first, *others = draws.values()
    assert len(first) == 4
    for other in others:
        assert other == pytest.approx(first)  # same Sobol points in every arm's own lr range
    assert len({round(x, 6) for x in first}) == 4  # and they are spread, not repeated
    again = run_benchmark(parse_profile({**data, "sampler_seed": 1}), out_dir=tmp_path / "other", report=False)
    assert unit(studies(again.storage)[0], "lr") != pytest.approx(first)


def test_resume_draws_no_params_twice(tmp_path):
    """A run stopped after some trials, then resumed by a new process (new samplers): the Sobol
    sequence continues and TPE is not re-seeded onto an earlier stream (optuna#3255)."""
    data = profile(tune_trials=12, pruner="none", matrix=[{"tasks": ["digits"], "families": ["mlp"],
                                                           "optimizers": ["adam"],
                                                           "params": {"width": 16, "batch_size": 128}}])
    prof = parse_profile(data)
    url = f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"
    (tmp_path / "run").mkdir()
    for stop_after in (3, 11):  # one stop inside the Sobol start-up, one inside TPE
        store = open_storage(url)
        study = open_study(store, prof, prof.arms[0])
        runner = ArmRunner(prof, prof.arms[0], study, device="cpu", storage=store)
        while sum(phase_of(t) == "tune" and t.state.is_finished() for t in study.get_trials()) < stop_after:
            runner.step()
    run_benchmark(prof, out_dir=tmp_path / "run", report=False)
    (study,) = studies(url)
    tune = [t for t in study.get_trials() if phase_of(t) == "tune"]
    assert len(tune) == 12
    seen = [json.dumps(t.params, sort_keys=True) for t in tune]
    assert len(set(seen)) == len(seen), "a resumed run drew params twice"


# -------------------------------------------------------------------------- confirm candidates


def test_the_defaults_are_confirmed_beside_the_best_and_the_better_on_confirm_val_is_chosen(tmp_path):
    data = profile(tune_trials=4, confirm_seeds=2, matrix=[{
        "tasks": ["digits"], "families": ["mlp"], "optimizers": ["sgd", "adam"],
        "params": {"width": 16, "depth": 1, "batch_size": 128}}])
    prof = parse_profile(data)
    assert prof.confirm_candidates == 2  # the default
    result = run_benchmark(prof, out_dir=tmp_path / "run", report=False)
    for study in studies(result.storage):
        trials = study.get_trials()
        tune = [t for t in trials if phase_of(t) == "tune"]
        confirm = [t for t in trials if phase_of(t) == "confirm"]
        best = max(tune, key=lambda t: (t.value, -t.number))
        cands = study.user_attrs["confirm_candidates"]
        assert cands[0] == best.number and len(cands) == 2
        second = next(t for t in tune if t.number == cands[1])
        assert second.user_attrs.get("defaults") or best.user_attrs.get("defaults")
        assert sorted((t.user_attrs["candidate"], t.user_attrs["seed"]) for t in confirm) == sorted(
            (c, s) for c in cands for s in (1, 2))
        for t in confirm:
            assert t.params == next(x for x in tune if x.number == t.user_attrs["candidate"]).params
            assert record(t)["candidate"] == t.user_attrs["candidate"]
        mean = {c: sum(t.value for t in confirm if t.user_attrs["candidate"] == c) / 2 for c in cands}
        choice = study.user_attrs["confirm_choice"]
        assert mean[choice] == max(mean.values())  # chosen on confirm validation, never on test


def test_the_report_compares_the_chosen_candidate_only(tmp_path):
    from reports.load import load
    from reports.stats import confirm_trials

    data = profile(tune_trials=3, confirm_seeds=1, matrix=[{
        "tasks": ["digits"], "families": ["mlp"], "optimizers": ["sgd"],
        "params": {"width": 16, "depth": 1, "batch_size": 128}}])
    result = run_benchmark(parse_profile(data), out_dir=tmp_path / "run", report=False)
    (study,) = studies(result.storage)
    frame = load([str(tmp_path / "run")]).trials
    rows = confirm_trials(frame)
    chosen = study.user_attrs["confirm_choice"]
    assert len(frame[frame["phase"] == "confirm"]) == 2 and len(rows) == 1
    (number,) = rows["number"]
    assert study.confirm.trials[number].user_attrs["candidate"] == chosen  # in the arm's confirm study


# ------------------------------------------------------------------------------------ studies


def test_independent_studies_per_arm_with_their_own_streams_and_seeds_shared_across_arms(tmp_path):
    """studies: 3 -> three Optuna studies per arm, each with its own sampler stream, tuning seed and
    confirm seeds; arms share them (comparable draws, paired units). Exact budgets, and a second run
    of the same command runs nothing more. The report's units are the studies."""
    from reports.load import load
    from reports.stats import arm_summary, confirm_trials

    data = profile(tune_trials=3, studies=3, confirm_seeds=1, confirm_candidates=1)
    prof = parse_profile(data)
    assert [k for _, k in prof.arm_studies()] == [0, 1, 2, 0, 1, 2]
    result = run_benchmark(prof, out_dir=tmp_path / "run", report=False)
    assert result.trials_run == 2 * 3 * (3 + 1)
    by_name = {s.study_name: s for s in studies(result.storage)}
    assert sorted(by_name) == sorted(a.study_name("proto", k) for a, k in prof.arm_studies())
    assert "proto/digits/mlp/adam/none/study-3" in by_name
    draws = {}
    for s in by_name.values():
        k, seeds = s.user_attrs["study_index"], s.user_attrs["study_seeds"]
        assert seeds == {"sampler": prof.study_sampler_seed(k), "tune": k * 10**6, "confirm": [k + 1]}
        assert s.user_attrs["protocol"]["studies"] == 3
        tune = [t for t in s.trials if phase_of(t) == "tune"]
        confirm = [t for t in s.trials if phase_of(t) == "confirm"]
        assert len(tune) == 3 and len(confirm) == 1  # exact budgets per study
        assert {record(t)["seed"] for t in tune} == {k * 10**6}
        assert record(confirm[0])["seed"] == k + 1
        assert all(record(t)["study_index"] == k for t in s.trials)
        draws.setdefault(k, []).append(unit(s, "lr"))
    assert len({prof.study_sampler_seed(k) for k in range(3)}) == 3
    for adam, sgd in draws.values():
        assert adam == pytest.approx(sgd)  # one stream per study index, shared by the arms
    assert draws[0][0] != pytest.approx(draws[1][0])  # and independent between studies
    again = run_benchmark(prof, out_dir=tmp_path / "run", report=False)
    assert again.trials_run == 0 and again.resumed_trials == 24
    runs = confirm_trials(load([str(tmp_path / "run")]).trials)
    assert sorted(runs["unit"].unique()) == ["study 1", "study 2", "study 3"]
    summary = arm_summary(runs)
    assert summary["n"].tolist() == [3, 3] and set(summary["unit_kind"]) == {"study"}


def test_studies_are_validated():
    with pytest.raises(SuiteError, match="studies must be an integer >= 1"):
        parse_profile(profile(studies=0))
    with pytest.raises(SuiteError, match="studies must be at most 100"):
        parse_profile(profile(studies=101))
    with pytest.raises(SuiteError, match="must be <= 4294967295"):
        parse_profile(profile(studies=2, seed=2**32 - 10))


def test_sobol_point_k_belongs_to_trial_k_whatever_ran_before():
    """Two workers that sample at the same moment get different points: the point is a function of
    the trial number the storage handed out, not of a counter in the study (Optuna's QMCSampler
    keeps one there, which two --jobs workers read before either wrote it)."""
    from suite.search import sobol_point

    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
             "width": optuna.distributions.IntDistribution(8, 64, log=True),
             "act": optuna.distributions.CategoricalDistribution(["relu", "gelu", "tanh"])}
    points = [sobol_point(space, 7, k) for k in range(1, 10)]
    assert sobol_point(space, 7, 5) == points[4]  # the same whatever was drawn before
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 9
    assert all(1e-4 <= p["lr"] <= 1e-1 and 8 <= p["width"] <= 64 and p["act"] in ("relu", "gelu", "tanh")
               for p in points)
    assert {p["act"] for p in points} == {"relu", "gelu", "tanh"}
    assert sobol_point(space, 8, 5) != points[4]
