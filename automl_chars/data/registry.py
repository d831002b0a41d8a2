"""The dataset registry: every dataset by name, its loader, where its files come from."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from automl_chars.data.dataset import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.registry import Registry

#: Environment variable naming the data root when no ``root`` argument is given.
DATA_ROOT_ENV = "AUTOML_CHARS_DATA"

Loader = Callable[..., Dataset]


@dataclass(frozen=True)
class DatasetSpec:
    """How to get one named dataset.

    Attributes:
        name: registry name, e.g. ``"kmnist"`` or ``"glyphs-greek"``.
        loader: ``loader(root: Path, download: bool, **options) -> Dataset``.
        available: ``available(root: Path) -> bool``: are its files there (or can it be built
            offline)?
        description: one line for ``automl-chars datasets``.
        urls: where its files are fetched from; named in errors when they are missing.
        builtin: generated offline (no download ever needed).
    """

    name: str
    loader: Loader
    available: Callable[[Path], bool]
    description: str
    urls: tuple[str, ...] = ()
    builtin: bool = False


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    available: Callable[[Path], bool],
    description: str,
    urls: tuple[str, ...] = (),
    builtin: bool = False,
) -> Callable[[Loader], Loader]:
    """Decorator registering ``loader`` under ``name``; a taken name raises."""

    def deco(loader: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(name, loader, available, description, tuple(urls), builtin))
        return loader

    return deco


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$AUTOML_CHARS_DATA``, else ``~/.cache/automl_chars/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "automl_chars" / "data"


def _ensure_registered() -> None:
    # Importing the loader modules registers them; deferred so `import automl_chars` stays light.
    from automl_chars.data import cifar, glyphs, k49, public, rgb_glyphs  # noqa: F401


def names() -> list[str]:
    """Every registered dataset name."""
    _ensure_registered()
    return DATASETS.names()


def spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name``; unknown names raise with suggestions."""
    _ensure_registered()
    return DATASETS.get(name)


def load(
    name: str | Dataset,
    root: str | os.PathLike | None = None,
    download: bool = False,
    **options,
) -> Dataset:
    """Loads a registered dataset by name (a :class:`Dataset` is returned as it is).

    Args:
        name: a name from :func:`names`, or a dataset object.
        root: data folder; defaults to :func:`data_root`.
        download: fetch missing files from the dataset's public address.
        **options: loader-specific options (e.g. ``samples_per_class`` for ``glyphs-*``);
            an option the loader does not take raises.
    """
    if isinstance(name, Dataset):
        if options:
            raise InvalidConfigError(f"Options {sorted(options)} only apply when loading by name.")
        return name
    s = spec(name)
    accepted = inspect.signature(s.loader).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in options if k not in accepted] if not takes_any else []
    if unknown:
        allowed = [k for k in accepted if k not in ("root", "download")]
        raise InvalidConfigError(
            f"Dataset {name!r} does not take option(s) {unknown}; it takes {allowed or 'none'}."
        )
    return s.loader(root=data_root(root), download=download, **options)


def is_available(name: str, root: str | os.PathLike | None = None) -> bool:
    """Whether ``name`` can be loaded now without a download."""
    return spec(name).available(data_root(root))
