import pytest

from suite.errors import SuiteError
from suite.families import FAMILIES
from suite.optimizers import OPTIMIZERS
from suite.registry import Registry, UnknownNameError
from suite.regularizers import REGULARIZERS
from tasks import TASKS


def test_register_decorator_and_lookup():
    reg: Registry[object] = Registry("widget")

    @reg.register("b")
    def b():
        return 2

    reg.add("a", 1)
    assert reg.get("b") is b and reg.get("a") == 1
    assert reg.names() == ["a", "b"] and len(reg) == 2 and "a" in reg
    assert reg.names("b*") == ["b"]


def test_duplicate_name_is_an_error():
    reg: Registry[int] = Registry("widget")
    reg.add("x", 1)
    with pytest.raises(ValueError, match="widget 'x' is already registered"):
        reg.add("x", 2)
    assert reg.get("x") == 1


def test_unknown_name_lists_known_names():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    reg.add("beta", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("gamma")
    assert str(info.value) == "unknown widget 'gamma'; known: alpha, beta"
    assert isinstance(info.value, SuiteError)


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        (TASKS, {"digits", "mnist1d"}),
        (FAMILIES, {"mlp"}),
        (OPTIMIZERS, {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"}),
        (REGULARIZERS, {"none", "dropout", "l1", "l2", "early_stopping", "augment", "batchnorm",
                        "grad_clip"}),
    ],
)
def test_registries_hold_the_documented_entries(registry, expected):
    assert expected <= set(registry.names())

