"""Download, verify and cache the files of the opt-in datasets (MNIST, Fashion-MNIST, CIFAR-10).

Files keep their official names and formats and are cached in ``cache_dir()/downloads/<dataset>/``
(``$SUITE_CACHE``, default ``~/.cache/dl-benchsuite``). Every file is checked against the SHA-256
in :data:`DATASETS` after download *and* every time it is read from the cache: a file whose hash
differs is deleted and never parsed. Parsing is plain ``gzip``/``tarfile``/``numpy``.

Where the files come from, first match wins:

1. ``$SUITE_<NAME>_URL`` (``SUITE_MNIST_URL``, ``SUITE_FASHION_MNIST_URL``, ``SUITE_CIFAR10_URL``):
   the URL of a folder holding the dataset's files under their official names;
2. ``$SUITE_DATA_MIRROR``: a folder with one sub-folder per dataset (``<mirror>/mnist/...``);
3. the official locations in :data:`DATASETS` (tried in order).

You can also put the files into the cache folder by hand; nothing is downloaded then. Offline with
nothing cached, loading raises a one-line :class:`SuiteError` that says all this.

CIFAR-10's "python version" stores its batches as Python pickles, and unpickling can run code. We
parse them only after the archive's SHA-256 matched the published one, never extract the archive
to disk (members are read by their exact official names), and unpickle with an unpickler that only
resolves the few numpy names an array needs (:class:`ArrayUnpickler`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.errors import SuiteError
from tasks.base import cache_dir

MIRROR_ENV = "SUITE_DATA_MIRROR"
TIMEOUT_S = 60.0
CHUNK = 1 << 20


@dataclass(frozen=True)
class DatasetFiles:
    """The official files of one dataset.

    Args:
        name: dataset name (the cache sub-folder and the task name).
        urls: official base URLs (folders), tried in order.
        sha256: official file name -> SHA-256 hex digest.
    """

    name: str
    urls: tuple[str, ...]
    sha256: dict[str, str]

    @property
    def env(self) -> str:
        """Environment variable overriding the base URL: ``SUITE_<NAME>_URL``."""
        return "SUITE_" + self.name.upper().replace("-", "_") + "_URL"

    def base_urls(self) -> tuple[str, ...]:
        if os.environ.get(self.env):
            return (os.environ[self.env],)
        if os.environ.get(MIRROR_ENV):
            return (os.environ[MIRROR_ENV].rstrip("/") + "/" + self.name,)
        return self.urls

    def folder(self) -> Path:
        return cache_dir() / "downloads" / self.name


# Official SHA-256 digests. MNIST and Fashion-MNIST: the four gzipped idx files as published (the
# same digests TensorFlow Datasets pins); CIFAR-10: cifar-10-python.tar.gz from the Toronto site
# (torchvision pins its MD5 c58f30108f718f92721af3b95e74349a).
DATASETS: dict[str, DatasetFiles] = {
    "mnist": DatasetFiles(
        "mnist",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": DatasetFiles(
        "fashion-mnist",
        ("https://fashion-mnist.s3.eu-central-1.amazonaws.com/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        {
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
    "cifar10": DatasetFiles(
        "cifar10",
        ("https://www.cs.toronto.edu/~kriz/",),
        {"cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
    ),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _url(base: str, filename: str) -> str:
    return base.rstrip("/") + "/" + filename


def _download(url: str, dest: Path) -> str:
    """Stream ``url`` to ``dest``; return the SHA-256 of what was written."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "dl-benchsuite"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(dest, "wb") as f:
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def fetch(dataset: str, filename: str) -> Path:
    """Path of a verified copy of one official file, downloaded into the cache when missing.

    Raises:
        SuiteError: offline (or every source failed) with nothing cached, or every download had
            the wrong SHA-256 (the bad files are deleted).
    """
    spec = DATASETS[dataset]
    expected = spec.sha256[filename]
    folder = spec.folder()
    path = folder / filename
    note = ""
    if path.exists():
        got = sha256_of(path)
        if got == expected:
            return path
        path.unlink()  # corrupt or replaced: never parsed, fetched again below
        note = f" (the cached {filename} had SHA-256 {got}, not {expected}, and was deleted)"
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    mismatch = None
    for base in spec.base_urls():
        url = _url(base, filename)
        tmp = folder / f".{filename}.{os.getpid()}.part"
        try:
            got = _download(url, tmp)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
                exc.close()
            else:
                reason = getattr(exc, "reason", None) or exc
            problems.append(f"{url}: {reason}")
            continue
        if got != expected:
            tmp.unlink(missing_ok=True)
            mismatch = (url, got)
            continue
        os.replace(tmp, path)
        return path
    if mismatch is not None:
        url, got = mismatch
        raise SuiteError(
            f"dataset {dataset!r}: {url} gave a file with SHA-256 {got}, expected {expected}; the "
            f"file was discarded (a corrupt download or a wrong mirror; check ${spec.env} / ${MIRROR_ENV})"
        )
    raise SuiteError(
        f"dataset {dataset!r} is not cached in {folder}{note} and could not be downloaded from "
        f"{'; '.join(problems)}; download {filename} into that folder or set ${spec.env} "
        f"(or ${MIRROR_ENV}) to a reachable copy"
    )


