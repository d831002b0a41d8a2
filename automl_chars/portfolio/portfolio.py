"""``Portfolio``: pretrained models, one per source dataset, read from a folder.

Plain PyTorch: loading a portfolio and its models needs neither Ray nor the source data.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn

from automl_chars import uris
from automl_chars.data.dataset import Dataset
from automl_chars.errors import PortfolioError
from automl_chars.models import build_model
from automl_chars.portfolio.entry import (
    SAMPLE_FILE,
    SAMPLE_SIZE,
    WEIGHTS_FILE,
    PortfolioEntry,
    load_sample,
    load_weights,
    read_manifest,
    save_sample,
    save_weights,
    write_manifest,
)
from automl_chars.training.loop import pixel_mean_std

#: Columns of :attr:`Portfolio.entries`, in order.
ENTRY_COLUMNS = ("name", "dataset", "model", "trainable", "num_classes", "image_shape",
                 "val_acc", "test_acc", "epochs", "train_seconds", "device", "created_at",
                 "fingerprint")


class Portfolio:
    """The entries of one portfolio folder (see :mod:`automl_chars.portfolio.entry`): a local
    folder or a storage URI, whose files are then downloaded here and each new one uploaded
    (:mod:`automl_chars.uris`)."""

    def __init__(self, path: str | os.PathLike, entries: list[PortfolioEntry] | None = None):
        self.path = uris.pull(uris.local_path(path, "portfolio"), recursive=True)
        self._entries = list(entries or [])

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> Portfolio:
        """Reads ``path/manifest.json``; raises :class:`PortfolioError` if it is not a portfolio."""
        path = uris.pull(uris.local_path(path, "portfolio"), recursive=True)
        return cls(path, read_manifest(path))

    @property
    def entries(self) -> pd.DataFrame:
        """One row per entry (:data:`ENTRY_COLUMNS`)."""
        rows = [{**{k: getattr(e, k) for k in ENTRY_COLUMNS if hasattr(e, k)},
                 "num_classes": e.num_classes, "image_shape": "x".join(map(str, e.image_shape))}
                for e in self._entries]
        return pd.DataFrame(rows, columns=list(ENTRY_COLUMNS))

    def names(self) -> list[str]:
        return [e.name for e in self._entries]

    def __iter__(self) -> Iterator[PortfolioEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> PortfolioEntry:
        """The entry ``name``; an unknown name raises with the closest names."""
        for e in self._entries:
            if e.name == name:
                return e
        close = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise PortfolioError(f"No entry {name!r} in the portfolio {self.path}; it has "
                             f"{self.names()}.{hint}")

    def model(self, entry: str | PortfolioEntry) -> nn.Module:
        """The entry's model with its trained weights (CPU, evaluation mode)."""
        e = entry if isinstance(entry, PortfolioEntry) else self.entry(entry)
        path = self.path / e.name / WEIGHTS_FILE
        state = load_weights(path, e.name)
        net = build_model(state["model"], state["arch"], e.num_classes, e.image_shape)
        try:
            net.load_state_dict(state["state_dict"])
        except RuntimeError as err:
            raise PortfolioError(f"Portfolio entry {e.name!r}: the weights in {path} do not fit "
                                 f"its {e.model} ({str(err).splitlines()[0]}).") from None
        return net.eval()

    def sample(self, entry: str | PortfolioEntry) -> tuple[torch.Tensor, torch.Tensor]:
        """The entry's stratified sample of source images (uint8) and labels."""
        e = entry if isinstance(entry, PortfolioEntry) else self.entry(entry)
        return load_sample(self.path / e.name / SAMPLE_FILE, e.name)

    def check_fits(self, image_shape: tuple[int, ...], entries: list[str] | None = None) -> None:
        """Raises :class:`PortfolioError` naming each entry whose models take other images."""
        if not self._entries:
            raise PortfolioError(f"The portfolio {self.path} has no entries; build or add some.")
        chosen = [self.entry(n) for n in entries] if entries is not None else self._entries
        bad = [f"{e.name} ({'x'.join(map(str, e.image_shape))})" for e in chosen
               if tuple(e.image_shape) != tuple(image_shape)]
        if bad:
            raise PortfolioError(
                f"Portfolio entries {bad} were trained on other images than the target's "
                f"{'x'.join(map(str, image_shape))} (channels x height x width); use entries "
                f"built for that shape."
            )

    def sources(self, sample_size: int | None = None, seed: int = 0) -> list:
        """Every entry as a :class:`~automl_chars.similarity.source.SourceView` (model, its
        stored image sample, or a stratified ``sample_size`` of it, normalisation) for the
        similarity measures."""
        from automl_chars.similarity.source import SourceView, stratified_sample

        views = []
        for e in self._entries:
            x, y = self.sample(e)
            if sample_size is not None and sample_size < len(y):
                x, y = stratified_sample(x, y, sample_size, seed, what=f"entry {e.name!r}")
            views.append(SourceView(name=e.name, model=self.model(e), x=x, y=y,
                                    classes=e.classes, mean=e.mean, std=e.std,
                                    meta={"dataset": e.dataset, "num_train": e.num_train}))
        return views

    # -- writing ----------------------------------------------------------------------------
    def add(self, dataset: Dataset, model: str, arch: Any, state_dict: Mapping[str, torch.Tensor],
            *, name: str | None = None, trainable: str = "", config: Mapping | None = None,
            val_acc: float = float("nan"), test_acc: float = float("nan"), epochs: int = 0,
            train_seconds: float = float("nan"), device: str = "cpu",
            sample_size: int = SAMPLE_SIZE, seed: int = 0, meta: Mapping | None = None,
            ) -> PortfolioEntry:
        """Adds a model trained on ``dataset`` (weights, an image sample, the manifest row).

        The weights are checked against ``model``/``arch`` before anything is written; a name
        already in the portfolio raises (pass another ``name``).
        """
        name = name or dataset.name
        arch = arch.to_dict() if hasattr(arch, "to_dict") else arch
        if name in self.names():
            raise PortfolioError(f"The portfolio {self.path} already has an entry {name!r}; "
                                 f"pass another name.")
        net = build_model(model, arch, dataset.num_classes, dataset.image_shape)
        try:
            net.load_state_dict(dict(state_dict))
        except RuntimeError as err:
            raise PortfolioError(f"Entry {name!r}: the weights do not fit a {model} with "
                                 f"{dataset.num_classes} classes ({str(err).splitlines()[0]}).") from None
        mean, std = pixel_mean_std(dataset.x_train)
        fraction = min(1.0, sample_size / len(dataset.y_train))
        x, y = dataset.stratified_sample(fraction, "train", seed=seed)
        folder = self.path / name
        save_weights(folder / WEIGHTS_FILE, model, arch, net.state_dict())
        save_sample(folder / SAMPLE_FILE, x, y)
        entry = PortfolioEntry(
            name=name, dataset=dataset.name, fingerprint=dataset.fingerprint(),
            classes=tuple(dataset.classes), image_shape=tuple(dataset.image_shape), model=model,
            arch=arch, trainable=trainable,
            config=dict(config or {}), val_acc=float(val_acc), test_acc=float(test_acc),
            epochs=int(epochs), train_seconds=float(train_seconds), device=device,
            created_at=time.time(), mean=mean, std=std, num_train=len(dataset.y_train),
            sample_size=len(y), meta=dict(meta or {}),
        )
        self._entries.append(entry)
        write_manifest(self.path, self._entries)
        return entry

    def remove(self, name: str) -> None:
        """Removes the entry ``name`` and its folder (at a storage URI, there too)."""
        entry = self.entry(name)
        self._entries.remove(entry)
        write_manifest(self.path, self._entries)
        uris.remove(self.path / entry.name)

    def __repr__(self) -> str:
        return f"Portfolio({str(self.path)!r}, entries={self.names()})"
