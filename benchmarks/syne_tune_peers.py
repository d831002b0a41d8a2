"""Syne Tune's transfer-learning baselines replayed on a learning-curve table.

``warm_start_table.py`` compares its searchers with two of Syne Tune's transfer methods, run on
the same curves through Syne Tune's own simulator (simulated time, no sleeping):

- ``zero_shot``: ``ZeroShotTransfer`` (Wistuba et al. 2015): configurations in the order that
  minimises their average rank on the source datasets, each trained to the top budget
  (deterministic: the seed changes nothing);
- ``bounding_box``: ``BoundingBox`` (Perrone et al. 2019) around ASHA: random search with
  asynchronous successive halving over the best configuration of each source dataset
  (:data:`BOX_TOP_K`), drawn with replacement, so workers often train the same one side by side.

Both rank a source's configurations by their best epoch's val_acc (Syne Tune's rule), not
their last, so one that diverged after a good epoch still ranks by that epoch.

Syne Tune has no conditional spaces, so the search space is one categorical hyperparameter,
``config_id``, over the table's configurations; every dataset shares them, so transfer works
through their identity. Leave-one-out: the transfer evaluations come from every dataset but the
target, whose rows only the simulator reads. Syne Tune is a benchmark-only dependency
(:data:`INSTALL`), imported when a peer runs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

from automl_chars.tabular import LearningCurveTable

PEERS = ("zero_shot", "bounding_box")
#: syne-tune's blackbox module imports huggingface_hub without declaring it.
INSTALL = "pip install syne-tune==0.16.0 huggingface_hub"
#: Best configurations per source dataset that span BoundingBox's box (Syne Tune's default).
BOX_TOP_K = 1
#: Simulated seconds the tuner waits while every worker is busy, as a share of the target's
#: median epoch: a freed worker idles at most this long (Syne Tune's default is a fixed 5 s).
TICK_SHARE = 0.1
#: Syne Tune's simulated latencies (start, result, completion, stop; its default 0.05 s each)
#: are set to this, as automl_chars' simulated clock leaves such overheads out too.
DELAY_S = 0.0
_ELAPSED = "elapsed_s"


def available() -> str | None:
    """None when syne-tune (with its blackbox simulator) imports, else a one-line reason.
    Importing it calls ``logging.basicConfig()``; the root logger is put back as it was, so
    that it does not change what the rest of the process logs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import syne_tune.blackbox_repository  # noqa: F401
    except ImportError as err:
        return f"Syne Tune peers skipped ({err}); install them with `{INSTALL}`"
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return None


def objectives(table: LearningCurveTable, dataset: str) -> np.ndarray:
    """``dataset``'s curves as Syne Tune takes them: shape (configurations in id order, 1 seed,
    epochs, 2): val_acc and cumulative epoch_seconds. Syne Tune cannot take NaN, so a failed
    configuration reports val_acc 0.0, instantly (no seconds), from the epoch it failed on."""
    rows = table.frame.query("dataset == @dataset")
    shape = {"index": sorted(table.configs), "columns": range(1, table.epochs + 1)}
    acc, secs = (rows.pivot(index="config_id", columns="epoch", values=v).reindex(**shape)
                 for v in ("val_acc", "epoch_seconds"))
    elapsed = secs.fillna(0.0).cumsum(axis=1)
    return np.stack([acc.fillna(0.0).to_numpy(), elapsed.to_numpy()], axis=-1)[:, None]


