"""``ResNetTrainable`` and ``ResNet34Trainable``: one trial of
:func:`~automl_chars.spaces.resnet.resnet_space` (the portfolio's ResNet-18) or
:func:`~automl_chars.spaces.resnet.resnet34_space`, trained from scratch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_chars.models.resnet import ResNetSpec
from automl_chars.spaces.resnet import resolve_resnet
from automl_chars.trainables.base import (
    SupervisedTrainable,
    TrialSettings,
    augment_settings,
    optimizer_settings,
)


def resnet_settings(config: Mapping, model: str = "resnet18") -> TrialSettings:
    """A configuration of ``model``'s space (``"resnet18"`` or ``"resnet34"``; missing names
    take their defaults) as trial settings."""
    c = resolve_resnet(dict(config), model)
    return TrialSettings(
        model=model, arch=ResNetSpec(width=float(c["width"]), dropout=float(c["dropout"])),
        optimizer=optimizer_settings(c), augment=augment_settings(c), config=c,
    )


class ResNetTrainable(SupervisedTrainable):
    """Trains a configuration of the ResNet-18 space from random initialisation."""

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        return resnet_settings(config)


class ResNet34Trainable(SupervisedTrainable):
    """Trains a configuration of the ResNet-34 space from random initialisation."""

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        return resnet_settings(config, "resnet34")
