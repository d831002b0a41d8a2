"""CNNTrainable in-process (Ray initialised once for the session; no actors needed)."""

import pytest
from ray import tune

from automl_chars.errors import InvalidConfigError
from automl_chars.trainables import FAILURE, CNNTrainable, evaluate_checkpoint, load_trial_state
from automl_chars.training.fidelity import Fidelity

pytestmark = pytest.mark.slow

# Dropout (torch's global RNG) and augmentation (the trial's generator) make every RNG matter.
CONFIG = {"optimizer": "adam", "learning_rate": 0.003, "batch_size": 16, "augment": True,
          "conv1_dropout": True, "conv1_dropout_rate": 0.3, "suggested_by": "random"}
METRICS = ("val_acc", "val_loss", "train_acc", "train_loss", "epoch_s", "num_params", "budget")


def _trainable(ds, fidelity=Fidelity()):
    return tune.with_parameters(CNNTrainable, dataset=ds, fidelity=fidelity, seed=0)


def test_step_reports_metrics(ray_session, make_dataset):
    t = _trainable(make_dataset())(config=CONFIG)
    r = t.train()
    assert all(k in r for k in METRICS)
    assert r["budget"] == 1 and r["num_params"] > 0 and r["device"] == "cpu"
    t.stop()


def test_paused_and_resumed_trial_continues_where_it_stopped(ray_session, make_dataset, tmp_path):
    ds = make_dataset(per_class=40)
    T = _trainable(ds, Fidelity("subset", max_budget=4))
    straight = T(config=CONFIG)
    reference = [straight.train() for _ in range(4)]

    paused = T(config=CONFIG)
    first = [paused.train() for _ in range(2)]
    checkpoint = paused.save(str(tmp_path / "ckpt"))
    paused.stop()

    resumed = T(config=CONFIG)
    resumed.restore(checkpoint)
    rest = [resumed.train() for _ in range(2)]
    got = first + rest
    # Identical to the uninterrupted run: same budget units, same samples, same losses.
    assert [r["budget"] for r in got] == [1, 2, 3, 4]
    assert [r["samples_seen"] for r in got] == [r["samples_seen"] for r in reference]
    assert [r["train_loss"] for r in got] == pytest.approx([r["train_loss"] for r in reference], rel=1e-5)
    # A restart from scratch would repeat the first unit instead.
    assert rest[0]["train_loss"] != pytest.approx(first[0]["train_loss"], rel=1e-3)
    for t in (straight, resumed):
        t.stop()


def test_reset_config_rebuilds_the_model(ray_session, make_dataset):
    t = _trainable(make_dataset())(config=CONFIG)
    t.train()
    params_before = t.train()["num_params"]
    assert t.reset(new_config={**CONFIG, "conv1_channels": 32}) is True
    r = t.train()
    assert r["budget"] == 1 and r["num_params"] > params_before
    t.stop()


def test_missing_dataset_is_a_clear_error(ray_session):
    with pytest.raises(InvalidConfigError, match="needs a dataset"):
        CNNTrainable(config=CONFIG)


def test_a_configuration_that_cannot_be_built_fails_once_then_ends(ray_session, make_dataset):
    """No exception (Tune would retry it, repeating the failure): a failed result, then done."""
    t = _trainable(make_dataset())(config={"n_conv_layers": 5})
    first = t.train()
    assert "cannot be built" in first[FAILURE] and "n_conv_layers=5" in first[FAILURE]
    assert first["val_acc"] != first["val_acc"]  # NaN: hpbandster scores it as +inf loss
    assert not first.get("done")  # the scheduler decides, at the trial's rung
    assert t.train()["done"] is True
    assert t.reset(new_config=CONFIG) is True  # a reused actor recovers with a good config
    assert FAILURE not in t.train()
    t.stop()


