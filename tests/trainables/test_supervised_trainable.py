"""SupervisedTrainable, found by breaking it on purpose: which split a checkpoint is scored
on and with which normalisation, what a CNN-space configuration means, and what a subset budget
trains on. In-process, without Ray: a Trainable is set up directly with its data."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from automl_chars.checkpoints import CHECKPOINT_FILE, CHECKPOINT_FORMAT
from automl_chars.data import from_arrays
from automl_chars.errors import InvalidConfigError
from automl_chars.models import MODELS
from automl_chars.spaces import default_config
from automl_chars.trainables import (
    FAILURE,
    CNNTrainable,
    SupervisedTrainable,
    TrialSettings,
    evaluate_checkpoint,
)
from automl_chars.trainables.cnn import cnn_settings
from automl_chars.training import AugmentSettings, OptimizerSettings
from automl_chars.training.fidelity import Fidelity


class _Threshold(nn.Module):
    """Two classes: class 1 where the normalised image's mean is above 0, else class 0 (a tie
    goes to class 0). Its answer depends on the normalisation, so a split normalised with its
    own statistics instead of the training set's gets other predictions."""

    def __init__(self, arch, num_classes, input_shape):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(m), self.w * m], 1)


if "test-threshold" not in MODELS:
    MODELS.add("test-threshold", _Threshold)


def _images(value, n):
    return np.full((n, 28, 28), value, dtype=np.uint8)


def _threshold_dataset():
    """Training pixels 0 or 255 (mean 0.5); validation and test images all at 200, above the
    training mean: labelled 1 in validation, 0 in test. With the training set's normalisation
    the model scores 1.0 on validation and 0.0 on test; normalised by their own statistics both
    collapse to 0, a tie, and the scores swap."""
    x_train = np.concatenate([_images(0, 10), _images(255, 10)])
    y_train = np.array([0] * 10 + [1] * 10)
    return from_arrays("threshold", x_train, y_train, _images(200, 6), np.zeros(6, dtype=int),
                       x_val=_images(200, 6), y_val=np.ones(6, dtype=int))


def _save_threshold_checkpoint(path):
    state = {"format": CHECKPOINT_FORMAT, "trainable": "ThresholdTrainable", "units_done": 1,
             "samples_seen": 20, FAILURE: None, "model": "test-threshold", "arch": {},
             "config": {}, "state_dict": _Threshold({}, 2, (1, 28, 28)).state_dict()}
    torch.save(state, os.path.join(path, CHECKPOINT_FILE))
    return path


def test_evaluate_checkpoint_scores_the_split_asked_for_normalised_like_training(tmp_path):
    """The split is the one asked for, and its images are normalised with the training set's
    statistics, as during training (not with the split's own)."""
    ds = _threshold_dataset()
    ckpt = _save_threshold_checkpoint(tmp_path)
    assert evaluate_checkpoint(ckpt, ds, "val") == 1.0
    assert evaluate_checkpoint(ckpt, ds, "test") == 0.0
    assert CNNTrainable.evaluate_checkpoint(ckpt, ds, "test") == 0.0


