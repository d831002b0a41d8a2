"""torchvision's ResNet-18 for small grayscale images (seed 000's portfolio model).

Adapted for 1x28x28: the first convolution is 3x3 with stride 1 on the image's channels and the
first max-pool is dropped (ImageNet's 7x7/2 stem and pool would shrink 28x28 to 7x7 before the
first residual stage). A width multiplier scales every stage, so small portfolios train fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from automl_chars.errors import InvalidConfigError


@dataclass(frozen=True)
class ResNetSpec:
    """Architecture of :class:`ResNet18`.

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


def _channels(planes: int, width: float) -> int:
    return max(4, round(planes * width))


class ResNet18(ResNet):
    """torchvision's ResNet-18 (``BasicBlock`` x [2, 2, 2, 2]) with a small-image stem.

    ``features(x)``: stem, the four stages, global average pooling, dropout; ``head``: the final
    ``nn.Linear`` (torchvision's ``fc``).
    """

    def __init__(self, spec: ResNetSpec, num_classes: int, in_channels: int = 1):
        self._width = spec.width  # read by _make_layer while ResNet.__init__ builds the stages
        self._stem_pending = True
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        stem = _channels(64, spec.width)
        self.conv1 = nn.Conv2d(in_channels, stem, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.Identity()
        self.dropout = nn.Dropout(spec.dropout)
        width = _channels(512, spec.width) * BasicBlock.expansion
        del self.fc  # the head takes its place (same layer, the contract's name)
        self.head = nn.Linear(width, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if self._stem_pending:  # the first stage's input is the (scaled) stem
            self.inplanes, self._stem_pending = _channels(64, self._width), False
        return super()._make_layer(block, _channels(planes, self._width), blocks, stride, dilate)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.dropout(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_resnet18(spec: ResNetSpec | Mapping, num_classes: int,
                   input_shape: tuple[int, int, int] = (1, 28, 28)) -> ResNet18:
    """Builds :class:`ResNet18` for ``input_shape`` images (any channel count)."""
    spec = spec if isinstance(spec, ResNetSpec) else ResNetSpec.from_dict(spec)
    return ResNet18(spec, num_classes, in_channels=input_shape[0])
