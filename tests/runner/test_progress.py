"""TrialLineCallback: the sweep's own console output."""

import json
import pickle
import re
from types import SimpleNamespace

import pytest

from automl_chars.runner.progress import TrialLineCallback


def test_heading_names_the_experiment_and_its_tensorboard_command(capsys):
    cb = TrialLineCallback(3, "/results/sweep")
    cb.setup(stop=None, num_samples=3, total_num_samples=3)
    out = capsys.readouterr().out
    assert "/results/sweep" in out and "tensorboard --logdir /results/sweep" in out


def test_one_line_per_finished_trial_and_a_fresh_clock_on_resume(capsys, monkeypatch):
    cb = TrialLineCallback(2, "/results/sweep")
    trial = SimpleNamespace(trial_id="abc123", config={"suggested_by": "model"},
                            last_result={"val_acc": 0.5, "training_iteration": 3})
    cb.on_trial_complete(0, [], trial)
    line = capsys.readouterr().out
    assert line.startswith("[  1/2] abc123") and "budget   3" in line and "(model)" in line

    restored = pickle.loads(pickle.dumps(cb))  # as Tune restores it from tuner.pkl
    monkeypatch.setattr("time.time", lambda: cb.start + 3600)
    restored.setup()
    assert restored.start == cb.start + 3600 and restored.done == 1


def test_a_line_names_what_the_trial_is(capsys):
    """A job of run_trials by its description (or its label), a sweep's trial by what suggested
    it; a restored callback keeps the descriptions."""
    from automl_chars.trainables.base import JOB

    cb = TrialLineCallback(4, "/results/pf/training",
                           descriptions={"glyphs-greek": "source glyphs-greek"})
    result = {"val_acc": 0.5, "training_iteration": 2}
    trials = [SimpleNamespace(trial_id=f"t{i}", config=config, last_result=result)
              for i, config in enumerate([{JOB: "glyphs-greek"}, {JOB: "(1, 2)"},
                                          {"suggested_by": "random", "lr": 0.1}, {}])]
    restored = pickle.loads(pickle.dumps(cb))
    for trial in trials:
        restored.on_trial_complete(0, trials, trial)
    origins = [re.search(r"best [\d.]+  \((.*)\)  +[\d.]+s$", line).group(1)
               for line in capsys.readouterr().out.splitlines()]
    assert origins == ["source glyphs-greek", "(1, 2)", "random", "?"]


def test_rays_own_lines_stay_out_at_the_default_verbosity():
    import logging

    from automl_chars.runner.progress import quiet_ray_output

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    ray_logger = logging.getLogger("ray")
    ray_logger.addHandler(handler)
    tune_logger = logging.getLogger("ray.tune")
    before = tune_logger.level
    tune_logger.setLevel(logging.INFO)
    try:
        with quiet_ray_output(1):
            tune_logger.info("Wrote the latest version of all result files")
            tune_logger.warning("Experiment has been interrupted, but the most recent state ...")
            tune_logger.warning("a real warning")
        assert seen == ["a real warning"]
        tune_logger.info("after the sweep")
        with quiet_ray_output(2):  # Ray's own output, as asked
            tune_logger.warning("Failed to fetch metrics for 1 trial(s)")
        assert seen[1:] == ["after the sweep", "Failed to fetch metrics for 1 trial(s)"]
    finally:
        ray_logger.removeHandler(handler)
        tune_logger.setLevel(before)


def test_progress_counts_on_after_a_resume(capsys):
    from ray.tune.experiment import Trial

    cb = TrialLineCallback(5, "/results/sweep")
    cb.setup()
    ended = [Trial("CNNTrainable", stub=True, trial_id=f"t{i}") for i in range(3)]
    for t in ended[:2]:
        t.set_status(Trial.TERMINATED)
    cb.on_step_begin(0, ended)
    assert "Resumed: 2 of 5" in capsys.readouterr().out
    ended[0].update_last_result({"val_acc": 0.5, "training_iteration": 3})
    cb.on_trial_complete(1, ended, ended[0])  # already counted: no second line
    ended[2].update_last_result({"val_acc": 0.7, "training_iteration": 1, "failure": "diverged"})
    cb.on_trial_complete(1, ended, ended[2])
    out = capsys.readouterr().out
    assert out.startswith("[  3/5] t2") and "FAILED: diverged" in out


