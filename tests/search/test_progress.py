"""TrialLineCallback: the sweep's own console output."""

import pickle
from types import SimpleNamespace

from automl_chars.search.progress import TrialLineCallback


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
