"""A small hand-made learning-curve table for the tests of tests/tabular (no Ray)."""

from __future__ import annotations

import math

import pandas as pd

from automl_chars.spaces import cnn_space, default_config
from automl_chars.tabular import LearningCurveTable, manifest_for

NAN = math.nan
#: val_acc per (config, dataset) over 3 epochs; config 2 diverged at epoch 2 on "b".
CURVES = {
    (0, "a"): [0.2, 0.4, 0.5], (1, "a"): [0.3, 0.35, 0.6], (2, "a"): [0.1, 0.5, 0.55],
    (0, "b"): [0.5, 0.6, 0.7], (1, "b"): [0.6, 0.6, 0.65], (2, "b"): [0.7, NAN, NAN],
}


def make_table(curves=CURVES, epochs=3) -> LearningCurveTable:
    """A table of ``curves`` (test accuracy = val_acc - 0.05, status FAILED where NaN)."""
    rows = []
    for (cid, ds), accs in curves.items():
        failed = any(math.isnan(a) for a in accs)
        for epoch, acc in enumerate(accs, 1):
            rows.append({"config_id": cid, "dataset": ds, "epoch": epoch, "val_acc": acc,
                         "val_loss": 1 - acc, "test_acc": acc - 0.05, "test_loss": 1.1 - acc,
                         "train_acc": acc + 0.1, "train_loss": 0.9 - acc, "epoch_seconds": 0.5,
                         "num_params": 1000.0 + cid, "status": "FAILED" if failed else "TERMINATED",
                         "error": "loss diverged at budget 2" if failed else ""})
    datasets = [{"name": n, "fingerprint": f"fp-{n}", "num_classes": 10,
                 "meta_features": {"log_classes": 2.3}} for n in ("a", "b")]
    configs = {0: default_config(), 1: {"learning_rate": 0.01}, 2: {"learning_rate": 0.5}}
    manifest = manifest_for(datasets, configs, cnn_space(), epochs, samples_per_class=4, seed=7,
                            hardware={"device": "cpu"})
    return LearningCurveTable(pd.DataFrame(rows), manifest)
