"""automl_chars: AutoML for character image classification on Ray Tune.

Heavy modules (Ray, torch) load on first use, so ``import automl_chars`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "run_bohb": "automl_chars.runner.sweep",
    "SweepResult": "automl_chars.runner.result",
    "PRESETS": "automl_chars.search.presets",
    "BOHBPreset": "automl_chars.search.presets",
    "report": "automl_chars.reporting.page",
}
_SUBMODULES = ("data", "spaces", "models", "training", "trainables", "search", "reporting")

__all__ = ["BOHBPreset", "PRESETS", "SweepResult", "report", "run_bohb", *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover
    from automl_chars.reporting.page import report
    from automl_chars.runner.result import SweepResult
    from automl_chars.runner.sweep import run_bohb
    from automl_chars.search.presets import PRESETS, BOHBPreset


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"automl_chars.{name}")
    raise AttributeError(f"module 'automl_chars' has no attribute {name!r}")
