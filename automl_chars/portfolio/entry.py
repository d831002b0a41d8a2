"""One portfolio entry (a model trained on one source dataset) and the files that hold it.

On disk, ``<portfolio>/manifest.json`` lists the entries; each entry has a folder with
``weights.pt`` (model name, architecture and ``state_dict``: tensors and plain values only, read
with ``torch.load(weights_only=True)`` so a portfolio from someone else never runs code) and
``sample.npz`` (a stratified sample of the source's training images and labels, so that the
similarity measures can compare a target with the source without the source data on disk).
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from automl_chars import uris
from automl_chars.errors import PortfolioError, first_line
from automl_chars.layout import read_json
from automl_chars.spaces.values import plain_value

MANIFEST_FILE = "manifest.json"
#: Version of the manifest's layout; reading another version is refused.
MANIFEST_VERSION = 1
WEIGHTS_FILE = "weights.pt"
SAMPLE_FILE = "sample.npz"
#: Images per source kept in ``sample.npz`` by default.
SAMPLE_SIZE = 500
#: What to do about a damaged ``manifest.json``: the entries' files are intact, and a build's
#: entries come back from its training run.
MANIFEST_REMEDY = ("Move it aside (rename it) and run the portfolio's build again with "
                   "resume=True (CLI: the same portfolio build command with --resume): its "
                   "entries are added back from the finished training run, without training.")


def entry_remedy(entry: str) -> str:
    """What to do about a damaged file of one entry: the build adds it back from its run."""
    return (f"Remove the entry (Portfolio.remove({entry!r})) and run the portfolio's build again "
            f"with resume=True (CLI: the same portfolio build command with --resume): it is "
            f"added back from the finished training run, without training.")


@dataclass(frozen=True)
class PortfolioEntry:
    """What the manifest records of one entry.

    Attributes:
        name: the entry's name (its folder), by default the source dataset's name.
        dataset: source dataset name; ``fingerprint`` its contents (``Dataset.fingerprint``).
        classes: the source's class names (the model's outputs, in order).
        image_shape: ``(channels, height, width)`` the model takes.
        model: name in :data:`automl_chars.models.MODELS`; ``arch`` its architecture dict.
        trainable: the sweep spec that trained it (``resnet18``, ``cnn``, ...).
        config: the full training configuration.
        val_acc, test_acc: accuracy on the source's validation and test splits.
        epochs, train_seconds, device: how it was trained.
        created_at: seconds since the epoch.
        mean, std: the pixel normalisation the model was trained with ((x/255 - mean) / std).
        num_train: size of the source's training split; ``sample_size``: images in ``sample.npz``.
        meta: anything else (e.g. the run folder).
    """

    name: str
    dataset: str
    fingerprint: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    model: str
    arch: Any
    trainable: str
    config: dict
    val_acc: float
    test_acc: float
    epochs: int
    train_seconds: float
    device: str
    created_at: float
    mean: float
    std: float
    num_train: int
    sample_size: int
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> dict:
        return plain_value(asdict(self))

    @classmethod
    def from_json(cls, data: dict, manifest: Path) -> PortfolioEntry:
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(data) - {"meta"})
        if missing:
            raise PortfolioError(f"Entry {data.get('name', '?')!r} in {manifest} lacks {missing}; "
                                 f"the manifest is damaged. Rebuild that entry.")
        data = {k: v for k, v in data.items() if k in names}
        return cls(**{**data, "classes": tuple(data["classes"]),
                      "image_shape": tuple(data["image_shape"])})


def read_manifest(folder: Path) -> list[PortfolioEntry]:
    """The entries of ``folder/manifest.json``; a missing or other-version manifest raises
    :class:`PortfolioError`, a damaged one :class:`~automl_chars.errors.DamagedFileError`, each
    naming the file."""
    path = folder / MANIFEST_FILE
    if not path.exists():
        raise PortfolioError(f"{uris.shown(folder)} is not a portfolio: it has no "
                             f"{MANIFEST_FILE}. Build one with "
                             f"automl_chars.portfolio.build_portfolio (CLI: automl-chars "
                             f"portfolio build).")
    data = read_json(path, MANIFEST_REMEDY)
    version, where = data.get("version"), uris.shown(path, query=False)
    if version != MANIFEST_VERSION:
        raise PortfolioError(f"{where} has manifest version {version!r}; this version of "
                             f"automl_chars reads version {MANIFEST_VERSION}. Read it with the "
                             f"automl_chars that wrote it (upgrade), or: {MANIFEST_REMEDY}")
    return [PortfolioEntry.from_json(e, path) for e in data.get("entries", [])]


def write_manifest(folder: Path, entries: list[PortfolioEntry]) -> None:
    """Writes the manifest atomically (a killed writer leaves the previous one whole)."""
    data = {"version": MANIFEST_VERSION, "entries": [e.to_json() for e in entries]}
    _atomic_write(folder / MANIFEST_FILE,
                  lambda f: f.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def save_weights(path: Path, model: str, arch: Any, state_dict: dict) -> None:
    """Writes an entry's weights: model name, architecture, tensors (atomically)."""
    state = {"model": model, "arch": plain_value(arch),
             "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}}
    _atomic_write(path, lambda f: torch.save(state, f))


def load_weights(path: Path, entry: str) -> dict:
    """An entry's weights file, tensors and plain values only; anything else is refused."""
    where = uris.shown(path, query=False)  # at a storage URI: the file there, not the mirror
    if not path.exists():
        raise PortfolioError(f"Portfolio entry {entry!r}: its weight file {where} is missing. "
                             f"{entry_remedy(entry)}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its end holds the index
        raise PortfolioError(f"Portfolio entry {entry!r}: {where} is damaged (empty, truncated "
                             f"or garbled: not a weight file). {entry_remedy(entry)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise PortfolioError(
            f"Portfolio entry {entry!r}: {where} holds objects other than tensors and plain "
            f"values, which could run code when loaded; refused ({first_line(err)})."
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise PortfolioError(f"Portfolio entry {entry!r}: {where} is damaged "
                             f"({first_line(err)}). {entry_remedy(entry)}") from None
    if not isinstance(state, dict) or not {"model", "arch", "state_dict"} <= set(state):
        raise PortfolioError(f"Portfolio entry {entry!r}: {where} is not a weight file of "
                             f"automl_chars (needs model, arch and state_dict).")
    return state


def save_sample(path: Path, x: torch.Tensor, y: torch.Tensor) -> None:
    """Writes the source's image sample (uint8) and labels (atomically, no pickles)."""
    _atomic_write(path, lambda f: np.savez_compressed(f, x=x.numpy(), y=y.numpy()))


def load_sample(path: Path, entry: str) -> tuple[torch.Tensor, torch.Tensor]:
    """An entry's image sample as ``(x uint8 (n, C, H, W), y int64)``."""
    where = uris.shown(path, query=False)
    try:
        with np.load(path, allow_pickle=False) as z:
            return torch.from_numpy(z["x"].copy()), torch.from_numpy(z["y"].copy()).long()
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise PortfolioError(f"Portfolio entry {entry!r}: cannot read its image sample {where}, "
                             f"damaged ({first_line(err)}). {entry_remedy(entry)}") from None


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    uris.push(path)  # a portfolio at a storage URI: this file lands there too
