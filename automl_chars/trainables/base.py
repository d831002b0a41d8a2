"""``SupervisedTrainable``: the Ray Tune class Trainable that every image classifier shares.

A subclass says only what a configuration means (:meth:`SupervisedTrainable.settings`: which
registered model with which architecture, the optimizer, the augmentation) and, if it must, how
the model is built (:meth:`SupervisedTrainable.make_model`, e.g. with pretrained weights). The
rest is here, once: the data on the trial's device, ``step()`` (one budget unit of
:func:`~automl_chars.training.train_epoch`, then validation), checkpoints that pause and resume a
trial exactly inside HyperBandForBOHB, actor reuse, and failures a retry cannot fix.

A configuration that cannot be built, or a loss that turns NaN or infinite, is not raised: the
trial reports one failed result (``val_acc`` NaN, the reason under :data:`FAILURE`), which the
scheduler stops and BOHB counts as a bad result (hpbandster scores non-finite losses as
``+inf``). Raising would make Tune retry it, which only repeats the failure.

Every trial measures its model's costs once, when the model is built (parameters, FLOPs, latency
on the trial's device: :mod:`automl_chars.models.costs`), keeps them in its checkpoints (a
resumed trial is not re-measured, nor re-judged: latency is noisy), and reports them in every
result. A measurement that fails leaves the costs NaN (the reason under :data:`COSTS_ERROR`);
with an objective, which needs them, it fails the trial. With
an :class:`~automl_chars.training.objective.Objective` (``tune.with_parameters(...,
objective=...)``) it also reports ``objective``; a model over the objective's limits trains
nothing and reports one infeasible result (the reason under :data:`INFEASIBLE`), stopped and
learned from like a failure.
"""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import ray
import torch
from ConfigSpace import ConfigurationSpace
from ray import tune
from torch import nn

from automl_chars.checkpoints import (
    CHECKPOINT_FILE,
    CHECKPOINT_FORMAT,
    load_trial_state,
    save_trial_state,
)
from automl_chars.data.dataset import Dataset
from automl_chars.errors import InvalidConfigError, TrialFailure, first_line
from automl_chars.models import build_model, check_model, num_parameters
from automl_chars.models.costs import ModelCosts, measure_costs
from automl_chars.spaces.extremes import extreme_configurations
from automl_chars.spaces.training import TRAINING_OPTIONS
from automl_chars.spaces.values import plain_value
from automl_chars.trainables.keys import COSTS_ERROR, FAILURE, INFEASIBLE, JOB
from automl_chars.training import (
    AugmentSettings,
    DeviceData,
    EpochStats,
    OptimizerSettings,
    evaluate,
    rng_state,
    set_rng_state,
    train_epoch,
)
from automl_chars.training.autotune import AutotuneResult, AutotuneSettings, autotune_lr
from automl_chars.training.bsguard import BatchGuard
from automl_chars.training.fidelity import Fidelity
from automl_chars.training.objective import COST_METRICS, OBJECTIVE, Objective
from automl_chars.training.regularizers import DistanceRegularizer, DistanceSettings, Minimum
from automl_chars.training.settings import parse_milestones

#: One job: the dataset it trains on and its configuration.
Job = tuple[Dataset, dict]


@dataclass(frozen=True)
class TrialSettings:
    """What one configuration means to the training loop, worked out once per trial.

    Attributes:
        model: a name in :data:`automl_chars.models.MODELS`.
        arch: that model's architecture (for ``"cnn"`` a :class:`~automl_chars.models.CNNSpec`);
            checkpoints store its ``to_dict()`` form, so the model is rebuilt without the space.
        optimizer: optimizer and batch size.
        augment: data augmentation.
        config: the full configuration, plain values.
    """

    model: str
    arch: Any
    optimizer: OptimizerSettings
    augment: AugmentSettings
    config: dict

    def arch_dict(self) -> Any:
        return self.arch.to_dict() if hasattr(self.arch, "to_dict") else plain_value(self.arch)


