"""``ReplayTrainable``: a configuration's stored learning curve, reported epoch by epoch.

A trial of a replayed sweep trains nothing: it looks its configuration up in a
:class:`~automl_chars.tabular.LearningCurveTable` and reports, per budget unit, the metrics
stored for that epoch on the sweep's dataset. Searchers, schedulers (``HyperBandForBOHB``'s
pauses and checkpoints included) and warm starts see what a trained trial would have reported,
so they run unchanged, in seconds instead of hours. ``time_this_iter_s`` is the stored epoch's
seconds, so Tune's ``time_total_s`` is the trial's simulated training time.

A configuration is given as ``{"config_id": k}``, or as any configuration of the space the
table was drawn from: the table's configuration equal or nearest to it runs
(:class:`~automl_chars.tabular.nearest.ConfigIndex`; ``config_id`` and ``snap_distance`` are in
every result). Failed epochs (NaN in the table) become failed results, as a trained trial
reports them. With ``clock`` (a :class:`~automl_chars.trainables.simclock.ClockCallback`'s
name), results reach Tune in the order of simulated time and carry ``sim_time``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ray import tune

from automl_chars.errors import InvalidConfigError
from automl_chars.layout import read_json, write_json
from automl_chars.spaces.values import plain_config, strip_meta
from automl_chars.tabular import LearningCurveTable
from automl_chars.tabular.nearest import ConfigIndex
from automl_chars.trainables.keys import FAILURE, JOB
from automl_chars.trainables.simclock import SIM_TIME, wait_for

if TYPE_CHECKING:  # only annotations: a replay's actor imports neither torch nor the data
    from automl_chars.data.dataset import Dataset
    from automl_chars.training.fidelity import Fidelity

#: The configuration key naming a table configuration directly.
CONFIG_ID = "config_id"
#: The file of a replay checkpoint.
REPLAY_STATE_FILE = "replay.json"
#: What to do about a damaged :data:`REPLAY_STATE_FILE`.
REPLAY_REMEDY = ("No replayed trial can resume from it: Tune ends the trial restoring it as "
                 "errored and the rest of the run goes on. A replay trains nothing: run the "
                 "replayed sweep again under another name.")
#: Result keys of a replayed epoch and the table columns they come from.
REPORTED = {"val_acc": "val_acc", "val_loss": "val_loss", "train_acc": "train_acc",
            "train_loss": "train_loss", "epoch_s": "epoch_seconds", "num_params": "num_params"}


def lookup(table: LearningCurveTable, config: Mapping[str, Any],
           index: ConfigIndex | None = None) -> tuple[int, float]:
    """``(config id, distance)`` of ``config`` in ``table``: ``{"config_id": k}``, or the
    table's configuration equal (distance 0) or nearest to it (``index`` built with a space)."""
    config = plain_config(strip_meta(config))  # a searcher's numpy scalars as Python values
    if CONFIG_ID in config:
        cid = config[CONFIG_ID]
        if isinstance(cid, bool) or not isinstance(cid, int) or cid not in table.configs:
            raise InvalidConfigError(f"config_id {cid!r} is not a configuration of the table; "
                                     f"its ids are 0..{max(table.configs)}.")
        return cid, 0.0
    return (index or ConfigIndex(table.configs)).lookup(config)


