"""Does the warm start win? Replayed BOHB sweeps on the shipped learning-curve table, leave one
glyph domain out, every method under real Ray Tune on a simulated clock.

For every target domain and seed, each method runs a replayed sweep on the target's curves
(``replay_spec``: the CNN space's proposals snap to the table's nearest configuration; results
reach Tune in simulated-time order with ``--parallelism`` trials at a time). The target's rows
are hidden from every prior and seed (the evidence is the table's OTHER domains):

- **random**: the same HyperBand schedule, every configuration drawn at random
  (``bohb_config={"random_fraction": 1}``);
- **cold**: BOHB from nothing (``run_bohb(priors=False)``);
- **default**: the default sweep (``DEFAULT_PRIORS``: the nearest domains' anytime seed
  portfolio trained to the top budget first, and BOHB's model starting from their results), its
  built-in priors rebuilt from the table without the target;
- **default_rank**: the same with ``seed_choice="rank"``: its store seeds of best mean rank at
  the neighbours' top budget (as ``ZeroShotTransfer`` picks), not the anytime portfolio;
- **warmstart**: ``WarmStart``: the seed portfolio of the ``k`` nearest domains as the first
  trials, trained to the top budget at once (``lead``), and their results as priors (on a table
  there is no portfolio of trained models, so the seeds come from the store's neighbours: the
  default sweep's plan without the built-in priors, which the table's other domains are);
- **warmstart_bottom**: the same with ``lead=False``: the seeds start at the smallest budget
  and wait for their rung, as Ray's ``points_to_evaluate`` do (a design choice measured);
- **pte**: Ray Tune's ``points_to_evaluate`` idea: the warm start's seeds first, no priors;
- **pmf**: ``WarmStart(method="pmf")``: the same priors, but its ``num_seeds`` first trials
  picked one at a time by expected improvement over the other domains' factorised matrix
  (:mod:`automl_chars.search.pmf`), each knowing the target's results so far (trials proposed
  at once, before any result, spread out in the latent space), trained to the top budget at once;
- **zero_shot**, **bounding_box**: Syne Tune's transfer-learning schedulers on the same table
  through Syne Tune's own simulator (``benchmarks/syne_tune_peers.py``; skipped, with a note,
  when syne-tune is not installed).

**Regret** of a run at simulated time t: (best - incumbent) / (best - median), clipped to
[0, 1], where the incumbent is the best val_acc the run has seen by t (1 before its first
result), best the table's best val_acc on the target at the top budget and median the median
there. The **horizon** of a target is the median simulated time cold BOHB's sweeps take; runs
are read on [0, horizon]. Per run: time to regret <= 0.1 (the horizon when never), the mean
regret over the horizon (area), the regret at the horizon.

Prints per method and target, then per method, and ``ratio:`` last = median over targets and
seeds of cold BOHB's time to regret 0.1 over the default sweep's (goal: >= 4). Writes a plot of
mean regret against time (as a fraction of the horizon) with 95% intervals::

    python benchmarks/warm_start_table.py                      # every shipped target, 10 seeds
    python benchmarks/warm_start_table.py --storage DIR        # again: finished runs are kept
    # across machines: keep DIR's events/ (one ~13 KB .csv.gz per run) in the repository
    python benchmarks/warm_start_table.py --targets glyphs-greek --seeds 3
    python benchmarks/warm_start_table.py --smoke              # the test suite's tiny run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("random", "cold", "default", "default_rank", "warmstart", "warmstart_bottom", "pte",
           "pmf")
#: The methods that draw on the warm start's design (their runs are kept per design).
WARM = ("default", "default_rank", "warmstart", "warmstart_bottom", "pte", "pmf")
#: Syne Tune's methods (benchmarks/syne_tune_peers.py).
PEERS = ("zero_shot", "bounding_box")
#: Regret level of "time to target".
TARGET_REGRET = 0.1
#: The smoke run: one target, one seed, two small brackets; the methods that share code paths with
#: others (random: a BOHB option; warmstart_bottom: a WarmStart flag; pte: a searcher) left out.
SMOKE = {"seeds": 1, "preset": "3_1_3_2", "targets": 1,
         "methods": ("cold", "default", "warmstart", "pmf", "zero_shot", "bounding_box")}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=None, help="a learning-curve table (default: the shipped one)")
    p.add_argument("--targets", default="", help="comma-separated target domains (default: all)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per target (0, 1, ...)")
    p.add_argument("--preset", default="3_1_9_18", help="BOHB preset (3_1_9_18: 102 trials)")
    p.add_argument("--parallelism", type=int, default=4, help="trials at a time")
    p.add_argument("--k", type=int, default=None,
                   help="nearest domains that seed and prime (default: DEFAULT_PRIORS.k)")
    p.add_argument("--num-seeds", type=int, default=None,
                   help="seed trials of the warm starts (default: DEFAULT_PRIORS.num_seeds)")
    p.add_argument("--methods", default=",".join((*METHODS, *PEERS)),
                   help="comma-separated methods (cold always runs: it sets the horizon)")
    p.add_argument("--storage", default=None, help="where runs go (default: a temp folder); "
                   "a second run with the same folder keeps the finished runs")
    p.add_argument("--plot", default=None, help="the plot's file (default: in --storage)")
    p.add_argument("--rerun-forced", action="store_true",
                   help="run again the kept runs whose clock had to force a release (a loaded "
                        "machine starved the driver: their order may be off)")
    p.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    return p.parse_args(argv)


# -- the evidence a method gets: the table without the target ------------------------------
def evidence(table, target: str):
    """What the warm starts may draw on for ``target``: the other domains' rows."""
    from automl_chars.search.warmstart import Evidence

    return Evidence(results=table.store_rows([d for d in table.datasets if d != target]))


