"""``SweepSpec``: what a sweep trains, so one runner (:func:`~automl_chars.run_bohb`) serves every
Trainable. The CNN is the first spec (:func:`cnn_spec`); transfer and supernets are more of them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ConfigSpace import Categorical, ConfigurationSpace
from ray import tune
from ray.tune import Callback

from automl_chars.data import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.registry import Registry
from automl_chars.spaces import (
    cnn_space,
    mlp_space,
    mobilenetv2_space,
    resnet34_space,
    resnet_space,
    subspace,
)
from automl_chars.spaces.fingerprint import space_fingerprint  # its old home: kept importable
from automl_chars.spaces.supernet import darts_space, subnet_space, supernet_space
from automl_chars.spaces.transfer import transfer_space
from automl_chars.spaces.values import plain_value
from automl_chars.trainables import (
    CNNTrainable,
    DartsTrainable,
    MLPTrainable,
    MobileNetV2Trainable,
    ReplayTrainable,
    ResNet34Trainable,
    ResNetTrainable,
    SubnetTrainable,
    SupernetTrainable,
    TransferTrainable,
)

#: ``evaluate(checkpoint_dir, dataset, split) -> metric`` of a trial's checkpoint.
Evaluator = Callable[[str, Dataset, str], float]


@dataclass(frozen=True)
class SweepSpec:
    """A Trainable and everything a sweep needs to know about it.

    Attributes:
        name: recorded with the sweep (``automl_chars.json``); resuming with another is refused.
        trainable: the Ray Tune class Trainable. It receives ``dataset``, ``fidelity`` and
            ``seed`` through ``tune.with_parameters``, plus :attr:`parameters`.
        space: the ConfigSpace to search.
        metric, mode: what the scheduler and searcher optimise (the trainable's by default).
        evaluate: how the incumbent's checkpoint is scored on the test split once the sweep has
            finished (the trainable's ``evaluate_checkpoint`` by default).
        parameters: extra objects for the trainable (``tune.with_parameters``), e.g. a portfolio;
            put in Ray's object store once, not pickled per trial.
        run_setup: ``run_setup(run_folder) -> (parameters, callbacks)``: more trainable
            parameters and Tune callbacks made afresh for each run (a replay's simulated clock).
        checkpoint_frequency: a sweep's trials save a checkpoint every this many results (1: a
            resumed sweep loses no epoch); 0 saves only when the scheduler pauses a trial and
            at its end (a replay, which recomputes an epoch for free).
        learns_from: the trainable whose past results and portfolio entries a warm start draws
            on (default: :attr:`name`; a replay of a CNN table draws on the CNN's).
        fixed: hyperparameters held at these values outside :attr:`space`: merged into every
            trial's configuration (and so recorded with it), e.g. a named experiment's
            (:mod:`automl_chars.search.named`). Part of the sweep's identity.
    """

    name: str
    trainable: type[tune.Trainable]
    space: ConfigurationSpace
    metric: str = ""
    mode: str = ""
    evaluate: Evaluator | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    run_setup: Callable[[str], tuple[Mapping[str, Any], Sequence[Callback]]] | None = None
    checkpoint_frequency: int = 1
    learns_from: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Defaults from the trainable; frozen, so through object.__setattr__.
        for attr, default in (("metric", "val_acc"), ("mode", "max")):
            if not getattr(self, attr):
                object.__setattr__(self, attr, getattr(self.trainable, attr, default))
        if self.evaluate is None:
            evaluate = getattr(self.trainable, "evaluate_checkpoint", None)
            if evaluate is None:
                raise InvalidConfigError(
                    f"SweepSpec {self.name!r}: {self.trainable.__name__} has no "
                    f"evaluate_checkpoint; pass evaluate=... (how a checkpoint is scored)."
                )
            object.__setattr__(self, "evaluate", evaluate)
        if self.mode not in ("min", "max"):
            raise InvalidConfigError(f"SweepSpec {self.name!r}: mode must be 'min' or 'max', "
                                     f"got {self.mode!r}.")
        reserved = {"dataset", "fidelity", "seed", "jobs"} & set(self.parameters)
        if reserved:
            raise InvalidConfigError(
                f"SweepSpec {self.name!r}: parameters {sorted(reserved)} are set by the sweep "
                f"itself; remove them."
            )

        clash = sorted(set(self.fixed) & set(self.space))
        if clash:
            raise InvalidConfigError(f"SweepSpec {self.name!r}: {clash} are both fixed and in the "
                                     f"space searched; leave them out of one of the two.")

    def fingerprint(self) -> str:
        """What the sweep searches as a short hash: the space's fingerprint, with the fixed
        values when there are any (so a resumed sweep is refused other fixed values)."""
        space = space_fingerprint(self.space)
        if not self.fixed:
            return space
        text = json.dumps([space, plain_value(dict(self.fixed))], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def results_of(self) -> str:
        """The trainable whose results a warm start of this spec may use."""
        return self.learns_from or self.name

    def for_run(self, run_folder: str | os.PathLike) -> tuple[dict, list[Callback]]:
        """The trainable's parameters and this spec's Tune callbacks for one run in
        ``run_folder`` (the same folder, resumed, gets the same ones)."""
        extra, callbacks = self.run_setup(str(run_folder)) if self.run_setup else ({}, ())
        return {**self.parameters, **extra}, list(callbacks)

    def with_space(self, space: ConfigurationSpace | None) -> SweepSpec:
        """This spec searching ``space`` instead (unchanged when None)."""
        return self if space is None else replace(self, space=space)

    def with_autotune_lr(self, settings: Any, seed: int | None = None) -> SweepSpec:
        """This spec with AutotuneLR (``settings``: an ``AutotuneSettings``, its dict, or True;
        None or False: unchanged): ``learning_rate`` leaves the space (the rest is seeded with
        ``seed``), and every trial tunes its own at its start (see
        :mod:`automl_chars.training.autotune`)."""
        from automl_chars.trainables.base import autotune_settings

        tuned = autotune_settings(settings, self.trainable)
        if tuned is None:
            return self
        space = self.space
        if "learning_rate" in space:
            space = subspace(space, [n for n in space if n != "learning_rate"],
                             seed=seed)
        return replace(self, space=space, parameters={**self.parameters, "autotune_lr": tuned})

    def check(self, dataset: Dataset) -> None:
        """Checks the space against the trainable on ``dataset`` before Ray starts (see
        :meth:`SupervisedTrainable.check_space`); other trainables may define ``check_space``."""
        check = getattr(self.trainable, "check_space", None)
        if check is not None:
            check(self.space, dataset, **self.parameters)
        if self.fixed:
            check_config = getattr(self.trainable, "check_config", None)
            if check_config is not None:
                check_config(dict(self.fixed), dataset, **self.parameters)


#: Named sweep specs (``run_bohb(..., spec="cnn")``): ``factory(space=None) -> SweepSpec``.
SPECS: Registry[Callable[..., SweepSpec]] = Registry("sweep spec")


@SPECS.register("cnn")
def cnn_spec(space: ConfigurationSpace | None = None, seed: int | None = None) -> SweepSpec:
    """Seed 001's CNN: :class:`CNNTrainable` over :func:`cnn_space` (or ``space``)."""
    return SweepSpec("cnn", CNNTrainable, space if space is not None else cnn_space(seed))


@SPECS.register("resnet18")
def resnet18_spec(space: ConfigurationSpace | None = None, seed: int | None = None) -> SweepSpec:
    """torchvision's ResNet-18 for small images: :class:`ResNetTrainable` over
    :func:`resnet_space` (or ``space``)."""
    return SweepSpec("resnet18", ResNetTrainable,
                     space if space is not None else resnet_space(seed))


@SPECS.register("resnet34")
def resnet34_spec(space: ConfigurationSpace | None = None, seed: int | None = None) -> SweepSpec:
    """torchvision's ResNet-34 for small images: :class:`ResNet34Trainable` over
    :func:`resnet34_space` (or ``space``)."""
    return SweepSpec("resnet34", ResNet34Trainable,
                     space if space is not None else resnet34_space(seed))


@SPECS.register("mobilenetv2")
def mobilenetv2_spec(space: ConfigurationSpace | None = None,
                     seed: int | None = None) -> SweepSpec:
    """torchvision's MobileNetV2 for small images: :class:`MobileNetV2Trainable` over
    :func:`mobilenetv2_space` (or ``space``)."""
    return SweepSpec("mobilenetv2", MobileNetV2Trainable,
                     space if space is not None else mobilenetv2_space(seed))


@SPECS.register("mlp")
def mlp_spec(space: ConfigurationSpace | None = None, seed: int | None = None) -> SweepSpec:
    """A multilayer perceptron on the pixels: :class:`MLPTrainable` over :func:`mlp_space` (or
    ``space``)."""
    return SweepSpec("mlp", MLPTrainable, space if space is not None else mlp_space(seed))


#: The sweep specs that train one model family from scratch (``automl-chars bohb --model``).
MODEL_FAMILIES = ("cnn", "mlp", "resnet18", "resnet34", "mobilenetv2")


@SPECS.register("supernet")
def supernet_spec(space: ConfigurationSpace | None = None, seed: int | None = None,
                  supernet: Any = None) -> SweepSpec:
    """Seed 002's supernet: :class:`SupernetTrainable` over :func:`supernet_space` (training
    hyperparameters and the sampler); ``val_acc`` is the leading subnet's. ``supernet``: the
    architecture space (a ``SupernetSpace`` or its dict; default seed 002's 9 subnets)."""
    return SweepSpec("supernet", SupernetTrainable,
                     space if space is not None else supernet_space(seed),
                     parameters={} if supernet is None else {"supernet": supernet})


@SPECS.register("darts")
def darts_spec(space: ConfigurationSpace | None = None, seed: int | None = None,
               supernet: Any = None) -> SweepSpec:
    """DARTS over a supernet space: :class:`DartsTrainable` over :func:`darts_space` (training
    hyperparameters and the architecture optimiser's); ``val_acc`` is the derived
    architecture's. ``supernet``: the architecture space (default seed 002's 9 subnets)."""
    return SweepSpec("darts", DartsTrainable, space if space is not None else darts_space(seed),
                     parameters={} if supernet is None else {"supernet": supernet})


@SPECS.register("subnet")
def subnet_spec(space: ConfigurationSpace | None = None, seed: int | None = None) -> SweepSpec:
    """One subnet standalone (its configuration names it under ``"subnet"``):
    :class:`SubnetTrainable` over :func:`subnet_space`."""
    return SweepSpec("subnet", SubnetTrainable, space if space is not None else subnet_space(seed))


def transfer_spec(portfolio, space: ConfigurationSpace | None = None,
                  seed: int | None = None) -> SweepSpec:
    """Model transfer from ``portfolio`` (a :class:`~automl_chars.portfolio.Portfolio` or its
    folder): :class:`TransferTrainable` over :func:`transfer_space` (or ``space``)."""
    from automl_chars.portfolio import Portfolio

    if not isinstance(portfolio, Portfolio):
        portfolio = Portfolio.load(portfolio)
    return SweepSpec("transfer", TransferTrainable,
                     space if space is not None else transfer_space(portfolio, seed),
                     parameters={"portfolio": portfolio})


def replay_spec(table, space: ConfigurationSpace | None = None, seed: int | None = None,
                parallelism: int | None = 1) -> SweepSpec:
    """A sweep replayed from a learning-curve table (a ``LearningCurveTable``):
    :class:`ReplayTrainable` over the space the table was drawn from (``cnn_space(seed)``,
    checked against the table's fingerprint; or :func:`config_id_space`), each proposal running
    the table's nearest configuration. With ``parallelism`` (the trials that run at a time:
    give the sweep resources for that many), results reach Tune in the order of simulated time
    (:mod:`~automl_chars.trainables.simclock`); None replays in Ray's own order."""
    from automl_chars.tabular.nearest import ConfigIndex
    from automl_chars.trainables.replay import CONFIG_ID

    if space is None:
        space = cnn_space(seed)
    by_id = CONFIG_ID in space
    if not by_id:
        table.check_space(space)
    index = ConfigIndex(table.configs, None if by_id else space)
    return SweepSpec("replay", ReplayTrainable, space, parameters={"table": table, "index": index},
                     run_setup=None if parallelism is None else _ClockSetup(parallelism),
                     checkpoint_frequency=0, learns_from=table.manifest.trainable)


def config_id_space(table, seed: int | None = None) -> ConfigurationSpace:
    """One categorical ``config_id`` over ``table``'s configurations: a replay that searches
    configuration ids instead of the hyperparameters."""
    from automl_chars.trainables.replay import CONFIG_ID

    space = ConfigurationSpace(seed=seed)
    space.add(Categorical(CONFIG_ID, sorted(table.configs), default=min(table.configs)))
    return space


@dataclass(frozen=True)
class _ClockSetup:
    """A replayed run's simulated clock: its name (from the run's folder, so a resumed run
    finds it again) as a trainable parameter, and the callback that starts and drives it."""

    parallelism: int

    def __call__(self, run_folder: str) -> tuple[dict, list[Callback]]:
        from automl_chars.trainables.simclock import ClockCallback, clock_name

        name = clock_name(run_folder)
        return {"clock": name}, [ClockCallback(name, self.parallelism)]


def get_spec(spec: str | SweepSpec | None, space: ConfigurationSpace | None = None,
             seed: int | None = None) -> SweepSpec:
    """A spec from a name or object (default ``"cnn"``), searching ``space`` when given."""
    if isinstance(spec, SweepSpec):
        return spec.with_space(space)
    return SPECS.get(spec or "cnn")(space=space, seed=seed)


__all__ = ["MODEL_FAMILIES", "SPECS", "SweepSpec", "cnn_spec", "config_id_space", "darts_spec",
           "get_spec", "mlp_spec", "mobilenetv2_spec", "replay_spec", "resnet18_spec",
           "resnet34_spec", "space_fingerprint", "subnet_spec", "supernet_spec", "transfer_spec"]
