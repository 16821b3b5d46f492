"""Downloads of the opt-in datasets, against small files in the official formats served locally.

A local HTTP server on 127.0.0.1 serves tiny MNIST-format idx files and a tiny CIFAR-10 tarball;
the checksum table is patched to their hashes. Nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import socket
import struct
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from suite.errors import SuiteError
from tasks import downloads, get_task

N_TRAIN, N_TEST = 120, 20  # 12 training images per class: enough for a stratified 1/12 validation


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped idx file of unsigned bytes, as the MNIST files are."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_idx_dataset(folder: Path, seed: int) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "y_train": np.arange(N_TRAIN, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "y_test": np.arange(N_TEST, dtype=np.uint8) % 10,
    }
    names = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
    for key, name in names.items():
        write_idx(folder / name, arrays[key])
    return arrays


def make_cifar(folder: Path, batches: dict[str, object] | None = None) -> dict[str, np.ndarray]:
    """``cifar-10-python.tar.gz`` with 5 training batches of 20 images and a test batch of 20."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays: dict[str, list] = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    members = {}
    for member in [*downloads.CIFAR_TRAIN, *downloads.CIFAR_TEST]:
        data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(20)]
        split = "test" if member == "test_batch" else "train"
        arrays[f"x_{split}"].append(data.reshape(-1, 3, 32, 32))
        arrays[f"y_{split}"].append(np.array(labels))
        batch = {"batch_label": member, "labels": labels, "data": data,
                 "filenames": [f"img{i}.png" for i in range(20)]}
        members[member] = pickle.dumps((batches or {}).get(member, batch), protocol=2)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for member, blob in members.items():
            info = tarfile.TarInfo(f"{downloads.CIFAR_FOLDER}/{member}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return {k: np.concatenate(v) for k, v in arrays.items()}


class CountingHandler(SimpleHTTPRequestHandler):
    hits: list[str]

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """``(base_url, served_folder, hits)`` of an HTTP server on 127.0.0.1 in a thread."""
    root = tmp_path / "served"
    root.mkdir()
    hits: list[str] = []
    handler = type("Handler", (CountingHandler,), {"hits": hits})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, hits
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SUITE_CACHE", str(folder))
    for env in ("SUITE_DATA_MIRROR", "SUITE_MNIST_URL", "SUITE_FASHION_MNIST_URL", "SUITE_CIFAR10_URL"):
        monkeypatch.delenv(env, raising=False)
    return folder


def pin(monkeypatch, dataset: str, folder: Path, **override: str) -> dict[str, str]:
    """Patch the checksum table of ``dataset`` to the hashes of the files in ``folder``."""
    table = {p.name: sha256(p) for p in folder.iterdir()}
    table.update(override)
    spec = dataclasses.replace(downloads.DATASETS[dataset], sha256=table)
    monkeypatch.setitem(downloads.DATASETS, dataset, spec)
    return table


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_official_tables_are_complete():
    assert set(downloads.DATASETS["mnist"].sha256) == set(downloads.DATASETS["fashion-mnist"].sha256) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert set(downloads.DATASETS["cifar10"].sha256) == {"cifar-10-python.tar.gz"}
    for spec in downloads.DATASETS.values():
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in spec.sha256.values())
    assert downloads.DATASETS["fashion-mnist"].env == "SUITE_FASHION_MNIST_URL"


def test_downloaded_tasks_are_opt_in():
    for name in ("mnist", "fashion-mnist", "cifar10"):
        task = get_task(name)
        assert task.download and task.summary()["download"]
        assert task.kind == "classification" and task.metric == "accuracy" and task.outputs == 10
    assert get_task("cifar10").input_shape == (3, 32, 32)
    assert get_task("mnist").input_shape == get_task("fashion-mnist").input_shape == (1, 28, 28)


def test_mnist_download_parse_and_cache(server, cache, monkeypatch):
    url, root, hits = server
    arrays = make_idx_dataset(root / "mnist", seed=0)
    pin(monkeypatch, "mnist", root / "mnist")
    monkeypatch.setenv("SUITE_MNIST_URL", f"{url}/mnist/")
    out = downloads.load_idx_dataset("mnist")
    assert out["x_train"].shape == (N_TRAIN, 28, 28) and out["x_test"].shape == (N_TEST, 28, 28)
    assert out["y_train"].dtype == np.int64
    for key in arrays:
        assert np.array_equal(out[key], arrays[key])
    assert len(hits) == 4
    assert sorted(p.name for p in (cache / "downloads" / "mnist").iterdir()) == sorted(
        downloads.DATASETS["mnist"].sha256)
    # second load: from the cache, even with the server unreachable
    monkeypatch.setenv("SUITE_MNIST_URL", closed_port_url())
    again = downloads.load_idx_dataset("mnist")
    assert len(hits) == 4 and np.array_equal(again["x_train"], arrays["x_train"])


def test_mnist_task_splits_from_downloaded_files(server, cache, monkeypatch):
    url, root, _ = server
    arrays = make_idx_dataset(root / "mnist", seed=1)
    pin(monkeypatch, "mnist", root / "mnist")
    monkeypatch.setenv("SUITE_MNIST_URL", f"{url}/mnist")
    splits = get_task("mnist").loader.__wrapped__(0)  # bypass the in-process cache
    assert splits.sizes() == {"train": 110, "val": 10, "test": N_TEST}
    assert tuple(splits.train.x.shape[1:]) == (1, 28, 28)
    assert float(splits.train.x.min()) >= 0 and float(splits.train.x.max()) <= 1
    assert sorted(splits.val.y.tolist()) == list(range(10))  # stratified
    assert np.allclose(splits.test.x[:, 0].numpy() * 255, arrays["x_test"], atol=1e-3)


