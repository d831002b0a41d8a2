"""AutotuneLR (seed 000): the initial learning rate by a refined grid search of short runs.

A coarse grid, log-spaced between ``low`` and ``high``, is tried first: each learning rate
trains a copy of the model for a few steps from the same weights on the same batches, and is
scored by the copy's validation loss. Then a finer grid between the best coarse rate and its
neighbours is tried, and the best rate of both grids wins. A sweep with AutotuneLR leaves the
learning rate out of its space: each trial tunes its own at its start, inside its first budget
unit, so the tuning's cost counts in the trial's time (see docs/training-tools.md).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.training.bsguard import BatchGuard, guarded_step
from automl_chars.training.loop import DeviceData, epoch_batches, evaluate
from automl_chars.training.settings import AugmentSettings, OptimizerSettings


@dataclass(frozen=True)
class AutotuneSettings:
    """The grids and the short runs of AutotuneLR.

    Attributes:
        low, high: the coarse grid's ends (learning rates, both tried).
        coarse: learning rates on the coarse grid, log-spaced.
        fine: new learning rates log-spaced between the best coarse rate and each neighbour.
        steps: training steps (batches) of each short run.
        val_samples: validation images each short run is scored on (a fixed random sample).
    """

    low: float = 1e-4
    high: float = 1e-1
    coarse: int = 4
    fine: int = 2
    steps: int = 20
    val_samples: int = 1024

    def __post_init__(self) -> None:
        problems = []
        if not (0 < self.low < self.high and math.isfinite(self.high)):
            problems.append(f"low and high must satisfy 0 < low < high, got {self.low} and "
                            f"{self.high}")
        for name, least in (("coarse", 2), ("fine", 0), ("steps", 1), ("val_samples", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                problems.append(f"{name} must be a whole number >= {least}, got {value!r}")
        if problems:
            raise InvalidConfigError("Invalid AutotuneLR settings: " + "; ".join(problems) + ".")

    @property
    def runs(self) -> int:
        """The most short runs one tuning makes."""
        return self.coarse + 2 * self.fine

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AutotuneResult:
    """The chosen learning rate, every rate tried with its score (validation loss, ``inf``
    for a run that diverged) in the order tried, and the seconds the tuning took."""

    learning_rate: float
    grid: tuple[tuple[float, float], ...]
    seconds: float

    def to_dict(self) -> dict:
        return {"learning_rate": self.learning_rate, "grid": [list(p) for p in self.grid],
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> AutotuneResult:
        return cls(float(d["learning_rate"]), tuple((float(a), float(b)) for a, b in d["grid"]),
                   float(d["seconds"]))


def refined_grid_search(score: Callable[[float], float], settings: AutotuneSettings,
                        ) -> AutotuneResult:
    """Minimises ``score(lr)`` over a coarse log grid, then a finer one around its best point
    (between the best coarse rate and its neighbours). Non-finite scores count as ``inf``; of
    equal scores the smaller rate wins."""
    start = time.perf_counter()
    tried: dict[float, float] = {}

    def run(lr: float) -> None:
        if lr not in tried:
            value = float(score(lr))
            tried[lr] = value if math.isfinite(value) else math.inf

    coarse = [float(v) for v in np.geomspace(settings.low, settings.high, settings.coarse)]
    for lr in coarse:
        run(lr)
    best = min(coarse, key=lambda lr: (tried[lr], lr))
    i = coarse.index(best)
    for neighbour in (coarse[i - 1] if i > 0 else None,
                      coarse[i + 1] if i + 1 < len(coarse) else None):
        if neighbour is not None:
            for lr in np.geomspace(best, neighbour, settings.fine + 2)[1:-1]:
                run(float(lr))
    chosen = min(tried, key=lambda lr: (tried[lr], lr))
    return AutotuneResult(chosen, tuple(tried.items()), time.perf_counter() - start)


def short_run_loss(model: nn.Module, optimizer: OptimizerSettings, learning_rate: float,
                   train: DeviceData, val: DeviceData, steps: int, seed: int,
                   augment: AugmentSettings = AugmentSettings(),
                   guard: BatchGuard | None = None) -> float:
    """The validation loss of a copy of ``model`` after ``steps`` training steps at
    ``learning_rate`` (constant), the batches drawn from ``seed``: every rate sees the same
    ones. ``model`` itself is left as it was."""
    trial = copy.deepcopy(model)
    opt = replace(optimizer, learning_rate=learning_rate).make(trial)
    generator = torch.Generator(device=train.x.device).manual_seed(seed)
    torch.manual_seed(seed)  # dropout alike for every rate
    done = 0
    trial.train()
    while done < steps:
        _, batches = epoch_batches(train, optimizer.batch_size, generator, augment)
        before = done
        for _, x, y in batches:
            loss, _ = guarded_step(trial, opt, x, y, guard)
            done += 1
            if not torch.isfinite(loss):
                return math.inf  # diverged
            if done >= steps:
                break
        if done == before:  # not one batch of two samples: nothing to train on
            break
    return evaluate(trial, val)[0]


def autotune_lr(model: nn.Module, optimizer: OptimizerSettings, train: DeviceData,
                val: DeviceData, settings: AutotuneSettings = AutotuneSettings(), seed: int = 0,
                augment: AugmentSettings = AugmentSettings(),
                guard: BatchGuard | None = None) -> AutotuneResult:
    """AutotuneLR: the initial learning rate of ``model`` with ``optimizer``'s other settings
    (optimizer, momentum, weight decay, batch size), by :func:`refined_grid_search` over short
    runs (:func:`short_run_loss`) scored on a fixed random sample of ``val``. Torch's global
    random state is restored afterwards, so the training that follows draws as without it."""
    device = train.x.device
    pick = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))
    sample = val.subset(pick[: settings.val_samples])
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        return refined_grid_search(
            lambda lr: short_run_loss(model, optimizer, lr, train, sample, settings.steps, seed,
                                      augment, guard), settings)
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, device)


__all__ = ["AutotuneResult", "AutotuneSettings", "autotune_lr", "refined_grid_search",
           "short_run_loss"]
