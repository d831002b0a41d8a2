"""``run_trials``: given configurations on their own datasets as parallel Ray trials."""

from __future__ import annotations

import dataclasses
import json
import re

import pandas as pd
import pytest

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import SETTINGS_FILE
from automl_chars.runner.trials import TrialJob, TrialsResult, run_trials
from automl_chars.trainables.base import load_trial_state

FAST = {"learning_rate": 0.05, "batch_size": 32, "optimizer": "adam"}


@pytest.mark.slow
def test_jobs_train_on_their_own_datasets_and_read_back(ray_session, make_dataset, tmp_path,
                                                        capsys):
    """Two datasets with different class counts: each job's model has its dataset's classes,
    trains for the given epochs, is evaluated on that dataset's test split; the finished run is
    read back (not trained again) by resume. Each progress line names its job."""
    a = make_dataset("a", num_classes=3, per_class=20)
    b = make_dataset("b", num_classes=5, per_class=20, seed=1)
    jobs = [TrialJob("on-a", a, FAST, description="source a"), TrialJob("on-b", b, FAST),
            TrialJob("diverges", a, {**FAST, "learning_rate": 1e10, "optimizer": "sgd"})]
    result = run_trials(jobs, "cnn", 2, name="run", storage_path=tmp_path, verbose=1)
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.startswith("[")]
    assert len(lines) == 3 and "(?)" not in "".join(lines)
    # the progress line (plain: not a terminal) at the end, the diverged job counted as failed
    final = [line for line in out if line.startswith("progress:")][-1]
    assert final.startswith("progress: 3/3 done, 0 running, 0 pending, 1 failed | best ")
    assert "| ETA 0s, " in final
    origins = {re.search(r"  \((.*?)\)  +[\d.]+s", line).group(1) for line in lines}
    assert origins == {"source a", "on-b", "diverges"}

    t = result.table.set_index("label")
    assert list(result.table["label"]) == ["on-a", "on-b", "diverges"]
    assert list(t.loc[["on-a", "on-b"], "status"]) == ["TERMINATED", "TERMINATED"]
    assert list(t.loc[["on-a", "on-b"], "epochs"]) == [2, 2]
    assert t.loc["on-b", "dataset"] == "b"
    assert t.loc["on-a", "test_acc"] > 1 / 3 and t.loc["on-b", "test_acc"] > 1 / 5
    assert t.loc["diverges", "status"] == "FAILED" and "diverged" in t.loc["diverges", "error"]
    # its report page: the runs and their learning curves
    from automl_chars.reporting.page import report

    page = report(result.path, out=tmp_path / "runs.html").read_text()
    assert ">Runs (3)<" in page and "diverged" in page and page.count("<img ") == 1
    state = load_trial_state(result.checkpoint("on-b"))
    assert state["state_dict"]["head.weight"].shape[0] == 5
    assert state["units_done"] == 2
    # the checkpoint keeps every epoch's result (what fills a gap a killed driver leaves)
    assert [r["training_iteration"] for r in state["results"]] == [1, 2]
    assert state["results"][-1]["val_acc"] == pytest.approx(t.loc["on-b", "val_acc"])
    with pytest.raises(ExperimentStateError, match="did not finish"):
        result.checkpoint("diverges")
    h = result.history  # every result of every job, one row per epoch
    assert list(h[h["label"] == "on-a"]["training_iteration"]) == [1, 2]
    assert h[h["label"] == "on-b"]["val_acc"].iloc[-1] == pytest.approx(t.loc["on-b", "val_acc"])
    assert h[h["label"] == "diverges"]["failure"].str.contains("diverged").any()

    # A description is not part of the run's identity: the finished run is read back.
    renamed = [dataclasses.replace(j, description=f"now {j.label}") for j in jobs]
    again = run_trials(renamed, "cnn", 2, name="run", storage_path=tmp_path, resume=True,
                       verbose=0)
    pd.testing.assert_frame_equal(again.table, TrialsResult.load(result.path).table)
    pd.testing.assert_frame_equal(again.history, TrialsResult.load(result.path).history)
    assert len(again.history) == len(h)
    assert list(again.table["trial_id"]) == list(result.table["trial_id"])
    with pytest.raises(ExperimentStateError, match="different jobs"):
        run_trials(jobs[:2], "cnn", 2, name="run", storage_path=tmp_path, resume=True)
    with pytest.raises(ExperimentStateError, match="already exists"):
        run_trials(jobs, "cnn", 2, name="run", storage_path=tmp_path)
    assert json.loads((result.path / SETTINGS_FILE).read_text())["epochs"] == 2


