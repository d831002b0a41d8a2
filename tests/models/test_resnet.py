"""ResNet-18 for small images, and the features/head split every registered model keeps."""

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.models import (
    MODELS,
    CNNSpec,
    ConvLayerSpec,
    FCLayerSpec,
    MLPSpec,
    MobileNetV2Spec,
    ResNetSpec,
    build_model,
    feature_dim,
    replace_head,
)
from automl_chars.spaces import resnet_space
from automl_chars.supernet import SubnetSpec, SupernetSpace
from automl_chars.trainables import resnet_settings

#: A small architecture of every registered model (a new model adds its own here).
ARCHS = {"cnn": CNNSpec(conv=(ConvLayerSpec(8, 3, 1, 1, True, 0.0, 2),), fc=(FCLayerSpec(16, False, 0.0),)),
         "mlp": MLPSpec((FCLayerSpec(16, True, 0.1),)),
         "resnet18": ResNetSpec(width=0.125),
         "resnet34": ResNetSpec(width=0.0625),
         "mobilenetv2": MobileNetV2Spec(width=0.25),
         "subnet": SubnetSpec(SupernetSpace(channels=(4, 8)), (2, 1)),
         "supernet": SupernetSpace(channels=(4, 8))}  # without an arch: its largest subnet


def test_every_registered_model_has_an_architecture_here():
    # Tests may register their own models ("test-..."); the package's must all be covered.
    assert {n for n in MODELS.names() if not n.startswith("test-")} <= set(ARCHS)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_forward_is_the_head_applied_to_the_features(name):
    torch.manual_seed(0)
    model = build_model(name, ARCHS[name], num_classes=7).eval()
    x = torch.rand(3, 1, 28, 28)
    features = model.features(x)
    assert features.shape == (3, feature_dim(model))
    assert torch.allclose(model(x), model.head(features))
    replace_head(model, 4)
    assert model(x).shape == (3, 4) and torch.equal(model.features(x), features)


def test_resnet18_is_torchvisions_with_a_small_image_stem():
    model = build_model("resnet18", ResNetSpec(width=1.0), num_classes=49)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.in_channels == 1 and model.head.in_features == 512
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(11.2e6, rel=0.02)
    # 28x28 stays 28x28 through the stem and the first stage (ImageNet's would give 7x7).
    x = model.layer1(model.relu(model.bn1(model.conv1(torch.zeros(1, 1, 28, 28)))))
    assert x.shape[-2:] == (28, 28)


def test_width_scales_every_stage_and_channels_follow_the_images():
    model = build_model("resnet18", ResNetSpec(width=0.25), num_classes=10, input_shape=(3, 28, 28))
    assert model.conv1.in_channels == 3 and model.conv1.out_channels == 16
    assert model.layer4[0].conv1.out_channels == 128 and model.head.in_features == 128


def test_resnet_space_configurations_build():
    for config in resnet_space(seed=0).sample_configuration(5):
        s = resnet_settings(dict(config))
        model = build_model(s.model, s.arch, num_classes=5)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 5)
    with pytest.raises(InvalidConfigError, match="width"):
        ResNetSpec(width=8)
    with pytest.raises(InvalidConfigError, match="depth"):
        ResNetSpec.from_dict({"depth": 34})


def test_trials_and_the_cli_do_not_import_torchvision_until_a_resnet_is_built():
    """torchvision's import (every model, torch._dynamo) costs seconds in each new trial
    process; only building a ResNet may pay it."""
    import subprocess
    import sys

    code = ("import sys, automl_chars.trainables, automl_chars.search, automl_chars.cli.main\n"
            "from automl_chars.models import build_model\n"
            "build_model('mlp', {'layers': [], 'activation': 'relu'}, 3)  # no torchvision\n"
            "assert 'torchvision' not in sys.modules\n"
            "from automl_chars.models import ResNet18, build_model\n"
            "assert isinstance(build_model('resnet18', {'width': 0.0625}, 3), ResNet18)\n"
            "assert 'torchvision' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
