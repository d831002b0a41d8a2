"""Ray Tune's cost per short ``CNNTrainable`` trial: fixed part, per-trial part, actor reuse.

A BOHB sweep runs many short trials (the first rung trains one budget unit), so what Tune spends
around each trial (scheduling, ``reset_config()``, result handling, logging, checkpoint writes,
experiment-state snapshots) matters as much as the training itself. This benchmark runs sweeps
through ``tune.Tuner`` on ``CNNTrainable`` **configured the way** ``run_bohb`` **configures
Tune** (through the same functions of ``automl_chars/runner/core.py``: ``run_config``,
``trial_dirname``, ``environment`` and ``_tune_environment``): ``reuse_actors=True``,
``CheckpointConfig(checkpoint_frequency=1, num_to_keep=2)``, a ``TBXLoggerCallback`` besides
Tune's automatic CSV and JSON loggers, ``TrialLineCallback`` (its lines swallowed), short trial
folder names, ``FailureConfig(max_failures=2)``, ``RAY_AIR_NEW_OUTPUT=0``,
``TUNE_DISABLE_SIGINT_HANDLER=1``, ``TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S=0``
and one pending trial at a time (``TUNE_MAX_PENDING_TRIALS_PG=1``, what Tune's "auto" gives
run_bohb's BOHB searcher; the grid used here would get 200), a temporary ``storage_path``. It
leaves out the BOHB searcher and the HyperBand scheduler (the trials come from a grid);
``--sweep run_bohb`` measures ``automl_chars.search.run_bohb`` itself instead (searching the
learning rate, ``min_budget = max_budget = --iterations``), with them and its final test
evaluation.

Every trial is a tiny CNN (4 channels, batch 32) with its own learning rate, trained on tiny data
(``--per-class`` random 28x28 images per class, 4 classes) for ``--iterations`` training
iterations (default 1; each reports and writes a checkpoint), ``cpus_per_trial=1`` on a local Ray
with ``num_cpus=2`` (``--cpus``; parallelism 2); with ``--gpus-per-trial F`` each trial also holds
``F`` of the machine's GPUs.

**Fixed and per-trial cost.** The reuse sweep runs at several trial counts (``--counts``, default
16, 64, 128; ``--repeats`` times each, default 2, alternately in ascending and descending order), and
the wall time of ``Tuner.fit()`` is fitted by least squares (``numpy.polyfit``):
``wall = fixed_s + per_trial_s * trials``. The slope ``per_trial_s`` is what each further trial
adds to a sweep's wall time (its training included; the table shows how much that is); the
intercept ``fixed_s`` is ``fit()``'s one-off cost (controller start, the actors' start: worker
processes, imports, ``setup()``; final snapshot, stopping the actors, reading the results back).
The fixed part varies by several seconds from sweep to sweep on a shared machine, hence counts up
to 128: with counts up to 32 only, the noise in the slope is larger than the slope. Two figures
less sensitive to that noise are printed too: ``steady_per_trial_s``, the slope of the trials' end
times against their order within the largest sweeps (the first ``parallelism`` trials left out),
i.e. the per-trial cost once the actors run, and ``cpu_per_trial_s``, the slope of the CPU
seconds that the driver and all of Ray's processes (actors included) used per sweep. The table
also shows each sweep's ``head`` (start to the first trial's end), ``tail`` (last trial's end to
``fit()``'s return) and how many actors ran trials. All measured sweeps run after an untimed
2-trial warm-up sweep on the same Ray instance, so none pays Ray's own start-up.

**Reuse against no reuse.** Then a sweep of ``--trials`` trials (default 16) runs without actor
reuse (one actor process per trial), and ``ratio`` compares the overhead per trial as before the
fit was added: overhead = (wall - sum(time_total_s) / parallelism) / trials, the reuse figure from
the reuse sweep(s) of the same size; ``ratio`` = overhead without reuse / overhead with reuse
(goal >= 2). ``--no-ratio`` skips it.

**Where the time goes.** ``--variant`` changes one setting (or several, joined by commas); repeat
the option to compare variants, measured interleaved (``--list-variants``; ``tune-default`` is
bare Tune: no checkpoints, default loggers, a grid's 200 pending trials). The first variant's
figures are the ``per_trial_s:``/``fixed_s:`` lines, the others' ``per_trial_s[name]:`` lines. The
default variant, ``run_bohb``, is what ``run_bohb`` does today. ``--breakdown`` adds one
instrumented sweep (the largest count) and prints the time spent in the Tune controller's
functions and in the actors' methods.

Printed: a table of every sweep, the fits, then ``steady_per_trial_s:``, ``cpu_per_trial_s:``,
``per_trial_s: X``, ``fixed_s: Y`` (goal: ``per_trial_s`` <= 0.3 on 2 cores) and, last,
``ratio: Z``. ``--smoke`` is a tiny run for the test suite (counts 2 and 4, one CPU, no warm-up,
a 2-trial no-reuse sweep)::

    python benchmarks/trial_overhead.py [--counts 16,64,128] [--repeats 2] [--trials 16]
        [--iterations 1] [--per-class 30] [--variant NAME[,NAME]]... [--breakdown]
        [--sweep tuner|run_bohb] [--no-ratio] [--no-warmup] [--cpus 2] [--gpus-per-trial 0.25]
        [--smoke] [--list-variants]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

from automl_chars.runner import core  # noqa: E402  (after the environment above)
from automl_chars.runner.core import _tune_environment, environment  # noqa: E402

#: What run_bohb sets for fit() (the same function, at verbose=1); the user's own values win,
#: as there. Plus what Tune's "auto" gives run_bohb's searcher (any searcher other than the
#: grid/random BasicVariantGenerator used here, which would get 200): one pending trial.
RUN_BOHB_ENV = {**_tune_environment(1),
                **({} if "TUNE_MAX_PENDING_TRIALS_PG" in os.environ
                   else {"TUNE_MAX_PENDING_TRIALS_PG": "1"})}
#: run_bohb's default FailureConfig(max_failures=...).
RUN_BOHB_MAX_FAILURES = 2

CPUS_PER_TRIAL = 1
TINY = {"conv1_channels": 4, "conv1_kernel_size": 3, "batch_size": 32}
#: --smoke: tiny data, one actor (--cpus 1: no second actor to start and stop), 3 short sweeps.
SMOKE = {"counts": "2,4", "repeats": 1, "trials": 2, "per_class": 10, "cpus": 1}


@dataclass(frozen=True)
class Variant:
    """One way of configuring the sweep; the defaults are ``run_bohb``'s."""

    help: str = ""
    #: environment variables set during ``fit()`` (None removes one)
    env: dict = field(default_factory=dict)
    #: ``CheckpointConfig`` keyword arguments; None: Tune's default ``CheckpointConfig()``
    checkpoint: dict | None = field(
        default_factory=lambda: {"checkpoint_frequency": 1, "num_to_keep": 2})
    tbx: bool = True  # an explicit TBXLoggerCallback (run_bohb passes one)
    run_bohb_callbacks: bool = True  # TrialLineCallback, short trial folder names, FailureConfig
    run_bohb_env: bool = True  # RUN_BOHB_ENV during fit()
    trainable: str = "cnn"  # see trainable_class()
    poll_s: float | None = None  # cap on the controller's ray.wait timeout per event
    sync_period: float | None = None  # SyncConfig(sync_period=...)
    keep_starting: bool = False  # see keep_starting_actors()
    #: run_bohb's end of a run: actors still starting are killed, not waited for
    #: (``ray_compat.starting_actors_killed_at_end``)
    kill_starting: bool = True


