"""A simulated clock for replayed sweeps: results reach Tune in the order of simulated time.

A replayed epoch takes no time, so under plain Tune the results of trials run side by side
arrive in whatever order Ray delivers them, and a searcher would learn from a trial's ninth
epoch before another's first. With the clock, each replayed trial, before it reports an epoch,
registers the epoch's end (the clock's ``now`` plus the stored epoch's seconds) with
:class:`SimulatedClock`, an asynchronous Ray actor, and waits until its event is the earliest
one that can still happen: every trial Tune runs has registered its next event, Tune has acted
on every result released so far, and no free slot is about to be filled by a trial that would
start at ``now``. :class:`ClockCallback` (a Tune callback in the driver) tells the clock what Tune
runs at the end of every controller step. So a sweep of ``parallelism`` trials at a time is the
asynchronous sweep it simulates, whatever Ray's latencies: the searcher, the scheduler and the
warm start see results in the order of simulated time, and ``sim_time`` in each result is when
it became visible on the simulated clock (Ray's start-up and overheads left out).

The rule can only delay a release, never reorder one: an event is released once nothing can
come before it. If the driver stops reporting (it crashed) a waiting event is released after
``patience_s`` of wall time, and counted in ``forced``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial

from automl_chars.errors import InvalidConfigError
from automl_chars.layout import write_json

#: The result key holding the simulated time at which a replayed result became visible.
SIM_TIME = "sim_time"
#: The events file a clocked run writes into its folder (one row per released result).
EVENTS_FILE = "simulated_time.csv"
#: The clock's final state (``now``, ``released``, ``forced``, ``parallelism``), beside it.
CLOCK_FILE = "simulated_clock.json"


@dataclass(frozen=True)
class DriverView:
    """What Tune runs, as the driver saw it at the end of a controller step.

    Attributes:
        running: ids of the trials Tune runs (status RUNNING).
        processed: per trial, the replayed results Tune has handled so far.
        settled: no trial is about to start at the current simulated time (every slot is
            busy, or Tune has had a full step since anything last changed and started none).
    """

    running: tuple[str, ...]
    processed: dict[str, int]
    settled: bool


@ray.remote(num_cpus=0, max_concurrency=1000)
class SimulatedClock:
    """The clock's state: simulated ``now``, the events waiting to be released, and the
    driver's latest :class:`DriverView` (module docstring)."""

    def __init__(self, patience_s: float = 30.0):
        self.now = 0.0
        self.released = 0
        self.released_to: dict[str, int] = {}  # per trial: events released to it
        self.forced = 0
        self.patience_s = patience_s
        self.view: DriverView | None = None
        self.waiting: dict[str, tuple[float, asyncio.Future]] = {}
        self._timer: asyncio.TimerHandle | None = None

    async def tick(self, trial_id: str, seconds: float) -> float:
        """Registers ``trial_id``'s next event, ``seconds`` after ``now``; returns the
        simulated time at which it is released."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[trial_id] = (self.now + max(0.0, float(seconds)), future)
        self._try_release()
        return await future

    def report(self, view: DriverView) -> None:
        """The driver's view after a controller step."""
        self.view = view
        self._try_release()

    def forget(self, trial_id: str) -> None:
        """``trial_id`` errored (its actor died, or Tune retries it from a checkpoint): an
        event released to it may never reach Tune, and one it was waiting for is void."""
        self.released_to.pop(trial_id, None)
        entry = self.waiting.pop(trial_id, None)
        if entry is not None and not entry[1].done():
            entry[1].cancel()
        self._try_release()

    def state(self) -> dict:
        """``now``, events released, forced releases and events waiting."""
        return {"now": self.now, "released": self.released, "forced": self.forced,
                "waiting": len(self.waiting)}

    def _ready(self) -> bool:
        v = self.view
        return (v is not None and v.settled
                and all(v.processed.get(t, 0) >= n for t, n in self.released_to.items())
                and all(t in self.waiting for t in v.running))

    def _try_release(self) -> None:
        if not self.waiting:
            return
        if self._ready():
            self._release()
        elif self._timer is None:
            released = self.released
            self._timer = asyncio.get_running_loop().call_later(
                self.patience_s, self._force, released)

    def _force(self, released_then: int) -> None:
        self._timer = None
        if self.waiting and self.released == released_then:
            self.forced += 1
            self._release()
        elif self.waiting:
            self._try_release()

    def _release(self) -> None:
        trial_id = min(self.waiting, key=lambda t: (self.waiting[t][0], t))
        finish, future = self.waiting.pop(trial_id)
        self.now = max(self.now, finish)
        self.released += 1
        self.released_to[trial_id] = self.released_to.get(trial_id, 0) + 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        future.set_result(self.now)


