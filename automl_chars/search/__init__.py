"""Searchers, schedulers and the one sweep runner (Ray Tune's TuneBOHB + HyperBandForBOHB).

Names load on first use, so that reading a finished sweep (``automl_chars.runner.result``,
``automl-chars show``) imports neither Ray nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "PRESETS": "presets",
    "BOHBPreset": "presets",
    "get_preset": "presets",
    "SweepResult": "automl_chars.runner.result",
    "ResumableHyperBandForBOHB": "scheduler",
    "SchedulerStateCallback": "scheduler",
    "BOHBSearcher": "searcher",
    "BracketSearcher": "searcher",
    "SPECS": "spec",
    "SweepSpec": "spec",
    "cnn_spec": "spec",
    "SweepSettings": "automl_chars.runner.sweep",
    "build_search": "bohb",
    "run_bohb": "automl_chars.runner.sweep",
    "WarmStart": "warmstart",
    "WarmStartSearcher": "warmstart",
    "PMFSearcher": "pmf",
    "plan_warm_start": "warmstart",
    "TrialJob": "automl_chars.runner.trials",
    "run_trials": "automl_chars.runner.trials",
}

__all__ = [
    "PRESETS", "SPECS", "BOHBPreset", "BOHBSearcher", "BracketSearcher",
    "PMFSearcher", "ResumableHyperBandForBOHB", "SchedulerStateCallback", "SweepResult", "SweepSettings",
    "SweepSpec", "TrialJob", "WarmStart", "WarmStartSearcher", "build_search", "cnn_spec",
    "get_preset", "plan_warm_start", "run_bohb", "run_trials",
]

if TYPE_CHECKING:  # pragma: no cover
    from automl_chars.runner.result import SweepResult
    from automl_chars.runner.sweep import SweepSettings, run_bohb
    from automl_chars.runner.trials import TrialJob, run_trials
    from automl_chars.search.bohb import build_search
    from automl_chars.search.pmf import PMFSearcher
    from automl_chars.search.presets import PRESETS, BOHBPreset, get_preset
    from automl_chars.search.scheduler import ResumableHyperBandForBOHB, SchedulerStateCallback
    from automl_chars.search.searcher import BOHBSearcher, BracketSearcher
    from automl_chars.search.spec import SPECS, SweepSpec, cnn_spec
    from automl_chars.search.warmstart import WarmStart, WarmStartSearcher, plan_warm_start


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = _LAZY[name]
        if "." not in module:
            module = f"automl_chars.search.{module}"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'automl_chars.search' has no attribute {name!r}")
