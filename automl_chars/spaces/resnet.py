"""The ResNet-18 space: width multiplier, dropout before the head, and the shared training
hyperparameters (optimizer, learning rate and schedule, batch size, augmentation)."""

from __future__ import annotations

from functools import lru_cache

from ConfigSpace import Categorical, ConfigurationSpace, Float

from automl_chars.spaces.training import add_training_hyperparameters

#: Width multipliers of ResNet-18's stages (1.0 = torchvision's 64-128-256-512 channels).
WIDTHS = (0.125, 0.25, 0.5, 1.0)


def resnet_space(seed: int | None = None) -> ConfigurationSpace:
    """ResNet-18's space. Defaults: width 0.25, no dropout, Adam at 1e-3 with cosine decay,
    batch size 128, no augmentation (a quick, reliable baseline on 28x28 glyphs)."""
    cs = ConfigurationSpace(seed=seed)
    cs.add([
        Categorical("width", list(WIDTHS), default=0.25),
        Float("dropout", (0.0, 0.5), default=0.0),
    ])
    return add_training_hyperparameters(cs, optimizer="adam", schedule="cosine")


@lru_cache(maxsize=1)
def _defaults() -> tuple[tuple[str, object], ...]:
    from automl_chars.spaces.values import space_defaults

    return tuple(space_defaults(resnet_space()).items())


def resolve_resnet(config: dict) -> dict:
    """A full ResNet-18 configuration: ``config`` over the space's defaults (unknown names raise)."""
    from automl_chars.spaces.values import resolve_against

    return resolve_against(config, dict(_defaults()), "ResNet-18 space")
