"""The sweep's own console output: one line per finished trial (Ray Tune's own output prints every
trial's 48-value configuration, which drowns a sweep's progress), a progress line (trials
finished, running, pending, failed, the best accuracy so far, time elapsed and an ETA from the
budget still to run), and Ray's lines kept out of it.

In a terminal the progress line is one line that updates in place below the trial lines (rich);
where output is not a terminal (a log file, a pipe, CI) it is a plain line every
:data:`PLAIN_EVERY_S` seconds and one at the end.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from ray.tune.callback import Callback
from ray.tune.experiment import Trial

from automl_chars.spaces.values import SUGGESTED_BY
from automl_chars.trainables.keys import FAILURE, INFEASIBLE, JOB

#: Seconds between plain progress lines (output that is not a terminal), and a last one at the end.
PLAIN_EVERY_S = 30.0
#: Seconds between updates of the live line (a terminal).
LIVE_EVERY_S = 0.25


# -- what the progress line says (pure) ----------------------------------------------------------
@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: trials by state (``pending`` counts those not yet created and those
    paused between rungs), the best value of ``metric`` (what the run optimises) any result
    reported (NaN before one), seconds since the driver (re)started, budget units trained and
    planned (None: unknown), and the ETA in seconds (None: unknown)."""

    total: int
    finished: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    best: float = float("nan")
    elapsed: float = 0.0
    done_units: float = 0.0
    planned_units: float | None = None
    eta: float | None = None
    metric: str = "val_acc"


def better(value: float, than: float, mode: str = "max") -> bool:
    """Whether ``value`` (not NaN) beats ``than`` (NaN: nothing yet) under ``mode``."""
    if value != value:
        return False
    return than != than or (value > than if mode == "max" else value < than)


def trial_counts(trials: Iterable, total: int, ending: tuple[str, str] | None = None,
                 ended: Collection[str] | None = None) -> dict[str, int]:
    """``finished`` (ended with a result), ``failed`` (a failure a retry cannot fix, or Tune's
    ERROR), ``running`` and ``pending`` (waiting, paused between rungs, or not yet created) among
    ``total`` trials, from Tune's ``Trial`` objects. ``ending``: ``(trial_id, status)`` of a trial
    Tune is ending (its callbacks run before its status changes). ``ended``: the trials known to
    have ended; a TERMINATED one not among them was stopped by an interrupt (Tune's graceful
    stop marks running trials TERMINATED) and is pending: the resume trains it on."""
    counts = {"finished": 0, "failed": 0, "running": 0, "pending": 0}
    seen = 0
    for t in trials:
        seen += 1
        status = ending[1] if ending and t.trial_id == ending[0] else t.status
        if status == Trial.TERMINATED and ended is not None and t.trial_id not in ended:
            counts["pending"] += 1
        elif status == Trial.ERROR or (status == Trial.TERMINATED
                                     and (t.last_result or {}).get(FAILURE)):
            counts["failed"] += 1
        elif status == Trial.TERMINATED:
            counts["finished"] += 1
        elif status == Trial.RUNNING:
            counts["running"] += 1
        else:
            counts["pending"] += 1
    counts["pending"] += max(0, total - seen)
    return counts


def units_trained(trials: Iterable) -> float:
    """Budget units the trials have trained (each one's ``training_iteration``: a trial paused
    and promoted trains on from its checkpoint, so its count goes on)."""
    return float(sum((t.last_result or {}).get("training_iteration", 0) or 0 for t in trials))


def eta_seconds(done_units: float, planned_units: float | None, seconds: float,
                units_before: float = 0.0) -> float | None:
    """Seconds left for the budget still to run at the rate of the last ``seconds``, in which
    ``done_units - units_before`` units were trained: ``(planned - done) / rate``. None while the
    plan is unknown, no unit has been trained in that time, or the run trained past its plan
    (a warm start's seeds train to the top budget at once: the plan is an estimate) while it
    goes on: not 0 while trials still train (the caller says 0 once none is left)."""
    if planned_units is not None and done_units >= planned_units:
        return None
    trained = done_units - units_before
    if planned_units is None or trained <= 0 or seconds <= 0:
        return None
    return (planned_units - done_units) * seconds / trained


