"""Kuzushiji-49 loader: tiny ``.npz`` files in the official format, never the network."""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from automl_chars import data
from automl_chars.data import k49
from automl_chars.errors import CorruptDatasetError, DatasetUnavailableError

FILES = ("k49-train-imgs.npz", "k49-train-labels.npz", "k49-test-imgs.npz", "k49-test-labels.npz")


def write_k49(folder: Path, per_class: int = 3, test_per_class: int = 1, seed: int = 0) -> dict:
    """Writes the four files (one ``arr_0`` array each, as the official ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", per_class), ("test", test_per_class)):
        y = np.repeat(np.arange(49, dtype=np.uint8), n)
        x = rng.integers(0, 256, size=(len(y), 28, 28), dtype=np.uint8)
        np.savez_compressed(folder / f"k49-{split}-imgs.npz", x)
        np.savez_compressed(folder / f"k49-{split}-labels.npz", y)
        out[split] = (x, y)
    return out


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def k49_files(data_root, monkeypatch):
    """Test files in ``<root>/K49`` with :data:`k49.CHECKSUMS` set to their MD5."""
    folder = data_root / "K49"
    written = write_k49(folder)
    monkeypatch.setattr(k49, "CHECKSUMS", {f: md5(folder / f) for f in FILES})
    written["folder"] = folder
    return written


def test_official_checksums_are_md5_hex():
    assert set(k49.CHECKSUMS) == set(FILES)
    assert all(re.fullmatch(r"[0-9a-f]{32}", v or "") for v in k49.CHECKSUMS.values())


def test_loads_with_stratified_validation(k49_files):
    assert data.is_available("k49")
    ds = data.load("k49")
    assert ds.num_classes == 49 and ds.classes[0] == "あ" and ds.classes[-1] == "ゝ"
    assert ds.sizes == {"train": 2 * 49, "val": 49, "test": 49}
    assert (ds.class_counts("val") == 1).all()
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == torch.uint8 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64
    x_test, y_test = k49_files["test"]
    assert np.array_equal(ds.x_test[:, 0].numpy(), x_test)
    assert np.array_equal(ds.y_test.numpy(), y_test)


def test_official_checksum_rejects_other_files(data_root):
    write_k49(data_root / "K49")  # the real CHECKSUMS cannot match these files
    with pytest.raises(CorruptDatasetError, match="MD5 checksum mismatch") as err:
        data.load("k49")
    assert "k49-train-imgs.npz" in str(err.value)


def test_wrong_checksum_is_corrupt_and_verify_false_skips_it(k49_files, monkeypatch):
    monkeypatch.setitem(k49.CHECKSUMS, "k49-test-labels.npz", "0" * 32)
    with pytest.raises(CorruptDatasetError) as err:
        data.load("k49")
    assert str(k49_files["folder"] / "k49-test-labels.npz") in str(err.value)
    assert data.load("k49", verify=False).num_classes == 49


def test_unknown_checksum_is_not_checked(k49_files, monkeypatch):
    write_k49(k49_files["folder"], seed=1)  # every file changes; only the known sums are compared
    monkeypatch.setattr(k49, "CHECKSUMS", dict.fromkeys(FILES))
    assert data.load("k49").sizes["test"] == 49


@pytest.mark.parametrize("content", [b"garbage, not a zip", b"PK\x03\x04truncated"])
def test_garbage_npz_is_corrupt(k49_files, monkeypatch, content):
    path = k49_files["folder"] / "k49-train-imgs.npz"
    path.write_bytes(content)
    monkeypatch.setitem(k49.CHECKSUMS, path.name, md5(path))
    with pytest.raises(CorruptDatasetError, match="not a K49 .npz file"):
        data.load("k49")


def test_npz_without_arr_0_is_corrupt(k49_files, monkeypatch):
    path = k49_files["folder"] / "k49-test-imgs.npz"
    np.savez(path, images=np.zeros((49, 28, 28), np.uint8))
    monkeypatch.setitem(k49.CHECKSUMS, path.name, None)
    with pytest.raises(CorruptDatasetError, match="arr_0"):
        data.load("k49")


@pytest.mark.parametrize(
    "file, array, match",
    [
        ("k49-test-labels.npz", np.full(49, 60, np.uint8), "labels outside"),
        ("k49-test-labels.npz", np.zeros(5, np.uint8), "expected 49 integer labels"),
        ("k49-test-imgs.npz", np.zeros((49, 32, 32), np.uint8), "expected uint8 images"),
    ],
)
def test_bad_arrays_are_corrupt(k49_files, monkeypatch, file, array, match):
    np.savez(k49_files["folder"] / file, array)
    monkeypatch.setitem(k49.CHECKSUMS, file, None)
    with pytest.raises(CorruptDatasetError, match=match):
        data.load("k49")


def test_missing_names_dataset_folder_and_url(data_root):
    assert not data.is_available("k49")
    with pytest.raises(DatasetUnavailableError) as err:
        data.load("k49")
    msg = str(err.value)
    assert "'k49'" in msg and str(data_root / "K49") in msg
    assert "http://codh.rois.ac.jp/kmnist/dataset/k49/k49-train-imgs.npz" in msg


def test_download_without_network_is_unavailable(data_root, monkeypatch):
    tried = []

    def urlopen(req, *args, **kwargs):
        tried.append(req)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(DatasetUnavailableError, match="download failed"):
        data.load("k49", download=True)
    assert tried


def test_download_fetches_only_missing_files_with_md5(data_root, monkeypatch):
    src = data_root / "mirror"
    write_k49(src)
    monkeypatch.setattr(k49, "CHECKSUMS", {f: md5(src / f) for f in FILES})
    (data_root / "K49").mkdir()
    (data_root / "K49" / FILES[0]).write_bytes((src / FILES[0]).read_bytes())
    calls = []

    def fake_download_url(url, root, filename, md5_sum):
        calls.append((url, filename, md5_sum))
        (Path(root) / filename).write_bytes((src / filename).read_bytes())

    monkeypatch.setattr(k49, "download_url", fake_download_url)
    ds = data.load("k49", download=True)
    assert ds.num_classes == 49
    assert [c[1] for c in calls] == list(FILES[1:])
    assert all(u == k49.BASE_URL + f and m == k49.CHECKSUMS[f] for u, f, m in calls)
