"""``run_bohb``: a resumable, interrupt-safe BOHB sweep of any :class:`SweepSpec` with Ray Tune's
``TuneBOHB`` and ``HyperBandForBOHB``.

This is the one sweep runner: the CNN, transfer and supernet sweeps differ only in the spec, and
:func:`build_search` is the one place that builds the searcher and the scheduler, so that a
warm-start searcher can wrap the BOHB searcher without touching the rest.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from ConfigSpace import ConfigurationSpace
from ray import tune
from ray.exceptions import RayActorError, RaySystemError
from ray.tune.callback import Callback
from ray.tune.experiment import Trial
from ray.tune.logger import TBXLoggerCallback
from ray.tune.search import Searcher

from automl_chars.data import Dataset, load
from automl_chars.errors import (
    ClusterUnavailableError,
    ExperimentStateError,
    InvalidConfigError,
    SweepInterrupted,
)
from automl_chars.search import cluster
from automl_chars.search.interrupts import TUNE_ENV, InterruptGuard
from automl_chars.search.presets import BOHBPreset, get_preset
from automl_chars.search.progress import TrialLineCallback, quiet_ray_output
from automl_chars.search.ray_compat import (
    atomic_local_uploads,
    remove_partial_uploads,
    restored_run_config,
    trial_statuses,
)
from automl_chars.search.result import (
    METRIC_COLUMNS,
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    SweepResult,
    pick_incumbent,
    write_json,
)
from automl_chars.search.scheduler import ResumableHyperBandForBOHB, SchedulerStateCallback
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.spec import SweepSpec, get_spec, space_fingerprint
from automl_chars.search.warmstart import WarmStart, WarmStartSearcher, plan_warm_start
from automl_chars.spaces.values import SUGGESTED_BY, plain_value, strip_meta
from automl_chars.store.ingest import record_sweep
from automl_chars.trainables.base import FAILURE
from automl_chars.training.fidelity import Fidelity

logger = logging.getLogger(__name__)

#: Where sweeps go when neither ``storage_path`` nor ``$AUTOML_CHARS_RESULTS`` is given.
DEFAULT_STORAGE = "~/automl_chars_results"
#: The warm start's plan (seeds, priors, rankings), written when the sweep starts.
WARM_START_FILE = "warm_start.json"
#: hpbandster's BOHB options that ``bohb_config`` may set.
BOHB_OPTIONS = ("min_points_in_model", "top_n_percent", "num_samples", "random_fraction",
                "bandwidth_factor", "min_bandwidth")
#: Tune statuses of a trial that has ended (failed trials are TERMINATED to Tune); a sweep is
#: finished when every trial has one of them.
ENDED = (Trial.TERMINATED, Trial.ERROR)


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

    def __post_init__(self) -> None:
        problems = []
        if not self.gpus_per_trial >= 0:
            problems.append(f"gpus_per_trial must be >= 0 (got {self.gpus_per_trial})")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            problems.append(f"gpus_per_trial above 1 must be a whole number (got "
                            f"{self.gpus_per_trial}); Ray shares only single GPUs")
        if not self.cpus_per_trial > 0:
            problems.append(f"cpus_per_trial must be > 0 (got {self.cpus_per_trial})")
        if not _is_int(self.num_samples) or self.num_samples < 1:
            problems.append(f"num_samples must be a whole number >= 1 (got {self.num_samples!r})")
        if not _seed_ok(self.seed):
            problems.append(f"seed must be a whole number in [0, 2**32) (got {self.seed!r})")
        if not _is_int(self.max_failures) or self.max_failures < 0:
            problems.append(f"max_failures must be a whole number >= 0 (got {self.max_failures!r})")
        if problems:
            raise InvalidConfigError("Invalid sweep settings: " + "; ".join(problems) + ".")

    @property
    def resources(self) -> dict[str, float]:
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _seed_ok(seed) -> bool:
    return _is_int(seed) and 0 <= seed < 2**32


def check_seed(seed) -> None:
    """Raises :class:`InvalidConfigError` for a seed numpy and ConfigSpace cannot take."""
    if not _seed_ok(seed):
        raise InvalidConfigError(f"Invalid sweep settings: seed must be a whole number in "
                                 f"[0, 2**32) (got {seed!r}).")


#: The settings that make a sweep what it is; resuming with other values is refused.
#: (Resources and retries may change between runs: a sweep can resume on another cluster.)
DEFINING_SETTINGS = ("trainable", "space_fingerprint", "bohb_config", "dataset",
                     "dataset_fingerprint", "preset", "fidelity", "seed", "num_samples",
                     "warm_start")


def check_same_sweep(exp_dir: Path, settings: SweepSettings) -> None:
    """Raises :class:`ExperimentStateError` if ``exp_dir`` holds a sweep defined otherwise."""
    saved_file = exp_dir / SETTINGS_FILE
    if not saved_file.exists():
        return
    saved = json.loads(saved_file.read_text())
    given = plain_value(asdict(settings))
    # A warm start's settings are compared on the keys the saved sweep has (sweeps saved
    # before a setting existed resume as they were).
    if saved.get("warm_start") and given["warm_start"]:
        given["warm_start"] = {k: given["warm_start"].get(k) for k in saved["warm_start"]}
    diff = {k: (saved.get(k), given[k]) for k in DEFINING_SETTINGS if saved.get(k) != given[k]}
    if diff:
        raise ExperimentStateError(
            f"Cannot resume {exp_dir} with different settings (saved, given): {diff}. Use the "
            f"saved ones, or another name/storage path for a new sweep."
        )


def check_bohb_config(bohb_config: dict | None) -> dict:
    """``bohb_config`` as a plain dict of hpbandster's BOHB options; unknown keys or values that
    are not numbers raise."""
    config = dict(bohb_config or {})
    unknown = sorted(set(config) - set(BOHB_OPTIONS))
    if unknown:
        raise InvalidConfigError(f"Unknown bohb_config option(s) {unknown}; hpbandster's BOHB "
                                 f"takes {list(BOHB_OPTIONS)}.")
    bad = {k: v for k, v in config.items()
           if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))}
    if bad:
        raise InvalidConfigError(f"bohb_config values must be numbers (or None), got {bad}.")
    return config


def resolve_preset(preset: str | BOHBPreset | None, eta: int | None, min_budget: int | None,
                   max_budget: int | None) -> BOHBPreset:
    """The preset, or one full HyperBand round from explicit ``eta``/budgets (3, 1, 9 by default;
    a value given is used as given, so 0 is refused rather than replaced)."""
    given = {k: v for k, v in {"eta": eta, "min_budget": min_budget, "max_budget": max_budget}.items()
             if v is not None}
    if preset is not None:
        if given:
            raise InvalidConfigError(f"Pass either a preset or {sorted(given)}, not both.")
        return get_preset(preset)
    for key, value in given.items():
        if not _is_int(value):
            raise InvalidConfigError(f"{key} must be a whole number, got {value!r}.")
    base = BOHBPreset(given.get("eta", 3), given.get("min_budget", 1), given.get("max_budget", 9), 1)
    return BOHBPreset(base.eta, base.min_budget, base.max_budget, base.s_max + 1)


SearcherFactory = Callable[[BOHBSearcher], Searcher]


def build_search(spec: SweepSpec, preset: BOHBPreset, seed: int, bohb_config: dict | None = None,
                 searcher: SearcherFactory | None = None,
                 ) -> tuple[Searcher, ResumableHyperBandForBOHB]:
    """The searcher and scheduler of a BOHB sweep (the budget is ``training_iteration``).

    ``searcher`` wraps the BOHB searcher (e.g. a warm start): it receives the
    :class:`BOHBSearcher` and returns the searcher Tune runs, which must keep the contract of
    :class:`~automl_chars.search.searcher.BracketSearcher`.
    """
    bohb = BOHBSearcher(spec.space, bohb_config=bohb_config, metric=spec.metric, mode=spec.mode,
                        seed=seed)
    scheduler = ResumableHyperBandForBOHB(
        time_attr="training_iteration", metric=spec.metric, mode=spec.mode,
        min_t=preset.min_budget, max_t=preset.max_budget, reduction_factor=preset.eta,
    )
    return (bohb if searcher is None else searcher(bohb)), scheduler


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default embeds the configuration and overflows paths)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def experiment_dir(storage_path: str | os.PathLike | None, name: str) -> Path:
    """``<storage>/<name>``; storage defaults to ``$AUTOML_CHARS_RESULTS`` or ``~/automl_chars_results``.

    On a multi-node cluster, use a folder every node mounts (NFS, EFS): Ray rejects a path
    local to the head node. Cloud URIs (``s3://``) are not supported yet.
    """
    raw = str(storage_path or os.environ.get("AUTOML_CHARS_RESULTS") or DEFAULT_STORAGE)
    if "://" in raw:
        raise InvalidConfigError(
            f"storage_path {raw!r}: cloud URIs are not supported yet; use a folder on a "
            f"filesystem every node mounts (e.g. NFS or EFS)."
        )
    return Path(raw).expanduser().resolve() / name


def can_resume(exp_dir: Path) -> bool:
    """Whether ``exp_dir`` holds Ray Tune state that :func:`run_bohb` can resume."""
    return tune.Tuner.can_restore(str(exp_dir))


def check_resumable(exp_dir: Path, resume: bool) -> bool:
    """Whether the experiment in ``exp_dir`` had finished (its ``summary.json`` is there);
    raises if ``resume`` finds nothing to resume, or a new run would overwrite one."""
    if resume:
        if (exp_dir / SUMMARY_FILE).exists():
            return True
        if not can_resume(exp_dir):
            raise ExperimentStateError(
                f"Nothing to resume in {exp_dir}: no Ray Tune experiment state there. Run "
                f"without resume to start it."
            )
        check_experiment_state(exp_dir)
    elif can_resume(exp_dir):
        # A settings file alone (killed before Ray saved anything) is simply started again.
        raise ExperimentStateError(
            f"An experiment already exists in {exp_dir}. Pass resume=True (CLI: --resume) to "
            f"continue it, or choose another name/storage path."
        )
    return False


def check_experiment_state(exp_dir: Path) -> None:
    """Raises :class:`ExperimentStateError` if Ray Tune's newest experiment state in ``exp_dir``
    is unreadable (truncated by a kill while Ray copied it, before these copies were made
    atomic by :func:`~automl_chars.search.ray_compat.atomic_local_uploads`): Tune would start
    its trials again with empty configurations instead of resuming."""
    states = sorted(exp_dir.glob("experiment_state-*.json"))
    if not states:
        return
    try:
        json.loads(states[-1].read_text() or "!")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ExperimentStateError(
            f"Cannot resume {exp_dir}: Ray Tune's experiment state {states[-1].name} is "
            f"truncated (the driver was killed while writing it). Delete that file to resume "
            f"from the one before it, if any, or start the run again under another name."
        ) from None


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
        verbose: 0 silent, 1 one line per finished trial, 2-4 Ray Tune's own output (its
            verbosity 1-3) instead.
    """
    check_seed(seed)  # before the space draws from it
    cluster.precheck(address, float(cpus_per_trial), float(gpus_per_trial))
    bohb = resolve_preset(preset, eta, min_budget, max_budget)
    fid = Fidelity(fidelity, bohb.max_budget, data_seed=seed)
    bohb_options = check_bohb_config(bohb_config)
    ds = load(dataset, root=data_root)
    sweep_spec = get_spec(spec, space, seed)
    settings = SweepSettings(
        dataset=ds.name, dataset_fingerprint=ds.fingerprint(), preset=bohb.name, eta=bohb.eta,
        min_budget=bohb.min_budget, max_budget=bohb.max_budget,
        num_samples=bohb.num_samples if num_samples is None else num_samples,
        fidelity=fid.kind, gpus_per_trial=float(gpus_per_trial),
        cpus_per_trial=float(cpus_per_trial), seed=seed, trainable=sweep_spec.name,
        space_fingerprint=space_fingerprint(sweep_spec.space), bohb_config=bohb_options,
        max_failures=max_failures, warm_start=warm_start.describe() if warm_start else {},
        priors=bool(priors) and searcher is None,
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
        return SweepResult.load(exp_dir)
    sweep_spec.check(ds)
    cluster.join(address, settings.cpus_per_trial, settings.gpus_per_trial, verbose)
    warm = _warm_start(warm_start, settings.priors, fid)
    if warm is not None and not resume:  # a resumed sweep restores its searcher's state
        searcher = _warm_start_searcher(ds, sweep_spec, warm, bohb, exp_dir, seed, verbose,
                                        settings.num_samples)
    trainable = tune.with_resources(
        tune.with_parameters(sweep_spec.trainable, dataset=ds, fidelity=fid, seed=seed,
                             **sweep_spec.parameters),
        settings.resources,
    )
    failure = tune.FailureConfig(max_failures=settings.max_failures, fail_fast=False)
    with quiet_ray_output(verbose):
        tuner = _tuner(exp_dir, trainable, settings, sweep_spec, bohb, bohb_options, searcher,
                       failure, resume, verbose, callbacks)
        try:
            grid, statuses = fit_to_the_end(tuner, exp_dir, settings.num_samples, verbose)
        except SweepInterrupted:
            record_sweep(exp_dir, ds)  # what it learned so far, marked unfinished
            raise
    result = finish(grid, ds, exp_dir, settings, sweep_spec, statuses)
    record_sweep(exp_dir, ds)
    return result


def _warm_start(warm: WarmStart | None, priors: bool, fid: Fidelity) -> WarmStart | None:
    """The warm start a sweep runs with: the given one (with the built-in priors unless
    ``priors`` is off), or, by default, priors only, from other datasets than the target."""
    builtin = priors and fid.kind == "epochs"
    if warm is not None:
        return replace(warm, builtin=warm.builtin and builtin)
    # Default priors: other datasets' results at epoch budgets (the store does not record which
    # fidelity a result used, so a subset sweep starts cold).
    return WarmStart(builtin=True, seed_trials=False, same_dataset=False) if builtin else None


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
        if warm.seed_trials:  # an explicit warm start fails loudly
            raise
        warnings.warn(f"No priors for BOHB's model ({type(err).__name__}: {err}); the sweep "
                      f"starts cold.", stacklevel=3)  # default priors never fail a sweep
        return None
    if plan.empty and not warm.seed_trials:
        return None
    if num_trials is not None:
        plan.cap_seeds(num_trials)
    exp_dir.mkdir(parents=True, exist_ok=True)
    write_json(exp_dir / WARM_START_FILE, plan.summary())
    if verbose >= 1:
        print(plan.describe(), flush=True)
    if warm.seed_trials:
        return lambda searcher: WarmStartSearcher(searcher, plan)

    def priors_only(searcher):
        try:
            return WarmStartSearcher(searcher, plan)
        except Exception as err:  # e.g. hpbandster cannot fit its model to the priors
            warnings.warn(f"BOHB's model could not take the priors ({type(err).__name__}: "
                          f"{err}); the sweep starts cold.", stacklevel=2)
            return searcher

    return priors_only


def fit_to_the_end(tuner: tune.Tuner, exp_dir: Path, num_trials: int, verbose: int = 1,
                   complete: Callable[[tune.ResultGrid], bool] | None = None,
                   ) -> tuple[tune.ResultGrid, dict[str, str]]:
    """Runs ``tuner.fit()`` under an :class:`InterruptGuard` and returns the grid and each trial's
    status, or raises :class:`SweepInterrupted` unless all ``num_trials`` trials have ended by
    themselves and ``complete(grid)`` holds (the one rule every runner follows before it
    writes anything up)."""
    guard = InterruptGuard()
    remove_partial_uploads(exp_dir)  # left by a driver killed mid-copy
    try:
        with guard, _environment(_tune_environment(verbose)), atomic_local_uploads():
            grid = tuner.fit()
    except KeyboardInterrupt:  # a second Ctrl-C: Tune's last saved state is what resumes
        raise _interrupted(exp_dir, guard) from None
    except (RayActorError, RaySystemError, ConnectionError) as err:
        # The cluster went away under the driver (a `ray stop`, a lost head node): Tune's
        # saved state is intact, so this is an interrupted run, resumable once Ray is back.
        raise ClusterUnavailableError(
            f"Lost the Ray cluster during the run ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no details'}). Finished "
            f"trials are saved in {exp_dir}; start Ray again (or leave --address unset for a "
            f"local instance) and resume with resume=True (CLI: --resume)."
        ) from None
    statuses = trial_statuses(grid)
    unfinished = [t for t, s in statuses.items() if s not in ENDED]
    if unfinished or len(statuses) < num_trials or (complete and not complete(grid)):
        raise _interrupted(exp_dir, guard)
    return grid, statuses


def _tuner(exp_dir: Path, trainable, settings: SweepSettings, spec: SweepSpec, bohb: BOHBPreset,
           bohb_options: dict, searcher: SearcherFactory | None, failure: tune.FailureConfig,
           resume: bool, verbose: int, callbacks: Sequence[Callback]) -> tune.Tuner:
    """A new ``Tuner`` for the sweep, or the interrupted one restored from ``exp_dir``."""
    if resume:
        tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
        # The run config comes back from the experiment folder; retries are today's setting.
        restored_run_config(tuner).failure_config = failure
        write_json(exp_dir / SETTINGS_FILE, {**json.loads((exp_dir / SETTINGS_FILE).read_text()),
                                             "max_failures": settings.max_failures})
        return tuner
    exp_dir.mkdir(parents=True, exist_ok=True)
    write_json(exp_dir / SETTINGS_FILE, {**asdict(settings), "started_at": time.time()})
    np.random.seed(settings.seed)  # hpbandster's BOHB draws from numpy's global generator
    search_alg, scheduler = build_search(spec, bohb, settings.seed, bohb_options, searcher)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=scheduler, num_samples=settings.num_samples,
            reuse_actors=True, trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=max(0, verbose - 1),
            callbacks=[SchedulerStateCallback(scheduler), TBXLoggerCallback(),
                       *([TrialLineCallback(settings.num_samples, str(exp_dir))]
                         if verbose >= 1 else []), *callbacks],
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
            failure_config=failure,
        ),
    )


