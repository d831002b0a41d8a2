"""``automl-chars train NAME`` and ``bohb --experiment NAME`` (docs/named-experiments.md)."""

import json

import pandas as pd
import pytest

from automl_chars.cli.main import main


@pytest.fixture
def no_data_no_ray(monkeypatch):
    """Fails a test that loads data or starts Ray: errors must come before both."""
    import automl_chars.workflows.named  # noqa: F401  (its runner binds the real data.load first)
    from automl_chars import data
    from automl_chars.runner import cluster

    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("loaded data"))
    monkeypatch.setattr(cluster, "connect", lambda *a, **k: pytest.fail("started Ray"))
    monkeypatch.setattr(cluster, "join", lambda *a, **k: pytest.fail("started Ray"))


@pytest.mark.parametrize("argv,fragment", [
    (["train", "mnsit1"], "Unknown named experiment 'mnsit1'. Did you mean 'mnist1'"),
    (["train"], "train needs a NAME: one of cifar10_1, mnist1"),
    (["train", "mnist1", "--set", "learning_rat=0.1"],
     "--set learning_rat=0.1: 'learning_rat' is not a hyperparameter of the mlp family. Did you "
     "mean learning_rate"),
    (["train", "mnist1", "--set", "batchnorm=maybe"], "batchnorm is one of [False, True]"),
    (["train", "mnist1", "--set", "learning_rate"], "--set takes KEY=VALUE"),
    (["train", "mnist1", "--set", "learning_rate=-1"], "--set learning_rate=-1: learning_rate "
                                                      "must be > 0"),
    (["train", "mnist1", "--epochs", "0"], "--epochs must be >= 1"),
    (["bohb", "--experiment", "cifar10-1"], "Did you mean 'cifar10_1'"),
    (["bohb", "--experiment", "mnist1", "--model", "cnn"], "leave out --model cnn"),
    (["bohb", "--experiment", "mnist1", "--set", "batch_size=big"], "batch_size takes a whole"),
    (["bohb", "--dataset", "glyphs-digits", "--set", "dropout=0.1"], "use it with --experiment"),
    (["bohb"], "bohb needs --dataset"),
])
def test_bad_input_is_one_clear_error_before_data_or_ray(no_data_no_ray, capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


def test_train_list_shows_every_experiment(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    assert "mnist1: mlp on mnist, 20 epochs" in out and "learning_rate=0.01" in out
    assert "cifar10_1: resnet34 on cifar10, 100 epochs" in out


@pytest.mark.slow
def test_train_smoke_runs_one_trial_with_the_fixed_values(ray_session, data_root, tmp_path,
                                                          capsys):
    """On two Ray Train workers (DDP with gloo on the CPU): what cifar10_1's ResNet-34 needs
    where one GPU's share is too small."""
    argv = ["train", "mnist1", "--smoke", "--set", "learning_rate=0.05", "--epochs", "2",
            "--storage", str(tmp_path), "--verbose", "0", "--workers-per-trial", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mnist1: TERMINATED, 2 epochs" in out and "test_acc" in out
    trials = pd.read_csv(tmp_path / "train-mnist1" / "trials.csv")
    assert len(trials) == 1 and trials["dataset"][0] == "glyphs-digits"  # --smoke: built-in
    row = trials.iloc[0]
    assert row["label"] == "mnist1" and row["status"] == "TERMINATED" and row["epochs"] == 2
    assert row["config/learning_rate"] == 0.05  # --set over the experiment's 1e-2
    assert row["config/weight_decay"] == 1e-3 and row["config/layer1_units"] == 512
    assert row["params"] > 512 * 512  # SLS's MLP: two hidden layers of 512
    results = [json.loads(line) for f in (tmp_path / "train-mnist1").glob("*/result.json")
               for line in f.read_text().splitlines()]
    assert [r["workers"] for r in results] == [2, 2]  # each epoch on both workers, in step
    assert all(r["replica_spread"] == 0.0 for r in results)
    # a resume on one worker would restore trials of another Trainable: refused, named
    assert main([*argv[:-2], "--resume"]) == 2
    assert "--workers-per-trial 2" in capsys.readouterr().err


@pytest.mark.slow
def test_bohb_experiment_sweeps_the_free_ones_with_the_fixed_ones_in_every_trial(
        ray_session, data_root, tmp_path, capsys):
    argv = ["bohb", "--experiment", "mnist1", "--dataset", "glyphs-digits", "--samples-per-class",
            "6", "--preset", "2_1_2_2", "--num-samples", "2", "--storage", str(tmp_path),
            "--set", "batch_size=32", "--verbose", "0"]
    assert main(argv) == 0
    assert "Incumbent:" in capsys.readouterr().out
    trials = pd.read_csv(tmp_path / "mnist1-bohb-glyphs-digits-2_1_2_2" / "trials.csv")
    assert len(trials) == 2
    assert set(trials["config/batch_size"]) == {32} and set(trials["config/momentum"]) == {0.9}
    assert set(trials["config/learning_rate"]) == {1e-2}
    assert trials["config/activation"].notna().all()  # searched
