"""Every model family on gray and RGB images of 28x28 and 32x32: shapes, the features/head
split, a training step; the adaptations of torchvision's ResNet-34 and MobileNetV2 to small
images; and the spaces of the new families."""

from __future__ import annotations

import pytest
import torch
import torchvision
from test_resnet import ARCHS
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.models import (
    FCLayerSpec,
    MLPSpec,
    MobileNetV2Spec,
    ResNetSpec,
    build_model,
    count_params,
    feature_dim,
    replace_head,
)
from automl_chars.spaces import mlp_space, mobilenetv2_space, resnet34_space
from automl_chars.trainables import mlp_settings, mobilenetv2_settings, resnet_settings

SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)]
#: The model families a sweep trains from scratch (the supernet's models have their own tests).
FAMILIES = ("cnn", "mlp", "resnet18", "resnet34", "mobilenetv2")


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_takes_gray_and_rgb_images_of_either_size(name, one_thread):
    torch.manual_seed(0)
    for shape in SHAPES:
        model = build_model(name, ARCHS[name], num_classes=5, input_shape=shape).eval()
        x = torch.randn(2, *shape)
        with torch.no_grad():
            features = model.features(x)
            assert features.shape == (2, feature_dim(model)) and model(x).shape == (2, 5), shape
        first = next(model.parameters())  # the input layer reads the image's channels
        assert first.shape[1] in (shape[0], shape[0] * shape[1] * shape[2]), shape


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=["1x28x28", "3x32x32"])
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_learns_with_every_layer_taking_part(name, shape, one_thread):
    torch.manual_seed(0)
    model = build_model(name, ARCHS[name], num_classes=5, input_shape=shape)
    x, y = torch.randn(4, *shape), torch.tensor([0, 1, 2, 4])
    nn.functional.cross_entropy(model(x), y).backward()
    without = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not without
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):  # the same batch: the loss must fall
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    replace_head(model, 3)
    assert model.eval()(x).shape == (4, 3)


def test_resnet34_is_torchvisions_with_a_small_image_stem(one_thread):
    model = build_model("resnet34", ResNetSpec(width=1.0), num_classes=10, input_shape=(3, 32, 32))
    assert isinstance(model, torchvision.models.ResNet)
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [3, 4, 6, 3]
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.in_channels == 3 and isinstance(model.maxpool, nn.Identity)
    # torchvision's ResNet-34 (21.8M) with a 10-class head and a 3x3 stem
    assert count_params(model) == pytest.approx(21.28e6, rel=0.01)
    x = model.layer1(model.relu(model.bn1(model.conv1(torch.zeros(1, 3, 32, 32)))))
    assert x.shape[-2:] == (32, 32)  # ImageNet's stem and pool would give 8x8


def test_resnet18_and_34_share_the_spec_and_differ_in_depth(one_thread):
    spec = ResNetSpec(width=0.125)
    r18, r34 = (build_model(n, spec.to_dict(), 4) for n in ("resnet18", "resnet34"))
    assert len(r34.layer3) == 6 and len(r18.layer3) == 2
    assert count_params(r34) > 1.8 * count_params(r18)


def test_mobilenetv2_is_torchvisions_downsampling_8x(one_thread):
    model = build_model("mobilenetv2", MobileNetV2Spec(width=1.0), 10, input_shape=(3, 32, 32))
    assert isinstance(model, torchvision.models.MobileNetV2)
    stem = model.body[0][0]
    assert stem.in_channels == 3 and stem.stride == (1, 1) and stem.out_channels == 32
    strides = [m.stride[0] for m in model.body.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert strides.count(2) == 3  # ImageNet's MobileNetV2 has 5
    for side in (28, 32):
        assert model.body(torch.zeros(1, 3, side, side)).shape == (1, 1280, 4, 4)
    # the CIFAR MobileNetV2's size: torchvision's 3.5M less the 1000-class head (1.28M)
    assert count_params(model) == pytest.approx(2.24e6, rel=0.01)
    gray = build_model("mobilenetv2", {"width": 0.25, "dropout": 0.0}, 10, (1, 28, 28))
    assert gray.body[0][0].in_channels == 1 and gray.body[0][0].out_channels == 8


def test_the_mlp_is_fully_connected_on_the_pixels():
    model = build_model("mlp", MLPSpec((FCLayerSpec(64, False, 0.0), FCLayerSpec(32, True, 0.2)),
                                       "tanh"), 10, input_shape=(3, 32, 32))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3072, 64), (64, 32), (32, 10)]
    assert any(isinstance(m, nn.Tanh) for m in model.modules())
    logistic = build_model("mlp", MLPSpec(), 10, input_shape=(1, 28, 28))
    assert feature_dim(logistic) == 784 and count_params(logistic) == 7850


def test_architectures_round_trip_and_bad_ones_are_named():
    for name in ("mlp", "resnet34", "mobilenetv2"):
        arch = ARCHS[name]
        a, b = build_model(name, arch, 3), build_model(name, arch.to_dict(), 3)
        assert a.state_dict().keys() == b.state_dict().keys()
    with pytest.raises(InvalidConfigError, match="activation"):
        MLPSpec(activation="gelu")
    with pytest.raises(InvalidConfigError, match="to_dict"):
        build_model("mlp", {"n_layers": 2}, 3)
    with pytest.raises(InvalidConfigError, match="width multiplier"):
        MobileNetV2Spec(width=0.01)
    with pytest.raises(InvalidConfigError, match=r"Unknown MobileNetV2 architecture keys \['depth'\]"):
        build_model("mobilenetv2", {"depth": 3}, 3)


@pytest.mark.parametrize("space, settings, model", [
    (mlp_space, mlp_settings, "mlp"),
    (resnet34_space, lambda c: resnet_settings(c, "resnet34"), "resnet34"),
    (mobilenetv2_space, mobilenetv2_settings, "mobilenetv2"),
], ids=["mlp", "resnet34", "mobilenetv2"])
def test_each_new_space_samples_buildable_configurations(space, settings, model, one_thread):
    cs = space(seed=0)
    default = settings({})
    assert default.model == model and default.config == {**default.config,
                                                          **dict(cs.get_default_configuration())}
    for config in cs.sample_configuration(3):
        s = settings(dict(config))
        if model != "mlp":  # the deep nets are built at their smallest width: the space's
            s = type(s)(s.model, type(s.arch)(**{**s.arch.to_dict(), "width": 0.0625
                                                 if model == "resnet34" else 0.25}),
                        s.optimizer, s.augment, s.config)
        net = build_model(s.model, s.arch, 4, (3, 32, 32))
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(InvalidConfigError, match="Unknown hyperparameter"):
        settings({"widht": 0.5})


def test_mlp_space_layers_follow_n_layers():
    cs = mlp_space(seed=1)
    for config in cs.sample_configuration(20):
        c = dict(config)
        s = mlp_settings(c)
        assert len(s.arch.layers) == c["n_layers"]
        assert all(f"layer{j}_units" in c for j in range(1, c["n_layers"] + 1))
        assert f"layer{c['n_layers'] + 1}_units" not in c
    d = mlp_settings({})
    assert [f.units for f in d.arch.layers] == [256, 256]
    assert (d.optimizer.optimizer, d.optimizer.learning_rate, d.optimizer.momentum) == ("sgd", 1e-2, 0.9)
