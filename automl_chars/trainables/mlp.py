"""``MLPTrainable``: one trial of :func:`~automl_chars.spaces.mlp.mlp_space`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_chars.errors import InvalidConfigError
from automl_chars.models.cnn import FCLayerSpec
from automl_chars.models.mlp import MLPSpec
from automl_chars.spaces.mlp import MAX_MLP_LAYERS, resolve_mlp
from automl_chars.trainables.base import (
    SupervisedTrainable,
    TrialSettings,
    augment_settings,
    optimizer_settings,
)


def mlp_architecture(c: Mapping) -> MLPSpec:
    """The architecture part of a resolved MLP-space configuration; inactive widths ignored."""
    n_layers = int(c["n_layers"])
    if not 0 <= n_layers <= MAX_MLP_LAYERS:
        raise InvalidConfigError(f"n_layers={n_layers}: the MLP space defines 0 to "
                                 f"{MAX_MLP_LAYERS} hidden layers.")
    layers = tuple(FCLayerSpec(units=int(c[f"layer{j}_units"]), batchnorm=bool(c["batchnorm"]),
                               dropout=float(c["dropout"]))
                   for j in range(1, n_layers + 1))
    return MLPSpec(layers=layers, activation=str(c["activation"]))


def mlp_settings(config: Mapping) -> TrialSettings:
    """An MLP-space configuration (missing names take their defaults) as trial settings."""
    c = resolve_mlp(dict(config))
    return TrialSettings(model="mlp", arch=mlp_architecture(c), optimizer=optimizer_settings(c),
                         augment=augment_settings(c), config=c)


class MLPTrainable(SupervisedTrainable):
    """Trains a configuration of :func:`~automl_chars.spaces.mlp_space`."""

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        return mlp_settings(config)