def test_the_checkpoint_of_a_failed_trial_is_refused(tmp_path):
    """A failed trial's checkpoint holds no model: evaluating it is a clear error."""
    torch.save({"format": CHECKPOINT_FORMAT, FAILURE: "diverged", "units_done": 0,
                "samples_seen": 0}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(InvalidConfigError, match="failed trial.*diverged"):
        evaluate_checkpoint(tmp_path, _threshold_dataset(), "test")


def _in_process(cls, dataset, fidelity=Fidelity(), seed=0):
    """``cls`` set up with its data directly (what ``tune.with_parameters`` does in a sweep)."""

    class Local(cls):
        def setup(self, config):
            super().setup(config, dataset=dataset, fidelity=fidelity, seed=seed)

    return Local


class ThresholdTrainable(SupervisedTrainable):
    """Trains :class:`_Threshold` with a learning rate too small to change it."""

    @classmethod
    def settings(cls, config):
        return TrialSettings("test-threshold", {}, OptimizerSettings("sgd", 1e-12, momentum=0.0,
                                                                     batch_size=8),
                             AugmentSettings(), dict(config))


def test_the_reported_validation_accuracy_uses_the_training_normalisation():
    """A trial's ``val_acc`` (what BOHB and the incumbent choice see) is computed on validation
    images normalised like the training images, so it agrees with the checkpoint's score."""
    trial = _in_process(ThresholdTrainable, _threshold_dataset())(config={})
    result = trial.train()
    assert result["val_acc"] == 1.0
    trial.stop()


def test_a_subset_budget_trains_on_its_share_of_the_data(make_dataset):
    """Budget unit k of ``subset`` trains on k / max_budget of the training set: the samples
    seen grow as N * (1 + 2 + ... + k) / max_budget, and the reported fraction matches."""
    ds = make_dataset(num_classes=4, per_class=20)
    n = len(ds.y_train)
    trial = _in_process(CNNTrainable, ds, Fidelity("subset", max_budget=4))(
        config={"batch_size": 16})
    results = [trial.train() for _ in range(4)]
    trial.stop()
    expected = np.cumsum([round(k / 4 * n) for k in (1, 2, 3, 4)])
    assert [r["samples_seen"] for r in results] == list(expected)
    assert [r["data_fraction"] for r in results] == [0.25, 0.5, 0.75, 1.0]
    assert [r["budget"] for r in results] == [1, 2, 3, 4]


def test_epoch_budgets_add_a_whole_training_set_per_unit(make_dataset):
    """With ``epochs``, every unit is one pass over the whole training set."""
    ds = make_dataset(num_classes=4, per_class=20)
    trial = _in_process(CNNTrainable, ds)(config={"batch_size": 16})
    results = [trial.train() for _ in range(2)]
    trial.stop()
    assert [r["samples_seen"] for r in results] == [len(ds.y_train), 2 * len(ds.y_train)]


# -- what a CNN-space configuration means ---------------------------------------------------------
def test_cnn_settings_map_every_optimizer_field_to_its_own_setting():
    """Momentum, weight decay, learning rate and batch size each go where they belong."""
    config = {**default_config(), "optimizer": "sgd", "learning_rate": 0.02, "momentum": 0.5,
              "weight_decay": 0.001, "batch_size": 64}
    opt = cnn_settings(config).optimizer
    assert (opt.optimizer, opt.learning_rate, opt.momentum, opt.weight_decay, opt.batch_size) == (
        "sgd", 0.02, 0.5, 0.001, 64)
    group = opt.make(nn.Linear(2, 2)).param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.02, 0.5, 0.001)


def test_cnn_settings_map_the_augmentation_fields():
    """Augmentation on/off, rotation, translation and scale each go where they belong."""
    config = {**default_config(), "augment": True, "aug_rotation": 15.0, "aug_translate": 0.2,
              "aug_scale": 0.05}
    assert cnn_settings(config).augment == AugmentSettings(True, 15.0, 0.2, 0.05)
    assert cnn_settings({**config, "augment": False}).augment.enabled is False


def test_cnn_architecture_keeps_every_layer_setting():
    """Each convolution and fully connected layer keeps its own channels, kernel, padding,
    stride, batch norm, dropout (only where switched on) and pooling."""
    config = {**default_config(), "n_conv_layers": 2, "n_fc_layers": 2,
              "conv1_channels": 16, "conv1_kernel_size": 5, "conv1_padding": 2,
              "conv1_stride": 1, "conv1_batchnorm": True, "conv1_dropout": True,
              "conv1_dropout_rate": 0.2, "conv1_maxpool": True, "conv1_pool_size": 2,
              "conv2_channels": 8, "conv2_kernel_size": 3, "conv2_padding": 0,
              "conv2_stride": 2, "conv2_batchnorm": False, "conv2_dropout": False,
              "conv2_maxpool": False,
              "fc1_units": 64, "fc1_batchnorm": True, "fc1_dropout": True, "fc1_dropout_rate": 0.4,
              "fc2_units": 32, "fc2_batchnorm": False, "fc2_dropout": False}
    arch = cnn_settings(config).arch
    c1, c2 = arch.conv
    assert (c1.channels, c1.kernel_size, c1.padding, c1.stride) == (16, 5, 2, 1)
    assert (c1.batchnorm, c1.dropout, c1.pool_size) == (True, 0.2, 2)
    assert (c2.channels, c2.kernel_size, c2.padding, c2.stride) == (8, 3, 0, 2)
    assert (c2.batchnorm, c2.dropout, c2.pool_size) == (False, 0.0, 0)
    f1, f2 = arch.fc
    assert (f1.units, f1.batchnorm, f1.dropout) == (64, True, 0.4)
    assert (f2.units, f2.batchnorm, f2.dropout) == (32, False, 0.0)
