"""The ResNet-18 and ResNet-34 spaces: width multiplier, dropout before the head, and the shared
training hyperparameters (optimizer, learning rate and schedule, batch size, augmentation).

The two depths search the same hyperparameters with the same defaults; each is its own space
(its own sweep spec, results and warm-start history), the depth being the model's name.
"""

from __future__ import annotations

from functools import lru_cache

from ConfigSpace import Categorical, ConfigurationSpace, Float

from automl_chars.spaces.training import add_training_hyperparameters

#: Width multipliers of the ResNets' stages (1.0 = torchvision's 64-128-256-512 channels).
WIDTHS = (0.125, 0.25, 0.5, 1.0)
#: The depths with a space, by model name.
DEPTHS = {"resnet18": "ResNet-18", "resnet34": "ResNet-34"}


def _resnet_space(seed: int | None) -> ConfigurationSpace:
    cs = ConfigurationSpace(seed=seed)
    cs.add([
        Categorical("width", list(WIDTHS), default=0.25),
        Float("dropout", (0.0, 0.5), default=0.0),
    ])
    return add_training_hyperparameters(cs, optimizer="adam", schedule="cosine")


def resnet_space(seed: int | None = None) -> ConfigurationSpace:
    """ResNet-18's space. Defaults: width 0.25, no dropout, Adam at 1e-3 with cosine decay,
    batch size 128, no augmentation (a quick, reliable baseline on 28x28 glyphs)."""
    return _resnet_space(seed)


def resnet34_space(seed: int | None = None) -> ConfigurationSpace:
    """ResNet-34's space: ResNet-18's hyperparameters and defaults (Adam at 1e-3, as seed 003's
    ``cifar10_1``), for the deeper network."""
    return _resnet_space(seed)


@lru_cache(maxsize=1)
def _defaults() -> tuple[tuple[str, object], ...]:
    from automl_chars.spaces.values import space_defaults

    return tuple(space_defaults(_resnet_space(None)).items())


def resolve_resnet(config: dict, model: str = "resnet18") -> dict:
    """A full configuration of ``model``'s space (``"resnet18"`` or ``"resnet34"``): ``config``
    over the space's defaults (unknown names raise)."""
    from automl_chars.spaces.values import resolve_against

    return resolve_against(config, dict(_defaults()), f"{DEPTHS[model]} space")
