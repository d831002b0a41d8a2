"""A multilayer perceptron on the flattened image (seed 003's ``mnist1`` model).

``[Linear -> BatchNorm? -> activation -> Dropout?] * K -> head``, the CNN's fully connected
blocks (:class:`~automl_chars.models.cnn.FCLayerSpec`) on ``C * H * W`` pixel inputs; with no
hidden layer it is logistic regression on the pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.models.cnn import ACTIVATION_NAMES, FCLayerSpec, fc_blocks


@dataclass(frozen=True)
class MLPSpec:
    """The MLP's architecture: its hidden layers (none: logistic regression) and activation."""

    layers: tuple[FCLayerSpec, ...] = ()
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATION_NAMES:
            raise InvalidConfigError(f"MLP activation must be one of {list(ACTIVATION_NAMES)}, "
                                     f"got {self.activation!r}.")
        if not all(isinstance(layer, FCLayerSpec) for layer in self.layers):
            raise InvalidConfigError("MLPSpec.layers must be FCLayerSpec values (units, "
                                     "batchnorm, dropout).")

    def to_dict(self) -> dict:
        """Plain values (what checkpoints store); :meth:`from_dict` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> MLPSpec:
        if set(data) != {"layers", "activation"}:
            raise InvalidConfigError(
                f"build_mlp takes an MLPSpec or its to_dict() form (keys layers, activation), "
                f"got keys {sorted(data)}; for an MLP-space configuration use "
                f"automl_chars.trainables.mlp_settings(config).arch.")
        return cls(layers=tuple(FCLayerSpec(**f) for f in data["layers"]),
                   activation=data["activation"])


class MLP(nn.Module):
    """flatten -> ``body`` (hidden blocks) -> ``head``; ``features(x)`` is everything before
    ``head`` (see :mod:`automl_chars.models`)."""

    def __init__(self, body: nn.Sequential, head: nn.Linear):
        super().__init__()
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_mlp(spec: MLPSpec | Mapping, num_classes: int,
              input_shape: tuple[int, int, int] = (1, 28, 28)) -> MLP:
    """Builds the MLP of ``spec`` for ``input_shape`` images (any channels and size)."""
    spec = spec if isinstance(spec, MLPSpec) else MLPSpec.from_dict(spec)
    channels, h, w = input_shape
    body, width = fc_blocks(channels * h * w, spec.layers, spec.activation)
    return MLP(body, nn.Linear(width, num_classes))