def target_info(table, target: str):
    """The target as the planner sees it, from the table's manifest."""
    from automl_chars.search.warmstart import TargetInfo

    entry = next(d for d in table.manifest.datasets if d["name"] == target)
    return TargetInfo(target, entry["fingerprint"], entry["meta_features"])


def seeds_first(configs):
    """``points_to_evaluate``: a searcher factory handing ``configs`` out first (BOHB learns
    from their results, nothing else), then BOHB's own suggestions."""
    from automl_chars.search.warmstart import Seed, WarmStartPlan, WarmStartSearcher

    plan = WarmStartPlan(seeds=[Seed(dict(c), "given", "points_to_evaluate") for c in configs])
    return lambda bohb: WarmStartSearcher(bohb, plan)


def warm_start_of(method: str, design: dict, known=None):
    """The ``WarmStart`` that ``method`` sweeps with (None for the methods without one; pte's is
    the one whose seeds it hands out)."""
    from automl_chars.search.warmstart import DEFAULT_PRIORS, WarmStart

    if method in ("default", "default_rank"):
        choice = "rank" if method == "default_rank" else DEFAULT_PRIORS.seed_choice
        return replace(DEFAULT_PRIORS, evidence=known, seed_choice=choice, **design)
    if method in ("warmstart", "warmstart_bottom", "pte"):
        return WarmStart(**design, builtin=False, evidence=known, lead=method != "warmstart_bottom")
    if method == "pmf":
        return WarmStart(**design, builtin=False, evidence=known, method="pmf")
    return None


def design_key(table, target: str, method: str, k: int, num_seeds: int, preset: str) -> str:
    """A short hash of what ``method``'s warm start does on ``target``: its plan (every seed,
    prior and PMF pick, exactly), its settings and the code that carries the plan out
    (``WarmStartSearcher``; PMF's module for pmf). A changed design is a new setting whose runs
    are not reused; a change of how a plan is computed that gives the same plan (a faster fit)
    keeps them, and so does a change to another method's design."""
    import inspect

    from automl_chars.search import pmf
    from automl_chars.search.presets import get_preset
    from automl_chars.search.spec import replay_spec
    from automl_chars.search.warmstart import WarmStartSearcher, plan_from

    known, design = evidence(table, target), {"k": k, "num_seeds": num_seeds}
    spec, budgets = replay_spec(table, seed=0), get_preset(preset).budgets
    warm = warm_start_of(method, design, known)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_from(target_info(table, target), spec, warm, budgets, known)
    text = json.dumps([{"seeds": [(s.config, s.suggested_by) for s in plan.seeds],
                        "priors": [] if method == "pte" else
                        [(p.config, p.budget, p.loss, p.dataset) for p in plan.priors],
                        "pmf": plan.pmf_trials, "summary": plan.summary()},
                       repr(replace(warm, evidence=None)), method], sort_keys=True, default=str)
    code = inspect.getsource(WarmStartSearcher) + (inspect.getsource(pmf) if method == "pmf"
                                                   else "")
    return hashlib.sha1((text + code).encode()).hexdigest()[:6]


