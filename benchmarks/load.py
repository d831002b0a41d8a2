"""Load: a 500-trial sweep of tiny trials, ``show`` and ``report`` on it, a 100,000-row store.

**The sweep.** ``run_bohb`` itself (BOHB's searcher, ``HyperBandForBOHB``, checkpoints, the
TensorBoard logger, the progress lines at ``verbose=1``, written to ``sweep.log``, the results
store at the end) runs ``--trials`` trials (default 500) of ``ReplayTrainable`` (the shipped
learning-curve table replayed in Ray's own order, no simulated clock: a trial trains nothing, so
what a trial costs is what the platform and Tune spend around it), one budget unit each
(``min_budget = max_budget = --budget``, default 1, so every trial costs the same), one CPU per
trial on a local Ray of ``--cpus`` CPUs (default 2). A callback records, as each trial ends, the
wall clock, the driver process's CPU time and its resident memory (RSS, psutil).

Per-trial cost of the first hundred trials to end and of the last hundred: wall seconds between
the first and the last end of each window over its trials (what a trial adds to the sweep) and
the driver's CPU seconds per trial (its overhead: Tune's controller, the searcher, callbacks,
snapshots); the driver's RSS at every hundred trials and its peak. ``ratio`` = the driver's CPU
seconds per trial of the last hundred / of the first hundred (flat: about 1; CPU seconds, which
other jobs on the machine disturb less than wall seconds; ``wall_ratio`` is the same of wall
seconds). The driver's CPU seconds are split into BOHB's model (hpbandster's ``get_config`` and
``new_result``: each proposal scores its candidates against KDEs over every result so far, each
result refits them, so it grows with the results by design) and the rest (Tune's controller,
the platform's callbacks, snapshots): ``platform_ratio`` is the rest's last / first hundred;
``main_thread_ratio`` the same of the driver's main thread alone (Tune's controller loop and
callbacks, without the Ray core worker's and the uploads' threads, which other jobs on the
machine disturb most).

**show and report.** ``automl-chars show DIR`` and ``automl-chars report DIR`` on the sweep's
folder, each as a user runs it (a new Python process; start-up and imports included): wall and
CPU seconds.

**The store.** ``--store-rows`` rows (default 100,000) written through the store's public API
(``ResultsStore.write``), a contribution per synthetic sweep of ``--rows-per-sweep`` rows (default
1,000: trials of the CNN space, each a configuration of its own drawn from ``cnn_space``, at
budgets 1, 3 and 9, on 20 datasets with meta-features); then timed once each, wall and CPU
seconds: what ``automl-chars store show`` does (``ResultsStore.read`` and its summary), the warm
start's query (``gather_evidence``: the store's rows) and its plan from them (``plan_from`` for
a sweep of the CNN space on a new dataset: the 3 nearest datasets, their rows fitted to the
space, seeds and priors). Goal: each under a second.

Figures as ``name: number`` lines, ``ratio:`` last. ``--storage DIR`` keeps the sweep and the store
there: run again, a finished sweep's recorded figures and the built store are reused (an
interrupted sweep is resumed, its figures then cover only the resumed part: delete DIR/sweep to
measure it whole). ``--smoke``: 20 trials, a 2,000-row store::

    python benchmarks/load.py [--trials 500] [--budget 1] [--cpus 2] [--store-rows 100000]
        [--rows-per-sweep 1000] [--storage DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: --smoke: a few dozen trials (windows of 10), a small store.
SMOKE = {"trials": 20, "store_rows": 2000, "rows_per_sweep": 200}
#: The replayed domain (one of the shipped table's) and its images per class (the replay reads
#: the table, not the images: a small draw loads fast).
DATASET, PER_CLASS = "glyphs-digits", 10
#: Synthetic store datasets and the budgets a synthetic trial reports.
STORE_DATASETS, BUDGETS = 20, (1, 3, 9)
#: The file of a finished sweep's recorded figures in its folder.
RECORD = "load_record.json"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=500, help="trials of the sweep")
    p.add_argument("--budget", type=int, default=1, help="budget units per trial")
    p.add_argument("--cpus", type=int, default=2, help="Ray's CPUs (trials at a time)")
    p.add_argument("--store-rows", type=int, default=100_000, help="rows of the store")
    p.add_argument("--rows-per-sweep", type=int, default=1000,
                   help="rows per store contribution (file)")
    p.add_argument("--storage", default=None, help="folder to keep the sweep and store in")
    p.add_argument("--smoke", action="store_true", help="a tiny run for the test suite")
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    for flag, value, least in (("--trials", args.trials, 10), ("--budget", args.budget, 1),
                               ("--cpus", args.cpus, 1), ("--store-rows", args.store_rows, 1),
                               ("--rows-per-sweep", args.rows_per_sweep, 1)):
        if value < least:
            raise SystemExit(f"{flag} must be >= {least}, got {value}.")
    return args


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the sweep ---------------------------------------------------------------------------------
#: CPU seconds of the driver's thread spent in BOHB's model so far (see :func:`model_clock`).
MODEL_CPU = [0.0]


@contextlib.contextmanager
def model_clock():
    """Counts the CPU seconds (of the calling thread: Tune calls its searcher on the driver's
    main thread) spent in hpbandster's ``BOHB.get_config`` and ``BOHB.new_result`` while open."""
    from hpbandster.optimizers.config_generators.bohb import BOHB

    originals = {name: getattr(BOHB, name) for name in ("get_config", "new_result")}

    def timed(method):
        def wrapper(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                MODEL_CPU[0] += time.thread_time() - t0
        return wrapper

    for name, method in originals.items():
        setattr(BOHB, name, timed(method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(BOHB, name, method)


def recorder():
    """A Tune callback recording each trial's end: wall clock, the driver's CPU seconds and RSS,
    the CPU seconds in BOHB's model so far and the main thread's (Tune calls callbacks there)."""
    import psutil
    from ray.tune.callback import Callback

    class TrialEnds(Callback):
        def __init__(self):
            self.ends: list[tuple[float, float, float, float, float]] = []

        def __getstate__(self) -> dict:  # Tune saves its callbacks; the record is ours
            return {"ends": []}

        def on_trial_complete(self, iteration, trials, trial, **info):
            me = psutil.Process()
            cpu = me.cpu_times()
            self.ends.append((time.perf_counter(), cpu.user + cpu.system,
                              me.memory_info().rss / 2**20, MODEL_CPU[0], time.thread_time()))

    return TrialEnds()


def run_sweep(args, folder: Path) -> dict:
    """The sweep's figures (recorded in ``folder`` when it finished; read back then)."""
    record = folder / "load" / RECORD
    if record.exists():
        figures = json.loads(record.read_text())
        if "main_cpu_per_trial_first" not in figures:
            raise SystemExit(f"{record} was recorded by an older version of this script (no "
                             f"figures of BOHB's model): delete {folder} to measure the sweep "
                             f"again, or pass another --storage.")
        log(f"sweep: reusing the finished sweep's figures in {record}")
        return figures
    from automl_chars import data, run_bohb
    from automl_chars.search.spec import replay_spec
    from automl_chars.tabular.shipped import glyph_curves

    table = glyph_curves([DATASET])
    ds = data.load(DATASET, samples_per_class=PER_CLASS)
    ends = recorder()
    resume = (folder / "load").exists()
    t0 = time.perf_counter()
    with open(folder / "sweep.log", "a") as out, contextlib.redirect_stdout(out), model_clock():
        result = run_bohb(ds, spec=replay_spec(table, parallelism=None), eta=3,
                          min_budget=args.budget, max_budget=args.budget,
                          num_samples=args.trials, storage_path=folder, name="load", seed=0,
                          priors=False, cpus_per_trial=1, resume=resume, verbose=1,
                          callbacks=[ends])
    wall = time.perf_counter() - t0
    figures = sweep_figures(np.array(ends.ends), len(result.trials), wall)
    record.write_text(json.dumps(figures, indent=1))
    return figures


def sweep_figures(ends: np.ndarray, trials: int, wall: float) -> dict:
    """Per-trial wall and driver CPU seconds (and of them BOHB's model's) of the first and last
    windows of trial ends (100 trials, or a fifth of them in a smaller sweep), RSS at every
    hundred and its peak."""
    n = len(ends)
    window = min(100, max(2, n // 5))
    first, last = ends[:window], ends[n - window:]

    def per_trial(rows: np.ndarray, column: int) -> float:
        return float((rows[-1, column] - rows[0, column]) / (len(rows) - 1))

    out = {"trials": trials, "recorded": n, "window": window, "sweep_s": wall,
           "wall_per_trial_first": per_trial(first, 0), "wall_per_trial_last": per_trial(last, 0),
           "driver_cpu_per_trial_first": per_trial(first, 1),
           "driver_cpu_per_trial_last": per_trial(last, 1),
           "model_cpu_per_trial_first": per_trial(first, 3),
           "model_cpu_per_trial_last": per_trial(last, 3),
           "main_cpu_per_trial_first": per_trial(first, 4),
           "main_cpu_per_trial_last": per_trial(last, 4),
           "rss_mb_peak": float(ends[:, 2].max()),
           "rss_mb": {str(k): float(ends[k - 1, 2]) for k in range(window, n + 1, window)},
           # every window's (wall, driver CPU, model CPU, main thread CPU) s per trial, by its last
           "per_window": {str(k): [per_trial(ends[k - window:k], c) for c in (0, 1, 3, 4)]
                          for k in range(window, n + 1, window)}}
    return out


# -- show and report ----------------------------------------------------------------------------
def cli_seconds(*argv: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``automl-chars ARGV`` in a new process (raises if it fails)."""
    code = "from automl_chars.cli.main import entry_point; raise SystemExit(entry_point())"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"automl-chars {' '.join(argv)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu


# -- the store ------------------------------------------------------------------------------------
def build_store(path: Path, n_rows: int, per_sweep: int, seed: int = 0) -> None:
    """Synthetic sweeps of the CNN space as store contributions (``ResultsStore.write``) until
    ``n_rows`` rows: trials of their own configuration each, at budgets 1, 3, 9 (a third
    stopped at each), on :data:`STORE_DATASETS` datasets with meta-features."""
    import pyarrow.parquet as pq

    from automl_chars.search.spec import cnn_spec
    from automl_chars.similarity.meta_features import META_FEATURES
    from automl_chars.spaces.cnn import cnn_space
    from automl_chars.spaces.values import plain_config
    from automl_chars.store import ResultsStore
    from automl_chars.store.store import rows

    store = ResultsStore(path)
    frames = [pd.read_parquet(f, columns=["space_fingerprint"]) for f in store.files()
              if "space_fingerprint" in pq.read_schema(f).names]  # else of an older format
    if len(frames) == len(store.files()) and sum(map(len, frames)) == n_rows:
        log(f"store: reusing the {n_rows} rows in {path}")
        return
    rng = np.random.default_rng(seed)
    features = {f"d{d:02d}": {name: float(rng.normal()) for name in META_FEATURES}
                for d in range(STORE_DATASETS)}
    space = cnn_space(seed)
    fingerprint = cnn_spec(space).fingerprint()
    written, sweep = 0, 0
    while written < n_rows:
        size = min(per_sweep, n_rows - written)
        dataset = f"d{sweep % STORE_DATASETS:02d}"
        results, trial = [], 0
        drawn = iter(space.sample_configuration(size))  # at most one trial per row
        while len(results) < size:
            config = plain_config(dict(next(drawn)))
            reached = BUDGETS[: 1 + trial % len(BUDGETS)]
            acc = float(rng.uniform(0.2, 0.9))
            for budget in reached[: size - len(results)]:
                results.append({"config": config, "budget": budget, "trial_id": f"t{trial}",
                                "val_acc": min(1.0, acc + 0.02 * budget),
                                "seconds": 3.0 * budget, "status": "TERMINATED"})
            trial += 1
        frame = rows("sweep", dataset, f"fp-{dataset}", "cnn", results, f"sweep-{sweep}",
                     features[dataset], fingerprint)  # as a sweep of the space records them
        store.write(f"sweep-{sweep}", frame)
        written += size
        sweep += 1
    log(f"store: wrote {written} rows in {sweep} files to {path}")


def timed(fn) -> tuple[float, float, object]:
    """Wall and CPU seconds (this process's threads) of one call of ``fn``, and its answer."""
    wall, cpu = time.perf_counter(), time.process_time()
    answer = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, answer


def store_figures(path: Path) -> dict:
    """Seconds (wall, CPU) of the store's queries: ``store show``'s (``ResultsStore.read`` and
    its summary), the warm start's (``gather_evidence``: the store's rows) and the warm start's
    plan from them (``plan_from``, in a fresh process's state: no configuration fitted yet)."""

    from automl_chars.cli.store import summary
    from automl_chars.search.presets import get_preset
    from automl_chars.search.spec import cnn_spec
    from automl_chars.search.warmstart import TargetInfo, WarmStart, gather_evidence, plan_from
    from automl_chars.similarity.meta_features import META_FEATURES
    from automl_chars.store import ResultsStore

    store = ResultsStore(path)
    show = timed(lambda: summary(store.read()[0]))
    warm = WarmStart(store=store, builtin=False, strict=True)
    read = timed(lambda: gather_evidence(None, warm, store))
    evidence = read[2]
    target = TargetInfo("new", "fp-new", {name: 0.0 for name in META_FEATURES})
    plan = timed(lambda: plan_from(target, cnn_spec(seed=0), warm,
                                   get_preset("3_1_9_4").budgets, evidence))
    answer = plan[2]
    return {"store_rows": len(evidence.results), "store_files": len(store.files()),
            "store_show_s": show[0], "store_show_cpu_s": show[1],
            "warm_start_read_s": read[0], "warm_start_read_cpu_s": read[1],
            "warm_start_plan_s": plan[0], "warm_start_plan_cpu_s": plan[1],
            "plan_seeds": len(answer.seeds), "plan_priors": len(answer.priors),
            "plan_neighbours": len(answer.neighbours)}


# -- main -------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse(argv)
    os.environ.pop("AUTOML_CHARS_STORE", None)  # the sweep records beside itself
    import ray

    from automl_chars.runner.cluster import local_ray

    root = Path(args.storage or tempfile.mkdtemp(prefix="load-")).resolve()
    (root / "sweep").mkdir(parents=True, exist_ok=True)
    with local_ray(num_cpus=args.cpus, logging_config=ray.LoggingConfig(log_level="WARNING")):
        log(f"sweep: {args.trials} trials in {root / 'sweep'}")
        sweep = run_sweep(args, root / "sweep")
    folder = root / "sweep" / "load"
    log("show and report")
    show_s = cli_seconds("show", str(folder))
    report_s = cli_seconds("report", str(folder), "--out", str(root / "report.html"))
    log(f"store: {args.store_rows} rows")
    build_store(root / "store", args.store_rows, args.rows_per_sweep)
    store = store_figures(root / "store")

    print(f"Sweep: {sweep['trials']} trials of {args.budget} budget unit(s) through run_bohb "
          f"(ReplayTrainable), {args.cpus} at a time, {sweep['sweep_s']:.0f} s")
    w = sweep["window"]
    print(f"  per trial     first {w:>4}   last {w:>4}")
    print(f"  wall s        {sweep['wall_per_trial_first']:>10.3f}   "
          f"{sweep['wall_per_trial_last']:>9.3f}")
    print(f"  driver CPU s  {sweep['driver_cpu_per_trial_first']:>10.3f}   "
          f"{sweep['driver_cpu_per_trial_last']:>9.3f}")
    print(f"   BOHB's model {sweep['model_cpu_per_trial_first']:>10.3f}   "
          f"{sweep['model_cpu_per_trial_last']:>9.3f}")
    print(f"   main thread  {sweep['main_cpu_per_trial_first']:>10.3f}   "
          f"{sweep['main_cpu_per_trial_last']:>9.3f}")
    print("  driver RSS MB at trial " + ", ".join(f"{k}: {v:.0f}"
                                                 for k, v in sweep["rss_mb"].items()))
    print("  per window (to trial: wall s, driver CPU s, of it BOHB's model, main thread CPU s) "
          + ", ".join(f"{k}: " + ", ".join(f"{v:.3f}" for v in values)
                      for k, values in sweep.get("per_window", {}).items()))
    print(f"Store: {store['store_rows']} rows in {store['store_files']} files; plan: "
          f"{store['plan_seeds']} seeds, {store['plan_priors']} priors from "
          f"{store['plan_neighbours']} nearest datasets")
    figures = {
        "trials": sweep["trials"],
        "sweep_s": sweep["sweep_s"],
        "wall_per_trial_first_s": sweep["wall_per_trial_first"],
        "wall_per_trial_last_s": sweep["wall_per_trial_last"],
        "driver_cpu_per_trial_first_s": sweep["driver_cpu_per_trial_first"],
        "driver_cpu_per_trial_last_s": sweep["driver_cpu_per_trial_last"],
        "wall_ratio": sweep["wall_per_trial_last"] / sweep["wall_per_trial_first"],
        "driver_cpu_ratio": sweep["driver_cpu_per_trial_last"] / sweep["driver_cpu_per_trial_first"],
        "model_cpu_per_trial_first_s": sweep["model_cpu_per_trial_first"],
        "model_cpu_per_trial_last_s": sweep["model_cpu_per_trial_last"],
        # the driver without BOHB's model: Tune, the platform's callbacks, snapshots
        "platform_ratio": ((sweep["driver_cpu_per_trial_last"] - sweep["model_cpu_per_trial_last"])
                           / (sweep["driver_cpu_per_trial_first"]
                              - sweep["model_cpu_per_trial_first"])),
        "main_thread_ratio": ((sweep["main_cpu_per_trial_last"] - sweep["model_cpu_per_trial_last"])
                              / (sweep["main_cpu_per_trial_first"]
                                 - sweep["model_cpu_per_trial_first"])),
        "rss_mb_first": next(iter(sweep["rss_mb"].values())),
        "rss_mb_last": list(sweep["rss_mb"].values())[-1],
        "rss_mb_peak": sweep["rss_mb_peak"],
        "show_s": show_s[0], "show_cpu_s": show_s[1],
        "report_s": report_s[0], "report_cpu_s": report_s[1],
        **{k: v for k, v in store.items() if k.endswith("_s") or k == "store_rows"},
    }
    for name, value in figures.items():
        print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")
    print(f"ratio: {figures['driver_cpu_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
