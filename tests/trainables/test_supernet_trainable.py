"""SupernetTrainable and SubnetTrainable in-process, and the supernet spec in a real BOHB sweep."""

from __future__ import annotations

import pandas as pd
import pytest
from ray import tune

from automl_chars.errors import InvalidConfigError
from automl_chars.supernet import SubnetSpec, SupernetSpace
from automl_chars.trainables import FAILURE, SubnetTrainable, SupernetTrainable, load_trial_state
from automl_chars.training.fidelity import Fidelity

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one_thread: conftest

TINY = SupernetSpace(channels=(4, 8), depths=(1, 2))
NAMES = ["(1, 1)", "(1, 2)", "(2, 1)", "(2, 2)"]
CONFIG = {"supernet": TINY.to_dict(), "sampler": "epsilon_greedy", "warmup": 2,
          "batch_size": 16, "learning_rate": 0.05, "calib_samples": 64, "reward_batch": 16}




def _trainable(cls, ds, **kwargs):
    return tune.with_parameters(cls, dataset=ds, fidelity=Fidelity("epochs", 4), seed=0, **kwargs)


def test_a_step_is_an_epoch_of_rounds_then_every_subnet_on_validation(ray_session, make_dataset):
    ds = make_dataset(per_class=16)  # 4 classes: 64 images, 12 validation
    t = _trainable(SupernetTrainable, ds)(config=CONFIG)
    r = t.train()
    assert set(r["subnet_acc"]) == set(NAMES) and r["evaluated"] == 4
    assert r["val_acc"] == r["subnet_acc"][r["leader"]] == max(r["subnet_acc"].values())
    assert sum(r["sampled"].values()) == r["rounds"] == -(-len(ds.y_train) // 16)
    assert r["pruned"] == 0 and r["budget"] == 1
    # Every evaluated subnet's costs (its standalone model's), the leader's as the trial's own.
    assert set(r["subnet_params"]) == set(r["subnet_flops"]) == set(NAMES)
    assert r["params"] == r["subnet_params"][r["leader"]] and r["latency_ms"] > 0
    assert r["subnet_params"]["(1, 1)"] < r["subnet_params"]["(2, 2)"]
    again = t.train()
    assert again["rounds"] == 2 * r["rounds"]
    assert again["subnet_latency_ms"] == r["subnet_latency_ms"]  # measured once per trial
    t.stop()


def test_paused_and_resumed_supernet_continues_with_its_sampler(ray_session, make_dataset,
                                                                 tmp_path):
    ds = make_dataset(per_class=16)
    T = _trainable(SupernetTrainable, ds)
    straight = T(config=CONFIG)
    reference = [straight.train() for _ in range(3)]
    paused = T(config=CONFIG)
    first = [paused.train()]
    checkpoint = paused.save(str(tmp_path / "ckpt"))
    state = load_trial_state(checkpoint.checkpoint.path)
    assert state["extra"]["sampler"]["round"] == first[0]["rounds"]
    paused.stop()
    resumed = T(config=CONFIG)
    resumed.restore(checkpoint)
    got = first + [resumed.train() for _ in range(2)]
    assert [r["budget"] for r in got] == [1, 2, 3]
    assert [r["sampled"] for r in got] == [r["sampled"] for r in reference]
    assert [r["train_loss"] for r in got] == pytest.approx([r["train_loss"] for r in reference],
                                                          rel=1e-5)
    # The leader's test accuracy, read from the checkpoint alone.
    final = resumed.save(str(tmp_path / "final")).checkpoint.path
    assert 0.0 <= SupernetTrainable.evaluate_checkpoint(final, ds) <= 1.0
    for t in (straight, resumed):
        t.stop()


def test_reset_config_rebuilds_the_sampler(ray_session, make_dataset):
    t = _trainable(SupernetTrainable, make_dataset())(config=CONFIG)
    t.train()
    assert t.reset(new_config={**CONFIG, "sampler": "fair"}) is True
    r = t.train()
    assert r["budget"] == 1 and sum(r["sampled"].values()) == 2 * r["rounds"]  # fair: 2 per round
    t.stop()


def test_unknown_sampler_fails_the_trial_and_the_space_check(ray_session, make_dataset):
    from ConfigSpace import Categorical, ConfigurationSpace

    t = _trainable(SupernetTrainable, make_dataset())(config={**CONFIG, "sampler": "ucb"})
    assert "Did you mean 'ucb1'" in t.train()[FAILURE]
    t.stop()
    space = ConfigurationSpace()
    space.add(Categorical("sampler", ["uniform", "thomson"]))
    with pytest.raises(InvalidConfigError, match="sampler='thomson'.*Did you mean 'thompson'"):
        SupernetTrainable.check_space(space, make_dataset())


def test_fine_tuning_starts_from_the_supernets_weights(ray_session, make_dataset, tmp_path):
    ds = make_dataset(per_class=16)
    sup = _trainable(SupernetTrainable, ds)(config=CONFIG)
    r = sup.train()
    path = sup.save(str(tmp_path / "sup")).checkpoint.path
    sup.stop()
    spec = SubnetSpec(TINY, (2, 1)).to_dict()
    tuned = _trainable(SubnetTrainable, ds)(config={"subnet": spec, "init_checkpoint": path,
                                                    "batch_size": 16})
    assert tuned.validate()["val_acc"] == pytest.approx(r["subnet_acc"]["(2, 1)"])
    assert tuned.train()["budget"] == 1
    tuned.stop()
    other = SubnetSpec(SupernetSpace(channels=(4, 8)), (2, 1)).to_dict()
    t = _trainable(SubnetTrainable, ds)(config={"subnet": other, "init_checkpoint": path})
    assert "is a supernet over" in t.train()[FAILURE]
    t.stop()


def test_run_bohb_sweeps_the_supernet_spec_and_resumes_paused_trials(ray_session, make_dataset,
                                                                    tmp_path):
    """Preset 2_1_2_2: the first bracket pauses a trial at budget 1 and continues it to 2;
    its sampler continues too (rounds and sampling counts add up across the pause)."""
    from automl_chars import run_bohb
    from automl_chars.search.spec import supernet_spec
    from automl_chars.spaces import subspace
    from automl_chars.spaces.supernet import supernet_space

    ds = make_dataset(per_class=12)
    space = subspace(supernet_space(), ["learning_rate", "sampler", "epsilon", "warmup"], seed=0)
    result = run_bohb(ds, spec=supernet_spec(space, supernet=TINY), preset="2_1_2_2",
                      storage_path=tmp_path, name="sweep", verbose=0)
    t = result.trials
    assert len(t) == 4 and (t["status"] == "TERMINATED").all(), t["error"].tolist()
    assert result.settings["trainable"] == "supernet" and 0 <= result.test_accuracy <= 1
    promoted = 0
    for progress in result.path.glob("SupernetTrainable_*/progress.csv"):
        p = pd.read_csv(progress)
        assert list(p["budget"]) == list(range(1, len(p) + 1))
        assert list(p["rounds"]) == [p["rounds"].iloc[0] * (i + 1) for i in range(len(p))]
        sampled = p[[c for c in p if c.startswith("sampled/")]].sum(axis=1)
        trial = t[t["trial_id"] == progress.parent.name.rsplit("_", 1)[-1]].iloc[0]
        per_round = 2 if trial["config/sampler"] == "fair" else 1  # fair: a group of 2
        assert list(sampled) == [per_round * r for r in p["rounds"]]
        promoted += len(p) == 2 and p["training_iteration"].tolist() == [1, 2]
    assert promoted >= 2
