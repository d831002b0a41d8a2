"""``MobileNetV2Trainable``: one trial of
:func:`~automl_chars.spaces.mobilenet.mobilenetv2_space`, trained from scratch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_chars.models.mobilenet import MobileNetV2Spec
from automl_chars.spaces.mobilenet import resolve_mobilenetv2
from automl_chars.trainables.base import (
    SupervisedTrainable,
    TrialSettings,
    augment_settings,
    optimizer_settings,
)


def mobilenetv2_settings(config: Mapping) -> TrialSettings:
    """A MobileNetV2-space configuration (missing names take their defaults) as trial settings."""
    c = resolve_mobilenetv2(dict(config))
    return TrialSettings(
        model="mobilenetv2",
        arch=MobileNetV2Spec(width=float(c["width"]), dropout=float(c["dropout"])),
        optimizer=optimizer_settings(c), augment=augment_settings(c), config=c,
    )


class MobileNetV2Trainable(SupervisedTrainable):
    """Trains a configuration of the MobileNetV2 space from random initialisation."""

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        return mobilenetv2_settings(config)
