"""Trials that survive faults: a killed trial process is retried from its checkpoint; a trial that
fails for a reason a retry cannot fix ends at once, and BOHB counts it as bad."""

from __future__ import annotations

import glob
import os
import signal

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Integer
from ray.tune.callback import Callback

from automl_chars import data, run_bohb
from automl_chars.spaces import cnn_space, subspace

pytestmark = pytest.mark.slow

GLYPHS = {"samples_per_class": 12}


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory):
    return data.load("glyphs-digits", root=tmp_path_factory.mktemp("data"), **GLYPHS)


class KillOnce(Callback):
    """SIGKILLs the process of the first trial that reports budget 2 (a dead worker, as when a
    spot node is reclaimed or the kernel's OOM killer strikes), once."""

    def __init__(self):
        self.killed: tuple[str, int] | None = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.killed is None and result.get("training_iteration") == 2:
            self.killed = (trial.trial_id, result["pid"])
            os.kill(result["pid"], signal.SIGKILL)


def test_a_killed_trial_process_is_retried_from_its_checkpoint(ray_session, glyphs, tmp_path):
    killer = KillOnce()
    # 3_1_3_1: three trials at budget 1, the best goes on to 3.
    result = run_bohb(glyphs, space=subspace(cnn_space(), ["learning_rate"], seed=0),
                      preset="3_1_3_1", storage_path=tmp_path, name="kill", verbose=0,
                      max_failures=2, callbacks=[killer])
    assert killer.killed is not None, "no trial reached budget 2: nothing was killed"
    tid, pid = killer.killed
    t = result.trials.set_index("trial_id")
    assert (t["status"] == "TERMINATED").all(), t["error"].to_dict()
    assert t.loc[tid, "budget"] == 3
    progress = pd.read_csv(tmp_path / "kill" / f"CNNTrainable_{tid}" / "progress.csv")
    # It went on in a new process, from a checkpoint: budgets never went back to 1 after the
    # kill, and it trained exactly 3 budget units of samples in the end.
    after = progress[progress["pid"] != pid]
    assert len(after) > 0 and after["budget"].min() >= 2
    assert progress["budget"].iloc[-1] == 3
    assert t.loc[tid, "samples_seen"] == 3 * len(glyphs.y_train)


def test_a_diverging_configuration_is_a_failed_result_bohb_learns_from(ray_session, glyphs,
                                                                       tmp_path):
    space = ConfigurationSpace(seed=1)
    space.add([Categorical("learning_rate", [0.01, 1e10]), Integer("batch_size", (16, 32))])
    result = run_bohb(glyphs, space=space, preset="3_1_3_2", storage_path=tmp_path, name="nan",
                      verbose=0, seed=1)
    t = result.trials
    failed = t[t["config/learning_rate"] == 1e10]
    assert len(failed) > 0 and (t["config/learning_rate"] == 0.01).any()
    assert (failed["status"] == "FAILED").all() and failed["error"].str.contains("diverged").all()
    assert failed["val_acc"].isna().all()
    assert (t.loc[t["config/learning_rate"] == 0.01, "status"] == "TERMINATED").all()
    assert result.incumbent["learning_rate"] == 0.01  # the sweep went on and finished
    # BOHB's model saw each failure as a bad result (+inf loss) at the budget of its rung.
    state_file = sorted(glob.glob(str(tmp_path / "nan" / "searcher-state-*.pkl")))[-1]
    with open(state_file, "rb") as f:
        bohber = cloudpickle.load(f)["bohber"]
    losses = np.concatenate([np.asarray(v, dtype=float) for v in bohber.losses.values()])
    assert np.isinf(losses).sum() == len(failed)
    assert np.isfinite(losses).sum() >= 1


