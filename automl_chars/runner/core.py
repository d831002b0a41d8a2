"""One Ray Tune run's lifecycle, shared by both runners (:func:`~automl_chars.runner.sweep.run_bohb`
and :func:`~automl_chars.runner.trials.run_trials`) and the benchmarks that time them:

1. before Ray starts: is there a run to resume, or one a new run would overwrite
   (:func:`check_resumable`), and is the saved one the same run (:func:`check_same_run`);
2. the ``Tuner``: a new one with the shared run configuration (:func:`run_config`, written
   settings by :func:`start_run`), or the interrupted one restored (:func:`restore_tuner`);
3. ``fit`` to the end under an :class:`~automl_chars.runner.interrupts.InterruptGuard` with
   atomic uploads (:func:`fit_to_the_end`): a run not every trial of which ended is a
   :class:`SweepInterrupted`, never written up;
4. each trial's outcome with one rule for failures (:func:`trial_outcome`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ray import tune
from ray.exceptions import RayActorError, RaySystemError
from ray.tune.callback import Callback
from ray.tune.experiment import Trial
from ray.tune.logger import TBXLoggerCallback

from automl_chars import uris
from automl_chars.errors import (
    AutomlCharsError,
    ClusterUnavailableError,
    ExperimentStateError,
    InvalidConfigError,
    SweepInterrupted,
    is_whole,
)
from automl_chars.layout import (
    SETTINGS_FILE,
    SUMMARY_FILE,
    check_pickle,
    read_json,
    write_json,
)
from automl_chars.ray_compat import (
    atomic_local_uploads,
    remove_partial_uploads,
    restored_run_config,
    starting_actors_killed_at_end,
    trial_statuses,
)
from automl_chars.runner.interrupts import TUNE_ENV, InterruptGuard
from automl_chars.runner.progress import TrialLineCallback, live_lines_stopped
from automl_chars.runner.result import INFEASIBLE_STATUS
from automl_chars.trainables.keys import FAILURE, INFEASIBLE

#: Tune statuses of a trial that has ended (failed trials are TERMINATED to Tune); a sweep is
#: finished when every trial has one of them.
ENDED = (Trial.TERMINATED, Trial.ERROR)


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default embeds the configuration and overflows paths)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def can_resume(exp_dir: Path) -> bool:
    """Whether ``exp_dir`` holds Ray Tune state that :func:`run_bohb` can resume."""
    return tune.Tuner.can_restore(uris.tune_path(exp_dir))


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


#: Ray Tune's files in a run's folder that a resume reads, the newest of each pattern: the
#: experiment state (JSON), the searcher's and the callbacks' (our scheduler's snapshot) state,
#: the search generator's (a sweep's), the variant generator's (``run_trials``') and the
#: ``Tuner``'s (pickles, whatever their names say).
TUNE_STATE = {"experiment_state-*.json": "json", "searcher-state-*.pkl": "pickle",
              "callback-states-*.pkl": "pickle", "search_gen_state-*.json": "pickle",
              "basic-variant-state-*.json": "pickle", "tuner.pkl": "pickle"}


def tune_state_remedy(exp_dir: Path) -> str:
    """What to do about a damaged file of Ray Tune's state: Tune cannot resume without it."""
    return (f"Ray Tune cannot resume the run from it. Start the run again under another name "
            f"(CLI: --name) or storage path; {uris.shown(exp_dir)} is left as it is, with its "
            f"finished trials (a sweep's are in the results store too: automl-chars store "
            f"show).")


