"""The one place where configuration values become plain Python values.

ConfigSpace 1.x (and so ``TuneBOHB``) hands out numpy scalars (``np.str_``, ``np.int64``,
``np.bool_``); trials, result tables and saved JSON must see ``str``, ``int``, ``bool``, ``float``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np


def plain_value(value: Any) -> Any:
    """``value`` with numpy scalars, arrays and nested containers turned into Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return value


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration (dict or ``ConfigSpace.Configuration``) as a dict of plain values."""
    return {str(k): plain_value(v) for k, v in dict(config).items()}


def config_key(config: Mapping[str, Any]) -> str:
    """A configuration's identity: canonical JSON of its plain values (sorted keys). Equal
    configurations, equal keys; the results store writes each configuration as its key."""
    return json.dumps(plain_config(config), sort_keys=True, default=str)


#: Configuration keys that describe a trial rather than set a hyperparameter: the searcher adds
#: ``suggested_by`` ("model" or "random") so every trial records where its configuration came from.
SUGGESTED_BY = "suggested_by"
META_KEYS = (SUGGESTED_BY,)


def strip_meta(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the :data:`META_KEYS`."""
    return {k: v for k, v in dict(config).items() if k not in META_KEYS}


def resolve_against(config: Mapping[str, Any], defaults: Mapping[str, Any], what: str,
                    ) -> dict[str, Any]:
    """``config``'s values over ``defaults`` (every hyperparameter's default), plain values.

    Sweeps may search a subspace; the hyperparameters they leave out take the defaults. Unknown
    names raise, so a typo never passes silently. The training options every Trainable takes
    (:data:`~automl_chars.spaces.training.TRAINING_OPTIONS`) pass through when given and are
    not added when not (so a configuration without them means what it always meant).
    """
    from automl_chars.errors import InvalidConfigError
    from automl_chars.spaces.training import TRAINING_OPTIONS

    config = strip_meta(config)
    unknown = sorted(set(config) - set(defaults) - set(TRAINING_OPTIONS))
    if unknown:
        raise InvalidConfigError(
            f"Unknown hyperparameter(s) {unknown}; the {what} has {sorted(defaults)}."
        )
    return plain_config({**defaults, **config})


def space_defaults(space) -> dict[str, Any]:
    """Every hyperparameter's default value in ``space`` (active or not), plain values."""
    return {name: plain_value(hp.default_value) for name, hp in space.items()}


def typed_to_space(config: Mapping[str, Any], space) -> dict[str, Any]:
    """``config`` with each value in its hyperparameter's type in ``space``: a whole float for an
    integer hyperparameter becomes an ``int``, and a categorical or ordinal value becomes the
    choice it equals (``27.0`` -> ``27``). Values read back from tables (CSV, Parquet) lose their
    types; plain values are the contract of every trial and saved file. Values that fit no type
    are left as they are, for ConfigSpace to refuse."""
    from ConfigSpace.hyperparameters import (
        CategoricalHyperparameter,
        IntegerHyperparameter,
        OrdinalHyperparameter,
    )

    out = {}
    for name, value in config.items():
        hp = space[name] if name in space else None
        value = plain_value(value)
        if isinstance(hp, IntegerHyperparameter) and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
            choices = hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence
            value = next((plain_value(c) for c in choices if c == value), value)
        out[name] = value
    return out
