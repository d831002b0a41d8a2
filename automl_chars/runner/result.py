"""``SweepResult``: the trials of a sweep as a DataFrame, its incumbent, and seed 001's table row.

Files written to the experiment folder (beside Ray's own state):

- ``automl_chars.json``: the sweep's settings (written at start, read on resume);
- ``trials.csv``: :attr:`SweepResult.trials`;
- ``summary.json``: incumbent, its test accuracy, the table row, counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from automl_chars.errors import DamagedFileError, ExperimentStateError
from automl_chars.layout import (
    SETTINGS_FILE,
    SUMMARY_FILE,
    TRIALS_FILE,
    read_csv,
    read_json,
    run_folder,
    write_csv,
    write_json,
)
from automl_chars.spaces.values import SUGGESTED_BY
from automl_chars.trainables.keys import COSTS_ERROR
from automl_chars.training.objective import COST_METRICS, OBJECTIVE, Objective

#: Metric columns of :attr:`SweepResult.trials`, in order (``objective``: sweeps with one).
METRIC_COLUMNS = ("val_acc", "val_loss", "train_acc", "train_loss", "epoch_s", "num_params",
                  "data_fraction", "samples_seen", "shape_adjustments", "time_total_s",
                  *COST_METRICS, OBJECTIVE)
#: Columns of :attr:`SweepResult.trials` present when a trial reported them: AutotuneLR's chosen
#: learning rate and seconds, BSGuard's shrinks of the batch, why the model's costs could not be
#: measured (they are NaN).
OPTIONAL_COLUMNS = ("autotuned_lr", "autotune_s", "batch_shrinks", COSTS_ERROR)
#: The status of a trial whose model broke the sweep's cost limits (it trained nothing).
INFEASIBLE_STATUS = "INFEASIBLE"
#: Statuses of trials that are no result: never the incumbent, in a table or a Pareto front.
NOT_RESULTS = ("FAILED", INFEASIBLE_STATUS)
#: Columns of seed 001's results table (:attr:`SweepResult.table`).
TABLE_COLUMNS = ("dataset", "preset", "val_acc", "train_acc", "test_acc", "runtime_s")
#: What to do about a damaged ``summary.json`` or ``trials.csv`` (Ray Tune's state is intact).
REWRITE_HINT = (f"Move {SUMMARY_FILE} aside (rename it) and run the sweep again with resume=True "
                f"(command line: the same command with --resume): its finished trials are kept "
                f"and {SUMMARY_FILE} and {TRIALS_FILE} are written again.")


@dataclass
class SweepResult:
    """The outcome of :func:`automl_chars.run_bohb`.

    Attributes:
        trials: one row per trial: ``trial_id``, ``status``, ``suggested_by`` (model / random /
            given), ``budget`` (budget units reached), ``device`` (``cuda`` or ``cpu``: where
            it trained), ``node_id`` (the Ray node of its last result), the metrics of its last
            result
            (:data:`METRIC_COLUMNS`: the model's costs, ``objective`` in a sweep with one;
            :data:`OPTIONAL_COLUMNS` where reported), ``error``, and its configuration as
            ``config/<name>``. ``status`` ``INFEASIBLE``:
            a model over the sweep's cost limits (the reason in ``error``; it trained nothing).
        incumbent: the best configuration (best :attr:`metric` among the trials that reached
            the highest budget, never a failed or infeasible one), plain Python values; in a
            sweep with AutotuneLR its ``learning_rate`` is the rate its trial chose.
        incumbent_trial_id: Ray's id of that trial.
        test_accuracy: the incumbent's accuracy on the test split, evaluated once at the end.
        path: the experiment folder.
        settings: the sweep settings (dataset, preset, fidelity, seed, ...).
    """

    trials: pd.DataFrame
    incumbent: dict
    incumbent_trial_id: str
    test_accuracy: float
    path: Path
    settings: dict = field(default_factory=dict)

    @property
    def objective(self) -> Objective:
        """The sweep's objective (plain accuracy unless it had limits or a reward)."""
        return Objective.from_description(self.settings.get("objective"))

    @property
    def metric(self) -> str:
        """What the sweep maximised: ``objective`` with an objective, else ``val_acc``."""
        return OBJECTIVE if self.objective.active else "val_acc"

    @property
    def results(self) -> pd.DataFrame:
        """The trials that are results (:func:`results_of`: no failed or infeasible one)."""
        return results_of(self.trials, self.metric)

    @property
    def n_infeasible(self) -> int:
        """Trials whose model broke the sweep's cost limits."""
        return int((self.trials["status"] == INFEASIBLE_STATUS).sum())

    @property
    def n_model_based(self) -> int:
        """How many configurations BOHB's model proposed (the rest were random)."""
        return int((self.trials[SUGGESTED_BY] == "model").sum())

    @property
    def table(self) -> pd.DataFrame:
        """Seed 001's table row: validation, train and test accuracy of the incumbent, runtime."""
        inc = self.trials.set_index("trial_id").loc[self.incumbent_trial_id]
        row = {
            "dataset": self.settings.get("dataset"),
            "preset": self.settings.get("preset"),
            "val_acc": float(inc["val_acc"]),
            "train_acc": float(inc["train_acc"]),
            "test_acc": float(self.test_accuracy),
            "runtime_s": runtime_seconds(self.trials, self.settings.get("started_at")),
        }
        return pd.DataFrame([row], columns=list(TABLE_COLUMNS))

    def save(self) -> None:
        """Writes ``trials.csv``, then ``summary.json`` (the mark of a finished sweep) into
        :attr:`path`, each atomically."""
        write_csv(self.path / TRIALS_FILE, self.trials)
        write_json(self.path / SUMMARY_FILE, {
            "incumbent": self.incumbent,
            "incumbent_trial_id": self.incumbent_trial_id,
            "test_accuracy": self.test_accuracy,
            "n_trials": len(self.trials),
            "n_model_based": self.n_model_based,
            "n_infeasible": self.n_infeasible,
            "table": self.table.iloc[0].to_dict(),
            "settings": self.settings,
        })

    @classmethod
    def load(cls, path: str | os.PathLike) -> SweepResult:
        """Reads a finished sweep's folder (as written by :meth:`save`; a path or a storage URI);
        a damaged ``summary.json`` or ``trials.csv`` raises
        :class:`~automl_chars.errors.DamagedFileError` naming it and how to write it again."""
        path = run_folder(path)
        summary_file, trials_file = path / SUMMARY_FILE, path / TRIALS_FILE
        if not path.is_dir():
            raise ExperimentStateError(
                f"{path} does not exist{'' if not path.exists() else ' as a folder'}: pass a "
                f"sweep's folder (the 'Experiment:' line a sweep prints, e.g. "
                f"~/automl_chars_results/bohb-<dataset>-<preset>)."
            )
        if summary_file.exists() and not trials_file.exists():  # written first: lost since
            raise DamagedFileError(trials_file, "it is missing", REWRITE_HINT)
        if not summary_file.exists():
            state = "an unfinished sweep (resume it with --resume)" if (path / SETTINGS_FILE).exists() \
                else "not a sweep folder"
            raise ExperimentStateError(
                f"{path} has no {SUMMARY_FILE}: {state}."
            )
        summary = read_json(summary_file, REWRITE_HINT)
        missing = [k for k in ("incumbent", "incumbent_trial_id", "test_accuracy")
                   if k not in summary]
        if missing:
            raise DamagedFileError(summary_file, f"it lacks {missing}", REWRITE_HINT)
        trials = read_csv(trials_file, REWRITE_HINT, ("trial_id", "status", "budget", "val_acc"),
                          dtype={"trial_id": str})
        incumbent, expected = str(summary["incumbent_trial_id"]), summary.get("n_trials")
        if expected is not None and expected != len(trials):
            raise DamagedFileError(trials_file, f"truncated: {len(trials)} of the {expected} "
                                   f"trials {SUMMARY_FILE} counts", REWRITE_HINT)
        if incumbent not in set(trials["trial_id"]):
            raise DamagedFileError(trials_file, f"truncated or garbled: it lacks the incumbent "
                                   f"trial {incumbent}", REWRITE_HINT)
        return cls(trials, summary["incumbent"], incumbent, summary["test_accuracy"], path,
                   summary.get("settings", {}))

    def __repr__(self) -> str:
        return (f"SweepResult({len(self.trials)} trials, {self.n_model_based} from the model, "
                f"test_accuracy={self.test_accuracy:.4f}, path={str(self.path)!r})")