def optimizer_settings(c: Mapping, body_lr_factor: float = 1.0) -> OptimizerSettings:
    """The shared training hyperparameters of a resolved configuration (see
    :func:`~automl_chars.spaces.training.add_training_hyperparameters`) as optimizer settings."""
    return OptimizerSettings(
        optimizer=str(c["optimizer"]), learning_rate=float(c["learning_rate"]),
        momentum=float(c["momentum"]), weight_decay=float(c["weight_decay"]),
        batch_size=int(c["batch_size"]), schedule=str(c["lr_schedule"]),
        body_lr_factor=body_lr_factor,
        restart_period=_whole_number(training_option(c, "lr_restart_period")),
        restart_mult=_whole_number(training_option(c, "lr_restart_mult")),
        milestones=parse_milestones(training_option(c, "lr_milestones")),
        gamma=float(training_option(c, "lr_gamma")),
    )


def _whole_number(value: Any) -> Any:
    """A whole float (from a table or a JSON file) as an ``int``; anything else as it is, for
    the settings to refuse by name."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def augment_settings(c: Mapping) -> AugmentSettings:
    """The augmentation hyperparameters of a resolved configuration."""
    return AugmentSettings(bool(c["augment"]), float(c["aug_rotation"]),
                           float(c["aug_translate"]), float(c["aug_scale"]))


def training_option(c: Mapping, name: str) -> Any:
    """The training option ``name`` of a resolved configuration, or its default (see
    :data:`~automl_chars.spaces.training.TRAINING_OPTIONS`)."""
    return c.get(name, TRAINING_OPTIONS[name])


def batch_guard(c: Mapping) -> BatchGuard:
    """A fresh BSGuard for a trial of the resolved configuration ``c`` (``min_micro_batch``)."""
    return BatchGuard(min_micro_batch=_whole_number(training_option(c, "min_micro_batch")))


def distance_settings(c: Mapping) -> DistanceSettings:
    """The distance regularizer's settings of a resolved configuration (``dist_strength``,
    ``dist_width``, ``dist_merge``; off by default)."""
    merge = training_option(c, "dist_merge")
    if not isinstance(merge, bool):
        raise InvalidConfigError(f"dist_merge must be True or False, got {merge!r}.")
    return DistanceSettings(float(training_option(c, "dist_strength")),
                            float(training_option(c, "dist_width")), merge)


def load_minimum(minimum: Minimum | str | os.PathLike) -> Minimum:
    """A stored minimum; a checkpoint folder of a :class:`SupervisedTrainable` gives its
    model's ``state_dict``. Anything else, a folder without a readable checkpoint or a failed
    trial's checkpoint raises :class:`InvalidConfigError` naming it (checked before a sweep
    starts by :meth:`SupervisedTrainable.check_config`, and in each trial's setup)."""
    if isinstance(minimum, (str, os.PathLike)):
        path = Path(minimum) / CHECKPOINT_FILE
        if not path.is_file():
            raise InvalidConfigError(
                f"minima: {minimum} holds no {CHECKPOINT_FILE}; pass checkpoint folders of a "
                f"trial of this platform (or models, state dicts or flat parameter vectors).")
        try:
            state = load_trial_state(minimum)
        except InvalidConfigError:
            raise
        except Exception as err:  # torch's unpickler: any damage surfaces as its own error
            raise InvalidConfigError(f"minima: {path} cannot be read ({first_line(err)}); "
                                     f"pass another checkpoint folder.") from None
        if state.get(FAILURE) is not None or "state_dict" not in state:
            raise InvalidConfigError(f"{minimum} is the checkpoint of a failed trial "
                                     f"({state.get(FAILURE)}); it holds no minimum.")
        return state["state_dict"]
    if not isinstance(minimum, (torch.Tensor, nn.Module, Mapping)):
        raise InvalidConfigError(
            f"minima: {minimum!r} is not a minimum; pass checkpoint folders, models, state dicts "
            f"or flat parameter vectors.")
    return minimum


