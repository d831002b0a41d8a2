"""Ensembles of trained networks: the average of their softmax outputs (plain PyTorch)."""

from __future__ import annotations

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.training.loop import EVAL_BATCH_SIZE, DeviceData


@torch.no_grad()
def predict_proba(model: nn.Module, data: DeviceData,
                  batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """``(n, classes)`` softmax probabilities of ``model`` on ``data`` (evaluation mode), on the
    CPU."""
    model.eval()
    parts = [torch.softmax(model(data.batch(slice(i, i + batch_size))[0]), 1).cpu()
             for i in range(0, len(data), batch_size)]
    return torch.cat(parts)


def ensemble_accuracies(probabilities: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """The accuracy of the ensemble of the first ``j`` members, for ``j`` = 1 .. members.

    ``probabilities``: ``(members, n, classes)`` softmax outputs, in the order members join;
    an ensemble predicts the class of highest mean probability (ties: the lowest class).
    """
    if probabilities.ndim != 3 or len(probabilities) == 0:
        raise InvalidConfigError(f"ensemble_accuracies takes (members, samples, classes) "
                                 f"probabilities, got shape {tuple(probabilities.shape)}.")
    if labels.shape != probabilities.shape[1:2]:
        raise InvalidConfigError(f"{probabilities.shape[1]} predictions but {labels.numel()} "
                                 f"labels.")
    running = probabilities.double().cumsum(0)  # the sum of the first j, for every j
    labels = labels.to(running.device)
    return [float((running[j].argmax(1) == labels).double().mean()) for j in range(len(running))]


def disagreement(p: torch.Tensor, q: torch.Tensor) -> float:
    """The fraction of samples on which two networks' ``(n, classes)`` outputs predict different
    classes: how differently they behave, whatever their weights (Fort et al. 2019)."""
    if p.shape != q.shape or p.ndim != 2:
        raise InvalidConfigError(f"disagreement takes two (samples, classes) outputs of the same "
                                 f"shape, got {tuple(p.shape)} and {tuple(q.shape)}.")
    return float((p.argmax(1) != q.argmax(1)).double().mean())


__all__ = ["disagreement", "ensemble_accuracies", "predict_proba"]
