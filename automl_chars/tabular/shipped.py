"""The learning-curve table shipped with the package: the CNN space's default and 200 drawn
configurations trained for 9 epochs on each glyph domain at 100 training images per class.

It is built a domain at a time (``scripts/build_glyph_table.py``, CPU hours, resumable over
sessions), so it ships as one Parquet file per domain in ``tabular/data/glyph-curves/``;
:func:`glyph_curves` reads them as one :class:`LearningCurveTable`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from automl_chars.data.glyphs import DOMAINS
from automl_chars.errors import TableError
from automl_chars.tabular.table import LearningCurveTable

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


def part_path(domain: str, root: str | os.PathLike = SHIPPED_DIR) -> Path:
    """The file of ``domain``'s part of a table kept a domain per file in ``root``."""
    return Path(root) / f"{domain}.parquet"


def shipped_domains(root: str | os.PathLike = SHIPPED_DIR) -> list[str]:
    """The glyph domains whose part is in ``root``, in :data:`DOMAINS` order."""
    return [d for d in DOMAINS if part_path(d, root).is_file()]


def glyph_curves(domains: Sequence[str] | None = None,
                 root: str | os.PathLike = SHIPPED_DIR) -> LearningCurveTable:
    """The shipped learning-curve table over ``domains`` (default: every domain shipped).

    Raises:
        TableError: a domain asked for is not shipped (yet), or no part is.
    """
    have = shipped_domains(root)
    asked = list(have if domains is None else domains)
    missing = [d for d in asked if d not in have]
    if missing or not asked:
        raise TableError(
            f"The shipped learning-curve table has no part for {missing or 'any domain'} in "
            f"{Path(root)} (it has {have or 'none'}). Build the missing parts with "
            f"`python scripts/build_glyph_table.py` (resumable).")
    return _joined(tuple(str(part_path(d, root)) for d in asked))


@lru_cache(maxsize=8)
def _joined(paths: tuple[str, ...]) -> LearningCurveTable:
    return LearningCurveTable.concat([LearningCurveTable.load(p) for p in paths])


__all__ = ["SHIPPED_BUILD", "SHIPPED_DIR", "TableBuild", "glyph_curves", "part_path",
           "shipped_domains"]