def autotune_settings(value: AutotuneSettings | Mapping | bool | None,
                      trainable: type | None = None) -> AutotuneSettings | None:
    """AutotuneLR's settings from a Trainable parameter or sweep option: None or False (off),
    True (the defaults), a dict of :class:`AutotuneSettings` fields, or the settings. Raises
    for a Trainable whose training unit is not the shared loop (``supports_autotune``)."""
    if value is None or value is False:
        return None
    if value is True:
        value = AutotuneSettings()
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - set(AutotuneSettings.__dataclass_fields__))
        if unknown:
            raise InvalidConfigError(f"Unknown AutotuneLR setting(s) {unknown}; known: "
                                     f"{sorted(AutotuneSettings.__dataclass_fields__)}.")
        value = AutotuneSettings(**value)
    if not isinstance(value, AutotuneSettings):
        raise InvalidConfigError(f"autotune_lr must be True, an AutotuneSettings or its dict, "
                                 f"got {value!r}.")
    if trainable is not None and not getattr(trainable, "supports_autotune", False):
        raise InvalidConfigError(f"{trainable.__name__} cannot tune its learning rate with "
                                 f"AutotuneLR: its training unit is not the shared loop.")
    return value


def trial_device() -> torch.device:
    """The GPU Ray assigned to this actor, or the CPU when it assigned none."""
    if torch.cuda.is_available() and ray.is_initialized() and ray.get_gpu_ids():
        return torch.device("cuda")
    return torch.device("cpu")


def config_seed(config: Mapping, seed: int) -> int:
    """A reproducible per-configuration seed (Ray's trial ids are random)."""
    return (zlib.crc32(json.dumps(dict(config), sort_keys=True, default=str).encode()) + seed) % 2**31


