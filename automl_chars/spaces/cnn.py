"""Seed 001's conditional CNN space as a ConfigSpace ``ConfigurationSpace``.

``[CONV -> BATCHNORM? -> ACTIVATION -> DROPOUT? -> MAXPOOL?] * M ->
[FC -> BATCHNORM? -> ACTIVATION -> DROPOUT?] * K -> OUTPUT``, with ``M`` in {1, 2, 3} and ``K`` in
{0, 1, 2}. Layer ``i``'s hyperparameters are active only when ``M >= i`` (``K >= i`` for fully
connected layers); dropout rates and pool sizes only when their switch is on.
"""

from __future__ import annotations

from functools import lru_cache

from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    GreaterThanCondition,
    Integer,
)

from automl_chars.spaces.training import add_training_hyperparameters

MAX_CONV_LAYERS = 3
MAX_FC_LAYERS = 2
ACTIVATIONS = ("relu", "sigmoid", "tanh")


def _conv_layer(i: int) -> list:
    p = f"conv{i}_"
    return [
        Integer(p + "channels", (4, 64), log=True, default=8 if i == 1 else 16),
        Categorical(p + "kernel_size", [3, 5, 7], default=5),
        Integer(p + "padding", (0, 3), default=0),
        Integer(p + "stride", (1, 2), default=1),
        Categorical(p + "batchnorm", [False, True], default=False),
        Categorical(p + "dropout", [False, True], default=False),
        Float(p + "dropout_rate", (0.05, 0.6), default=0.25),
        Categorical(p + "maxpool", [False, True], default=True),
        Integer(p + "pool_size", (2, 3), default=2),
    ]


def _fc_layer(j: int) -> list:
    p = f"fc{j}_"
    return [
        Integer(p + "units", (16, 512), log=True, default=128),
        Categorical(p + "batchnorm", [False, True], default=False),
        Categorical(p + "dropout", [False, True], default=False),
        Float(p + "dropout_rate", (0.05, 0.6), default=0.25),
    ]


def cnn_space(seed: int | None = None) -> ConfigurationSpace:
    """The full conditional CNN space (48 hyperparameters).

    Its default configuration (see :func:`default_config`) is the untuned baseline of seed 001's
    final table: one 8-channel 5x5 convolution with 2x2 max-pooling, ReLU, no hidden FC layer,
    SGD (lr 1e-3, momentum 0.9, constant), batch size 128, no augmentation.
    """
    cs = ConfigurationSpace(seed=seed)
    n_conv = Integer("n_conv_layers", (1, MAX_CONV_LAYERS), default=1)
    n_fc = Integer("n_fc_layers", (0, MAX_FC_LAYERS), default=0)
    cs.add([n_conv, n_fc, Categorical("activation", list(ACTIVATIONS), default="relu")])
    add_training_hyperparameters(cs)
    for i in range(1, MAX_CONV_LAYERS + 1):
        layer = {h.name: h for h in _conv_layer(i)}
        cs.add(list(layer.values()))
        p = f"conv{i}_"
        cs.add([
            EqualsCondition(layer[p + "dropout_rate"], layer[p + "dropout"], True),
            EqualsCondition(layer[p + "pool_size"], layer[p + "maxpool"], True),
        ])
        if i > 1:  # conditions on the layer's root switches; the rest follow hierarchically
            roots = [h for n, h in layer.items() if n not in (p + "dropout_rate", p + "pool_size")]
            cs.add([GreaterThanCondition(h, n_conv, i - 1) for h in roots])
    for j in range(1, MAX_FC_LAYERS + 1):
        layer = {h.name: h for h in _fc_layer(j)}
        cs.add(list(layer.values()))
        p = f"fc{j}_"
        cs.add(EqualsCondition(layer[p + "dropout_rate"], layer[p + "dropout"], True))
        roots = [h for n, h in layer.items() if n != p + "dropout_rate"]
        cs.add([GreaterThanCondition(h, n_fc, j - 1) for h in roots])
    return cs


def default_config() -> dict:
    """The documented default configuration, as plain values (active hyperparameters only)."""
    from automl_chars.spaces.values import plain_config

    return plain_config(cnn_space().get_default_configuration())


@lru_cache(maxsize=1)
def _defaults() -> tuple[tuple[str, object], ...]:
    """Every hyperparameter's default (building the space takes tens of milliseconds)."""
    from automl_chars.spaces.values import space_defaults

    return tuple(space_defaults(cnn_space()).items())


def resolve(config: dict) -> dict:
    """A full CNN configuration: ``config``'s values over every hyperparameter's default (see
    :func:`~automl_chars.spaces.values.resolve_against`)."""
    from automl_chars.spaces.values import resolve_against

    return resolve_against(config, dict(_defaults()), "CNN space")
