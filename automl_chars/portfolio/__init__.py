"""Portfolios: pretrained models, one per source dataset, with what transfer and the similarity
measures need (weights, class names, image shape, an image sample), read without Ray.

Building one is a job of many runs: :func:`automl_chars.workflows.portfolio.build_portfolio`,
reachable here by its old name (a lazy re-export, which imports nothing upwards).
"""

from __future__ import annotations

import importlib
from typing import Any

from automl_chars.portfolio.entry import MANIFEST_VERSION, PortfolioEntry
from automl_chars.portfolio.portfolio import ENTRY_COLUMNS, Portfolio

_WORKFLOW = ("add_checkpoint", "build_portfolio")

__all__ = ["ENTRY_COLUMNS", "MANIFEST_VERSION", "Portfolio", "PortfolioEntry", "add_checkpoint",
           "build_portfolio"]


def __getattr__(name: str) -> Any:
    if name in _WORKFLOW:
        return getattr(importlib.import_module("automl_chars.workflows.portfolio"), name)
    raise AttributeError(f"module 'automl_chars.portfolio' has no attribute {name!r}")
