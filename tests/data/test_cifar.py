"""CIFAR-10/100 through torchvision's reader, on tiny files in the real format (never the network).

The files are written here in the official layout (Python pickles of ``{"data": uint8 (n, 3072),
"labels": [...]}`` batches and a metadata pickle), and torchvision's MD5 table is pointed at
them, as it would be at the real ones: loading goes through ``CIFAR10(root, download=False)``,
unpacking through the official archive name, a download through ``CIFAR10(download=True)``.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_public import no_network
from torchvision.datasets import CIFAR10, CIFAR100

from automl_chars import data
from automl_chars.errors import CorruptDatasetError, DatasetUnavailableError

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10(root: Path, per_class: int = 5, test_per_class: int = 1, seed: int = 0) -> dict:
    """``root/cifar-10-batches-py`` with five training batches, a test batch and batches.meta,
    as the official archive holds them; returns the images (N, 3, 32, 32) and labels written."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def batch(name: str, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
        entry = {"batch_label": f"{name} of 1", "labels": labels.tolist(),
                 "data": images.reshape(len(labels), 3072),  # rows: R plane, G plane, B plane
                 "filenames": [f"img_{i}.png" for i in range(len(labels))]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        return images, labels

    train_labels = rng.permutation(np.repeat(np.arange(10), per_class))
    parts = [batch(f"data_batch_{i + 1}", chunk)
             for i, chunk in enumerate(np.array_split(train_labels, 5))]
    test = batch("test_batch", np.repeat(np.arange(10), test_per_class))
    meta = {"num_cases_per_batch": per_class * 10, "label_names": CIFAR10_CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"folder": folder, "train": (np.concatenate([p[0] for p in parts]), train_labels),
            "test": test}


def point_md5s_at(monkeypatch, cls, folder: Path, archive: Path | None = None) -> None:
    """torchvision's MD5 table of ``cls`` as it is for the real files, for the files written."""
    monkeypatch.setattr(cls, "train_list", [[f, _md5(folder / f)] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, _md5(folder / f)] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / cls.meta["filename"])})
    if archive is not None:
        monkeypatch.setattr(cls, "tgz_md5", _md5(archive))


def _pack(root: Path, folder: Path, name: str = "cifar-10-python.tar.gz") -> Path:
    archive = root / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def test_cifar10_loads_through_torchvision_as_rgb(data_root, monkeypatch):
    written = write_cifar10(data_root, per_class=10)
    point_md5s_at(monkeypatch, CIFAR10, written["folder"])
    assert data.is_available("cifar10")
    ds = data.load("cifar10")
    assert ds.image_shape == (3, 32, 32) and ds.classes == tuple(CIFAR10_CLASSES)
    assert ds.sizes == {"train": 90, "val": 10, "test": 10}
    assert np.array_equal(ds.class_counts("val"), [1] * 10)  # stratified 10% hold-out
    # The pixels are the files' planes in order: channel 0 red, 1 green, 2 blue.
    x_test, y_test = written["test"]
    assert torch.equal(ds.x_test, torch.from_numpy(x_test)) and ds.y_test.tolist() == y_test.tolist()
    train = {r.tobytes(): int(label) for r, label in zip(*written["train"])}
    assert all(train[x.numpy().tobytes()] == int(y) for x, y in zip(ds.x_train, ds.y_train))


def test_a_missing_set_names_the_folder_archive_and_address(data_root):
    assert not data.is_available("cifar10")
    with pytest.raises(DatasetUnavailableError) as err:
        data.load("cifar10")
    msg = str(err.value)
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg and CIFAR10.url in msg


def test_a_damaged_batch_is_corrupt_and_named(data_root, monkeypatch):
    written = write_cifar10(data_root)
    point_md5s_at(monkeypatch, CIFAR10, written["folder"])
    batch = written["folder"] / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-7] + b"garbage")
    with pytest.raises(CorruptDatasetError, match=r"data_batch_3.*MD5"):
        data.load("cifar10")


def test_a_batch_that_does_not_parse_is_corrupt(data_root, monkeypatch):
    written = write_cifar10(data_root)
    (written["folder"] / "test_batch").write_bytes(b"not a pickle")
    point_md5s_at(monkeypatch, CIFAR10, written["folder"])  # its checksum passes: the read fails
    with pytest.raises(CorruptDatasetError, match=r"unreadable \(UnpicklingError"):
        data.load("cifar10")


def test_the_official_archive_is_unpacked_without_a_download(data_root, monkeypatch):
    written = write_cifar10(data_root / "src")
    _pack(data_root, written["folder"])
    point_md5s_at(monkeypatch, CIFAR10, written["folder"])
    tried = no_network(monkeypatch)
    assert data.is_available("cifar10")
    ds = data.load("cifar10")
    assert not tried and ds.num_classes == 10 and (data_root / "cifar-10-batches-py").is_dir()
    assert not [p for p in data_root.iterdir() if p.name.startswith("tmp")]


def test_a_broken_archive_is_corrupt_and_leaves_no_folder(data_root):
    (data_root / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(CorruptDatasetError, match="cannot unpack"):
        data.load("cifar10")
    assert sorted(p.name for p in data_root.iterdir()) == ["cifar-10-python.tar.gz"]


def test_download_goes_through_torchvision_and_its_failure_is_unavailable(data_root, monkeypatch):
    tried = no_network(monkeypatch)
    with pytest.raises(DatasetUnavailableError, match="download failed"):
        data.load("cifar10", download=True)
    assert tried and tried[0] == CIFAR10.url


def test_download_extracts_an_archive_torchvision_verifies(data_root, monkeypatch):
    """download=True through torchvision's own download code: the archive it would fetch is
    already there with the checksum it expects, so it is verified and extracted, offline."""
    written = write_cifar10(data_root / "src")
    archive = _pack(data_root / "src", written["folder"])
    point_md5s_at(monkeypatch, CIFAR10, written["folder"], archive)
    tried = no_network(monkeypatch)
    CIFAR10(str(data_root / "src"), train=True, download=True)  # the verify-then-extract path
    archive.rename(data_root / archive.name)
    ds = data.load("cifar10", download=True)
    assert not tried and ds.sizes["test"] == 10


def test_cifar100_reads_fine_labels(data_root, monkeypatch):
    folder = data_root / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    names = [f"class{i:02d}" for i in range(100)]
    for split, n in (("train", 300), ("test", 100)):
        labels = np.arange(n) % 100
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist()}
        (folder / split).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names,
                                                "coarse_label_names": names[:20]}))
    point_md5s_at(monkeypatch, CIFAR100, folder)
    ds = data.load("cifar100")
    assert ds.num_classes == 100 and ds.classes[7] == "class07" and ds.image_shape == (3, 32, 32)
    assert ds.sizes == {"train": 200, "val": 100, "test": 100}