def run_peer(method: str, table: LearningCurveTable, target: str, seed: int, horizon_s: float,
             n_workers: int = 4, max_trials: int | None = None) -> pd.DataFrame:
    """Runs Syne Tune's ``method`` (one of :data:`PEERS`) on ``target``'s curves in Syne Tune's
    simulator with ``n_workers``, transferring from every other dataset of ``table``, seeded by
    ``seed``, until simulated ``horizon_s`` or after at most ``max_trials`` trials (each run to
    its end or the horizon).

    Returns one row per result reported, in the order the simulator made them visible (it
    hands over a tuner step's results grouped by trial; sorted stably by time): ``sim_time``
    (simulated seconds since the start: stored epoch seconds, plus at most a tick of idling per
    freed worker, see :data:`TICK_SHARE`), ``val_acc`` (0.0 for a failed epoch, as Syne Tune
    cannot take NaN; see :func:`objectives`), ``config_id`` and ``budget`` (epochs)."""
    if method not in PEERS:
        raise ValueError(f"Unknown Syne Tune peer {method!r}; choose from {PEERS}.")
    return simulate(table, target, lambda space, sources: _scheduler(
        method, space, sources, table.epochs, seed), seed, horizon_s, n_workers, max_trials)


def simulate(table: LearningCurveTable, target: str, make_scheduler: Callable[[dict, dict], Any],
             seed: int, horizon_s: float, n_workers: int = 4,
             max_trials: int | None = None) -> pd.DataFrame:
    """:func:`run_peer` for any scheduler: ``make_scheduler(space, sources)`` gives a Syne Tune
    scheduler over ``space`` (``config_id``) given the other datasets' evaluations ``sources``
    (name -> TransferLearningTaskEvaluations); numpy's global generator is seeded by ``seed``."""
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository import UserBlackboxBackend
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.config_space import choice, randint
    from syne_tune.optimizer.schedulers.transfer_learning import transfer_learning_task_evaluation

    if target not in table.datasets or len(table.datasets) < 2:
        raise ValueError(f"The target {target!r} must be one of the table's datasets "
                         f"{table.datasets}, and another must be left to transfer from.")
    ids = sorted(table.configs)
    space = {"config_id": choice(ids)}
    hyperparameters = pd.DataFrame({"config_id": ids})
    sources = {name: transfer_learning_task_evaluation.TransferLearningTaskEvaluations(
        configuration_space=space, hyperparameters=hyperparameters, objectives_names=["val_acc"],
        objectives_evaluations=objectives(table, name)[..., :1])
        for name in table.datasets if name != target}

    class TableBlackbox(BlackboxTabular):
        """Finds a configuration's row by its id: BlackboxTabular's own lookup (a tuple key into
        an index of one column) fails with pandas 3.1 ("zip() argument 2 is longer ...")."""

        def _objective_function(self, configuration: Any, fidelity: dict | None = None,
                                seed: int | None = None) -> Any:
            row = int(np.searchsorted(ids, configuration["config_id"]))
            values = super()._objective_function(row, None, seed)  # every epoch
            if fidelity is None:
                return values
            return dict(zip(self.objectives_names, values[self.fidelity_map[
                next(iter(fidelity.values()))]]))

    blackbox = TableBlackbox(
        hyperparameters=hyperparameters, configuration_space=space,
        fidelity_space={"epoch": randint(1, table.epochs)},
        objectives_evaluations=objectives(table, target), objectives_names=["val_acc", _ELAPSED])
    secs = table.frame.query("dataset == @target")["epoch_seconds"].dropna()
    tick = min(5.0, TICK_SHARE * float(secs.median())) if len(secs) else 5.0
    results = SimulatorCallback()
    # Syne Tune writes its results under SYNETUNE_FOLDER (default ~/syne-tune) and prints
    # banners and per-trial lines on stdout: both go to a throw-away place.
    with _numpy_seeded(seed), tempfile.TemporaryDirectory() as folder, \
            mock.patch.dict(os.environ, {"SYNETUNE_FOLDER": folder}), \
            contextlib.redirect_stdout(io.StringIO()):
        scheduler = make_scheduler(space, sources)
        if max_trials is not None:
            _cap(scheduler, max_trials)
        backend = UserBlackboxBackend(blackbox=blackbox, elapsed_time_attr=_ELAPSED, seed=0,
                                      tuner_sleep_time=tick,
                                      simulator_config=SimulatorConfig(*[DELAY_S] * 5))
        # Syne Tune adds the real seconds spent outside the backend (the scheduler's thinking)
        # to simulated time; the clock it is compared with leaves them out, and so a seeded run
        # repeats exactly
        backend.time_keeper.real_time_since_last_recent_exit = lambda: 0.0
        Tuner(trial_backend=backend, scheduler=scheduler, n_workers=n_workers, sleep_time=0,
              stop_criterion=StoppingCriterion(max_wallclock_time=horizon_s),
              callbacks=[results], save_tuner=False, tuner_name="peer").run()
    rows = pd.DataFrame(results.results,
                        columns=["st_tuner_time", "val_acc", "config_config_id", "epoch"])
    rows.columns = ["sim_time", "val_acc", "config_id", "budget"]
    rows = rows.astype({"sim_time": float, "val_acc": float, "config_id": int, "budget": int})
    rows = rows.sort_values("sim_time", kind="stable")
    return rows[rows["sim_time"] <= horizon_s].reset_index(drop=True)