def check_experiment_state(exp_dir: Path) -> None:
    """Raises :class:`~automl_chars.errors.DamagedFileError` naming the file if the newest of any
    kind of Ray Tune's state in ``exp_dir`` (:data:`TUNE_STATE`) is empty, truncated or garbled
    (a full disk, a hand edit; before :func:`~automl_chars.ray_compat.atomic_local_uploads`, a
    driver killed while Ray copied it): Tune would fail on it after Ray started, with a raw
    traceback, or start the trials again with empty configurations. Reads JSON and walks the
    pickles' opcodes (nothing is unpickled), so it is cheap and runs before Ray starts."""
    remedy = tune_state_remedy(exp_dir)
    for pattern, kind in TUNE_STATE.items():
        files = sorted(exp_dir.glob(pattern))
        if not files:
            continue
        if kind == "json":
            read_json(files[-1], remedy)
        else:
            check_pickle(files[-1], remedy)


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
        with guard, environment(_tune_environment(verbose)), atomic_local_uploads(), \
                starting_actors_killed_at_end(), live_lines_stopped():
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
    if guard.signal is not None:
        # Tune's graceful stop saves the trials' state, then (cleanup) stops the running ones
        # and marks them TERMINATED: the grid's statuses cannot tell an interrupted trial from
        # one that ended, but the saved state resumes it.
        raise _interrupted(exp_dir, guard)
    statuses = trial_statuses(grid)
    unfinished = [t for t, s in statuses.items() if s not in ENDED]
    if unfinished or len(statuses) < num_trials or (complete and not complete(grid)):
        raise _interrupted(exp_dir, guard)
    return grid, statuses


def _interrupted(exp_dir: Path, guard: InterruptGuard) -> SweepInterrupted:
    how = guard.description if guard.signal else "Ray Tune stopped before every trial had ended"
    return SweepInterrupted(str(exp_dir), how, guard.exit_code,
                            f"resume=True (command line: the same command with --resume); "
                            f"experiment folder {uris.shown(exp_dir)}")


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
def environment(env: Mapping[str, str | None]) -> Iterator[None]:
    """Sets ``env`` for the duration of the block (``None`` unsets a variable), then restores
    the values from before."""
    old = {k: os.environ.get(k) for k in env}
    _set(env)
    try:
        yield
    finally:
        _set(old)


def _set(env: Mapping[str, str | None]) -> None:
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def result_trial_id(r) -> str:
    """Ray's trial id of a ``Result`` (from its folder name when it never reported)."""
    return (r.metrics or {}).get("trial_id") or Path(r.path).name.rsplit("_", 1)[-1]



def run_problems(gpus_per_trial, cpus_per_trial, seed, max_failures,
                 workers_per_trial=1) -> list[str]:
    """What is wrong with a run's resources, seed and retries (empty when nothing): the checks
    both runners make before Ray starts."""
    problems = workers_problems(workers_per_trial, gpus_per_trial)
    if not gpus_per_trial >= 0:
        problems.append(f"gpus_per_trial must be >= 0 (got {gpus_per_trial})")
    elif gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial):
        problems.append(f"gpus_per_trial above 1 must be a whole number (got {gpus_per_trial}); "
                        f"Ray shares only single GPUs")
    if not cpus_per_trial > 0:
        problems.append(f"cpus_per_trial must be > 0 (got {cpus_per_trial})")
    if not seed_ok(seed):
        problems.append(f"seed must be a whole number in [0, 2**32) (got {seed!r})")
    if not is_whole(max_failures) or max_failures < 0:
        problems.append(f"max_failures must be a whole number >= 0 (got {max_failures!r})")
    return problems


def workers_problems(workers_per_trial, gpus_per_trial) -> list[str]:
    """What is wrong with a data-parallel trial's workers (``workers_per_trial`` > 1: the
    resources are each worker's, and a worker trains on one whole GPU or on CPUs)."""
    if not is_whole(workers_per_trial) or workers_per_trial < 1:
        return [f"workers_per_trial must be a whole number >= 1 (got {workers_per_trial!r})"]
    if workers_per_trial > 1 and gpus_per_trial not in (0, 1):
        return [f"gpus_per_trial must be 0 or 1 with workers_per_trial > 1 (got "
                f"{gpus_per_trial}): it is each worker's, and a data-parallel worker trains on "
                f"one whole GPU (NCCL cannot share one between workers); for more GPUs per "
                f"trial raise workers_per_trial"]
    return []


def seed_ok(seed) -> bool:
    """A seed numpy and ConfigSpace can take."""
    return is_whole(seed) and 0 <= seed < 2**32


def check_seed(seed) -> None:
    """Raises :class:`InvalidConfigError` for a seed numpy and ConfigSpace cannot take (before a
    space draws from it)."""
    if not seed_ok(seed):
        raise InvalidConfigError(f"Invalid sweep settings: seed must be a whole number in "
                                 f"[0, 2**32) (got {seed!r}).")


