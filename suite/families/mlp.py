"""``mlp``: a fully connected network on the flattened input."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from suite.families.base import ACTIVATION, activation, register_family
from suite.params import Param
from tasks.base import Task

PARAMS = (
    Param("depth", 3, low=1, high=32, search=(2, 4), core=True, help="number of hidden layers"),
    Param("width", 512, low=1, high=8192, log=True, search=(128, 1024), core=True,
          help="units per hidden layer"),
    ACTIVATION,
)


def hidden_block(
    n_in: int, n_out: int, params: Mapping[str, Any], act: str | None = None
) -> list[nn.Module]:
    """Linear -> (BatchNorm) -> activation -> (Dropout), reading the regularizer params."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if params.get("batchnorm", False):
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(activation(act or params["activation"]))
    if params.get("dropout", 0.0) > 0:
        layers.append(nn.Dropout(params["dropout"]))
    return layers


def mlp(n_in: int, n_out: int, params: Mapping[str, Any]) -> nn.Sequential:
    """``depth`` hidden blocks of ``width`` units, then a linear output layer."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(params["depth"]):
        layers += hidden_block(width, params["width"], params)
        width = params["width"]
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


@register_family("mlp", params=PARAMS, tiny={"depth": 1, "width": 16},
                 description="fully connected network on the flattened input")
def build_mlp(task: Task, params: Mapping[str, Any]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), mlp(math.prod(task.input_shape), task.outputs, params))
