"""Declared hyperparameters: one ``Param`` gives a default, the allowed values and the search space.

Families, optimizers, regularizers and the trial itself declare their params this way, so that
``--param key=value`` is parsed and validated the same way everywhere and the Optuna search space
is the declaration (``Param.suggest``), not a second copy of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from suite.errors import SuiteError

Value = bool | int | float | str

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    Args:
        name: flat, unique name within a trial (``lr``, ``width``, ``dropout``).
        default: the value used when nothing is given; its type is the param's type.
        low, high: inclusive allowed range for numbers (``None`` = unbounded).
        choices: allowed values for categorical params.
        log: sample on a log scale when tuning.
        search: narrower range ``(low, high)`` or subset of choices to tune over; default = allowed.
            Centre it on the default: a short search must be able to cover it.
        tune: whether the param belongs to the Optuna search space at all.
        core: part of the ``core`` search space (``space: core`` in a profile): the learning rate,
            each regularizer's strength and at most two size params per family. ``space: full``
            tunes every ``tune`` param.
        complement: tune ``1 - value`` on a log scale (momentum, Adam's betas: 0.9, 0.99 and 0.999
            are equally far apart); Optuna sees the param as ``1-<name>``. ``search`` stays in
            the param's own units.
        help: one line, with units.
    """

    name: str
    default: Value
    low: float | None = None
    high: float | None = None
    choices: tuple[Value, ...] | None = None
    log: bool = False
    search: tuple[Value, ...] | None = None
    tune: bool = True
    core: bool = False
    complement: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        self.validate(self.default)
        if self.complement and (self.type is not float or self.search is None
                                or not 0 <= self.search[0] < self.search[1] < 1):
            raise ValueError(f"param {self.name}: complement needs a float search range inside [0, 1), "
                             f"got {self.search!r}")

    @property
    def optuna_name(self) -> str:
        """The name of this param in an Optuna trial (``1-momentum`` for a complement param)."""
        return f"1-{self.name}" if self.complement else self.name

    def to_optuna(self, value: Value) -> Value:
        """``value`` as the Optuna trial stores it (for enqueueing a known point)."""
        return round(1.0 - float(value), 12) if self.complement else value

    def search_range(self) -> tuple[Value, ...]:
        """The values tuned over: ``(low, high)`` for numbers, the choices otherwise."""
        if self.choices is not None or self.type in (bool, str):
            return tuple(self.search or self.choices or ((False, True) if self.type is bool else ()))
        lo, hi = self.search if self.search is not None else (self.low, self.high)
        if lo is None or hi is None:
            raise ValueError(f"param {self.name} needs a bounded search range to be tuned")
        return lo, hi

    def describe_search(self) -> str:
        """One line: what is tuned and how (``lr: log [0.0001, 0.03]``)."""
        rng = self.search_range()
        if self.choices is not None or self.type in (bool, str):
            return f"{self.name}: one of {', '.join(map(str, rng))}"
        scale = "1 - value on a log scale" if self.complement else "log" if self.log else "linear"
        kind = "integer " if self.type is int else ""
        return f"{self.name}: {kind}{scale} [{rng[0]:g}, {rng[1]:g}] (default {self.default:g})"

    @property
    def type(self) -> type:
        return type(self.default)

    def allowed(self) -> str:
        """Human description of the allowed values."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.type is bool:
            return "true or false"
        lo = "-inf" if self.low is None else self.low
        hi = "inf" if self.high is None else self.high
        return f"a{'n integer' if self.type is int else ' number'} in [{lo}, {hi}]"

    def parse(self, text: str) -> Value:
        """Parse a command-line string into a validated value."""
        kind = self.type
        try:
            if kind is bool:
                low = text.strip().lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError
                value: Value = low in _TRUE
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise SuiteError(
                f"param {self.name}={text!r} is not valid; allowed: {self.allowed()}"
            ) from None
        return self.validate(value)

    def validate(self, value: Any) -> Value:
        """Check ``value`` against the type, range and choices; return it (ints widened to float)."""
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok_type = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if not ok_type:
            raise SuiteError(f"param {self.name}={value!r} is not valid; allowed: {self.allowed()}")
        if self.choices is not None and value not in self.choices:
            raise SuiteError(f"param {self.name}={value!r} is not valid; allowed: {self.allowed()}")
        if kind in (int, float):
            bad = (isinstance(value, float) and not math.isfinite(value)) or (
                (self.low is not None and value < self.low)
                or (self.high is not None and value > self.high)
            )
            if bad:
                raise SuiteError(
                    f"param {self.name}={value!r} is out of range; allowed: {self.allowed()}"
                )
        return value

    def suggest(self, trial: Any) -> Value:
        """Sample this param from an Optuna ``trial`` over its search space."""
        rng = self.search_range()
        if self.choices is not None or self.type in (bool, str):
            return trial.suggest_categorical(self.name, list(rng))
        lo, hi = rng
        if self.complement:
            rest = trial.suggest_float(self.optuna_name, 1.0 - float(hi), 1.0 - float(lo), log=True)
            return self.validate(round(1.0 - rest, 12))
        if self.type is int:
            return trial.suggest_int(self.name, int(lo), int(hi), log=self.log)
        return trial.suggest_float(self.name, float(lo), float(hi), log=self.log)


def resolve(
    declared: Iterable[Param],
    given: Mapping[str, Any],
    *,
    hints: Mapping[str, str] | None = None,
) -> dict[str, Value]:
    """Merge ``given`` values over the defaults of ``declared`` params, validating each.

    A later declaration of the same name replaces an earlier one (a regularizer may override a
    family's default). An unknown name raises :class:`SuiteError` listing the known names; ``hints``
    maps a name to extra advice (``"dropout": "add --regularizer dropout"``).
    """
    table: dict[str, Param] = {}
    for p in declared:
        table[p.name] = p
    unknown = sorted(set(given) - set(table))
    if unknown:
        name = unknown[0]
        hint = f" ({hints[name]})" if hints and name in hints else ""
        raise SuiteError(
            f"unknown param {name!r}{hint}; known for this run: {', '.join(sorted(table))}"
        )
    out: dict[str, Value] = {}
    for name, p in table.items():
        if name in given:
            value = given[name]
            out[name] = p.parse(value) if isinstance(value, str) and p.type is not str else (
                p.validate(value)
            )
        else:
            out[name] = p.default
    return out


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Parse ``key=value`` strings from the command line into a dict of strings."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SuiteError(f"--param {item!r} is not of the form key=value")
        out[key] = value.strip()
    return out
