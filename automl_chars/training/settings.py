"""Training settings as frozen dataclasses; each Trainable fills them from its configuration."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError

#: The optimizers :meth:`OptimizerSettings.make` builds.
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class OptimizerSettings:
    """Optimizer and batch size. ``momentum`` applies to SGD only."""

    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-5
    batch_size: int = 128

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")

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

    def __post_init__(self) -> None:
        if not (0 <= self.rotation <= 180 and 0 <= self.translate <= 1 and 0 <= self.scale < 1):
            raise InvalidConfigError(
                f"augmentation out of range: rotation {self.rotation} (0-180 degrees), "
                f"translate {self.translate} (0-1), scale {self.scale} (0 to < 1)."
            )
