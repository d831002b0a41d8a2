"""The CNN builder's layers, found by breaking it on purpose: dropout in the fully connected
head, padding in the output size, and the dropout range."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec, build_cnn


def _conv(**changes):
    base = dict(channels=4, kernel_size=3, padding=0, stride=1, batchnorm=False, dropout=0.0,
                pool_size=0)
    return ConvLayerSpec(**{**base, **changes})


def test_fully_connected_dropout_is_built_where_asked():
    """A fully connected layer with dropout gets an ``nn.Dropout`` of that rate after its
    activation; one without gets none."""
    spec = CNNSpec(conv=(_conv(),), fc=(FCLayerSpec(16, False, 0.4), FCLayerSpec(8, False, 0.0)))
    model = build_cnn(spec, num_classes=3)
    drops = [m for m in model.fc if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.4]
    kinds = [type(m) for m in model.fc]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU]
    assert isinstance(model.head, nn.Linear) and model.head.in_features == 8


def test_padding_counts_on_both_sides_of_the_output_size():
    """A 3x3 convolution with padding 2 maps 28 to 30 (padding on both sides), so the head sees
    4 * 30 * 30 features."""
    model = build_cnn(CNNSpec(conv=(_conv(padding=2),)), num_classes=3)
    assert model.head.in_features == 4 * 30 * 30
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


@pytest.mark.parametrize("layer", [lambda: _conv(dropout=1.0), lambda: FCLayerSpec(8, False, 1.0)])
def test_a_dropout_rate_of_one_is_refused(layer):
    """Dropout 1.0 would zero every activation: refused as an invalid layer."""
    with pytest.raises(InvalidConfigError, match="dropout < 1"):
        layer()
