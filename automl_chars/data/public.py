"""Public character datasets fetched and parsed with ``torchvision.datasets``.

Registered names: ``mnist``, ``kmnist``, ``qmnist``, ``emnist-{byclass,bymerge,balanced,letters,
digits,mnist}`` (the MNIST family, IDX files) and ``omniglot-{background,evaluation}`` (PNGs).

Files live in torchvision's own layout under the data root, so an existing torchvision download
is reused: ``<root>/MNIST/raw/train-images-idx3-ubyte``, ``<root>/EMNIST/raw/emnist-...``,
``<root>/omniglot-py/images_background/<Alphabet>/<characterXX>/*.png``. IDX files may also be
left gzipped (``*.gz``, as served by the download addresses); they are unpacked on first use.

Missing files raise :class:`~automl_chars.errors.DatasetUnavailableError` (naming the folder and
the download addresses); unreadable ones raise :class:`~automl_chars.errors.CorruptDatasetError`
(naming the file). torchvision's own exceptions never escape.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import string
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import EMNIST, KMNIST, MNIST, QMNIST, Omniglot
from torchvision.datasets.mnist import (
    read_image_file,
    read_label_file,
    read_sn3_pascalvincent_tensor,
)
from torchvision.datasets.utils import extract_archive

from automl_chars.data.dataset import IMAGE_SIZE, VALIDATION_FRACTION, Dataset
from automl_chars.data.registry import register_dataset
from automl_chars.data.sampling import stratified_split
from automl_chars.errors import CorruptDatasetError, DatasetUnavailableError

log = logging.getLogger(__name__)

#: Omniglot has no official test split: each character's drawings go train/val/test by these shares.
OMNIGLOT_SPLIT = (0.70, 0.15, 0.15)
#: Seed of every split made here (validation hold-out, Omniglot's three-way split).
SPLIT_SEED = 0


# -- shared helpers (also used by automl_chars.data.k49) ---------------------------------------
def processed_path(root: Path, name: str) -> Path:
    """Where the processed cache of dataset ``name`` lives: ``<root>/processed/<name>.npz``."""
    return Path(root) / "processed" / f"{name}.npz"


def assemble(
    name: str,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    classes: Sequence[str],
    source: str,
    *,
    val_fraction: float = VALIDATION_FRACTION,
    seed: int = SPLIT_SEED,
) -> Dataset:
    """Builds a :class:`Dataset` from an official train/test split.

    A stratified ``val_fraction`` of the official training split becomes the validation split,
    fixed by ``seed``; the official test split stays the test split.

    Args:
        name: dataset name.
        x_train: official training images, ``uint8 (N, 1, 28, 28)``.
        y_train: their labels in ``[0, len(classes))``.
        x_test: official test images.
        y_test: their labels.
        classes: class names, index = label.
        source: where the data came from (kept in :attr:`Dataset.source`).
        val_fraction: share of each class held out for validation.
        seed: seed of the hold-out.
    """
    keep, held = (
        torch.from_numpy(i) for i in stratified_split(y_train.numpy(), val_fraction, seed)
    )
    return Dataset(
        name=name,
        x_train=x_train[keep],
        y_train=y_train[keep],
        x_val=x_train[held],
        y_val=y_train[held],
        x_test=x_test,
        y_test=y_test,
        classes=tuple(classes),
        source=source,
    )


def fetch(
    name: str,
    folder: Path,
    urls: Sequence[str],
    downloads: Sequence[Callable[[], object]],
    missing: Callable[[], list[str]],
) -> None:
    """Runs torchvision downloads and turns their failure into :class:`DatasetUnavailableError`.

    What decides the outcome is which files exist afterwards, not the exception type: torchvision
    raises ``URLError``/``OSError``/``RuntimeError`` when the network fails, but its dataset
    classes also parse files right after downloading, and a parse error there is reported more
    precisely by the caller's own reading (as :class:`CorruptDatasetError`). So every download
    runs, and the first error is only reported if files are still missing at the end.

    Args:
        name: dataset name, for the error.
        folder: where the files are expected.
        urls: download addresses, for the error.
        downloads: the torchvision calls that download, e.g. ``MNIST(root, download=True)``.
        missing: lists the files still missing; an empty list means success.
    """
    first: Exception | None = None
    for download in downloads:
        try:
            download()
        except Exception as e:  # see docstring: the files present afterwards decide
            first = first or e
    still = missing()
    if still:
        why = f"{type(first).__name__}: {first}" if first else f"still missing {', '.join(still)}"
        reason = " ".join(f"download failed: {why}".split())[:400]
        raise DatasetUnavailableError(name, str(folder), list(urls), reason) from first


def _gunzip(name: str, gz: Path, urls: Sequence[str]) -> Path:
    """Unpacks ``gz`` next to itself (atomically, so a bad archive leaves no half file)."""
    dest = gz.with_suffix("")
    try:
        with gzip.open(gz, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise CorruptDatasetError(name, str(gz), f"not a valid gzip file: {e}", list(urls)) from e
    fd, tmp = tempfile.mkstemp(dir=gz.parent, prefix=dest.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _read_idx(
    name: str, path: Path, reader: Callable[[str], torch.Tensor], urls: Sequence[str]
) -> torch.Tensor:
    """Parses one IDX file with torchvision's ``reader``; any failure is a corrupt file."""
    try:
        return reader(str(path))
    # torchvision signals bad files with asserts, ValueError, RuntimeError, KeyError, ...
    except Exception as e:
        kind = type(e).__name__
        detail = f"{kind}: {e}" if str(e) else f"{kind}: bad magic number or header"
        raise CorruptDatasetError(
            name, str(path), f"not a valid IDX file ({detail})", list(urls)
        ) from e