VARIANTS: dict[str, dict] = {
    "run_bohb": dict(help="what run_bohb does today (the default)"),
    "tune-default": dict(help="bare Tune: no checkpoints, default loggers and callbacks",
                         checkpoint=None, tbx=False, run_bohb_callbacks=False,
                         run_bohb_env=False),
    "no-checkpoint": dict(help="checkpoint_frequency=0 (no trial checkpoints; breaks resume)",
                          checkpoint={"checkpoint_frequency": 0}),
    "keep-all": dict(help="num_to_keep=None (no deletions, no forced snapshots)",
                     checkpoint={"checkpoint_frequency": 1, "num_to_keep": None}),
    "keep-1": dict(help="num_to_keep=1", checkpoint={"checkpoint_frequency": 1, "num_to_keep": 1}),
    "keep-4": dict(help="num_to_keep=4", checkpoint={"checkpoint_frequency": 1, "num_to_keep": 4}),
    "snapshot-2s": dict(help="TUNE_GLOBAL_CHECKPOINT_S=2 (experiment snapshot period)",
                        env={"TUNE_GLOBAL_CHECKPOINT_S": "2"}),
    "snapshot-10s": dict(help="TUNE_GLOBAL_CHECKPOINT_S=10", env={"TUNE_GLOBAL_CHECKPOINT_S": "10"}),
    "snapshot-1000s": dict(help="TUNE_GLOBAL_CHECKPOINT_S=1000 (only forced/final snapshots)",
                           env={"TUNE_GLOBAL_CHECKPOINT_S": "1000"}),
    "no-auto-loggers": dict(help="TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1 (no CSV/JSON logger)",
                            env={"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}),
    "no-tbx": dict(help="no TBXLoggerCallback (Tune still adds one unless auto loggers are off)",
                   tbx=False),
    "no-loggers": dict(help="no logger at all: no TBX, TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1",
                       tbx=False, env={"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}),
    "new-output": dict(help="RAY_AIR_NEW_OUTPUT=1 (Tune's newer console reporter)",
                       env={"RAY_AIR_NEW_OUTPUT": "1"}),
    "buffer-8": dict(help="TUNE_RESULT_BUFFER_LENGTH=8", env={"TUNE_RESULT_BUFFER_LENGTH": "8"}),
    "max-pending-2": dict(help="TUNE_MAX_PENDING_TRIALS_PG=2 (run_bohb's searcher gets 1)",
                          env={"TUNE_MAX_PENDING_TRIALS_PG": "2"}),
    "max-pending-200": dict(help="TUNE_MAX_PENDING_TRIALS_PG=200 (what a grid search gets)",
                            env={"TUNE_MAX_PENDING_TRIALS_PG": "200"}),
    "sync-0": dict(help="SyncConfig(sync_period=0)", sync_period=0.0),
    "poll-0.01": dict(help="controller waits at most 0.01 s per event (patched; default 0.1)",
                      poll_s=0.01),
    "keep-starting": dict(help="a trial whose own actor is already starting waits for it instead "
                               "of taking a cached one (patched; Tune stops the starting actor), "
                               "with TUNE_MAX_PENDING_TRIALS_PG=2 so another trial takes the "
                               "cached actor", keep_starting=True,
                          env={"TUNE_MAX_PENDING_TRIALS_PG": "2"}),
    "wait-starting": dict(help="Tune's own end of a run: an actor still starting is stopped "
                               "gracefully, i.e. waited for (up to 10 s), not killed",
                          kill_starting=False),
    "small-result": dict(help="trainable reports only val_acc and val_loss",
                         trainable="small-result"),
    "tiny-save": dict(help="trainable's checkpoint is a 1-byte file instead of torch.save",
                      trainable="tiny-save"),
}


def variant(names: str) -> Variant:
    v = Variant()
    for name in [n for n in names.split(",") if n]:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        spec = dict(VARIANTS[name])
        spec["help"] = name if v.help == "" else f"{v.help},{name}"
        spec["env"] = {**v.env, **spec.get("env", {})}
        v = replace(v, **spec)
    return v


def trainable_class(kind: str):
    from automl_chars.trainables.cnn import CNNTrainable

    if kind == "cnn":
        return CNNTrainable

    if kind == "small-result":
        class SmallResult(CNNTrainable):
            def step(self):
                r = super().step()
                return {"val_acc": r["val_acc"], "val_loss": r["val_loss"], "device": r["device"]}

        return SmallResult

    if kind == "tiny-save":
        class TinySave(CNNTrainable):
            def save_checkpoint(self, checkpoint_dir):
                with open(os.path.join(checkpoint_dir, "marker"), "wb") as f:
                    f.write(b"x")

        return TinySave

    raise SystemExit(f"unknown trainable kind {kind!r}")


def tiny_dataset(per_class: int, num_classes: int = 4, seed: int = 0):
    from automl_chars.data import from_arrays

    rng = np.random.default_rng(seed)
    n, n_test = per_class * num_classes, 10 * num_classes
    x = rng.integers(0, 256, size=(n + n_test, 28, 28), dtype=np.uint8)
    y = np.arange(n + n_test) % num_classes
    return from_arrays("tiny", x[:n], y[:n], x[n:], y[n:], seed=seed)


def parallelism(num_cpus: int, num_gpus: int, gpus_per_trial: float) -> int:
    """How many trials Ray runs at once: what the CPUs and, for GPU trials, the GPUs allow."""
    by_cpu = num_cpus // CPUS_PER_TRIAL
    return by_cpu if gpus_per_trial <= 0 else min(by_cpu, int(num_gpus / gpus_per_trial + 1e-9))


@contextlib.contextmanager
def capped_poll(poll_s: float | None):
    """Caps the timeout of the Tune controller's per-event ``ray.wait`` (default 0.1 s)."""
    if poll_s is None:
        yield
        return
    from ray.air.execution._internal.actor_manager import RayActorManager

    original = RayActorManager.next

    def next_(self, timeout=None):
        return original(self, timeout if timeout is None else min(timeout, poll_s))

    RayActorManager.next = next_
    try:
        yield
    finally:
        RayActorManager.next = original


# -- --breakdown: where a trial's time goes -----------------------------------------------------
#: Driver-side functions timed by --breakdown (inclusive times; nested ones are also in their
#: callers). (module, class, methods)
DRIVER_TIMED = [
    ("ray.tune.execution.tune_controller", "TuneController",
     ["step", "_maybe_update_trial_queue", "_maybe_add_actors", "_on_trial_reset",
      "_on_training_result", "_on_saving_result", "_schedule_trial_stop", "checkpoint",
      "save_to_dir", "cleanup", "_cleanup_trials", "_cleanup_stopping_actors",
      "_cleanup_cached_actors"]),
    ("ray.tune.analysis.experiment_analysis", "ExperimentAnalysis", ["__init__"]),
    ("ray.tune.result_grid", "ResultGrid", ["__init__"]),
    ("ray.air.execution._internal.actor_manager", "RayActorManager", ["next"]),
    ("ray.tune.execution.experiment_state", "_ExperimentCheckpointManager",
     ["sync_up_experiment_state"]),
    ("ray.train._internal.syncer", "_BackgroundSyncer", ["wait", "sync_up"]),
    ("ray.train._internal.checkpoint_manager", "_CheckpointManager", ["register_checkpoint"]),
    ("ray.tune.search.basic_variant", "BasicVariantGenerator", ["next_trial"]),
    ("ray.tune.logger.csv", "CSVLoggerCallback",
     ["log_trial_start", "log_trial_result", "log_trial_end"]),
    ("ray.tune.logger.json", "JsonLoggerCallback",
     ["log_trial_start", "log_trial_result", "log_trial_end"]),
    ("ray.tune.logger.tensorboardx", "TBXLoggerCallback",
     ["log_trial_start", "log_trial_result", "log_trial_end"]),
    ("ray.tune.progress_reporter", "TrialProgressCallback", ["on_trial_result", "on_step_end"]),
    ("automl_chars.runner.progress", "TrialLineCallback", ["on_trial_complete"]),
]
#: Actor-side methods timed by --breakdown: Ray's (what the actor tasks run) and ours inside.
ACTOR_TIMED = ["reset", "reset_config", "train", "step", "save", "save_checkpoint"]


class Timings:
    """Accumulated seconds and calls per name."""

    def __init__(self):
        self.seconds, self.calls = {}, {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1


def _timed(fn, name: str, timings: Timings):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings.add(name, time.perf_counter() - start)

    wrapper.__wrapped_by_benchmark__ = fn
    return wrapper


@contextlib.contextmanager
def driver_timings(timings: Timings):
    """Wraps DRIVER_TIMED (and ``ray.wait``) with timers for the duration of the block."""
    import importlib

    import ray

    patched = []
    for module, cls_name, methods in DRIVER_TIMED:
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):
            continue
        for m in methods:
            if hasattr(cls, m):
                patched.append((cls, m, cls.__dict__.get(m)))
                setattr(cls, m, _timed(getattr(cls, m), f"{cls_name}.{m}", timings))
    original_wait = ray.wait
    ray.wait = _timed(original_wait, "ray.wait (idle: waiting for actors)", timings)
    try:
        yield
    finally:
        ray.wait = original_wait
        for cls, m, own in reversed(patched):
            if own is None:
                delattr(cls, m)
            else:
                setattr(cls, m, own)


def timed_trainable(base, stats_dir: str):
    """``base`` with ACTOR_TIMED timed; each actor writes its totals to ``stats_dir/<pid>.json``."""
    import json

    class Timed(base):
        _bench_timings = None

        def _bench_dump(self):
            t = Timed._bench_timings
            with open(os.path.join(stats_dir, f"{os.getpid()}.json"), "w") as f:
                json.dump({"seconds": t.seconds, "calls": t.calls}, f)

    def make(name):
        fn = getattr(base, name)

        def method(self, *args, **kwargs):
            if Timed._bench_timings is None:
                Timed._bench_timings = Timings()
            start = time.perf_counter()
            try:
                return fn(self, *args, **kwargs)
            finally:
                Timed._bench_timings.add(name, time.perf_counter() - start)
                if name in ("reset", "train", "save"):  # the outer ones: one dump per task
                    self._bench_dump()

        return method

    for name in ACTOR_TIMED:
        setattr(Timed, name, make(name))
    Timed.__name__ = Timed.__qualname__ = base.__name__
    return Timed


def actor_timings(stats_dir: str) -> Timings:
    import json

    out = Timings()
    for name in os.listdir(stats_dir):
        with open(os.path.join(stats_dir, name)) as f:
            data = json.load(f)
        for k, v in data["seconds"].items():
            out.seconds[k] = out.seconds.get(k, 0.0) + v
            out.calls[k] = out.calls.get(k, 0) + data["calls"][k]
    return out


def print_breakdown(trials: int, r: dict, actors: Timings) -> None:
    driver = r["driver"]
    print(f"breakdown of one instrumented reuse sweep of {trials} trials ({r['wall']:.2f} s wall: "
          f"{r['head']:.2f} s to the first trial's end, {r['tail']:.2f} s after the last one's; "
          f"inclusive times, nested rows are part of the rows above them):")
    print(f"  {'where':<58} {'calls':>6} {'total s':>8} {'ms/trial':>9}")
    for title, t in (("driver (Tune controller)", driver), ("actors (sum over actors)", actors)):
        print(f"  -- {title}")
        for name in sorted(t.seconds, key=lambda k: -t.seconds[k]):
            print(f"  {name:<58} {t.calls[name]:>6} {t.seconds[name]:>8.2f} "
                  f"{1000 * t.seconds[name] / trials:>9.1f}")


class CpuSampler:
    """CPU seconds (user + system) used by this process and all its descendants (Ray's raylet,
    GCS and workers, hence the trial actors) while the block runs, from ``/proc`` sampled every
    ``period`` seconds (a process that ends between samples loses at most its last ``period``).
    Less sensitive than wall time to other jobs on the machine. NaN where there is no ``/proc``.
    """

    def __init__(self, period: float = 0.2):
        self.period, self.seconds = period, float("nan")
        self._first, self._last = {}, {}

    @staticmethod
    def _table() -> dict:
        out = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the name: state ppid ... utime(14) stime(15) ... starttime(22), 1-based
            out[int(name)] = (int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]))
        return out

    def _sample(self) -> None:
        table = self._table()
        children = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo, seen = [os.getpid()], set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in table:
                continue
            seen.add(pid)
            todo.extend(children.get(pid, []))
            _, start, ticks = table[pid]
            key = (pid, start)
            # A process started after the first sample counts from zero.
            self._first.setdefault(key, ticks if self._started_at is None or start <= self._started_at
                                   else 0)
            self._last[key] = ticks

    def __enter__(self):
        import threading

        if not os.path.exists("/proc/self/stat"):
            self._thread = None
            return self
        self._started_at = None
        self._sample()
        with open("/proc/self/stat") as f:
            self._started_at = int(f.read().rsplit(")", 1)[1].split()[19])
        self._stop = threading.Event()

        def loop():
            while not self._stop.wait(self.period):
                self._sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        ticks = sum(self._last[k] - self._first[k] for k in self._last)
        self.seconds = ticks / os.sysconf("SC_CLK_TCK")


def completion_times_callback():
    """A callback recording when each trial ends (``perf_counter``), for the steady-state rate."""
    from ray.tune.callback import Callback

    class CompletionTimes(Callback):
        def __init__(self):
            self.times, self.pids = [], set()

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.times.append(time.perf_counter())
            self.pids.add((trial.last_result or {}).get("pid"))

    return CompletionTimes()


def steady_rate(ends: list[float], skip: int) -> float | None:
    """Seconds per trial in the sweep's steady state: the slope of the trials' end times against
    their order, leaving out the first ``skip`` (they also waited for the actors to start)."""
    ends = sorted(ends)[skip:]
    if len(ends) < 3:
        return None
    return float(np.polyfit(np.arange(len(ends)), np.array(ends), 1)[0])


def phases(start: float, wall: float, ends: list[float]) -> dict:
    """Seconds from ``fit()``'s start to the first trial's end (``head``: controller start,
    actor start, the first trial) and from the last trial's end to ``fit()``'s return
    (``tail``: final snapshot, actor cleanup, reading the results back)."""
    if not ends:
        return {"head": float("nan"), "tail": float("nan")}
    return {"head": min(ends) - start, "tail": start + wall - max(ends)}


@contextlib.contextmanager
def keep_starting_actors(enabled: bool):
    """Patches Tune so that a pending trial whose actor has been created (it is starting: worker
    process, imports, ``setup()``) keeps it, instead of taking a cached actor that just became
    free and stopping its own. Unpatched, a sweep of trials shorter than an actor's start-up never
    runs more than one trial at a time: each new actor is stopped as soon as it is ready."""
    if not enabled:
        yield
        return
    from ray.tune.execution.tune_controller import TuneController

    original = TuneController._maybe_reuse_cached_actor

    def _maybe_reuse_cached_actor(self, trial):
        own = self._trial_to_actor.get(trial)
        if (own is not None and trial not in self._resetting_trials
                and own in self._actor_manager._live_actors_to_ray_actors_resources):
            return False  # its own actor is starting: keep it, leave the cached one to others
        return original(self, trial)

    TuneController._maybe_reuse_cached_actor = _maybe_reuse_cached_actor
    try:
        yield
    finally:
        TuneController._maybe_reuse_cached_actor = original


def killed_at_end(enabled: bool):
    """run_bohb's workaround for actors still starting when a run ends (see ``ray_compat``)."""
    from automl_chars.ray_compat import starting_actors_killed_at_end

    return starting_actors_killed_at_end() if enabled else contextlib.nullcontext()


def run_sweep(dataset, trials: int, reuse: bool, storage: str, slots: int, v: Variant,
              gpus_per_trial: float = 0.0, iterations: int = 1, name: str | None = None,
              breakdown: str | None = None, mode: str = "tuner") -> dict:
    """One sweep; returns wall time, the trials' own time and the overhead per trial.

    ``mode="tuner"``: ``Tuner.fit()`` configured as ``run_bohb`` configures it (see the module
    docstring); ``mode="run_bohb"``: ``automl_chars.search.run_bohb`` itself (BOHB searcher,
    HyperBand scheduler, its callbacks, the final test evaluation), ``min_budget = max_budget =
    iterations``, searching the learning rate (the rest at the CNN space's defaults).
    """
    from ray import tune
    from ray.tune.logger import TBXLoggerCallback

    from automl_chars.training.fidelity import Fidelity

    name = name or f"overhead-{'reuse' if reuse else 'noreuse'}-{trials}-{time.time_ns()}"
    ends = completion_times_callback()
    driver = Timings()
    timer = driver_timings(driver) if breakdown else contextlib.nullcontext()
    if mode == "run_bohb":
        from automl_chars.search import run_bohb
        from automl_chars.spaces import cnn_space, subspace

        if not reuse or breakdown or gpus_per_trial or replace(
                v, env={}, help="", keep_starting=False) != Variant():
            raise SystemExit("--sweep run_bohb: reuse only, CPU trials, environment variants only")
        space = subspace(cnn_space(0), ["learning_rate"], seed=0)
        with environment(v.env), capped_poll(v.poll_s), keep_starting_actors(v.keep_starting), \
                contextlib.redirect_stdout(io.StringIO()), CpuSampler() as cpu:
            start = time.perf_counter()
            result = run_bohb(dataset, space=space, eta=3, min_budget=iterations,
                              max_budget=iterations, num_samples=trials, storage_path=storage,
                              name=name, callbacks=[ends], verbose=1)
            wall = time.perf_counter() - start
        frame = result.trials
        own = float(frame["time_total_s"].sum()) if "time_total_s" in frame else float("nan")
        actors = len(ends.pids)
        return {"wall": wall, "own": own, "trials": len(frame), "devices": set(frame["device"]),
                "actors": actors,
                "overhead": (wall - own / slots) / len(frame), "driver": driver,
                "steady": steady_rate(ends.times, slots), "cpu": cpu.seconds,
                **phases(start, wall, ends.times)}

    cls = trainable_class(v.trainable)
    if breakdown:
        cls = timed_trainable(cls, breakdown)
    trainable = tune.with_resources(
        tune.with_parameters(cls, dataset=dataset,
                             fidelity=Fidelity("epochs", max(1, iterations)), seed=0),
        {"cpu": CPUS_PER_TRIAL, "gpu": gpus_per_trial},
    )
    # A different learning rate per trial, so every trial really is a new configuration.
    space = {**TINY, "learning_rate": tune.grid_search(list(np.geomspace(1e-3, 1e-1, trials)))}
    checkpoint = tune.CheckpointConfig(**v.checkpoint) if v.checkpoint is not None else None
    extra_tune = {}
    if v.run_bohb_callbacks and v.tbx:
        # run_bohb's own run configuration (the same function), the checkpointing as varied.
        run_config = core.run_config(
            Path(storage) / name, trials,
            tune.FailureConfig(max_failures=RUN_BOHB_MAX_FAILURES, fail_fast=False), verbose=1,
            callbacks=[], checkpoint_config=checkpoint or tune.CheckpointConfig(),
            first=[ends], stop={"training_iteration": iterations})
        extra_tune["trial_dirname_creator"] = core.trial_dirname
    else:  # a variant that leaves a part of it out
        callbacks = [ends, *([TBXLoggerCallback()] if v.tbx else [])]
        run_config = tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                    stop={"training_iteration": iterations}, callbacks=callbacks,
                                    **({"checkpoint_config": checkpoint} if checkpoint else {}))
    if v.sync_period is not None:
        run_config.sync_config = tune.SyncConfig(sync_period=v.sync_period)
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=reuse, metric="val_acc",
                                    mode="max", **extra_tune),
        run_config=run_config,
    )
    with environment({**(RUN_BOHB_ENV if v.run_bohb_env else {}), **v.env}), capped_poll(v.poll_s), \
            keep_starting_actors(v.keep_starting), killed_at_end(v.kill_starting), \
            contextlib.redirect_stdout(io.StringIO()), timer, CpuSampler() as cpu:
        start = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - start
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed, first: {errors[0]}")
    own = sum(r.metrics["time_total_s"] for r in grid)
    devices = {r.metrics["device"] for r in grid}
    actors = len(ends.pids)
    return {"wall": wall, "own": own, "trials": len(grid), "devices": devices, "actors": actors,
            "overhead": (wall - own / slots) / len(grid), "driver": driver,
            "steady": steady_rate(ends.times, slots), "cpu": cpu.seconds,
            **phases(start, wall, ends.times)}


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares ``y = intercept + slope * n``; returns (slope, intercept)."""
    n, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    slope, intercept = np.polyfit(n, y, 1)
    return float(slope), float(intercept)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="16,64,128",
                   help="trial counts of the reuse sweeps the line is fitted to "
                        "(default 16,64,128)")
    p.add_argument("--repeats", type=int, default=2,
                   help="sweeps per count (default 2: ascending, then descending, so that a "
                        "drift in the machine's load cancels out of the slope)")
    p.add_argument("--trials", type=int, default=16,
                   help="trials of the reuse-vs-no-reuse comparison (default 16)")
    p.add_argument("--iterations", type=int, default=1,
                   help="training iterations per trial, each reported and checkpointed (default 1)")
    p.add_argument("--per-class", type=int, default=30,
                   help="training images per class, 4 classes (default 30)")
    p.add_argument("--variant", action="append", default=None,
                   help="a variant, or several joined by commas (applied together); repeat the "
                        "option to compare variants, measured interleaved (default run_bohb). "
                        "See --list-variants")
    p.add_argument("--list-variants", action="store_true", help="list the variants and exit")
    p.add_argument("--sweep", choices=("tuner", "run_bohb"), default="tuner",
                   help="tuner: Tuner.fit() configured like run_bohb (default); run_bohb: "
                        "automl_chars.search.run_bohb itself (BOHB searcher and scheduler; "
                        "environment variants only, no --breakdown, no ratio)")
    p.add_argument("--no-ratio", action="store_true", help="skip the no-reuse sweep and the ratio")
    p.add_argument("--breakdown", action="store_true",
                   help="also run one instrumented reuse sweep of the largest count and print "
                        "where its time goes (driver functions and actor methods)")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the untimed 2-trial warm-up sweep (then the first measured sweep "
                        "also pays Ray's start-up: worker processes, first imports)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs given to Ray (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPU share per trial, e.g. 0.25 (default 0: CPU trials)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny run for the tests: counts 2,4, one CPU, 2-trial no-reuse sweep, "
                        "no warm-up")
    args = p.parse_args(argv)
    if args.list_variants:
        for name, spec in VARIANTS.items():
            print(f"{name:<16} {spec['help']}")
        return {}
    if args.smoke:
        args.counts, args.repeats, args.trials = SMOKE["counts"], SMOKE["repeats"], SMOKE["trials"]
        args.per_class, args.cpus, args.no_warmup = SMOKE["per_class"], SMOKE["cpus"], True
    counts = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    if len(counts) < 2:
        p.error("--counts needs at least two different trial counts to fit a line")
    names = args.variant or ["run_bohb"]
    variants = {name: variant(name) for name in names}

    import ray
    import torch

    num_gpus = torch.cuda.device_count() if args.gpus_per_trial > 0 else 0
    if args.gpus_per_trial > 0 and num_gpus == 0:
        p.error("--gpus-per-trial needs a CUDA GPU; torch sees none")
    slots = parallelism(args.cpus, num_gpus, args.gpus_per_trial)
    ray.init(num_cpus=args.cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    dataset = tiny_dataset(args.per_class)
    if args.sweep == "run_bohb":
        args.no_ratio = True
        if args.breakdown:
            p.error("--breakdown needs --sweep tuner")
    common = dict(slots=slots, gpus_per_trial=args.gpus_per_trial, iterations=args.iterations,
                  mode=args.sweep)
    first = variants[names[0]]
    rows = []  # (variant name, n, reuse, result)
    with tempfile.TemporaryDirectory(prefix="automl_chars_overhead_") as storage:
        if not args.no_warmup:
            run_sweep(dataset, 2, True, storage, v=first, name="warmup", **common)
        k = 0
        for rep in range(args.repeats):
            for n in (counts if rep % 2 == 0 else counts[::-1]):
                for name in names[k % len(names):] + names[:k % len(names)]:  # rotate the order
                    r = run_sweep(dataset, n, True, storage, v=variants[name], **common)
                    rows.append((name, n, True, r))
                    steady = "" if r["steady"] is None else f", steady {r['steady']:.3f} s/trial"
                    print(f"  {name}: reuse {n:>3} trials {r['wall']:.2f} s{steady}",
                          file=sys.stderr, flush=True)
                k += 1
        if not args.no_ratio:
            if args.trials not in counts:  # the comparison needs a reuse sweep of the same size
                rows.append((names[0], args.trials, True,
                             run_sweep(dataset, args.trials, True, storage, v=first, **common)))
            noreuse = run_sweep(dataset, args.trials, False, storage, v=first, **common)
            rows.append((names[0], args.trials, False, noreuse))
        if args.breakdown:
            stats_dir = os.path.join(storage, "actor-timings")
            os.makedirs(stats_dir)
            instrumented = run_sweep(dataset, counts[-1], True, storage, v=first,
                                     breakdown=stats_dir, **common)
            actors = actor_timings(stats_dir)
    ray.shutdown()

    devices = ",".join(sorted(set().union(*(r["devices"] for *_, r in rows))))
    print(f"{args.sweep} sweeps; trials of {args.iterations} iteration(s), "
          f"{len(dataset.y_train)} images, "
          f"cpus_per_trial={CPUS_PER_TRIAL}, gpus_per_trial={args.gpus_per_trial}, parallelism "
          f"{slots}, trained on {devices}")
    print(f"{'variant':<24} {'reuse':<6} {'trials':>6} {'wall s':>8} {'sum time_total_s':>17} "
          f"{'wall/trial s':>13} {'overhead/trial s':>17} {'steady s/trial':>15} {'CPU s':>7} "
          f"{'head s':>7} {'tail s':>7} {'actors':>6}")
    for name, n, reuse, r in sorted(rows, key=lambda row: (names.index(row[0]), not row[2], row[1])):
        steady = "" if r["steady"] is None else f"{r['steady']:.3f}"
        print(f"{name:<24} {str(reuse):<6} {n:>6} {r['wall']:>8.2f} {r['own']:>17.2f} "
              f"{r['wall'] / r['trials']:>13.3f} {r['overhead']:>17.3f} {steady:>15} "
              f"{r['cpu']:>7.1f} {r['head']:>7.2f} {r['tail']:>7.2f} {r['actors']:>6}")
    fits = {}
    for name in names:
        pts = [(n, r) for v_name, n, reuse, r in rows if v_name == name and reuse]
        per_trial, fixed = fit_line([(n, r["wall"]) for n, r in pts])
        train, _ = fit_line([(n, r["own"] / slots) for n, r in pts])
        residual = max(abs(r["wall"] - (fixed + per_trial * n)) for n, r in pts)
        steady = [r["steady"] for n, r in pts if n == counts[-1] and r["steady"] is not None]
        cpu_per_trial, cpu_fixed = fit_line([(n, r["cpu"]) for n, r in pts])
        fits[name] = {"per_trial_s": per_trial, "fixed_s": fixed, "train_s": train,
                      "residual": residual, "steady": float(np.median(steady)) if steady else None,
                      "cpu_per_trial_s": cpu_per_trial, "cpu_fixed_s": cpu_fixed}
    print(f"fit wall = fixed_s + per_trial_s x trials over {len(counts) * args.repeats} reuse "
          f"sweeps each (and CPU s the same way); steady = median over the {counts[-1]}-trial "
          f"sweeps of the slope of the trials' end times (first {slots} left out); training = "
          f"slope of sum(time_total_s) / parallelism")
    print(f"{'variant':<24} {'per_trial_s':>11} {'fixed_s':>8} {'steady s/trial':>15} "
          f"{'training s':>11} {'max residual s':>15} {'CPU s/trial':>12} {'CPU fixed s':>12}")
    for name, f in fits.items():
        steady = "" if f["steady"] is None else f"{f['steady']:.3f}"
        print(f"{name:<24} {f['per_trial_s']:>11.3f} {f['fixed_s']:>8.2f} {steady:>15} "
              f"{f['train_s']:>11.3f} {f['residual']:>15.2f} {f['cpu_per_trial_s']:>12.3f} "
              f"{f['cpu_fixed_s']:>12.2f}")
    if args.breakdown:
        print_breakdown(counts[-1], instrumented, actors)
    for name in names[1:]:
        print(f"per_trial_s[{name}]: {fits[name]['per_trial_s']:.3f}")
        print(f"fixed_s[{name}]: {fits[name]['fixed_s']:.2f}")
    f = fits[names[0]]
    if f["steady"] is not None:
        print(f"steady_per_trial_s: {f['steady']:.3f}")
    print(f"cpu_per_trial_s: {f['cpu_per_trial_s']:.3f}")
    print(f"per_trial_s: {f['per_trial_s']:.3f}")
    print(f"fixed_s: {f['fixed_s']:.2f}")
    out = {"fits": fits, "rows": rows, **{k: fits[names[0]][k] for k in ("per_trial_s", "fixed_s")}}
    if not args.no_ratio:
        with_reuse = np.mean([r["overhead"] for name, n, reuse, r in rows
                              if name == names[0] and reuse and n == args.trials])
        ratio = noreuse["overhead"] / with_reuse
        print(f"reuse vs no reuse at {args.trials} trials ({names[0]}): overhead/trial "
              f"{with_reuse:.3f} s with reuse, {noreuse['overhead']:.3f} s without; "
              f"ratio = without / with")
        print(f"ratio: {ratio:.2f}")
        out["ratio"] = ratio
    return out


if __name__ == "__main__":
    main()