# -- one run ---------------------------------------------------------------------------------
def run_method(method: str, table, ds, seed: int, args, folder: Path) -> pd.DataFrame:
    """One replayed sweep of ``method`` on ``ds``; its released results (``sim_time``,
    ``val_acc``, ``config_id``, ``budget``) in simulated-time order."""
    from automl_chars import run_bohb
    from automl_chars.search.presets import get_preset
    from automl_chars.search.spec import replay_spec
    from automl_chars.search.warmstart import plan_from
    from automl_chars.trainables.simclock import CLOCK_FILE, EVENTS_FILE

    spec = replay_spec(table, seed=seed, parallelism=args.parallelism)
    kwargs = dict(spec=spec, preset=args.preset, storage_path=folder, name="run", seed=seed,
                  verbose=0, cpus_per_trial=1, priors=False)  # Ray has `parallelism` CPUs
    known = evidence(table, ds.name)
    warm = warm_start_of(method, {"k": args.k, "num_seeds": args.num_seeds}, known)
    if method == "random":
        kwargs["bohb_config"] = {"random_fraction": 1.0}
    elif method == "pte":
        plan = plan_from(target_info(table, ds.name), spec, warm, get_preset(args.preset).budgets,
                         known)
        kwargs["searcher"] = seeds_first([s.config for s in plan.seeds])
    elif warm is not None:
        kwargs.update(priors=True, warm_start=warm)
    result = run_bohb(ds, **kwargs)
    clock = json.loads((result.path / CLOCK_FILE).read_text())
    if clock["forced"]:
        log(f"{method} on {ds.name} seed {seed}: {clock['forced']} releases forced by the "
            f"clock's patience (the driver fell silent): its order may be off")
    return pd.read_csv(result.path / EVENTS_FILE).assign(forced=clock["forced"])


def save_events(events: pd.DataFrame, file: Path) -> None:
    """A run's events, gzipped, written whole or not at all (a killed run leaves no half file
    that a rerun would take as finished)."""
    tmp = file.with_name(f".{file.name}.tmp")
    events.to_csv(tmp, index=False, compression="gzip")
    os.replace(tmp, file)


# -- figures ----------------------------------------------------------------------------------
def reference(table, target: str) -> tuple[float, float]:
    """(best, median) val_acc on ``target`` at the table's top budget."""
    frame = table.frame
    top = frame[(frame["dataset"] == target) & (frame["epoch"] == table.epochs)]["val_acc"]
    return float(top.max()), float(top.median())


def regret_curve(events: pd.DataFrame, best: float, median: float) -> pd.DataFrame:
    """``sim_time``, ``regret`` after each result (the incumbent's, clipped to [0, 1])."""
    incumbent = events["val_acc"].fillna(-np.inf).cummax()
    regret = ((best - incumbent) / max(best - median, 1e-12)).clip(0, 1)
    return pd.DataFrame({"sim_time": events["sim_time"].to_numpy(), "regret": regret.to_numpy()})


