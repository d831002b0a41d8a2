"""The MobileNetV2 network: torchvision's, with a small-image stem and stride (see
:mod:`automl_chars.models.mobilenet`, whose ``MobileNetV2Spec`` describes it).

A module of its own because importing torchvision costs seconds: only a trial that builds one
pays for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenetv2
from torchvision.ops.misc import Conv2dNormActivation

from automl_chars.models.mobilenet import MobileNetV2Spec

#: torchvision's inverted-residual stages (expansion t, channels c, blocks n, stride s) with the
#: second stage's stride 2 -> 1: with the stride-1 stem, 8x downsampling in all (ImageNet's: 32x).
SMALL_IMAGE_STAGES = [
    [1, 16, 1, 1],
    [6, 24, 2, 1],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


class MobileNetV2(mobilenetv2.MobileNetV2):
    """torchvision's MobileNetV2 for small images (:data:`SMALL_IMAGE_STAGES`, a stride-1 stem on
    the image's channels).

    ``features(x)``: the convolutional body (torchvision's ``features``, here ``body``), global
    average pooling, dropout; ``head``: the final ``nn.Linear`` (torchvision's classifier's).
    """

    def __init__(self, spec: MobileNetV2Spec, num_classes: int, in_channels: int = 1):
        super().__init__(num_classes=num_classes, width_mult=spec.width,
                         inverted_residual_setting=SMALL_IMAGE_STAGES, dropout=spec.dropout)
        # The contract's names (automl_chars.models): `features` is a method here, so
        # torchvision's `features` module (reachable only through _modules) becomes `body`,
        # and its classifier's linear layer `head`.
        body = self._modules.pop("features")
        dropout, head = self._modules.pop("classifier")
        stem = Conv2dNormActivation(in_channels, body[0][0].out_channels, stride=1,
                                    norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
        nn.init.kaiming_normal_(stem[0].weight, mode="fan_out")  # torchvision's initialisation
        body[0] = stem
        self.body, self.dropout, self.head = body, dropout, head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.body(x), 1)
        return self.dropout(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
