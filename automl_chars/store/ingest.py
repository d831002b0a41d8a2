"""What goes into the results store: a sweep's trials (each at every budget it reached), a
portfolio's entries, and older sweep folders found on disk. Reads result folders only (no Ray)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from automl_chars import uris
from automl_chars.errors import DamagedFileError, DamagedFileWarning
from automl_chars.layout import (
    PARAMS_FILE,
    PROGRESS_FILE,
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    config_columns,
    config_of,
    read_csv,
    read_json,
    read_progress,
    run_folder,
)
from automl_chars.store.store import ResultsStore, rows, store_beside

logger = logging.getLogger(__name__)

#: What to do about a damaged file of a result folder being added to the store.
IMPORT_REMEDY = ("The folder is left out of the store. Resuming its run (the same command with "
                 "--resume) says what to do about the file; then add the folder again with "
                 "automl-chars store import.")


#: The trials.csv (and progress.csv) column of the learning rate AutotuneLR chose for a trial.
AUTOTUNED_LR = "autotuned_lr"


def trained_config(config: Mapping, trial: Mapping, autotune_lr: object) -> dict:
    """``config`` as its trial trained it. With AutotuneLR on (``autotune_lr``: the sweep's
    setting of that name) the trial ignored any ``learning_rate`` and trained at the rate it
    chose (``trial[AUTOTUNED_LR]``), which becomes the configuration's ``learning_rate``;
    otherwise, or for a trial that chose none (failed before its first unit), ``config``."""
    rate = trial.get(AUTOTUNED_LR) if autotune_lr else None
    if _missing(rate):
        return dict(config)
    return {**config, "learning_rate": float(rate)}


def sweep_rows(folder: str | os.PathLike, meta_features: Mapping[str, float] | None = None,
               ) -> pd.DataFrame:
    """One row per trial and budget of the sweep in ``folder`` (finished or not): the
    validation accuracy at every budget a trial reported (``progress.csv``), the incumbent's
    test accuracy on its last row. A sweep at a storage URI is downloaded first (its trials'
    results, not their checkpoints)."""
    folder = run_folder(folder, "folder", recursive=True)
    settings = read_json(folder / SETTINGS_FILE, IMPORT_REMEDY)
    summary = (read_json(folder / SUMMARY_FILE, IMPORT_REMEDY)
               if (folder / SUMMARY_FILE).exists() else {})
    trials = (read_csv(folder / TRIALS_FILE, IMPORT_REMEDY, ("trial_id",),
                       dtype={"trial_id": str})
              if (folder / TRIALS_FILE).exists() else _trials_from_folders(folder))
    incumbent = summary.get("incumbent_trial_id")
    results = []
    for _, t in trials.iterrows():
        per_budget = _progress(folder, str(t["trial_id"]))
        trial = dict(t)
        if _missing(trial.get(AUTOTUNED_LR)) and AUTOTUNED_LR in per_budget:  # unfinished sweep
            chosen = per_budget[AUTOTUNED_LR].dropna()
            trial[AUTOTUNED_LR] = chosen.iloc[-1] if not chosen.empty else None
        config = trained_config(config_of(t), trial, settings.get("autotune_lr"))
        if per_budget.empty:
            per_budget = pd.DataFrame([{"training_iteration": t.get("budget"),
                                        "val_acc": t.get("val_acc"),
                                        "time_total_s": t.get("time_total_s")}])
        last = per_budget["training_iteration"].max()
        for _, r in per_budget.iterrows():
            is_final = r["training_iteration"] == last and str(t["trial_id"]) == incumbent
            results.append({
                "config": config, "budget": r["training_iteration"], "val_acc": r["val_acc"],
                "test_acc": summary.get("test_accuracy") if is_final else float("nan"),
                "seconds": r.get("time_total_s"), "status": t.get("status", ""),
                "suggested_by": t.get("suggested_by", ""), "trial_id": str(t["trial_id"]),
            })
    return rows("sweep", settings.get("dataset", ""), settings.get("dataset_fingerprint", ""),
                settings.get("trainable", "cnn"), results, uris.shown(folder), meta_features,
                _whole_configs_of(settings))


def _whole_configs_of(settings: Mapping) -> str:
    """The fingerprint of the space a sweep's stored configurations are whole configurations
    of: its searched space's, unless AutotuneLR put a learning rate outside it ("")."""
    return "" if settings.get("autotune_lr") else str(settings.get("space_fingerprint") or "")