def _interrupted(exp_dir: Path, guard: InterruptGuard) -> SweepInterrupted:
    how = guard.description if guard.signal else "Ray Tune stopped before every trial had ended"
    return SweepInterrupted(str(exp_dir), how, guard.exit_code,
                            f"resume=True (command line: the same command with --resume); "
                            f"experiment folder {exp_dir}")


def _tune_environment(verbose: int) -> dict[str, str]:
    """Settings Tune reads from the environment during ``fit()``; the user's own values win."""
    env = {
        # Tune forces an experiment snapshot whenever a trial saved num_to_keep checkpoints since
        # the last one; with a checkpoint every budget unit that is frequent by design (resume
        # needs it), so its warning about it is noise.
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
        **TUNE_ENV,
    }
    if verbose <= 1:
        # Tune's newer console output prints a heading even at verbose=0, with a TensorBoard
        # path outside the experiment folder; TrialLineCallback prints the right one instead.
        env["RAY_AIR_NEW_OUTPUT"] = "0"
    return {k: v for k, v in env.items() if k not in os.environ}


@contextmanager
def _environment(env: dict[str, str]):
    """Sets ``env`` for the duration of the block, then removes it again."""
    os.environ.update(env)
    try:
        yield
    finally:
        for key in env:
            os.environ.pop(key, None)