# -- the progress line -------------------------------------------------------------------------
def _trial(tid, status, result=None):
    from ray.tune.experiment import Trial

    t = Trial("ReplayTrainable", stub=True, trial_id=tid)
    t.set_status(status)
    if result:
        t.update_last_result(result)
    return t


def test_eta_counts_down_the_budget_still_to_run():
    from automl_chars.runner.progress import eta_seconds

    assert eta_seconds(10, 40, 20) == 60  # 10 units in 20 s: 30 more take 60 s
    assert eta_seconds(15, 40, 10, units_before=10) == 50  # 5 units in the last 10 s
    # past the plan while trials go on (a warm start's lead bracket): unknown, never "0s"
    assert eta_seconds(40, 40, 5) is None and eta_seconds(45, 40, 5) is None
    assert eta_seconds(10, None, 20) is None  # no plan
    assert eta_seconds(10, 40, 20, units_before=10) is None  # nothing trained since
    assert eta_seconds(0, 40, 0) is None


def test_the_planned_budget_follows_rays_brackets():
    from automl_chars.search.presets import get_preset

    # 3_1_9_1: one bracket of 9 at budget 1, 3 go on to 3, 1 to 9: 9 + 3*2 + 1*6
    assert get_preset("3_1_9_1").planned_budget() == 21
    # 3_1_3_8 (tests/runner/test_sweep.py sums its 20 trials' budgets): brackets of 3 configs at
    # budget 1 (one goes on to 3) and of 2 at budget 3, four of each
    assert get_preset("3_1_3_8").planned_budget() == 4 * (3 + 2) + 4 * 6
    preset = get_preset("3_1_9_1")
    assert preset.planned_budget(10) == 21 + 9  # a tenth trial opens the next bracket (s=1)
    # a part-full bracket keeps as many as a full one (Ray halves its nominal 9 to 3, then 1)
    assert preset.planned_budget(3) == 3 + 3 * 2 + 6
    assert preset.planned_budget(5) == 5 + 3 * 2 + 6
    # a warm start's 4 seeds go straight to 9 first, then the brackets fill as before
    assert preset.planned_budget(13, lead=4) == 4 * 9 + 21
    assert preset.planned_budget(9, lead=4) == 4 * 9 + 5 + 3 * 2 + 6
    assert preset.planned_budget(3, lead=4) == 3 * 9  # fewer trials than seeds


@pytest.mark.slow
def test_the_planned_budget_is_what_a_real_sweep_trained(finished_sweeps):
    import pandas as pd

    from automl_chars.search.presets import get_preset

    trials = pd.read_csv(finished_sweeps["cold"] / "trials.csv")
    assert trials["budget"].sum() == get_preset("3_1_9_1").planned_budget(len(trials))
    # the warm start's seeds train to the top budget in a lead bracket first
    warm = pd.read_csv(finished_sweeps["warm"] / "trials.csv")
    seeds = json.loads((finished_sweeps["warm"] / "warm_start.json").read_text())["seeds"]
    assert seeds and warm["budget"].sum() == get_preset("3_1_9_1").planned_budget(
        len(warm), lead=len(seeds))


def test_trials_are_counted_by_state_a_trial_ending_as_ended():
    from ray.tune.experiment import Trial

    from automl_chars.runner.progress import trial_counts, units_trained

    trials = [_trial("a", Trial.TERMINATED, {"val_acc": 0.5, "training_iteration": 3}),
              _trial("b", Trial.TERMINATED, {"failure": "diverged", "training_iteration": 1}),
              _trial("c", Trial.ERROR), _trial("d", Trial.RUNNING, {"training_iteration": 2}),
              _trial("e", Trial.PAUSED, {"training_iteration": 1}), _trial("f", Trial.PENDING)]
    assert trial_counts(trials, 8) == {"finished": 1, "failed": 2, "running": 1, "pending": 4}
    assert trial_counts(trials, 8, ending=("d", Trial.TERMINATED)) == {
        "finished": 2, "failed": 2, "running": 0, "pending": 4}
    # "a" ended; "b" was marked TERMINATED by an interrupt's graceful stop: pending
    assert trial_counts(trials, 8, ended={"a", "c"}) == {
        "finished": 1, "failed": 1, "running": 1, "pending": 5}
    assert units_trained(trials) == 7


