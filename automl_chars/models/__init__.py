"""Model builders, by name: ``build_model("cnn", arch, num_classes, input_shape)``.

Registered: ``cnn`` (seed 001's space), ``mlp``, ``resnet18``, ``resnet34`` and ``mobilenetv2``
(torchvision's, adapted to small images), plus the supernet's ``supernet`` and ``subnet``. Every
one is built for the dataset's ``input_shape`` (channels, height, width): gray or RGB, 28x28 or
32x32.

``arch`` is the model's own architecture description (for ``"cnn"``, a :class:`CNNSpec` or its
dict form), never a search-space configuration: checkpoints store it to rebuild the model.

Every registered model splits the same way, which transfer and the similarity measures rely on:
``model.features(x)`` gives the penultimate features, shape ``(n, d)``, and ``model.head`` is the
``nn.Linear(d, num_classes)`` applied to them (``forward(x) == head(features(x))``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from automl_chars.models.cnn import (
    CNN,
    CNNSpec,
    ConvLayerSpec,
    FCLayerSpec,
    build_cnn,
    num_parameters,
)
from automl_chars.models.costs import (
    LatencySettings,
    ModelCosts,
    count_flops,
    count_params,
    measure_costs,
    model_device,
)
from automl_chars.models.mlp import MLP, MLPSpec, build_mlp
from automl_chars.models.mobilenet import MobileNetV2Spec, build_mobilenetv2
from automl_chars.models.resnet import ResNetSpec, build_resnet18, build_resnet34
from automl_chars.registry import Registry

ModelBuilder = Callable[..., nn.Module]
#: ``builder(arch, num_classes, input_shape) -> nn.Module`` by name.
MODELS: Registry[ModelBuilder] = Registry("model")
MODELS.add("cnn", build_cnn)
MODELS.add("mlp", build_mlp)
MODELS.add("resnet18", build_resnet18)
MODELS.add("resnet34", build_resnet34)
MODELS.add("mobilenetv2", build_mobilenetv2)


def build_model(
    name: str, arch: Any, num_classes: int, input_shape: tuple[int, int, int] = (1, 28, 28)
) -> nn.Module:
    """Builds the registered model ``name`` with architecture ``arch``."""
    return MODELS.get(name)(arch, num_classes, input_shape)


@torch.no_grad()
def check_model(model: nn.Module, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """Runs two blank images through ``model`` (evaluation mode) and checks the output shape, so
    a model that cannot process the dataset's images fails before training, with a clear message."""
    was_training = model.training
    device = model_device(model)
    try:
        out = model.eval()(torch.zeros(2, *input_shape, device=device))
    finally:
        model.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(f"the model maps {input_shape} images to outputs of shape "
                         f"{tuple(out.shape[1:])}, not ({num_classes},) class scores.")


def feature_dim(model: nn.Module) -> int:
    """Width ``d`` of ``model.features(x)`` (the head's input)."""
    return split_head(model).in_features


def split_head(model: nn.Module) -> nn.Linear:
    """The model's ``head``, checking the features/head contract of registered models."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or not callable(getattr(model, "features", None)):
        raise TypeError(f"{type(model).__name__} does not split into features(x) and an "
                        f"nn.Linear head; see automl_chars.models.")
    return head


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Gives ``model`` a new, freshly initialised head for ``num_classes`` classes (transfer to
    a dataset with other classes); the features keep their weights."""
    old = split_head(model)
    model.head = nn.Linear(old.in_features, num_classes).to(old.weight.device)
    return model


#: Networks built on torchvision, imported on first use (its import costs seconds).
_TORCHVISION_NETWORKS = {"ResNet18": "resnet_network", "ResNet34": "resnet_network",
                         "MobileNetV2": "mobilenet_network"}


def __getattr__(name: str):
    if name in _TORCHVISION_NETWORKS:
        import importlib

        module = importlib.import_module(f"{__name__}.{_TORCHVISION_NETWORKS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CNN", "CNNSpec", "ConvLayerSpec", "FCLayerSpec", "LatencySettings", "MLP", "MLPSpec",
    "MODELS", "MobileNetV2", "MobileNetV2Spec", "ModelCosts", "ResNet18", "ResNet34",
    "ResNetSpec", "build_cnn", "build_mlp", "build_mobilenetv2", "build_model", "build_resnet18",
    "build_resnet34",
    "check_model", "count_flops", "count_params", "feature_dim", "measure_costs",
    "model_device", "num_parameters", "replace_head", "split_head",
]
