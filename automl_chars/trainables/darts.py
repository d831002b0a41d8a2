"""``DartsTrainable``: DARTS over a supernet space as a Ray Tune Trainable (one budget unit = one
epoch of first-order bilevel rounds, then the derived architecture and the most probable
subnets on the validation split).

A :class:`~automl_chars.trainables.supernet.OneShotTrainable`: data, checkpoints,
pause/resume, actor reuse and failures are the base class's; its checkpoints hold the
supernet's weights (model ``"supernet"``: fine-tuning and ``load_supernet`` read them as any
supernet's) and, in their extra state, the architecture parameters, their optimiser and
:class:`~automl_chars.supernet.darts.ArchWeights` (plain values, what the workflows save).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from automl_chars.data.dataset import Dataset
from automl_chars.spaces.supernet import resolve_supernet
from automl_chars.supernet.darts import ArchParameters, ArchWeights, DartsSettings, darts_epoch
from automl_chars.supernet.space import SupernetSpace
from automl_chars.supernet.training import SupernetEvalSettings
from automl_chars.trainables.base import TrialSettings, augment_settings, optimizer_settings
from automl_chars.trainables.supernet import (
    OneShotTrainable,
    evaluate_supernet_subnet,
    load_supernet,
)
from automl_chars.training import DeviceData, EpochStats


@dataclass(frozen=True)
class DartsTrialSettings(TrialSettings):
    """:class:`TrialSettings` plus the architecture optimiser's, the evaluation's and the
    warm start's (an ``arch_weights.json`` or its folder; "" for a cold start)."""

    darts: DartsSettings = DartsSettings()
    evaluation: SupernetEvalSettings = SupernetEvalSettings()
    init_arch_weights: str = ""


def darts_settings(config: Mapping) -> DartsTrialSettings:
    """A DARTS configuration (:func:`~automl_chars.spaces.supernet.darts_space` and
    :data:`~automl_chars.spaces.supernet.DARTS_FIXED`) as the trial's settings; a warm start's
    weights are read and checked against the space here, before anything trains."""
    c = resolve_supernet(dict(config), "darts")
    space = SupernetSpace.from_dict(c["supernet"])
    init = str(c["init_arch_weights"] or "")
    if init:
        ArchWeights.load(init).check_fits(space)
    return DartsTrialSettings(
        model="supernet", arch=space, optimizer=optimizer_settings(c),
        augment=augment_settings(c), config=c,
        darts=DartsSettings(float(c["arch_learning_rate"]), float(c["arch_weight_decay"])),
        evaluation=SupernetEvalSettings(calib_samples=int(c["calib_samples"]),
                                        eval_subnets=int(c["eval_subnets"])),
        init_arch_weights=init)


