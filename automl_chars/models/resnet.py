"""torchvision's ResNet-18 (seed 000's portfolio model) and ResNet-34 (seed 003's ``cifar10_1``)
for small images.

Adapted for 28x28 and 32x32 images of any channel count: the first convolution is 3x3 with stride
1 on the image's channels and the first max-pool is dropped (ImageNet's 7x7/2 stem and pool would
shrink 28x28 to 7x7 before the first residual stage), as for CIFAR in He et al.'s paper. A width
multiplier scales every stage, so small portfolios train fast. The networks themselves are in
:mod:`automl_chars.models.resnet_network`, imported when a ResNet is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from automl_chars.errors import InvalidConfigError

if TYPE_CHECKING:
    from automl_chars.models.resnet_network import ResNet18, ResNet34


@dataclass(frozen=True)
class ResNetSpec:
    """Architecture of :class:`ResNet18` and :class:`ResNet34` (the depth is the model's name).

    Attributes:
        width: multiplier of every stage's channels (1.0 = torchvision's 64-128-256-512).
        dropout: dropout rate before the head.
    """

    width: float = 1.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0625 <= self.width <= 4:
            raise InvalidConfigError(f"ResNet width multiplier {self.width} is outside "
                                     f"[0.0625, 4].")
        if not 0 <= self.dropout < 1:
            raise InvalidConfigError(f"ResNet dropout {self.dropout} must be in [0, 1).")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> ResNetSpec:
        unknown = sorted(set(data) - {"width", "dropout"})
        if unknown:
            raise InvalidConfigError(f"Unknown ResNet architecture keys {unknown}; "
                                     f"ResNetSpec has width and dropout.")
        return cls(**data)


def build_resnet18(spec: ResNetSpec | Mapping, num_classes: int,
                   input_shape: tuple[int, int, int] = (1, 28, 28)) -> ResNet18:
    """Builds :class:`~automl_chars.models.resnet_network.ResNet18` for ``input_shape`` images
    (any channel count)."""
    from automl_chars.models.resnet_network import ResNet18

    spec = spec if isinstance(spec, ResNetSpec) else ResNetSpec.from_dict(spec)
    return ResNet18(spec, num_classes, in_channels=input_shape[0])


def build_resnet34(spec: ResNetSpec | Mapping, num_classes: int,
                   input_shape: tuple[int, int, int] = (1, 28, 28)) -> ResNet34:
    """Builds :class:`~automl_chars.models.resnet_network.ResNet34` for ``input_shape`` images
    (any channel count)."""
    from automl_chars.models.resnet_network import ResNet34

    spec = spec if isinstance(spec, ResNetSpec) else ResNetSpec.from_dict(spec)
    return ResNet34(spec, num_classes, in_channels=input_shape[0])


def __getattr__(name: str):
    if name in ("ResNet18", "ResNet34"):  # imported on first use: see resnet_network's docstring
        from automl_chars.models import resnet_network

        return getattr(resnet_network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
