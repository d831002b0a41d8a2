"""Ray Tune Trainables; the only modules besides the sweep runner that import Ray."""

from automl_chars.trainables.base import (
    CHECKPOINT_FILE,
    FAILURE,
    SupervisedTrainable,
    TrialSettings,
    evaluate_checkpoint,
    load_trial_state,
    trial_device,
)
from automl_chars.trainables.cnn import CNNTrainable, cnn_settings
from automl_chars.trainables.resnet import ResNetTrainable, resnet_settings
from automl_chars.trainables.supernet import SubnetTrainable, SupernetTrainable

__all__ = [
    "CHECKPOINT_FILE",
    "CNNTrainable",
    "FAILURE",
    "ResNetTrainable",
    "SubnetTrainable",
    "SupernetTrainable",
    "SupervisedTrainable",
    "TrialSettings",
    "cnn_settings",
    "evaluate_checkpoint",
    "load_trial_state",
    "resnet_settings",
    "trial_device",
]
