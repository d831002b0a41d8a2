"""``run_bohb``: a resumable, interrupt-safe BOHB sweep of any :class:`SweepSpec` with Ray Tune's
``TuneBOHB`` and ``HyperBandForBOHB``.

This is the one sweep runner: the CNN, transfer and supernet sweeps differ only in the spec, and
:func:`build_search` is the one place that builds the searcher and the scheduler, so that a
warm-start searcher can wrap the BOHB searcher without touching the rest.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from ConfigSpace import ConfigurationSpace
from ray import tune
from ray.tune.callback import Callback
from ray.tune.experiment import Trial

from automl_chars import uris
from automl_chars.data import Dataset, load
from automl_chars.errors import (
    DamagedFileError,
    DamagedFileWarning,
    ExperimentStateError,
    InvalidConfigError,
    SweepInterrupted,
)
from automl_chars.layout import (
    TRIALS_FILE,
    WARM_START_FILE,
    config_columns,
    experiment_dir,
    results_root,
    write_csv,
    write_json,
)
from automl_chars.runner import cluster
from automl_chars.runner.core import (
    check_resumable,
    check_same_run,
    check_same_workers,
    check_seed,
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
from automl_chars.runner.result import (
    METRIC_COLUMNS,
    OPTIONAL_COLUMNS,
    SweepResult,
    incumbent_order,
)
from automl_chars.search.bohb import (
    SearcherFactory,
    build_search,
    check_bohb_config,
    is_whole,
    resolve_preset,
)
from automl_chars.search.pmf import PMFSearcher
from automl_chars.search.presets import BOHBPreset
from automl_chars.search.scheduler import SchedulerStateCallback
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.spec import SweepSpec, get_spec
from automl_chars.search.warmstart import (
    DEFAULT_PRIORS,
    WarmStart,
    WarmStartPlan,
    WarmStartSearcher,
    plan_warm_start,
)
from automl_chars.similarity import DEFAULT_MEASURE
from automl_chars.spaces.values import SUGGESTED_BY, plain_value, strip_meta
from automl_chars.store.ingest import record_sweep, trained_config
from automl_chars.trainables.base import autotune_settings
from automl_chars.training.autotune import AutotuneSettings
from automl_chars.training.fidelity import Fidelity
from automl_chars.training.objective import OBJECTIVE, Objective

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSettings:
    """Everything that defines a sweep; saved as ``automl_chars.json`` and checked on resume."""

    dataset: str
    dataset_fingerprint: str
    preset: str
    eta: int
    min_budget: int
    max_budget: int
    num_samples: int
    fidelity: str
    gpus_per_trial: float
    cpus_per_trial: float
    seed: int
    trainable: str = "cnn"
    space_fingerprint: str = ""
    bohb_config: dict = field(default_factory=dict)
    max_failures: int = 2
    warm_start: dict = field(default_factory=dict)
    priors: bool = False  # BOHB's model started from the built-in priors and the store
    autotune_lr: dict | None = None  # AutotuneLR's settings: learning_rate tuned in each trial
    objective: dict = field(default_factory=dict)  # Objective.describe(); empty: val_acc
    workers_per_trial: int = 1  # > 1: each trial data-parallel on that many Ray Train workers

    def __post_init__(self) -> None:
        problems = run_problems(self.gpus_per_trial, self.cpus_per_trial, self.seed,
                                self.max_failures, self.workers_per_trial)
        if not is_whole(self.num_samples) or self.num_samples < 1:
            problems.insert(2, f"num_samples must be a whole number >= 1 (got "
                               f"{self.num_samples!r})")
        if problems:
            raise InvalidConfigError("Invalid sweep settings: " + "; ".join(problems) + ".")

    @property
    def resources(self) -> dict[str, float]:
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}


#: The settings that make a sweep what it is; resuming with other values is refused.
#: (Resources and retries may change between runs: a sweep can resume on another cluster.)
DEFINING_SETTINGS = ("trainable", "space_fingerprint", "bohb_config", "dataset",
                     "dataset_fingerprint", "preset", "fidelity", "seed", "num_samples",
                     "warm_start", "autotune_lr", "objective")


def check_same_sweep(exp_dir: Path, settings: SweepSettings) -> None:
    """Raises :class:`ExperimentStateError` if ``exp_dir`` holds a sweep defined otherwise."""
    given = plain_value(asdict(settings))
    saved = saved_settings(exp_dir)
    # A warm start's settings are compared on the keys the saved sweep has (sweeps saved
    # before a setting existed resume as they were).
    if saved.get("warm_start") and given["warm_start"]:
        given["warm_start"] = {k: given["warm_start"].get(k) for k in saved["warm_start"]}
        # Saved before warm starts had a method (and the default measure became logme): the
        # default measure stands for the one that sweep planned with (a resume never re-plans).
        if "method" not in saved["warm_start"] and given["warm_start"].get("measure") == \
                DEFAULT_MEASURE:
            given["warm_start"]["measure"] = saved["warm_start"].get("measure")
    if "objective" not in saved and not given["objective"]:  # saved before objectives existed
        given["objective"] = None
    check_same_run(exp_dir, given, DEFINING_SETTINGS)
    check_same_workers(exp_dir, saved, settings.workers_per_trial)


def run_bohb(
    dataset: str | Dataset,
    space: ConfigurationSpace | None = None,
    preset: str | BOHBPreset | None = None,
    eta: int | None = None,
    min_budget: int | None = None,
    max_budget: int | None = None,
    num_samples: int | None = None,
    fidelity: str = "epochs",
    gpus_per_trial: float = 0.0,
    cpus_per_trial: float = 1,
    storage_path: str | os.PathLike | None = None,
    name: str | None = None,
    seed: int = 0,
    resume: bool = False,
    *,
    spec: str | SweepSpec | None = None,
    searcher: SearcherFactory | None = None,
    max_failures: int = 2,
    callbacks: Sequence[Callback] = (),
    address: str | None = None,
    data_root: str | os.PathLike | None = None,
    bohb_config: dict | None = None,
    warm_start: WarmStart | None = None,
    priors: bool = True,
    autotune_lr: AutotuneSettings | dict | bool | None = None,
    objective: Objective | None = None,
    workers_per_trial: int = 1,
    restart_errored: bool = False,
    verbose: int = 1,
) -> SweepResult:
    """Runs (or resumes) a BOHB sweep of ``spec`` (the CNN space by default) on ``dataset``.

    Everything is checked before Ray starts: the settings, the space against the trainable, and
    the resources against the cluster. A sweep stopped by Ctrl-C or SIGTERM raises
    :class:`~automl_chars.errors.SweepInterrupted` and writes nothing up as finished;
    ``resume=True`` continues it to the end, keeping every finished trial.

    Args:
        dataset: a registered name (see ``automl_chars.data.names()``) or a :class:`Dataset`.
        space: the ConfigSpace to search; defaults to the spec's (``cnn_space(seed)``). For the
            CNN, hyperparameters it leaves out take the CNN space's defaults.
        preset: a seed-001 preset such as ``"3_1_9_20"`` (eta_min_max_iterations); excludes
            ``eta``/``min_budget``/``max_budget``, which otherwise default to 3, 1 and 9 with one
            full HyperBand round.
        num_samples: Ray trials; defaults to the preset's (see :class:`BOHBPreset`).
        fidelity: ``"epochs"`` or ``"subset"`` (see :mod:`automl_chars.training.fidelity`).
        gpus_per_trial: GPU share of each trial (e.g. 0.25 runs four trials per GPU); 0 = CPU.
        cpus_per_trial: CPUs reserved per trial.
        storage_path: results root (default ``$AUTOML_CHARS_RESULTS`` or ``~/automl_chars_results``).
        name: experiment folder name (default ``bohb-<dataset>-<preset>``, with the spec's name
            for specs other than the CNN).
        seed: seeds the space, BOHB's sampling and every trial's initialisation.
        resume: continue an interrupted sweep in ``storage_path/name``; finished trials are kept
            and errored ones retried. A sweep that had finished is read back. Either way its
            defining settings (:data:`DEFINING_SETTINGS`: trainable, space, BOHB options, the
            dataset's contents, ...) must be the same.
        spec: what to sweep: a :class:`SweepSpec` or a name in :data:`~automl_chars.search.spec.SPECS`.
        searcher: wraps the BOHB searcher (see :func:`build_search`).
        max_failures: how often a trial whose process or node died is retried from its last
            checkpoint. Failures a retry cannot fix (NaN loss, a configuration that cannot be
            built) end the trial at once as a failed result instead.
        callbacks: more Ray Tune callbacks (e.g. your own loggers).
        address: Ray cluster to connect to when Ray is not initialised (default: ``$RAY_ADDRESS``
            or a local instance).
        data_root: data folder for datasets given by name.
        bohb_config: options of hpbandster's BOHB config generator (:data:`BOHB_OPTIONS`).
        warm_start: seed the sweep from a portfolio and the results store, and let BOHB's model
            start from similar datasets' results (see :mod:`automl_chars.search.warmstart`).
        autotune_lr: AutotuneLR (True, or an :class:`~automl_chars.training.autotune.AutotuneSettings`
            or its dict): ``learning_rate`` leaves the space and each trial tunes its own by a
            refined grid search of short runs at its start, in its own time; trials report
            ``autotuned_lr`` and ``autotune_s`` (docs/training-tools.md).
        priors: start BOHB's model from the built-in priors and the store (default; never with
            an ``objective``: they are accuracies, not its values).
        objective: optimise accuracy under cost limits or MnasNet's reward instead of the
            validation accuracy (:class:`~automl_chars.training.objective.Objective`,
            docs/hardware-aware.md): infeasible configurations train nothing, BOHB learns from
            their violation, and the incumbent is the best feasible trial's.
        workers_per_trial: train each trial data-parallel (DDP) on this many Ray Train workers,
            for models too big for one GPU's share; ``cpus_per_trial`` and ``gpus_per_trial``
            (0 or 1) are then each worker's; a trial trains when its workers find room
            (docs/cluster.md).
        restart_errored: with ``resume``, errored trials train again from scratch instead of
            from their last checkpoint (a trial that died restoring a damaged checkpoint would
            die again), a finished sweep's too; BOHB's scheduler takes them back at budget 1.
        verbose: 0 silent, 1 one line per finished trial and a progress line (counts, best so
            far, elapsed, ETA: live in a terminal, plain lines elsewhere), 2-4 Ray Tune's own
            output (its verbosity 1-3) instead.
    """
    check_seed(seed)  # before the space draws from it
    results_root(storage_path)  # a storage URI is checked before any data loads
    problems = workers_problems(workers_per_trial, gpus_per_trial)
    if problems:
        raise InvalidConfigError("Invalid sweep settings: " + "; ".join(problems) + ".")
    cluster.precheck(address, float(cpus_per_trial), float(gpus_per_trial), workers_per_trial)
    bohb = resolve_preset(preset, eta, min_budget, max_budget)
    fid = Fidelity(fidelity, bohb.max_budget, data_seed=seed)
    bohb_options = check_bohb_config(bohb_config)
    objective = check_objective(objective, warm_start)
    sweep_spec = with_objective(get_spec(spec, space, seed).with_autotune_lr(autotune_lr, seed),
                                objective)
    tuned = sweep_spec.parameters.get("autotune_lr")  # also when the given spec set it
    if tuned is not None:
        tuned = autotune_settings(tuned, sweep_spec.trainable)
    if workers_per_trial > 1:  # Ray Train's torch integration is imported only for these
        from automl_chars.trainables.data_parallel import check_data_parallel

        check_data_parallel(sweep_spec.trainable, sweep_spec.parameters)
    ds = load(dataset, root=data_root)
    settings = SweepSettings(
        dataset=ds.name, dataset_fingerprint=ds.fingerprint(), preset=bohb.name, eta=bohb.eta,
        min_budget=bohb.min_budget, max_budget=bohb.max_budget,
        num_samples=bohb.num_samples if num_samples is None else num_samples,
        fidelity=fid.kind, gpus_per_trial=float(gpus_per_trial),
        cpus_per_trial=float(cpus_per_trial), seed=seed, trainable=sweep_spec.name,
        space_fingerprint=sweep_spec.fingerprint(), bohb_config=bohb_options,
        max_failures=max_failures, warm_start=warm_start.describe() if warm_start else {},
        priors=bool(priors) and searcher is None and objective is None,
        autotune_lr=tuned.to_dict() if tuned is not None else None,
        objective=objective.describe() if objective else {},
        workers_per_trial=int(workers_per_trial),
    )
    if warm_start is not None and searcher is not None:
        raise InvalidConfigError("Pass warm_start or searcher, not both (a warm start is a "
                                 "searcher wrapping BOHB).")
    default_name = f"bohb-{ds.name}-{bohb.name}"
    exp_dir = experiment_dir(storage_path, name or (default_name if sweep_spec.name == "cnn"
                                                    else f"{sweep_spec.name}-{default_name}"))
    if resume:
        check_same_sweep(exp_dir, settings)
    if check_resumable(exp_dir, resume):  # finished earlier: nothing left to run
        done = SweepResult.load(exp_dir)
        if not (restart_errored and (done.trials["status"] == Trial.ERROR).any()):
            return done
    sweep_spec.check(ds)
    cluster.join(address, settings.cpus_per_trial, settings.gpus_per_trial, verbose,
                 settings.workers_per_trial)
    warm = _warm_start(warm_start, settings.priors, fid)
    if warm is not None and not resume:  # a resumed sweep restores its searcher's state
        searcher = _warm_start_searcher(ds, sweep_spec, warm, bohb, exp_dir, seed, verbose,
                                        settings.num_samples)
    parameters, spec_callbacks = sweep_spec.for_run(uris.tune_path(exp_dir))  # a resumed run's mirror may be elsewhere
    if objective is not None:
        parameters["objective"] = objective
    trainable = trial_trainable(
        sweep_spec.trainable,
        {"dataset": _dataset_for(sweep_spec, ds), "fidelity": fid, "seed": seed, **parameters},
        settings.cpus_per_trial, settings.gpus_per_trial, settings.workers_per_trial, exp_dir)
    failure = tune.FailureConfig(max_failures=settings.max_failures, fail_fast=False)
    with quiet_ray_output(verbose):
        tuner = _tuner(exp_dir, trainable, settings, sweep_spec, bohb, bohb_options, searcher,
                       failure, resume, verbose, spec_callbacks, callbacks, restart_errored)
        try:
            grid, statuses = fit_to_the_end(tuner, exp_dir, settings.num_samples, verbose)
        except SweepInterrupted:
            record_sweep(exp_dir, ds)  # what it learned so far, marked unfinished
            raise
    result = finish(grid, ds, exp_dir, settings, sweep_spec, statuses)
    record_sweep(exp_dir, ds)
    return result


def check_objective(objective: Objective | None,
                    warm_start: WarmStart | None = None) -> Objective | None:
    """The sweep's objective (None for plain accuracy); raises for one a sweep cannot take."""
    if objective is None:
        return None
    if not isinstance(objective, Objective):
        raise InvalidConfigError(f"objective must be an Objective (automl_chars.training."
                                 f"objective), got {objective!r}.")
    if not objective.active:
        return None
    if warm_start is not None:
        raise InvalidConfigError(
            "A warm start cannot be combined with an objective yet: its priors and seeds are "
            "ranked by accuracy, not by the objective. Drop warm_start or the cost limits and "
            "reward (max_params, max_flops, max_latency_ms, reward_targets).")
    return objective


