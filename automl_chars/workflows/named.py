"""Run a named experiment (:mod:`automl_chars.search.named`): train it as one Ray trial
(:func:`train_experiment`, through :func:`~automl_chars.runner.run_trials`) or sweep its free
hyperparameters with BOHB (:func:`sweep_experiment`, through :func:`~automl_chars.run_bohb`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from automl_chars.data import Dataset
from automl_chars.runner.result import SweepResult
from automl_chars.runner.sweep import run_bohb
from automl_chars.runner.trials import TrialJob, TrialsResult, run_trials
from automl_chars.search.named import NamedExperiment, experiment_spec, get_experiment


def resolve_experiment(experiment: str | NamedExperiment,
                       overrides: Mapping[str, Any] | None = None) -> NamedExperiment:
    """The experiment named ``experiment`` with ``overrides`` fixed over its values (typed, or
    ``--set`` strings); unknown names, keys and bad values raise before anything runs."""
    return get_experiment(experiment).with_overrides(overrides or {})


def train_experiment(experiment: str | NamedExperiment, overrides: Mapping[str, Any] | None = None,
                     *, dataset: str | Dataset | None = None, epochs: int | None = None,
                     name: str | None = None, storage_path: str | os.PathLike | None = None,
                     seed: int = 0, resume: bool = False, **run: Any) -> TrialsResult:
    """Trains ``experiment`` (its fixed values with ``overrides``, the rest at the family's
    defaults) for ``epochs`` (default its own) on ``dataset`` (default its own) as one Ray
    trial, in ``storage_path/name`` (default ``train-<experiment>``); ``run``: more
    :func:`run_trials` options (``gpus_per_trial``, ``data_root``, ``verbose``, ...). Its row
    in the result's table is labelled with the experiment's name."""
    exp = resolve_experiment(experiment, overrides)
    job = TrialJob(label=exp.name, dataset=exp.dataset if dataset is None else dataset,
                   config=dict(exp.fixed), description=f"named experiment {exp.name}")
    return run_trials([job], exp.model, exp.epochs if epochs is None else epochs,
                      name=name or f"train-{exp.name}", storage_path=storage_path, seed=seed,
                      resume=resume, **run)


def sweep_experiment(experiment: str | NamedExperiment,
                     overrides: Mapping[str, Any] | None = None, *,
                     dataset: str | Dataset | None = None, name: str | None = None,
                     seed: int = 0, **sweep: Any) -> SweepResult:
    """A BOHB sweep of ``experiment``'s free hyperparameters (its fixed ones, with
    ``overrides``, in every trial) on ``dataset`` (default its own), in ``name`` (default
    ``<experiment>-bohb-<dataset>-<preset>``); ``sweep``: more :func:`run_bohb` options
    (``preset``, ``num_samples``, ``storage_path``, ...)."""
    exp = resolve_experiment(experiment, overrides)
    ds = exp.dataset if dataset is None else dataset
    if name is None:
        preset = sweep.get("preset")
        ds_name = ds if isinstance(ds, str) else ds.name
        name = f"{exp.name}-bohb-{ds_name}" + (f"-{getattr(preset, 'name', preset)}"
                                               if preset else "")
    return run_bohb(ds, spec=experiment_spec(exp, seed), name=name, seed=seed, **sweep)


__all__ = ["resolve_experiment", "sweep_experiment", "train_experiment"]
