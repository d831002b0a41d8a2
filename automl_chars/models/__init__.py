"""Model builders, by name: ``build_model("cnn", config, num_classes)``; more join later."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from automl_chars.models.cnn import CNN, CNNSpec, build_cnn, num_parameters
from automl_chars.registry import Registry

ModelBuilder = Callable[..., nn.Module]
#: ``builder(config, num_classes, input_shape) -> nn.Module`` by name.
MODELS: Registry[ModelBuilder] = Registry("model")
MODELS.add("cnn", build_cnn)


def build_model(
    name: str, config: Mapping, num_classes: int, input_shape: tuple[int, int, int] = (1, 28, 28)
) -> nn.Module:
    """Builds the registered model ``name`` for ``config``."""
    return MODELS.get(name)(config, num_classes, input_shape)


__all__ = ["CNN", "CNNSpec", "MODELS", "build_cnn", "build_model", "num_parameters"]
