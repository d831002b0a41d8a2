"""``build_table``: the same configurations of the CNN space trained on several datasets, every
epoch's validation, test and training metrics kept as a
:class:`~automl_chars.tabular.LearningCurveTable`.

The training is one :func:`~automl_chars.runner.trials.run_trials` run (one trial per
configuration and dataset, imported when called): resumable after Ctrl-C or a kill, finished
trials kept, fractional GPUs. The table is written only once every trial has ended; failed or
diverged configurations are rows too (status ``FAILED``, NaN metrics from the epoch they failed).
A trial that errored (its process died, a checkpoint did not restore: Ray's ``ERROR`` after its
retries) is the machine's failure, not the configuration's: no table is written with it, and the
same build resumed trains it again from scratch.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from automl_chars.data import Dataset, load
from automl_chars.errors import InvalidConfigError, TableError
from automl_chars.spaces import cnn_space, default_config
from automl_chars.spaces.values import plain_config
from automl_chars.tabular import COLUMNS, LearningCurveTable, manifest_for

#: The sweep spec every table trains (the full 48-hyperparameter CNN space).
TRAINABLE = "cnn"
#: The table's metric columns and the Trainable's result keys they come from.
RESULT_KEYS = {"val_acc": "val_acc", "val_loss": "val_loss", "test_acc": "test_acc",
               "test_loss": "test_loss", "train_acc": "train_acc", "train_loss": "train_loss",
               "epoch_seconds": "epoch_s", "num_params": "num_params"}
#: Job labels are ``<dataset>/<config id>``.
SEPARATOR = "/"


def draw_configs(n_configs: int, seed: int) -> dict[int, dict]:
    """config id -> configuration: 0 is the CNN space's default, 1..n are drawn from the full
    space with ``seed`` (distinct; the same seed draws the same ones)."""
    if isinstance(n_configs, bool) or not isinstance(n_configs, int) or n_configs < 0:
        raise InvalidConfigError(f"n_configs must be a whole number >= 0 (configurations drawn "
                                 f"besides the default), got {n_configs!r}.")
    space = cnn_space(seed)
    configs, seen = {0: default_config()}, set()
    seen.add(_key(configs[0]))
    while len(configs) <= n_configs:
        config = plain_config(space.sample_configuration())
        if _key(config) not in seen:
            seen.add(_key(config))
            configs[len(configs)] = config
    return configs


def _key(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted(config.items()))


def job_label(dataset: str, config_id: int) -> str:
    """The run's job label of configuration ``config_id`` on ``dataset``."""
    return f"{dataset}{SEPARATOR}{config_id}"


def curve_rows(trials: pd.DataFrame, history: pd.DataFrame, epochs: int) -> pd.DataFrame:
    """The table's rows from a finished run: ``trials`` (one row per job, ``label``, ``status``,
    ``error``) and ``history`` (one per job and epoch reported). Every job gets ``epochs`` rows;
    epochs it did not reach, or reported as failed, have NaN metrics."""
    by_job = {label: rows.set_index("training_iteration")
              for label, rows in history.groupby("label")} if len(history) else {}
    out = []
    for job in trials.itertuples(index=False):
        dataset, config_id = str(job.label).rsplit(SEPARATOR, 1)
        results = by_job.get(job.label)
        error = job.error if isinstance(job.error, str) else ""
        for epoch in range(1, epochs + 1):
            row = {"config_id": int(config_id), "dataset": dataset, "epoch": epoch,
                   "status": job.status, "error": error}
            reported = results is not None and epoch in results.index
            failed = reported and isinstance(results.loc[epoch].get("failure"), str)
            for column, key in RESULT_KEYS.items():
                value = results.loc[epoch].get(key, math.nan) if reported and not failed else math.nan
                row[column] = value
            out.append(row)
    return pd.DataFrame(out, columns=list(COLUMNS))


