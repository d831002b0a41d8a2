"""Every function of ``ray_compat`` (Ray Tune's private API) against the real Ray Tune."""

from __future__ import annotations

import pytest
from ray import tune
from ray.train import Checkpoint, CheckpointConfig
from ray.train._internal.session import _TrainingResult
from ray.tune.experiment import Trial

from automl_chars.search.ray_compat import (
    forget_deleted_checkpoints,
    restored_run_config,
    trial_statuses,
)


def _trial_with_checkpoints(tmp_path, n):
    trial = Trial("CNNTrainable", stub=True, trial_id="t0",
                  checkpoint_config=CheckpointConfig(num_to_keep=2))
    manager = trial.run_metadata.checkpoint_manager
    for i in range(n):
        path = tmp_path / f"checkpoint_{i:06d}"
        path.mkdir()
        manager.register_checkpoint(_TrainingResult(Checkpoint.from_directory(str(path)), {}))
    return trial, manager


def test_deleted_checkpoints_are_forgotten_so_the_next_one_registers(tmp_path):
    trial, manager = _trial_with_checkpoints(tmp_path, 2)
    (tmp_path / "checkpoint_000000").rmdir()  # deleted on disk after the state was saved
    assert forget_deleted_checkpoints(trial) == 1
    assert [r.checkpoint.path for r in manager._checkpoint_results] == [
        str(tmp_path / "checkpoint_000001")]
    third = tmp_path / "checkpoint_000002"
    third.mkdir()
    manager.register_checkpoint(_TrainingResult(Checkpoint.from_directory(str(third)), {}))
    assert len(manager._checkpoint_results) == 2


def test_the_ray_bug_the_workaround_is_for_still_exists(tmp_path):
    """Without the workaround, registering the next checkpoint raises (Ray deletes the missing
    one again). When an upgrade of Ray fixes this, this test fails: drop the workaround then."""
    trial, manager = _trial_with_checkpoints(tmp_path, 2)
    (tmp_path / "checkpoint_000000").rmdir()
    third = tmp_path / "checkpoint_000002"
    third.mkdir()
    with pytest.raises(FileNotFoundError):
        manager.register_checkpoint(_TrainingResult(Checkpoint.from_directory(str(third)), {}))


def test_statuses_and_restored_run_config(ray_session, tmp_path):
    def _trainable(config):  # local: pickled by value, so Ray's workers need not import tests
        if config["x"] == 2:
            raise ValueError("boom")
        tune.report({"score": config["x"]})

    tuner = tune.Tuner(
        _trainable, param_space={"x": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(name="compat", storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    grid = tuner.fit()
    statuses = trial_statuses(grid)
    assert sorted(statuses.values()) == [Trial.ERROR, Trial.TERMINATED]
    ok = next(r for r in grid if not r.error)
    assert statuses[ok.metrics["trial_id"]] == Trial.TERMINATED
    restored = tune.Tuner.restore(str(tmp_path / "compat"), trainable=_trainable)
    config = restored_run_config(restored)
    assert config.failure_config.max_failures == 0
    config.failure_config = tune.FailureConfig(max_failures=3)
    assert restored_run_config(restored).failure_config.max_failures == 3
