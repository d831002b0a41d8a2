"""Seed 001's transfer table for any source sweep and target dataset, from one call.

Rows (each trained on the target; the first three for the source sweep's top budget):

- ``default configuration``: the CNN space's default, from scratch (the untuned baseline);
- ``source incumbent as-is``: the source sweep's incumbent configuration, from scratch;
- ``model transfer``: the incumbent's trained weights fine-tuned (a new head for the target's
  classes, the pretrained part at a tenth of the learning rate);
- ``configuration transfer + BOHB``: BOHB over :func:`~automl_chars.spaces.config_transfer_space`
  (the incumbent with channel counts, FC layers and units, batch size, LR schedule, optimizer and
  augmentation set free), its incumbent.

Columns: validation, train and test accuracy and runtime, as in seed 001's tables.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from automl_chars.data import Dataset, load
from automl_chars.layout import experiment_dir, write_csv, write_json
from automl_chars.portfolio import Portfolio, add_checkpoint
from automl_chars.runner.result import SweepResult
from automl_chars.runner.sweep import run_bohb
from automl_chars.runner.trials import TrialJob, run_trials
from automl_chars.search.spec import transfer_spec
from automl_chars.spaces import SEED_001_FREE, config_transfer_space

ROWS = ("default configuration", "source incumbent as-is", "model transfer",
        "configuration transfer + BOHB")
TABLE_FILE = "transfer_table.csv"
#: Fine-tuning settings of the ``model transfer`` row.
FINE_TUNE = {"body_lr_factor": 0.1, "freeze": 0.0}


def transfer_table(
    source: SweepResult | str | os.PathLike,
    target: str | Dataset,
    preset: str = "3_1_9_3",
    epochs: int | None = None,
    *,
    source_dataset: str | Dataset | None = None,
    storage_path: str | os.PathLike | None = None,
    name: str | None = None,
    seed: int = 0,
    resume: bool = False,
    gpus_per_trial: float = 0.0,
    data_root: str | os.PathLike | None = None,
    verbose: int = 1,
) -> pd.DataFrame:
    """Seed 001's four ways to get a model for ``target`` from a finished CNN sweep on a source.

    Args:
        source: the source's finished sweep (or its folder); its dataset must load by name.
        target: the target dataset.
        preset: BOHB preset of the configuration-transfer sweep.
        epochs: training epochs of the three single-model rows (default: the source sweep's
            maximum budget).
        source_dataset: the source sweep's dataset (default: loaded by the name it recorded;
            pass it when it was loaded with options, e.g. ``samples_per_class``).
        storage_path, name: the table's folder ``<storage>/<name>`` (default
            ``transfer-<source>-to-<target>``) holds each run and ``transfer_table.csv``.
        resume: continue an interrupted table; finished parts are read back.

    Returns:
        One row per entry of :data:`ROWS`: ``row``, ``val_acc``, ``train_acc``, ``test_acc``,
        ``runtime_s``.
    """
    src = source if isinstance(source, SweepResult) else SweepResult.load(source)
    if src.settings.get("trainable", "cnn") != "cnn":
        raise ValueError(f"transfer_table needs a CNN sweep as source; {src.path} swept "
                         f"{src.settings.get('trainable')!r}.")
    target_ds = load(target, root=data_root)
    source_ds = load(source_dataset or src.settings["dataset"], root=data_root)
    if source_ds.fingerprint() != src.settings.get("dataset_fingerprint", source_ds.fingerprint()):
        raise ValueError(f"The source dataset {source_ds.name!r} has other contents than the one "
                         f"{src.path} swept; pass the same data as source_dataset.")
    epochs = int(epochs or src.settings["max_budget"])
    folder = experiment_dir(storage_path, name or f"transfer-{source_ds.name}-to-{target_ds.name}")
    folder.mkdir(parents=True, exist_ok=True)
    common = dict(storage_path=folder, seed=seed, gpus_per_trial=gpus_per_trial, verbose=verbose)

    start = time.time()
    scratch = run_trials([TrialJob(ROWS[0], target_ds, {}),
                          TrialJob(ROWS[1], target_ds, src.incumbent)], "cnn", epochs,
                         name="scratch", resume=resume and (folder / "scratch").exists(), **common)
    portfolio = _incumbent_portfolio(src, source_ds, folder / "portfolio")
    transfer = run_trials([TrialJob(ROWS[2], target_ds, {"source": source_ds.name, **FINE_TUNE,
                                                        **_training_part(src.incumbent)})],
                          transfer_spec(portfolio), epochs, name="model-transfer",
                          resume=resume and (folder / "model-transfer").exists(), **common)
    space = config_transfer_space(src.incumbent, SEED_001_FREE, seed=seed)
    bohb = run_bohb(target_ds, space=space, preset=preset, name="config-transfer-bohb",
                    resume=resume and (folder / "config-transfer-bohb").exists(), **common)

    rows = [_trial_row(scratch, ROWS[0]), _trial_row(scratch, ROWS[1]),
            _trial_row(transfer, ROWS[2]), {"row": ROWS[3], **bohb.table.iloc[0][
                ["val_acc", "train_acc", "test_acc", "runtime_s"]].to_dict()}]
    table = pd.DataFrame(rows, columns=["row", "val_acc", "train_acc", "test_acc", "runtime_s"])
    write_csv(folder / TABLE_FILE, table)
    write_json(folder / "transfer.json", {"source": str(src.path), "target": target_ds.name,
                                          "epochs": epochs, "preset": preset, "seed": seed,
                                          "wall_s": time.time() - start})
    return table


def _incumbent_portfolio(src: SweepResult, source_ds: Dataset, folder: Path) -> Portfolio:
    """A one-entry portfolio holding the source incumbent's trained weights."""
    if (folder / "manifest.json").exists():
        return Portfolio.load(folder)
    checkpoint = _incumbent_checkpoint(src)
    row = src.trials.set_index("trial_id").loc[src.incumbent_trial_id]
    portfolio = Portfolio(folder)
    add_checkpoint(portfolio, source_ds, checkpoint,
                   {"val_acc": row["val_acc"], "test_acc": src.test_accuracy,
                    "epochs": row["budget"], "seconds": row.get("time_total_s"),
                    "device": row.get("device") or "cpu"}, "cnn")
    return portfolio


def _incumbent_checkpoint(src: SweepResult) -> Path:
    folders = sorted(src.path.glob(f"*_{src.incumbent_trial_id}/checkpoint_*"))
    if not folders:
        raise FileNotFoundError(f"No checkpoint of the incumbent {src.incumbent_trial_id} "
                                f"in {src.path}.")
    return folders[-1]


def _training_part(incumbent: dict) -> dict:
    """The incumbent's optimizer settings, for fine-tuning its own weights."""
    keys = ("optimizer", "learning_rate", "momentum", "weight_decay", "batch_size")
    return {k: incumbent[k] for k in keys if k in incumbent}


def _trial_row(run, label: str) -> dict:
    r = run.row(label)
    return {"row": label, "val_acc": r["val_acc"], "train_acc": r["train_acc"],
            "test_acc": r["test_acc"], "runtime_s": r["seconds"]}


__all__ = ["ROWS", "transfer_table"]