def build_table(
    datasets: Sequence[str | Dataset],
    n_configs: int,
    max_epochs: int,
    samples_per_class: int | None = None,
    seed: int = 0,
    storage_path: str | os.PathLike | None = None,
    resume: bool = False,
    gpus_per_trial: float = 0.0,
    *,
    out: str | os.PathLike | None = None,
    name: str | None = None,
    cpus_per_trial: float = 1.0,
    max_failures: int = 2,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    verbose: int = 1,
    config_ids: Sequence[int] | None = None,
    callbacks: Sequence[Any] = (),
) -> LearningCurveTable:
    """Trains the CNN space's default and ``n_configs`` configurations drawn with ``seed`` on
    every dataset for ``max_epochs`` epochs, as Ray trials, and writes their learning curves.

    Args:
        datasets: ``glyphs-*`` or other registered names (or :class:`Dataset` objects).
        n_configs: configurations drawn besides the space's default.
        max_epochs: epochs of every trial: the table's top budget.
        samples_per_class: training images per class of a named ``glyphs-*`` dataset.
        seed: draws the configurations and seeds the training.
        storage_path, name: the Ray run's folder is ``<storage>/<name>`` (storage as for sweeps;
            name defaults to ``table-<out's stem>``).
        resume: continue an interrupted build (finished trials are kept).
        gpus_per_trial: GPU share per trial (0.25 trains four per GPU); 0 = CPU.
        out: the table's file (default ``table.parquet`` in the run's folder).
        config_ids: train just these of the drawn ids (a slice of the build; slices join with
            :meth:`LearningCurveTable.join_configs`); default all.
        callbacks: Ray Tune callbacks of the run.

    Raises:
        InvalidConfigError: bad settings, before any data loads or Ray starts.
        TableError: ``out`` exists and ``resume`` is not set; a trial errored (resume the
            build to train it again).
        SweepInterrupted: stopped before every trial ended (resume it).
    """
    from automl_chars.layout import experiment_dir
    from automl_chars.runner.trials import TrialJob, run_trials
    from automl_chars.search.spec import get_spec

    _check_settings(datasets, max_epochs, samples_per_class)
    configs = _slice(draw_configs(n_configs, seed), config_ids)
    out_path = Path(out).expanduser().resolve() if out is not None else None
    run_name = name or (f"table-{out_path.stem}" if out_path else "table")
    run_dir = experiment_dir(storage_path, run_name)
    out_path = out_path or run_dir / "table.parquet"
    if out_path.exists() and not resume:
        raise TableError(f"A learning-curve table already exists at {out_path}. Pass "
                         f"resume=True (CLI: --resume) to finish or read back its build, or "
                         f"choose another file.")
    loaded = [_load(d, samples_per_class, data_root) for d in datasets]
    if out_path.exists():  # resume=True: the table is written once every trial has ended
        return _finished(out_path, loaded, configs, max_epochs, samples_per_class, seed)
    jobs = [TrialJob(job_label(ds.name, cid), ds, config,
                     description=f"config {cid} on {ds.name}")
            for ds in loaded for cid, config in configs.items()]
    spec = get_spec(TRAINABLE)
    spec = replace(spec, parameters={**spec.parameters, "report_test": True})
    run = run_trials(jobs, spec, max_epochs, name=run_name, storage_path=run_dir.parent,
                     seed=seed, resume=resume and run_dir.exists(), gpus_per_trial=gpus_per_trial,
                     cpus_per_trial=cpus_per_trial, max_failures=max_failures,
                     data_root=data_root, address=address, verbose=verbose, restart_errored=True,
                     callbacks=callbacks)
    _check_errored(run)
    _check_history(run)
    manifest = manifest_for(
        [dataset_entry(ds, seed) for ds in loaded], configs, spec.space, max_epochs,
        trainable=TRAINABLE, samples_per_class=samples_per_class, seed=seed,
        hardware=hardware(run.table, gpus_per_trial, cpus_per_trial), created_at=time.time())
    table = LearningCurveTable(curve_rows(run.table, run.history, max_epochs), manifest)
    table.save(out_path)
    return table


def _finished(path: Path, datasets: Sequence[Dataset], configs: Mapping[int, dict],
              epochs: int, samples_per_class: int | None, seed: int) -> LearningCurveTable:
    """The table in ``path`` if it is this build's (its run folder gone), else a clear error."""
    table = LearningCurveTable.load(path)
    m = table.manifest
    built = {"datasets": [(d["name"], d["fingerprint"]) for d in m.datasets],
             "configs": m.configs, "epochs": m.epochs, "samples_per_class": m.samples_per_class,
             "seed": m.seed}
    asked = {"datasets": [(d.name, d.fingerprint()) for d in datasets], "configs": dict(configs),
             "epochs": epochs, "samples_per_class": samples_per_class, "seed": seed}
    differ = sorted(k for k in built if built[k] != asked[k])
    if differ:
        raise TableError(f"{path} holds another build (its {', '.join(differ)} differ) and its "
                         f"Ray run is gone, so it cannot be resumed; choose another file.")
    return table


