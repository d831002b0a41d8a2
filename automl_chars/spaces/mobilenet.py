"""The MobileNetV2 space: torchvision's width multiplier, dropout before the head, and the shared
training hyperparameters."""

from __future__ import annotations

from functools import lru_cache

from ConfigSpace import Categorical, ConfigurationSpace, Float

from automl_chars.spaces.training import add_training_hyperparameters

#: Width multipliers searched (1.0 = torchvision's 32-16-24-32-64-96-160-320 channels).
WIDTHS = (0.25, 0.5, 0.75, 1.0)


def mobilenetv2_space(seed: int | None = None) -> ConfigurationSpace:
    """MobileNetV2's space. Defaults: width 0.5, dropout 0.2 (torchvision's), Adam at 1e-3 with
    cosine decay, batch size 128, no augmentation."""
    cs = ConfigurationSpace(seed=seed)
    cs.add([
        Categorical("width", list(WIDTHS), default=0.5),
        Float("dropout", (0.0, 0.5), default=0.2),
    ])
    return add_training_hyperparameters(cs, optimizer="adam", schedule="cosine")


@lru_cache(maxsize=1)
def _defaults() -> tuple[tuple[str, object], ...]:
    from automl_chars.spaces.values import space_defaults

    return tuple(space_defaults(mobilenetv2_space()).items())


def resolve_mobilenetv2(config: dict) -> dict:
    """A full MobileNetV2 configuration: ``config`` over the space's defaults (unknown names
    raise)."""
    from automl_chars.spaces.values import resolve_against

    return resolve_against(config, dict(_defaults()), "MobileNetV2 space")