def regret_at(curve: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """The curve's regret at ``times`` (1 before its first result)."""
    idx = np.searchsorted(curve["sim_time"].to_numpy(), times, side="right") - 1
    values = curve["regret"].to_numpy()
    return np.where(idx >= 0, values[np.clip(idx, 0, None)] if len(values) else 1.0, 1.0)


def figures(curve: pd.DataFrame, horizon: float) -> dict:
    """Time to regret <= 0.1 (the horizon when never), mean regret over [0, horizon] and the
    regret at the horizon."""
    hit = curve[(curve["regret"] <= TARGET_REGRET + 1e-12) & (curve["sim_time"] <= horizon)]
    grid = np.linspace(0, horizon, 501)
    return {"time_to_target": float(hit["sim_time"].iloc[0]) if len(hit) else horizon,
            "reached": bool(len(hit)), "area": float(regret_at(curve, grid).mean()),
            "final_regret": float(regret_at(curve, np.array([horizon]))[0])}


def plot(curves: dict, horizons: dict, path: Path, zoom: float = 0.05) -> None:
    """Mean regret against time (fraction of each target's horizon), 95% intervals: the whole
    horizon, and its first ``zoom`` where the warm starts part (log-scaled regret)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (whole, start) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in sorted({m for m, _, _ in curves}, key=_method_order):
        for ax, grid in ((whole, np.linspace(0, 1, 201)), (start, np.linspace(0, zoom, 201))):
            rows = np.array([regret_at(c, grid * horizons[t])
                             for (m, t, _), c in curves.items() if m == method])
            mean = rows.mean(axis=0)
            half = (1.96 * rows.std(axis=0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1
                    else 0 * mean)
            ax.plot(grid, mean, label=f"{method} ({len(rows)} runs)")
            ax.fill_between(grid, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1),
                            alpha=0.15)
    for ax in (whole, start):
        ax.axhline(TARGET_REGRET, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("simulated time / horizon (cold BOHB's median sweep time)")
    whole.set_ylabel("normalised regret of the incumbent")
    whole.set_ylim(0, 1.02)
    whole.legend(fontsize=8)
    whole.set_title("Replayed sweeps, leave one glyph domain out")
    start.set_yscale("symlog", linthresh=0.01)
    start.set_ylim(0, 1.02)
    start.set_title(f"The first {zoom:.0%} of the horizon (regret: log scale above 0.01)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _method_order(method: str) -> int:
    order = [*METHODS, *PEERS]
    return order.index(method) if method in order else len(order)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- main ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse(argv)
    from automl_chars.search.warmstart import DEFAULT_PRIORS

    args.k = DEFAULT_PRIORS.k if args.k is None else args.k
    args.num_seeds = DEFAULT_PRIORS.num_seeds if args.num_seeds is None else args.num_seeds
    for flag, value in (("--k", args.k), ("--num-seeds", args.num_seeds)):
        if value < 0:
            raise SystemExit(f"{flag} must be >= 0, got {value}.")
    os.environ.pop("AUTOML_CHARS_STORE", None)
    import ray

    from automl_chars import data
    from automl_chars.runner.cluster import local_ray
    from automl_chars.tabular import LearningCurveTable
    from automl_chars.tabular.shipped import glyph_curves

    table = LearningCurveTable.load(args.table) if args.table else glyph_curves()
    if len(table.datasets) < 2:
        raise SystemExit(f"--table: leave-one-out needs at least 2 domains; the table has "
                         f"{table.datasets}.")
    methods = [m for m in args.methods.split(",") if m]
    targets = [t for t in args.targets.split(",") if t] or table.datasets
    if args.smoke:
        args.seeds, args.preset, args.parallelism = SMOKE["seeds"], SMOKE["preset"], 2
        targets = targets[: SMOKE["targets"]]
        methods = [m for m in methods if m in SMOKE["methods"]]
    unknown = sorted(set(targets) - set(table.datasets))
    if unknown:
        raise SystemExit(f"--targets: {unknown} not in the table; it has {table.datasets}.")
    unknown = sorted(set(methods) - set(METHODS) - set(PEERS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {[*METHODS, *PEERS]}.")
    peers = [m for m in methods if m in PEERS]
    if peers:
        sys.path.insert(0, str(Path(__file__).parent))
        import syne_tune_peers

        why = syne_tune_peers.available()
        if why:
            log(f"Syne Tune peers skipped: {why}")
            methods = [m for m in methods if m in METHODS]
            peers = []
    root = Path(args.storage or tempfile.mkdtemp(prefix="warm_start_table-")).resolve()
    # finished runs are kept per setting and per table (a table with more domains is new evidence)
    table_key = hashlib.sha1(json.dumps([table.datasets, table.manifest.space_fingerprint,
                                         table.epochs]).encode()).hexdigest()[:8]
    events_dir = root / "events" / f"{args.preset}-p{args.parallelism}-{table_key}"
    # a warm start's runs are kept per design: its settings, its plans and its searchers' code
    designs = {(t, m): f"-k{args.k}-n{args.num_seeds}-"
                       f"{design_key(table, t, m, args.k, args.num_seeds, args.preset)}"
               for t in targets for m in methods if m in WARM}
    events_dir.mkdir(parents=True, exist_ok=True)
    curves, horizons, walls, forced = {}, {}, {m: [] for m in methods}, 0
    # one logical CPU per trial at a time: exactly `parallelism` replayed trials fit (they
    # mostly wait on the clock, so more logical CPUs than cores cost nothing)
    with local_ray(num_cpus=args.parallelism,
                   logging_config=ray.LoggingConfig(log_level="WARNING")):
        for target in targets:
            ds = data.load(target, samples_per_class=table.manifest.samples_per_class)
            best, median = reference(table, target)
            order = ["cold", *[m for m in methods if m != "cold"]]  # cold sets the horizon
            for method in order:
                if method in peers:
                    continue
                for seed in range(args.seeds):
                    warm = designs[target, method] if method in WARM else ""
                    file = events_dir / f"{method}-{target}-s{seed}{warm}.csv.gz"
                    if args.rerun_forced and file.exists() and was_forced(file):
                        log(f"{file.name}: its clock forced a release; running it again")
                        file.unlink()
                    if not file.exists():
                        t0 = time.perf_counter()
                        folder = root / "runs" / f"{method}-{target}-s{seed}"
                        shutil.rmtree(folder, ignore_errors=True)
                        save_events(run_method(method, table, ds, seed, args, folder), file)
                        shutil.rmtree(folder, ignore_errors=True)
                        walls.setdefault(method, []).append(time.perf_counter() - t0)
                    events = pd.read_csv(file)
                    forced += int(events["forced"].max()) if len(events) else 0
                    curves[method, target, seed] = regret_curve(events, best, median)
                if method == "cold":
                    horizons[target] = float(np.median(
                        [curves["cold", target, s]["sim_time"].iloc[-1] for s in range(args.seeds)]))
            for method in peers:
                for seed in range(args.seeds):
                    file = events_dir / f"{method}-{target}-s{seed}.csv.gz"
                    if not file.exists():
                        t0 = time.perf_counter()
                        save_events(syne_tune_peers.run_peer(
                            method, table, target, seed, horizons[target],
                            n_workers=args.parallelism), file)
                        walls.setdefault(method, []).append(time.perf_counter() - t0)
                    curves[method, target, seed] = regret_curve(pd.read_csv(file), best, median)
            log(f"{target}: horizon {horizons[target]:.0f} simulated s")
    rows = pd.DataFrame([{"method": m, "target": t, "seed": s, **figures(c, horizons[t])}
                         for (m, t, s), c in curves.items()])
    report(rows, walls)
    print(f"forced_releases: {forced}")
    path = Path(args.plot) if args.plot else root / "warm_start_table.png"
    plot(curves, horizons, path)
    print(f"plot: {path}")
    return finish(rows)


def was_forced(file: Path) -> bool:
    """Whether the kept run in ``file`` had a release forced by the clock's patience."""
    events = pd.read_csv(file)
    return bool(len(events)) and "forced" in events and int(events["forced"].max()) > 0


def report(rows: pd.DataFrame, walls: dict) -> None:
    """Per method and target, then per method (each target's seeds pooled)."""
    pd.set_option("display.width", 160)
    per_target = rows.groupby(["target", "method"]).agg(
        time_to_target=("time_to_target", "median"), reached=("reached", "mean"),
        area=("area", "mean"), final_regret=("final_regret", "mean"), runs=("seed", "size"))
    print(per_target.round(3).to_string())
    for method, group in sorted(rows.groupby("method"), key=lambda g: _method_order(g[0])):
        print(f"area[{method}]: {group['area'].mean():.4f}")
        print(f"final_regret[{method}]: {group['final_regret'].mean():.4f}")
        print(f"reached[{method}]: {group['reached'].mean():.3f}")
        if walls.get(method):
            print(f"wall_s[{method}]: {np.median(walls[method]):.1f}")


def finish(rows: pd.DataFrame) -> int:
    """Speed-ups over cold BOHB (per target and seed, medians) and ``ratio:`` last."""
    ttt = rows.pivot_table(index=["target", "seed"], columns="method", values="time_to_target")
    for method in ttt.columns:
        if method != "cold":
            print(f"speedup[{method}]: {float((ttt['cold'] / ttt[method]).median()):.3f}")
    if {"pmf", "warmstart"} <= set(ttt.columns):  # issue 18's goal: pmf at least matches it
        print(f"pmf_vs_warmstart: {float((ttt['warmstart'] / ttt['pmf']).median()):.3f}")
    ratio = float((ttt["cold"] / ttt["default"]).median()) if "default" in ttt else float("nan")
    print(f"ratio: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
