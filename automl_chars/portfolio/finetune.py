"""Model transfer in plain PyTorch: a portfolio entry's network with a new head for the target's
classes and its first layers frozen (``TransferTrainable`` builds its models with it)."""

from __future__ import annotations

from torch import nn

from automl_chars.models import build_model, replace_head
from automl_chars.portfolio.portfolio import Portfolio


def freeze_features(model: nn.Module, fraction: float) -> int:
    """Freezes the first ``fraction`` of the feature parameters (in the order the layers are
    applied, from the input side; the head always trains) and returns how many were frozen.

    Only weights are frozen: batch-norm statistics of frozen layers still adapt to the target.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"freeze fraction {fraction} is outside [0, 1].")
    body = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    k = round(fraction * len(body))
    for p in body[:k]:
        p.requires_grad_(False)
    return k


def transfer_model(portfolio: Portfolio, source: str | None, num_classes: int,
                   freeze: float = 0.0) -> nn.Module:
    """The entry ``source``'s trained network with a fresh head for ``num_classes`` classes and
    ``freeze`` of its features frozen; ``source=None`` gives the first entry's architecture
    with random weights (the baseline every transfer is measured against)."""
    if source is None:
        first = next(iter(portfolio))
        return build_model(first.model, first.arch, num_classes, first.image_shape)
    model = replace_head(portfolio.model(source).train(), num_classes)
    freeze_features(model, freeze)
    return model
