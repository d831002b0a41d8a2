"""Rebuilds the built-in priors (:mod:`automl_chars.store.builtin`): a cold BOHB sweep of the CNN
space on each glyph domain but the README demo's, every trial's result at every epoch recorded
(``python scripts/build_priors.py``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from automl_chars.data import load
from automl_chars.runner.core import can_resume
from automl_chars.runner.sweep import run_bohb
from automl_chars.similarity.meta_features import dataset_meta_features
from automl_chars.store.builtin import BUILTIN_DOMAINS, BUILTIN_STORE_PATH
from automl_chars.store.ingest import sweep_rows
from automl_chars.store.store import ResultsStore


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


__all__ = ["build_builtin_store"]
