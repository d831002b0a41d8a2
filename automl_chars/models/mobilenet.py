"""torchvision's MobileNetV2 for small images (seed 003's other model).

Adapted for 28x28 and 32x32 images of any channel count, as MobileNetV2 is usually run on
CIFAR: the stem convolution has stride 1 (ImageNet's has 2) on the image's channels and the
second stage (24 channels) stride 1 instead of 2, so the network downsamples 8x in all, not 32x
(32x32 ends at 4x4, not 1x1). The width multiplier is torchvision's ``width_mult`` (channels
rounded to multiples of 8; the last 1x1 convolution keeps 1280 channels below 1.0). The network
is in :mod:`automl_chars.models.mobilenet_network`, imported when one is built (torchvision's
import costs seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from automl_chars.errors import InvalidConfigError

if TYPE_CHECKING:
    from automl_chars.models.mobilenet_network import MobileNetV2


@dataclass(frozen=True)
class MobileNetV2Spec:
    """Architecture of :class:`MobileNetV2`.

    Attributes:
        width: torchvision's width multiplier (1.0: 32-16-24-32-64-96-160-320 channels).
        dropout: dropout rate before the head (torchvision's default 0.2).
    """

    width: float = 1.0
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if not 0.1 <= self.width <= 4:
            raise InvalidConfigError(f"MobileNetV2 width multiplier {self.width} is outside "
                                     f"[0.1, 4].")
        if not 0 <= self.dropout < 1:
            raise InvalidConfigError(f"MobileNetV2 dropout {self.dropout} must be in [0, 1).")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> MobileNetV2Spec:
        unknown = sorted(set(data) - {"width", "dropout"})
        if unknown:
            raise InvalidConfigError(f"Unknown MobileNetV2 architecture keys {unknown}; "
                                     f"MobileNetV2Spec has width and dropout.")
        return cls(**data)


def build_mobilenetv2(spec: MobileNetV2Spec | Mapping, num_classes: int,
                      input_shape: tuple[int, int, int] = (1, 28, 28)) -> MobileNetV2:
    """Builds :class:`~automl_chars.models.mobilenet_network.MobileNetV2` for ``input_shape``
    images (any channel count)."""
    from automl_chars.models.mobilenet_network import MobileNetV2

    spec = spec if isinstance(spec, MobileNetV2Spec) else MobileNetV2Spec.from_dict(spec)
    return MobileNetV2(spec, num_classes, in_channels=input_shape[0])


def __getattr__(name: str):
    if name == "MobileNetV2":  # imported on first use: see the module docstring
        from automl_chars.models.mobilenet_network import MobileNetV2

        return MobileNetV2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
