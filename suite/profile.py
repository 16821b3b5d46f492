"""Benchmark profiles: YAML files that expand into arms (task, family, optimizer, regularizers).

A profile is validated completely before anything runs: unknown keys, unknown registry names,
families not compatible with a task, out-of-range params and values of the wrong type all give one
clear error. Files are read with :class:`ProfileLoader`: at most 1 MiB, no YAML aliases, at most
32 levels deep. Seeds are integers in 0..2**32-1.

Format (see ``suite/profiles/quick.yaml``)::

    name: quick                   # folder name under runs/ and study-name prefix
    tune_trials: 4                # Optuna trials per arm (equal for every arm); trial 0 = defaults
    studies: 1                    # independent tunings per arm (own sampler stream and tuning seed), each
                                  # confirmed on its own seeds: the report's unit with 2 or more
    confirm_seeds: 2              # re-runs of each study's best params with seeds shared by every arm
    confirm_candidates: 2         # 2: the defaults (or the runner-up) are confirmed too; 1: best only
    space: core                   # core | full; default core below 16 trials, full from 16
    pruner: auto                  # auto (median from 10 trials, none below) | median | hyperband | none
    sampler_seed: 0               # one seed for every arm's sampler (Sobol start-up, then TPE)
    seed: 0                       # training seed of study 1's tuning trials (study k: seed + (k-1) x 10**6);
                                  # study k's confirm seeds: seed + (k-1) K + 1 .. seed + k K
    epochs: 6                     # int, or {default: 6, mnist1d: 10}; same for every arm of a task
    matrix:                       # each entry expands to the product of its lists
      - tasks: [mnist1d]
        families: [mlp, cnn]
        optimizers: [adam, momentum]
        regularizers: [[none], [dropout, l2]]   # sets: [l2, dropout] would be the same arm
        params: {width: 128}      # optional: fixed (not tuned) params for these arms
        epochs: 10                # optional: overrides the profile's epochs for these arms
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError

from suite.errors import SuiteError, warn

PRUNERS = ("auto", "median", "hyperband", "none")
SPACES = ("core", "full")
# Below these budgets per arm, pruning and the full search space do more harm than good: a median
# over a handful of trials stops slow starters at random, and 4-8 trials cannot cover 8-12 dimensions.
MIN_TRIALS_TO_PRUNE = 10
MIN_TRIALS_FULL_SPACE = 16
PROFILE_KEYS = {"name", "description", "tune_trials", "studies", "confirm_seeds", "confirm_candidates",
                "pruner", "sampler_seed", "seed", "epochs", "matrix", "tracking", "space", "plugins"}
ENTRY_KEYS = {"tasks", "families", "optimizers", "regularizers", "params", "epochs"}
TRACKING_KEYS = {"wandb", "energy", "country"}
MAX_PROFILE_BYTES = 1 << 20  # a profile is a page of YAML; a larger file is a mistake (or an attack)
MAX_DEPTH = 32  # nesting levels of a profile document (a real one has about 6)
SEED_MAX = 2**32 - 1  # numpy's seeds
STUDY_SEED_STRIDE = 10**6  # study k tunes with seed + k * stride: never one of the confirm seeds
MAX_STUDIES = 100


class ProfileLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with a nesting limit.

    An alias (``*name``) repeats an anchored node by reference, so a few lines of nested aliases
    (a "billion laughs" document) stand for a structure of billions of values, which any later
    ``str()``, ``json.dumps`` or ``yaml.safe_dump`` of the profile expands in memory. A profile
    needs no aliases: they are refused, as are documents nested deeper than :data:`MAX_DEPTH`
    (whose composition would exhaust the recursion limit).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(None, None, f"YAML aliases (*{event.anchor}) are not allowed in a profile; "
                                "write the value out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str) -> Any:
    """The document in ``text``, read by :class:`ProfileLoader` (what ``yaml.safe_load`` does,
    without aliases and deep nesting)."""
    loader = ProfileLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_seed(value: Any, name: str) -> int:
    """``value`` when it is a seed numpy and torch accept (an integer in 0..2**32-1), else one line."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= SEED_MAX:
        raise SuiteError(f"{name} must be an integer in 0..{SEED_MAX} (2**32 - 1), got {value!r}")
    return value


@dataclass(frozen=True)
class Arm:
    """One compared configuration: tuned with the same budget as every other arm."""

    task: str
    family: str
    optimizer: str
    regularizers: tuple[str, ...]
    epochs: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def study_name(self, benchmark: str, study: int = 0) -> str:
        """``benchmark/task/family/optimizer/reg1+reg2`` (the Optuna study and W&B group) for the first
        study of the arm, ``.../study-K`` for study K >= 2 (``study`` counts from 0)."""
        base = f"{benchmark}/{self.task}/{self.family}/{self.optimizer}/{'+'.join(self.regularizers)}"
        return base if study == 0 else f"{base}/study-{study + 1}"


