"""One Ray Tune run lifecycle (:mod:`.core`): settings checks, joining Ray (:mod:`.cluster`), a
Tuner new or restored, ``fit`` under interrupts (:mod:`.interrupts`) with atomic uploads, trial
rows; and the two runners on it: :func:`~.sweep.run_bohb` (a BOHB sweep of any spec) and
:func:`~.trials.run_trials` (given configurations as parallel trials). Results:
:class:`~.result.SweepResult`. Names load on first use."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"run_bohb": "sweep", "SweepSettings": "sweep", "run_trials": "trials",
         "TrialJob": "trials", "TrialsResult": "trials", "SweepResult": "result"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"automl_chars.runner.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'automl_chars.runner' has no attribute {name!r}")