def with_objective(spec: SweepSpec, objective: Objective | None) -> SweepSpec:
    """``spec`` optimising :data:`OBJECTIVE` (unchanged without an objective); raises for a
    Trainable that reports no model costs (a supernet: ask its result for the best subnet under
    the limits instead, docs/hardware-aware.md)."""
    if objective is None:
        return spec
    if not getattr(spec.trainable, "reports_costs", False):
        raise InvalidConfigError(
            f"The {spec.name!r} sweep cannot take cost limits or a reward: "
            f"{spec.trainable.__name__} reports no single model's costs. For supernets, pick "
            f"the best subnet under limits from a finished run (best_subnet, or automl-chars "
            f"pareto DIR --max-params N).")
    if spec.mode != "max" or spec.metric != "val_acc":
        raise InvalidConfigError(f"An objective replaces the validation accuracy; the "
                                 f"{spec.name!r} sweep optimises {spec.metric} ({spec.mode}).")
    return replace(spec, metric=OBJECTIVE)


def _dataset_for(spec: SweepSpec, ds: Dataset) -> Dataset | str:
    """What the trials get as ``dataset``: the data, or only its name for a Trainable that
    trains on none (``needs_data = False``: a replay, whose actors then skip torch)."""
    return ds if getattr(spec.trainable, "needs_data", True) else ds.name