def clock(seconds: float | None) -> str:
    """``42s``, ``3:05`` (min:s) or ``1:02:03`` (h:min:s); ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def progress_text(p: RunProgress) -> str:
    """``5/20 done, 2 running, 12 pending, 1 failed | best 0.8123 | ETA 3:10, 1:02 elapsed``
    (``done`` counts the failed too; what a narrow terminal cuts off is the end); ``best reward
    0.7012`` for a metric other than the validation accuracy."""
    best = f"{p.best:.4f}" if p.best == p.best else "-"
    name = "" if p.metric == "val_acc" else f"{p.metric} "
    return (f"{p.finished + p.failed}/{p.total} done, {p.running} running, {p.pending} pending, "
            f"{p.failed} failed | best {name}{best} | ETA {clock(p.eta)}, {clock(p.elapsed)} "
            f"elapsed")


# -- where it is shown ---------------------------------------------------------------------------
class PlainProgress:
    """Plain lines (``progress: ...``), for output that is not a terminal."""

    def __init__(self, stream: TextIO | None = None, every: float = PLAIN_EVERY_S):
        self.stream, self.every, self.last = stream, every, time.monotonic()

    def due(self, trial_ended: bool = False) -> bool:
        """Whether :meth:`update` would print now (a trial's end does not hasten a plain line)."""
        return time.monotonic() - self.last >= self.every

    def update(self, p: RunProgress, force: bool = False) -> None:
        if force or self.due():
            self.last = time.monotonic()
            print(f"progress: {progress_text(p)}", file=self.stream or sys.stdout, flush=True)

    def stop(self, p: RunProgress | None = None) -> None:
        if p is not None:
            self.update(p, force=True)


class LiveProgress:
    """One line that updates in place (rich), :func:`progress_text` after a spinner. Lines
    printed meanwhile (the trial lines) appear above it."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self.last = 0.0
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.fields[status]}"),
                            console=Console(file=stream), refresh_per_second=4,
                            redirect_stdout=True, redirect_stderr=True)
        self.task = self.bar.add_task("sweep", total=None, status="starting")
        self.bar.start()
        _LIVE.add(self)

    def due(self, trial_ended: bool = False) -> bool:
        """Whether to redraw now: when a trial ends, else every :data:`LIVE_EVERY_S`."""
        return trial_ended or time.monotonic() - self.last >= LIVE_EVERY_S

    def update(self, p: RunProgress, force: bool = False) -> None:
        self.last = time.monotonic()
        self.bar.update(self.task, status=progress_text(p))

    def stop(self, p: RunProgress | None = None) -> None:
        if p is not None:
            self.update(p, force=True)
        self.bar.stop()
        _LIVE.discard(self)


#: Live lines being shown: :func:`live_lines_stopped` stops them however a run ends (Ctrl-C
#: ends ``fit()`` without Tune's ``on_experiment_end``).
_LIVE: set[LiveProgress] = set()


@contextmanager
def live_lines_stopped() -> Iterator[None]:
    """Stops every live progress line started inside, however the block ends, so the terminal
    gets its cursor and its stdout back."""
    try:
        yield
    finally:
        for line in list(_LIVE):
            line.stop()


def progress_display(stream: TextIO) -> LiveProgress | PlainProgress:
    """A live line where ``stream`` is a terminal, plain lines elsewhere."""
    isatty = getattr(stream, "isatty", None)
    return LiveProgress(stream) if isatty is not None and isatty() else PlainProgress(stream)


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
    as trials end (``metric`` in place of ``val_acc`` where the run optimises another, best by
    ``mode``), the origin as :func:`trial_origin` names it, and, with ``live``, the progress
    line (:class:`RunProgress`: a live line in a terminal, plain lines elsewhere). After a resume
    the count goes on from the trials that had already ended.

    Args:
        total: trials the run will have.
        experiment_path: the run's folder.
        descriptions: job label -> what the line calls that trial (``run_trials``' jobs).
        planned_units: budget units the whole run trains (the ETA counts them down; None: no ETA).
        live: show the progress line (the default verbosity; Tune's own output replaces it above).
        metric, mode: what the run optimises (the spec's).
    """

    def __init__(self, total: int, experiment_path: str,
                 descriptions: Mapping[str, str] | None = None,
                 planned_units: float | None = None, live: bool = False,
                 metric: str = "val_acc", mode: str = "max"):
        # No stream attribute: Tune pickles callbacks into tuner.pkl, and files do not pickle.
        # (One pickled before descriptions, planned_units or live existed has none: hence the
        # getattr calls below.)
        self.total, self.done, self.best = total, 0, float("nan")
        self.metric, self.mode = metric, mode
        self.experiment_path = experiment_path
        self.descriptions = dict(descriptions or {})
        self.planned_units, self.live = planned_units, live
        self.start = time.time()
        self.counted: set[str] = set()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_display", None)  # a live line holds the terminal: never pickled
        return state

    def setup(self, **info) -> None:
        # Also called when a sweep is resumed (Tune restores this object from tuner.pkl, as it
        # was when the sweep started): the count is taken again from the restored trials.
        self.start = time.time()
        self.counted = None  # recount at the first step
        self.best_any, self.rate_base = float("nan"), None
        print(f"Sweep of {self.total} trials in {self.experiment_path}\n"
              f"TensorBoard: tensorboard --logdir {self.experiment_path}", flush=True)
        self._display = progress_display(sys.stdout) if getattr(self, "live", False) else None

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.counted is None:
            ended = [t for t in trials if t.status in (Trial.TERMINATED, Trial.ERROR)]
            self.counted = {t.trial_id for t in ended}
            self.done = len(ended)
            self.best = self._best(ended)
            self.best_any = self._best(trials)
            if ended:
                print(f"Resumed: {self.done} of {self.total} trials had ended.", flush=True)

    def on_step_end(self, iteration, trials, **info) -> None:
        self._show(trials)

    def _metric_mode(self) -> tuple[str, str]:
        # a callback pickled before metric and mode existed has neither: the accuracy's
        return getattr(self, "metric", "val_acc"), getattr(self, "mode", "max")

    def _best(self, trials) -> float:
        """The best ``metric`` among the last results of ``trials`` (NaN: none)."""
        metric, mode = self._metric_mode()
        best = float("nan")
        for t in trials:
            value = (t.last_result or {}).get(metric, float("nan"))
            if better(value, best, mode):
                best = value
        return best

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        metric, mode = self._metric_mode()
        if better(result.get(metric, float("nan")), getattr(self, "best_any", float("nan")), mode):
            self.best_any = result[metric]
        if getattr(self, "rate_base", None) is None:  # the ETA's rate counts from here
            before = (trial.last_result or {}).get("training_iteration", 0) or 0
            self.rate_base = (time.time(), units_trained(trials) - before
                              + (result.get("training_iteration", 0) or 0))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        last = trial.last_result or {}
        failure, infeasible = last.get(FAILURE), last.get(INFEASIBLE)
        self._line(trial, f" FAILED: {failure}" if failure else
                   f" INFEASIBLE: {infeasible}" if infeasible else "")
        self._show(trials, (trial.trial_id, Trial.TERMINATED))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._line(trial, " ERROR")
        self._show(trials, (trial.trial_id, Trial.ERROR))

    def on_experiment_end(self, trials, **info) -> None:
        display = getattr(self, "_display", None)
        if display is not None:
            # Ended: the trials whose end this callback saw (after a Ctrl-C, Tune has marked
            # the running ones TERMINATED without ending them).
            display.stop(self.progress(trials, ended=self.counted))
            self._display = None

    def progress(self, trials, ending: tuple[str, str] | None = None,
                 ended: Collection[str] | None = None) -> RunProgress:
        """Where the run stands, from Tune's trials (see :class:`RunProgress`; ``ending`` and
        ``ended`` as :func:`trial_counts` takes them). The ETA's rate counts from the first
        result this driver saw, so neither Ray's start nor units trained before a resume skew
        it."""
        units, now = units_trained(trials), time.time()
        base = getattr(self, "rate_base", None)
        planned = getattr(self, "planned_units", None)
        counts = trial_counts(trials, self.total, ending, ended)
        eta = (0.0 if counts["running"] + counts["pending"] == 0 else  # failures end trials early
               None if base is None else eta_seconds(units, planned, now - base[0], base[1]))
        return RunProgress(self.total, **counts,
                           best=getattr(self, "best_any", float("nan")),
                           elapsed=now - self.start, done_units=units, planned_units=planned,
                           eta=eta, metric=self._metric_mode()[0])

    def _show(self, trials, ending: tuple[str, str] | None = None) -> None:
        display = getattr(self, "_display", None)
        if display is not None and display.due(trial_ended=ending is not None):
            display.update(self.progress(trials, ending))

    def _line(self, trial, note: str) -> None:
        if self.counted is not None:
            if trial.trial_id in self.counted:
                return
            self.counted.add(trial.trial_id)
        self.done += 1
        r = trial.last_result or {}
        metric, mode = self._metric_mode()
        value = r.get(metric, float("nan"))
        if better(value, self.best, mode):
            self.best = value
        # best: of every result so far, as the progress line says (a trial still training at
        # the top budget may hold it)
        any_best = getattr(self, "best_any", float("nan"))
        best = any_best if better(any_best, self.best, mode) else self.best
        print(f"[{self.done:>3}/{self.total}] {trial.trial_id}  budget {r.get('training_iteration', 0):>3}"
              f"  {metric} {value:.4f}  best {best:.4f}  "
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
