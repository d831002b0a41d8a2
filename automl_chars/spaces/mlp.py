"""The MLP's space: up to three hidden layers with their own widths, one activation, batch
normalisation and dropout for all of them, and the shared training hyperparameters.

``layer{j}_units`` is active only when ``n_layers >= j``; ``n_layers = 0`` is logistic
regression on the pixels.
"""

from __future__ import annotations

from functools import lru_cache

from ConfigSpace import Categorical, ConfigurationSpace, Float, GreaterThanCondition, Integer

from automl_chars.spaces.cnn import ACTIVATIONS
from automl_chars.spaces.training import add_training_hyperparameters

MAX_MLP_LAYERS = 3


def mlp_space(seed: int | None = None) -> ConfigurationSpace:
    """The MLP's space. Defaults: two hidden layers of 256 ReLU units, no batch norm or dropout,
    SGD with momentum 0.9 at 1e-2 and weight decay 1e-5, batch size 128 (seed 003's ``mnist1``
    training settings)."""
    cs = ConfigurationSpace(seed=seed)
    n_layers = Integer("n_layers", (0, MAX_MLP_LAYERS), default=2)
    cs.add([
        n_layers,
        Categorical("activation", list(ACTIVATIONS), default="relu"),
        Categorical("batchnorm", [False, True], default=False),
        Float("dropout", (0.0, 0.5), default=0.0),
    ])
    for j in range(1, MAX_MLP_LAYERS + 1):
        units = Integer(f"layer{j}_units", (16, 1024), log=True, default=256)
        cs.add([units, GreaterThanCondition(units, n_layers, j - 1)])
    return add_training_hyperparameters(cs, learning_rate=1e-2, optimizer="sgd")


@lru_cache(maxsize=1)
def _defaults() -> tuple[tuple[str, object], ...]:
    from automl_chars.spaces.values import space_defaults

    return tuple(space_defaults(mlp_space()).items())


def resolve_mlp(config: dict) -> dict:
    """A full MLP configuration: ``config`` over the space's defaults (unknown names raise)."""
    from automl_chars.spaces.values import resolve_against

    return resolve_against(config, dict(_defaults()), "MLP space")
