"""``SupernetTrainable`` (one budget unit = one epoch of sampler rounds, then every subnet on the
validation split) and ``SubnetTrainable`` (one subnet standalone, optionally starting from a
supernet checkpoint's weights: top-k fine-tuning).

Both are :class:`~automl_chars.trainables.base.SupervisedTrainable`: data on the device,
checkpoints, pause/resume, actor reuse and failures are the base class's. The supernet overrides
only its training unit, its validation and the sampler's extra checkpoint state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from automl_chars.data.dataset import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.models import build_model
from automl_chars.models.costs import ModelCosts
from automl_chars.spaces.supernet import resolve_supernet
from automl_chars.supernet.model import SubnetSpec, Supernet, recalibrate_bn
from automl_chars.supernet.samplers import PruneSettings, SamplerSettings, make_sampler
from automl_chars.supernet.select import measure_subnet_costs
from automl_chars.supernet.space import SupernetSpace
from automl_chars.supernet.training import (
    SupernetEvalSettings,
    calibration_images,
    evaluate_subnet,
    subnets_to_evaluate,
    train_supernet_epoch,
)
from automl_chars.trainables.base import (
    FAILURE,
    SupervisedTrainable,
    TrialSettings,
    augment_settings,
    config_seed,
    load_trial_state,
    optimizer_settings,
)
from automl_chars.training import DeviceData, EpochStats


@dataclass(frozen=True)
class SupernetTrialSettings(TrialSettings):
    """:class:`TrialSettings` plus the sampler's and the evaluation's."""

    sampler: SamplerSettings = SamplerSettings()
    evaluation: SupernetEvalSettings = SupernetEvalSettings()


def supernet_settings(config: Mapping) -> SupernetTrialSettings:
    """A supernet configuration (see :func:`~automl_chars.spaces.supernet.supernet_space`) as
    the trial's model, optimizer, sampler and evaluation settings."""
    c = resolve_supernet(dict(config), "supernet")
    prune = PruneSettings(enabled=bool(c["prune"]), warmup=int(c["prune_warmup"]),
                          margin=float(c["prune_margin"]))
    sampler = SamplerSettings(str(c["sampler"]), warmup=int(c["warmup"]),
                              epsilon=float(c["epsilon"]), ucb_c=float(c["ucb_c"]),
                              discount=float(c["discount"]), ema=float(c["ema"]), prune=prune)
    return SupernetTrialSettings(
        model="supernet", arch=SupernetSpace.from_dict(c["supernet"]),
        optimizer=optimizer_settings(c), augment=augment_settings(c), config=c, sampler=sampler,
        evaluation=SupernetEvalSettings(int(c["reward_batch"]), int(c["calib_samples"]),
                                        int(c["eval_subnets"])),
    )


