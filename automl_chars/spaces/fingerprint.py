"""A search space's identity as a short hash: sweeps refuse to resume with another space, and
artifacts built over a space (a learning-curve table) refuse a space that has changed since."""

from __future__ import annotations

import hashlib
import json

from ConfigSpace import ConfigurationSpace


def space_fingerprint(space: ConfigurationSpace) -> str:
    """A short hash of the space's hyperparameters, conditions and forbidden clauses (not its
    seed), so that a resumed sweep can be refused another space."""
    data = space.to_serialized_dict()
    data.pop("name", None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["space_fingerprint"]
