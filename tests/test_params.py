import pytest

from suite.errors import SuiteError
from suite.params import Param, parse_assignments, resolve


def test_parse_types_and_ranges():
    assert Param("lr", 0.1, low=0.0, high=1.0).parse("0.5") == 0.5
    assert Param("depth", 2, low=1, high=8).parse("3") == 3
    assert Param("bn", False).parse("true") is True
    assert Param("act", "relu", choices=("relu", "tanh")).parse("tanh") == "tanh"
    assert Param("lr", 0.1, low=0.0, high=1.0).validate(1) == 1.0


@pytest.mark.parametrize(
    ("param", "text", "message"),
    [
        (Param("lr", 0.1, low=0.0, high=1.0), "2", "param lr=2.0 is out of range; allowed: a number in [0.0, 1.0]"),
        (Param("depth", 2, low=1, high=8), "x", "param depth='x' is not valid; allowed: an integer in [1, 8]"),
        (Param("act", "relu", choices=("relu", "tanh")), "elu", "param act='elu' is not valid; allowed: one of relu, tanh"),
        (Param("bn", False), "maybe", "param bn='maybe' is not valid; allowed: true or false"),
        (Param("lr", 0.1, low=0.0, high=1.0), "nan", "param lr=nan is out of range"),
    ],
)
def test_bad_values_name_value_and_allowed(param, text, message):
    with pytest.raises(SuiteError) as info:
        param.parse(text)
    assert str(info.value).startswith(message)


def test_resolve_merges_defaults_and_rejects_unknown():
    declared = [Param("a", 1, low=0, high=5), Param("b", "x", choices=("x", "y"))]
    assert resolve(declared, {"a": "3"}) == {"a": 3, "b": "x"}
    with pytest.raises(SuiteError, match=r"unknown param 'c' \(hint\); known for this run: a, b"):
        resolve(declared, {"c": "1"}, hints={"c": "hint"})


def test_later_declaration_overrides_default():
    assert resolve([Param("a", 1), Param("a", 2)], {}) == {"a": 2}


def test_parse_assignments():
    assert parse_assignments(["a=1", " b = x "]) == {"a": "1", "b": "x"}
    with pytest.raises(SuiteError, match="not of the form key=value"):
        parse_assignments(["oops"])


def test_invalid_default_is_caught_at_declaration():
    with pytest.raises(SuiteError):
        Param("lr", 5.0, low=0.0, high=1.0)


def test_suggest_uses_search_space():
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    p = Param("lr", 1e-3, low=1e-6, high=1.0, log=True, search=(1e-4, 1e-2))
    v = p.suggest(trial)
    assert 1e-4 <= v <= 1e-2
    assert Param("act", "relu", choices=("relu", "tanh")).suggest(trial) in ("relu", "tanh")