def test_bad_jobs_fail_before_ray(make_dataset, tmp_path):
    """Repeated labels, no jobs, bad epochs and a configuration the CNN rejects are refused
    before Ray starts (no folder is written)."""
    ds = make_dataset()
    with pytest.raises(InvalidConfigError, match="unique"):
        run_trials([TrialJob("x", ds), TrialJob("x", ds)], "cnn", 1, name="r", storage_path=tmp_path)
    with pytest.raises(InvalidConfigError, match="at least one"):
        run_trials([], "cnn", 1, name="r", storage_path=tmp_path)
    with pytest.raises(InvalidConfigError, match="epochs"):
        run_trials([TrialJob("x", ds)], "cnn", 0, name="r", storage_path=tmp_path)
    with pytest.raises(InvalidConfigError, match="Job 'bad'.*n_conv_layers"):
        run_trials([TrialJob("bad", ds, {"n_conv_layers": 7})], "cnn", 1, name="r",
                   storage_path=tmp_path)
    for resources, match in (({"CPU": 1}, "cpus_per_trial.*--cpus-per-trial"),
                             ({"gpu": 1}, "gpus_per_trial"), ({"w": 0}, "'w' must be a positive"),
                             ({"w": True}, "positive number"), ({"": 1}, "non-empty"),
                             (["w"], "mapping")):
        with pytest.raises(InvalidConfigError, match=f"Job 'x'.*{match}"):
            run_trials([TrialJob("x", ds, resources=resources)], "cnn", 1, name="r",
                       storage_path=tmp_path)
    with pytest.raises(InvalidConfigError, match=r"Jobs with resources of their own \(\['x'\]\) "
                                                 r"cannot train data-parallel"):
        run_trials([TrialJob("x", ds, resources={"w": 1})], "cnn", 1, name="r",
                   storage_path=tmp_path, workers_per_trial=2)
    with pytest.raises(InvalidConfigError, match="workers_per_trial must be a whole number"):
        run_trials([TrialJob("x", ds)], "cnn", 1, name="r", storage_path=tmp_path,
                   workers_per_trial=0)
    assert not (tmp_path / "r").exists()


def test_a_jobs_own_resources_join_the_trials_cpus_and_gpus():
    """A pinned job's trial asks for its custom resource on top of the run's CPUs and GPUs; the
    others for the CPUs and GPUs alone (a different request: Tune never hands one's process to
    the other)."""
    from automl_chars.runner.trials import JobResources
    from automl_chars.trainables.keys import JOB

    resources = JobResources(1.0, 0.5, {"pinned": {"worker_a": 1.0}})
    assert resources({JOB: "pinned"}).required_resources == {"CPU": 1.0, "GPU": 0.5,
                                                              "worker_a": 1.0}
    assert resources({JOB: "free"}).required_resources == {"CPU": 1.0, "GPU": 0.5}


def test_a_grid_without_every_job_is_an_interrupted_run_not_a_finished_one(tmp_path):
    """Regression: a run stopped mid-way left a trial without a configuration in the grid, and
    writing it up raised KeyError. Every job must be in the grid, or the run is unfinished."""
    from types import SimpleNamespace

    from automl_chars.errors import SweepInterrupted
    from automl_chars.runner.core import fit_to_the_end
    from automl_chars.runner.trials import jobs_in

    class Grid(list):  # what fit_to_the_end reads of a ResultGrid: results and statuses
        _experiment_analysis = SimpleNamespace(trials=[
            SimpleNamespace(trial_id="1", status="TERMINATED"),
            SimpleNamespace(trial_id="2", status="TERMINATED")])

    stopped = Grid([SimpleNamespace(config={"job": "a"}), SimpleNamespace(config={})])
    with pytest.raises(SweepInterrupted, match="resume"):
        fit_to_the_end(SimpleNamespace(fit=lambda: stopped), tmp_path, 2, verbose=0,
                       complete=lambda g: jobs_in(g) == {"a", "b"})
    done = Grid([SimpleNamespace(config={"job": "a"}), SimpleNamespace(config={"job": "b"})])
    grid, statuses = fit_to_the_end(SimpleNamespace(fit=lambda: done), tmp_path, 2, verbose=0,
                                    complete=lambda g: jobs_in(g) == {"a", "b"})
    assert grid is done and statuses == {"1": "TERMINATED", "2": "TERMINATED"}


def test_units_a_killed_driver_never_uploaded_come_from_the_checkpoint(tmp_path):
    """Tune uploads a trial's result lines in the background; a driver killed first leaves a
    gap that the trial's last checkpoint (its own results) fills. Units Tune has win."""
    from types import SimpleNamespace

    from automl_chars.checkpoints import CHECKPOINT_FILE, CHECKPOINT_FORMAT, save_trial_state
    from automl_chars.runner.trials import _with_checkpointed_results

    kept = [{"training_iteration": u, "val_acc": 0.1 * u, "device": "cpu"} for u in (1, 2, 3)]
    save_trial_state(tmp_path, {"format": CHECKPOINT_FORMAT, "results": kept})
    result = SimpleNamespace(metrics={"training_iteration": 3},
                             checkpoint=SimpleNamespace(path=str(tmp_path)))
    tune_rows = pd.DataFrame({"training_iteration": [1, 3], "val_acc": [0.5, 0.7]})
    filled = _with_checkpointed_results(result, tune_rows)
    assert filled["training_iteration"].tolist() == [1, 2, 3]
    assert filled["val_acc"].tolist() == [0.5, pytest.approx(0.2), 0.7]
    whole = pd.DataFrame({"training_iteration": [1, 2, 3], "val_acc": [0.5, 0.6, 0.7]})
    assert _with_checkpointed_results(result, whole) is whole  # nothing missing: not opened
    none = SimpleNamespace(metrics={"training_iteration": 3}, checkpoint=None)
    assert _with_checkpointed_results(none, tune_rows) is tune_rows
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"")  # damaged: the gap stays, no traceback
    assert _with_checkpointed_results(result, tune_rows) is tune_rows
