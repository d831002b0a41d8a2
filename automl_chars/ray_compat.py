"""Every use of Ray Tune's private API, in one place (like pandas' ``_compat``).

Each function is tested against the real Ray Tune: the run-level ones in
``tests/search/test_ray_compat.py``, the HyperBand and ``TuneBOHB`` internals through the real
scheduler and searcher in ``tests/search/test_scheduler.py`` and ``test_searcher_compat`` tests
(``tests/search/test_ray_compat.py`` checks that every public name here is used by a test); an
upgrade of Ray that changes these internals breaks this module, loudly, and nothing else.
``pyproject.toml`` bounds ``ray`` to the versions these were checked against.

The HyperBand internals that :class:`~automl_chars.search.scheduler.ResumableHyperBandForBOHB`
snapshots and rebuilds are here too: brackets (Ray's private ``_Bracket``, :class:`RungBracket`),
the scheduler's bands and trial bookkeeping, its budget range; and the parts of ``TuneBOHB`` that
:class:`~automl_chars.search.searcher.BOHBSearcher` reads. (Those two classes also override one
private hook each, ``_create_bracket`` and ``_setup_bohb``: Ray offers no other way in.)
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow.fs
from pyarrow.fs import FileType
from ray import tune
from ray.tune import ResultGrid, RunConfig
from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandScheduler
from ray.tune.schedulers.hyperband import _Bracket


def address_to_join(address: str | None) -> str | None:
    """The ``host:port`` that ``ray.init(address)`` would join, or None when it would start a
    new local instance. With ``address=None`` Ray joins a cluster that ``ray start`` left running
    on this machine (its ``/tmp/ray/ray_current_cluster``), or ``$RAY_ADDRESS``: Ray's own
    lookup, private (``ray._private.services``)."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        return canonicalize_bootstrap_address(address)
    except (OSError, ValueError):  # "auto" with nothing running, or a bad address
        return address


def controller_searcher(tune_controller) -> Any:
    """The searcher Tune's controller holds (the outermost one when searchers wrap each other),
    which a scheduler must feed the results Tune keeps from it: Tune's ``SearchGenerator``
    exposes it only as an attribute."""
    return tune_controller.search_alg.searcher


def trial_statuses(grid: ResultGrid) -> dict[str, str]:
    """Trial id -> Tune's status (``TERMINATED``, ``ERROR``, ``PAUSED``, ``PENDING``, ...) of the
    trials of a ``ResultGrid``. ``Result`` objects do not carry it; the grid's analysis does."""
    return {t.trial_id: t.status for t in grid._experiment_analysis.trials}


def restored_run_config(tuner: tune.Tuner) -> RunConfig:
    """The ``RunConfig`` that ``Tuner.restore`` read back from the experiment folder, to change
    what may differ between runs (``failure_config``). Ray offers no public way to pass one."""
    return tuner._local_tuner.get_run_config()


def forget_deleted_checkpoints(trial: Trial) -> int:
    """Drops checkpoints that no longer exist from a restored trial's checkpoint list.

    Workaround for a Ray bug: the experiment state can be saved before Tune deletes a trial's
    oldest checkpoint (``num_to_keep``); after a restore, Tune tries to delete it again and
    ``_delete_fs_path`` raises ``FileNotFoundError`` outside its own ``try``, which aborts the
    bookkeeping of the trial's next checkpoint. The same race can leave the state's *latest*
    checkpoint deleted (a newer one was registered and the older deleted after the last save):
    then the latest becomes the newest one that still exists, or none (the trial starts over)
    instead of every retry failing to restore from a folder that is gone. Returns how many
    entries were dropped.
    """
    manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
    results = getattr(manager, "_checkpoint_results", None)
    if not results:
        return 0

    def exists(r) -> bool:
        return r.checkpoint.filesystem.get_file_info(r.checkpoint.path).type != FileType.NotFound

    kept = [r for r in results if exists(r)]
    manager._checkpoint_results = kept
    latest = getattr(manager, "_latest_checkpoint_result", None)
    if latest is not None and not exists(latest):
        manager._latest_checkpoint_result = max(
            kept, key=lambda r: (r.metrics or {}).get("training_iteration", 0), default=None)
    return len(results) - len(kept)


