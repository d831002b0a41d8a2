"""The loss landscape between minima: distances in weight space and the loss along the straight
path between two minima (seed 003's "does training follow valleys?").

Plain PyTorch. The path from ``theta_a`` to ``theta_b`` is ``(1 - alpha) theta_a + alpha theta_b``
for every floating-point entry of the two ``state_dict``s. BatchNorm's running statistics of an
interpolated network are not the interpolation of the end points' statistics (the activations'
mean and variance change non-linearly along the path), so at every point they are recomputed on
training data with :func:`torch.optim.swa_utils.update_bn`, end points included, so that the
ends and the middle are measured alike (Garipov et al. 2018; Frankle et al. 2020).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.training.loop import EVAL_BATCH_SIZE, DeviceData, evaluate


def pairwise_distances(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``(k, k)`` Euclidean distances between flat parameter vectors (in float64: two minima of
    a few hundred thousand weights differ in far fewer digits than float32 keeps)."""
    if not vectors:
        raise InvalidConfigError("pairwise_distances needs at least one parameter vector.")
    sizes = {v.numel() for v in vectors}
    if len(sizes) != 1:
        raise InvalidConfigError(f"parameter vectors of different sizes {sorted(sizes)}: the "
                                 f"minima come from different architectures.")
    stacked = torch.stack([v.detach().reshape(-1).to("cpu", torch.float64) for v in vectors])
    return torch.cdist(stacked, stacked)


def interpolate_states(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                       alpha: float) -> dict[str, torch.Tensor]:
    """The ``state_dict`` at ``alpha`` on the straight path from ``a`` (0) to ``b`` (1).

    Floating-point entries are interpolated; integer ones (BatchNorm's ``num_batches_tracked``)
    are taken from ``a`` (they are counters, not weights)."""
    if set(a) != set(b):
        raise InvalidConfigError(f"the two states differ in their entries "
                                 f"{sorted(set(a) ^ set(b))[:5]}: they are of different models.")
    out = {}
    for name, ta in a.items():
        tb = b[name]
        if ta.shape != tb.shape:
            raise InvalidConfigError(f"{name} has shape {tuple(ta.shape)} in one state and "
                                     f"{tuple(tb.shape)} in the other: different models.")
        out[name] = torch.lerp(ta, tb.to(ta), alpha) if ta.is_floating_point() else ta.clone()
    return out


def recompute_batchnorm(model: nn.Module, data: DeviceData,
                        batch_size: int = EVAL_BATCH_SIZE) -> None:
    """Replaces the running statistics of every BatchNorm layer of ``model`` by those of
    ``data`` (a cumulative average over its batches, in order; nothing else changes). A model
    without BatchNorm is left as it is."""
    batches = (data.batch(slice(i, i + batch_size)) for i in range(0, len(data), batch_size))
    with torch.no_grad():
        torch.optim.swa_utils.update_bn((x for x, _ in batches), model)


@dataclass(frozen=True)
class PathPoint:
    """The loss and accuracy of the network at ``alpha`` on a straight path."""

    alpha: float
    loss: float
    accuracy: float


def loss_path(model: nn.Module, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
              data: DeviceData, points: int = 11, batchnorm_data: DeviceData | None = None,
              batch_size: int = EVAL_BATCH_SIZE) -> list[PathPoint]:
    """The loss and accuracy of ``model`` on ``data`` at ``points`` evenly spaced points of the
    straight path from state ``a`` to state ``b`` (both ends included).

    At each point BatchNorm's statistics are recomputed on ``batchnorm_data`` (default
    ``data``; see the module), in batches of ``batch_size`` (a small model on a CPU is faster
    with a few hundred than with thousands). ``model`` (of the two states' architecture) is
    overwritten.
    """
    if points < 2:
        raise InvalidConfigError(f"a path needs at least 2 points (its ends), got {points}.")
    out = []
    for alpha in torch.linspace(0, 1, points, dtype=torch.float64).tolist():
        model.load_state_dict(interpolate_states(a, b, alpha))
        recompute_batchnorm(model, batchnorm_data if batchnorm_data is not None else data,
                            batch_size)
        loss, accuracy = evaluate(model, data, batch_size)
        out.append(PathPoint(alpha, loss, accuracy))
    return out


def barrier(path: Sequence[PathPoint]) -> float:
    """The loss barrier of a path: how far its loss rises above the straight line between its
    end points' losses, at most (0 or less: no barrier; Frankle et al. 2020)."""
    if len(path) < 2:
        raise InvalidConfigError("a barrier needs a path of at least 2 points.")
    a, b = path[0], path[-1]
    return max(p.loss - ((1 - p.alpha) * a.loss + p.alpha * b.loss) for p in path)


__all__ = ["PathPoint", "barrier", "interpolate_states", "loss_path", "pairwise_distances",
           "recompute_batchnorm"]
