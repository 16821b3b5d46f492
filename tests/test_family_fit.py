"""Which families fit which task (``suite.families.families_for``, ``not_offered``,
``Family.accepts``), checked against expectations written down by hand, never recomputed from the
families' own declarations: a changed declaration, or a bug in the derivation, fails here."""

from __future__ import annotations

import pytest
import torch

from suite.families import FAMILIES, families_for, not_offered
from tasks import TASKS, Split, Splits, Task
from tasks.base import GenerationTask, TransferTask
from tasks.kinds import TASK_KINDS, TaskKind

#: the families of this package (a plug-in loaded by another test of the process is left out)
BUILT_IN = {n for n, f in FAMILIES.items() if f.build.__module__.startswith("suite.families.")}
SUPERVISED = ("classification", "regression", "forecasting")
SEQUENCE_OR_IMAGE = {"cnn", "rnn", "transformer"}

#: what each built-in family takes (task kinds, input ranks), as the README and the family modules
#: document it
TAKES = {
    "mlp": (SUPERVISED, (1, 2, 3)),
    "cnn": (SUPERVISED, (2, 3)),
    "rnn": (SUPERVISED, (2, 3)),
    "transformer": (SUPERVISED, (2, 3)),
    "autoencoder": (("anomaly",), (1, 2, 3)),
    "gan": (("generation",), (1, 2, 3)),
    "transfer": (("transfer",), (1, 2, 3)),
}

#: the families each built-in task offers
OFFERED = {
    **dict.fromkeys(("digits", "mnist1d", "sunspots", "adding", "mnist", "fashion-mnist", "cifar10"),
                    {"mlp", *SEQUENCE_OR_IMAGE}),
    "breast-cancer": {"mlp"},  # tabular: no family that needs a signal or an image
    "diabetes": {"mlp"},
    "digits-anomaly": {"autoencoder"},
    "digits-gan": {"gan"},
    "ring-gan": {"gan"},
    "digits-transfer": {"transfer"},
}


def test_the_expectations_cover_every_built_in_family_and_task():
    assert set(TAKES) == BUILT_IN
    assert set(OFFERED) <= set(TASKS.names())


@pytest.mark.parametrize("name", sorted(OFFERED))
def test_built_in_tasks_offer_the_expected_families(name):
    task = TASKS.get(name)
    assert set(families_for(task)) & BUILT_IN == OFFERED[name]
    assert set(not_offered(task)) & BUILT_IN == BUILT_IN - OFFERED[name]


def make_task(kind: str, rank: int, **kw) -> Task:
    """A task of ``kind`` with inputs of ``rank`` dimensions (its data are never loaded)."""
    shape = (2, 3, 4)[:rank] if rank <= 3 else (2, 3, 4, 5)

    def loader(seed: int) -> Splits:
        return Splits(*(Split(torch.zeros(4, *shape), torch.zeros(4, dtype=torch.long)),) * 3)

    args = dict(name=f"{kind}-rank{rank}", kind=kind, input_shape=shape, outputs=2, metric="score",
                direction="maximize", target=0.5, epochs=1, batch_size=2, loader=loader, ideal=1.0,
                baseline=0.0, bounds=(0.0, 1.0), **kw)
    if kind == "generation":
        return GenerationTask(**args, score=lambda fake, real: {"score": 1.0})
    if kind == "transfer":
        return TransferTask(**args, source=lambda seed: loader(seed).train, source_outputs=2)
    return Task(**args)


@pytest.mark.parametrize("rank", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", sorted({"classification", "regression", "forecasting", "reconstruction",
                                         "anomaly", "generation", "transfer"}))
def test_each_family_accepts_a_task_of_every_kind_and_rank_as_documented(kind, rank):
    assert kind in TASK_KINDS
    task = make_task(kind, rank)
    for family, (kinds, ranks) in TAKES.items():
        reason = FAMILIES.get(family).accepts(task)
        if kind not in kinds:
            assert reason == f"takes task kinds {', '.join(kinds)}, not {kind}", family
        elif rank not in ranks:
            expected = f"takes inputs of rank {', '.join(map(str, ranks))}, not {rank} {task.input_shape}"
            assert reason == expected, family
        else:
            assert reason is None, (family, reason)
    fits = {f for f, (kinds, ranks) in TAKES.items() if kind in kinds and rank in ranks}
    assert set(families_for(task)) & BUILT_IN == fits
    assert set(not_offered(task)) & BUILT_IN == BUILT_IN - fits


def test_a_kind_that_trains_as_another_fits_that_kinds_families():
    ordinal = TaskKind("ordinal", "mse", None, lambda t, out, y: (out, y), trains_as="regression")
    with TASK_KINDS.scoped("ordinal", ordinal):
        assert set(families_for(make_task("ordinal", 1))) & BUILT_IN == {"mlp"}
        assert set(families_for(make_task("ordinal", 2))) & BUILT_IN == {"mlp", *SEQUENCE_OR_IMAGE}
        assert FAMILIES.get("autoencoder").accepts(make_task("ordinal", 1)) == \
            "takes task kinds anomaly, not ordinal"
    assert "ordinal" not in TASK_KINDS


def test_a_task_narrows_a_fitting_family_with_its_reason():
    task = make_task("regression", 2, narrow={"cnn": "the 3 channels have no order"})
    assert set(families_for(task)) & BUILT_IN == {"mlp", "rnn", "transformer"}
    assert not_offered(task)["cnn"] == "the 3 channels have no order"
    assert FAMILIES.get("cnn").accepts(task) is None  # it fits; the task leaves it out
