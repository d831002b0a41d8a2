"""Kuzushiji-49 (K49): 49 classes of cursive hiragana, from the official ``.npz`` files.

The four files (``k49-{train,test}-{imgs,labels}.npz``, one array each under ``arr_0``) are
expected in ``<root>/K49/``; ``download=True`` fetches missing ones from
http://codh.rois.ac.jp/kmnist/dataset/k49/ with torchvision's ``download_url``, which verifies
their MD5.

Checksums: :data:`CHECKSUMS` maps each file name to its MD5 (``None`` = unknown, not checked).
Loading with ``verify=True`` (the default) checks every file whose checksum is known, so a
truncated or swapped file raises :class:`~automl_chars.errors.CorruptDatasetError` instead of
training on bad data. Pass ``verify=False`` to skip it (e.g. for a re-packed copy). Tests that
write small K49-format files replace the entries of :data:`CHECKSUMS` with their own files' MD5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.utils import check_integrity, download_url

from automl_chars.data.dataset import IMAGE_SIZE, Dataset
from automl_chars.data.public import assemble, fetch
from automl_chars.data.registry import register_dataset
from automl_chars.errors import CorruptDatasetError, DatasetUnavailableError

NAME = "k49"
#: Folder under the data root holding the four files.
FOLDER = "K49"
BASE_URL = "http://codh.rois.ac.jp/kmnist/dataset/k49/"
#: Train images, train labels, test images, test labels.
FILES = ("k49-train-imgs.npz", "k49-train-labels.npz", "k49-test-imgs.npz", "k49-test-labels.npz")
URLS = tuple(BASE_URL + f for f in FILES)
#: MD5 of the official files (as published files of several independent K49 loaders hard-code
#: them); ``None`` marks an unknown checksum, which is then not checked.
CHECKSUMS: dict[str, str | None] = {
    "k49-train-imgs.npz": "7ac088b20481cf51dcd01ceaab89d821",
    "k49-train-labels.npz": "44a8e1b893f81e63ff38d73cad420f7a",
    "k49-test-imgs.npz": "d352e201d846ce6b94f42c990966f374",
    "k49-test-labels.npz": "4da6f7a62e67a832d5eb1bd85c5ee448",
}
#: Class names in label order (k49_classmap.csv): 48 hiragana, including the archaic ゐ and ゑ,
#: and the iteration mark ゝ.
CLASSES = tuple(
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわゐゑをんゝ"
)


def _folder(root: Path) -> Path:
    return Path(root) / FOLDER


def _missing(root: Path) -> list[str]:
    return [f for f in FILES if not (_folder(root) / f).is_file()]


def _read(path: Path, verify: bool) -> np.ndarray:
    """The ``arr_0`` array of one file, after its checksum (if known and ``verify``)."""
    md5 = CHECKSUMS.get(path.name)
    if verify and md5 and not check_integrity(str(path), md5):
        raise CorruptDatasetError(
            NAME, str(path), f"MD5 checksum mismatch (expected {md5})", [BASE_URL + path.name]
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["arr_0"]
    except Exception as e:  # BadZipFile, missing arr_0, pickled object arrays, truncation, ...
        raise CorruptDatasetError(
            NAME, str(path), f"not a K49 .npz file: {type(e).__name__}: {e}", [BASE_URL + path.name]
        ) from e


def _split(
    folder: Path, images: str, labels: str, verify: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _read(folder / images, verify), _read(folder / labels, verify)

    def bad(file: str, why: str) -> CorruptDatasetError:
        return CorruptDatasetError(NAME, str(folder / file), why, [BASE_URL + file])

    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise bad(images, f"expected uint8 images (N, 28, 28), got {x.dtype} {x.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise bad(labels, f"expected {len(x)} integer labels, got {y.dtype} {y.shape}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(CLASSES)):
        raise bad(labels, f"labels outside [0, {len(CLASSES)})")
    # np.load hands out read-only arrays; torch wants writable memory.
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def available(root: Path) -> bool:
    """Whether all four K49 files are in ``<root>/K49`` (not opened or checksummed)."""
    return not _missing(root)


@register_dataset(
    NAME,
    available=available,
    description="Kuzushiji-49 cursive hiragana (49 classes, imbalanced, 232,365/38,547)",
    urls=URLS,
)
def load_k49(root: Path, download: bool = False, verify: bool = True) -> Dataset:
    """Loads Kuzushiji-49 from ``<root>/K49``.

    Validation is a stratified 10% of the official training split (seed 0); the test split is
    the official one.

    Args:
        root: data root.
        download: fetch missing files (MD5-verified by torchvision's ``download_url``).
        verify: check each file against :data:`CHECKSUMS` before reading it.

    Raises:
        DatasetUnavailableError: files missing and not downloaded (or the download failed).
        CorruptDatasetError: a file fails its checksum or is not a K49 ``.npz`` array.
    """
    folder = _folder(root)
    if _missing(root):
        if not download:
            raise DatasetUnavailableError(
                NAME, str(folder), list(URLS), f"missing {', '.join(_missing(root))}"
            )
        fetch(
            NAME,
            folder,
            URLS,
            [
                lambda f=f: download_url(BASE_URL + f, str(folder), f, CHECKSUMS.get(f))
                for f in _missing(root)
            ],
            lambda: _missing(root),
        )
    train = _split(folder, FILES[0], FILES[1], verify)
    test = _split(folder, FILES[2], FILES[3], verify)
    return assemble(NAME, *train, *test, classes=CLASSES, source=f"K49 .npz files in {folder}")
