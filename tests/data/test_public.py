"""Public datasets (MNIST family, Omniglot): tiny files in the real formats, never the network."""

from __future__ import annotations

import gzip
import struct
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from automl_chars import data
from automl_chars.data import public
from automl_chars.errors import CorruptDatasetError, DatasetUnavailableError

# The real layouts, written out here (not taken from the module) so the tests check them:
# name -> (folder under the root, raw file names, number of classes, label offset, QMNIST labels)
MNIST_STYLE = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
QMNIST_FILES = (
    "qmnist-train-images-idx3-ubyte",
    "qmnist-train-labels-idx2-int",
    "qmnist-test-images-idx3-ubyte",
    "qmnist-test-labels-idx2-int",
)


def _emnist(split):
    return tuple(
        f"emnist-{split}-{s}-{k}"
        for s in ("train", "test")
        for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


LAYOUTS = {
    "mnist": ("MNIST", MNIST_STYLE, 10, 0, False),
    "kmnist": ("KMNIST", MNIST_STYLE, 10, 0, False),
    "qmnist": ("QMNIST", QMNIST_FILES, 10, 0, True),
    "emnist-byclass": ("EMNIST", _emnist("byclass"), 62, 0, False),
    "emnist-bymerge": ("EMNIST", _emnist("bymerge"), 47, 0, False),
    "emnist-balanced": ("EMNIST", _emnist("balanced"), 47, 0, False),
    "emnist-letters": ("EMNIST", _emnist("letters"), 26, 1, False),
    "emnist-digits": ("EMNIST", _emnist("digits"), 10, 0, False),
    "emnist-mnist": ("EMNIST", _emnist("mnist"), 10, 0, False),
}
IDX_TYPES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding: 0x00 0x00 <type> <ndim>, big-endian uint32 sizes, big-endian data."""
    header = bytes([0, 0, IDX_TYPES[arr.dtype], arr.ndim]) + struct.pack(
        f">{arr.ndim}I", *arr.shape
    )
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx_family(
    root: Path,
    name: str,
    per_class: int = 3,
    test_per_class: int = 1,
    gz: bool = False,
    seed: int = 0,
) -> dict:
    """Writes a small copy of ``name``'s four raw files; returns what was written."""
    folder, files, n_cls, offset, qmnist = LAYOUTS[name]
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n, (img_file, lbl_file) in (
        ("train", per_class, files[:2]),
        ("test", test_per_class, files[2:]),
    ):
        y = np.repeat(np.arange(n_cls), n)
        x = rng.integers(0, 256, size=(len(y), 28, 28), dtype=np.uint8)
        stored = y + offset
        if qmnist:  # (N, 8) int32 matrix: digit first, then writer/index metadata
            stored = np.column_stack([stored, rng.integers(0, 1000, size=(len(y), 7))]).astype(
                np.int32
            )
        for fname, arr in (
            (img_file, x),
            (lbl_file, stored.astype(np.int32) if qmnist else stored.astype(np.uint8)),
        ):
            payload = idx_bytes(arr)
            if gz:
                (raw / f"{fname}.gz").write_bytes(gzip.compress(payload))
            else:
                (raw / fname).write_bytes(payload)
        out[split] = (x, y)
    out["raw"] = raw
    out["files"] = files
    return out


def no_network(monkeypatch) -> list[str]:
    """Makes every urllib request fail as offline; returns the URLs that were tried."""
    tried = []

    def urlopen(req, *args, **kwargs):
        tried.append(getattr(req, "full_url", req))
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return tried


# -- MNIST family -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_idx_family_loads(data_root, name):
    written = write_idx_family(data_root, name)
    n_cls, transposed = LAYOUTS[name][2], name.startswith("emnist")
    assert data.is_available(name)
    ds = data.load(name)
    assert ds.name == name and ds.num_classes == n_cls
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == torch.uint8 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64
    # Official test split kept in order; validation is a stratified share of the official train split.
    x_test, y_test = written["test"]
    expect = x_test.transpose(0, 2, 1) if transposed else x_test
    assert np.array_equal(ds.x_test[:, 0].numpy(), expect)
    assert np.array_equal(ds.y_test.numpy(), y_test)
    assert ds.sizes == {"train": 2 * n_cls, "val": n_cls, "test": n_cls}
    assert (ds.class_counts("val") == 1).all() and (ds.class_counts("train") == 2).all()


def test_validation_split_partitions_train_and_is_fixed(data_root):
    x, y = write_idx_family(data_root, "mnist", per_class=10)["train"]
    a, b = data.load("mnist"), data.load("mnist")
    assert torch.equal(a.y_val, b.y_val) and torch.equal(a.x_val, b.x_val)
    both = np.concatenate([a.x_train[:, 0].numpy(), a.x_val[:, 0].numpy()])
    labels = np.concatenate([a.y_train.numpy(), a.y_val.numpy()])
    order, ref = np.lexsort(both.reshape(len(both), -1).T), np.lexsort(x.reshape(len(x), -1).T)
    assert np.array_equal(both[order], x[ref]) and np.array_equal(labels[order], y[ref])
    assert (a.class_counts("val") == 1).all()  # 10% of 10 per class
    assert a.classes == tuple("0123456789")


def test_emnist_images_are_transposed_upright(data_root):
    written = write_idx_family(data_root, "emnist-digits")
    raw, files = written["raw"], written["files"]
    x = np.zeros((10, 28, 28), np.uint8)
    x[:, 5, :] = 255  # stored as a horizontal bar: EMNIST keeps images transposed
    (raw / files[2]).write_bytes(idx_bytes(x))
    ds = data.load("emnist-digits")
    img = ds.x_test[0, 0].numpy()
    assert (img[:, 5] == 255).all() and img.sum() == 255 * 28  # shown as a vertical bar


def test_emnist_letters_remapped_to_26_classes(data_root):
    write_idx_family(data_root, "emnist-letters")
    ds = data.load("emnist-letters")
    assert ds.num_classes == 26 and ds.classes == tuple("abcdefghijklmnopqrstuvwxyz")
    assert int(ds.y_test.min()) == 0 and int(ds.y_test.max()) == 25


def test_emnist_balanced_class_names(data_root):
    write_idx_family(data_root, "emnist-balanced")
    classes = data.load("emnist-balanced").classes
    assert classes[:11] == tuple("0123456789A") and classes[-1] == "t" and "c" not in classes


def test_qmnist_uses_first_column_of_label_matrix(data_root):
    written = write_idx_family(data_root, "qmnist")
    ds = data.load("qmnist")
    assert np.array_equal(ds.y_test.numpy(), written["test"][1])
    assert ds.classes == tuple("0123456789")


def test_gzipped_files_are_unpacked(data_root):
    written = write_idx_family(data_root, "kmnist", gz=True)
    assert data.is_available("kmnist")
    ds = data.load("kmnist")
    assert np.array_equal(ds.x_test[:, 0].numpy(), written["test"][0])
    assert all((written["raw"] / f).is_file() for f in written["files"])
    assert ds.classes[0] == "o"


def test_missing_files_name_dataset_folder_and_url(data_root):
    assert not data.is_available("mnist")
    with pytest.raises(DatasetUnavailableError) as err:
        data.load("mnist")
    msg = str(err.value)
    assert "'mnist'" in msg and str(data_root / "MNIST" / "raw") in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in msg


def test_one_missing_file_is_unavailable(data_root):
    written = write_idx_family(data_root, "mnist")
    (written["raw"] / "t10k-labels-idx1-ubyte").unlink()
    assert not data.is_available("mnist")
    with pytest.raises(DatasetUnavailableError, match="t10k-labels-idx1-ubyte"):
        data.load("mnist")


def test_truncated_idx_is_corrupt(data_root):
    written = write_idx_family(data_root, "mnist")
    path = written["raw"] / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptDatasetError) as err:
        data.load("mnist")
    assert str(path) in str(err.value) and "'mnist'" in str(err.value)


