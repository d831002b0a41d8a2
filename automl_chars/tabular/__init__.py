"""Learning-curve tables: per-epoch results of fixed configurations on several datasets, read,
written and checked here (no Ray); :func:`automl_chars.workflows.table.build_table` builds one."""

from automl_chars.tabular.table import (
    COLUMNS,
    METRICS,
    TABLE_FORMAT,
    LearningCurveTable,
    TableManifest,
    manifest_for,
)

__all__ = ["COLUMNS", "METRICS", "TABLE_FORMAT", "LearningCurveTable", "TableManifest",
           "manifest_for"]
