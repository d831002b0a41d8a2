"""The built-in priors: a small results store shipped with the package, from CNN sweeps over the
glyph domains, so that BOHB's model has results to learn from in the first trials of a sweep on
any new dataset (``run_bohb(priors=True)``, the default; docs/warm-start.md).

Rebuild it with ``python scripts/build_priors.py`` (:func:`build_builtin_store`): one BOHB sweep
per domain, without priors, every trial's result at every epoch it reached recorded. The README
demo's dataset (``glyphs-latin-upper``) is left out, so the demo shows priors drawn from other
datasets.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from automl_chars.store.store import ResultsStore

#: Where the built-in priors live (package data).
BUILTIN_STORE_PATH = Path(__file__).resolve().parent / "builtin"
#: Domains the built-in priors come from: every glyph domain but the README demo's.
BUILTIN_DOMAINS = ("glyphs-digits", "glyphs-latin-lower", "glyphs-greek", "glyphs-cyrillic",
                   "glyphs-hebrew", "glyphs-armenian", "glyphs-georgian")


def builtin_store() -> ResultsStore:
    """The built-in priors as a read-only :class:`ResultsStore`."""
    return ResultsStore(BUILTIN_STORE_PATH)


def build_builtin_store(out: str | os.PathLike = BUILTIN_STORE_PATH,
                        domains: Sequence[str] = BUILTIN_DOMAINS, trials: int = 30,
                        max_budget: int = 3, seed: int = 0,
                        storage_path: str | os.PathLike | None = None,
                        data_root: str | os.PathLike | None = None,
                        verbose: int = 0) -> ResultsStore:
    """Runs a cold BOHB sweep of ``trials`` CNN trials (eta 3, budgets 1 to ``max_budget``
    epochs) on each domain and writes their rows, as a store, to ``out`` (replacing it).

    Sweeps go to ``storage_path`` (default: ``out``'s sibling ``<out>-sweeps``); a build stopped
    part-way resumes its unfinished sweep and keeps the finished ones when run again.
    """
    from automl_chars.data import load
    from automl_chars.search.sweep import run_bohb
    from automl_chars.similarity.meta_features import dataset_meta_features
    from automl_chars.store.ingest import sweep_rows

    out = Path(out).expanduser().resolve()
    storage = Path(storage_path or out.parent / f"{out.name}-sweeps").expanduser().resolve()
    folders = []
    for i, domain in enumerate(domains):
        name = f"priors-{domain}"
        result = run_bohb(domain, eta=3, min_budget=1, max_budget=max_budget, num_samples=trials,
                          storage_path=storage, name=name, seed=seed + i, priors=False,
                          resume=(storage / name).exists(), data_root=data_root, verbose=verbose)
        features = dataset_meta_features(load(domain, root=data_root))
        folders.append((result.path, features))
    staging = out.parent / f".{out.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    store = ResultsStore(staging)
    for folder, features in folders:
        frame = sweep_rows(folder, features)
        frame["folder"] = Path(folder).name  # not this machine's path
        store.write(Path(folder).name, frame)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return ResultsStore(out)


__all__ = ["BUILTIN_DOMAINS", "BUILTIN_STORE_PATH", "build_builtin_store", "builtin_store"]