@pytest.mark.parametrize("content", [b"\x00\x00\x08\x07" + b"\x00" * 64, b"GARBAGE!" * 20, b"\x00"])
def test_wrong_magic_is_corrupt(data_root, content):
    written = write_idx_family(data_root, "emnist-balanced")
    path = written["raw"] / "emnist-balanced-test-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(CorruptDatasetError, match="not a valid IDX file"):
        data.load("emnist-balanced")


def test_images_file_in_place_of_labels_is_corrupt(data_root):
    written = write_idx_family(data_root, "mnist")
    raw = written["raw"]
    (raw / "train-labels-idx1-ubyte").write_bytes((raw / "train-images-idx3-ubyte").read_bytes())
    with pytest.raises(CorruptDatasetError, match="train-labels-idx1-ubyte"):
        data.load("mnist")


def test_images_not_28x28_are_corrupt(data_root):
    written = write_idx_family(data_root, "mnist")
    (written["raw"] / "t10k-images-idx3-ubyte").write_bytes(
        idx_bytes(np.zeros((10, 80, 80), np.uint8))
    )
    with pytest.raises(CorruptDatasetError, match="expected 28x28"):
        data.load("mnist")


def test_label_count_mismatch_is_corrupt(data_root):
    written = write_idx_family(data_root, "mnist")
    (written["raw"] / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(CorruptDatasetError, match="3 labels for 10 images"):
        data.load("mnist")


def test_labels_out_of_range_are_corrupt(data_root):
    written = write_idx_family(data_root, "mnist")
    (written["raw"] / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(10, 12, np.uint8)))
    with pytest.raises(CorruptDatasetError, match="labels outside"):
        data.load("mnist")


