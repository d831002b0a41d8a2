import pytest
import torch
from torch import nn

from automl_chars.errors import UnknownNameError
from automl_chars.models import build_cnn, build_model, num_parameters
from automl_chars.spaces import default_config


def _count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


def test_architecture_follows_configuration():
    config = {
        **default_config(), "n_conv_layers": 2, "n_fc_layers": 1, "activation": "tanh",
        "conv1_batchnorm": True, "conv1_dropout": True, "conv1_dropout_rate": 0.3,
        "conv2_channels": 12, "conv2_kernel_size": 3, "conv2_padding": 1, "conv2_stride": 1,
        "conv2_batchnorm": False, "conv2_dropout": False, "conv2_maxpool": False,
        "fc1_units": 32, "fc1_batchnorm": True, "fc1_dropout": False,
    }
    model = build_cnn(config, num_classes=5)
    assert _count(model, nn.Conv2d) == 2 and _count(model, nn.BatchNorm2d) == 1
    assert _count(model, nn.Dropout2d) == 1 and _count(model, nn.MaxPool2d) == 1
    assert _count(model, nn.Tanh) == 3 and _count(model, nn.BatchNorm1d) == 1
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [lin.out_features for lin in linears] == [32, 5]
    # 28 -conv5-> 24 -pool2-> 12 -conv3 pad1-> 12: the first linear layer sees 12 * 12 * 12.
    assert linears[0].in_features == 12 * 12 * 12
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 5)
    assert num_parameters(model) == sum(p.numel() for p in model.parameters())


def test_collapsing_feature_map_is_made_shape_safe_and_recorded():
    config = {**default_config(), "n_conv_layers": 3}
    for i in (1, 2, 3):
        config.update({f"conv{i}_kernel_size": 7, f"conv{i}_padding": 0, f"conv{i}_stride": 2,
                       f"conv{i}_maxpool": True, f"conv{i}_pool_size": 3})
    model = build_cnn(config, num_classes=3)
    assert model.adjustments, "expected the builder to record its shape-safe adjustments"
    assert any("padding" in a for a in model.adjustments)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


def test_default_config_needs_no_adjustment():
    assert build_cnn(default_config(), 10).adjustments == []


def test_model_registry():
    assert isinstance(build_model("cnn", default_config(), 4), nn.Module)
    with pytest.raises(UnknownNameError, match="cnn"):
        build_model("cnm", default_config(), 4)