def test_the_progress_text_says_everything_in_one_line():
    from automl_chars.runner.progress import RunProgress, clock, progress_text

    assert [clock(s) for s in (None, float("nan"), 4.4, 185, 3723)] == [
        "?", "?", "4s", "3:05", "1:02:03"]
    text = progress_text(RunProgress(20, finished=4, failed=1, running=2, pending=13, best=0.81234,
                                     elapsed=62, eta=190))
    assert text == ("5/20 done, 2 running, 13 pending, 1 failed | best 0.8123 | ETA 3:10, "
                    "1:02 elapsed")
    assert "best - | ETA ?" in progress_text(RunProgress(3))


def _run(cb, stdout_lines=None):
    """Drives a callback as Tune does: two trials, the first ends, then the second."""
    from ray.tune.experiment import Trial

    a, b = _trial("a", Trial.RUNNING), _trial("b", Trial.PENDING)
    cb.setup()
    cb.on_step_begin(0, [a, b])
    cb.on_trial_result(0, [a, b], a, {"val_acc": 0.4, "training_iteration": 1})
    a.update_last_result({"val_acc": 0.4, "training_iteration": 1})
    cb.on_step_end(0, [a, b])
    cb.on_trial_complete(1, [a, b], a)
    a.set_status(Trial.TERMINATED)
    b.set_status(Trial.RUNNING)
    cb.on_trial_result(2, [a, b], b, {"val_acc": 0.6, "training_iteration": 1})
    b.update_last_result({"val_acc": 0.6, "training_iteration": 1})
    cb.on_trial_complete(2, [a, b], b)
    b.set_status(Trial.TERMINATED)
    cb.on_experiment_end([a, b])


def test_the_lines_show_the_metric_the_run_optimises_best_by_its_mode(capsys, monkeypatch):
    """A run that minimises a loss: the trial lines and the progress line give that metric,
    and best is its lowest (not the validation accuracy's highest)."""
    from ray.tune.experiment import Trial

    from automl_chars.runner import progress

    monkeypatch.setattr(progress.time, "monotonic", lambda: 1000.0)
    cb = TrialLineCallback(2, "/results/sweep", planned_units=2, live=True, metric="val_loss",
                           mode="min")
    a, b = _trial("a", Trial.RUNNING), _trial("b", Trial.PENDING)
    cb.setup()
    cb.on_step_begin(0, [a, b])
    for trial, loss, acc in ((a, 0.3, 0.9), (b, 0.7, 0.95)):
        result = {"val_loss": loss, "val_acc": acc, "training_iteration": 1}
        trial.set_status(Trial.RUNNING)
        cb.on_trial_result(0, [a, b], trial, result)
        trial.update_last_result(result)
        cb.on_trial_complete(1, [a, b], trial)
        trial.set_status(Trial.TERMINATED)
    cb.on_experiment_end([a, b])
    lines = capsys.readouterr().out.splitlines()
    trial_lines = [line for line in lines if line.startswith("[")]
    assert "val_loss 0.3000  best 0.3000" in trial_lines[0]
    assert "val_loss 0.7000  best 0.3000" in trial_lines[1]
    assert lines[-1].startswith("progress: 2/2 done") and "best val_loss 0.3000" in lines[-1]
    # a trial still training holds the best result: the trial lines' best says it, as the
    # progress line does (it said the best of the ended trials only: 0.0385 beside 0.8885)
    x = _trial("x", Trial.RUNNING, {"val_acc": 0.5, "training_iteration": 1})
    c = _trial("c", Trial.RUNNING)
    cb2 = TrialLineCallback(3, "/results/sweep")
    cb2.setup()
    cb2.on_step_begin(0, [x, c])
    capsys.readouterr()
    cb2.on_trial_complete(1, [x, c], x)
    assert "val_acc 0.5000  best 0.5000" in capsys.readouterr().out
    cb2.on_trial_result(2, [x, c], c, {"val_acc": 0.9, "training_iteration": 9})
    y = _trial("y", Trial.RUNNING, {"val_acc": 0.2, "training_iteration": 1})
    cb2.on_trial_complete(3, [x, c, y], y)
    assert "val_acc 0.2000  best 0.9000" in capsys.readouterr().out  # c's, still running
    resumed = TrialLineCallback(2, "/results/sweep", metric="val_loss", mode="min")
    resumed.setup()
    resumed.on_step_begin(0, [a, b])  # a resume counts the best from the ended trials
    assert resumed.best == 0.3 and resumed.best_any == 0.3


