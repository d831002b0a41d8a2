"""The training loop shared by every Trainable (plain PyTorch, no Ray)."""

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
