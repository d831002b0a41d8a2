"""``TransferTrainable``: fine-tune a portfolio entry's network (or train its architecture from
scratch) on the target; the same loop, checkpoints and metrics as every
:class:`~automl_chars.trainables.base.SupervisedTrainable`, only the model differs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from torch import nn

from automl_chars.data.dataset import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.portfolio import Portfolio
from automl_chars.portfolio.finetune import transfer_model
from automl_chars.spaces.transfer import NO_SOURCE, transfer_space
from automl_chars.spaces.values import resolve_against, space_defaults
from automl_chars.trainables.base import (
    SupervisedTrainable,
    TrialSettings,
    augment_settings,
    optimizer_settings,
)


@lru_cache(maxsize=8)
def _defaults(names: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple(space_defaults(transfer_space(names)).items())


def transfer_settings(config: Mapping, portfolio: Portfolio) -> TrialSettings:
    """A transfer-space configuration as trial settings: the source entry's model and
    architecture (the first entry's for ``source="none"``), the optimizer with the smaller
    learning rate of the pretrained part, the augmentation."""
    if portfolio is None or not len(portfolio):
        raise InvalidConfigError("TransferTrainable needs a portfolio with at least one entry: "
                                 "tune.with_parameters(TransferTrainable, portfolio=...).")
    c = resolve_against(dict(config), dict(_defaults(tuple(portfolio.names()))),
                        "transfer space of this portfolio")
    pretrained = c["source"] != NO_SOURCE
    entry = portfolio.entry(c["source"]) if pretrained else next(iter(portfolio))
    return TrialSettings(
        model=entry.model, arch=entry.arch,
        optimizer=optimizer_settings(c, float(c["body_lr_factor"]) if pretrained else 1.0),
        augment=augment_settings(c), config=c,
    )


class TransferTrainable(SupervisedTrainable):
    """Trains a configuration of :func:`~automl_chars.spaces.transfer.transfer_space`.

    Pass the portfolio with ``tune.with_parameters(TransferTrainable, portfolio=..., dataset=...)``;
    on a cluster its folder must be on storage every node mounts (weights load in the trial).
    """

    def setup(self, config: dict, portfolio: Portfolio | None = None, **kwargs: Any) -> None:
        self.portfolio = portfolio
        super().setup(config, **kwargs)

    @classmethod
    def settings(cls, config: Mapping, portfolio: Portfolio | None = None,
                 **parameters: Any) -> TrialSettings:
        return transfer_settings(config, portfolio)

    def setting_parameters(self) -> dict[str, Any]:
        return {"portfolio": self.portfolio}

    def make_model(self, settings: TrialSettings) -> nn.Module:
        c = settings.config
        source = None if c["source"] == NO_SOURCE else c["source"]
        return transfer_model(self.portfolio, source, self.dataset.num_classes,
                              float(c["freeze"]) if source else 0.0)

    @classmethod
    def check_config(cls, config: Mapping, dataset: Dataset, portfolio: Portfolio | None = None,
                     **parameters: Any) -> None:
        source = transfer_settings(config, portfolio).config["source"]
        portfolio.check_fits(dataset.image_shape, None if source == NO_SOURCE else [source])
        super().check_config(config, dataset, portfolio=portfolio, **parameters)