class SupervisedTrainable(tune.Trainable):
    """Trains one configuration on a :class:`Dataset` held in device memory.

    Pass the data and settings with ``tune.with_parameters(Cls, dataset=..., fidelity=...,
    seed=...)`` (``minima=[...]`` for the distance regularizer, ``autotune_lr=`` for
    AutotuneLR, ``objective=`` for cost limits or a reward). Reported metrics: ``val_acc``,
    ``val_loss``, ``train_acc``, ``train_loss``, ``epoch_s``, ``num_params`` (trainable
    parameters), ``budget``, ``data_fraction``, ``samples_seen``, ``device``, the model's costs
    (``params``, ``flops``, ``latency_ms``, ``throughput``:
    :data:`~automl_chars.models.costs.COST_METRICS`), and :data:`FAILURE` when the trial failed;
    with an ``objective`` also ``objective`` (and :data:`INFEASIBLE` when the model breaks its
    limits); with ``report_test=True`` (a learning-curve table's build, never a sweep: its
    searcher must not see the test split) also ``test_acc`` and ``test_loss`` of every budget
    unit. BSGuard's ``batch_shrinks`` and ``micro_batch`` (``batch_shrink_events`` after a
    shrink); with the distance regularizer on, ``distance_penalty`` and ``distance_min``;
    ``elapsed_s``, the trial's own seconds of work so far (kept across pauses and resumes;
    TensorBoard plots it against the budget, the time a sweep's scheduler kept the trial paused
    left out).
    """

    #: Whether AutotuneLR's short runs (plain ``model(x)`` steps) train this Trainable's model.
    supports_autotune: ClassVar[bool] = True
    #: The metric this Trainable reports for the scheduler and searcher.
    metric: ClassVar[str] = "val_acc"
    mode: ClassVar[str] = "max"
    #: Whether its results carry the model's costs, so that a sweep may take an objective.
    reports_costs: ClassVar[bool] = True

    # -- what a subclass defines ----------------------------------------------------------
    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        """What ``config`` means: model, architecture, optimizer, augmentation (pure, no torch
        work). ``parameters`` are the Trainable's own (``tune.with_parameters``) that give a
        configuration its meaning, e.g. a transfer's portfolio (:meth:`setting_parameters`).
        Raises :class:`InvalidConfigError` for unknown names or values out of range."""
        raise NotImplementedError

    def setting_parameters(self) -> dict[str, Any]:
        """This trial's parameters that :meth:`settings` needs (none for most Trainables)."""
        return {}

    def make_model(self, settings: TrialSettings) -> nn.Module:
        """The model of ``settings`` for this trial's dataset (override to load weights)."""
        return build_model(settings.model, settings.arch, self.dataset.num_classes,
                           self.dataset.image_shape)

    def train_unit(self, data: DeviceData) -> EpochStats:
        """One budget unit of training on ``data`` (override for another loop, e.g. a
        supernet's sampler rounds; pass it :attr:`penalty`, the distance regularizer or None);
        may raise :class:`TrialFailure`."""
        s = self.trial_settings
        return train_epoch(self.model, self.optimizer, data, s.optimizer.batch_size,
                           self.generator, s.augment, guard=self.guard, penalty=self.penalty)

    def validate(self) -> dict:
        """The validation metrics of a result: at least ``val_acc`` and ``val_loss``."""
        val_loss, val_acc = evaluate(self.model, self.val_data)
        return {"val_acc": val_acc, "val_loss": val_loss}

    def test_metrics(self) -> dict:
        """``test_acc`` and ``test_loss`` of the current model (only with ``report_test``)."""
        test_loss, test_acc = evaluate(self.model, self.test_data)
        return {"test_acc": test_acc, "test_loss": test_loss}

    def model_costs(self) -> ModelCosts | None:
        """The costs of the freshly built model, reported in every result (None: none)."""
        return measure_costs(self.model, self.dataset.image_shape)

    def extra_state(self) -> dict:
        """More trial state for checkpoints (tensors and plain values only)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restores :meth:`extra_state`."""

    def choose_device(self) -> torch.device:
        """The device this trial trains on: the GPU Ray assigned to the actor, or the CPU
        (a data-parallel worker takes the one Ray Train gave it)."""
        return trial_device()

    # -- Ray Tune's Trainable --------------------------------------------------------------
    def setup(self, config: dict, dataset: Dataset | None = None, fidelity: Fidelity = Fidelity(),
              seed: int = 0, jobs: Mapping[str, Job] | None = None,
              report_test: bool = False,
              minima: Sequence[Minimum | str | os.PathLike] | None = None,
              autotune_lr: AutotuneSettings | Mapping | None = None,
              objective: Objective | None = None) -> None:
        """``jobs`` (label -> (dataset, configuration)) lets each trial train its own dataset:
        the trial's config is then ``{JOB: label}`` (see :func:`~automl_chars.runner.trials.run_trials`).
        ``report_test``: also evaluate the test split after every budget unit. ``minima``: the
        distance regularizer's stored minima (checkpoint folders of this Trainable, models,
        state dicts or flat vectors), used when a configuration's ``dist_strength`` is > 0.
        ``autotune_lr``: AutotuneLR's settings (or their dict): the trial tunes its initial
        learning rate at the start of its first budget unit (a configuration's
        ``learning_rate`` is then ignored). ``objective``: report it, and train no model over
        its limits."""
        if not isinstance(report_test, bool):
            raise InvalidConfigError(f"report_test must be True or False, got {report_test!r}.")
        if objective is not None and not isinstance(objective, Objective):
            raise InvalidConfigError(f"objective must be an Objective, got {objective!r}.")
        self.objective = objective if objective is not None and objective.active else None
        self.jobs, self.report_test = jobs, report_test
        # Read when a configuration turns the regularizer on (_build): a checkpoint that cannot
        # be read then fails that trial with the reason, as a configuration that cannot be built.
        self.minima = list(minima or ())
        self.autotune = autotune_settings(autotune_lr, type(self))
        if jobs is not None:
            dataset, config = self._job(config)
        if dataset is None:
            raise InvalidConfigError(
                f"{type(self).__name__} needs a dataset: "
                f"tune.with_parameters({type(self).__name__}, dataset=...)."
            )
        self.fidelity, self.seed = fidelity, seed
        self.device = self.choose_device()
        self._put_data(dataset)
        self._build(config)

    def _put_data(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.train_data = DeviceData.create(dataset.x_train, dataset.y_train, self.device)
        self.val_data = DeviceData.create(dataset.x_val, dataset.y_val, self.device,
                                          self.train_data.mean, self.train_data.std)
        self.order = self.fidelity.order(dataset.y_train.numpy())
        self.test_data = (DeviceData.create(dataset.x_test, dataset.y_test, self.device,
                                            self.train_data.mean, self.train_data.std)
                          if self.report_test else None)

    def _build(self, config: dict) -> None:
        self.units_done = self.samples_seen = 0
        self.elapsed_s = 0.0
        self.autotuned: AutotuneResult | None = None
        self.results: list[dict] = []  # every unit's result, kept in checkpoints (see step)
        self.failure: str | None = None
        self.failure_reported = False
        self.model = self.optimizer = self.schedule = None
        self.guard, self.penalty = BatchGuard(), None
        self.costs: dict[str, float] = {}
        self.costs_error: str | None = None
        self.infeasible: str | None = None
        try:
            self.trial_settings = self.settings(config, **self.setting_parameters())
            self.guard = batch_guard(self.trial_settings.config)
            trial_seed = config_seed(self.trial_settings.config, self.seed)
            torch.manual_seed(trial_seed)
            # On the trial's device, so shuffling and augmentation draw without host-device copies.
            self.generator = torch.Generator(device=self.device).manual_seed(trial_seed)
            self.model = self.make_model(self.trial_settings).to(self.device)
            check_model(self.model, self.dataset.image_shape, self.dataset.num_classes)
            self.optimizer = self.trial_settings.optimizer.make(self.model)
            self.schedule = self.trial_settings.optimizer.make_schedule(
                self.optimizer, self.fidelity.max_budget)
            distance = distance_settings(self.trial_settings.config)
            if distance.enabled:
                self.minima = [load_minimum(m) for m in self.minima]
                self.penalty = DistanceRegularizer.for_model(self.model, self.minima, distance)
        except torch.cuda.OutOfMemoryError:
            raise  # the device's state, not the configuration's: Tune may retry it elsewhere
        except (InvalidConfigError, TrialFailure, ValueError, RuntimeError) as err:
            self.failure = f"configuration cannot be built: {err}"
            return
        self._measure_costs()

    def _measure_costs(self) -> None:
        """The built model's costs and, with an objective, its verdict. A measurement that fails
        (its own try: the model itself is fine) gives NaN costs and a note (:data:`COSTS_ERROR`)
        without an objective; with one, which cannot be judged without them, the trial fails."""
        try:
            costs = self.model_costs()
        except torch.cuda.OutOfMemoryError:
            raise
        except (InvalidConfigError, ValueError, RuntimeError) as err:
            reason = f"the model's costs could not be measured ({type(err).__name__}: {err})"
            if self.objective is not None:
                self.failure = f"{reason}; the sweep's objective needs them"
            else:
                self.costs = dict.fromkeys(COST_METRICS, float("nan"))
                self.costs_error = reason
            return
        self.costs = costs.metrics() if costs is not None else {}
        if self.objective is None:
            return
        if not self.costs:
            self.failure = (f"{type(self).__name__} measures no model costs, and the objective "
                            f"needs them; run it without cost limits or reward targets")
        else:
            self.infeasible = "; ".join(self.objective.violations(self.costs)) or None

    def _objective_value(self, accuracy: float) -> float:
        """The objective of a result with ``accuracy``; NaN without the costs it needs."""
        if not self.costs or not all(math.isfinite(float(v)) for v in self.costs.values()):
            return math.nan
        return self.objective.value(accuracy, self.costs)

    def step(self) -> dict:
        if self.failure is not None:
            return self._failed_result()
        start = time.perf_counter()
        if self.infeasible is not None:
            return self._failed_result(INFEASIBLE, self.infeasible)
        unit = self.units_done + 1
        idx = self.fidelity.indices(unit, self.order)
        data = self.train_data if idx is None else self.train_data.subset(torch.from_numpy(idx))
        try:
            if self.autotune is not None and self.autotuned is None:
                self._autotune(data)
            stats = self.train_unit(data)
        except TrialFailure as err:
            self.failure = f"{err} at budget {unit}"
            return self._failed_result()
        self.schedule.step()
        validation = self.validate()
        if self.test_data is not None:
            validation.update(self.test_metrics())
        self.units_done = unit
        self.samples_seen += stats.samples
        self.elapsed_s += time.perf_counter() - start
        result = {
            **validation,
            "train_acc": stats.accuracy,
            "train_loss": stats.loss,
            "epoch_s": stats.seconds,
            "num_params": num_parameters(self.model),
            "budget": unit,
            "data_fraction": self.fidelity.fraction(unit),
            "samples_seen": self.samples_seen,
            "shape_adjustments": len(getattr(self.model, "adjustments", [])),
            "device": self.device.type,
            "elapsed_s": self.elapsed_s,
            **self._autotune_metrics(),
            **self._guard_metrics(),
            **(self.penalty.report(self.model) if self.penalty is not None else {}),
            **self.costs,
            **({COSTS_ERROR: self.costs_error} if self.costs_error else {}),
            # which Ray node trained this unit: on a multi-node cluster a trial retried after
            # its node was lost shows where it went on (node_ip is one per machine, not node)
            "node_id": ray.get_runtime_context().get_node_id(),
        }
        if self.objective is not None:
            result[OBJECTIVE] = self._objective_value(result["val_acc"])
        # Checkpoints carry every unit's result: Tune uploads a trial's result files to storage
        # in the background, and a driver killed before an upload finished loses lines the
        # checkpoint (written by the trial itself) already covers (see run_trials' history).
        self.results.append(plain_value({"training_iteration": unit, **result}))
        return result

    def _autotune(self, data: DeviceData) -> None:
        """AutotuneLR on this unit's data: the optimizer and schedule start again at the
        learning rate it chose (the model's weights are untouched)."""
        s = self.trial_settings
        self.autotuned = autotune_lr(self.model, s.optimizer, data, self.val_data, self.autotune,
                                     config_seed(s.config, self.seed), s.augment, self.guard)
        self._use_learning_rate(self.autotuned.learning_rate)

    def _use_learning_rate(self, learning_rate: float) -> None:
        optimizer = replace(self.trial_settings.optimizer, learning_rate=learning_rate)
        self.trial_settings = replace(self.trial_settings, optimizer=optimizer)
        self.optimizer = optimizer.make(self.model)
        self.schedule = optimizer.make_schedule(self.optimizer, self.fidelity.max_budget)

    def _autotune_metrics(self) -> dict:
        """AutotuneLR's choice: ``autotuned_lr``, ``autotune_s`` (its seconds, inside the first
        unit's) and ``autotune_runs`` (short runs made)."""
        if self.autotuned is None:
            return {}
        return {"autotuned_lr": self.autotuned.learning_rate,
                "autotune_s": self.autotuned.seconds, "autotune_runs": len(self.autotuned.grid)}

    def _guard_metrics(self) -> dict:
        """BSGuard's record: ``batch_shrinks`` (how often the micro-batch was halved),
        ``micro_batch`` (its size now) and, after a shrink, ``batch_shrink_events``."""
        metrics = {"batch_shrinks": len(self.guard.shrinks),
                   "micro_batch": self.guard.size_for(self.trial_settings.optimizer.batch_size)}
        if self.guard.shrinks:
            metrics["batch_shrink_events"] = self.guard.describe()
        return metrics

    def _failed_result(self, key: str = FAILURE, reason: str | None = None) -> dict:
        """The failure (or, ``key`` :data:`INFEASIBLE`, the broken limits) as a result: NaN
        metrics, the costs known, the objective, BSGuard's shrinks and the reason. The first one
        leaves stopping to the scheduler (so it can count the failure at the trial's rung); a
        later one ends it."""
        nan = float("nan")
        result = {"val_acc": nan, "val_loss": nan, "train_acc": nan, "train_loss": nan,
                  "budget": self.units_done, "samples_seen": self.samples_seen,
                  "device": self.device.type, **self.costs,
                  key: self.failure if reason is None else reason,
                  "batch_shrinks": len(self.guard.shrinks)}
        if self.guard.shrinks:
            result["batch_shrink_events"] = self.guard.describe()
        if self.objective is not None:
            result[OBJECTIVE] = self._objective_value(nan)
        if self.failure_reported:
            result["done"] = True
        self.failure_reported = True
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        s = self.trial_settings if self.failure is None else None
        state = {"format": CHECKPOINT_FORMAT, "trainable": type(self).__name__,
                 "units_done": self.units_done, "samples_seen": self.samples_seen,
                 FAILURE: self.failure, "results": list(self.results),
                 "guard": self.guard.state_dict(), "elapsed_s": self.elapsed_s,
                 "autotune": self.autotuned.to_dict() if self.autotuned else None,
                 # the costs measured when the trial was built, and the verdict on them: a
                 # resumed trial keeps both (latency is noisy; a re-measure could re-judge it)
                 "costs": dict(self.costs), "costs_error": self.costs_error,
                 INFEASIBLE: self.infeasible}
        if s is not None:
            state.update(model=s.model, arch=s.arch_dict(), config=s.config,
                         state_dict=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                         schedule=self.schedule.state_dict(),
                         rng=rng_state(self.generator, self.device), extra=self.extra_state())
        save_trial_state(checkpoint_dir, state)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        try:
            trial = self.trial_name
        except AttributeError:  # a data-parallel worker's copy (its trainable names the trial)
            trial = ""
        state = load_trial_state(checkpoint_dir, trial=trial)
        self.units_done, self.samples_seen = state["units_done"], state["samples_seen"]
        self.failure = state[FAILURE]
        self.results = list(state.get("results", []))
        if "guard" in state:
            self.guard.load_state_dict(state["guard"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        if "costs" in state:  # not re-measured: the trial keeps its costs and its verdict
            self.costs, self.costs_error = dict(state["costs"]), state.get("costs_error")
            self.infeasible = state.get(INFEASIBLE)
        if state.get("autotune"):  # the tuned rate, before the optimizer's state lands on it
            self.autotuned = AutotuneResult.from_dict(state["autotune"])
            if self.failure is None:
                self._use_learning_rate(self.autotuned.learning_rate)
        if self.failure is None:
            self.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            set_rng_state(self.generator, state["rng"], self.device)
            self.load_extra_state(state.get("extra", {}))

    def reset_config(self, new_config: dict) -> bool:
        # The dataset stays on the device; only the model and optimizer are rebuilt (a job on
        # another dataset brings its own data).
        if self.jobs is not None:
            dataset, new_config = self._job(new_config)
            if dataset is not self.dataset:
                self._put_data(dataset)
        self._build(new_config)
        return True

    def _job(self, config: Mapping) -> Job:
        label = config.get(JOB)
        if label not in self.jobs:
            raise InvalidConfigError(f"Trial config {dict(config)} names no job of this run "
                                     f"({sorted(self.jobs)[:5]}...).")
        return self.jobs[label]

    # -- before a sweep and after it ------------------------------------------------------
    @classmethod
    def check_space(cls, space: ConfigurationSpace, dataset: Dataset, **parameters: Any) -> None:
        """Raises :class:`InvalidConfigError` naming the first hyperparameter value of ``space``
        that this Trainable rejects (unknown name, value out of range) or cannot build a model
        for on ``dataset``; run before Ray starts, so a bad space costs no trial."""
        for name, value, config in extreme_configurations(space):
            try:
                cls.check_config(config, dataset, **parameters)
            except (InvalidConfigError, ValueError, RuntimeError) as err:
                raise InvalidConfigError(
                    f"The search space does not fit {cls.__name__}: with {name}={value!r} "
                    f"(others at their defaults) {err} Fix that hyperparameter's range or "
                    f"choices."
                ) from None

    @classmethod
    def check_config(cls, config: Mapping, dataset: Dataset, **parameters: Any) -> None:
        """Raises if ``config`` is rejected by :meth:`settings` or its model cannot process
        ``dataset``'s images (built on the CPU, without weights)."""
        settings = cls.settings(config, **parameters)
        batch_guard(settings.config)
        model = build_model(settings.model, settings.arch, dataset.num_classes,
                            dataset.image_shape)
        check_model(model, dataset.image_shape, dataset.num_classes)
        distance = distance_settings(settings.config)
        if distance.enabled:
            minima = [load_minimum(m) for m in parameters.get("minima") or ()]
            DistanceRegularizer.for_model(model, minima, distance)

    @staticmethod
    def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset,
                            split: str = "test") -> float:
        """Accuracy on ``split`` of the model saved in a checkpoint of this Trainable."""
        return evaluate_checkpoint(checkpoint_dir, dataset, split)


def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset,
                        split: str = "test") -> float:
    """Accuracy on ``split`` of the model in a :class:`SupervisedTrainable` checkpoint, rebuilt
    from the model name and architecture the checkpoint records."""
    state = load_trial_state(checkpoint_dir)
    if state[FAILURE] is not None:
        raise InvalidConfigError(f"{checkpoint_dir} is the checkpoint of a failed trial "
                                 f"({state[FAILURE]}); it holds no model.")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = build_model(state["model"], state["arch"], dataset.num_classes, dataset.image_shape)
    net.load_state_dict(state["state_dict"])
    train = DeviceData.create(dataset.x_train, dataset.y_train, torch.device("cpu"))
    x, y = dataset.split(split)
    data = DeviceData.create(x, y, device, train.mean, train.std)
    return evaluate(net.to(device), data)[1]
