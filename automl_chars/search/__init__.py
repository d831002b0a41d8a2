"""Searchers, schedulers and the sweep runner (Ray Tune's TuneBOHB + HyperBandForBOHB)."""

from automl_chars.search.presets import PRESETS, BOHBPreset, get_preset
from automl_chars.search.result import SweepResult
from automl_chars.search.scheduler import ResumableHyperBandForBOHB, SchedulerStateCallback
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.sweep import SweepSettings, build_search, run_bohb

__all__ = [
    "PRESETS",
    "BOHBPreset",
    "BOHBSearcher",
    "ResumableHyperBandForBOHB",
    "SchedulerStateCallback",
    "SweepResult",
    "SweepSettings",
    "build_search",
    "get_preset",
    "run_bohb",
]