def checkpointed_result(trial: Trial) -> dict | None:
    """The metrics of the result that ``trial``'s latest checkpoint holds: where Tune resumes
    a restored trial (None without a checkpoint: from the start). ``Trial`` exposes it only as a
    private ``_TrainingResult``."""
    latest = trial.latest_checkpoint_result
    return None if latest is None else dict(latest.metrics or {})


def drop_stale_decisions(tune_controller, trial: Trial) -> list[str]:
    """Drops the decisions a restored controller still holds for ``trial`` from the run before.

    Workaround for a Ray bug: Tune's controller keeps, per trial, the scheduler's decision that
    waits for a save to finish (``_cached_trial_decisions``) or for a result to be processed
    (``_queued_trial_decisions``), and saves both with the experiment state. A graceful stop
    (Ctrl-C, SIGTERM) that comes between HyperBand's PAUSE of a trial at its rung and that
    trial's checkpoint saves the PAUSE; ``Tuner.restore`` brings it back, although the save it
    waited for ended with the old driver. When HyperBand later promotes the trial, that stale
    PAUSE overrides the CONTINUE of its first result (a cached PAUSE is never overwritten by a
    CONTINUE): the trial pauses below its rung, HyperBand never unpauses it, and the resumed
    sweep waits forever. A trial just (re-)added has no save or result in flight, so any
    decision held for it is stale. Returns the dropped decisions.
    """
    # Schedulers get Tune's TrialRunnerWrapper, which warns on private attributes: unwrap it.
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    dropped = []
    for name in ("_cached_trial_decisions", "_queued_trial_decisions"):
        decisions = getattr(controller, name, None)
        if decisions and trial.trial_id in decisions:
            dropped.append(decisions.pop(trial.trial_id))
    return dropped


# -- Uploads to the storage path ------------------------------------------------------------


@contextlib.contextmanager
def atomic_local_uploads() -> Iterator[None]:
    """Makes the driver's uploads to a local storage path atomic per file, while it is open.

    Workaround for a Ray behaviour: Tune writes the experiment state (and each trial's
    ``params.json``/``progress.csv``) in a staging folder and then copies it into the storage
    path with ``pyarrow.fs.copy_files`` from a background thread, in place. A driver killed
    during that copy (SIGKILL, a lost node) leaves a truncated ``experiment_state-*.json``,
    after which ``Tuner.restore`` cannot read the run and starts trials with empty configs. Here
    every copy to a local filesystem goes to a hidden sibling first and each file is renamed
    into place (``os.replace``), so a kill leaves the previous complete file.
    """
    from ray.train._internal import storage

    original = storage._pyarrow_fs_copy_files

    def copy_files(source, destination, source_filesystem=None, destination_filesystem=None,
                   **kwargs):
        if not isinstance(destination_filesystem, pyarrow.fs.LocalFileSystem):
            return original(source, destination, source_filesystem=source_filesystem,
                            destination_filesystem=destination_filesystem, **kwargs)
        staging = os.path.join(os.path.dirname(destination.rstrip("/")),
                               f".{os.path.basename(destination.rstrip('/'))}.{uuid.uuid4().hex}.partial")
        try:
            original(source, staging, source_filesystem=source_filesystem,
                     destination_filesystem=destination_filesystem, **kwargs)
            if os.path.exists(staging):  # an empty source folder copies nothing
                _move_into_place(staging, destination)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
            elif os.path.exists(staging):
                os.unlink(staging)

    storage._pyarrow_fs_copy_files = copy_files
    try:
        yield
    finally:
        storage._pyarrow_fs_copy_files = original


