"""Training settings as frozen dataclasses; each Trainable fills them from its configuration."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError, is_whole

#: The optimizers :meth:`OptimizerSettings.make` builds.
OPTIMIZERS = ("sgd", "adam")
#: Learning-rate schedules over a trial's budget (:meth:`OptimizerSettings.make_schedule`). The
#: spaces search the first three (``spaces.training.SCHEDULES``); the others are set in a
#: configuration (see ``spaces.training.TRAINING_OPTIONS``).
SCHEDULES = ("constant", "cosine", "step", "cosine_restarts", "multistep")


@dataclass(frozen=True)
class OptimizerSettings:
    """Optimizer, learning-rate schedule and batch size. ``momentum`` applies to SGD only.

    ``body_lr_factor`` scales the learning rate of every parameter outside ``model.head`` (a
    smaller rate for pretrained features when fine-tuning); frozen parameters
    (``requires_grad=False``) are left out of the optimizer.

    ``restart_period`` and ``restart_mult`` shape ``cosine_restarts`` (the first cycle's budget
    units, 0 for a third of the horizon; each later cycle ``restart_mult`` times longer);
    ``milestones`` (budget units, empty for a third and two thirds of the horizon) and ``gamma``
    shape ``multistep``.
    """

    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-5
    batch_size: int = 128
    schedule: str = "constant"
    body_lr_factor: float = 1.0
    restart_period: int = 0
    restart_mult: int = 1
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.body_lr_factor <= 1:
            problems.append(f"body_lr_factor must be in (0, 1], got {self.body_lr_factor}")
        if not (is_whole(self.restart_period) and self.restart_period >= 0):
            problems.append(f"lr_restart_period must be a whole number of budget units >= 0 "
                            f"(0: a third of the budget), got {self.restart_period!r}")
        if not (is_whole(self.restart_mult) and self.restart_mult >= 1):
            problems.append(f"lr_restart_mult must be a whole number >= 1, got "
                            f"{self.restart_mult!r}")
        if not (isinstance(self.milestones, tuple) and all(is_whole(m) and m >= 1 for m in
                                                           self.milestones)
                and list(self.milestones) == sorted(set(self.milestones))):
            problems.append(f"lr_milestones must be increasing budget units >= 1 such as "
                            f"[3, 6] or \"3,6\", got {self.milestones!r}")
        if not 0 < self.gamma <= 1:
            problems.append(f"lr_gamma must be in (0, 1], got {self.gamma}")
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")

    def make(self, model: nn.Module) -> torch.optim.Optimizer:
        """The torch optimizer over ``model``'s trainable parameters."""
        groups = self._param_groups(model)
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.learning_rate, momentum=self.momentum,
                                   weight_decay=self.weight_decay)
        return torch.optim.Adam(groups, lr=self.learning_rate, weight_decay=self.weight_decay)

    def _param_groups(self, model: nn.Module) -> list[dict]:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise InvalidConfigError("every parameter of the model is frozen: nothing to train.")
        head = getattr(model, "head", None)
        if self.body_lr_factor == 1 or not isinstance(head, nn.Module):
            return [{"params": trainable}]
        in_head = {id(p) for p in head.parameters()}
        body = [p for p in trainable if id(p) not in in_head]
        top = [p for p in trainable if id(p) in in_head]
        groups = [{"params": top}] if top else []
        if body:
            groups.append({"params": body, "lr": self.learning_rate * self.body_lr_factor})
        return groups

    def make_schedule(self, optimizer: torch.optim.Optimizer, horizon: int,
                      ) -> torch.optim.lr_scheduler.LRScheduler:
        """The learning-rate schedule over ``horizon`` budget units (stepped once per unit):
        constant, cosine annealing to 0, steps of x0.1 every third of the horizon, cosine
        annealing with warm restarts (SGDR), or drops by ``gamma`` at ``milestones``."""
        lr = torch.optim.lr_scheduler
        if self.schedule == "cosine":
            return lr.CosineAnnealingLR(optimizer, T_max=max(1, horizon))
        if self.schedule == "step":
            return lr.StepLR(optimizer, max(1, horizon // 3), gamma=0.1)
        if self.schedule == "cosine_restarts":
            return lr.CosineAnnealingWarmRestarts(
                optimizer, T_0=self.restart_period or max(1, horizon // 3), T_mult=self.restart_mult)
        if self.schedule == "multistep":
            milestones = list(self.milestones) or [max(1, horizon // 3), max(2, 2 * horizon // 3)]
            return lr.MultiStepLR(optimizer, milestones, gamma=self.gamma)
        return lr.LambdaLR(optimizer, lambda _: 1.0)


def parse_milestones(value: object) -> tuple[int, ...]:
    """``lr_milestones`` as a tuple of budget units: a list of whole numbers, or a string such
    as ``"3,6"`` (what a command line or a table gives); empty for the default. Values that are
    not whole numbers are kept for :class:`OptimizerSettings` to refuse by name."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
        out = []
        for p in parts:
            try:
                out.append(int(p))
            except ValueError:
                out.append(p)
        return tuple(out)
    if isinstance(value, (list, tuple)):
        return tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in value)
    return (value,)


@dataclass(frozen=True)
class AugmentSettings:
    """Random affine augmentation, drawn per image: rotation in degrees, translation as a fraction
    of the side, scale as +- relative zoom. Disabled when ``enabled`` is False."""

    enabled: bool = False
    rotation: float = 10.0
    translate: float = 0.1
    scale: float = 0.1

    def __post_init__(self) -> None:
        if not (0 <= self.rotation <= 180 and 0 <= self.translate <= 1 and 0 <= self.scale < 1):
            raise InvalidConfigError(
                f"augmentation out of range: rotation {self.rotation} (0-180 degrees), "
                f"translate {self.translate} (0-1), scale {self.scale} (0 to < 1)."
            )
