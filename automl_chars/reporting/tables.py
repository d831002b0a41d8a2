"""Seed 001's results tables from sweep results, as DataFrames and as text."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from automl_chars.runner.result import SweepResult
from automl_chars.spaces.values import SUGGESTED_BY
from automl_chars.training.objective import OBJECTIVE

#: Column names as in seed 001's tables.
SEED_001_COLUMNS = {
    "dataset": "Dataset",
    "preset": "eta_min_max_iter (BOHB)",
    "val_acc": "Validation Accuracy",
    "train_acc": "Train Accuracy",
    "test_acc": "Test Accuracy",
    "runtime_s": "BOHB Runtime",
}


def results_table(results: Iterable[SweepResult]) -> pd.DataFrame:
    """One row per sweep: dataset, preset, validation/train/test accuracy, runtime in seconds."""
    frames = [r.table for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SEED_001_COLUMNS))


def format_runtime(seconds: float) -> str:
    """``"42s"``, ``"12.5min"`` or ``"3.2h"``."""
    if seconds != seconds:  # NaN
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """Seed 001's table with its column names, accuracies in percent and runtimes in readable
    units (as text: printed by :func:`format_table`, shown on the report page)."""
    shown = table.copy()
    for col in ("val_acc", "train_acc", "test_acc"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.2f}%")
    shown["runtime_s"] = shown["runtime_s"].map(format_runtime)
    return shown.rename(columns=SEED_001_COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    """The table as seed 001 prints it: accuracies in percent, runtimes in readable units."""
    return readable_table(table).to_string(index=False)


def top_trials(result: SweepResult, n: int = 10) -> pd.DataFrame:
    """The ``n`` best trials at the highest budget each reached, best first (by the sweep's
    metric: ``objective`` in a sweep with one); failed and infeasible trials are left out. The
    model's costs are shown where the trials report them, and AutotuneLR's chosen learning rate
    in a sweep that tuned it."""
    metric = result.metric
    t = result.results
    cols = ["trial_id", "suggested_by", "budget", "val_acc", "train_acc", "num_params"]
    cols += [c for c in ("params", "flops", "latency_ms") if c in t and t[c].notna().any()]
    cols += [OBJECTIVE] if metric == OBJECTIVE else []
    cols += ["autotuned_lr"] if "autotuned_lr" in t else []
    return t.sort_values(["budget", metric], ascending=[False, False])[cols + ["status"]].head(n)


def seeded_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """A warm start's trials (suggested by a portfolio or the store): where each came from and
    how it did."""
    by = trials[SUGGESTED_BY].astype(str)
    seeded = trials[by.str.startswith(("portfolio:", "store:"))]
    return seeded[["trial_id", SUGGESTED_BY, "budget", "val_acc", "status"]]
