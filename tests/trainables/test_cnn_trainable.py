"""CNNTrainable in-process (Ray initialised once for the session; no actors needed)."""

import pytest
from ray import tune

from automl_chars.errors import InvalidConfigError
from automl_chars.trainables import CNNTrainable
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
