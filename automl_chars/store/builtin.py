"""The built-in priors: a small results store shipped with the package, from CNN sweeps over the
glyph domains, so that BOHB's model has results to learn from in the first trials of a sweep on
any new dataset (``run_bohb(priors=True)``, the default; docs/warm-start.md).

Rebuild it with ``python scripts/build_priors.py`` (:func:`build_builtin_store`): one BOHB sweep
per domain, without priors, every trial's result at every epoch it reached recorded. By default
40 trials of one epoch per domain: hpbandster fits a model at a budget from ``2 * (d + 1)``
results (98 for the CNN space), which the 3 nearest domains then hold at budget 1, and BOHB
samples from the model of the largest budget that has one. The README
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
                        domains: Sequence[str] = BUILTIN_DOMAINS, trials: int = 40,
                        max_budget: int = 1, seed: int = 0,
                        storage_path: str | os.PathLike | None = None,
                        data_root: str | os.PathLike | None = None,
                        samples_per_class: int | None = None,
                        verbose: int = 0) -> ResultsStore:
    """Runs a cold BOHB sweep of ``trials`` CNN trials (eta 3, budgets 1 to ``max_budget``
    epochs) on each domain and writes their rows, as a store, to ``out`` (replacing it).

    Sweeps go to ``storage_path`` (default: ``out``'s sibling ``<out>-sweeps``); a build stopped
    part-way resumes its unfinished sweep and keeps the finished ones when run again.
    ``samples_per_class`` shrinks the domains (tests); the shipped store uses their defaults.
    """
    from automl_chars.data import load
    from automl_chars.search.sweep import can_resume, run_bohb
    from automl_chars.similarity.meta_features import dataset_meta_features
    from automl_chars.store.ingest import sweep_rows

    out = Path(out).expanduser().resolve()
    storage = Path(storage_path or out.parent / f"{out.name}-sweeps").expanduser().resolve()
    folders = []
    for i, domain in enumerate(domains):
        name = f"priors-{domain}"
        size = {"samples_per_class": samples_per_class} if samples_per_class else {}
        ds = load(domain, root=data_root, **size)
        result = run_bohb(ds, eta=3, min_budget=1, max_budget=max_budget, num_samples=trials,
                          storage_path=storage, name=name, seed=seed + i, priors=False,
                          resume=can_resume(storage / name), verbose=verbose)
        folders.append((result.path, dataset_meta_features(ds)))
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
