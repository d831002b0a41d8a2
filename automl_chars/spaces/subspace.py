"""Derived spaces: search some hyperparameters of a space and leave the rest at their defaults."""

from __future__ import annotations

from collections.abc import Iterable

from ConfigSpace import ConfigurationSpace

from automl_chars.errors import InvalidConfigError


def subspace(space: ConfigurationSpace, keep: Iterable[str], seed: int | None = None) -> ConfigurationSpace:
    """The hyperparameters ``keep`` of ``space`` with the conditions among them.

    Used for configuration transfer (search a few hyperparameters around an incumbent) and for
    small test sweeps. A kept hyperparameter whose parent is not kept raises, because its
    condition could no longer be expressed.
    """
    keep = list(dict.fromkeys(keep))
    unknown = [k for k in keep if k not in space]
    if unknown:
        raise InvalidConfigError(f"subspace: unknown hyperparameter(s) {unknown}.")
    out = ConfigurationSpace(seed=seed)
    out.add([space[k] for k in keep])
    for cond in space.conditions:
        parents = {p.name for p in cond.parents} if hasattr(cond, "parents") else {cond.parent.name}
        child = cond.child.name if hasattr(cond, "child") else cond.get_children()[0].name
        if child not in keep:
            continue
        missing = parents - set(keep)
        if missing:
            raise InvalidConfigError(
                f"subspace: {child!r} depends on {sorted(missing)}; keep those too."
            )
        out.add(cond)
    for forbidden in space.forbidden_clauses:
        names = {h.name for h in getattr(forbidden, "hyperparameters", [])} or {forbidden.hyperparameter.name}
        if names <= set(keep):
            out.add(forbidden)
    return out