def _read_qmnist_labels(path: str) -> torch.Tensor:
    # QMNIST labels are an idx2 int32 matrix (N, 8); column 0 is the digit, the rest is metadata.
    t = read_sn3_pascalvincent_tensor(path, strict=False)
    if t.ndim != 2 or t.shape[1] < 1:
        raise ValueError(f"expected an (N, 8) label matrix, got shape {tuple(t.shape)}")
    return t[:, 0].long()


# -- the MNIST family ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IdxDataset:
    """One MNIST-like dataset: four IDX files in ``<root>/<folder>/raw``.

    Attributes:
        name: registry name.
        tv_class: the torchvision class (or a partial of it) called as
            ``tv_class(root, train=..., download=True)`` to download.
        folder: torchvision's folder name under the root (``MNIST``, ``EMNIST``, ...).
        files: train images, train labels, test images, test labels (names in ``raw``).
        urls: download addresses.
        classes: class names after ``label_offset``.
        description: one line for listings.
        label_offset: subtracted from the stored labels (EMNIST letters store 1..26).
        transpose: the stored images are transposed (EMNIST).
        label_reader: parses a labels file.
        hint: added to the "missing files" error (how the download maps to the files).
    """

    name: str
    tv_class: Callable[..., object]
    folder: str
    files: tuple[str, ...]
    urls: tuple[str, ...]
    classes: tuple[str, ...]
    description: str
    label_offset: int = 0
    transpose: bool = False
    label_reader: Callable[[str], torch.Tensor] = read_label_file
    hint: str = ""

    def raw(self, root: Path) -> Path:
        return Path(root) / self.folder / "raw"

    def missing(self, root: Path) -> list[str]:
        """Files absent both as themselves and as ``<file>.gz``."""
        raw = self.raw(root)
        return [
            f for f in self.files if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()
        ]

    def urls_for(self, file: str) -> list[str]:
        """The addresses serving ``file`` (all of them when one archive holds every file)."""
        return [u for u in self.urls if os.path.basename(u).startswith(file)] or list(self.urls)

    def load(self, root: Path, download: bool = False) -> Dataset:
        """Reads the four files (downloading them first if asked) into a :class:`Dataset`."""
        raw = self.raw(root)
        if self.missing(root):
            if not download:
                raise DatasetUnavailableError(
                    self.name,
                    str(raw),
                    list(self.urls),
                    f"missing {', '.join(self.missing(root))} (or their .gz){self.hint}",
                )
            # Each torchvision class fetches what its train or test split needs (QMNIST: only that).
            fetch(
                self.name,
                raw,
                self.urls,
                [
                    functools.partial(self.tv_class, str(root), train=t, download=True)
                    for t in (True, False)
                ],
                lambda: self.missing(root),
            )
        paths = [
            raw / f
            if (raw / f).is_file()
            else _gunzip(self.name, raw / f"{f}.gz", self.urls_for(f))
            for f in self.files
        ]
        xy = []
        for img_path, lbl_path in (paths[:2], paths[2:]):
            lbl_urls = self.urls_for(lbl_path.name)
            img_urls = self.urls_for(img_path.name)
            x = _read_idx(self.name, img_path, read_image_file, img_urls)
            if x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
                raise CorruptDatasetError(
                    self.name,
                    str(img_path),
                    f"images are {tuple(x.shape[1:])}, expected 28x28",
                    img_urls,
                )
            y = _read_idx(self.name, lbl_path, self.label_reader, lbl_urls) - self.label_offset
            if len(x) != len(y):
                raise CorruptDatasetError(
                    self.name,
                    str(lbl_path),
                    f"{len(y)} labels for {len(x)} images in {img_path.name}",
                    lbl_urls,
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                raise CorruptDatasetError(
                    self.name,
                    str(lbl_path),
                    f"labels outside [{self.label_offset}, {len(self.classes) + self.label_offset})",
                    lbl_urls,
                )
            # EMNIST stores images transposed; flip them so characters are upright.
            xy += [(x.transpose(1, 2) if self.transpose else x).unsqueeze(1).contiguous(), y]
        source = f"torchvision {self.folder} files in {raw}"
        return assemble(self.name, *xy, classes=self.classes, source=source)


def _mnist_files(cls: type[MNIST]) -> tuple[str, ...]:
    # MNIST, KMNIST: the four .gz names, in train-img, train-lbl, test-img, test-lbl order.
    return tuple(os.path.splitext(f)[0] for f, _ in cls.resources)


def _mnist_urls(cls: type[MNIST]) -> tuple[str, ...]:
    return tuple(m + f for m in cls.mirrors for f, _ in cls.resources)


def _emnist_files(split: str) -> tuple[str, ...]:
    kinds = ("images-idx3-ubyte", "labels-idx1-ubyte")
    return tuple(f"emnist-{split}-{s}-{k}" for s in ("train", "test") for k in kinds)


_DIGITS = tuple(string.digits)
_QMNIST_URLS = tuple(u for u, _ in QMNIST.resources["train"] + QMNIST.resources["test"])
_EMNIST_INFO = {  # split: description (classes, train/test sizes)
    "byclass": "EMNIST ByClass: digits, upper- and lowercase letters (62 classes, 697,932/116,323)",
    "bymerge": "EMNIST ByMerge: digits, letters, similar cases merged (47 classes, 697,932/116,323)",
    "balanced": "EMNIST Balanced: digits and letters, balanced (47 classes, 112,800/18,800)",
    "letters": "EMNIST Letters: case-merged letters a-z (26 classes, 124,800/20,800)",
    "digits": "EMNIST Digits: handwritten digits (10 classes, 240,000/40,000)",
    "mnist": "EMNIST MNIST: MNIST-sized digit set (10 classes, 60,000/10,000)",
}

#: The MNIST-family table: one row per registered name.
IDX_DATASETS: tuple[IdxDataset, ...] = (
    IdxDataset(
        name="mnist",
        tv_class=MNIST,
        folder="MNIST",
        files=_mnist_files(MNIST),
        urls=_mnist_urls(MNIST),
        classes=_DIGITS,
        description="MNIST handwritten digits (10 classes, 60,000/10,000)",
    ),
    IdxDataset(
        name="kmnist",
        tv_class=KMNIST,
        folder="KMNIST",
        files=_mnist_files(KMNIST),
        urls=_mnist_urls(KMNIST),
        classes=tuple(KMNIST.classes),
        description="Kuzushiji-MNIST cursive hiragana (10 classes, 60,000/10,000)",
    ),
    IdxDataset(
        name="qmnist",
        tv_class=QMNIST,
        folder="QMNIST",
        files=tuple(os.path.splitext(os.path.basename(u))[0] for u in _QMNIST_URLS),
        urls=_QMNIST_URLS,
        classes=_DIGITS,
        description="QMNIST reconstructed MNIST digits (10 classes, 60,000/60,000)",
        label_reader=_read_qmnist_labels,
    ),
    *(
        IdxDataset(
            name=f"emnist-{split}",
            tv_class=functools.partial(EMNIST, split=split),
            folder="EMNIST",
            files=_emnist_files(split),
            urls=(EMNIST.url,),
            # torchvision's letters classes start with an unused "N/A" at label 0.
            classes=tuple(EMNIST.classes_split_dict[split][1 if split == "letters" else 0 :]),
            description=_EMNIST_INFO[split],
            label_offset=1 if split == "letters" else 0,
            transpose=True,
            hint=f"; gzip.zip holds them as gzip/emnist-{split}-*.gz: copy those here, or put "
            "gzip.zip here and use download=True, which unpacks it without network",
        )
        for split in EMNIST.splits
    ),
)


for _spec in IDX_DATASETS:
    register_dataset(
        _spec.name,
        available=lambda root, s=_spec: not s.missing(root),
        description=_spec.description,
        urls=_spec.urls,
    )(_spec.load)


# -- Omniglot -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OmniglotSet:
    """One Omniglot set (``images_background`` or ``images_evaluation``).

    Classes are characters (``"<Alphabet>/<characterXX>"``). Images are read with PIL, inverted
    to white strokes on black and resized to 28x28 with antialiasing; each character's drawings
    are split :data:`OMNIGLOT_SPLIT` (train/val/test), stratified, fixed by :data:`SPLIT_SEED`.
    Converting ~20k PNGs takes a while, so the result is cached in
    ``<root>/processed/<name>.npz``; a cache that cannot be read is rebuilt.
    """

    name: str
    background: bool
    description: str

    @property
    def subfolder(self) -> str:
        return "images_background" if self.background else "images_evaluation"

    @property
    def url(self) -> str:
        return f"{Omniglot.download_url_prefix}/{self.subfolder}.zip"

    def folder(self, root: Path) -> Path:
        return Path(root) / Omniglot.folder

    def available(self, root: Path) -> bool:
        base = self.folder(root)
        return (
            processed_path(root, self.name).is_file()
            or (base / self.subfolder).is_dir()
            or (base / f"{self.subfolder}.zip").is_file()
        )

    def load(self, root: Path, download: bool = False) -> Dataset:
        """Returns the cached dataset, else builds it from the PNGs (unpacking/downloading first)."""
        cache = processed_path(root, self.name)
        if cache.is_file():
            try:
                return Dataset.load_file(cache, self.name)
            except Exception as e:  # any unreadable cache is rebuilt from the raw files
                log.warning(
                    "Rebuilding the unreadable cache %s (%s: %s)", cache, type(e).__name__, e
                )
        base, images = self.folder(root), self.folder(root) / self.subfolder
        zip_path = base / f"{self.subfolder}.zip"
        if not images.is_dir() and zip_path.is_file():
            self._unzip(zip_path, base)
        if not images.is_dir():
            if not download:
                raise DatasetUnavailableError(
                    self.name,
                    str(base),
                    [self.url],
                    f"neither {self.subfolder}/ nor {self.subfolder}.zip is there",
                )
            fetch(
                self.name,
                base,
                [self.url],
                [functools.partial(Omniglot, str(root), background=self.background, download=True)],
                lambda: [] if images.is_dir() else [self.subfolder],
            )
        ds = self._build(images)
        try:
            ds.save(cache)
        except OSError as e:  # a read-only data root only costs the speed-up
            log.warning("Could not write the cache %s: %s", cache, e)
        return ds

    def _unzip(self, zip_path: Path, base: Path) -> None:
        # Extract beside the target and rename, so a broken archive never leaves a half folder
        # that later loads would take for the whole set.
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            try:
                extract_archive(str(zip_path), tmp)
            except Exception as e:  # zipfile.BadZipFile, CRC errors, truncated members
                raise CorruptDatasetError(
                    self.name, str(zip_path), f"cannot unpack: {e}", [self.url]
                ) from e
            if not (Path(tmp) / self.subfolder).is_dir():
                raise CorruptDatasetError(
                    self.name, str(zip_path), f"archive has no {self.subfolder}/ folder", [self.url]
                )
            os.replace(Path(tmp) / self.subfolder, base / self.subfolder)

    def _read_png(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                # Omniglot draws black strokes on white; every Dataset holds white on black.
                # PIL's bilinear resize widens its filter when shrinking, i.e. it antialiases.
                small = im.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
                return 255 - np.asarray(small, dtype=np.uint8)
        except Exception as e:  # PIL.UnidentifiedImageError, truncated data, bad chunks, ...
            raise CorruptDatasetError(
                self.name, str(path), f"not a readable PNG: {e}", [self.url]
            ) from e

    def _build(self, images: Path) -> Dataset:
        chars = sorted(
            c for a in sorted(images.iterdir()) if a.is_dir() for c in a.iterdir() if c.is_dir()
        )
        xs, ys, classes = [], [], []
        for char in chars:
            pngs = sorted(char.glob("*.png"))
            if not pngs:
                continue
            xs += [self._read_png(p) for p in pngs]
            ys += [len(classes)] * len(pngs)
            classes.append(f"{char.parent.name}/{char.name}")
        if not xs:
            raise DatasetUnavailableError(
                self.name, str(images.parent), [self.url], f"no character PNGs under {images}"
            )
        x = torch.from_numpy(np.stack(xs)).unsqueeze(1)
        y = torch.tensor(ys, dtype=torch.int64)
        _, val_share, test_share = OMNIGLOT_SPLIT
        train, rest = stratified_split(y.numpy(), val_share + test_share, SPLIT_SEED)
        val_rel, test_rel = stratified_split(
            y.numpy()[rest], test_share / (val_share + test_share), SPLIT_SEED + 1
        )
        idx = {
            k: torch.from_numpy(v)
            for k, v in (("train", train), ("val", rest[val_rel]), ("test", rest[test_rel]))
        }
        return Dataset(
            name=self.name,
            **{f"{a}_{k}": t[i] for k, i in idx.items() for a, t in (("x", x), ("y", y))},
            classes=tuple(classes),
            source=f"torchvision Omniglot PNGs in {images}",
        )


OMNIGLOT_SETS = (
    OmniglotSet(
        "omniglot-background",
        True,
        "Omniglot background set: 964 characters of 30 alphabets, 20 drawings each",
    ),
    OmniglotSet(
        "omniglot-evaluation",
        False,
        "Omniglot evaluation set: 659 characters of 20 alphabets, 20 drawings each",
    ),
)

for _om in OMNIGLOT_SETS:
    register_dataset(
        _om.name, available=_om.available, description=_om.description, urls=(_om.url,)
    )(_om.load)
