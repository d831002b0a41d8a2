"""The training loop shared by every Trainable (plain PyTorch, no Ray).

Names are imported when first used (PEP 562), so that a module that needs only
:mod:`automl_chars.training.fidelity` (a replayed trial's actor) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "random_affine": "automl_chars.training.augment",
    "DeviceData": "automl_chars.training.loop",
    "EpochStats": "automl_chars.training.loop",
    "evaluate": "automl_chars.training.loop",
    "rng_state": "automl_chars.training.loop",
    "set_rng_state": "automl_chars.training.loop",
    "train_epoch": "automl_chars.training.loop",
    "AugmentSettings": "automl_chars.training.settings",
    "OptimizerSettings": "automl_chars.training.settings",
}

if TYPE_CHECKING:
    from automl_chars.training.augment import random_affine
    from automl_chars.training.loop import (
        DeviceData,
        EpochStats,
        evaluate,
        rng_state,
        set_rng_state,
        train_epoch,
    )
    from automl_chars.training.settings import AugmentSettings, OptimizerSettings


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AugmentSettings",
    "DeviceData",
    "EpochStats",
    "OptimizerSettings",
    "evaluate",
    "random_affine",
    "rng_state",
    "set_rng_state",
    "train_epoch",
]
