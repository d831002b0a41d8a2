import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError, UnknownNameError
from automl_chars.models import (
    CNNSpec,
    ConvLayerSpec,
    FCLayerSpec,
    build_cnn,
    build_model,
    check_model,
    num_parameters,
)
from automl_chars.spaces import default_config
from automl_chars.trainables.cnn import cnn_settings


def arch(config):
    """The CNN architecture of a CNN-space configuration (the trainable's conversion)."""
    return cnn_settings(config).arch


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
    model = build_cnn(arch(config), num_classes=5)
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
    model = build_cnn(arch(config), num_classes=3)
    assert model.adjustments, "expected the builder to record its shape-safe adjustments"
    assert any("padding" in a for a in model.adjustments)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


def test_default_config_needs_no_adjustment():
    assert build_cnn(arch(default_config()), 10).adjustments == []


def test_model_registry():
    assert isinstance(build_model("cnn", arch(default_config()), 4), nn.Module)
    with pytest.raises(UnknownNameError, match="cnn"):
        build_model("cnm", arch(default_config()), 4)


def test_spec_round_trips_through_plain_values():
    """Checkpoints store ``to_dict()``; the model is rebuilt from it without the space."""
    spec = CNNSpec(conv=(ConvLayerSpec(6, 3, 1, 1, True, 0.2, 2),), fc=(FCLayerSpec(20, False, 0.0),),
                   activation="tanh")
    assert CNNSpec.from_dict(spec.to_dict()) == spec
    a, b = build_cnn(spec, 4), build_cnn(spec.to_dict(), 4)
    assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]


@pytest.mark.parametrize("bad", [
    lambda: ConvLayerSpec(0, 3, 0, 1, False, 0.0, 0),
    lambda: ConvLayerSpec(4, 3, -1, 1, False, 0.0, 0),
    lambda: ConvLayerSpec(4, 3, 0, 1, False, 1.0, 0),
    lambda: FCLayerSpec(0, False, 0.0),
    lambda: CNNSpec(conv=()),
    lambda: CNNSpec(conv=(ConvLayerSpec(4, 3, 0, 1, False, 0.0, 0),), activation="gelu"),
])
def test_invalid_architectures_are_refused(bad):
    with pytest.raises(InvalidConfigError):
        bad()


def test_check_model_refuses_a_wrong_head():
    model = build_cnn(arch(default_config()), 4)
    check_model(model, (1, 28, 28), 4)
    with pytest.raises(ValueError, match=r"not \(5,\) class scores"):
        check_model(model, (1, 28, 28), 5)
    with pytest.raises(RuntimeError):  # the first linear layer was sized for 28x28 images
        check_model(model, (1, 20, 20), 4)