def _check_settings(datasets: Sequence, max_epochs: int, samples_per_class: int | None) -> None:
    """Raises :class:`InvalidConfigError` on settings that cannot make a table."""
    if not datasets or isinstance(datasets, str):
        raise InvalidConfigError(f"build_table needs a list of dataset names, got {datasets!r}.")
    names = [d if isinstance(d, str) else d.name for d in datasets]
    if len(set(names)) != len(names):
        raise InvalidConfigError(f"The table's datasets must be distinct; got {names}.")
    bad = [n for n in names if SEPARATOR in n]
    if bad:
        raise InvalidConfigError(f"Dataset names must not contain {SEPARATOR!r}: {bad}.")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise InvalidConfigError(f"max_epochs must be a whole number >= 1, got {max_epochs!r}.")
    if samples_per_class is not None and (isinstance(samples_per_class, bool)
                                          or not isinstance(samples_per_class, int)
                                          or samples_per_class < 1):
        raise InvalidConfigError(f"samples_per_class must be a whole number >= 1 (or None for "
                                 f"the loader's default), got {samples_per_class!r}.")


def _load(dataset: str | Dataset, samples_per_class: int | None, data_root) -> Dataset:
    """A named dataset at ``samples_per_class``; a :class:`Dataset` as it is."""
    if isinstance(dataset, Dataset) or samples_per_class is None:
        return load(dataset, root=data_root)
    return load(dataset, root=data_root, samples_per_class=samples_per_class)


def _slice(configs: dict[int, dict], config_ids: Sequence[int] | None) -> dict[int, dict]:
    """``configs`` restricted to ``config_ids`` (all where None); unknown or no ids raise."""
    if config_ids is None:
        return configs
    ids = list(config_ids)
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or i not in configs]
    if bad or not ids:
        raise InvalidConfigError(f"config_ids must be ids of the drawn configurations, 0.."
                                 f"{max(configs)}; got {bad or ids}.")
    return {i: configs[i] for i in sorted(set(ids))}


def _check_errored(run) -> None:
    """Raises :class:`TableError` naming the trials that errored (Ray's ``ERROR``): a table
    never records a machine's failure as a configuration's result."""
    errored = run.table[run.table["status"] == "ERROR"]
    if len(errored):
        lines = [f"{row.label} ({_last_line(row.error)})" for row in errored.itertuples()]
        raise TableError(f"{len(errored)} trials of the table's build in {run.path} errored "
                         f"(a process died or a checkpoint did not restore), so no table was "
                         f"written: " + "; ".join(lines[:5]) + ". Run the same build again "
                         "(resume; scripts/build_glyph_table.py does): they train again from "
                         "scratch, the finished trials are kept.")


def _last_line(error: object) -> str:
    """The last line of a trial's error text (a traceback's ends with the exception)."""
    text = error.strip() if isinstance(error, str) else ""
    return text.splitlines()[-1] if text else "no error text"


def _check_history(run) -> None:
    """Raises if a finished trial's per-epoch results are missing (Tune's file loggers off)."""
    done = set(run.table.loc[run.table["status"] == "TERMINATED", "label"])
    have = set(run.history["label"]) if len(run.history) else set()
    if done - have:
        raise TableError(f"Ray Tune kept no per-epoch results of {len(done - have)} finished "
                         f"trials in {run.path} (is TUNE_DISABLE_AUTO_CALLBACK_LOGGERS set?). "
                         f"Unset it and build the table again.")


def dataset_entry(dataset: Dataset, seed: int = 0) -> dict:
    """A dataset as the manifest lists it: name, content fingerprint, classes, split sizes and
    meta-features (what the warm start compares datasets by)."""
    from automl_chars.similarity.meta_features import dataset_meta_features

    return {"name": dataset.name, "fingerprint": dataset.fingerprint(),
            "num_classes": dataset.num_classes, "sizes": dataset.sizes,
            "meta_features": dataset_meta_features(dataset, seed=seed)}


def hardware(trials: pd.DataFrame, gpus_per_trial: float, cpus_per_trial: float) -> dict:
    """Where the table trained: the trials' devices, the GPU's name, the resources per trial and
    the driver machine (its epoch seconds are only comparable on the same hardware)."""
    import torch

    devices = sorted({str(d) for d in trials.get("device", pd.Series(dtype=str)).dropna()})
    return {"devices": devices,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gpus_per_trial": float(gpus_per_trial), "cpus_per_trial": float(cpus_per_trial),
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "platform": platform.platform(), "torch": torch.__version__}


__all__ = ["build_table", "curve_rows", "dataset_entry", "draw_configs", "hardware", "job_label"]