def runtime_seconds(trials: pd.DataFrame, started_at: float | None) -> float:
    """Wall time from the sweep's first start to its last result (a resumed sweep's downtime
    included, as the runtimes of seed 001's tables would)."""
    if started_at is None or "timestamp" not in trials or trials["timestamp"].isna().all():
        return float("nan")
    return float(trials["timestamp"].max() - started_at)


def results_of(trials: pd.DataFrame, metric: str = "val_acc") -> pd.DataFrame:
    """The trials that are results: a finite ``metric``, neither failed nor infeasible."""
    done = trials.dropna(subset=[metric])
    if "status" in done:
        done = done[~done["status"].isin(NOT_RESULTS)]
    return done


def pick_incumbent(trials: pd.DataFrame, metric: str = "val_acc", mode: str = "max") -> str:
    """Trial id of the best ``metric`` among the trials that reached the highest budget (failed
    trials, whose metric is NaN, and infeasible ones, over a sweep's cost limits, never count).
    Errored trials (Ray's ``ERROR``: their process or checkpoint gave out before their budget)
    count only when no other trial has a result: their last checkpoint may not restore."""
    return incumbent_order(trials, metric, mode)[0]


def incumbent_order(trials: pd.DataFrame, metric: str = "val_acc", mode: str = "max") -> list[str]:
    """Every result's trial id, the incumbent first (see :func:`pick_incumbent`), then the
    runners-up: finished trials before errored ones, higher budgets first, best ``metric``
    first, ties by trial id. A sweep whose incumbent's checkpoint is damaged evaluates the next."""
    done = results_of(trials, metric)
    if done.empty:
        infeasible = int((trials.get("status") == INFEASIBLE_STATUS).sum()) \
            if "status" in trials else 0
        if infeasible:
            raise ExperimentStateError(
                f"No trial met the sweep's cost limits ({infeasible} infeasible: each one's "
                f"reason is its error); raise the limits (max_params, max_flops, "
                f"max_latency_ms) or search a space of smaller models.")
        raise ExperimentStateError("No trial reported a result; see the trials' errors.")
    errored = (done["status"] == "ERROR") if "status" in done else False
    order = done.assign(_errored=errored).sort_values(
        ["_errored", "budget", metric, "trial_id"], ascending=[True, False, mode == "min", True])
    return [str(t) for t in order["trial_id"]]
