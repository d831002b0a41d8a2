"""Data-parallel trials (``workers_per_trial``): two Ray Train workers with gloo on the CPU train
one model (replicas in step, each on its own shard), their results and checkpoints reach Tune,
a paused trial resumes from its checkpoint, a BOHB sweep runs with them; too many workers for
the cluster are refused before the sweep starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from automl_chars import run_bohb
from automl_chars.checkpoints import load_trial_state
from automl_chars.errors import InvalidConfigError
from automl_chars.runner.cluster import check_workers_fit, worker_capacity
from automl_chars.runner.core import trial_trainable, workers_problems
from automl_chars.spaces import cnn_space, subspace
from automl_chars.trainables import CNNTrainable, SupernetTrainable, evaluate_checkpoint
from automl_chars.trainables.data_parallel import check_data_parallel, supports_data_parallel
from automl_chars.training.fidelity import Fidelity

CONFIG = {"n_conv_layers": 1, "conv1_channels": 8, "n_fc_layers": 0, "batch_size": 16,
          "learning_rate": 0.05, "optimizer": "sgd"}


def test_worker_capacity_counts_workers_over_nodes():
    nodes = [{"CPU": 3, "GPU": 1}, {"CPU": 2, "GPU": 2}]
    assert worker_capacity(1, 0, nodes) == 5
    assert worker_capacity(1, 1, nodes) == 3  # GPUs bound it
    assert worker_capacity(2, 0, nodes) == 2
    check_workers_fit(5, 1, 0, nodes, autoscaling=False)
    with pytest.raises(InvalidConfigError, match=r"workers_per_trial=6 .* holds 5 at once"):
        check_workers_fit(6, 1, 0, nodes, autoscaling=False)
    check_workers_fit(6, 1, 0, nodes, autoscaling=True)  # the autoscaler may add nodes


@pytest.mark.parametrize("workers,gpus,fragment", [
    (0, 0, "whole number >= 1"), (1.5, 0, "whole number >= 1"),
    (2, 0.5, "must be 0 or 1 with workers_per_trial > 1"), (2, 2, "must be 0 or 1")])
def test_bad_worker_settings_are_named(workers, gpus, fragment):
    assert fragment in " ".join(workers_problems(workers, gpus))


def test_only_the_shared_loop_trains_data_parallel():
    assert supports_data_parallel(CNNTrainable) and not supports_data_parallel(SupernetTrainable)
    with pytest.raises(InvalidConfigError, match="SupernetTrainable cannot train data-parallel"):
        check_data_parallel(SupernetTrainable, {})
    with pytest.raises(InvalidConfigError, match="AutotuneLR"):
        check_data_parallel(CNNTrainable, {"autotune_lr": True})


class PauseOnce(FIFOScheduler):
    """Pauses each trial once, after its first result, as HyperBandForBOHB does at a rung; keeps
    every result it sees (a paused trial's result.json may lose its lines before the pause:
    Tune's logger reopens it from the storage copy, which a loaded machine may not have synced)."""

    def __init__(self):
        super().__init__()
        self.paused = set()
        self.results: list[dict] = []

    def on_trial_complete(self, tune_controller, trial, result):
        self.results.append(dict(result))  # the last result (Tune's stop condition) comes here

    def on_trial_result(self, tune_controller, trial, result):
        self.results.append(dict(result))
        if trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE


@pytest.mark.slow
def test_two_workers_train_one_model_and_resume_from_its_checkpoint(ray_session, make_dataset,
                                                                    tmp_path):
    ds = make_dataset()
    trainable = trial_trainable(CNNTrainable, {"dataset": ds, "fidelity": Fidelity("epochs", 2),
                                               "seed": 0},
                                cpus_per_trial=1, gpus_per_trial=0, workers_per_trial=2,
                                exp_dir=tmp_path / "run")
    scheduler = PauseOnce()
    tuner = tune.Tuner(trainable, param_space=CONFIG,
                       tune_config=tune.TuneConfig(scheduler=scheduler),
                       run_config=tune.RunConfig(
                           name="run", storage_path=str(tmp_path), stop={"training_iteration": 2},
                           checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1)))
    result = tuner.fit()[0]
    assert result.error is None
    history = scheduler.results
    assert [r["budget"] for r in history] == [1, 2]
    n = len(ds.y_train)
    for r in history:
        # both workers trained, each on its own half (their samples add up to the data), and
        # DDP kept their replicas equal
        assert r["workers"] == 2 and r["replica_spread"] == 0.0 and r["device"] == "cpu"
        assert r["samples_seen"] == n * r["budget"]
    # Paused after unit 1, the trial went on in a new Ray Train run restored from its checkpoint.
    assert [r["run_start_budget"] for r in history] == [0, 1]
    assert history[1]["val_acc"] > 0.5  # a toy task: it learns
    with result.checkpoint.as_directory() as ckpt:
        state = load_trial_state(ckpt)
        assert state["trainable"] == "CNNTrainable" and state["units_done"] == 2
        assert not any(k.startswith("module.") for k in state["state_dict"])  # not DDP's names
        assert evaluate_checkpoint(ckpt, ds, "val") == pytest.approx(history[1]["val_acc"])
    assert not list((tmp_path / "run" / "train-runs").glob("*"))  # Ray Train's runs cleaned up


@pytest.mark.slow
def test_a_bohb_sweep_with_two_workers_per_trial(ray_session, make_dataset, tmp_path):
    """One one-unit trial (each Ray Train run costs tens of seconds on 2 CPUs; a paused and
    promoted trial is the test above's, a ``run_trials`` trial of two units ``train``'s in
    tests/test_cli_named.py)."""
    ds = make_dataset()
    space = subspace(cnn_space(), ["learning_rate"], seed=0)
    result = run_bohb(ds, space=space, preset="3_1_1_1", storage_path=tmp_path,
                      name="dp", verbose=0, priors=False, workers_per_trial=2)
    assert len(result.trials) == 1 and set(result.trials["status"]) == {"TERMINATED"}
    assert result.trials["budget"].max() == 1 and 0 <= result.test_accuracy <= 1
    results = [json.loads(line) for f in Path(result.path).glob("DataParallelTrainable_*/result.json")
               for line in f.read_text().splitlines()]
    assert results and all(r["workers"] == 2 and r["replica_spread"] == 0.0 for r in results)
    assert json.loads((Path(result.path) / "automl_chars.json").read_text())["workers_per_trial"] == 2


@pytest.mark.slow
def test_more_workers_than_the_cluster_holds_is_refused_before_the_sweep(ray_session,
                                                                         make_dataset, tmp_path):
    with pytest.raises(InvalidConfigError, match=r"workers_per_trial=3 .* holds 2 at once"):
        run_bohb(make_dataset(), preset="2_1_2_1", storage_path=tmp_path, name="big",
                 verbose=0, priors=False, workers_per_trial=3)
    assert not (tmp_path / "big").exists()
