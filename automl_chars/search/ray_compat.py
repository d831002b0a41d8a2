"""Every use of Ray Tune's private API, in one place (like pandas' ``_compat``).

Each function is tested against the real Ray Tune in ``tests/search/test_ray_compat.py``; an
upgrade of Ray that changes these internals breaks this module, loudly, and nothing else.
``pyproject.toml`` bounds ``ray`` to the versions these were checked against.

The bracket internals the resumable scheduler snapshots are here too
(:func:`bracket_state`, :func:`restore_bracket`, :class:`RungBracket`).
"""

from __future__ import annotations

from pyarrow.fs import FileType
from ray import tune
from ray.tune import ResultGrid, RunConfig
from ray.tune.experiment import Trial
from ray.tune.schedulers.hyperband import _Bracket


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
    bookkeeping of the trial's next checkpoint. Returns how many entries were dropped.
    """
    manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
    results = getattr(manager, "_checkpoint_results", None)
    if not results:
        return 0
    kept = [r for r in results
            if r.checkpoint.filesystem.get_file_info(r.checkpoint.path).type != FileType.NotFound]
    manager._checkpoint_results = kept
    return len(results) - len(kept)


__all__ = ["_Bracket", "forget_deleted_checkpoints", "restored_run_config", "trial_statuses"]
