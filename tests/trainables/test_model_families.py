"""The model families' Trainables on the built-in RGB glyphs (in-process; Ray initialised once):
the CNN space learns colour images, and the new families train, checkpoint and are evaluated
from their checkpoints, their models rebuilt by name for the dataset's image shape."""

from __future__ import annotations

import math

import pytest
from ray import tune

from automl_chars import data
from automl_chars.trainables import (
    CNNTrainable,
    MLPTrainable,
    MobileNetV2Trainable,
    ResNet34Trainable,
    evaluate_checkpoint,
    load_trial_state,
)
from automl_chars.training.fidelity import Fidelity

pytestmark = pytest.mark.slow


def test_the_cnn_space_learns_the_builtin_rgb_glyphs(ray_session, data_root, one_thread):
    ds = data.load("rgb-glyphs-digits", samples_per_class=60, val_per_class=10)
    config = {"optimizer": "adam", "learning_rate": 3e-3, "batch_size": 32, "n_conv_layers": 2,
              **{f"conv{i}_{k}": v for i in (1, 2) for k, v in (
                  ("channels", 8 * 2 ** i), ("kernel_size", 3), ("padding", 1),
                  ("batchnorm", True))}}
    trial = tune.with_parameters(CNNTrainable, dataset=ds, fidelity=Fidelity(max_budget=6),
                                 seed=0)(config=config)
    results = [trial.train() for _ in range(6)]
    assert trial.model.conv[0].in_channels == 3 and ds.image_shape == (3, 32, 32)
    assert results[-1]["val_acc"] > 0.25  # 10 classes: chance is 0.1
    assert results[-1]["flops"] > 0 and not results[-1]["shape_adjustments"]
    trial.stop()


FAMILIES = [
    (MLPTrainable, "mlp", {"n_layers": 1, "layer1_units": 32, "batchnorm": True}),
    (ResNet34Trainable, "resnet34", {"width": 0.125}),
    (MobileNetV2Trainable, "mobilenetv2", {"width": 0.25}),
]


@pytest.mark.parametrize("trainable, model, config", FAMILIES, ids=[f[1] for f in FAMILIES])
def test_a_family_trains_checkpoints_and_is_evaluated_on_rgb(trainable, model, config, tmp_path,
                                                             ray_session, data_root, one_thread):
    ds = data.load("rgb-glyphs-digits", samples_per_class=4, val_per_class=3, test_per_class=3)
    trial = tune.with_parameters(trainable, dataset=ds, fidelity=Fidelity(max_budget=2),
                                 seed=0)(config={**config, "batch_size": 16})
    result = trial.train()
    assert math.isfinite(result["train_loss"]) and result["num_params"] > 0
    assert "failure" not in result and result["params"] > 0
    checkpoint = trial.save(str(tmp_path / "ckpt")).checkpoint.path
    trial.stop()
    state = load_trial_state(checkpoint)
    assert state["model"] == model
    # rebuilt by its name and architecture for the dataset's 3x32x32 images
    assert evaluate_checkpoint(checkpoint, ds, "val") == pytest.approx(result["val_acc"])