def test_mirror_variable_serves_every_dataset(server, cache, monkeypatch):
    url, root, hits = server
    make_idx_dataset(root / "fashion-mnist", seed=2)
    pin(monkeypatch, "fashion-mnist", root / "fashion-mnist")
    monkeypatch.setenv("SUITE_DATA_MIRROR", url)
    out = downloads.load_idx_dataset("fashion-mnist")
    assert out["x_train"].shape == (N_TRAIN, 28, 28)
    assert all(h.startswith("/fashion-mnist/") for h in hits)


def test_checksum_mismatch_is_refused_and_file_discarded(server, cache, monkeypatch):
    url, root, _ = server
    make_idx_dataset(root / "mnist", seed=0)
    pin(monkeypatch, "mnist", root / "mnist", **{"train-labels-idx1-ubyte.gz": "0" * 64})
    monkeypatch.setenv("SUITE_MNIST_URL", url + "/mnist")
    with pytest.raises(SuiteError, match="SHA-256 .* expected 0{64}; the file was discarded") as err:
        downloads.load_idx_dataset("mnist")
    assert "\n" not in str(err.value)
    folder = cache / "downloads" / "mnist"
    assert not (folder / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_corrupt_cached_file_is_never_used(server, cache, monkeypatch):
    url, root, hits = server
    arrays = make_idx_dataset(root / "mnist", seed=0)
    pin(monkeypatch, "mnist", root / "mnist")
    monkeypatch.setenv("SUITE_MNIST_URL", url + "/mnist")
    downloads.load_idx_dataset("mnist")
    cached = cache / "downloads" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    write_idx(cached, np.zeros(N_TEST, dtype=np.uint8))  # a valid idx file with the wrong content
    out = downloads.load_idx_dataset("mnist")
    assert len(hits) == 5 and np.array_equal(out["y_test"], arrays["y_test"])
    # offline, the bad copy is deleted and the error says so
    write_idx(cached, np.zeros(N_TEST, dtype=np.uint8))
    monkeypatch.setenv("SUITE_MNIST_URL", closed_port_url())
    with pytest.raises(SuiteError, match=r"not cached in .* \(the cached t10k-labels-idx1-ubyte.gz had SHA-256 .*, and was deleted\) "
                       "and could not be downloaded from"):
        downloads.load_idx_dataset("mnist")
    assert not cached.exists()


def test_offline_with_nothing_cached_is_one_clear_line(cache, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv("SUITE_MNIST_URL", url)
    with pytest.raises(SuiteError) as err:
        downloads.load_idx_dataset("mnist")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"dataset 'mnist' is not cached in {cache / 'downloads' / 'mnist'} "
                              f"and could not be downloaded from {url}/train-images-idx3-ubyte.gz: ")
    assert "set $SUITE_MNIST_URL" in message and "SUITE_DATA_MIRROR" in message


def test_missing_file_on_server_is_an_offline_style_error(server, cache, monkeypatch):
    url, root, _ = server
    (root / "mnist").mkdir()
    monkeypatch.setenv("SUITE_MNIST_URL", url + "/mnist")
    with pytest.raises(SuiteError, match="could not be downloaded from .*: HTTP 404 "):
        downloads.load_idx_dataset("mnist")


def test_offline_error_reaches_the_cli_as_one_line(cache, monkeypatch):
    from typer.testing import CliRunner

    from suite.cli import app

    monkeypatch.setenv("SUITE_CIFAR10_URL", closed_port_url())
    result = CliRunner().invoke(app, ["run", "--task", "cifar10", "--family", "mlp", "--device", "cpu"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dataset 'cifar10' is not cached in")


def test_cifar10_download_parse_and_cache(server, cache, monkeypatch):
    url, root, hits = server
    arrays = make_cifar(root / "cifar10")
    pin(monkeypatch, "cifar10", root / "cifar10")
    monkeypatch.setenv("SUITE_CIFAR10_URL", url + "/cifar10/")
    out = downloads.load_cifar10()
    assert out["x_train"].shape == (100, 3, 32, 32) and out["x_test"].shape == (20, 3, 32, 32)
    assert out["x_train"].dtype == np.uint8 and out["y_train"].dtype == np.int64
    for key in arrays:
        assert np.array_equal(out[key], arrays[key])
    splits = get_task("cifar10").loader.__wrapped__(0)
    assert splits.sizes() == {"train": 90, "val": 10, "test": 20}
    assert len(hits) == 1  # the task's load used the cached archive


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_pickles_that_name_other_globals_are_refused(server, cache, monkeypatch):
    url, root, _ = server
    make_cifar(root / "cifar10", batches={"data_batch_3": {"data": Exploit()}})
    pin(monkeypatch, "cifar10", root / "cifar10")  # checksum matches: the unpickler is the last guard
    monkeypatch.setenv("SUITE_CIFAR10_URL", url + "/cifar10")
    with pytest.raises(SuiteError, match="data_batch_3 could not be read: refusing to unpickle"):
        downloads.load_cifar10()


def test_no_builtin_benchmark_profile_uses_an_opt_in_task():
    """Downloaded tasks run only when asked for by name (``suite run``) or in a user's own profile."""
    from suite.profile import builtin_profiles, load_profile
    from tasks import TASKS

    opt_in = {name for name, task in TASKS.items() if task.download}
    assert {"mnist", "fashion-mnist", "cifar10"} <= opt_in
    assert builtin_profiles()
    for name in builtin_profiles():
        used = {arm.task for arm in load_profile(name).arms}
        assert not used & opt_in, (name, used & opt_in)
