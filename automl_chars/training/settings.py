"""Training settings read from a CNN-space configuration, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from automl_chars.spaces.cnn import OPTIMIZERS, resolve


@dataclass(frozen=True)
class OptimizerSettings:
    """Optimizer and batch size. ``momentum`` applies to SGD only."""

    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-5
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.learning_rate <= 0 or self.batch_size < 1:
            raise ValueError("learning_rate must be > 0 and batch_size >= 1")

    @classmethod
    def from_config(cls, config: Mapping) -> OptimizerSettings:
        c = resolve(dict(config))
        return cls(
            optimizer=str(c["optimizer"]),
            learning_rate=float(c["learning_rate"]),
            momentum=float(c["momentum"]),
            weight_decay=float(c["weight_decay"]),
            batch_size=int(c["batch_size"]),
        )

    def make(self, model: nn.Module) -> torch.optim.Optimizer:
        """The torch optimizer over ``model``'s parameters."""
        if self.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=self.learning_rate,
                                   momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.Adam(model.parameters(), lr=self.learning_rate,
                                weight_decay=self.weight_decay)


@dataclass(frozen=True)
class AugmentSettings:
    """Random affine augmentation, drawn per image: rotation in degrees, translation as a fraction
    of the side, scale as +- relative zoom. Disabled when ``enabled`` is False."""

    enabled: bool = False
    rotation: float = 10.0
    translate: float = 0.1
    scale: float = 0.1

    @classmethod
    def from_config(cls, config: Mapping) -> AugmentSettings:
        c = resolve(dict(config))
        return cls(bool(c["augment"]), float(c["aug_rotation"]), float(c["aug_translate"]),
                   float(c["aug_scale"]))