@contextlib.contextmanager
def starting_actors_killed_at_end() -> Iterator[list[str]]:
    """Ends each Tune run without waiting for actors that are still starting; yields the list
    of the ids of the actors it killed (for tests).

    Workaround for a Ray Tune behaviour: with reused actors Tune requests the next trial's actor
    one pending trial ahead, and when the run ends while that actor is still starting (a worker
    importing torch and Tune: 7-10 s), it stops the actor gracefully, which waits for its start,
    up to Tune's 10 s ``_actor_force_cleanup_timeout``: most sweeps returned 8-10 s late. An
    actor that never became ready (not in the controller's ``_started_actors``) ran no trial
    and holds nothing, so here it is killed as the run's cleanup begins; the actors that ran
    trials still stop gracefully.
    """
    import ray
    from ray.tune.execution.tune_controller import TuneController

    original, killed = TuneController._cleanup_trials, []

    def cleanup_trials(self):
        live = self._actor_manager._live_actors_to_ray_actors_resources
        for tracked, (actor, _) in list(live.items()):
            if tracked not in self._started_actors:
                ray.kill(actor)  # its stop future fails at once, which ends the stop
                killed.append(actor._actor_id.hex())
        return original(self)

    TuneController._cleanup_trials = cleanup_trials
    try:
        yield killed
    finally:
        TuneController._cleanup_trials = original


def remove_partial_uploads(exp_dir: str | os.PathLike) -> int:
    """Deletes what :func:`atomic_local_uploads` left of copies cut short by a kill (hidden
    ``.*.partial`` folders and files beside ``exp_dir`` and inside it); returns how many. Call
    it only while no sweep in ``exp_dir`` is running."""
    exp_dir = os.fspath(exp_dir)
    parent, name = os.path.dirname(exp_dir), os.path.basename(exp_dir)
    found = [os.path.join(parent, f) for f in (os.listdir(parent) if os.path.isdir(parent) else ())
             if f.startswith(f".{name}.") and f.endswith(".partial")]
    for root, dirs, files in os.walk(exp_dir):
        found += [os.path.join(root, f) for f in dirs + files
                  if f.startswith(".") and f.endswith(".partial")]
    for path in found:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)
    return len(found)


def _move_into_place(staging: str, destination: str) -> None:
    """Renames every file under ``staging`` to the same place under ``destination``."""
    if not os.path.isdir(staging):
        os.replace(staging, destination)
        return
    for root, _, files in os.walk(staging):
        target = os.path.join(destination, os.path.relpath(root, staging))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.replace(os.path.join(root, name), os.path.join(target, name))


# -- TuneBOHB ---------------------------------------------------------------------------------


def searcher_space(searcher) -> Any:
    """The ConfigSpace a ``TuneBOHB`` searches."""
    return searcher._space


def searcher_bohb_config(searcher) -> dict:
    """The hpbandster BOHB options a ``TuneBOHB`` was given."""
    return dict(searcher._bohb_config or {})


# -- HyperBand: brackets ------------------------------------------------------------------