#: What to do about a damaged ``automl_chars.json`` (a run's settings).
SETTINGS_REMEDY = ("Move it aside (rename it) and resume the run with resume=True (command "
                   "line: the same command with --resume): the settings given then are saved in "
                   "its place (they cannot be checked against the lost ones) and the finished "
                   "trials are kept.")


def saved_settings(exp_dir: Path) -> dict:
    """The settings saved in ``exp_dir`` (empty when there are none); a damaged file raises
    :class:`~automl_chars.errors.DamagedFileError` (:data:`SETTINGS_REMEDY`)."""
    path = exp_dir / SETTINGS_FILE
    return read_json(path, SETTINGS_REMEDY) if path.exists() else {}


def check_same_run(exp_dir: Path, given: Mapping, defining: Sequence[str],
                   what: str = "settings") -> None:
    """Raises :class:`ExperimentStateError` if ``exp_dir``'s saved settings differ from
    ``given`` in any ``defining`` key (``what`` names them in the message); none saved, or
    moved aside, is no difference."""
    if not (exp_dir / SETTINGS_FILE).exists():
        return
    saved = saved_settings(exp_dir)
    diff = {k: (saved.get(k), given.get(k)) for k in defining if saved.get(k) != given.get(k)}
    if diff:
        raise ExperimentStateError(
            f"Cannot resume {exp_dir} with different {what} (saved, given): {diff}. Use the "
            f"saved ones, or another name/storage path for a new run."
        )


def check_same_workers(exp_dir: Path, saved: Mapping, workers_per_trial: int) -> None:
    """Raises :class:`ExperimentStateError` if a run saved with ``saved`` settings trained its
    trials data-parallel and ``workers_per_trial`` would not, or the other way round: Tune
    restores trials of the Trainable it ran (a data-parallel one, or the model's own)."""
    was = int(saved.get("workers_per_trial", 1))
    if saved and (was > 1) != (workers_per_trial > 1):
        raise ExperimentStateError(
            f"Cannot resume {exp_dir} with workers_per_trial={workers_per_trial}: it ran with "
            f"workers_per_trial={was}. Resume it with "
            f"{'several workers' if was > 1 else 'one worker'} per trial (the number of "
            f"workers may change), or start another run.")


#: Settings key: how many of the run's callbacks are the caller's, the last of its run config.
#: Ray pickles the run config when the run starts and ``Tuner.restore`` brings those callbacks
#: back, with the state they had then; a resume replaces the caller's with the ones it is given.
USER_CALLBACKS = "user_callbacks"


