"""Configurations at the edges of a space, for checking a space against a Trainable before a sweep.

Each hyperparameter is set to each of its boundary values (lower and upper bound, every choice)
in turn, with its parents set so that it is active; the rest keep their defaults. A Trainable
that accepts all of them accepts every value of the space's ranges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ConfigSpace import ConfigurationSpace
from ConfigSpace.conditions import (
    AndConjunction,
    EqualsCondition,
    GreaterThanCondition,
    InCondition,
    LessThanCondition,
    NotEqualsCondition,
    OrConjunction,
)

from automl_chars.spaces.values import plain_config, plain_value


def boundary_values(hp) -> list[Any]:
    """The lower and upper bound of a numeric hyperparameter, every choice of a categorical or
    ordinal one, the value of a constant."""
    for attr in ("choices", "sequence"):
        if hasattr(hp, attr):
            return [plain_value(v) for v in getattr(hp, attr)]
    if hasattr(hp, "lower"):
        return [plain_value(hp.lower), plain_value(hp.upper)]
    return [plain_value(hp.value)]


def _satisfying(cond, space: ConfigurationSpace) -> Any:
    """A value of ``cond``'s parent for which the condition holds."""
    parent = space[cond.parent.name]
    values = boundary_values(parent)
    if isinstance(cond, EqualsCondition):
        return plain_value(cond.value)
    if isinstance(cond, InCondition):
        return plain_value(cond.values[0])
    if isinstance(cond, NotEqualsCondition):
        return next(v for v in values if v != plain_value(cond.value))
    if isinstance(cond, GreaterThanCondition):
        return max(values)
    if isinstance(cond, LessThanCondition):
        return min(values)
    raise TypeError(f"unsupported condition {cond!r}")


def activating(space: ConfigurationSpace, name: str) -> dict[str, Any]:
    """Values of ``name``'s ancestors that make it active (empty for an unconditional one)."""
    out: dict[str, Any] = {}
    for cond in space.conditions:
        if cond.child.name != name:  # conjunctions expose the common child too
            continue
        parts = cond.components if isinstance(cond, (AndConjunction, OrConjunction)) else [cond]
        if isinstance(cond, OrConjunction):
            parts = parts[:1]
        for part in parts:
            out.update(activating(space, part.parent.name))
            out[part.parent.name] = _satisfying(part, space)
    return out


def extreme_configurations(space: ConfigurationSpace) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """``(name, value, configuration)`` for every boundary value of every hyperparameter."""
    default = plain_config(space.get_default_configuration())
    for name, hp in space.items():
        for value in boundary_values(hp):
            yield name, value, {**default, **activating(space, name), name: value}