def _warm_start(warm: WarmStart | None, priors: bool, fid: Fidelity) -> WarmStart | None:
    """The warm start a sweep runs with: the given one (with the built-in priors unless
    ``priors`` is off), or, by default, priors only, from other datasets than the target."""
    builtin = priors and fid.kind == "epochs"
    if warm is not None:
        return replace(warm, builtin=warm.builtin and builtin)
    # Default priors: other datasets' results at epoch budgets (the store does not record which
    # fidelity a result used, so a subset sweep starts cold).
    return DEFAULT_PRIORS if builtin else None


def _warm_start_searcher(ds: Dataset, spec: SweepSpec, warm: WarmStart, bohb: BOHBPreset,
                         exp_dir: Path, seed: int, verbose: int,
                         num_trials: int | None = None) -> SearcherFactory | None:
    """Plans the warm start (before Ray starts) and returns the factory wrapping BOHB with it
    (None for priors only, when there are none for this sweep)."""
    from automl_chars.store import ResultsStore, store_beside

    store = (warm.store if isinstance(warm.store, ResultsStore) else
             ResultsStore(warm.store) if warm.store else store_beside(exp_dir))
    try:
        plan = plan_warm_start(ds, spec, warm, bohb.budgets, store=store, seed=seed)
    except Exception as err:
        if warm.strict:  # an explicit warm start fails loudly
            raise
        warnings.warn(f"No warm start ({type(err).__name__}: {err}); the sweep starts cold.",
                      stacklevel=3)  # the default one never fails a sweep
        return None
    if plan.empty and not warm.strict:
        return None
    if num_trials is not None:
        plan.cap_seeds(num_trials)
    exp_dir.mkdir(parents=True, exist_ok=True)
    write_json(exp_dir / WARM_START_FILE, plan.summary())
    if verbose >= 1:
        print(plan.describe(default=not warm.strict), flush=True)
    return _Seeded(plan, lead=plan.first_trials if warm.lead else 0, strict=warm.strict)


