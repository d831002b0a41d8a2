"""Search spaces as ConfigSpace objects, and the boundary that turns configurations into plain values."""

from automl_chars.spaces.cnn import (
    ACTIVATIONS,
    MAX_CONV_LAYERS,
    MAX_FC_LAYERS,
    cnn_space,
    default_config,
    resolve,
)
from automl_chars.spaces.fingerprint import space_fingerprint
from automl_chars.spaces.mlp import mlp_space
from automl_chars.spaces.mobilenet import mobilenetv2_space
from automl_chars.spaces.resnet import resnet34_space, resnet_space
from automl_chars.spaces.subspace import subspace
from automl_chars.spaces.training import OPTIMIZERS, SCHEDULES, add_training_hyperparameters
from automl_chars.spaces.transfer import (
    NO_SOURCE,
    SEED_001_FREE,
    config_transfer_space,
    transfer_space,
)
from automl_chars.spaces.values import plain_config, plain_value

__all__ = [
    "ACTIVATIONS",
    "MAX_CONV_LAYERS",
    "MAX_FC_LAYERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "NO_SOURCE",
    "SEED_001_FREE",
    "add_training_hyperparameters",
    "config_transfer_space",
    "cnn_space",
    "default_config",
    "mlp_space",
    "mobilenetv2_space",
    "plain_config",
    "plain_value",
    "resnet34_space",
    "resnet_space",
    "resolve",
    "space_fingerprint",
    "subspace",
    "transfer_space",
]