class ReplayTrainable(tune.Trainable):
    """Replays ``table``'s curve of the trial's configuration on ``dataset`` (its name in the
    table, or a :class:`Dataset` of that name): ``tune.with_parameters(ReplayTrainable,
    table=..., dataset=..., index=ConfigIndex(table.configs, space), clock=name)``."""

    metric: ClassVar[str] = "val_acc"
    mode: ClassVar[str] = "max"
    #: Sweeps hand it the dataset's name, not the data (see ``run_bohb``).
    needs_data: ClassVar[bool] = False

    def setup(self, config: dict, table: LearningCurveTable | None = None,
              dataset: str | Dataset | None = None, fidelity: Fidelity | None = None,
              seed: int = 0, jobs: Mapping | None = None, index: ConfigIndex | None = None,
              clock: str | None = None) -> None:
        """``fidelity`` (a sweep's) must count epochs, at most the table's; ``index`` finds
        the nearest configuration (exact lookups only without it); ``clock`` names the run's
        simulated clock; ``seed`` and ``jobs`` are taken for the runners' common signature and
        not used."""
        self.table, self.dataset_name = self.check_parameters(table, dataset, fidelity)
        self.index = index if index is not None else ConfigIndex(table.configs)
        self.clock = clock
        self._start(config)

    @classmethod
    def check_parameters(cls, table: Any, dataset: Any, fidelity: Fidelity | None = None,
                         ) -> tuple[LearningCurveTable, str]:
        """The table and dataset name to replay; raises naming what is missing or wrong."""
        if not isinstance(table, LearningCurveTable):
            raise InvalidConfigError("ReplayTrainable needs a LearningCurveTable: "
                                     "tune.with_parameters(ReplayTrainable, table=..., dataset=...).")
        name = getattr(dataset, "name", dataset)  # a Dataset, or its name
        if name not in table.datasets:
            raise InvalidConfigError(f"The learning-curve table has no dataset {name!r}; it has "
                                     f"{table.datasets}.")
        if fidelity is not None and fidelity.kind != "epochs":
            raise InvalidConfigError(f"A replay's budget unit is the table's epoch; fidelity "
                                     f"{fidelity.kind!r} cannot be replayed.")
        if fidelity is not None and fidelity.max_budget > table.epochs:
            raise InvalidConfigError(f"The table holds {table.epochs} epochs; a replayed sweep's "
                                     f"max_budget ({fidelity.max_budget}) cannot exceed it.")
        return table, name

    def _start(self, config: Mapping[str, Any]) -> None:
        self.config_id, self.snap_distance = lookup(self.table, config, self.index)
        self.curve = self.table.curve(self.config_id, self.dataset_name)
        self.units_done = 0
        self.failure_reported = False

    def step(self) -> dict:
        unit = self.units_done + 1
        if unit > self.table.epochs:  # a run without a fidelity asked for more than was stored
            raise InvalidConfigError(f"The table holds {self.table.epochs} epochs; a replayed "
                                     f"trial cannot train for more.")
        row = self.curve.loc[unit]
        if math.isnan(row["val_acc"]):
            return self._on_clock(self._failed_result(row))
        self.units_done = unit
        return self._on_clock({**{key: float(row[col]) for key, col in REPORTED.items()},
                               "budget": unit, "time_this_iter_s": float(row["epoch_seconds"]),
                               "config_id": self.config_id, "snap_distance": self.snap_distance,
                               "device": "replay"})

    def _on_clock(self, result: dict) -> dict:
        """``result`` once the simulated clock releases it (at once without a clock)."""
        if self.clock is not None:
            result[SIM_TIME] = wait_for(self.clock, self.trial_id, result["time_this_iter_s"])
        return result

    def _failed_result(self, row) -> dict:
        """The stored failure as a trained trial reports it: NaN metrics and the reason; a
        second one ends the trial."""
        nan = float("nan")
        result = {"val_acc": nan, "val_loss": nan, "train_acc": nan, "train_loss": nan,
                  "budget": self.units_done, "config_id": self.config_id, "device": "replay",
                  FAILURE: row["error"] or f"no result at epoch {self.units_done + 1}",
                  "time_this_iter_s": 0.0}
        if self.failure_reported:
            result["done"] = True
        self.failure_reported = True
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        last = self.curve.loc[self.units_done] if self.units_done else None
        write_json(Path(checkpoint_dir) / REPLAY_STATE_FILE, {
            "config_id": self.config_id, "dataset": self.dataset_name,
            "units_done": self.units_done, "failure_reported": self.failure_reported,
            "val_acc": float(last["val_acc"]) if last is not None else None,
            "test_acc": float(last["test_acc"]) if last is not None else None})

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        state = read_json(Path(checkpoint_dir) / REPLAY_STATE_FILE, REPLAY_REMEDY)
        self._start({CONFIG_ID: state["config_id"]})
        self.units_done, self.failure_reported = state["units_done"], state["failure_reported"]

    def reset_config(self, new_config: dict) -> bool:
        self._start({k: v for k, v in new_config.items() if k != JOB})
        return True

    @classmethod
    def check_space(cls, space, dataset: Dataset, table: LearningCurveTable | None = None,
                    **parameters: Any) -> None:
        """Raises unless the table has ``dataset`` (before Ray starts)."""
        cls.check_parameters(table, dataset)

    @staticmethod
    def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset,
                            split: str = "test") -> float:
        """The stored accuracy on ``split`` (``val`` or ``test``) at the checkpoint's epoch."""
        if split not in ("val", "test"):
            raise InvalidConfigError(f"A replay stores val and test accuracy, not {split!r}.")
        state = read_json(Path(checkpoint_dir) / REPLAY_STATE_FILE, REPLAY_REMEDY)
        value = state.get(f"{split}_acc")
        return float("nan") if value is None else float(value)


__all__ = ["CONFIG_ID", "ReplayTrainable", "lookup"]