@dataclass(frozen=True)
class Profile:
    name: str
    tune_trials: int
    confirm_seeds: int
    arms: tuple[Arm, ...]
    confirm_candidates: int = 2
    pruner: str = "none"
    space: str = "core"
    sampler_seed: int = 0
    seed: int = 0
    description: str = ""
    tracking: Mapping[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    studies: int = 1

    def settings(self) -> dict[str, Any]:
        """JSON-able summary stored on every study (``profile`` user attr)."""
        return {"name": self.name, "tune_trials": self.tune_trials, "studies": self.studies,
                "confirm_seeds": self.confirm_seeds,
                "confirm_candidates": self.confirm_candidates,
                "pruner": self.pruner, "space": self.space, "sampler_seed": self.sampler_seed,
                "seed": self.seed,
                "arms": len(self.arms), "description": self.description}

    def arm_studies(self) -> list[tuple[Arm, int]]:
        """Every (arm, study index) the profile runs: ``studies`` per arm, arm by arm."""
        return [(arm, k) for arm in self.arms for k in range(self.studies)]

    def tune_seed(self, study: int) -> int:
        """The training seed of study ``study``'s tuning trials (shared by every arm)."""
        return self.seed + study * STUDY_SEED_STRIDE

    def confirm_seed_list(self, study: int) -> list[int]:
        """Study ``study``'s confirm seeds, shared by every arm: ``seed + study K + 1 .. seed + (study+1) K``
        (``K`` = ``confirm_seeds``)."""
        return [self.seed + study * self.confirm_seeds + 1 + k for k in range(self.confirm_seeds)]

    def study_sampler_seed(self, study: int) -> int:
        """Study ``study``'s sampler seed (shared by every arm): ``sampler_seed`` for the first study,
        an independent stream (numpy ``SeedSequence([sampler_seed, study])``) for the others."""
        if study == 0:
            return self.sampler_seed
        import numpy as np

        return int(np.random.SeedSequence([self.sampler_seed, study]).generate_state(1)[0])


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped in ``suite/profiles/``."""
    folder = resources.files("suite") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def auto_profile() -> str:
    """``standard`` with a CUDA GPU, ``quick`` without."""
    import torch

    return "standard" if torch.cuda.is_available() else "quick"


def load_profile(name_or_path: str) -> Profile:
    """Load and validate a built-in profile by name, or a YAML file by path."""
    if name_or_path == "auto":
        name_or_path = auto_profile()
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise SuiteError(f"profile {str(path)!r} is a folder; give a profile .yaml file or a built-in "
                             f"profile ({', '.join(builtin_profiles())})")
        if not path.is_file():
            raise SuiteError(f"profile file {str(path)!r} does not exist")
        origin = str(path)
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise SuiteError(f"profile {origin!r} is {size:,} bytes; a profile may have at most "
                             f"{MAX_PROFILE_BYTES:,} bytes (1 MiB)")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SuiteError(f"profile {origin!r} cannot be read as UTF-8 text: {type(exc).__name__}: "
                             f"{exc}") from None
    else:
        if name_or_path not in builtin_profiles():
            raise SuiteError(f"unknown profile {name_or_path!r}; built-in: {', '.join(builtin_profiles())}, "
                             "or a path to a .yaml file")
        text = (resources.files("suite") / "profiles" / f"{name_or_path}.yaml").read_text()
        origin = name_or_path
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        detail = getattr(exc, "problem", None) or _first_line(exc)
        raise SuiteError(f"profile {origin!r} is not valid YAML{where}: {detail}") from None
    except RecursionError:
        raise SuiteError(f"profile {origin!r} is not valid YAML: nested too deeply to read") from None
    except Exception as exc:  # e.g. a ValueError from a timestamp such as 2024-13-45
        raise SuiteError(f"profile {origin!r} is not valid YAML: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    return parse_profile(data, origin)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def _check_keys(d: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed, key=str)
    if unknown:
        raise SuiteError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _int(d: Mapping, key: str, default: int, low: int, where: str) -> int:
    value = d.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SuiteError(f"{where}: {key} must be an integer >= {low}, got {value!r}")
    return value


def _tracking(data: Mapping, where: str) -> dict[str, Any]:
    """The profile's ``tracking`` mapping, every value of its type: ``wandb`` and ``energy`` YAML
    booleans (``true``/``false``, not the string ``"no"``), ``country`` an ISO 3166-1 alpha-3 code."""
    tracking = data.get("tracking", {}) or {}
    if not isinstance(tracking, dict):
        raise SuiteError(f"{where}: tracking must be a mapping, got {tracking!r}")
    _check_keys(tracking, TRACKING_KEYS, f"{where} tracking")
    for key in ("wandb", "energy"):
        if key in tracking and not isinstance(tracking[key], bool):
            raise SuiteError(f"{where}: tracking {key} must be true or false (a YAML boolean, unquoted), "
                             f"got {tracking[key]!r}")
    country = tracking.get("country", "USA")
    if not (isinstance(country, str) and len(country) == 3 and country.isascii() and country.isalpha()
            and country.isupper()):
        raise SuiteError(f"{where}: tracking country must be an ISO 3166-1 alpha-3 code (three capital "
                         f"letters, such as USA or FRA), got {country!r}")
    return tracking


def _regularizer_sets(entry: Mapping, where: str) -> list[tuple[str, ...]]:
    """An entry's regularizer sets, each a tuple of names; a set that repeats an earlier one (in any
    order: the same regularizers make the same arm) is merged into it with a warning line."""
    regs = entry.get("regularizers", [["none"]])
    if not isinstance(regs, list) or not regs:
        raise SuiteError(f"{where}: regularizers must be a list of lists of names, got {regs!r}")
    out: list[tuple[str, ...]] = []
    for r in regs:
        names = [r] if isinstance(r, str) else r
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SuiteError(f"{where}: regularizers must be a list of lists of names, got {r!r} in {regs!r}")
        reg = tuple(names)
        same = next((o for o in out if sorted(o or ("none",)) == sorted(reg or ("none",))), None)
        if same is None:
            out.append(reg)
            continue
        arm = "+".join(same) or "none"
        warn(f"{where}: regularizers {list(reg)} repeat {list(same)} (the order does not matter): merged "
             f"into one arm ({arm})")
    return out


def _names(entry: Mapping, key: str, where: str) -> list[str]:
    value = entry.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{where}: {key} must be a non-empty list of names, got {value!r}")
    return value


DATA_TASK_KEYS = {"name", "data", "target", "kind"}


def _task_names(entry: Mapping, where: str, base: Path | None) -> list[str]:
    """An entry's tasks: names, or ``{name, data, target, kind}`` mappings that build a task from a
    data file (path relative to the profile) and register it under ``name``."""
    value = entry.get("tasks")
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: tasks must be a non-empty list of names or data-file mappings, "
                         f"got {value!r}")
    out = []
    for v in value:
        if isinstance(v, str):
            out.append(v)
            continue
        if not (isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("data"), str)):
            raise SuiteError(f"{where}: a data task needs name and data (a file path), got {v!r}")
        _check_keys(v, DATA_TASK_KEYS, f"{where}: task {v['name']!r}")
        if not v["name"].replace("-", "").replace("_", "").isalnum():
            raise SuiteError(f"{where}: task name must be letters, digits, '-' or '_', got {v['name']!r}")
        from tasks import TASKS, register_task
        from tasks.data import data_task

        path = Path(v["data"])
        if base is not None and not path.is_absolute():
            path = base / path
        existing = TASKS.get(v["name"]) if v["name"] in TASKS else None
        if existing is None:
            register_task(data_task(path, target=v.get("target"), kind=v.get("kind"), name=v["name"]))
        elif existing.data_file.get("path") != str(path.resolve()):
            raise SuiteError(f"{where}: task name {v['name']!r} is taken (a built-in or another data file)")
        out.append(v["name"])
    return out


def parse_profile(data: Any, origin: str = "<profile>") -> Profile:
    """Validate a profile's parsed YAML and expand its matrix into arms."""
    from suite.config import TrialConfig, resolve_config

    where = f"profile {origin!r}"
    if not isinstance(data, dict):
        raise SuiteError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    _check_keys(data, PROFILE_KEYS, where)
    plugins = data.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p for p in plugins):
        raise SuiteError(f"{where}: plugins must be a list of .py paths (relative to the profile) or module "
                         f"names, got {plugins!r}")
    base = Path(origin).parent if Path(origin).suffix in (".yaml", ".yml") else None
    if plugins:
        from suite.plugins import load_plugin

        for spec in plugins:
            load_plugin(spec, base=base)
    name = data.get("name") or Path(origin).stem
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise SuiteError(f"{where}: name must be letters, digits, '-' or '_', got {name!r}")
    tune_trials = _int(data, "tune_trials", 4, 1, where)
    studies = _int(data, "studies", 1, 1, where)
    if studies > MAX_STUDIES:
        raise SuiteError(f"{where}: studies must be at most {MAX_STUDIES}, got {studies}")
    confirm_seeds = _int(data, "confirm_seeds", 2, 0, where)
    confirm_candidates = _int(data, "confirm_candidates", 2, 1, where)
    if confirm_candidates > 2:
        raise SuiteError(f"{where}: confirm_candidates must be 1 (the best tuning trial) or 2 (and the "
                         f"defaults, or the runner-up), got {confirm_candidates}")
    pruner = data.get("pruner", "auto")
    if pruner not in PRUNERS:
        raise SuiteError(f"{where}: pruner {pruner!r} is not valid; allowed: {', '.join(PRUNERS)}")
    if pruner == "auto":
        pruner = "median" if tune_trials >= MIN_TRIALS_TO_PRUNE else "none"
    elif pruner != "none" and tune_trials < MIN_TRIALS_TO_PRUNE:
        raise SuiteError(f"{where}: pruner {pruner!r} needs tune_trials >= {MIN_TRIALS_TO_PRUNE}, got "
                         f"{tune_trials} (below that a pruner stops trials on the noise of a few others); "
                         "use pruner: none or auto")
    space = data.get("space", "core" if tune_trials < MIN_TRIALS_FULL_SPACE else "full")
    if space not in SPACES:
        raise SuiteError(f"{where}: space {space!r} is not valid; allowed: {', '.join(SPACES)}")
    tracking = _tracking(data, where)
    seed = check_seed(data.get("seed", 0), f"{where}: seed")
    sampler_seed = check_seed(data.get("sampler_seed", 0), f"{where}: sampler_seed")
    if seed + studies * confirm_seeds > SEED_MAX or seed + (studies - 1) * STUDY_SEED_STRIDE > SEED_MAX:
        raise SuiteError(f"{where}: seed + studies x confirm_seeds and seed + (studies - 1) x "
                         f"{STUDY_SEED_STRIDE} must be <= {SEED_MAX} (confirm runs use the seeds seed+1 "
                         f".. seed+studies x confirm_seeds, study k tunes with seed + (k-1) x "
                         f"{STUDY_SEED_STRIDE}), got seed {seed}")
    if studies * confirm_seeds >= STUDY_SEED_STRIDE:
        raise SuiteError(f"{where}: studies x confirm_seeds must be below {STUDY_SEED_STRIDE}, got "
                         f"{studies * confirm_seeds}")
    description = data.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, (str, int, float)):
        raise SuiteError(f"{where}: description must be text, got a {type(description).__name__}")
    matrix = data.get("matrix")
    if not isinstance(matrix, list) or not matrix:
        raise SuiteError(f"{where}: matrix must be a non-empty list of entries")
    arms: list[Arm] = []
    for i, entry in enumerate(matrix):
        ewhere = f"{where} matrix[{i}]"
        if not isinstance(entry, dict):
            raise SuiteError(f"{ewhere}: expected a mapping, got {entry!r}")
        _check_keys(entry, ENTRY_KEYS, ewhere)
        reg_sets = _regularizer_sets(entry, ewhere)
        params = entry.get("params", {}) or {}
        if not isinstance(params, dict):
            raise SuiteError(f"{ewhere}: params must be a mapping, got {params!r}")
        for task, family, optimizer, reg in itertools.product(
            _task_names(entry, ewhere, base), _names(entry, "families", ewhere),
            _names(entry, "optimizers", ewhere), reg_sets,
        ):
            epochs = entry.get("epochs", _epochs_for(data.get("epochs"), task, ewhere))
            config = TrialConfig(task=task, family=family, optimizer=optimizer, regularizers=reg,
                                 params=dict(params), epochs=epochs, device="cpu")
            try:
                r = resolve_config(config)
            except SuiteError as exc:
                raise SuiteError(f"{ewhere}: {exc}") from None
            fixed = {k: r.params[k] for k in params}
            arm = Arm(task, family, optimizer, tuple(x.name for x in r.regularizers), r.epochs, fixed)
            twin = next((a for a in arms if _arm_key(a) == _arm_key(arm)), None)
            if twin is not None:
                also = "" if twin.regularizers == arm.regularizers else (
                    f" (as {twin.study_name(name)!r}: the same regularizers in another order)")
                raise SuiteError(f"{ewhere}: arm {arm.study_name(name)!r} appears twice in the matrix{also}")
            arms.append(arm)
    return Profile(
        name=name, tune_trials=tune_trials, confirm_seeds=confirm_seeds, arms=tuple(arms), pruner=pruner,
        studies=studies,
        space=space, confirm_candidates=confirm_candidates,
        sampler_seed=sampler_seed, seed=seed, description=str(description), tracking=tracking, source=data,
    )


def _arm_key(arm: Arm) -> tuple:
    """What makes two arms the same study: task, family, optimizer and the set of regularizers."""
    return arm.task, arm.family, arm.optimizer, tuple(sorted(arm.regularizers))


def _epochs_for(epochs: Any, task: str, where: str) -> int | None:
    if epochs is None:
        return None
    value = epochs.get(task, epochs.get("default")) if isinstance(epochs, dict) else epochs
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise SuiteError(f"{where}: epochs must be an integer >= 1 (or a mapping of them), got {value!r}")
    return value
