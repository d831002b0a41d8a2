"""Named experiments: a model family trained with fixed hyperparameters for a number of epochs on
a dataset, picked by name (seed 003's ``mnist1`` and ``cifar10_1``).

One is trained as one trial (``automl-chars train NAME``, ``--set key=value`` overriding fixed
values), or swept by BOHB over the hyperparameters it leaves free (``automl-chars bohb
--experiment NAME``): its :func:`experiment_spec` is the family's sweep spec searching the free
ones, every trial's configuration carrying the fixed ones. Add one with :func:`register_experiment`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    EqualsCondition,
    GreaterThanCondition,
    InCondition,
    LessThanCondition,
    NotEqualsCondition,
)

from automl_chars.errors import InvalidConfigError
from automl_chars.registry import Registry
from automl_chars.search.spec import MODEL_FAMILIES, SweepSpec, get_spec
from automl_chars.spaces.training import TRAINING_OPTIONS
from automl_chars.spaces.values import plain_value


@dataclass(frozen=True)
class NamedExperiment:
    """One named experiment.

    Attributes:
        name: what ``automl-chars train NAME`` calls it.
        dataset: a registered dataset name (``automl-chars datasets``).
        model: a model family (:data:`~automl_chars.search.spec.MODEL_FAMILIES`).
        fixed: hyperparameters of the family's space (or :data:`TRAINING_OPTIONS`) held at
            these values; the rest take the space's defaults when trained alone.
        epochs: training epochs of one trial (a sweep's budget is its preset's).
        free: the hyperparameters a BOHB sweep searches (empty: every one of the family's space
            that is not fixed, see :func:`free_hyperparameters`).
        description: one line for ``automl-chars train --list``.
        smoke_dataset: the built-in dataset ``--smoke`` trains on instead (offline, tiny).
    """

    name: str
    dataset: str
    model: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 1
    free: tuple[str, ...] = ()
    description: str = ""
    smoke_dataset: str = "glyphs-digits"

    def __post_init__(self) -> None:
        if self.model not in MODEL_FAMILIES:
            raise InvalidConfigError(f"Named experiment {self.name!r}: model {self.model!r} is "
                                     f"not a model family; pick one of {list(MODEL_FAMILIES)}.")
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise InvalidConfigError(f"Named experiment {self.name!r}: epochs must be a whole "
                                     f"number >= 1, got {self.epochs!r}.")
        object.__setattr__(self, "fixed", dict(self.fixed))
        object.__setattr__(self, "free", tuple(self.free))
        known = known_keys(self.model)
        for key in [*self.fixed, *self.free]:
            if key not in known:
                raise InvalidConfigError(unknown_key_message(key, known, self.model,
                                                             f"Named experiment {self.name!r}"))
        both = sorted(set(self.fixed) & set(self.free))
        if both:
            raise InvalidConfigError(f"Named experiment {self.name!r}: {both} are both fixed "
                                     f"and free; leave them out of one of the two.")
        get_spec(self.model).trainable.settings(self.fixed)  # values the trainable rejects

    def with_overrides(self, overrides: Mapping[str, Any]) -> NamedExperiment:
        """This experiment with ``overrides`` (typed values or ``--set`` strings, converted by
        :func:`coerce_value`) fixed over its own values."""
        typed = {k: coerce_value(self.model, k, v) for k, v in overrides.items()}
        try:
            return replace(self, fixed={**self.fixed, **typed},
                           free=tuple(n for n in self.free if n not in typed))
        except InvalidConfigError as err:
            sets = " ".join(f"{k}={v}" for k, v in overrides.items())
            raise InvalidConfigError(f"--set {sets}: {err}") from None


#: Every named experiment, by name.
EXPERIMENTS: Registry[NamedExperiment] = Registry("named experiment")


def register_experiment(experiment: NamedExperiment) -> NamedExperiment:
    """Adds ``experiment`` to :data:`EXPERIMENTS` (a taken name raises)."""
    return EXPERIMENTS.add(experiment.name, experiment)


def get_experiment(name: str | NamedExperiment) -> NamedExperiment:
    """The experiment named ``name`` (unknown names raise, suggesting the closest)."""
    return name if isinstance(name, NamedExperiment) else EXPERIMENTS.get(name)


def family_space(model: str, seed: int | None = None) -> ConfigurationSpace:
    """The model family's whole search space."""
    return get_spec(model, None, seed).space


def known_keys(model: str) -> list[str]:
    """The configuration keys a model family's trainable takes: its space's and the training
    options'."""
    return [*family_space(model), *TRAINING_OPTIONS]