# --------------------------------------------------------------------------------------- parsers


def read_idx(path: Path) -> np.ndarray:
    """A gzipped idx file (the MNIST format) as a uint8 array of its declared shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SuiteError(f"{path} is not a gzipped idx file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise SuiteError(f"{path}: idx header declares shape {dims} but holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_idx_dataset(dataset: str) -> dict[str, np.ndarray]:
    """MNIST-format arrays: ``x_train`` (N, 28, 28) uint8, ``y_train`` (N,) int64, ``x_test``, ..."""
    files = {
        "x_train": "train-images-idx3-ubyte.gz",
        "y_train": "train-labels-idx1-ubyte.gz",
        "x_test": "t10k-images-idx3-ubyte.gz",
        "y_test": "t10k-labels-idx1-ubyte.gz",
    }
    out = {key: read_idx(fetch(dataset, name)) for key, name in files.items()}
    for split in ("train", "test"):
        out[f"y_{split}"] = out[f"y_{split}"].astype(np.int64)
        if len(out[f"x_{split}"]) != len(out[f"y_{split}"]):
            raise SuiteError(f"dataset {dataset!r}: {split} images and labels differ in number")
    return out


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and refuses every other global.

    Python 2 pickles (the CIFAR batches) name ``numpy.core.multiarray``; numpy 2 moved it to
    ``numpy._core``, so such names are resolved there. ``_codecs.encode`` is how protocol-2 pickles
    written by Python 3 spell a bytes object.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        canonical = module.replace("numpy._core", "numpy.core", 1)
        if (canonical, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: not a numpy array part")
        if canonical.startswith("numpy.core") and hasattr(np, "_core"):
            module = canonical.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)


def _cifar_batch(tar: tarfile.TarFile, member: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        f = tar.extractfile(f"{CIFAR_FOLDER}/{member}")
    except KeyError:
        raise SuiteError(f"CIFAR-10 archive has no member {CIFAR_FOLDER}/{member}") from None
    if f is None:
        raise SuiteError(f"CIFAR-10 archive member {member} is not a file")
    try:
        batch = ArrayUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError) as exc:
        raise SuiteError(f"CIFAR-10 batch {member} could not be read: {exc}") from exc
    if not isinstance(batch, dict):
        raise SuiteError(f"CIFAR-10 batch {member} is not a dict but {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    x = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(batch["labels"], dtype=np.int64)
    if len(x) != len(y):
        raise SuiteError(f"CIFAR-10 batch {member}: {len(x)} images but {len(y)} labels")
    return x, y


def load_cifar10() -> dict[str, np.ndarray]:
    """CIFAR-10 arrays: ``x_train`` (50000, 3, 32, 32) uint8, ``y_train`` (50000,) int64, ..."""
    path = fetch("cifar10", "cifar-10-python.tar.gz")
    out = {}
    with tarfile.open(path, "r:gz") as tar:
        for split, members in (("train", CIFAR_TRAIN), ("test", CIFAR_TEST)):
            parts = [_cifar_batch(tar, m) for m in members]
            out[f"x_{split}"] = np.concatenate([p[0] for p in parts])
            out[f"y_{split}"] = np.concatenate([p[1] for p in parts])
    return out