class DartsTrainable(OneShotTrainable):
    """DARTS (first order) over a supernet space.

    Each round takes an architecture step on a random validation batch, then a weight step on
    a training batch (:func:`~automl_chars.supernet.darts.darts_epoch`). After each epoch the
    **derived** architecture (argmax per choice) and the most probable subnets (up to
    ``eval_subnets``, every subnet of a small space) are extracted, recalibrated and evaluated
    on the validation split. Reports, besides the base metrics: ``derived`` (its name; also as
    ``leader``), ``val_acc``/``val_loss`` and costs (``params``, ``flops``, ``latency_ms``) of
    the derived subnet, ``subnet_acc/<name>`` and ``arch_prob/<name>`` (each evaluated subnet's
    validation top-1 and probability under the architecture weights), ``depth_weights/<block>``
    and, with several operations, ``op_weights/<block>.<position>`` (the softmaxes),
    ``rounds``, ``evaluated`` and ``warm_start`` (the starting weights' dataset, "" if cold).
    """

    @classmethod
    def settings(cls, config: Mapping, **parameters: Any) -> DartsTrialSettings:
        return darts_settings(config)

    def make_model(self, settings: DartsTrialSettings) -> nn.Module:
        """The supernet, the architecture parameters (from the warm start's weights, if any) and
        their optimiser."""
        init = ArchWeights.load(settings.init_arch_weights) if settings.init_arch_weights else None
        self.init_weights = init
        self.arch = ArchParameters(settings.arch, init).to(self.device)
        self.arch_optimizer = settings.darts.make_optimizer(self.arch)
        self.last_accs: dict[str, float] = {}
        self.history: list[dict] = []
        self.rounds = 0
        return super().make_model(settings)

    def train_unit(self, data: DeviceData) -> EpochStats:
        s = self.trial_settings
        stats = darts_epoch(self.model, self.arch, self.optimizer, self.arch_optimizer, data,
                            self.val_data, s.optimizer.batch_size, self.generator, s.augment,
                            penalty=self.penalty)
        self.rounds += math.ceil(stats.samples / s.optimizer.batch_size)
        return stats

    def validate(self) -> dict:
        s, space = self.trial_settings, self.trial_settings.arch
        derived = space.name(self.arch.derive())
        logp = self.arch.log_probs()
        top = sorted(range(space.size), key=lambda i: (-float(logp[i]), i))
        top = [i for i in top if space.name(space.archs[i]) != derived]
        chosen = [space.index(derived), *top[: s.evaluation.eval_subnets - 1]]
        scores, costs = self.evaluate_subnets(chosen)
        self.last_accs = {name: acc for name, (_, acc) in scores.items()}
        self.history.append({"epoch": self.units_done + 1, "derived": derived,
                             "val_acc": scores[derived][1]})
        depth, ops = self.arch.probabilities(detach=True)
        result = {
            "val_acc": scores[derived][1], "val_loss": scores[derived][0], "derived": derived,
            "leader": derived, **self.cost_metrics(costs, derived),
            "subnet_acc": dict(self.last_accs),
            "arch_prob": {space.name(space.archs[i]): math.exp(float(logp[i])) for i in chosen},
            "depth_weights": {f"block{b + 1}": {str(d): float(p) for d, p in
                                                zip(space.depths, depth[b])}
                              for b in range(space.num_blocks)},
            "rounds": self.rounds, "evaluated": len(scores),
            "warm_start": self.init_weights.dataset if self.init_weights is not None else "",
        }
        if len(space.ops) > 1:
            result["op_weights"] = {f"block{b + 1}.{i + 1}": dict(zip(space.ops, map(float, w)))
                                    for b in range(space.num_blocks)
                                    for i, w in enumerate(ops[b])}
        return result

    def arch_weights(self) -> ArchWeights:
        """The current architecture weights, with the dataset, epochs and per-epoch history."""
        meta = {"seed": self.seed, "config": self.trial_settings.config}
        if self.init_weights is not None:
            meta["warm_start"] = {"dataset": self.init_weights.dataset,
                                  "path": str(self.init_weights.path),
                                  "derived": self.init_weights.derived_name}
        return ArchWeights.of(self.arch, dataset=self.dataset.name,
                              fingerprint=self.dataset.fingerprint(), epochs=self.units_done,
                              history=tuple(self.history), meta=meta)

    def extra_state(self) -> dict:
        return {"arch": self.arch.state_dict(), "arch_optimizer": self.arch_optimizer.state_dict(),
                "subnet_acc": dict(self.last_accs), "rounds": self.rounds,
                "arch_weights": self.arch_weights().to_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.arch.load_state_dict(state["arch"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.last_accs = dict(state.get("subnet_acc", {}))
        self.rounds = int(state.get("rounds", 0))
        self.history = [dict(h) for h in state["arch_weights"].get("history", [])]

    @staticmethod
    def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset,
                            split: str = "test") -> float:
        """Accuracy on ``split`` of the derived architecture of a DARTS checkpoint, extracted
        from the supernet and recalibrated."""
        supernet, state = load_supernet(checkpoint_dir, dataset)
        weights = checkpoint_arch_weights(state)
        return evaluate_supernet_subnet(supernet, weights.derived, dataset, split,
                                        darts_settings(state["config"]).evaluation)


def checkpoint_arch_weights(state: Mapping) -> ArchWeights:
    """The architecture weights a :class:`DartsTrainable` checkpoint's state holds."""
    return ArchWeights.from_dict(state["extra"]["arch_weights"])


__all__ = ["DartsTrainable", "DartsTrialSettings", "checkpoint_arch_weights", "darts_settings"]
