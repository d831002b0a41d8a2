"""The distance regularizer of seed 003: push training away from minima it has already found.

``loss += strength * sum_i exp(-||theta - theta_i||^2 / (2 width^2))``: an RBF kernel on the
distance in weight space between the model's parameters ``theta`` (all of them, flattened in
``model.parameters()`` order) and each stored minimum ``theta_i``, or only their mean
(``merge``). Near a minimum the term is ``strength`` and its gradient points away from it;
``width`` sets how far its reach extends. Plain PyTorch: it works on any model whose minima
were saved from the same architecture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError

#: A stored minimum: a flat parameter vector, a model, or a model's ``state_dict``.
Minimum = torch.Tensor | nn.Module | Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class DistanceSettings:
    """The regularizer's hyperparameters; ``strength`` 0 (the default) turns it off."""

    strength: float = 0.0
    width: float = 1.0
    merge: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.strength) and self.strength >= 0):
            raise InvalidConfigError(f"dist_strength must be >= 0 (0: off), got {self.strength}.")
        if not (math.isfinite(self.width) and self.width > 0):
            raise InvalidConfigError(f"dist_width must be > 0, got {self.width}.")

    @property
    def enabled(self) -> bool:
        return self.strength > 0


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """Every parameter of ``model`` in one vector (differentiable), in ``parameters()`` order."""
    return torch.cat([p.reshape(-1) for p in model.parameters()])


def minimum_vector(model: nn.Module, minimum: Minimum) -> torch.Tensor:
    """``minimum`` as a flat vector laid out like :func:`flat_parameters` of ``model``."""
    if isinstance(minimum, nn.Module):
        minimum = dict(minimum.named_parameters())
    if isinstance(minimum, Mapping):
        names = [name for name, _ in model.named_parameters()]
        missing = [n for n in names if n not in minimum]
        if missing:
            raise InvalidConfigError(f"a stored minimum lacks parameters {missing[:5]} of the "
                                     f"model: it was saved from another architecture.")
        minimum = torch.cat([minimum[n].detach().reshape(-1) for n in names])
    if not isinstance(minimum, torch.Tensor):
        raise InvalidConfigError(f"a stored minimum must be a flat parameter vector, a model or "
                                 f"a state dict (or, for a Trainable, a checkpoint folder), not "
                                 f"{type(minimum).__name__}.")
    vector = minimum.detach().reshape(-1)
    size = sum(p.numel() for p in model.parameters())
    if vector.numel() != size:
        raise InvalidConfigError(f"a stored minimum has {vector.numel()} parameters, the model "
                                 f"{size}: it was saved from another architecture.")
    return vector


class DistanceRegularizer:
    """``penalty(model)``: the RBF distance term over stored minima (see the module)."""

    def __init__(self, minima: torch.Tensor, settings: DistanceSettings):
        if minima.ndim != 2 or len(minima) == 0:
            raise InvalidConfigError("the distance regularizer needs at least one stored "
                                     "minimum (a (k, parameters) tensor).")
        self.settings = settings
        self.minima = minima.mean(0, keepdim=True) if settings.merge else minima

    @classmethod
    def for_model(cls, model: nn.Module, minima: Sequence[Minimum],
                  settings: DistanceSettings) -> DistanceRegularizer:
        """The regularizer of ``model`` over ``minima``, on the model's device."""
        if not minima:
            raise InvalidConfigError(
                "dist_strength > 0 needs stored minima to keep away from: pass them to the "
                "Trainable (tune.with_parameters(..., minima=[...]): checkpoint folders, models, "
                "state dicts or flat parameter vectors).")
        device = next(model.parameters()).device
        rows = [minimum_vector(model, m).to(device, torch.float32) for m in minima]
        return cls(torch.stack(rows), settings)

    def squared_distances(self, model: nn.Module) -> torch.Tensor:
        """``||theta - theta_i||^2`` to each (merged) minimum, differentiable."""
        return (flat_parameters(model).unsqueeze(0) - self.minima).square().sum(1)

    def _penalty(self, squared_distances: torch.Tensor) -> torch.Tensor:
        s = self.settings
        return s.strength * torch.exp(-squared_distances / (2 * s.width**2)).sum()

    def __call__(self, model: nn.Module) -> torch.Tensor:
        return self._penalty(self.squared_distances(model))

    @torch.no_grad()
    def report(self, model: nn.Module) -> dict[str, float]:
        """``distance_penalty`` (the term now) and ``distance_min`` (to the nearest minimum)."""
        d2 = self.squared_distances(model)
        return {"distance_penalty": float(self._penalty(d2)),
                "distance_min": float(d2.min().sqrt())}


__all__ = ["DistanceRegularizer", "DistanceSettings", "Minimum", "flat_parameters",
           "minimum_vector"]