def add_sweep(folder: str | os.PathLike, store: ResultsStore | None = None,
              meta_features: Mapping[str, float] | None = None) -> int:
    """Adds (or replaces) the sweep in ``folder``'s rows; returns how many."""
    store = store or ResultsStore()
    frame = sweep_rows(folder, meta_features)
    if not frame.empty:
        store.write(f"sweep:{uris.shown(uris.local_path(folder, 'folder'))}", frame)
    return len(frame)


def add_portfolio(folder: str | os.PathLike, store: ResultsStore | None = None) -> int:
    """Adds (or replaces) a portfolio's entries: each source's configuration and accuracies.
    ``folder``: a path or a storage URI (its manifest is downloaded first)."""
    from automl_chars.portfolio.entry import read_manifest

    folder = run_folder(folder, "folder")
    store = store or ResultsStore()
    count = 0
    for e in read_manifest(folder):
        frame = rows("portfolio", e.dataset, e.fingerprint, e.trainable,
                     [{"config": e.config, "budget": e.epochs, "val_acc": e.val_acc,
                       "test_acc": e.test_acc, "seconds": e.train_seconds,
                       "status": "TERMINATED", "trial_id": e.name}],
                     uris.shown(folder / e.name))
        store.write(f"portfolio:{uris.shown(folder)}:{e.name}", frame)
        count += 1
    return count