@dataclass(frozen=True)
class _Seeded:
    """Wraps BOHB in a warm start (and that in :class:`PMFSearcher` when the plan has PMF
    trials); ``lead``: that many trials (the seeds, the PMF picks) train to the top budget
    first, in a bracket of their own (see :class:`ResumableHyperBandForBOHB`). Unless
    ``strict``, priors BOHB's model cannot take are dropped with a warning (the seeds stay)."""

    plan: WarmStartPlan
    lead: int = 0
    strict: bool = True

    def __call__(self, searcher: BOHBSearcher) -> WarmStartSearcher | PMFSearcher:
        try:
            warm = WarmStartSearcher(searcher, self.plan)
        except Exception as err:  # e.g. hpbandster cannot fit its model to the priors
            if self.strict or not self.plan.priors:
                raise
            warnings.warn(f"BOHB's model could not take the priors ({type(err).__name__}: "
                          f"{err}); the sweep runs without them.", stacklevel=2)
            warm = WarmStartSearcher(searcher, replace(self.plan, priors=[]))
        if self.plan.pmf is not None and self.plan.pmf_trials:
            return PMFSearcher(warm, self.plan.pmf, self.plan.pmf_trials)
        return warm


def _tuner(exp_dir: Path, trainable, settings: SweepSettings, spec: SweepSpec, bohb: BOHBPreset,
           bohb_options: dict, searcher: SearcherFactory | None, failure: tune.FailureConfig,
           resume: bool, verbose: int, spec_callbacks: Sequence[Callback],
           callbacks: Sequence[Callback], restart_errored: bool = False) -> tune.Tuner:
    """A new ``Tuner`` for the sweep, or the interrupted one restored from ``exp_dir`` (with
    the caller's ``callbacks``; the spec's come back with their state)."""
    if resume:
        return restore_tuner(exp_dir, trainable, failure, plain_value(asdict(settings)),
                             restart_errored, callbacks)
    start_run(exp_dir, asdict(settings), len(callbacks))
    np.random.seed(settings.seed)  # hpbandster's BOHB draws from numpy's global generator
    search_alg, scheduler = build_search(spec, bohb, settings.seed, bohb_options, searcher,
                                         lead=getattr(searcher, "lead", 0))
    return tune.Tuner(
        trainable,
        param_space=dict(spec.fixed),  # Tune merges BOHB's suggestions into these constants
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=scheduler, num_samples=settings.num_samples,
            reuse_actors=True, trial_dirname_creator=trial_dirname,
        ),
        run_config=run_config(
            exp_dir, settings.num_samples, failure, verbose, [*spec_callbacks, *callbacks],
            tune.CheckpointConfig(checkpoint_frequency=spec.checkpoint_frequency, num_to_keep=2,
                                  checkpoint_at_end=spec.checkpoint_frequency == 0),
            first=[SchedulerStateCallback(scheduler)],
            planned_units=bohb.planned_budget(settings.num_samples,
                                              lead=getattr(searcher, "lead", 0)),
            metric=spec.metric, mode=spec.mode),
    )


