"""DartsTrainable in-process: a step, a pause and resume, a warm start from saved weights."""

from __future__ import annotations

import math

import pytest
import torch
from ray import tune

from automl_chars.supernet import SupernetSpace
from automl_chars.supernet.darts import ArchParameters, ArchWeights
from automl_chars.trainables import FAILURE, DartsTrainable, load_trial_state
from automl_chars.trainables.darts import checkpoint_arch_weights
from automl_chars.training.fidelity import Fidelity

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one_thread: conftest

TINY = SupernetSpace(channels=(4, 8), depths=(1, 2))
NAMES = ["(1, 1)", "(1, 2)", "(2, 1)", "(2, 2)"]
CONFIG = {"supernet": TINY.to_dict(), "batch_size": 16, "learning_rate": 0.05,
          "calib_samples": 64, "arch_learning_rate": 0.05}


def _trainable(ds, **kwargs):
    return tune.with_parameters(DartsTrainable, dataset=ds, fidelity=Fidelity("epochs", 4), seed=0,
                                **kwargs)


def test_a_step_is_an_epoch_of_bilevel_rounds_then_the_derived_subnet(ray_session, make_dataset):
    ds = make_dataset(per_class=16)  # 4 classes: 64 images, 12 validation
    t = _trainable(ds)(config=CONFIG)
    r = t.train()
    assert r["derived"] == r["leader"] and r["derived"] in NAMES
    assert r["derived"] == TINY.name(t.arch.derive())
    assert set(r["subnet_acc"]) == set(NAMES) == set(r["arch_prob"]) and r["evaluated"] == 4
    assert r["val_acc"] == r["subnet_acc"][r["derived"]]
    assert sum(r["arch_prob"].values()) == pytest.approx(1.0)
    assert r["rounds"] == -(-len(ds.y_train) // 16) and r["budget"] == 1
    weights = r["depth_weights"]
    assert set(weights) == {"block1", "block2"} and sum(weights["block1"].values()) == pytest.approx(1)
    # The architecture learnt: its weights are no longer uniform after an epoch.
    assert weights["block1"]["1"] != pytest.approx(0.5, abs=1e-6)
    assert r["params"] == r["subnet_params"][r["derived"]] and r["warm_start"] == ""
    assert t.train()["rounds"] == 2 * r["rounds"]
    t.stop()
    # Several operations: their softmaxes too, per block and sub-block position.
    ops = SupernetSpace(channels=(4, 8), depths=(1, 2), ops=("conv3", "skip"))
    t = _trainable(ds)(config={**CONFIG, "supernet": ops.to_dict(), "eval_subnets": 3})
    r = t.train()
    assert set(r["op_weights"]) == {"block1.1", "block1.2", "block2.1", "block2.2"}
    assert sum(r["op_weights"]["block2.2"].values()) == pytest.approx(1.0)
    assert r["evaluated"] == 3 and r["derived"] in r["subnet_acc"]  # derived + 2 most probable
    t.stop()


def test_paused_and_resumed_darts_continues_its_architecture_search(ray_session, make_dataset,
                                                                   tmp_path):
    ds = make_dataset(per_class=16)
    T = _trainable(ds)
    straight = T(config=CONFIG)
    reference = [straight.train() for _ in range(3)]
    paused = T(config=CONFIG)
    first = [paused.train()]
    checkpoint = paused.save(str(tmp_path / "ckpt"))
    state = load_trial_state(checkpoint.checkpoint.path)
    saved = checkpoint_arch_weights(state)
    assert saved.epochs == 1 and saved.history[0]["derived"] == first[0]["derived"]
    assert saved.dataset == ds.name
    paused.stop()
    resumed = T(config=CONFIG)
    resumed.restore(checkpoint)
    got = first + [resumed.train() for _ in range(2)]
    assert [r["budget"] for r in got] == [1, 2, 3]
    assert [r["rounds"] for r in got] == [r["rounds"] for r in reference]
    assert [r["derived"] for r in got] == [r["derived"] for r in reference]
    for a, b in zip(got, reference):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        for name in NAMES:
            assert a["arch_prob"][name] == pytest.approx(b["arch_prob"][name], rel=1e-5)
    final = resumed.save(str(tmp_path / "final")).checkpoint.path
    history = checkpoint_arch_weights(load_trial_state(final)).history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert 0.0 <= DartsTrainable.evaluate_checkpoint(final, ds) <= 1.0
    for t in (straight, resumed):
        t.stop()


def test_a_warm_start_begins_from_the_saved_architecture_weights(ray_session, make_dataset,
                                                                 tmp_path):
    arch = ArchParameters(TINY)
    with torch.no_grad():
        arch.depth[0].copy_(torch.tensor([-1.0, 2.0]))
        arch.depth[1].copy_(torch.tensor([0.5, -0.5]))
    path = ArchWeights.of(arch, dataset="neighbour").save(tmp_path / "exp" / "darts")
    ds = make_dataset(per_class=16)
    t = _trainable(ds)(config={**CONFIG, "init_arch_weights": str(path)})
    for a, b in zip(t.arch.parameters(), arch.parameters()):
        torch.testing.assert_close(a, b)
    r = t.train()
    assert r["warm_start"] == "neighbour"
    # After one epoch the weights moved from the start, not from uniform.
    p = r["depth_weights"]["block1"]["2"]
    assert p > 0.5 and not math.isclose(p, torch.softmax(torch.tensor([-1.0, 2.0]), 0)[1].item())
    t.stop()
    other = SupernetSpace(channels=(4, 8), depths=(1, 2, 3))
    bad = _trainable(ds)(config={**CONFIG, "supernet": other.to_dict(),
                                 "init_arch_weights": str(path)})
    assert "same choices" in bad.train()[FAILURE]
    bad.stop()