def test_a_sweep_whose_every_trial_failed_keeps_their_reasons(ray_session, glyphs, tmp_path):
    from automl_chars.errors import ExperimentStateError

    space = ConfigurationSpace(seed=0)
    space.add([Categorical("learning_rate", [1e10]), Integer("batch_size", (16, 32))])
    with pytest.raises(ExperimentStateError, match="No trial reported a result.*trials.csv"):
        run_bohb(glyphs, space=space, preset="2_1_1_2", storage_path=tmp_path, name="allfail",
                 verbose=0)
    t = pd.read_csv(tmp_path / "allfail" / "trials.csv")
    assert len(t) == 2 and (t["status"] == "FAILED").all()
    assert t["error"].str.contains("diverged").all()
    assert not (tmp_path / "allfail" / "summary.json").exists()


class DamageAndKill(Callback):
    """Truncates the first checkpoint a trial saves at budget 2 and SIGKILLs the trial's process:
    the retry restores from the damaged file and the trial ends in Ray's ERROR."""

    def __init__(self):
        self.damaged: tuple[str, str] | None = None

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if self.damaged is None and trial.last_result.get("training_iteration") == 2:
            path = os.path.join(checkpoint.path, "trial_state.pt")
            with open(path, "r+b") as f:
                f.truncate(100)
            self.damaged = (trial.trial_id, path)
            os.kill(trial.last_result["pid"], signal.SIGKILL)


def _losses_at(exp_dir, budget: float) -> int:
    state_file = sorted(glob.glob(str(exp_dir / "searcher-state-*.pkl")))[-1]
    with open(state_file, "rb") as f:
        state = cloudpickle.load(f)
    while "bohber" not in state:  # a warm start's state wraps BOHB's
        state = cloudpickle.loads(next(v for v in state.values() if isinstance(v, bytes)))
    return len(state["bohber"].losses.get(budget, []))


def test_a_trial_whose_checkpoint_is_damaged_trains_again_on_a_resume_with_restart_errored(
        ray_session, glyphs, tmp_path):
    """The remedy a damaged checkpoint's message gives works in a BOHB sweep: the trial ends
    errored naming the file, the sweep finishes, and ``resume`` with ``restart_errored`` trains
    that trial again from scratch (Tune's copy under a new id, which BOHB learns from) and
    keeps every finished trial."""
    damage = DamageAndKill()
    kwargs = dict(space=subspace(cnn_space(), ["learning_rate"], seed=0), preset="3_1_3_1",
                  storage_path=tmp_path, name="damaged", verbose=0, max_failures=1,
                  priors=False)  # BOHB alone: its model counts the trials it learned from
    first = run_bohb(glyphs, callbacks=[damage], **kwargs)
    assert damage.damaged is not None, "no trial checkpointed at budget 2"
    tid, path = damage.damaged
    t = first.trials.set_index("trial_id")
    assert t.loc[tid, "status"] == "ERROR"
    assert path in t.loc[tid, "error"] and "--restart-errored" in t.loc[tid, "error"]
    kept = t[t["status"] == "TERMINATED"]
    assert len(kept) == len(t) - 1
    at_top = _losses_at(tmp_path / "damaged", 3.0)

    # a plain resume reads the finished sweep back: the trial stays errored
    again = run_bohb(glyphs, resume=True, **kwargs)
    assert (again.trials["status"] == "ERROR").sum() == 1

    seen = []

    class Seen(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            seen.append((trial.trial_id, result["training_iteration"]))

    restarted = run_bohb(glyphs, resume=True, restart_errored=True, callbacks=[Seen()], **kwargs)
    r = restarted.trials.set_index("trial_id")
    assert (r["status"] == "TERMINATED").all(), r["error"].to_dict()
    new = sorted(set(r.index) - set(t.index))
    assert len(new) == 1 and tid not in r.index  # Tune's copy replaces the errored trial
    assert [i for _, i in seen] == [1, 2, 3] and {s for s, _ in seen} == set(new)  # from scratch
    pd.testing.assert_frame_equal(r.loc[kept.index, ["val_acc", "budget"]],
                                  kept[["val_acc", "budget"]])
    assert _losses_at(tmp_path / "damaged", 3.0) == at_top + 1  # BOHB learned from it
