"""What the result of a sweep says: the incumbent, the status and error columns, seed 001's table
row, the test split it is scored on; checked in-process on hand-made trials (no Ray cluster)."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from ray.tune.experiment import Trial

from automl_chars.layout import SETTINGS_FILE, write_json
from automl_chars.runner.result import SweepResult, pick_incumbent, runtime_seconds
from automl_chars.runner.sweep import SweepSettings, finish, trials_frame
from automl_chars.trainables.base import FAILURE


def _frame(rows):
    """A trials table with the columns :func:`pick_incumbent` reads."""
    return pd.DataFrame(rows, columns=["trial_id", "status", "budget", "val_acc", "val_loss"])


# -- the incumbent ---------------------------------------------------------------------------
def test_incumbent_is_the_best_at_the_highest_budget_not_a_better_one_stopped_lower():
    """A trial halved away at a low budget never becomes the incumbent, however good it looked."""
    trials = _frame([("a", "TERMINATED", 1, 0.99, 0.1), ("b", "TERMINATED", 9, 0.60, 0.9),
                     ("c", "TERMINATED", 9, 0.70, 0.8), ("d", "TERMINATED", 3, 0.95, 0.2)])
    assert pick_incumbent(trials, "val_acc", "max") == "c"


def test_incumbent_of_a_metric_to_minimise_is_the_lowest():
    """``mode="min"`` (e.g. a loss) picks the smallest value, not the largest."""
    trials = _frame([("a", "TERMINATED", 9, 0.5, 0.30), ("b", "TERMINATED", 9, 0.9, 0.10),
                     ("c", "TERMINATED", 9, 0.7, 0.20)])
    assert pick_incumbent(trials, "val_loss", "min") == "b"
    assert pick_incumbent(trials, "val_acc", "max") == "b"
    assert pick_incumbent(trials, "val_acc", "min") == "a"


def test_a_failed_trial_is_never_the_incumbent_even_with_a_metric():
    """A FAILED trial does not count, even where its metric is not NaN (another Trainable's)."""
    trials = _frame([("a", "FAILED", 9, 1.0, 0.0), ("b", "TERMINATED", 9, 0.6, 0.5),
                     ("c", "TERMINATED", 3, 0.9, 0.1)])
    assert pick_incumbent(trials, "val_acc", "max") == "b"


def test_an_errored_trial_is_the_incumbent_only_when_no_other_trial_has_a_result():
    """A trial that errored (its process died, its checkpoint would not restore) at a higher
    budget does not become the incumbent over trials that finished: its checkpoint may not
    restore for the test evaluation. Alone, it is the best there is."""
    trials = _frame([("a", "ERROR", 2, 0.9, 0.1), ("b", "TERMINATED", 1, 0.6, 0.5),
                     ("c", "TERMINATED", 1, 0.7, 0.4)])
    assert pick_incumbent(trials, "val_acc", "max") == "c"
    assert pick_incumbent(trials[trials["status"] == "ERROR"], "val_acc", "max") == "a"


def test_an_errored_trial_says_why_with_the_platforms_message_not_rays_first_line():
    """Ray's task error carries the trial's own error; its first line only names the actor's
    method. The platform's errors come out whole (they name the file and the remedy)."""
    from ray.exceptions import RayTaskError

    from automl_chars.errors import DamagedFileError
    from automl_chars.runner.core import error_reason

    damaged = DamagedFileError("/x/checkpoint_000001/trial_state.pt", "truncated",
                               "Resume with --resume --restart-errored.")
    err = RayTaskError("ResourceTrainable.restore", "Traceback ...\nDamagedFileError: ...",
                       damaged).as_instanceof_cause()
    assert str(err).splitlines()[0].find("trial_state.pt") < 0  # what the table showed before
    reason = error_reason(err)
    assert "/x/checkpoint_000001/trial_state.pt" in reason and "--restart-errored" in reason
    assert "\n" not in reason
    other = RayTaskError("f", "tb", ValueError("bad shape\nmore")).as_instanceof_cause()
    assert error_reason(other) == "bad shape"
    assert error_reason(RuntimeError("x" * 400)) == "x" * 300


def test_a_tie_is_broken_by_trial_id_so_the_incumbent_is_reproducible():
    """Equal metrics at the highest budget: the smallest trial id wins, whatever the row order."""
    trials = _frame([("c", "TERMINATED", 9, 0.8, 0.1), ("a", "TERMINATED", 9, 0.8, 0.1),
                     ("b", "TERMINATED", 9, 0.8, 0.1)])
    assert pick_incumbent(trials, "val_acc", "max") == "a"


# -- the table row, runtime, save and load ------------------------------------------------------
def _result(tmp_path, started_at=100.0):
    trials = pd.DataFrame({
        "trial_id": ["0001", "0002"], "status": ["TERMINATED", "TERMINATED"],
        "suggested_by": ["random", "model"], "budget": [3, 3], "val_acc": [0.5, 0.8],
        "train_acc": [0.6, 0.95], "timestamp": [130.0, 160.0],
    })
    return SweepResult(trials, {"learning_rate": 0.01}, "0002", 0.7, tmp_path,
                       {"dataset": "toy", "preset": "3_1_3_1", "started_at": started_at, "seed": 4})


def test_table_row_reports_the_incumbents_own_accuracies_and_the_whole_runtime(tmp_path):
    """Validation, train and test accuracy of the incumbent each come from their own column,
    and the runtime runs from the start to the last result."""
    row = _result(tmp_path).table.iloc[0]
    assert row["val_acc"] == 0.8 and row["train_acc"] == 0.95 and row["test_acc"] == 0.7
    assert row["runtime_s"] == 60.0  # 160 - 100, not to the first result (30)
    assert (row["dataset"], row["preset"]) == ("toy", "3_1_3_1")


def test_runtime_is_unknown_without_a_start_time_or_timestamps():
    """No start time (or no result at all) gives NaN, never a made-up number."""
    trials = pd.DataFrame({"timestamp": [10.0, 20.0]})
    assert math.isnan(runtime_seconds(trials, None))
    assert math.isnan(runtime_seconds(pd.DataFrame({"timestamp": [np.nan]}), 5.0))
    assert runtime_seconds(trials, 5.0) == 15.0


def test_a_saved_result_loads_back_whole(tmp_path):
    """``load`` gives back the incumbent, its test accuracy, the settings and the trial ids as
    text (leading zeros kept), so ``show`` and a resumed finished sweep report the same sweep."""
    result = _result(tmp_path)
    result.save()
    loaded = SweepResult.load(tmp_path)
    assert loaded.incumbent == {"learning_rate": 0.01} and loaded.incumbent_trial_id == "0002"
    assert loaded.test_accuracy == 0.7 and loaded.settings == result.settings
    assert list(loaded.trials["trial_id"]) == ["0001", "0002"]
    pd.testing.assert_frame_equal(loaded.table, result.table)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_model_based"] == 1 and summary["n_trials"] == 2


# -- the trials table and finish() ---------------------------------------------------------------
def _grid_result(tid, metrics, config=None, error=None, checkpoint=None):
    return SimpleNamespace(metrics=metrics, config=config or {}, error=error,
                           path=f"/x/CNNTrainable_{tid}", checkpoint=checkpoint)


def test_trials_frame_marks_failures_and_errors_with_their_reasons():
    """A failed result is FAILED with its reason; an errored trial keeps Tune's status with the
    error's first line; a fine trial has an empty error and its configuration's columns."""
    grid = [
        _grid_result("b", {"trial_id": "b", "training_iteration": 1, "val_acc": float("nan"),
                           FAILURE: "the training loss is nan (diverged) at budget 1"},
                     {"learning_rate": 1e10, "suggested_by": "model"}),
        _grid_result("c", None, {"learning_rate": 0.1}, error=RuntimeError("worker died\nmore")),
        _grid_result("a", {"trial_id": "a", "training_iteration": 3, "val_acc": 0.8,
                           "train_acc": 0.9}, {"learning_rate": 0.01, "suggested_by": "random"}),
    ]
    statuses = {"a": Trial.TERMINATED, "b": Trial.TERMINATED, "c": Trial.ERROR}
    t = trials_frame(grid, statuses).set_index("trial_id")
    assert list(t.index) == ["a", "b", "c"]
    assert t.loc["b", "status"] == "FAILED" and "diverged" in t.loc["b", "error"]
    assert t.loc["c", "status"] == Trial.ERROR and t.loc["c", "error"] == "worker died"
    assert t.loc["a", "status"] == Trial.TERMINATED and t.loc["a", "error"] == ""
    assert t.loc["a", "budget"] == 3 and t.loc["c", "budget"] == 0
    assert t.loc["a", "config/learning_rate"] == 0.01 and "config/suggested_by" not in t
    assert list(t["suggested_by"]) == ["random", "model", "given"]
    # Without Tune's statuses, an error alone still makes the trial ERROR.
    assert trials_frame(grid).set_index("trial_id").loc["c", "status"] == Trial.ERROR


def test_finish_scores_the_incumbent_on_the_test_split(tmp_path):
    """The reported test accuracy is the incumbent checkpoint's on the ``test`` split, never the
    validation split nor another trial's checkpoint."""
    evaluated = []

    def checkpoint(tid):
        @contextmanager
        def as_directory():
            yield f"ckpt-{tid}"
        return SimpleNamespace(as_directory=as_directory)

    def evaluate(ckpt, dataset, split):
        evaluated.append((ckpt, split))
        return {"test": 0.25, "val": 0.9}[split]

    grid = [_grid_result(tid, {"trial_id": tid, "training_iteration": 3, "val_acc": acc,
                               "train_acc": acc, "timestamp": 200.0},
                         {"learning_rate": lr, "suggested_by": "random"}, checkpoint=checkpoint(tid))
            for tid, acc, lr in (("a", 0.5, 0.1), ("b", 0.9, 0.01))]
    spec = SimpleNamespace(metric="val_acc", mode="max", evaluate=evaluate)
    settings = SweepSettings(
        dataset="toy", dataset_fingerprint="0badcafe", preset="3_1_3_1", eta=3, min_budget=1,
        max_budget=3, num_samples=2, fidelity="epochs", gpus_per_trial=0.0, cpus_per_trial=1.0,
        seed=0)
    write_json(tmp_path / SETTINGS_FILE, {"dataset": "toy", "started_at": 100.0})
    result = finish(grid, SimpleNamespace(), tmp_path, settings, spec,
                    {"a": Trial.TERMINATED, "b": Trial.TERMINATED})
    assert evaluated == [("ckpt-b", "test")]
    assert result.test_accuracy == 0.25 and result.incumbent == {"learning_rate": 0.01}
    assert result.settings["started_at"] == 100.0 and result.table.iloc[0]["runtime_s"] == 100.0
    assert SweepResult.load(tmp_path).test_accuracy == 0.25


def test_the_incumbent_with_a_damaged_checkpoint_is_passed_over_for_the_next_best(tmp_path):
    """The sweep's test evaluation: a damaged checkpoint is named in a warning and the next
    trial in order is evaluated; when every one is damaged, one clear error."""
    import contextlib

    from automl_chars.errors import DamagedFileError, DamagedFileWarning, ExperimentStateError
    from automl_chars.runner.sweep import _evaluate_incumbent

    def result(tid):
        return SimpleNamespace(metrics={"trial_id": tid}, path=str(tmp_path / tid), checkpoint=(
            SimpleNamespace(as_directory=lambda: contextlib.nullcontext(str(tmp_path / tid)))))

    damaged = {"a"}

    def evaluate(ckpt, dataset, split):
        if ckpt.endswith("a") and "a" in damaged or ckpt.endswith("b") and "b" in damaged:
            raise DamagedFileError(f"{ckpt}/trial_state.pt", "truncated", "Remedy.")
        return 0.75

    spec = SimpleNamespace(evaluate=evaluate)
    grid = [result("a"), result("b")]
    with pytest.warns(DamagedFileWarning, match=r"a/trial_state.pt is damaged .* trial a cannot"):
        tid, best, metric = _evaluate_incumbent(grid, ["a", "b"], None, spec)
    assert (tid, metric) == ("b", 0.75) and best is grid[1]
    damaged.add("b")
    with pytest.warns(DamagedFileWarning), \
            pytest.raises(ExperimentStateError, match="No trial's checkpoint could be evaluated"):
        _evaluate_incumbent(grid, ["a", "b"], None, spec)
