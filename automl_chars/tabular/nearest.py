"""``ConfigIndex``: the table configuration nearest to any configuration of the space.

A table holds a few hundred configurations of a 48-hyperparameter space; a searcher proposes
configurations anywhere in it. As Syne Tune does for its tabulated blackboxes (a 1-nearest-
neighbour surrogate), a replayed trial runs the table's configuration nearest to the proposal.
Each hyperparameter weighs about the same in the distance: a number on the space's own unit
scale (log where the space is), a category that differs 1, a hyperparameter active in one
configuration and not the other 1 (plus its value's difference).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ConfigSpace import CategoricalHyperparameter, ConfigurationSpace, OrdinalHyperparameter

from automl_chars.errors import InvalidConfigError
from automl_chars.spaces.values import config_key


class ConfigIndex:
    """Finds a table configuration by its values, exactly or nearest (module docstring).

    Args:
        configs: config id -> configuration (a table's ``configs``).
        space: the space they were drawn from; None allows exact lookups only.
    """

    def __init__(self, configs: Mapping[int, Mapping[str, Any]],
                 space: ConfigurationSpace | None = None):
        self.ids = sorted(configs)
        self.exact = {config_key(configs[i]): i for i in self.ids}
        self.space = space
        self.names = sorted(space.keys()) if space is not None else []
        self.matrix = (np.stack([self.encode(configs[i]) for i in self.ids])
                       if space is not None and self.ids else None)

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Per hyperparameter: whether it is active, and its value on a unit scale (a
        category's index one-hot); inactive ones are all zeros."""
        out = []
        for name in self.names:
            hp = self.space[name]
            value = config.get(name)
            if isinstance(hp, CategoricalHyperparameter):
                one_hot = np.zeros(len(hp.choices))
                if value is not None and value in hp.choices:
                    one_hot[list(hp.choices).index(value)] = np.sqrt(0.5)
                out += [float(value is not None), *one_hot]
            elif value is None:
                out += [0.0, 0.0]
            elif isinstance(hp, OrdinalHyperparameter):
                out += [1.0, list(hp.sequence).index(value) / max(1, len(hp.sequence) - 1)]
            else:
                out += [1.0, float(hp.to_vector(value))]
        return np.asarray(out, dtype=float)

    def lookup(self, config: Mapping[str, Any]) -> tuple[int, float]:
        """``(config id, distance)`` of the table configuration equal or nearest to
        ``config`` (ties go to the lowest id)."""
        cid = self.exact.get(config_key(config))
        if cid is not None:
            return cid, 0.0
        if self.matrix is None:
            raise InvalidConfigError(
                "The configuration is not in the learning-curve table, and no space was given "
                "to find its nearest one (ConfigIndex(configs, space)).")
        unknown = sorted(set(config) - set(self.names))
        if unknown:
            raise InvalidConfigError(f"The configuration has hyperparameters {unknown} the "
                                     f"table's space lacks.")
        d = np.sqrt(((self.matrix - self.encode(config)) ** 2).sum(axis=1))
        best = int(np.argmin(d))
        return self.ids[best], float(d[best])


__all__ = ["ConfigIndex"]
