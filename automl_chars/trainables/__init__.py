"""Ray Tune Trainables; the only modules besides the sweep runner that import Ray.

Names are imported when first used (PEP 562), so that a replayed trial's actor, which needs
only :mod:`automl_chars.trainables.replay`, does not import torch and the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl_chars.lazy import lazy_names

_LAZY = {
    "CHECKPOINT_FILE": "automl_chars.checkpoints",
    "COSTS_ERROR": "automl_chars.trainables.keys",
    "FAILURE": "automl_chars.trainables.keys",
    "INFEASIBLE": "automl_chars.trainables.keys",
    "JOB": "automl_chars.trainables.keys",
    "SupervisedTrainable": "automl_chars.trainables.base",
    "TrialSettings": "automl_chars.trainables.base",
    "evaluate_checkpoint": "automl_chars.trainables.base",
    "load_trial_state": "automl_chars.trainables.base",
    "trial_device": "automl_chars.trainables.base",
    "CNNTrainable": "automl_chars.trainables.cnn",
    "DataParallelTrainable": "automl_chars.trainables.data_parallel",
    "DartsTrainable": "automl_chars.trainables.darts",
    "darts_settings": "automl_chars.trainables.darts",
    "cnn_settings": "automl_chars.trainables.cnn",
    "MLPTrainable": "automl_chars.trainables.mlp",
    "mlp_settings": "automl_chars.trainables.mlp",
    "MobileNetV2Trainable": "automl_chars.trainables.mobilenet",
    "mobilenetv2_settings": "automl_chars.trainables.mobilenet",
    "ReplayTrainable": "automl_chars.trainables.replay",
    "ResNetTrainable": "automl_chars.trainables.resnet",
    "ResNet34Trainable": "automl_chars.trainables.resnet",
    "resnet_settings": "automl_chars.trainables.resnet",
    "SubnetTrainable": "automl_chars.trainables.supernet",
    "SupernetTrainable": "automl_chars.trainables.supernet",
    "TransferTrainable": "automl_chars.trainables.transfer",
    "transfer_settings": "automl_chars.trainables.transfer",
}

if TYPE_CHECKING:
    from automl_chars.checkpoints import CHECKPOINT_FILE
    from automl_chars.trainables.base import (
        SupervisedTrainable,
        TrialSettings,
        evaluate_checkpoint,
        load_trial_state,
        trial_device,
    )
    from automl_chars.trainables.cnn import CNNTrainable, cnn_settings
    from automl_chars.trainables.darts import DartsTrainable, darts_settings
    from automl_chars.trainables.data_parallel import DataParallelTrainable
    from automl_chars.trainables.keys import COSTS_ERROR, FAILURE, INFEASIBLE, JOB
    from automl_chars.trainables.mlp import MLPTrainable, mlp_settings
    from automl_chars.trainables.mobilenet import MobileNetV2Trainable, mobilenetv2_settings
    from automl_chars.trainables.replay import ReplayTrainable
    from automl_chars.trainables.resnet import (
        ResNet34Trainable,
        ResNetTrainable,
        resnet_settings,
    )
    from automl_chars.trainables.supernet import SubnetTrainable, SupernetTrainable
    from automl_chars.trainables.transfer import TransferTrainable, transfer_settings


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "CHECKPOINT_FILE", "COSTS_ERROR", "FAILURE", "INFEASIBLE", "JOB", "CNNTrainable",
    "DartsTrainable", "DataParallelTrainable", "MLPTrainable", "MobileNetV2Trainable",
    "ReplayTrainable", "ResNet34Trainable", "ResNetTrainable", "SubnetTrainable",
    "SupernetTrainable", "SupervisedTrainable", "TransferTrainable", "TrialSettings",
    "cnn_settings", "darts_settings", "evaluate_checkpoint", "load_trial_state", "mlp_settings",
    "mobilenetv2_settings", "resnet_settings",
    "transfer_settings", "trial_device",
]