def test_plain_progress_lines_where_output_is_no_terminal(capsys, monkeypatch):
    from automl_chars.runner import progress

    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    cb = TrialLineCallback(2, "/results/sweep", planned_units=2, live=True)
    _run(cb)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("progress:")] == [
        "progress: 2/2 done, 0 running, 0 pending, 0 failed | best 0.6000 | ETA 0s, 0s elapsed"]
    assert sum(line.startswith("[") for line in lines) == 2  # the trial lines, as before

    display = progress.PlainProgress()  # and one every PLAIN_EVERY_S while nothing ends
    display.update(progress.RunProgress(3))
    assert capsys.readouterr().out == ""
    now[0] += progress.PLAIN_EVERY_S
    display.update(progress.RunProgress(3, running=1, pending=2))
    assert capsys.readouterr().out.startswith("progress: 0/3 done, 1 running, 2 pending")


def test_after_a_ctrl_c_the_last_line_counts_the_stopped_trial_as_pending(capsys, monkeypatch):
    """Tune's graceful stop marks a running trial TERMINATED without ending it (no
    on_trial_complete): the last progress line must not call the sweep done."""
    from ray.tune.experiment import Trial

    from automl_chars.runner import progress

    monkeypatch.setattr(progress.time, "monotonic", lambda: 1000.0)
    a, b = _trial("a", Trial.RUNNING), _trial("b", Trial.RUNNING)
    cb = TrialLineCallback(3, "/results/sweep", planned_units=3, live=True)
    cb.setup()
    cb.on_step_begin(0, [a, b])
    a.update_last_result({"val_acc": 0.4, "training_iteration": 1})
    cb.on_trial_complete(1, [a, b], a)
    a.set_status(Trial.TERMINATED)
    b.update_last_result({"val_acc": 0.6, "training_iteration": 1})
    b.set_status(Trial.TERMINATED)  # Ctrl-C: stopped, not ended
    cb.on_experiment_end([a, b])
    last = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("progress:")][-1]
    assert last.startswith("progress: 1/3 done, 0 running, 2 pending, 0 failed"), last


def test_no_progress_line_below_the_default_verbosity_or_above_it(capsys):
    cb = TrialLineCallback(2, "/results/sweep", planned_units=2)  # live=False: verbose 0 or 2+
    _run(cb)
    assert "progress:" not in capsys.readouterr().out


class FakeTerminal(__import__("io").StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_live_line_in_a_terminal_with_the_trial_lines_above_it(monkeypatch):
    import sys

    from automl_chars.runner import progress

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    cb = TrialLineCallback(2, "/results/sweep", planned_units=2, live=True)
    cb.setup()
    assert isinstance(cb._display, progress.LiveProgress) and progress._LIVE == {cb._display}
    pickle.dumps(cb)  # Tune saves callbacks: the live line is left out
    cb._display.stop()
    _run(cb)
    out = terminal.getvalue()
    assert progress._LIVE == set() and sys.stdout is terminal  # stopped, stdout given back
    assert "\x1b[2K" in out and "\r" in out  # the line is redrawn in place
    assert "2/2 done, 0 running, 0 pending, 0 failed | best 0.6000 | ETA 0s" in out
    trial_line = out.index("[  1/2] a  budget   1")
    assert "progress:" not in out and trial_line > 0


def test_a_live_line_stops_however_the_run_ends(monkeypatch):
    import sys

    from automl_chars.runner import progress

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with pytest.raises(KeyboardInterrupt), progress.live_lines_stopped():
        cb = TrialLineCallback(2, "/results/sweep", live=True)
        cb.setup()
        assert sys.stdout is not terminal  # rich shows printed lines above its line
        raise KeyboardInterrupt  # a second Ctrl-C: Tune calls no on_experiment_end
    assert progress._LIVE == set() and sys.stdout is terminal