def test_bad_gzip_is_corrupt_and_leaves_no_file(data_root):
    written = write_idx_family(data_root, "mnist", gz=True)
    gz = written["raw"] / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:30])
    with pytest.raises(CorruptDatasetError, match="gzip") as err:
        data.load("mnist")
    assert str(gz) in str(err.value)
    assert not (written["raw"] / "t10k-images-idx3-ubyte").exists()
    assert not list(written["raw"].glob("*.tmp"))


@pytest.mark.parametrize(
    "name", ["mnist", "kmnist", "qmnist", "emnist-letters", "omniglot-evaluation"]
)
def test_download_without_network_is_unavailable(data_root, monkeypatch, name):
    tried = no_network(monkeypatch)
    with pytest.raises(DatasetUnavailableError) as err:
        data.load(name, download=True)
    assert tried, "torchvision's download was not attempted"
    assert "download failed" in str(err.value) and f"'{name}'" in str(err.value)


def test_download_skipped_when_files_present(data_root, monkeypatch):
    tried = no_network(monkeypatch)
    write_idx_family(data_root, "mnist")
    assert data.load("mnist", download=True).num_classes == 10
    assert not tried


# -- Omniglot -----------------------------------------------------------------------------------
def write_omniglot(base: Path, chars: dict[str, int], drawings: int = 20) -> Path:
    """``base/<Alphabet>/characterXX/*.png``: 105x105 1-bit, black strokes on white like Omniglot."""
    base.mkdir(parents=True, exist_ok=True)
    k = 0
    for alphabet, n_chars in chars.items():
        for c in range(1, n_chars + 1):
            folder = base / alphabet / f"character{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for d in range(drawings):
                # a black block: its row says the character, its column the drawing (all distinct)
                img = np.full((105, 105), 255, np.uint8)
                img[8 + 12 * k : 20 + 12 * k, 4 * d : 4 * d + 20] = 0
                Image.fromarray(img).convert("1").save(folder / f"{c:04d}_{d + 1:02d}.png")
            k += 1
    return base


def test_omniglot_loads_inverted_resized_and_split(data_root):
    write_omniglot(data_root / "omniglot-py" / "images_background", {"Alpha": 2, "Beta": 1})
    assert data.is_available("omniglot-background") and not data.is_available("omniglot-evaluation")
    ds = data.load("omniglot-background")
    assert ds.classes == ("Alpha/character01", "Alpha/character02", "Beta/character01")
    assert ds.sizes == {"train": 3 * 14, "val": 3 * 3, "test": 3 * 3}
    for split in ("train", "val", "test"):
        assert (ds.class_counts(split) == {"train": 14, "val": 3, "test": 3}[split]).all()
    x = ds.x_train
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.uint8
    assert (
        int(x[:, 0, 0, 0].max()) == 0 and int(x.amax(dim=(1, 2, 3)).min()) == 255
    )  # white on black
    # every drawing is in exactly one split
    all_x = torch.cat([ds.x_train, ds.x_val, ds.x_test]).flatten(1)
    assert len(torch.unique(all_x, dim=0)) == 60


