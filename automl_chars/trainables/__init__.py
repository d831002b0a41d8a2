"""Ray Tune Trainables; the only modules besides the sweep runner that import Ray."""

from automl_chars.checkpoints import CHECKPOINT_FILE
from automl_chars.trainables.base import (
    FAILURE,
    SupervisedTrainable,
    TrialSettings,
    evaluate_checkpoint,
    load_trial_state,
    trial_device,
)
from automl_chars.trainables.cnn import CNNTrainable, cnn_settings
from automl_chars.trainables.replay import ReplayTrainable
from automl_chars.trainables.resnet import ResNetTrainable, resnet_settings
from automl_chars.trainables.supernet import SubnetTrainable, SupernetTrainable
from automl_chars.trainables.transfer import TransferTrainable, transfer_settings

__all__ = [
    "CHECKPOINT_FILE",
    "CNNTrainable",
    "FAILURE",
    "ReplayTrainable",
    "ResNetTrainable",
    "SubnetTrainable",
    "SupernetTrainable",
    "SupervisedTrainable",
    "TransferTrainable",
    "TrialSettings",
    "cnn_settings",
    "evaluate_checkpoint",
    "load_trial_state",
    "resnet_settings",
    "transfer_settings",
    "trial_device",
]
