"""``CNNTrainable``: one trial of seed 001's CNN space as a Ray Tune class Trainable.

The CNN space's configuration is turned into the model's :class:`CNNSpec`, the optimizer and the
augmentation here, once (:meth:`CNNTrainable.settings`); training, checkpoints and failures are
:class:`~automl_chars.trainables.base.SupervisedTrainable`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_chars.errors import InvalidConfigError
from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec
from automl_chars.spaces.cnn import MAX_CONV_LAYERS, MAX_FC_LAYERS, resolve
from automl_chars.trainables.base import (
    SupervisedTrainable,
    TrialSettings,
    augment_settings,
    optimizer_settings,
)


def cnn_architecture(c: Mapping) -> CNNSpec:
    """The architecture part of a resolved CNN-space configuration; inactive keys are ignored."""
    n_conv, n_fc = int(c["n_conv_layers"]), int(c["n_fc_layers"])
    if not 1 <= n_conv <= MAX_CONV_LAYERS or not 0 <= n_fc <= MAX_FC_LAYERS:
        raise InvalidConfigError(
            f"n_conv_layers={n_conv} / n_fc_layers={n_fc}: the CNN space defines 1 to "
            f"{MAX_CONV_LAYERS} convolution and 0 to {MAX_FC_LAYERS} fully connected layers."
        )
    conv = tuple(
        ConvLayerSpec(
            channels=int(c[f"conv{i}_channels"]),
            kernel_size=int(c[f"conv{i}_kernel_size"]),
            padding=int(c[f"conv{i}_padding"]),
            stride=int(c[f"conv{i}_stride"]),
            batchnorm=bool(c[f"conv{i}_batchnorm"]),
            dropout=float(c[f"conv{i}_dropout_rate"]) if c[f"conv{i}_dropout"] else 0.0,
            pool_size=int(c[f"conv{i}_pool_size"]) if c[f"conv{i}_maxpool"] else 0,
        )
        for i in range(1, n_conv + 1)
    )
    fc = tuple(
        FCLayerSpec(
            units=int(c[f"fc{j}_units"]),
            batchnorm=bool(c[f"fc{j}_batchnorm"]),
            dropout=float(c[f"fc{j}_dropout_rate"]) if c[f"fc{j}_dropout"] else 0.0,
        )
        for j in range(1, n_fc + 1)
    )
    return CNNSpec(conv=conv, fc=fc, activation=str(c["activation"]))


def cnn_settings(config: Mapping) -> TrialSettings:
    """A CNN-space configuration (a subspace's too: missing names take their defaults) as the
    model, optimizer and augmentation settings of one trial."""
    c = resolve(dict(config))
    return TrialSettings(model="cnn", arch=cnn_architecture(c), optimizer=optimizer_settings(c),
                         augment=augment_settings(c), config=c)


class CNNTrainable(SupervisedTrainable):
    """Trains a configuration of :func:`~automl_chars.spaces.cnn_space` (seed 001's CNN)."""

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        return cnn_settings(config)