class OneShotTrainable(SupervisedTrainable):
    """What every trainable of a whole supernet shares (:class:`SupernetTrainable`,
    :class:`~automl_chars.trainables.darts.DartsTrainable`): the architecture space as a
    Trainable parameter, and each evaluated subnet's costs instead of the model's own."""

    supports_autotune = False  # a step trains the supernet's subnets, not model(x)
    #: A supernet is no one model: a sweep of it takes no cost limits (pick a subnet instead).
    reports_costs = False

    def setup(self, config: dict, supernet: SupernetSpace | Mapping | None = None,
              **kwargs) -> None:
        """``supernet`` (e.g. ``SweepSpec(parameters={"supernet": space})``): the architecture
        space of every trial whose configuration does not name one."""
        self.arch_space = None if supernet is None else SupernetSpace.from_dict(supernet).to_dict()
        super().setup(config, **kwargs)

    def _build(self, config: dict) -> None:
        if getattr(self, "arch_space", None) is not None and "supernet" not in config:
            config = {**config, "supernet": self.arch_space}
        super()._build(config)

    def make_model(self, settings: TrialSettings) -> nn.Module:
        self.subnet_costs: dict[str, dict[str, float]] = {}  # name -> costs, measured once
        return super().make_model(settings)

    def model_costs(self) -> ModelCosts | None:
        return None  # each evaluated subnet's costs are reported instead (validate)

    def costs_of(self, arch) -> dict[str, float]:
        """The costs of subnet ``arch`` on this trial's device, measured on first use."""
        space = self.trial_settings.arch
        name = space.name(arch)
        if name not in self.subnet_costs:
            self.subnet_costs[name] = measure_subnet_costs(
                space, arch, self.dataset.num_classes, self.dataset.image_shape,
                self.device).metrics()
        return self.subnet_costs[name]

    def evaluate_subnets(self, indices: list[int]) -> tuple[dict, dict]:
        """Validation ``(loss, top-1)`` and costs of the subnets at ``indices`` of the space,
        each extracted and recalibrated, by name."""
        s, space = self.trial_settings, self.trial_settings.arch
        calibration = calibration_images(self.train_data, s.evaluation.calib_samples)
        scores, costs = {}, {}
        for i in indices:
            name = space.name(space.archs[i])
            scores[name] = evaluate_subnet(self.model, space.archs[i], calibration,
                                           self.val_data)
            costs[name] = self.costs_of(space.archs[i])
        return scores, costs

    @staticmethod
    def cost_metrics(costs: dict, chosen: str) -> dict:
        """The chosen subnet's costs as the trial's, and every evaluated one's by name."""
        return {**costs[chosen], **{f"subnet_{c}": {n: costs[n][c] for n in costs}
                                    for c in ("params", "flops", "latency_ms")}}


class SupernetTrainable(OneShotTrainable):
    """Trains a weight-sharing supernet with a subnet sampler.

    Reports, besides the base metrics: ``val_acc``/``val_loss`` of the ``leader`` (the best
    evaluated subnet), ``subnet_acc/<name>`` (validation top-1 of each evaluated subnet, batch
    norm recalibrated), ``sampled/<name>`` (rounds that trained it), ``rounds``, ``pruned``
    (subnets pruned so far), ``evaluated`` (how many subnets were evaluated), each evaluated
    subnet's costs (``subnet_params/<name>``, ``subnet_flops/<name>``,
    ``subnet_latency_ms/<name>``: its standalone model's, measured once per trial) and the
    leader's as the trial's own (``params``, ``flops``, ``latency_ms``, ``throughput``).
    """

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> SupernetTrialSettings:
        return supernet_settings(config)

    def make_model(self, settings: SupernetTrialSettings) -> nn.Module:
        """The supernet, and its sampler (seeded per configuration, like the weights)."""
        self.sampler = make_sampler(settings.arch, settings.sampler,
                                    config_seed(settings.config, self.seed))
        self.last_accs: dict[str, float] = {}
        return super().make_model(settings)

    def train_unit(self, data: DeviceData) -> EpochStats:
        s = self.trial_settings
        return train_supernet_epoch(self.model, self.optimizer, self.sampler, data, self.val_data,
                                    s.optimizer.batch_size, self.generator, s.augment,
                                    s.evaluation.reward_batch, penalty=self.penalty)

    def validate(self) -> dict:
        s, space = self.trial_settings, self.trial_settings.arch
        scores, costs = self.evaluate_subnets(
            subnets_to_evaluate(self.sampler, s.evaluation.eval_subnets))
        self.last_accs = {name: acc for name, (_, acc) in scores.items()}
        leader = max(scores, key=lambda n: (scores[n][1], -space.index(n)))
        names = [space.name(a) for a in space.archs]
        return {
            "val_acc": scores[leader][1], "val_loss": scores[leader][0], "leader": leader,
            **self.cost_metrics(costs, leader),
            "subnet_acc": dict(self.last_accs),
            "sampled": {names[i]: self.sampler.counts[i] for i in range(len(names))
                        if self.sampler.counts[i] or len(names) <= s.evaluation.eval_subnets},
            "rounds": self.sampler.round, "pruned": len(self.sampler.pruned),
            "evaluated": len(scores),
        }

    def extra_state(self) -> dict:
        return {"sampler": self.sampler.state_dict(), "subnet_acc": dict(self.last_accs)}

    def load_extra_state(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.last_accs = dict(state.get("subnet_acc", {}))

    @staticmethod
    def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset,
                            split: str = "test") -> float:
        """Accuracy on ``split`` of the leader (best last validation top-1) of a supernet
        checkpoint, extracted and recalibrated."""
        supernet, state = load_supernet(checkpoint_dir, dataset)
        accs = state["extra"]["subnet_acc"]
        leader = max(accs, key=lambda n: (accs[n], -supernet.space.index(n)))
        return evaluate_supernet_subnet(supernet, leader, dataset, split,
                                        supernet_settings(state["config"]).evaluation)


