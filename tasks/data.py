"""Data without code: a task built from a file (``--task data:FILE``, or ``tasks: [{data: FILE}]`` in
a profile).

* ``.npz`` with arrays ``x`` (N, *input_shape) and ``y`` (N,);
* ``.csv`` / ``.parquet`` tables: one ``target`` column, every other column a numeric feature.

The kind is ``classification`` when the target has at most :data:`MAX_CLASSES` distinct integer (or
string/bool) values, else ``regression``, unless given. The split is seeded (``split_seed`` 0) and
stratified for classification, with ``fractions`` (default 0.7 / 0.15 / 0.15); features (and a
regression target) are standardized with train statistics. Metric, direction and target come from
the kind (accuracy >= 0.9; R2 >= 0.5). The file's SHA-256 is in the task (and so in every record's
``task_info``). A bad file raises :class:`SuiteError` with one line naming the problem.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from suite.errors import SuiteError
from tasks.base import TASKS, Splits, Task, as_split, register_task, stratified_split

PREFIX = "data:"
MAX_CLASSES = 20
MIN_ROWS_PER_SPLIT = 10
FRACTIONS = (0.7, 0.15, 0.15)
DEFAULTS = {"classification": ("accuracy", "maximize", 0.9, "cross_entropy"),
            "regression": ("r2", "maximize", 0.5, "mse")}


def read_arrays(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a data file; one-line :class:`SuiteError` for every problem."""
    if not path.is_file():
        raise SuiteError(f"data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as d:
                if "x" not in d.files or "y" not in d.files:
                    raise SuiteError(f"data file {str(path)!r} needs arrays 'x' and 'y', has "
                                     f"{', '.join(d.files) or 'none'}")
                return np.asarray(d["x"]), np.asarray(d["y"])
        if suffix in (".csv", ".parquet"):
            import pandas as pd

            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        else:
            raise SuiteError(f"data file {str(path)!r}: unknown format {suffix!r}; use .npz, .csv or "
                             ".parquet")
    except SuiteError:
        raise
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise SuiteError(f"data file {str(path)!r} cannot be read: {type(exc).__name__}: {first}") from None
    if not target:
        raise SuiteError(f"data file {str(path)!r} is a table: name its target column (--target COLUMN); "
                         f"columns: {', '.join(map(str, frame.columns))}")
    if target not in frame.columns:
        raise SuiteError(f"data file {str(path)!r} has no target column {target!r}; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    features = frame.drop(columns=[target])
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    bad = [str(c) for c in features.columns
           if not (is_numeric_dtype(features[c].dtype) or is_bool_dtype(features[c].dtype))]
    if bad:
        raise SuiteError(f"data file {str(path)!r}: non-numeric feature column(s) {', '.join(bad)}; encode "
                         "them as numbers first")
    return features.to_numpy(dtype=np.float64), frame[target].to_numpy()


def infer_kind(y: np.ndarray) -> str:
    values = np.unique(y)
    if y.dtype.kind in "OUSb":
        return "classification"
    integral = y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(np.mod(values, 1) == 0))
    return "classification" if integral and len(values) <= MAX_CLASSES else "regression"


def data_task(path: str | Path, *, target: str | None = None, kind: str | None = None,
              name: str | None = None, fractions: tuple[float, float, float] = FRACTIONS,
              epochs: int = 20) -> Task:
    """A :class:`Task` built from ``path`` (see the module docstring)."""
    path = Path(path)
    x, y = read_arrays(path, target)
    where = f"data file {str(path)!r}"
    if len(x) != len(y) or len(x) == 0:
        raise SuiteError(f"{where}: x has {len(x)} rows and y {len(y)}")
    if x.dtype.kind not in "fiub":
        raise SuiteError(f"{where}: x must be numeric, got dtype {x.dtype}")
    if not np.isfinite(x.astype(np.float64)).all():
        raise SuiteError(f"{where}: the features contain NaN or infinite values; impute or drop them first")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise SuiteError(f"{where}: the target contains NaN or infinite values")
    if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in y):
        raise SuiteError(f"{where}: the target contains missing values")
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise SuiteError(f"{where}: fractions must be 3 positive numbers summing to 1, got {fractions}")
    kind = kind or infer_kind(y)
    if kind not in DEFAULTS:
        raise SuiteError(f"{where}: kind must be classification or regression, got {kind!r}")
    smallest = min(int(round(f * len(x))) for f in fractions)
    if smallest < MIN_ROWS_PER_SPLIT:
        raise SuiteError(f"{where}: {len(x)} rows give a split of {smallest} rows; every split needs at "
                         f"least {MIN_ROWS_PER_SPLIT}")
    if kind == "classification":
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise SuiteError(f"{where}: the target has one class ({classes[0]!r}); classification needs two")
        y = labels.astype(np.int64)
        outputs = len(classes) if len(classes) > 2 else 1  # binary: one logit, BCE (as breast-cancer)
    else:
        y = y.astype(np.float64)
        outputs = 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    shape = tuple(int(s) for s in x.shape[1:]) or (1,)
    metric, direction, goal, loss = DEFAULTS[kind]
    if kind == "classification" and outputs == 1:
        loss = "bce"

    def load(seed: int) -> Splits:
        if kind == "classification":
            parts = stratified_split(y, fractions, seed)
        else:
            order = np.random.default_rng(seed).permutation(len(y))
            a, b = round(fractions[0] * len(y)), round((fractions[0] + fractions[1]) * len(y))
            parts = tuple(np.sort(p) for p in (order[:a], order[a:b], order[b:]))
        train = parts[0]
        flat = x.reshape(len(x), -1).astype(np.float64)
        mean, std = flat[train].mean(axis=0), flat[train].std(axis=0)
        xs = ((flat - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
        if kind == "regression":
            ys = ((y - y[train].mean()) / (y[train].std() or 1.0)).astype(np.float32)
            return Splits(*(as_split(xs[i], ys[i], shape, y_dtype=torch.float32) for i in parts))
        return Splits(*(as_split(xs[i], y[i], shape) for i in parts))

    return Task(name=name or f"{PREFIX}{path}", kind=kind, input_shape=shape, outputs=outputs, metric=metric,
                direction=direction, target=goal, epochs=epochs, batch_size=64, loader=load, loss=loss,
                description=f"{kind} from {path.name} ({len(x)} rows, sha256 {digest[:12]}); split "
                            f"{'/'.join(str(f) for f in fractions)}, seed 0, features standardized with "
                            "train statistics",
                data_file={"path": str(path.resolve()), "sha256": digest, "rows": str(len(x))})


def register_data_task(spec: str, *, target: str | None = None, kind: str | None = None) -> str:
    """Register the task of ``data:FILE`` once (same file, same name) and return its name."""
    name = spec if spec.startswith(PREFIX) else f"{PREFIX}{spec}"
    if name not in TASKS:
        register_task(data_task(name.removeprefix(PREFIX), target=target, kind=kind, name=name))
    return name