def _scheduler(method: str, space: dict[str, Any], sources: dict[str, Any], epochs: int,
               seed: int) -> Any:
    """Syne Tune's scheduler for ``method``, maximising val_acc."""
    from syne_tune.config_space import cast_config_values, choice, postprocess_config
    from syne_tune.optimizer.scheduler import TrialSuggestion
    from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving
    from syne_tune.optimizer.schedulers.transfer_learning.bounding_box import BoundingBox
    from syne_tune.optimizer.schedulers.transfer_learning.zero_shot import ZeroShotTransfer

    if method == "bounding_box":
        def asha(box: dict, metric: str, do_minimize: bool, random_seed: int) -> Any:
            # the box holds numpy ints, which ASHA's searcher refuses
            box = {"config_id": choice([int(i) for i in box["config_id"].categories])}
            return AsynchronousSuccessiveHalving(
                box, metric=metric, do_minimize=do_minimize, time_attr="epoch", max_t=epochs,
                random_seed=random_seed)

        return BoundingBox(asha, config_space=space, metric="val_acc", do_minimize=False,
                           transfer_learning_evaluations=sources,
                           num_hyperparameters_per_task=BOX_TOP_K, random_seed=seed)

    class RankedZeroShot(ZeroShotTransfer):
        """ZeroShotTransfer that suggests its ranked configurations: in syne-tune 0.16.0 (and
        its main branch) ``suggest`` is SingleObjectiveScheduler's, which asks a random
        searcher, and ``get_config`` is never called, so it would be random search."""

        def suggest(self) -> TrialSuggestion | None:
            config = self.get_config()
            if config is None:
                return None
            config = cast_config_values(config, self.config_space)
            return TrialSuggestion.start_suggestion(postprocess_config(config, self.config_space))

    log = logging.getLogger(ZeroShotTransfer.__module__)
    level = log.level
    log.setLevel(logging.ERROR)  # its warning that every task must hold every config: they do
    try:
        return RankedZeroShot(config_space=space, metric="val_acc", do_minimize=False,
                              transfer_learning_evaluations=sources, random_seed=seed)
    finally:
        log.setLevel(level)


def _cap(scheduler: Any, max_trials: int) -> None:
    """Makes ``scheduler`` suggest nothing after ``max_trials`` trials, which Syne Tune's tuner
    reads as an exhausted space: it lets the running trials finish, then stops (its own
    ``max_num_trials_started`` stops a trial late and cuts the running ones)."""
    suggest, started = scheduler.suggest, [0]

    def capped() -> Any:
        started[0] += 1
        return suggest() if started[0] <= max_trials else None

    scheduler.suggest = capped


@contextlib.contextmanager
def _numpy_seeded(seed: int) -> Iterator[None]:
    """Seeds numpy's global generator for a run, then restores it: Syne Tune's random searcher
    and ASHA's bracket draws use it, not their ``random_seed``."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
