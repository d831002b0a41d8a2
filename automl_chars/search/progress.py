"""One console line per finished trial: Ray Tune's own output prints every trial's 47-value
configuration, which drowns a sweep's progress."""

from __future__ import annotations

import sys
import time

from ray.tune.callback import Callback

from automl_chars.spaces.values import SUGGESTED_BY


class TrialLineCallback(Callback):
    """Prints where the sweep writes, then ``[done/total] trial_id budget val_acc (model|random)``
    as trials end."""

    def __init__(self, total: int, experiment_path: str):
        # No stream attribute: Tune pickles callbacks into tuner.pkl, and files do not pickle.
        self.total, self.done, self.best = total, 0, float("-inf")
        self.experiment_path = experiment_path
        self.start = time.time()

    def setup(self, **info) -> None:
        # Also called when a sweep is resumed (Tune restores this object from tuner.pkl).
        self.start = time.time()
        print(f"Sweep of {self.total} trials in {self.experiment_path}\n"
              f"TensorBoard: tensorboard --logdir {self.experiment_path}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._line(trial, "")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._line(trial, " ERROR")

    def _line(self, trial, note: str) -> None:
        self.done += 1
        r = trial.last_result or {}
        acc = r.get("val_acc", float("nan"))
        if acc == acc:
            self.best = max(self.best, acc)
        print(f"[{self.done:>3}/{self.total}] {trial.trial_id}  budget {r.get('training_iteration', 0):>3}"
              f"  val_acc {acc:.4f}  best {self.best:.4f}  ({trial.config.get(SUGGESTED_BY, '?')})"
              f"  {time.time() - self.start:7.1f}s{note}", file=sys.stdout, flush=True)