def trials_rows(folder: str | os.PathLike, kind: str, *, trainable: str = "",
                suggested_by: str = "", fingerprints: Mapping[str, str] | None = None,
                ) -> pd.DataFrame:
    """One row per job of a finished ``run_trials`` run in ``folder`` (its ``trials.csv``):
    the job's configuration, final validation and test accuracy, seconds and status;
    ``fingerprints`` maps dataset names to their contents' fingerprints (the run records
    names only), ``suggested_by`` says what asked for the runs (e.g. a ground truth's regime
    and seed). A run at a storage URI is downloaded first (not its checkpoints)."""
    folder = run_folder(folder, "folder", recursive=True)
    table = read_csv(folder / TRIALS_FILE, IMPORT_REMEDY, ("label", "dataset", "status"),
                     dtype={"trial_id": str, "label": str})
    settings = read_json(folder / SETTINGS_FILE, IMPORT_REMEDY)
    fingerprints = dict(fingerprints or {})
    frames = []
    for dataset, jobs in table.groupby("dataset", sort=False):
        results = [{"config": config_of(t),
                    "budget": t["epochs"], "val_acc": t["val_acc"], "test_acc": t["test_acc"],
                    "seconds": t["seconds"], "status": t["status"],
                    "suggested_by": suggested_by, "trial_id": t["label"]}
                   for _, t in jobs.iterrows()]
        frames.append(rows(kind, str(dataset), fingerprints.get(str(dataset), ""),
                           trainable or settings.get("trainable", ""), results,
                           uris.shown(folder)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def add_trials(folder: str | os.PathLike, store: ResultsStore | None = None, *, kind: str,
               trainable: str = "", suggested_by: str = "",
               fingerprints: Mapping[str, str] | None = None) -> int:
    """Adds (or replaces) a finished ``run_trials`` run's jobs (:func:`trials_rows`) to the
    store; returns how many rows."""
    store = store or ResultsStore()
    frame = trials_rows(folder, kind, trainable=trainable, suggested_by=suggested_by,
                        fingerprints=fingerprints)
    if not frame.empty:
        store.write(f"{kind}:{uris.shown(uris.local_path(folder, 'folder'))}", frame)
    return len(frame)


def record_sweep(folder: str | os.PathLike, dataset=None) -> None:
    """Adds a sweep that has just finished or stopped to the store beside it, with its
    dataset's meta-features when ``dataset`` is given; a store that cannot be written is a
    warning, never a lost sweep."""
    try:
        features = None
        if dataset is not None:
            from automl_chars.similarity.meta_features import dataset_meta_features

            features = dataset_meta_features(dataset)
        add_sweep(folder, store_beside(folder), features)
    except Exception as err:  # the sweep's own results are safe in its folder
        logger.warning("Could not add %s to the results store: %s", folder, err)


def record_portfolio(folder: str | os.PathLike) -> None:
    """Adds a portfolio that has just been built to the store beside it (warning on failure)."""
    try:
        add_portfolio(folder, store_beside(folder))
    except Exception as err:
        logger.warning("Could not add %s to the results store: %s", folder, err)


def import_folder(folder: str | os.PathLike, store: ResultsStore | None = None) -> dict[str, int]:
    """Adds every sweep and portfolio found under ``folder`` (older results; a path or a
    storage URI, whose files but checkpoints are downloaded first); a folder that cannot be
    read is skipped with a warning. Returns rows added per folder (as :func:`uris.shown`
    names them)."""
    from automl_chars.portfolio.entry import MANIFEST_FILE  # a portfolio's: imports torch

    store = store or ResultsStore()
    added = {}
    root = run_folder(folder, "folder", recursive=True)
    for settings in sorted(root.rglob(SETTINGS_FILE)):
        sweep = settings.parent
        if sweep.is_relative_to(store.path):
            continue
        try:
            if "preset" not in read_json(settings, IMPORT_REMEDY):
                continue  # run_trials writes the same file name with other keys: not a sweep
            added[uris.shown(sweep)] = add_sweep(sweep, store)
        except DamagedFileError as err:  # the other folders are still added
            warnings.warn(f"Skipped {uris.shown(sweep)}: {err}", DamagedFileWarning,
                          stacklevel=2)
        except (OSError, ValueError, KeyError) as err:
            logger.warning("Skipped %s: %s", uris.shown(sweep), err)
    for manifest in sorted(root.rglob(MANIFEST_FILE)):
        try:
            added[uris.shown(manifest.parent)] = add_portfolio(manifest.parent, store)
        except DamagedFileError as err:
            warnings.warn(f"Skipped {uris.shown(manifest.parent)}: {err}", DamagedFileWarning,
                          stacklevel=2)
        except Exception as err:  # a damaged portfolio must not stop the import
            logger.warning("Skipped %s: %s", uris.shown(manifest.parent), err)
    return added


def _progress(folder: Path, trial_id: str) -> pd.DataFrame:
    files = list(folder.glob(f"*_{trial_id}/{PROGRESS_FILE}"))
    if not files:
        return pd.DataFrame()
    frame = read_progress(files[0])
    cols = [c for c in ("training_iteration", "val_acc", "time_total_s", AUTOTUNED_LR)
            if c in frame]
    return frame[cols].drop_duplicates("training_iteration", keep="last")


def _trials_from_folders(folder: Path) -> pd.DataFrame:
    """Trials of an unfinished sweep (no trials.csv yet), from each trial's params.json (a
    damaged one raises :class:`DamagedFileError` naming it: the folder is skipped)."""
    out = []
    for params in folder.glob(f"*_*/{PARAMS_FILE}"):
        config = read_json(params, IMPORT_REMEDY)
        tid = params.parent.name.rsplit("_", 1)[-1]
        out.append({"trial_id": tid, "status": "UNFINISHED",
                    "suggested_by": config.pop("suggested_by", ""),
                    **config_columns(config)})
    return pd.DataFrame(out, columns=["trial_id", "status", "suggested_by"] if not out else None)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