def start_run(exp_dir: Path, settings: Mapping, user_callbacks: int = 0) -> None:
    """Creates the run's folder and writes its settings, with the time it started and how many
    of its callbacks are the caller's."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    write_json(exp_dir / SETTINGS_FILE, {**settings, USER_CALLBACKS: user_callbacks,
                                         "started_at": time.time()})


def restore_tuner(exp_dir: Path, trainable, failure: tune.FailureConfig,
                  settings: Mapping, restart_errored: bool = False,
                  callbacks: Sequence[Callback] = ()) -> tune.Tuner:
    """The interrupted run in ``exp_dir``, unfinished and errored trials resumed (errored ones
    from scratch with ``restart_errored``: a trial that died restoring its checkpoint would die
    again), with today's retries and the caller's ``callbacks`` in place of the ones it started
    with (the run config otherwise comes back from the folder, the platform's callbacks with
    their state); the saved settings record the retries (``settings``, the ones given now,
    stand in for saved ones moved aside)."""
    tuner = tune.Tuner.restore(uris.tune_path(exp_dir), trainable=trainable, resume_unfinished=True,
                               resume_errored=not restart_errored,
                               restart_errored=restart_errored)
    config = restored_run_config(tuner)
    config.failure_config = failure
    saved = saved_settings(exp_dir) or {**settings, "started_at": time.time()}
    restored = list(config.callbacks or [])
    started_with = int(saved.get(USER_CALLBACKS, 0))  # 0 in runs saved before it was recorded
    config.callbacks = restored[:len(restored) - started_with] + list(callbacks)
    write_json(exp_dir / SETTINGS_FILE, {**saved, "max_failures": failure.max_failures})
    return tuner


def trial_trainable(trainable: type, parameters: Mapping, cpus_per_trial: float,
                    gpus_per_trial: float, workers_per_trial: int, exp_dir: Path):
    """What Tune runs for each trial: ``trainable`` with ``parameters`` on its resources or,
    with ``workers_per_trial`` > 1, a :class:`~automl_chars.trainables.data_parallel.DataParallelTrainable`
    training it on that many Ray Train workers with those resources each (their Ray Train runs
    keep checkpoints under the run's storage, ``train-runs/``, until the trial copies them)."""
    if workers_per_trial <= 1:
        return tune.with_resources(tune.with_parameters(trainable, **parameters),
                                   {"cpu": float(cpus_per_trial), "gpu": float(gpus_per_trial)})
    from automl_chars.trainables.data_parallel import TRIAL_RESOURCES, DataParallelTrainable

    return tune.with_resources(
        tune.with_parameters(DataParallelTrainable, inner=trainable,
                             workers=int(workers_per_trial),
                             cpus_per_worker=float(cpus_per_trial),
                             gpus_per_worker=float(gpus_per_trial),
                             train_storage=f"{uris.tune_path(exp_dir)}/train-runs", **parameters),
        TRIAL_RESOURCES)


def run_config(exp_dir: Path, num_trials: int, failure: tune.FailureConfig, verbose: int,
               callbacks: Sequence[Callback], checkpoint_config: tune.CheckpointConfig,
               descriptions: Mapping[str, str] | None = None, first: Sequence[Callback] = (),
               stop: Mapping | None = None, planned_units: float | None = None,
               metric: str = "val_acc", mode: str = "max") -> tune.RunConfig:
    """The run configuration every run shares: its folder (a URI's for a mirror, which Tune
    writes to directly), Ray's verbosity, TensorBoard logs and the progress lines (``first``
    callbacks before them, the user's after); at ``verbose=1`` a live progress line whose ETA
    counts ``planned_units`` (budget units of the whole run) down; the lines' best is of
    ``metric`` under ``mode`` (what the run optimises)."""
    progress = ([TrialLineCallback(num_trials, uris.shown(exp_dir), descriptions=descriptions,
                                   planned_units=planned_units, live=verbose == 1,
                                   metric=metric, mode=mode)]
                if verbose >= 1 else [])
    return tune.RunConfig(
        name=exp_dir.name, storage_path=uris.tune_path(exp_dir.parent),
        verbose=max(0, verbose - 1),
        stop=dict(stop) if stop else None,
        callbacks=[*first, TBXLoggerCallback(), *progress, *callbacks],
        checkpoint_config=checkpoint_config, failure_config=failure,
    )


def trial_outcome(result, statuses: Mapping[str, str] | None) -> tuple[str, str]:
    """``(status, error)`` of a trial's ``Result``: Tune's status, except ``FAILED`` for a
    failure a retry cannot fix (the trial reported it) and ``INFEASIBLE`` for a model over the
    sweep's cost limits, and why it failed, errored or was infeasible."""
    metrics = result.metrics or {}
    status = (statuses or {}).get(result_trial_id(result),
                                  Trial.ERROR if result.error else Trial.TERMINATED)
    if metrics.get(FAILURE):
        return "FAILED", str(metrics[FAILURE])
    if metrics.get(INFEASIBLE):
        return INFEASIBLE_STATUS, str(metrics[INFEASIBLE])
    return status, (error_reason(result.error) if result.error else "")


def error_reason(error: BaseException) -> str:
    """Why a trial errored, in a line: the platform's own error in full (it names the file or
    setting and the remedy), carried out of the trial's process by Ray's task error (whose first
    line only names the actor's method); anything else's first line, cut to 300 characters."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, AutomlCharsError):
        return " ".join(str(cause).split())
    lines = str(cause).strip().splitlines()
    return lines[0][:300] if lines else type(cause).__name__


__all__ = ["ENDED", "can_resume", "check_experiment_state", "check_resumable", "check_same_run", "check_same_workers",
           "check_seed", "run_problems", "workers_problems", "saved_settings", "seed_ok", "tune_state_remedy",
           "environment", "error_reason", "fit_to_the_end", "restore_tuner", "result_trial_id", "run_config",
           "start_run", "trial_dirname", "trial_outcome", "trial_trainable"]
