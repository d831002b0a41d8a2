"""Conditions in the space checks, found by breaking them on purpose: a hyperparameter nested two
conditions deep is checked with every ancestor set so that it is active."""

from __future__ import annotations

from automl_chars.spaces import cnn_space
from automl_chars.spaces.extremes import activating, extreme_configurations


def test_a_nested_hyperparameter_is_checked_with_every_ancestor_active():
    """``conv2_dropout_rate`` needs ``conv2_dropout`` on and two convolution layers: both are set,
    so its extremes really reach the Trainable instead of being ignored as inactive."""
    space = cnn_space()
    parents = activating(space, "conv2_dropout_rate")
    assert parents["conv2_dropout"] is True and parents["n_conv_layers"] >= 2
    configs = [c for name, _, c in extreme_configurations(space) if name == "conv2_dropout_rate"]
    assert len(configs) == 2
    for config in configs:
        assert config["conv2_dropout"] is True and config["n_conv_layers"] >= 2
