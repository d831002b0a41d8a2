"""``run_trials``: train given configurations (each on its own dataset) as parallel Ray trials.

Not a search: every job is one trial trained for the same number of budget units. Portfolio
builds (one model per source dataset), standalone subnets and transfer tables use it. It shares
:func:`run_bohb`'s rules: everything is checked before Ray starts, Ctrl-C or SIGTERM leaves a
resumable run that is never written up as finished, dead trials are retried from their last
checkpoint, and failures a retry cannot fix (NaN loss, unbuildable configurations) are recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune
from ray.tune.callback import Callback
from ray.tune.experiment import Trial

from automl_chars import uris
from automl_chars.checkpoints import load_trial_state
from automl_chars.data import Dataset, load
from automl_chars.errors import DamagedFileError, ExperimentStateError, InvalidConfigError
from automl_chars.layout import (
    CONFIG_PREFIX,
    HISTORY_FILE,
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    config_columns,
    experiment_dir,
    read_csv,
    read_json,
    results_root,
    run_folder,
    write_csv,
    write_json,
)
from automl_chars.runner import cluster
from automl_chars.runner.core import (
    check_resumable,
    check_same_run,
    check_same_workers,
    fit_to_the_end,
    restore_tuner,
    result_trial_id,
    run_config,
    run_problems,
    saved_settings,
    start_run,
    trial_dirname,
    trial_outcome,
    trial_trainable,
    workers_problems,
)
from automl_chars.runner.progress import quiet_ray_output
from automl_chars.search.scheduler import ResumableFIFOScheduler
from automl_chars.search.spec import SweepSpec, get_spec
from automl_chars.spaces.values import plain_value
from automl_chars.trainables.base import JOB
from automl_chars.training.fidelity import Fidelity
from automl_chars.training.objective import COST_METRICS

#: Settings whose change makes a saved run another run; resuming with others is refused.
DEFINING = ("trainable", "epochs", "seed", "jobs")


@dataclass(frozen=True)
class TrialJob:
    """One trial of :func:`run_trials`.

    Attributes:
        label: unique name of the job: the row of :attr:`TrialsResult.table`.
        dataset: a registered dataset name or a :class:`Dataset`.
        config: a configuration of the spec's Trainable (plain values).
        description: what the progress lines call the trial, e.g. ``"source glyphs-greek"``
            or ``"standalone subnet (1, 2)"`` (default: the label). Not part of the run's
            identity: resuming with another description is the same run.
        resources: Ray resources the job's trial asks for besides ``cpus_per_trial`` and
            ``gpus_per_trial``, e.g. a custom resource of one node (``{"worker_a": 1}``, the
            node started with ``ray start --resources='{"worker_a": 1}'``) to pin the job
            there. Jobs asking for different resources never share a trial process. Not part
            of the run's identity (where a job trains, not what).
    """

    label: str
    dataset: str | Dataset
    config: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    resources: Mapping[str, float] = field(default_factory=dict)


@dataclass
class TrialsResult:
    """What :func:`run_trials` trained.

    Attributes:
        table: one row per job: ``label``, ``dataset``, ``trial_id``, ``status`` (``TERMINATED``,
            ``FAILED`` or ``ERROR``), ``val_acc``, ``train_acc``, ``test_acc`` (the final model on
            the test split), ``epochs`` reached, ``seconds`` of training, ``device``, the
            model's costs (``params``, ``flops``, ``latency_ms``, ``throughput``), ``node_id``
            (the Ray node of its last result), ``checkpoint`` (folder of the final checkpoint),
            ``error`` and ``config/<name>``.
        path: the run's folder.
        settings: what defines the run (``automl_chars.json``).
        history: every result of every job, one row per job and budget unit: ``label``,
            ``trial_id``, ``training_iteration`` and the metrics the Trainable reported (a
            trial resumed from a checkpoint keeps its last result of each unit). Empty for a
            run finished before histories were kept, or with Tune's file loggers disabled.
    """

    table: pd.DataFrame
    path: Path
    settings: dict
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    def row(self, label: str) -> pd.Series:
        """The table's row of job ``label``."""
        rows = self.table[self.table["label"] == label]
        if rows.empty:
            raise InvalidConfigError(f"No job {label!r} in {self.path}; jobs: "
                                     f"{list(self.table['label'])}.")
        return rows.iloc[0]

    def checkpoint(self, label: str) -> Path:
        """Folder of job ``label``'s final checkpoint (downloaded first from a storage URI);
        raises if it did not finish."""
        row = self.row(label)
        if row["status"] != Trial.TERMINATED or not isinstance(row["checkpoint"], str):
            raise ExperimentStateError(f"Job {label!r} in {self.path} did not finish "
                                       f"({row['status']}: {row['error']}); it has no model.")
        return uris.pull(uris.local_path(row["checkpoint"]), recursive=True, skip=())

    def save(self) -> None:
        write_csv(self.path / TRIALS_FILE, self.table)
        write_csv(self.path / HISTORY_FILE, self.history)
        write_json(self.path / SUMMARY_FILE, {"n_jobs": len(self.table), "settings": self.settings,
                                              "n_history": len(self.history),
                                              "finished_at": time.time()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrialsResult:
        """Reads a finished run's folder (a path or a storage URI); a damaged (or missing)
        ``summary.json``, ``trials.csv`` or ``history.csv`` raises
        :class:`~automl_chars.errors.DamagedFileError` naming it and how to write it again."""
        path = run_folder(path)
        if not (path / SUMMARY_FILE).exists():
            state = ("an unfinished run (resume it)" if (path / SETTINGS_FILE).exists()
                     else "not a run folder")
            raise ExperimentStateError(f"{path} has no {SUMMARY_FILE}: {state}.")
        summary = read_json(path / SUMMARY_FILE, _REWRITE_HINT)
        if not (path / TRIALS_FILE).exists():  # written before summary.json: lost since
            raise DamagedFileError(path / TRIALS_FILE, "it is missing", _REWRITE_HINT)
        table = read_csv(path / TRIALS_FILE, _REWRITE_HINT, ("label", "status"),
                         dtype={"trial_id": str, "label": str})
        if summary.get("n_jobs") is not None and summary["n_jobs"] != len(table):
            raise DamagedFileError(path / TRIALS_FILE, f"truncated: {len(table)} of the "
                                   f"{summary['n_jobs']} jobs {SUMMARY_FILE} counts",
                                   _REWRITE_HINT)
        if summary.get("n_history") and not (path / HISTORY_FILE).exists():
            raise DamagedFileError(path / HISTORY_FILE, "it is missing", _REWRITE_HINT)
        history = (read_csv(path / HISTORY_FILE, _REWRITE_HINT,
                            ("label", "trial_id", "training_iteration"),
                            dtype={"trial_id": str, "label": str})
                   if (path / HISTORY_FILE).exists() else pd.DataFrame())
        if summary.get("n_history") not in (None, len(history)):
            raise DamagedFileError(path / HISTORY_FILE, f"truncated: {len(history)} of the "
                                   f"{summary['n_history']} rows {SUMMARY_FILE} counts",
                                   _REWRITE_HINT)
        return cls(table, path, summary.get("settings", {}), history)


#: What to do about a damaged ``summary.json``, ``trials.csv`` or ``history.csv`` of a run.
_REWRITE_HINT = (f"Move {SUMMARY_FILE} aside (rename it) and run the jobs again with resume=True "
                 f"(command line: the same command with --resume): the finished ones are kept "
                 f"and {SUMMARY_FILE}, {TRIALS_FILE} and {HISTORY_FILE} are written again.")


def jobs_fingerprint(jobs: Mapping[str, tuple[Dataset, dict]]) -> str:
    """A short hash of every job's label, dataset contents and configuration."""
    data = {label: [ds.name, ds.fingerprint(), plain_value(dict(cfg))]
            for label, (ds, cfg) in sorted(jobs.items())}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_trials(
    jobs: Sequence[TrialJob],
    spec: str | SweepSpec,
    epochs: int,
    *,
    name: str,
    storage_path: str | os.PathLike | None = None,
    seed: int = 0,
    resume: bool = False,
    gpus_per_trial: float = 0.0,
    cpus_per_trial: float = 1.0,
    max_failures: int = 2,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
    restart_errored: bool = False,
    workers_per_trial: int = 1,
) -> TrialsResult:
    """Trains each job's configuration of ``spec``'s Trainable for ``epochs`` budget units, all
    as parallel Ray trials (fractions of a GPU with ``gpus_per_trial`` < 1), then evaluates each
    final model on its dataset's test split.

    Raises :class:`~automl_chars.errors.SweepInterrupted` when stopped before every trial ended;
    ``resume=True`` continues (finished trials kept, errored ones retried). A finished run is
    read back. Failed or errored jobs are rows of the table, not exceptions. With
    ``restart_errored``, a resume trains errored trials again from scratch, a finished run's too
    (what a table build does: an errored trial is the machine's failure, not the
    configuration's). With ``workers_per_trial`` > 1 each trial trains data-parallel on that
    many Ray Train workers, ``cpus_per_trial`` and ``gpus_per_trial`` (0 or 1) each (see
    :func:`~automl_chars.runner.sweep.run_bohb`).
    """
    sweep_spec = get_spec(spec)
    results_root(storage_path)  # a storage URI is checked before any data loads
    problems = workers_problems(workers_per_trial, gpus_per_trial)
    if problems:
        raise InvalidConfigError("Invalid run settings: " + "; ".join(problems) + ".")
    if workers_per_trial > 1 and any(j.resources for j in jobs):
        raise InvalidConfigError(
            f"Jobs with resources of their own ({sorted(j.label for j in jobs if j.resources)}) "
            f"cannot train data-parallel: their workers would not carry them. Use "
            f"workers_per_trial=1 for them.")
    cluster.precheck(address, float(cpus_per_trial), float(gpus_per_trial), workers_per_trial)
    by_label = _load_jobs(jobs, data_root)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InvalidConfigError(f"epochs must be a whole number >= 1, got {epochs!r}.")
    problems = run_problems(float(gpus_per_trial), float(cpus_per_trial), seed, max_failures)
    if problems:
        raise InvalidConfigError("Invalid run settings: " + "; ".join(problems) + ".")
    settings = {"trainable": sweep_spec.name, "epochs": epochs, "seed": seed,
                "jobs": jobs_fingerprint(by_label), "labels": sorted(by_label),
                "gpus_per_trial": float(gpus_per_trial), "cpus_per_trial": float(cpus_per_trial),
                "max_failures": max_failures, "workers_per_trial": int(workers_per_trial)}
    exp_dir = experiment_dir(storage_path, name)
    if resume:
        check_same_run(exp_dir, settings, DEFINING, "jobs or settings")
        check_same_workers(exp_dir, saved_settings(exp_dir), int(workers_per_trial))
    if check_resumable(exp_dir, resume):
        done = TrialsResult.load(exp_dir)
        if not (restart_errored and (done.table["status"] == Trial.ERROR).any()):
            return done
    for label, (ds, config) in by_label.items():
        _check_config(sweep_spec, label, ds, config)

    needs = {j.label: dict(j.resources) for j in jobs if j.resources}
    parameters, spec_callbacks = sweep_spec.for_run(uris.tune_path(exp_dir))  # see run_bohb
    parameters = {"jobs": by_label, "fidelity": Fidelity("epochs", epochs, data_seed=seed),
                  "seed": seed, **parameters}
    if workers_per_trial > 1:  # Ray Train's torch integration is imported only for these
        from automl_chars.trainables.data_parallel import check_data_parallel

        check_data_parallel(sweep_spec.trainable, parameters)
    cluster.join(address, float(cpus_per_trial), float(gpus_per_trial), verbose,
                 int(workers_per_trial), needs=needs)
    if needs:
        trainable = tune.with_resources(
            tune.with_parameters(sweep_spec.trainable, **parameters),
            JobResources(float(cpus_per_trial), float(gpus_per_trial), needs))
    else:
        trainable = trial_trainable(sweep_spec.trainable, parameters, cpus_per_trial,
                                    gpus_per_trial, int(workers_per_trial), exp_dir)
    failure = tune.FailureConfig(max_failures=max_failures, fail_fast=False)
    with quiet_ray_output(verbose):
        if resume:
            tuner = restore_tuner(exp_dir, trainable, failure, settings, restart_errored,
                                  callbacks)
        else:
            start_run(exp_dir, settings, len(callbacks))
            descriptions = {j.label: j.description for j in jobs if j.description}
            tuner = _new_tuner(exp_dir, trainable, sorted(by_label), epochs, sweep_spec, failure,
                               verbose, [*spec_callbacks, *callbacks], descriptions)
        # Every job must be in the grid with its label (a stopped run may hold trials that
        # never started, without a configuration).
        grid, statuses = fit_to_the_end(
            tuner, exp_dir, len(by_label), verbose,
            complete=lambda g: jobs_in(g) == set(by_label))
    result = TrialsResult(_table(grid, statuses, by_label, sweep_spec, exp_dir), exp_dir,
                          settings, _history(grid, by_label))
    result.save()
    return result


@dataclass(frozen=True)
class JobResources:
    """A trial's resources by its job (Tune calls it with the trial's configuration): ``cpu``
    and ``gpu`` for every job, plus the job's own :attr:`TrialJob.resources` (``extra``: label
    -> resources)."""

    cpu: float
    gpu: float
    extra: Mapping[str, Mapping[str, float]]

    def __call__(self, config: Mapping[str, Any]) -> tune.PlacementGroupFactory:
        return tune.PlacementGroupFactory(
            [{"CPU": self.cpu, "GPU": self.gpu, **self.extra.get(config.get(JOB), {})}])


#: Ray's own resources, which ``cpus_per_trial`` and ``gpus_per_trial`` give a trial.
_RUNNER_RESOURCES = ("cpu", "gpu")


def check_job_resources(job: TrialJob) -> None:
    """Raises :class:`InvalidConfigError` for :attr:`TrialJob.resources` that Ray cannot take:
    names must be non-empty strings other than CPU and GPU, amounts positive numbers."""
    resources = job.resources
    if not isinstance(resources, Mapping):
        raise InvalidConfigError(f"Job {job.label!r}: resources must be a mapping of Ray "
                                 f"resource names to amounts, got {resources!r}.")
    for name, amount in resources.items():
        if not isinstance(name, str) or not name:
            raise InvalidConfigError(f"Job {job.label!r}: resource names must be non-empty "
                                     f"strings, got {name!r}.")
        if name.lower() in _RUNNER_RESOURCES:
            raise InvalidConfigError(f"Job {job.label!r}: {name!r} is not a job's own resource; "
                                     f"pass cpus_per_trial or gpus_per_trial (CLI: "
                                     f"--cpus-per-trial, --gpus-per-trial) instead.")
        if (isinstance(amount, bool) or not isinstance(amount, (int, float))
                or not math.isfinite(amount) or amount <= 0):
            raise InvalidConfigError(f"Job {job.label!r}: resource {name!r} must be a positive "
                                     f"number, got {amount!r}.")


def jobs_in(grid) -> set:
    """The job labels of a ``ResultGrid``'s trials (None for a trial without a configuration)."""
    return {(r.config or {}).get(JOB) for r in grid}


def _load_jobs(jobs: Sequence[TrialJob], data_root) -> dict[str, tuple[Dataset, dict]]:
    """label -> (Dataset, plain configuration); datasets named twice load once."""
    if not jobs:
        raise InvalidConfigError("run_trials needs at least one TrialJob.")
    labels = [j.label for j in jobs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InvalidConfigError(f"Job labels must be unique; repeated: {dupes}.")
    for job in jobs:
        check_job_resources(job)
    loaded: dict[Any, Dataset] = {}
    out = {}
    for job in jobs:
        key = job.dataset if isinstance(job.dataset, str) else id(job.dataset)
        if key not in loaded:
            loaded[key] = load(job.dataset, root=data_root)
        out[job.label] = (loaded[key], plain_value(dict(job.config)))
    return out


def _check_config(spec: SweepSpec, label: str, dataset: Dataset, config: dict) -> None:
    """Builds the job's settings and model once on the CPU, so a bad job fails before Ray."""
    check = getattr(spec.trainable, "check_config", None)
    if check is None:
        return
    try:
        check(config, dataset, **spec.parameters)
    except (InvalidConfigError, ValueError, RuntimeError) as err:
        raise InvalidConfigError(f"Job {label!r} ({dataset.name}): {err}") from None


def _new_tuner(exp_dir: Path, trainable, labels: list[str], epochs: int, spec: SweepSpec,
               failure: tune.FailureConfig, verbose: int, callbacks: Sequence[Callback],
               descriptions: Mapping[str, str] | None = None) -> tune.Tuner:
    return tune.Tuner(
        trainable,
        param_space={JOB: tune.grid_search(labels)},
        tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode, reuse_actors=True,
                                    trial_dirname_creator=trial_dirname,
                                    scheduler=ResumableFIFOScheduler()),
        run_config=run_config(
            exp_dir, len(labels), failure, verbose, callbacks,
            tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=1, checkpoint_at_end=True),
            descriptions=descriptions, stop={"training_iteration": epochs},
            planned_units=len(labels) * epochs, metric=spec.metric, mode=spec.mode),
    )


def _history(grid, jobs: Mapping[str, tuple[Dataset, dict]]) -> pd.DataFrame:
    """Every trial's results (Tune's ``result.json`` of its folder), one row per budget unit,
    in job order. A driver killed between a result and its checkpoint makes the resumed trial
    report that unit again: the last report wins. A driver killed before Tune uploaded a
    result's line leaves a gap; the units the trial's last checkpoint records fill it."""
    frames = []
    for r in grid:
        label = (r.config or {}).get(JOB)
        df = _with_checkpointed_results(r, r.metrics_dataframe)
        if label not in jobs or df is None or df.empty or "training_iteration" not in df:
            continue
        df = df[[c for c in df if not c.startswith(CONFIG_PREFIX)]].copy()
        df = df.drop_duplicates("training_iteration", keep="last")
        df.insert(0, "label", label)
        df["trial_id"] = result_trial_id(r)
        frames.append(df.sort_values("training_iteration"))
    if not frames:
        return pd.DataFrame(columns=["label", "trial_id", "training_iteration"])
    order = {label: i for i, label in enumerate(jobs)}
    out = pd.concat(frames, ignore_index=True)
    return (out.sort_values(["label", "training_iteration"],
                            key=lambda s: s.map(order) if s.name == "label" else s)
            .reset_index(drop=True))


def _with_checkpointed_results(result, df: pd.DataFrame | None) -> pd.DataFrame | None:
    """``df`` (a trial's results) with the units its last checkpoint records that ``df``
    lacks (a trainable that keeps them: ``results`` in its checkpoint)."""
    last = (result.metrics or {}).get("training_iteration")
    have = set(df["training_iteration"]) if df is not None and "training_iteration" in df else set()
    if not last or set(range(1, int(last) + 1)) <= have or result.checkpoint is None:
        return df
    try:
        kept = load_trial_state(result.checkpoint.path).get("results") or []
    except (OSError, ValueError, RuntimeError, InvalidConfigError, DamagedFileError):
        return df  # no readable checkpoint of ours: the gap stays, and the table says so
    missing = [row for row in kept if row.get("training_iteration") not in have]
    if not missing:
        return df
    return pd.concat([df, pd.DataFrame(missing)], ignore_index=True).sort_values(
        "training_iteration", kind="stable")


def _table(grid, statuses: dict[str, str], jobs: Mapping[str, tuple[Dataset, dict]],
           spec: SweepSpec, exp_dir: Path) -> pd.DataFrame:
    rows = []
    for r in grid:
        m = r.metrics or {}
        label = (r.config or {}).get(JOB)
        ds, config = jobs[label]
        status, error = trial_outcome(r, statuses)
        test_acc, ckpt = float("nan"), None
        if status == Trial.TERMINATED and r.checkpoint is not None:
            ckpt = uris.location_of(r.checkpoint.path, exp_dir)
            with r.checkpoint.as_directory() as d:
                test_acc = spec.evaluate(d, ds, "test")
        rows.append({
            "label": label, "dataset": ds.name, "trial_id": result_trial_id(r), "status": status,
            "val_acc": m.get("val_acc"), "train_acc": m.get("train_acc"), "test_acc": test_acc,
            "epochs": m.get("training_iteration", 0), "seconds": m.get("time_total_s"),
            "device": m.get("device"), **{k: m.get(k) for k in COST_METRICS},
            "node_id": m.get("node_id"), "checkpoint": ckpt, "error": error,
            **config_columns(config),
        })
    order = {label: i for i, label in enumerate(jobs)}
    return (pd.DataFrame(rows).sort_values("label", key=lambda s: s.map(order))
            .reset_index(drop=True))


__all__ = ["JobResources", "TrialJob", "TrialsResult", "run_trials"]
