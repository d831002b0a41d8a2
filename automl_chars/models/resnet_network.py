"""The ResNet-18 and ResNet-34 networks: torchvision's ``ResNet`` with a small-image stem (see
:mod:`automl_chars.models.resnet`, whose ``ResNetSpec`` describes them).

A module of its own because importing torchvision costs seconds (it loads every model and
``torch._dynamo``): only a trial that builds a ResNet pays for it, not every CNN trial.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from automl_chars.models.resnet import ResNetSpec


def _channels(planes: int, width: float) -> int:
    return max(4, round(planes * width))


class SmallImageResNet(ResNet):
    """torchvision's ResNet of ``BasicBlock`` stages (:attr:`stages` blocks each) with a
    small-image stem: a 3x3 stride-1 convolution on the image's channels, no max-pool.

    ``features(x)``: stem, the four stages, global average pooling, dropout; ``head``: the final
    ``nn.Linear`` (torchvision's ``fc``).
    """

    stages: ClassVar[tuple[int, int, int, int]]

    def __init__(self, spec: ResNetSpec, num_classes: int, in_channels: int = 1):
        self._width = spec.width  # read by _make_layer while ResNet.__init__ builds the stages
        self._stem_pending = True
        super().__init__(BasicBlock, list(self.stages), num_classes=num_classes)
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


class ResNet18(SmallImageResNet):
    """ResNet-18: ``BasicBlock`` x [2, 2, 2, 2] (seed 000's portfolio model)."""

    stages = (2, 2, 2, 2)


class ResNet34(SmallImageResNet):
    """ResNet-34: ``BasicBlock`` x [3, 4, 6, 3] (seed 003's ``cifar10_1`` model)."""

    stages = (3, 4, 6, 3)
