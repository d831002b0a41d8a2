"""Model builders, by name: ``build_model("cnn", arch, num_classes)``.

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
from automl_chars.models.resnet import ResNetSpec, build_resnet18
from automl_chars.registry import Registry

ModelBuilder = Callable[..., nn.Module]
#: ``builder(arch, num_classes, input_shape) -> nn.Module`` by name.
MODELS: Registry[ModelBuilder] = Registry("model")
MODELS.add("cnn", build_cnn)
MODELS.add("resnet18", build_resnet18)


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


def __getattr__(name: str):
    if name == "ResNet18":  # torchvision is imported on first use (models.resnet_network)
        from automl_chars.models.resnet_network import ResNet18

        return ResNet18
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CNN", "CNNSpec", "ConvLayerSpec", "FCLayerSpec", "LatencySettings", "MODELS",
    "ModelCosts", "ResNet18", "ResNetSpec", "build_cnn", "build_model", "build_resnet18",
    "check_model", "count_flops", "count_params", "feature_dim", "measure_costs",
    "model_device", "num_parameters", "replace_head", "split_head",
]