def test_omniglot_cache_is_written_reused_and_rebuilt(data_root):
    images = write_omniglot(
        data_root / "omniglot-py" / "images_evaluation", {"Gamma": 2}, drawings=5
    )
    first = data.load("omniglot-evaluation")
    cache = data_root / "processed" / "omniglot-evaluation.npz"
    assert cache.is_file()
    for png in images.rglob("*.png"):  # the cache alone is enough now
        png.unlink()
    again = data.load("omniglot-evaluation")
    assert torch.equal(again.x_test, first.x_test) and again.classes == first.classes
    cache.write_bytes(b"not an npz")  # an unreadable cache is rebuilt from the PNGs
    write_omniglot(images, {"Gamma": 2}, drawings=5)
    rebuilt = data.load("omniglot-evaluation")
    assert torch.equal(rebuilt.x_test, first.x_test)
    assert data.Dataset.load_file(cache, "omniglot-evaluation").sizes == first.sizes


def test_omniglot_zip_is_unpacked(data_root):
    write_omniglot(data_root / "src" / "images_background", {"Alpha": 1}, drawings=4)
    base = data_root / "omniglot-py"
    base.mkdir()
    with zipfile.ZipFile(base / "images_background.zip", "w") as z:
        for f in (data_root / "src").rglob("*.png"):
            z.write(f, f.relative_to(data_root / "src"))
    assert data.is_available("omniglot-background")
    ds = data.load("omniglot-background")
    assert ds.classes == ("Alpha/character01",) and sum(ds.sizes.values()) == 4
    assert (base / "images_background" / "Alpha" / "character01").is_dir()


def test_omniglot_bad_zip_is_corrupt(data_root):
    base = data_root / "omniglot-py"
    base.mkdir()
    (base / "images_background.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CorruptDatasetError, match="images_background.zip"):
        data.load("omniglot-background")
    assert not (base / "images_background").exists()


def test_omniglot_bad_png_is_corrupt(data_root):
    images = write_omniglot(
        data_root / "omniglot-py" / "images_background", {"Alpha": 1}, drawings=3
    )
    bad = images / "Alpha" / "character01" / "0001_02.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(CorruptDatasetError) as err:
        data.load("omniglot-background")
    assert str(bad) in str(err.value)
    assert not (data_root / "processed" / "omniglot-background.npz").exists()


def test_omniglot_missing_names_folder_and_zip_url(data_root):
    with pytest.raises(DatasetUnavailableError) as err:
        data.load("omniglot-evaluation")
    msg = str(err.value)
    assert str(data_root / "omniglot-py") in msg
    assert (
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_evaluation.zip"
        in msg
    )


# -- every public name --------------------------------------------------------------------------
PUBLIC_NAMES = [n for n in data.names() if not data.spec(n).builtin]


def test_all_expected_names_registered():
    expected = set(LAYOUTS) | {"omniglot-background", "omniglot-evaluation", "k49"}
    assert expected <= set(PUBLIC_NAMES)
    assert public.IDX_DATASETS and all(data.spec(n).urls for n in expected)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_missing_files_error_names_dataset_and_url(data_root, name):
    assert not data.is_available(name)
    with pytest.raises(DatasetUnavailableError) as err:
        data.load(name)
    msg = str(err.value)
    assert f"'{name}'" in msg and str(data_root) in msg
    assert data.spec(name).urls and data.spec(name).urls[0] in msg and "http" in msg
    assert err.value.dataset == name


def test_emnist_zip_unpacked_by_torchvision_download_offline(data_root, monkeypatch):
    """download=True with the official gzip.zip already in place needs no network."""
    import hashlib

    from torchvision.datasets import EMNIST

    src = write_idx_family(data_root / "src", "emnist-digits", gz=True)
    raw = data_root / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    with zipfile.ZipFile(raw / "gzip.zip", "w") as z:
        for f in src["files"]:
            z.write(src["raw"] / f"{f}.gz", f"gzip/{f}.gz")
    monkeypatch.setattr(EMNIST, "md5", hashlib.md5((raw / "gzip.zip").read_bytes()).hexdigest())
    tried = no_network(monkeypatch)
    assert not data.is_available("emnist-digits")
    ds = data.load("emnist-digits", download=True)
    assert not tried and ds.num_classes == 10
    assert np.array_equal(ds.x_test[:, 0].numpy(), src["test"][0].transpose(0, 2, 1))
