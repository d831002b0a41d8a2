"""The learning-curve table shipped with the package: the CNN space's default and 200 drawn
configurations trained for 9 epochs on each glyph domain at 100 training images per class.

It is built a domain at a time (``scripts/build_glyph_table.py``, CPU hours, resumable over
sessions), so it ships as one Parquet file per domain in ``tabular/data/glyph-curves/``;
:func:`glyph_curves` reads them as one :class:`LearningCurveTable`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from automl_chars.data.glyphs import DOMAINS
from automl_chars.errors import DamagedFileWarning, TableError
from automl_chars.layout import PACKAGE_DATA_REMEDY
from automl_chars.tabular.table import REBUILD_REMEDY, LearningCurveTable

#: Where the shipped table's parts live (one ``<domain>.parquet`` each).
SHIPPED_DIR = Path(__file__).parent / "data" / "glyph-curves"


@dataclass(frozen=True)
class TableBuild:
    """How a table is built: what :func:`~automl_chars.workflows.table.build_table` is given."""

    n_configs: int = 200
    max_epochs: int = 9
    samples_per_class: int = 100
    seed: int = 0


#: The shipped table's build.
SHIPPED_BUILD = TableBuild()


def part_path(domain: str, root: str | os.PathLike | None = None) -> Path:
    """The file of ``domain``'s part of a table kept a domain per file in ``root`` (default
    :data:`SHIPPED_DIR`)."""
    return Path(SHIPPED_DIR if root is None else root) / f"{domain}.parquet"


def shipped_domains(root: str | os.PathLike | None = None) -> list[str]:
    """The glyph domains whose part is in ``root`` (default :data:`SHIPPED_DIR`), in
    :data:`DOMAINS` order."""
    return [d for d in DOMAINS if part_path(d, root).is_file()]


def glyph_curves(domains: Sequence[str] | None = None,
                 root: str | os.PathLike | None = None) -> LearningCurveTable:
    """The shipped learning-curve table over ``domains`` (default: every domain shipped).

    Raises:
        TableError: a domain asked for is not shipped (yet), or no part is, or a part is
            damaged (the package's own parts: reinstall the package).
    """
    folder = Path(SHIPPED_DIR if root is None else root)
    have = shipped_domains(folder)
    asked = list(have if domains is None else domains)
    missing = [d for d in asked if d not in have]
    if missing or not asked:
        raise TableError(
            f"The shipped learning-curve table has no part for {missing or 'any domain'} in "
            f"{folder} (it has {have or 'none'}). Build the missing parts with "
            f"`python scripts/build_glyph_table.py` (resumable).")
    remedy = PACKAGE_DATA_REMEDY if folder.resolve() == Path(SHIPPED_DIR).resolve() else (
        REBUILD_REMEDY)
    return _joined(tuple(str(part_path(d, folder)) for d in asked), remedy)


def readable_curves(root: str | os.PathLike | None = None) -> LearningCurveTable | None:
    """Every part in ``root`` (default: the shipped ones) that can be read, as one table (None
    when none can). A damaged part is left out with a
    :class:`~automl_chars.errors.DamagedFileWarning` naming it and what to do: what draws on
    the table (the built-in priors) goes on with the other domains."""
    tables = []
    for domain in shipped_domains(root):
        try:
            tables.append(glyph_curves([domain], root))
        except TableError as err:
            warnings.warn(f"Left out the learning-curve table's part for {domain}: {err}",
                          DamagedFileWarning, stacklevel=2)
    return LearningCurveTable.concat(tables) if tables else None


@lru_cache(maxsize=8)
def _joined(paths: tuple[str, ...], remedy: str) -> LearningCurveTable:
    return LearningCurveTable.concat([LearningCurveTable.load(p, remedy) for p in paths])


__all__ = ["SHIPPED_BUILD", "SHIPPED_DIR", "TableBuild", "glyph_curves", "part_path",
           "readable_curves", "shipped_domains"]
