"""The training loop shared by every Trainable (plain PyTorch, no Ray).

Names are imported when first used (PEP 562), so that a module that needs only
:mod:`automl_chars.training.fidelity` (a replayed trial's actor) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl_chars.lazy import lazy_names

_LAZY = {
    "random_affine": "automl_chars.training.augment",
    "AutotuneSettings": "automl_chars.training.autotune",
    "autotune_lr": "automl_chars.training.autotune",
    "BatchGuard": "automl_chars.training.bsguard",
    "guarded_step": "automl_chars.training.bsguard",
    "DistanceRegularizer": "automl_chars.training.regularizers",
    "DistanceSettings": "automl_chars.training.regularizers",
    "DeviceData": "automl_chars.training.loop",
    "EpochStats": "automl_chars.training.loop",
    "disagreement": "automl_chars.training.ensemble",
    "ensemble_accuracies": "automl_chars.training.ensemble",
    "predict_proba": "automl_chars.training.ensemble",
    "PathPoint": "automl_chars.training.landscape",
    "barrier": "automl_chars.training.landscape",
    "interpolate_states": "automl_chars.training.landscape",
    "loss_path": "automl_chars.training.landscape",
    "pairwise_distances": "automl_chars.training.landscape",
    "recompute_batchnorm": "automl_chars.training.landscape",
    "evaluate": "automl_chars.training.loop",
    "rng_state": "automl_chars.training.loop",
    "set_rng_state": "automl_chars.training.loop",
    "train_epoch": "automl_chars.training.loop",
    "COST_METRICS": "automl_chars.training.objective",
    "OBJECTIVE": "automl_chars.training.objective",
    "Objective": "automl_chars.training.objective",
    "AugmentSettings": "automl_chars.training.settings",
    "OptimizerSettings": "automl_chars.training.settings",
}

if TYPE_CHECKING:
    from automl_chars.training.augment import random_affine
    from automl_chars.training.autotune import AutotuneSettings, autotune_lr
    from automl_chars.training.bsguard import BatchGuard, guarded_step
    from automl_chars.training.ensemble import disagreement, ensemble_accuracies, predict_proba
    from automl_chars.training.landscape import (
        PathPoint,
        barrier,
        interpolate_states,
        loss_path,
        pairwise_distances,
        recompute_batchnorm,
    )
    from automl_chars.training.loop import (
        DeviceData,
        EpochStats,
        evaluate,
        rng_state,
        set_rng_state,
        train_epoch,
    )
    from automl_chars.training.objective import COST_METRICS, OBJECTIVE, Objective
    from automl_chars.training.regularizers import DistanceRegularizer, DistanceSettings
    from automl_chars.training.settings import AugmentSettings, OptimizerSettings


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "COST_METRICS",
    "AugmentSettings",
    "AutotuneSettings",
    "BatchGuard",
    "DeviceData",
    "DistanceRegularizer",
    "DistanceSettings",
    "EpochStats",
    "OBJECTIVE",
    "Objective",
    "OptimizerSettings",
    "PathPoint",
    "autotune_lr",
    "barrier",
    "disagreement",
    "ensemble_accuracies",
    "evaluate",
    "guarded_step",
    "interpolate_states",
    "loss_path",
    "pairwise_distances",
    "predict_proba",
    "recompute_batchnorm",
    "random_affine",
    "rng_state",
    "set_rng_state",
    "train_epoch",
]
