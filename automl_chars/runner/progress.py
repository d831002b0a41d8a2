"""The sweep's own console output: one line per finished trial (Ray Tune's own output prints every
trial's 48-value configuration, which drowns a sweep's progress), and Ray's lines kept out of it."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ray.tune.callback import Callback
from ray.tune.experiment import Trial

from automl_chars.spaces.values import SUGGESTED_BY
from automl_chars.trainables.keys import FAILURE, INFEASIBLE, JOB


def trial_origin(config: Mapping, descriptions: Mapping[str, str] | None = None) -> str:
    """What a progress line says a trial is: a job of ``run_trials`` by its description (the
    portfolio source, the supernet's sampler, the subnet; its label where none is given), a
    sweep's trial by what suggested it (``model``, ``random``, ``given``), else ``?``."""
    job = config.get(JOB)
    if job is not None:
        return (descriptions or {}).get(job) or str(job)
    return str(config.get(SUGGESTED_BY, "?"))


class TrialLineCallback(Callback):
    """Prints where the sweep writes, then ``[done/total] trial_id budget val_acc best (origin)``
    as trials end, the origin as :func:`trial_origin` names it. After a resume the count goes on
    from the trials that had already ended.

    Args:
        total: trials the run will have.
        experiment_path: the run's folder.
        descriptions: job label -> what the line calls that trial (``run_trials``' jobs).
    """

    def __init__(self, total: int, experiment_path: str,
                 descriptions: Mapping[str, str] | None = None):
        # No stream attribute: Tune pickles callbacks into tuner.pkl, and files do not pickle.
        # (One pickled before descriptions existed has none: hence getattr in _line.)
        self.total, self.done, self.best = total, 0, float("-inf")
        self.experiment_path = experiment_path
        self.descriptions = dict(descriptions or {})
        self.start = time.time()
        self.counted: set[str] = set()

    def setup(self, **info) -> None:
        # Also called when a sweep is resumed (Tune restores this object from tuner.pkl, as it
        # was when the sweep started): the count is taken again from the restored trials.
        self.start = time.time()
        self.counted = None  # recount at the first step
        print(f"Sweep of {self.total} trials in {self.experiment_path}\n"
              f"TensorBoard: tensorboard --logdir {self.experiment_path}", flush=True)

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.counted is None:
            ended = [t for t in trials if t.status in (Trial.TERMINATED, Trial.ERROR)]
            self.counted = {t.trial_id for t in ended}
            self.done = len(ended)
            accs = [(t.last_result or {}).get("val_acc", float("nan")) for t in ended]
            self.best = max([a for a in accs if a == a], default=float("-inf"))
            if ended:
                print(f"Resumed: {self.done} of {self.total} trials had ended.", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        last = trial.last_result or {}
        failure, infeasible = last.get(FAILURE), last.get(INFEASIBLE)
        self._line(trial, f" FAILED: {failure}" if failure else
                   f" INFEASIBLE: {infeasible}" if infeasible else "")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._line(trial, " ERROR")

    def _line(self, trial, note: str) -> None:
        if self.counted is not None:
            if trial.trial_id in self.counted:
                return
            self.counted.add(trial.trial_id)
        self.done += 1
        r = trial.last_result or {}
        acc = r.get("val_acc", float("nan"))
        if acc == acc:
            self.best = max(self.best, acc)
        print(f"[{self.done:>3}/{self.total}] {trial.trial_id}  budget {r.get('training_iteration', 0):>3}"
              f"  val_acc {acc:.4f}  best {self.best:.4f}  "
              f"({trial_origin(trial.config or {}, getattr(self, 'descriptions', None))})"
              f"  {time.time() - self.start:7.1f}s{note}", file=sys.stdout, flush=True)


#: Ray's messages that say nothing to a user of the sweep runner at the default verbosity: the
#: runner prints its own resume line (Tune's names ``Tuner.restore``), trials that never reported
#: have no metrics to fetch, and token authentication is on by design (docs/local.md).
RAY_NOISE = ("Experiment has been interrupted", "Stop signal received", "Failed to fetch metrics",
             "Trials did not complete", "Token authentication is enabled",
             # A paused trial resumed before its result.json reached the storage path: the
             # logger goes on appending to the driver's own copy, so nothing is lost.
             "Remote file not found")


#: Loggers whose :data:`RAY_NOISE` is filtered at the source: ``ray.init`` may replace the "ray"
#: logger's handlers (its ``logging_config``), which would drop a filter put on them.
NOISY_LOGGERS = ("ray._private.authentication.authentication_token_setup",)


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(RAY_NOISE)


@contextmanager
def quiet_ray_output(verbose: int) -> Iterator[None]:
    """Below ``verbose=2``, Ray's driver-side INFO lines ("Started a local Ray instance", "Wrote
    the latest version of all result files ...") and :data:`RAY_NOISE` stay out of the sweep's
    output; other warnings still print. Everything is restored afterwards."""
    if verbose > 1:
        yield
        return
    ray_logger = logging.getLogger("ray")
    loggers = [ray_logger, logging.getLogger("ray.tune")]
    levels = [lg.level for lg in loggers]
    handlers = [h for lg in loggers for h in lg.handlers]
    for lg, level in zip(loggers, levels):
        lg.setLevel(max(logging.WARNING, level))
    filtered = handlers + [logging.getLogger(name) for name in NOISY_LOGGERS]
    for f in filtered:
        f.addFilter(_not_noise)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        for f in filtered:
            f.removeFilter(_not_noise)
