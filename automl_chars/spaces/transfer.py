"""Spaces for transfer: model transfer from a portfolio (``transfer_space``) and seed 001's
configuration transfer (``config_transfer_space``: a source incumbent with a few hyperparameters
set free)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    Constant,
    Float,
    NotEqualsCondition,
)

from automl_chars.errors import InvalidConfigError
from automl_chars.spaces.training import add_training_hyperparameters
from automl_chars.spaces.values import plain_value

#: The ``source`` value that trains from random initialisation (no pretrained weights).
NO_SOURCE = "none"
#: Hyperparameters seed 001 set free when it transferred the KMNIST incumbent to K49: channel
#: counts, fully connected layers and units, batch size, plus LR schedule, optimizer and
#: augmentation, which it added to the transfer space.
SEED_001_FREE = ("conv1_channels", "conv2_channels", "conv3_channels", "n_fc_layers", "fc1_units",
                 "fc2_units", "batch_size", "lr_schedule", "optimizer", "learning_rate",
                 "augment", "aug_rotation", "aug_translate", "aug_scale")


def transfer_space(sources: Iterable[str] | Any, seed: int | None = None) -> ConfigurationSpace:
    """Model transfer from a portfolio: ``source`` (an entry, or ``"none"`` for random
    initialisation of the first entry's architecture), ``freeze`` (fraction of the feature
    layers frozen, from the input side), ``body_lr_factor`` (the pretrained part's learning
    rate relative to the head's) and the shared training hyperparameters.

    Args:
        sources: entry names, or a :class:`~automl_chars.portfolio.Portfolio`.
    """
    names = list(sources.names() if hasattr(sources, "names") else sources)
    if not names:
        raise InvalidConfigError("transfer_space needs a portfolio with at least one entry.")
    if NO_SOURCE in names:
        raise InvalidConfigError(f"A portfolio entry may not be named {NO_SOURCE!r}.")
    cs = ConfigurationSpace(seed=seed)
    source = Categorical("source", [*names, NO_SOURCE], default=names[0])
    freeze = Float("freeze", (0.0, 1.0), default=0.0)
    body_lr = Float("body_lr_factor", (0.01, 1.0), log=True, default=0.1)
    cs.add([source, freeze, body_lr, NotEqualsCondition(freeze, source, NO_SOURCE),
            NotEqualsCondition(body_lr, source, NO_SOURCE)])
    return add_training_hyperparameters(cs, optimizer="adam", schedule="cosine")


def config_transfer_space(incumbent: Mapping[str, Any], free: Iterable[str] = SEED_001_FREE,
                          space: ConfigurationSpace | None = None,
                          seed: int | None = None) -> ConfigurationSpace:
    """``space`` (the CNN space by default) with every hyperparameter fixed at the
    ``incumbent``'s value except those in ``free``, for ``run_bohb(target, space=...)``.

    Fixed hyperparameters become constants; a hyperparameter whose condition depends only on
    fixed ones is kept (unconditionally) or dropped as the incumbent decides; one whose parent is
    free keeps its condition. Hyperparameters the incumbent lacks keep the space's default.
    """
    if space is None:
        from automl_chars.spaces.cnn import cnn_space

        space = cnn_space()
    free = list(dict.fromkeys(free))
    unknown = [f for f in free if f not in space]
    if unknown:
        hints = {u: difflib.get_close_matches(u, list(space.keys()), n=2) for u in unknown}
        raise InvalidConfigError(f"config_transfer_space: unknown hyperparameter(s) {hints} "
                                 f"(unknown name: closest names).")
    extra = sorted(set(incumbent) - set(space.keys()))
    if extra:
        raise InvalidConfigError(f"The incumbent has hyperparameters {extra} that the space lacks; "
                                 f"pass the space it was tuned in.")
    value = {n: plain_value(incumbent.get(n, hp.default_value)) for n, hp in space.items()}
    conditions = {c.child.name: c for c in space.conditions}
    active: dict[str, bool] = {}

    def is_active(name: str) -> bool:
        if name not in active:
            cond = conditions.get(name)
            if cond is None or not hasattr(cond, "parent"):
                active[name] = True  # unconditional (conjunctions stay as they are)
            elif cond.parent.name in free:
                active[name] = is_active(cond.parent.name)
            else:
                active[name] = is_active(cond.parent.name) and bool(
                    cond.satisfied_by_value({cond.parent.name: value[cond.parent.name]}))
        return active[name]

    out = ConfigurationSpace(seed=seed)
    kept = [n for n in space.keys() if is_active(n)]
    out.add([space[n] if n in free else Constant(n, value[n]) for n in kept])
    for name in kept:
        cond = conditions.get(name)
        if cond is not None and hasattr(cond, "parent") and cond.parent.name in free:
            out.add(cond)
    return out