def unknown_key_message(key: str, known: Sequence[str], model: str, where: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (f"{where}: {key!r} is not a hyperparameter of the {model} family.{hint} "
            f"Known: {', '.join(sorted(known))}.")


def coerce_value(model: str, key: str, value: Any) -> Any:
    """``value`` for hyperparameter ``key`` of the ``model`` family, in its type: a string (from
    ``--set``) is parsed; a categorical value must be one of its choices. Raises
    :class:`InvalidConfigError` naming the key and what it takes."""
    space = family_space(model)
    if key not in space and key not in TRAINING_OPTIONS:
        raise InvalidConfigError(unknown_key_message(key, known_keys(model), model,
                                                     f"--set {key}={value}"))
    if key in space:
        hp = space[key]
        if isinstance(hp, CategoricalHyperparameter):
            for choice in hp.choices:
                if plain_value(choice) == value or str(choice).lower() == str(value).lower():
                    return plain_value(choice)
            raise InvalidConfigError(f"--set {key}={value}: {key} is one of "
                                     f"{[plain_value(c) for c in hp.choices]}.")
        kind = type(plain_value(hp.default_value))
    else:
        kind = type(TRAINING_OPTIONS[key])
    return _parse(key, value, kind)


def _parse(key: str, value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if kind is bool:
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return lowered in ("true", "1")
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return kind(value)
    except ValueError:
        raise InvalidConfigError(f"--set {key}={value}: {key} takes {_WORDS[kind]}.") from None


_WORDS = {bool: "true or false", int: "a whole number, e.g. 128", float: "a number, e.g. 0.01"}


def parse_sets(items: Iterable[str] | None) -> dict[str, str]:
    """``--set key=value`` items as a dict of strings (a later key wins); an item without ``=``
    or with an empty key raises, naming ``--set``."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidConfigError(f"--set takes KEY=VALUE, e.g. learning_rate=0.01; got "
                                     f"{item!r}.")
        out[key.strip()] = value.strip()
    return out


def free_hyperparameters(experiment: NamedExperiment) -> list[str]:
    """What a sweep of ``experiment`` searches: its :attr:`~NamedExperiment.free` ones, else
    every hyperparameter of the family's space that is not fixed and that the fixed values
    leave active (``momentum`` with ``optimizer=sgd`` fixed; not ``layer3_units`` with
    ``n_layers=2``)."""
    if experiment.free:
        return list(experiment.free)
    space = family_space(experiment.model)
    return [n for n in space if n not in experiment.fixed
            and _activity(space, n, experiment.fixed) is not False]


def experiment_space(experiment: NamedExperiment, seed: int | None = None) -> ConfigurationSpace:
    """The space a sweep of ``experiment`` searches: its free hyperparameters, each condition
    kept among free ones and decided by the fixed values otherwise (a free hyperparameter that
    the fixed values switch off raises)."""
    space = family_space(experiment.model, seed)
    free = free_hyperparameters(experiment)
    out = ConfigurationSpace(seed=seed)
    out.add([space[n] for n in free])
    for name in free:
        activity = _activity(space, name, experiment.fixed, set(free))
        if activity is False:
            raise InvalidConfigError(
                f"Named experiment {experiment.name!r}: {name} is marked free but the fixed "
                f"values switch it off ({_parents(space, name)}); fix it or free its parent.")
        if activity is None:  # decided by free parents: keep the condition
            out.add(space.parent_conditions_of[name])
    return out


def experiment_spec(experiment: NamedExperiment, seed: int | None = None) -> SweepSpec:
    """The family's sweep spec searching ``experiment``'s free hyperparameters, with the
    fixed ones in every trial's configuration."""
    fixed = {k: v for k, v in experiment.fixed.items()
             if k not in free_hyperparameters(experiment)}
    return replace(get_spec(experiment.model, experiment_space(experiment, seed), seed),
                   fixed=fixed)


_SIMPLE = (EqualsCondition, NotEqualsCondition, InCondition, GreaterThanCondition,
           LessThanCondition)


def _activity(space: ConfigurationSpace, name: str, fixed: Mapping[str, Any],
              free: set[str] | None = None) -> bool | None:
    """Whether ``name`` is active given the ``fixed`` values: True (no condition, or its
    condition met by fixed parents), False (switched off by them), None (decided by free
    parents). A parent neither fixed nor free takes its default."""
    conditions = space.parent_conditions_of[name]
    if not conditions:
        return True
    (cond,) = conditions  # the families' spaces put one simple condition on a hyperparameter
    if not isinstance(cond, _SIMPLE):
        raise InvalidConfigError(f"{name}'s condition {cond} is not one a named experiment can "
                                 f"decide; mark its parents free.")
    parent = cond.parent.name
    if free is not None and parent in free or free is None and parent not in fixed:
        return None
    value = fixed.get(parent, plain_value(space[parent].default_value))
    if _activity(space, parent, fixed, free) is False:
        return False
    return bool(cond.satisfied_by_value({parent: value}))


def _parents(space: ConfigurationSpace, name: str) -> str:
    return "; ".join(str(c) for c in space.parent_conditions_of[name])


register_experiment(NamedExperiment(
    "mnist1", "mnist", "mlp",
    fixed={"n_layers": 2, "layer1_units": 512, "layer2_units": 512, "optimizer": "sgd",
           "momentum": 0.9, "learning_rate": 1e-2, "weight_decay": 1e-3, "batch_size": 128,
           "lr_schedule": "constant"},
    epochs=20, smoke_dataset="glyphs-digits",
    description="seed 003: SLS's MLP (two hidden layers of 512) on MNIST, SGD with momentum "
                "0.9 and weight decay 1e-3 at lr 1e-2, batch 128, 20 epochs"))

register_experiment(NamedExperiment(
    "cifar10_1", "cifar10", "resnet34",
    fixed={"width": 1.0, "optimizer": "sgd", "momentum": 0.9, "learning_rate": 1e-3,
           "weight_decay": 1e-3, "batch_size": 128, "lr_schedule": "constant"},
    epochs=100, smoke_dataset="rgb-glyphs-digits",
    description="seed 003: ResNet-34 (full width) on CIFAR-10, SGD with momentum 0.9 and "
                "weight decay 1e-3 at lr 1e-3, batch 128, 100 epochs"))


__all__ = [
    "EXPERIMENTS",
    "NamedExperiment",
    "coerce_value",
    "experiment_space",
    "experiment_spec",
    "free_hyperparameters",
    "get_experiment",
    "parse_sets",
    "register_experiment",
]
