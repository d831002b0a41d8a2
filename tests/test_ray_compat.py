"""Every function of ``ray_compat`` (Ray Tune's private API) against the real Ray Tune."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.fs
import pytest
from ray import tune
from ray.train import Checkpoint, CheckpointConfig
from ray.train._internal import storage
from ray.train._internal.session import _TrainingResult
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial

from automl_chars.ray_compat import (
    atomic_local_uploads,
    drop_stale_decisions,
    forget_deleted_checkpoints,
    remove_partial_uploads,
    restored_run_config,
    starting_actors_killed_at_end,
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


def test_stale_decisions_are_dropped_through_the_wrapper_schedulers_get():
    """Schedulers get Tune's ``TrialRunnerWrapper``; the decisions held for a re-added trial
    go, other trials' stay. (That Tune still saves them with its state, the bug, is asserted by
    tests/runner/test_interrupts.py on a real interrupted sweep.)"""
    from types import SimpleNamespace

    from ray.tune.execution.tune_controller import TrialRunnerWrapper

    controller = SimpleNamespace(_cached_trial_decisions={"t0": "PAUSE", "t1": "CONTINUE"},
                                 _queued_trial_decisions={"t0": "PAUSE"})
    wrapped = TrialRunnerWrapper(controller, trial_executor=SimpleNamespace())
    trial = Trial("CNNTrainable", stub=True, trial_id="t0")
    assert drop_stale_decisions(wrapped, trial) == ["PAUSE", "PAUSE"]
    assert controller._cached_trial_decisions == {"t1": "CONTINUE"}
    assert controller._queued_trial_decisions == {}
    assert drop_stale_decisions(controller, trial) == []  # nothing held: nothing dropped


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


def _staged_experiment(tmp_path, state: str):
    staging = tmp_path / "staging"
    (staging / "trial_0").mkdir(parents=True, exist_ok=True)
    (staging / "experiment_state-x.json").write_text(state)
    (staging / "trial_0" / "params.json").write_text(state)
    return staging


def test_uploads_under_the_workaround_copy_everything_and_leave_no_staging(tmp_path):
    dest = tmp_path / "storage" / "exp"
    with atomic_local_uploads():
        storage._upload_to_fs_path(str(_staged_experiment(tmp_path, '{"v": 1}')),
                                   pyarrow.fs.LocalFileSystem(), str(dest))
        storage._upload_to_fs_path(str(_staged_experiment(tmp_path, '{"v": 2}')),
                                   pyarrow.fs.LocalFileSystem(), str(dest))
    assert (dest / "experiment_state-x.json").read_text() == '{"v": 2}'
    assert (dest / "trial_0" / "params.json").read_text() == '{"v": 2}'
    assert sorted(p.name for p in dest.parent.iterdir()) == ["exp"]  # no hidden leftovers
    assert storage._pyarrow_fs_copy_files.__name__ == "_pyarrow_fs_copy_files"  # restored


def _killed_mid_copy(original):
    """A copy that dies half-way: the files it writes are truncated, then it raises."""
    def copy(source, destination, source_filesystem=None, destination_filesystem=None, **kw):
        original(source, destination, source_filesystem=source_filesystem,
                 destination_filesystem=destination_filesystem, **kw)
        for root, _, files in __import__("os").walk(destination):
            for name in files:
                open(f"{root}/{name}", "w").close()
        raise KeyboardInterrupt("killed")
    return copy


def test_a_copy_killed_half_way_leaves_the_previous_experiment_state(tmp_path, monkeypatch):
    """What the workaround is for: the same kill without it truncates the experiment state
    (Tune then cannot restore the run); with it the last complete state stays."""
    dest = tmp_path / "storage" / "exp"
    storage._upload_to_fs_path(str(_staged_experiment(tmp_path, '{"v": 1}')),
                               pyarrow.fs.LocalFileSystem(), str(dest))
    monkeypatch.setattr(storage, "_pyarrow_fs_copy_files",
                        _killed_mid_copy(storage._pyarrow_fs_copy_files))
    with atomic_local_uploads(), pytest.raises(KeyboardInterrupt):
        storage._upload_to_fs_path(str(_staged_experiment(tmp_path, '{"v": 2}')),
                                   pyarrow.fs.LocalFileSystem(), str(dest))
    assert (dest / "experiment_state-x.json").read_text() == '{"v": 1}'
    assert sorted(p.name for p in dest.parent.iterdir()) == ["exp"]
    with pytest.raises(KeyboardInterrupt):  # the same kill, without the workaround
        storage._upload_to_fs_path(str(_staged_experiment(tmp_path, '{"v": 2}')),
                                   pyarrow.fs.LocalFileSystem(), str(dest))
    assert (dest / "experiment_state-x.json").read_text() == ""


def test_tune_uploads_its_experiment_state_through_the_workaround(ray_session, tmp_path,
                                                                   monkeypatch):
    """Tune's driver really copies into a local storage path with the function patched (the
    test fails if an upgrade of Ray uploads some other way)."""
    calls = []
    original = storage._pyarrow_fs_copy_files

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(storage, "_pyarrow_fs_copy_files", counting)
    tuner = tune.Tuner(lambda config: tune.report({"score": 1}),
                       run_config=tune.RunConfig(name="atomic", storage_path=str(tmp_path),
                                                 verbose=0))
    with atomic_local_uploads():
        tuner.fit()
    staged = [c for c in calls if c.startswith(str(tmp_path / ".atomic."))]
    assert staged and all(c.endswith(".partial") for c in staged)  # staged, then renamed
    states = list((tmp_path / "atomic").glob("experiment_state-*.json"))
    assert states and all(s.stat().st_size > 0 for s in states)
    assert not list(tmp_path.rglob("*.partial"))


def test_an_empty_folder_uploads_as_nothing_and_leftovers_of_a_kill_are_removed(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    dest = tmp_path / "storage" / "exp"
    with atomic_local_uploads():
        storage._upload_to_fs_path(str(empty), pyarrow.fs.LocalFileSystem(), str(dest))
    assert not list((tmp_path / "storage").glob(".*"))
    (tmp_path / "storage" / ".exp.0123abcd.partial" / "t").mkdir(parents=True)
    (dest / "trial_0").mkdir(parents=True)
    (dest / "trial_0" / ".params.json.89ef.partial").write_text("{")
    (dest / "trial_0" / "params.json").write_text("{}")
    (tmp_path / "storage" / ".other.0123.partial").mkdir()  # another experiment's: kept
    assert remove_partial_uploads(dest) == 2
    assert sorted(p.name for p in (tmp_path / "storage").iterdir()) == [".other.0123.partial",
                                                                          "exp"]
    assert [p.name for p in (dest / "trial_0").iterdir()] == ["params.json"]


def test_address_to_join_follows_rays_lookup(monkeypatch):
    """``RAY_ADDRESS`` is joined; ``"local"`` starts a new instance, as ``ray.init`` decides."""
    from automl_chars.ray_compat import address_to_join

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    assert address_to_join(None).endswith(":6390")  # Ray names this host by its address
    monkeypatch.delenv("RAY_ADDRESS")
    assert address_to_join("local") is None
    assert address_to_join("127.0.0.1:6391").endswith(":6391")


def test_the_controllers_searcher_is_the_one_tune_wraps():
    """Tune's ``SearchGenerator`` (what a controller holds as ``search_alg``) still exposes the
    searcher it wraps as ``.searcher``."""
    from types import SimpleNamespace

    from ray.tune.search import SearchGenerator
    from ray.tune.search.bohb import TuneBOHB

    from automl_chars.ray_compat import controller_searcher

    searcher = TuneBOHB()
    controller = SimpleNamespace(search_alg=SearchGenerator(searcher))
    assert controller_searcher(controller) is searcher


def test_every_public_function_of_ray_compat_is_used_by_a_test():
    """The module's promise: each workaround of Ray's private API is exercised against the real
    Ray by some test (here, or through the scheduler and searcher that use it)."""
    import ast
    import inspect
    from pathlib import Path

    from automl_chars import ray_compat

    names = {n for n, f in vars(ray_compat).items() if not n.startswith("_") and
             (inspect.isfunction(f) or inspect.isclass(f)) and f.__module__ == ray_compat.__name__}
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.rglob("test_*.py"))
    used_by_code = "\n".join(p.read_text() for p in Path(ray_compat.__file__).parent.rglob("*.py")
                             if p.name != "ray_compat.py")
    untested = sorted(n for n in names if n not in tests and f"compat.{n}" not in used_by_code)
    assert names and not untested, f"ray_compat functions no test reaches: {untested}"
    assert ast.parse(Path(ray_compat.__file__).read_text())  # the module itself parses


def test_the_space_and_bohb_options_a_tunebohb_was_given():
    from ConfigSpace import ConfigurationSpace, Float
    from ray.tune.search.bohb import TuneBOHB

    from automl_chars.ray_compat import searcher_bohb_config, searcher_space

    space = ConfigurationSpace(seed=0)
    space.add(Float("x", (0.0, 1.0)))
    searcher = TuneBOHB(space=space, bohb_config={"random_fraction": 0.5}, metric="m", mode="max")
    assert searcher_space(searcher) is space
    assert searcher_bohb_config(searcher)["random_fraction"] == 0.5


def test_a_run_ends_without_waiting_for_an_actor_still_starting(ray_session, tmp_path,
                                                                 monkeypatch):
    """Tune requests the next trial's actor one pending trial ahead, then hands the trial to
    the reused actor that frees up first: the run ends with actors still starting, which
    the workaround kills at once; every trial still ran to the end on the reused actor."""
    class SlowToStart(tune.Trainable):  # defined here: pickled by value for the workers
        """A one-step trial; the sweep's first actor starts at once, every later one takes a
        minute (as a worker still importing torch would take seconds)."""

        def setup(self, config):
            try:
                Path(config["flag"]).touch(exist_ok=False)
            except FileExistsError:
                time.sleep(60)

        def step(self):
            return {"x": self.config["x"], "done": True}

        def reset_config(self, new_config):
            return True

        def save_checkpoint(self, checkpoint_dir):
            return None

        def load_checkpoint(self, checkpoint):
            pass

    class Ends(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            ended.append(time.monotonic())

    ended = []
    monkeypatch.setenv("TUNE_MAX_PENDING_TRIALS_PG", "1")  # as run_bohb's sweeps
    tuner = tune.Tuner(
        tune.with_resources(SlowToStart, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1), "flag": str(tmp_path / "first")},
        tune_config=tune.TuneConfig(num_samples=3, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="slow", verbose=0,
                                  callbacks=[Ends()]))
    with starting_actors_killed_at_end() as killed:
        grid = tuner.fit()
    # Without the kill, Tune waits for the starting actor up to 10 s after it asked it to stop
    # (8-10 s here); with it the run ends within a second or two of its last trial.
    assert time.monotonic() - ended[-1] < 6
    assert killed, "no actor was still starting at the end"
    assert set(trial_statuses(grid).values()) == {"TERMINATED"}
    assert sorted(r.metrics["x"] for r in grid) == sorted(r.config["x"] for r in grid)
    assert TuneController._cleanup_trials.__name__ == "_cleanup_trials"  # restored
