"""The built-in priors: a small results store shipped with the package, from CNN sweeps over the
glyph domains, so that BOHB's model has results to learn from in the first trials of a sweep on
any new dataset (``run_bohb(priors=True)``, the default; docs/warm-start.md).

Rebuild it with ``python scripts/build_priors.py``
(:func:`automl_chars.workflows.priors.build_builtin_store`, a job of many runs): one BOHB sweep
per domain, without priors, every trial's result at every epoch it reached recorded. By default
40 trials of one epoch per domain: hpbandster fits a model at a budget from ``2 * (d + 1)``
results (98 for the CNN space), which the 3 nearest domains then hold at budget 1, and BOHB
samples from the model of the largest budget that has one. The README
demo's dataset (``glyphs-latin-upper``) is left out, so the demo shows priors drawn from other
datasets.
"""

from __future__ import annotations

from pathlib import Path

from automl_chars.layout import PACKAGE_DATA_REMEDY
from automl_chars.store.store import ResultsStore

#: Where the built-in priors live (package data).
BUILTIN_STORE_PATH = Path(__file__).resolve().parent / "builtin"
#: Domains the built-in priors come from: every glyph domain but the README demo's.
BUILTIN_DOMAINS = ("glyphs-digits", "glyphs-latin-lower", "glyphs-greek", "glyphs-cyrillic",
                   "glyphs-hebrew", "glyphs-armenian", "glyphs-georgian")


def builtin_store() -> ResultsStore:
    """The built-in priors as a read-only :class:`ResultsStore` (a damaged file is skipped with
    a warning that says to reinstall the package)."""
    return ResultsStore(BUILTIN_STORE_PATH, remedy=PACKAGE_DATA_REMEDY)


__all__ = ["BUILTIN_DOMAINS", "BUILTIN_STORE_PATH", "builtin_store"]
