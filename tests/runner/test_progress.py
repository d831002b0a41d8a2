"""TrialLineCallback: the sweep's own console output."""

import pickle
import re
from types import SimpleNamespace

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