class RungBracket(_Bracket):
    """A bracket that halves at explicit rungs instead of ``r0 * eta**k`` (floored)."""

    def __init__(self, *args, rungs: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.rungs = list(rungs)

    def successive_halving(self, metric, metric_op):
        good, bad = super().successive_halving(metric, metric_op)
        self._r = self._cumul_r = self.rungs[len(self.rungs) - 1 - self._halves]
        return good, bad


def rung_budget(bracket: _Bracket) -> int:
    """The budget the bracket's live trials are heading for (the next halving's)."""
    return bracket._cumul_r


def bracket_state(bracket: RungBracket, result_keys: tuple[str, ...]) -> dict:
    """A bracket as JSON-able data, trials by id (live trials with their last result's
    ``result_keys``)."""
    b = bracket
    return {
        "n": b._n, "n0": b._n0, "r": b._r, "r0": b._r0, "cumul_r": b._cumul_r,
        "halves": b._halves, "progress": b._completed_progress, "processed": b.is_being_processed,
        "all": [t.trial_id for t in b._all_trials],
        "live": {t.trial_id: (None if r is None else {k: r[k] for k in result_keys if k in r})
                 for t, r in b._live_trials.items()},
        "to_unpause": [t.trial_id for t in b.trials_to_unpause],
        "rungs": b.rungs,
    }


def make_bracket(scheduler: HyperBandScheduler, s: int, rungs: list[int],
                 state: dict | None = None, max_trials: int | None = None) -> RungBracket:
    """Bracket ``s`` of ``scheduler`` halving at ``rungs`` (of ``max_trials`` trials, default
    HyperBand's for ``s``); with ``state`` (from :func:`bracket_state`), as it was then,
    without its trials (they rejoin, :func:`rejoin`)."""
    sch = scheduler
    if state is None:
        return RungBracket(time_attr=sch._time_attr,
                           max_trials=sch._get_n0(s) if max_trials is None else max_trials,
                           init_t_attr=sch._get_r0(s), max_t_attr=sch._max_t_attr, eta=sch._eta,
                           s=s, stop_last_trials=sch._stop_last_trials, rungs=rungs)
    b = RungBracket(sch._time_attr, state["n0"], state["r0"], sch._max_t_attr, sch._eta,
                    state["halves"], sch._stop_last_trials, rungs=state["rungs"])
    b._n, b._r, b._cumul_r = state["n"], state["r"], state["cumul_r"]
    b._completed_progress, b.is_being_processed = state["progress"], state["processed"]
    return b


_ABSENT: Any = object()


def rejoin(scheduler: HyperBandScheduler, trial: Trial, bracket: _Bracket, band_idx: int, *,
           result: dict | None = _ABSENT, to_unpause: bool = False, extra: bool = False) -> None:
    """Puts a restored ``trial`` back into ``bracket``: always among its trials; among its live
    ones when ``result`` (its last result, or None) is given; ``extra`` makes room for one
    more live trial than the bracket holds (a trial Tune revived after an error)."""
    bracket._all_trials.append(trial)
    scheduler._trial_info[trial] = bracket, band_idx
    if result is _ABSENT:
        return
    bracket._live_trials[trial] = result
    if extra:
        bracket._n = max(bracket._n, len(bracket._live_trials))
    if to_unpause:
        bracket.trials_to_unpause.add(trial)


def bracket_of(scheduler: HyperBandScheduler, trial: Trial) -> _Bracket:
    return scheduler._trial_info[trial][0]


# -- HyperBand: the scheduler's own state ---------------------------------------------------


def result_keys(scheduler: HyperBandScheduler) -> tuple[str, str]:
    """The time attribute and the metric: what a bracket needs of a trial's last result."""
    return scheduler._time_attr, scheduler._metric


def set_budget_range(scheduler: HyperBandScheduler, min_t: int,
                     first_rung: Callable[[int], int]) -> None:
    """hpbandster's ``s_max`` from ``min_t`` (Ray's rounds ``log_eta(max_t)``, assuming a minimum
    budget of 1) and each bracket's first rung (``first_rung(s)``)."""
    eta, max_t = scheduler._eta, scheduler._max_t_attr
    scheduler._s_max_1 = int(math.floor(math.log(max_t / min_t) / math.log(eta) + 1e-9)) + 1
    scheduler._get_r0 = first_rung


def budget_settings(scheduler: HyperBandScheduler) -> tuple[float, int]:
    """``(eta, max_t)``."""
    return scheduler._eta, scheduler._max_t_attr


def bands(scheduler: HyperBandScheduler) -> tuple[list[list[_Bracket | None]], _Bracket | None,
                                                  int, int]:
    """``(bands, current bracket, current band index, trials stopped so far)``."""
    return (scheduler._hyperbands, scheduler._state["bracket"], scheduler._state["band_idx"],
            scheduler._num_stopped)


def set_bands(scheduler: HyperBandScheduler, hyperbands: list[list[_Bracket | None]],
              current: _Bracket | None, band_idx: int, num_stopped: int) -> None:
    scheduler._hyperbands = hyperbands or [[]]
    scheduler._state = {"band_idx": band_idx, "bracket": current}
    scheduler._num_stopped = num_stopped


__all__ = [
    "searcher_bohb_config", "searcher_space",
    "RungBracket", "bands", "bracket_of", "bracket_state", "budget_settings",
    "checkpointed_result", "drop_stale_decisions", "forget_deleted_checkpoints", "make_bracket", "rejoin",
    "restored_run_config", "result_keys", "rung_budget", "set_bands", "set_budget_range", "trial_statuses",
]