def trials_frame(grid, statuses: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per trial of a ``ResultGrid`` (see :attr:`SweepResult.trials`).

    ``status`` is Tune's (``statuses``: trial id -> status), except ``FAILED`` for a trial that
    ended with a failure a retry cannot fix; ``error`` says why a trial failed or errored.
    """
    rows = []
    for r in grid:
        m = r.metrics or {}
        config = dict(r.config or {})
        tid = result_trial_id(r)
        status, reason = trial_outcome(r, statuses)
        row = {
            "trial_id": tid,
            "status": status,
            SUGGESTED_BY: config.get(SUGGESTED_BY, "given"),
            "budget": m.get("training_iteration", 0),
            "device": m.get("device"),
            "node_id": m.get("node_id"),
            **{k: m.get(k) for k in METRIC_COLUMNS},
            **{k: m[k] for k in OPTIONAL_COLUMNS if k in m},
            "timestamp": m.get("timestamp"),
            "error": reason,
            **config_columns({k: plain_value(v) for k, v in strip_meta(config).items()}),
        }
        rows.append(row)
    return pd.DataFrame(rows).sort_values("trial_id", kind="stable").reset_index(drop=True)


def _evaluate_incumbent(grid, order: list[str], dataset: Dataset, spec: SweepSpec):
    """``(trial id, Result, test metric)`` of the first trial in ``order`` whose checkpoint
    evaluates: one whose checkpoint is damaged is passed over with a
    :class:`~automl_chars.errors.DamagedFileWarning` naming the file (the rest of the sweep
    still serves; the trials table keeps its row)."""
    by_id = {result_trial_id(r): r for r in grid}
    for trial_id in order:
        best = by_id[trial_id]
        if best.checkpoint is None:
            raise ExperimentStateError(f"Incumbent trial {trial_id} has no checkpoint to evaluate.")
        try:
            with best.checkpoint.as_directory() as ckpt:
                return trial_id, best, spec.evaluate(ckpt, dataset, "test")
        except DamagedFileError as err:
            warnings.warn(f"{err.location} is damaged ({err.problem}): trial {trial_id} cannot "
                          f"be the incumbent, whose model is evaluated on the test split; the "
                          f"next best trial is.", DamagedFileWarning, stacklevel=3)
    raise ExperimentStateError("No trial's checkpoint could be evaluated: each one is damaged "
                               "(the warnings name them). Run the sweep again under another "
                               "name for a model to test.")


def finish(grid, dataset: Dataset, exp_dir: Path, settings: SweepSettings, spec: SweepSpec,
           statuses: dict[str, str] | None = None) -> SweepResult:
    """Builds, evaluates (the incumbent on the test split, once) and saves the :class:`SweepResult`."""
    trials = trials_frame(grid, statuses)
    try:
        order = incumbent_order(trials, spec.metric, spec.mode)
    except ExperimentStateError as err:  # every trial failed: keep their reasons for the user
        write_csv(exp_dir / TRIALS_FILE, trials)
        raise ExperimentStateError(f"{err} Each trial's status and error are in "
                                   f"{exp_dir / TRIALS_FILE}.") from None
    try:
        best_id, best, test_metric = _evaluate_incumbent(grid, order, dataset, spec)
    except ExperimentStateError as err:  # no model to test: the trials' results are kept
        write_csv(exp_dir / TRIALS_FILE, trials)
        raise ExperimentStateError(f"{err} Each trial's results are in "
                                   f"{exp_dir / TRIALS_FILE}.") from None
    # as the incumbent trained: with AutotuneLR, at the learning rate it chose
    incumbent = trained_config({k: plain_value(v) for k, v in strip_meta(best.config).items()},
                               trials.loc[trials["trial_id"] == best_id].iloc[0],
                               settings.autotune_lr)
    if not math.isfinite(test_metric):
        logger.warning("The incumbent's test %s is %s.", spec.metric, test_metric)
    saved = saved_settings(exp_dir)
    # The saved start time, the current resources (a resumed sweep may run on other hardware).
    result = SweepResult(trials, incumbent, best_id, test_metric, exp_dir,
                         {**saved, **plain_value(asdict(settings))})
    result.save()
    return result