def test_a_diverging_configuration_fails_with_its_reason(ray_session, make_dataset, tmp_path):
    t = _trainable(make_dataset())(config={"learning_rate": 1e10, "batch_size": 16})
    r = t.train()
    assert "diverged" in r[FAILURE] and "budget 1" in r[FAILURE]
    # A failed trial's checkpoint holds the failure and no model; restoring keeps it failed.
    ckpt = t.save(str(tmp_path / "ckpt"))
    again = _trainable(make_dataset())(config={"learning_rate": 1e10, "batch_size": 16})
    again.restore(ckpt)
    assert "diverged" in again.train()[FAILURE]
    for x in (t, again):
        x.stop()


def test_checkpoints_record_the_model_and_load_without_code(ray_session, make_dataset, tmp_path):
    ds = make_dataset()
    t = _trainable(ds)(config=CONFIG)
    t.train()
    ckpt = t.save(str(tmp_path / "ckpt"))
    path = ckpt.checkpoint.path
    state = load_trial_state(path)  # torch.load(weights_only=True) inside
    assert state["model"] == "cnn" and state["trainable"] == "CNNTrainable"
    assert state["arch"]["conv"][0]["channels"] == 8
    assert 0.0 <= evaluate_checkpoint(path, ds, "test") <= 1.0
    t.stop()


def test_space_is_checked_against_the_trainable(make_dataset):
    from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

    from automl_chars.spaces import cnn_space

    ds = make_dataset()
    CNNTrainable.check_space(cnn_space(), ds)
    # A conditional hyperparameter is checked with its parent set so that it is active.
    space = ConfigurationSpace()
    switch, rate = Categorical("conv1_dropout", [False, True]), Float("conv1_dropout_rate", (0.1, 1.0))
    space.add([switch, rate, EqualsCondition(rate, switch, True)])
    with pytest.raises(InvalidConfigError, match="conv1_dropout_rate=1.0.*dropout < 1"):
        CNNTrainable.check_space(space, ds)
    for hp, fragment in (
        (Float("learnig_rate", (1e-3, 1e-1)), "Unknown hyperparameter"),
        (Integer("batch_size", (0, 64)), "batch_size=0"),
        (Integer("n_conv_layers", (1, 4)), "n_conv_layers=4"),
        (Categorical("activation", ["relu", "gelu"]), "activation='gelu'"),
    ):
        space = ConfigurationSpace()
        space.add(hp)
        with pytest.raises(InvalidConfigError, match=fragment):
            CNNTrainable.check_space(space, ds)


def test_a_trials_settings_never_rebuild_the_space(monkeypatch):
    """Building the 48-hyperparameter space takes tens of milliseconds; rebuilt for every
    configuration (four times per reset_config) it was most of a trial's overhead."""
    from automl_chars.spaces import cnn as cnn_module
    from automl_chars.trainables.cnn import cnn_settings

    cnn_settings(CONFIG)  # the defaults are cached once per process
    monkeypatch.setattr(cnn_module, "cnn_space", lambda *a, **k: pytest.fail("space rebuilt"))
    for lr in (0.001, 0.01, 0.1):
        assert cnn_settings({**CONFIG, "learning_rate": lr}).optimizer.learning_rate == lr


def test_report_test_adds_the_test_split_every_epoch_and_is_off_by_default(ray_session,
                                                                           make_dataset, tmp_path):
    ds = make_dataset()
    plain = _trainable(ds)(config=CONFIG)
    assert "test_acc" not in plain.train() and "test_loss" not in plain.train()
    plain.stop()
    t = tune.with_parameters(CNNTrainable, dataset=ds, seed=0, report_test=True)(config=CONFIG)
    for _ in range(2):
        r = t.train()
        assert 0 <= r["test_acc"] <= 1 and r["test_loss"] > 0
    path = t.save(str(tmp_path / "ckpt")).checkpoint.path
    assert r["test_acc"] == pytest.approx(evaluate_checkpoint(path, ds, "test"))
    t.stop()
    with pytest.raises(InvalidConfigError, match="report_test"):
        tune.with_parameters(CNNTrainable, dataset=ds, report_test="yes")(config=CONFIG)
