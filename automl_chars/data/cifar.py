"""CIFAR-10 and CIFAR-100: 32x32 RGB photographs, read by ``torchvision.datasets``.

Registered names: ``cifar10`` (10 classes) and ``cifar100`` (its 100 fine classes). Files live in
torchvision's own layout under the data root, so an existing torchvision download is reused:
``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` and
``<root>/cifar-100-python/{train,test,meta}``. The official archive
(``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) left in the root is unpacked on first
use, without a download. torchvision checks every file's MD5; a file that fails it, or does not
parse, raises :class:`~automl_chars.errors.CorruptDatasetError` naming it, and missing files
raise :class:`~automl_chars.errors.DatasetUnavailableError` naming the folder and the address.

Images stay RGB at 32x32 (``uint8 (N, 3, 32, 32)``); a stratified 10% of the official training
split is held out for validation (seed 0), the official test split is the test split.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import check_integrity, extract_archive

from automl_chars.data.dataset import Dataset
from automl_chars.data.public import assemble, fetch
from automl_chars.data.registry import register_dataset
from automl_chars.errors import CorruptDatasetError, DatasetUnavailableError


@dataclass(frozen=True)
class CifarDataset:
    """One CIFAR set: torchvision's class (its folder, file names, MD5s and address) and a name.

    Attributes:
        name: registry name.
        tv_class: ``CIFAR10`` or ``CIFAR100``; called with ``download=True`` to fetch, with
            ``download=False`` to read.
        description: one line for listings.
    """

    name: str
    tv_class: type[CIFAR10]
    description: str

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.tv_class.url,)

    def folder(self, root: Path) -> Path:
        return Path(root) / self.tv_class.base_folder

    def archive(self, root: Path) -> Path:
        return Path(root) / self.tv_class.filename

    def files(self) -> list[tuple[str, str]]:
        """``(file name, MD5)`` of every file the set is read from, the metadata first."""
        c = self.tv_class
        return [(c.meta["filename"], c.meta["md5"]), *map(tuple, c.train_list + c.test_list)]

    def missing(self, root: Path) -> list[str]:
        return [f for f, _ in self.files() if not (self.folder(root) / f).is_file()]

    def available(self, root: Path) -> bool:
        return not self.missing(root) or self.archive(root).is_file()

    def load(self, root: Path, download: bool = False) -> Dataset:
        """Reads the set (unpacking the archive there, or downloading it, first)."""
        root = Path(root)
        if self.missing(root) and self.archive(root).is_file():
            self._unpack(root)
        if self.missing(root):
            if not download:
                raise DatasetUnavailableError(
                    self.name, str(self.folder(root)), list(self.urls),
                    f"missing {', '.join(self.missing(root))} (and {self.tv_class.filename} "
                    f"is not in {root})")
            fetch(self.name, self.folder(root), self.urls,
                  [functools.partial(self.tv_class, str(root), train=True, download=True)],
                  lambda: self.missing(root))
        (x_train, y_train), classes = self._read(root, train=True)
        (x_test, y_test), _ = self._read(root, train=False)
        source = f"torchvision {self.tv_class.__name__} files in {self.folder(root)}"
        return assemble(self.name, x_train, y_train, x_test, y_test, classes, source)

    def _read(self, root: Path, train: bool) -> tuple[tuple[torch.Tensor, torch.Tensor], list[str]]:
        """One split through torchvision's reader: images ``(N, 3, 32, 32)``, labels, classes."""
        try:
            split = self.tv_class(str(root), train=train, download=False)
        # torchvision reports an MD5 mismatch as RuntimeError, a bad pickle as UnpicklingError,
        # EOFError, KeyError or ValueError (a data array of the wrong size): all a corrupt file.
        except Exception as e:
            raise CorruptDatasetError(self.name, *self._culprit(root, e), list(self.urls)) from e
        x = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
        y = torch.tensor(split.targets, dtype=torch.int64)
        classes = [str(c) for c in split.classes]
        if len(y) != len(x) or (len(y) and (int(y.min()) < 0 or int(y.max()) >= len(classes))):
            files = self.tv_class.train_list if train else self.tv_class.test_list
            raise CorruptDatasetError(
                self.name, str(self.folder(root) / files[0][0]),
                f"{len(y)} labels for {len(x)} images, or labels outside [0, {len(classes)})",
                list(self.urls))
        return (x, y), classes

    def _culprit(self, root: Path, err: Exception) -> tuple[str, str]:
        """The first file failing its MD5 check, and why; else the folder and ``err``."""
        for f, md5 in self.files():
            if not check_integrity(str(self.folder(root) / f), md5):
                return str(self.folder(root) / f), "MD5 checksum mismatch (a damaged or other file)"
        return str(self.folder(root)), f"unreadable ({type(err).__name__}: {err})"

    def _unpack(self, root: Path) -> None:
        # Extract beside the target and rename, so a broken archive never leaves a half folder.
        archive = self.archive(root)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            try:
                extract_archive(str(archive), tmp)
            except Exception as e:  # tarfile.ReadError, EOFError, zlib errors
                raise CorruptDatasetError(self.name, str(archive), f"cannot unpack: {e}",
                                          list(self.urls)) from e
            unpacked = Path(tmp) / self.tv_class.base_folder
            if not unpacked.is_dir():
                raise CorruptDatasetError(self.name, str(archive),
                                          f"archive has no {self.tv_class.base_folder}/ folder",
                                          list(self.urls))
            if self.folder(root).is_dir():  # a partial folder: the archive's files complete it
                for f in unpacked.iterdir():
                    os.replace(f, self.folder(root) / f.name)
            else:
                os.replace(unpacked, self.folder(root))


CIFAR_DATASETS = (
    CifarDataset("cifar10", CIFAR10,
                 "CIFAR-10 32x32 RGB photographs (10 classes, 50,000/10,000)"),
    CifarDataset("cifar100", CIFAR100,
                 "CIFAR-100 32x32 RGB photographs (100 fine classes, 50,000/10,000)"),
)

for _spec in CIFAR_DATASETS:
    register_dataset(_spec.name, available=_spec.available, description=_spec.description,
                     urls=_spec.urls)(_spec.load)