def load_supernet(checkpoint_dir: str | os.PathLike, dataset: Dataset,
                  device: torch.device | None = None) -> tuple[Supernet, dict]:
    """The supernet of a :class:`SupernetTrainable` checkpoint, and the checkpoint's state."""
    state = load_trial_state(checkpoint_dir)
    if state[FAILURE] is not None or state.get("model") != "supernet":
        raise InvalidConfigError(f"{checkpoint_dir} holds no trained supernet "
                                 f"({state[FAILURE] or state.get('model')}).")
    net = build_model("supernet", state["arch"], dataset.num_classes, dataset.image_shape)
    net.load_state_dict(state["state_dict"])
    return net.to(device or torch.device("cpu")), state


def evaluate_supernet_subnet(supernet: Supernet, arch, dataset: Dataset, split: str,
                             evaluation: SupernetEvalSettings = SupernetEvalSettings()) -> float:
    """Top-1 on ``split`` of subnet ``arch`` of ``supernet``, recalibrated as during training."""
    device = next(supernet.parameters()).device
    train = DeviceData.create(dataset.x_train, dataset.y_train, device)
    x, y = dataset.split(split)
    data = DeviceData.create(x, y, device, train.mean, train.std)
    return evaluate_subnet(supernet, arch, calibration_images(train, evaluation.calib_samples),
                           data)[1]


def subnet_settings(config: Mapping) -> TrialSettings:
    """A subnet configuration: its architecture (``"subnet"``, a ``SubnetSpec.to_dict()``) and
    optimizer hyperparameters (:func:`~automl_chars.spaces.supernet.subnet_space`)."""
    c = resolve_supernet(dict(config), "subnet")
    if c["subnet"] is None:
        raise InvalidConfigError("A subnet configuration needs 'subnet': "
                                 "SubnetSpec(space, arch).to_dict().")
    return TrialSettings(model="subnet", arch=SubnetSpec.from_dict(c["subnet"]),
                         optimizer=optimizer_settings(c), augment=augment_settings(c), config=c)


class SubnetTrainable(SupervisedTrainable):
    """One subnet trained standalone; with ``init_checkpoint`` (a :class:`SupernetTrainable` or
    ``DartsTrainable`` checkpoint folder) it starts from the supernet's weights, recalibrated:
    fine-tuning."""

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> TrialSettings:
        return subnet_settings(config)

    def make_model(self, settings: TrialSettings) -> nn.Module:
        source = settings.config["init_checkpoint"]
        if not source:
            return super().make_model(settings)
        supernet, state = load_supernet(source, self.dataset)
        if supernet.space != settings.arch.space:
            raise InvalidConfigError(f"init_checkpoint {source} is a supernet over "
                                     f"{supernet.space}, not over {settings.arch.space}.")
        # a supernet's or a DARTS search's checkpoint: both record their calibration size
        samples = int(state["config"].get("calib_samples", SupernetEvalSettings.calib_samples))
        calibration = calibration_images(self.train_data, samples).cpu()
        return recalibrate_bn(supernet.extract(settings.arch.arch), calibration).train()