def result_trial_id(r) -> str:
    """Ray's trial id of a ``Result`` (from its folder name when it never reported)."""
    return (r.metrics or {}).get("trial_id") or Path(r.path).name.rsplit("_", 1)[-1]


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
        status = (statuses or {}).get(tid, Trial.ERROR if r.error else Trial.TERMINATED)
        reason = m.get(FAILURE) or ""
        if reason:
            status = "FAILED"
        elif r.error:
            reason = str(r.error).splitlines()[0][:300]
        row = {
            "trial_id": tid,
            "status": status,
            SUGGESTED_BY: config.get(SUGGESTED_BY, "given"),
            "budget": m.get("training_iteration", 0),
            "device": m.get("device"),
            **{k: m.get(k) for k in METRIC_COLUMNS},
            "timestamp": m.get("timestamp"),
            "error": reason,
            **{f"config/{k}": plain_value(v) for k, v in sorted(strip_meta(config).items())},
        }
        rows.append(row)
    return pd.DataFrame(rows).sort_values("trial_id", kind="stable").reset_index(drop=True)


def finish(grid, dataset: Dataset, exp_dir: Path, settings: SweepSettings, spec: SweepSpec,
           statuses: dict[str, str] | None = None) -> SweepResult:
    """Builds, evaluates (the incumbent on the test split, once) and saves the :class:`SweepResult`."""
    trials = trials_frame(grid, statuses)
    try:
        best_id = pick_incumbent(trials, spec.metric, spec.mode)
    except ExperimentStateError as err:  # every trial failed: keep their reasons for the user
        trials.to_csv(exp_dir / TRIALS_FILE, index=False)
        raise ExperimentStateError(f"{err} Each trial's status and error are in "
                                   f"{exp_dir / TRIALS_FILE}.") from None
    best = next(r for r in grid if result_trial_id(r) == best_id)
    incumbent = {k: plain_value(v) for k, v in strip_meta(best.config).items()}
    if best.checkpoint is None:
        raise ExperimentStateError(f"Incumbent trial {best_id} has no checkpoint to evaluate.")
    with best.checkpoint.as_directory() as ckpt:
        test_metric = spec.evaluate(ckpt, dataset, "test")
    if not math.isfinite(test_metric):
        logger.warning("The incumbent's test %s is %s.", spec.metric, test_metric)
    saved = json.loads((exp_dir / SETTINGS_FILE).read_text())
    # The saved start time, the current resources (a resumed sweep may run on other hardware).
    result = SweepResult(trials, incumbent, best_id, test_metric, exp_dir,
                         {**saved, **plain_value(asdict(settings))})
    result.save()
    return result