def clock_name(run_folder: str) -> str:
    """The actor name of the clock of the replayed run in ``run_folder``."""
    return f"automl-chars-clock-{hashlib.sha1(run_folder.encode()).hexdigest()[:16]}"


class ClockCallback(Callback):
    """Starts a replayed run's :class:`SimulatedClock` (named ``name``, which the replayed
    trials look up), reports Tune's state to it after every controller step, and writes the
    released results to :data:`EVENTS_FILE` in the run's folder at the end.

    Args:
        name: the clock's actor name (:func:`clock_name`), given to the trials too.
        parallelism: trials Tune runs at a time (what the resources allow).
        patience_s: wall seconds a waiting event waits for a driver report before it is
            released anyway (a safeguard; ``forced`` counts them).
    """

    def __init__(self, name: str, parallelism: int, patience_s: float = 30.0):
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise InvalidConfigError(f"A simulated clock's parallelism must be a whole number "
                                     f">= 1, got {parallelism!r}.")
        self.name, self.parallelism, self.patience_s = name, parallelism, patience_s
        self.clock = None
        self.processed: dict[str, int] = {}
        self.last_change = -10  # the controller step in which the trials last changed
        self.statuses: tuple = ()
        self.events: list[dict] = []
        self.forced = 0

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self.clock = SimulatedClock.options(name=self.name).remote(self.patience_s)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if SIM_TIME in result:
            self.processed[trial.trial_id] = self.processed.get(trial.trial_id, 0) + 1
            self.last_change = iteration + 1  # on_step_end numbers this step one higher
            self.events.append({"sim_time": result[SIM_TIME], "trial_id": trial.trial_id,
                                **{k: result.get(k) for k in EVENT_KEYS}})

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._forget(trial)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self._forget(trial)

    def _forget(self, trial) -> None:
        self.processed.pop(trial.trial_id, None)
        if self.clock is not None:
            self.clock.forget.remote(trial.trial_id)

    def on_step_end(self, iteration, trials, **info) -> None:
        if self.clock is None:
            return
        statuses = tuple((t.trial_id, t.status) for t in trials)
        if statuses != self.statuses:  # a trial was added, started, paused, stopped, ...
            self.statuses, self.last_change = statuses, iteration
        running = tuple(t.trial_id for t in trials if t.status == Trial.RUNNING)
        starting = any(t.status == Trial.PENDING for t in trials)
        free = self.parallelism - len(running)
        # With a slot free, Tune may start a trial in the step after any change (the searcher
        # asks for one trial at a time, HyperBand unpauses one at a time): wait a full step.
        settled = free <= 0 or (not starting and iteration >= self.last_change + 1)
        self.clock.report.remote(DriverView(running, dict(self.processed), settled))

    def state(self) -> dict:
        """The clock's :meth:`SimulatedClock.state` (while the run is on)."""
        return ray.get(self.clock.state.remote())

    def on_experiment_end(self, trials, **info) -> None:
        state = {}
        if self.clock is not None:
            try:
                state = ray.get(self.clock.state.remote())
                self.forced = state["forced"]
            finally:
                ray.kill(self.clock)
                self.clock = None
        if trials:
            with _run_folder(trials[0].storage) as folder:
                write_events(folder / EVENTS_FILE, self.events)
                write_json(folder / CLOCK_FILE, {"parallelism": self.parallelism, **state})


@contextlib.contextmanager
def _run_folder(storage) -> Iterator[Path]:
    """A local folder whose files end up in the run's folder: that folder itself, or, for a
    run stored at a URI (``s3://``), a temporary one uploaded into it at the end."""
    import pyarrow.fs

    if isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
        yield Path(storage.experiment_fs_path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)
        pyarrow.fs.copy_files(tmp, storage.experiment_fs_path,
                              destination_filesystem=storage.storage_filesystem)


#: Result keys kept per released event, besides ``sim_time`` and the trial id.
EVENT_KEYS = ("training_iteration", "val_acc", "config_id", "budget", "time_this_iter_s")


def write_events(path: Path, events: list[dict]) -> None:
    """The released results, in release order, as CSV, written atomically (a temporary name
    renamed into place: a killed driver never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["sim_time", "trial_id", *EVENT_KEYS]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(events)
    os.replace(tmp, path)


def wait_for(name: str, trial_id: str, seconds: float) -> float:
    """In a replayed trial: registers an event ``seconds`` long on clock ``name`` and blocks
    until it is released; returns its simulated time."""
    return ray.get(_clock(name).tick.remote(trial_id, seconds))


_handles: dict[str, object] = {}


def _clock(name: str):
    if name not in _handles:
        _handles[name] = ray.get_actor(name)
    return _handles[name]


__all__ = ["CLOCK_FILE", "EVENTS_FILE", "SIM_TIME", "ClockCallback", "DriverView", "SimulatedClock",
           "clock_name", "wait_for", "write_events"]
