"""Does the warm start pay off on real sweeps? Leave-one-out over the glyph domains, wall time.

The learning-curve benchmark (``warm_start_table.py``) decides the warm start's design on
replayed sweeps; this one confirms it on real ones. For every held-out ``glyphs-*`` domain (the
target) and every seed, BOHB sweeps of the full CNN space (``--space small``: 6 of its
hyperparameters) with the same preset train on the target:

- **cold**: ``run_bohb(priors=False)``: BOHB from nothing;
- **default**: ``run_bohb()`` as a user runs it: the default warm start (``DEFAULT_PRIORS``) from
  the built-in priors (the shipped learning-curve table and sweeps) without the target's own
  rows (they are left out by name);
- **warm**: ``run_bohb(warm_start=WarmStart(store=<past sweeps of the OTHER domains>,
  same_dataset=False))``: the store's and the built-in priors' nearest domains;
- **pte**: Ray Tune's own option, ``TuneBOHB(points_to_evaluate=...)`` with the warm sweep's
  seed configurations, no priors (a searcher that hands the seeds to BOHB with
  ``adopt(..., "given")``, exactly what ``TuneBOHB`` does with ``points_to_evaluate``).

The store holds "past sweeps": one cold sweep per domain (seeds ``--past-seed`` + the domain's
position, run once and reused), each target's store built from the other domains' sweeps only.

**What is timed.** Every result a trial reports is timestamped in the driver (a Tune callback).
A sweep *reaches the goal* at its first result at the **top budget** whose ``val_acc`` is at
least the goal: the median over seeds of the target's cold sweeps' final accuracy (each one's
best top-budget ``val_acc``). Seconds count from the moment ``run_bohb`` is called (for pte:
from planning its seeds), so data loading, the warm start's planning and Ray's actor start-up
all count; Ray itself is started once per run of this script, and the figures are given
without it and with it (``+ ray_start_s``, what a user's first sweep also pays). A sweep that
never reaches the goal counts at its own end (``reached`` says how often). Final test accuracy
= the incumbent's, as ``run_bohb`` reports it.

Prints one row per (target, seed), named figures and last ``ratio:`` = median over targets and
seeds of cold seconds / default seconds (goal: >= 4, final accuracy no worse)::

    python benchmarks/warm_start.py                  # 3 targets x 3 seeds, full space, 100 img/class
    python benchmarks/warm_start.py --storage DIR    # again: finished sweeps are reused
    python benchmarks/warm_start.py --variants cold,default --storage DIR   # no past sweeps needed
    python benchmarks/warm_start.py --targets glyphs-greek --seeds 1 --space small
    python benchmarks/warm_start.py --report --storage DIR   # the table so far, nothing run
    python benchmarks/warm_start.py --smoke          # 2 domains, 1 target, 1 seed (the tests')
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

#: ``--space small``: the CNN hyperparameters searched (the rest keep the space's defaults).
KEEP = ("learning_rate", "batch_size", "optimizer", "momentum", "conv1_channels", "weight_decay")
VARIANTS = ("cold", "default", "warm", "pte")
#: Three targets by default: the first, a middle and the last glyph domain.
TARGETS = ("glyphs-digits", "glyphs-greek", "glyphs-georgian")
SMOKE = {"domains": ("glyphs-latin-upper", "glyphs-latin-lower"), "targets": 1, "seeds": 1,
         "preset": "2_1_2_2", "samples_per_class": 6, "space": "small",
         "variants": ("cold", "default", "warm")}  # pte: the same seeds as warm, no priors


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated target domains")
    p.add_argument("--seeds", type=int, default=3, help="seeds per target (0, 1, ...)")
    p.add_argument("--preset", default="3_1_9_6", help="BOHB preset of every sweep (34 trials)")
    p.add_argument("--space", choices=("full", "small"), default="full",
                   help="the full CNN space, or 6 of its hyperparameters")
    p.add_argument("--samples-per-class", type=int, default=100)
    p.add_argument("--k", type=int, default=3, help="nearest datasets that seed and prime")
    p.add_argument("--past-seed", type=int, default=1000,
                   help="seed of the first domain's past sweep (the next domain's is +1, ...)")
    p.add_argument("--storage", default=None, help="where sweeps go (default: a temp folder)")
    p.add_argument("--root", default=None, help="data folder ($AUTOML_CHARS_DATA by default)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, cold first (default: all of {', '.join(VARIANTS)})")
    p.add_argument("--report", action="store_true",
                   help="read-only: the table of the sweeps --storage already holds (each target "
                        "with its cold sweeps, each seed with all --variants), nothing is run")
    p.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = p.parse_args(argv)
    if args.report and not args.storage:
        p.error("--report reads the sweeps of --storage DIR: give the folder of a previous run")
    args.variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if args.smoke:
        args.variants = SMOKE["variants"]
    if (not args.variants or args.variants[0] != "cold" or "default" not in args.variants
            or not set(args.variants) <= set(VARIANTS)):
        p.error(f"--variants: cold first, default (the ratio's), then any of "
                f"{', '.join(VARIANTS[2:])}; "
                f"got {','.join(args.variants)}")
    return args


def make_space(kind: str, seed: int):
    from automl_chars.spaces import cnn_space, subspace

    return cnn_space(seed) if kind == "full" else subspace(cnn_space(seed), KEEP, seed=seed)


def reports_callback():
    """A Tune callback that timestamps, in the driver, every result of every trial."""
    from ray.tune.callback import Callback

    class Reports(Callback):
        def __init__(self):
            self.rows, self.started = [], []

        def on_trial_start(self, iteration, trials, trial, **info):
            if trial.trial_id not in self.started:
                self.started.append(trial.trial_id)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.rows.append({"t": time.time(), "trial_id": trial.trial_id,
                              "budget": result.get("training_iteration"),
                              "val_acc": result.get("val_acc")})

    return Reports()


def seeds_first(seeds):
    """The ``points_to_evaluate`` baseline: a searcher factory for ``run_bohb(searcher=...)``
    that hands ``seeds`` out first (as ``TuneBOHB`` does with ``points_to_evaluate``: BOHB learns
    from their results, nothing else), then BOHB's own suggestions: the warm-start searcher
    with the same seeds and no priors."""
    from automl_chars.search.warmstart import Seed, WarmStartPlan, WarmStartSearcher

    plan = WarmStartPlan(seeds=[Seed(dict(c), "given", "points_to_evaluate") for c in seeds])
    return lambda bohb: WarmStartSearcher(bohb, plan)


def warm_start(store, args):
    """The warm variant's warm start: the past sweeps of the other domains and the built-in
    priors, the target's own rows left out."""
    from automl_chars.search import WarmStart

    return WarmStart(store=store, k=args.k, builtin=True, same_dataset=False)


def run_sweep(variant: str, ds, args, seed: int, store, root: Path) -> dict:
    """One sweep on ``ds``: its timed reports (seconds from the ``run_bohb`` call) and figures."""
    from automl_chars import run_bohb
    from automl_chars.search import plan_warm_start
    from automl_chars.search.presets import get_preset
    from automl_chars.search.spec import get_spec

    space = make_space(args.space, seed)
    cb = reports_callback()
    kwargs = {}
    start = time.time()
    if variant == "warm":
        kwargs["warm_start"] = warm_start(store, args)
    elif variant == "pte":
        plan = plan_warm_start(ds, get_spec(None, space, seed), warm_start(store, args),
                               get_preset(args.preset).budgets, store=store, seed=seed)
        kwargs["searcher"] = seeds_first([s.config for s in plan.seeds])
    result = run_bohb(ds, space=space, preset=args.preset, storage_path=root / "runs",
                      name=f"{variant}-{ds.name}-s{seed}", seed=seed, callbacks=[cb],
                      verbose=0, priors=variant in ("default", "warm"), **kwargs)
    reports = pd.DataFrame(cb.rows, columns=["t", "trial_id", "budget", "val_acc"])
    reports["t"] -= start
    reports["position"] = reports["trial_id"].map({t: i + 1 for i, t in enumerate(cb.started)})
    trials = result.trials
    seeded = trials["suggested_by"].str.startswith(("store:", "portfolio:", "given"))
    return {"reports": reports, "test_acc": float(result.test_accuracy),
            "wall_s": time.time() - start, "seeds": int(seeded.sum()),
            "model_based": int((trials["suggested_by"] == "model").sum()),
            "trials": len(trials)}


def saved_run(folder: Path, run) -> dict:
    """``run()``'s result, kept in ``folder`` (a second call reads it back; a sweep cut short
    before it was kept runs again from the start)."""
    summary, reports = folder / "summary.json", folder / "reports.csv"
    if not summary.exists():
        shutil.rmtree(folder.parent.parent / "runs" / folder.name, ignore_errors=True)  # cut short
        out = run()
        folder.mkdir(parents=True, exist_ok=True)
        out["reports"].to_csv(reports, index=False)
        summary.write_text(json.dumps({k: v for k, v in out.items() if k != "reports"}))
    return {**json.loads(summary.read_text()), "reports": pd.read_csv(reports)}


def final_accuracy(run: dict, top: int) -> float:
    """A sweep's final accuracy: its best ``val_acc`` at the top budget."""
    r = run["reports"]
    return float(r.loc[r["budget"] >= top, "val_acc"].max())


def reach(run: dict, goal: float, top: int) -> tuple[float, float, bool]:
    """Seconds and trials (position in start order) until ``run`` first reports ``val_acc >=
    goal`` at budget ``top``; its end (last result, trials run) and False when never."""
    r = run["reports"]
    hit = r[(r["budget"] >= top) & (r["val_acc"] >= goal - 1e-9)].sort_values("t")
    if hit.empty:
        return float(r["t"].max()), float(run["trials"]), False
    return float(hit["t"].iloc[0]), float(hit["position"].iloc[0]), True


def past_stores(domains: dict, targets: list[str], args, root: Path) -> dict:
    """One cold sweep per domain (the past sweeps), and per target a store of the others'."""
    from automl_chars import run_bohb
    from automl_chars.similarity.meta_features import dataset_meta_features
    from automl_chars.store import ResultsStore, add_sweep

    folders, features = {}, {}
    needed = [n for n in domains if any(n != t for t in targets)]
    for name in needed:
        ds = domains[name]
        t0 = time.time()
        # Each domain's own seed: sweeps with one seed would try the same random
        # configurations on every domain, and the neighbours' best would coincide.
        seed = args.past_seed + list(domains).index(name)
        begun = (root / "past" / f"past-{name}").exists()  # read back, or go on if cut short
        res = run_bohb(ds, space=make_space(args.space, seed), preset=args.preset,
                       storage_path=root / "past", name=f"past-{name}", seed=seed,
                       resume=begun, verbose=0, priors=False)
        folders[name], features[name] = res.path, dataset_meta_features(ds)
        log(f"past sweep {name}: best val_acc {res.trials['val_acc'].max():.3f}, "
            f"{time.time() - t0:.0f}s")
    stores = {}
    for target in targets:
        store = ResultsStore(root / "stores" / target)
        for name in needed:
            if name != target:
                add_sweep(folders[name], store, features[name])
        stores[target] = store
    return stores


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse(argv)
    os.environ.pop("AUTOML_CHARS_STORE", None)  # every store here is explicit
    os.environ.pop("RAY_ADDRESS", None)
    import ray

    from automl_chars import data
    from automl_chars.runner.cluster import local_ray
    from automl_chars.search.presets import get_preset

    names = [n for n in data.names() if n.startswith("glyphs-")]
    targets = [t for t in args.targets.split(",") if t]
    if args.smoke:
        names = list(SMOKE["domains"])
        targets, args.seeds, args.preset = names[: SMOKE["targets"]], SMOKE["seeds"], SMOKE["preset"]
        args.samples_per_class, args.space = SMOKE["samples_per_class"], SMOKE["space"]
    unknown = sorted(set(targets) - set(names))
    if unknown or not targets:
        raise SystemExit(f"--targets: unknown {unknown or 'none given'}; choose from {names}")
    top = get_preset(args.preset).max_budget
    root = Path(args.storage or tempfile.mkdtemp(prefix="warm_start_bench-")).resolve()
    setting = f"{args.preset}-{args.space}-n{args.samples_per_class}-k{args.k}-p{args.past_seed}"
    root = root / setting  # sweeps are kept per setting
    if args.report:
        rows = collect(root, targets, args, top, run=None)
        if not rows:
            raise SystemExit(f"--report: no target in {root} has its cold sweeps and "
                             f"{','.join(args.variants)} for a seed yet; run without --report")
        report(pd.DataFrame(rows), args, top, ray_start(root), float("nan"))
        return 0
    domains = {n: data.load(n, root=args.root, samples_per_class=args.samples_per_class)
               for n in names}
    t_ray, joined = time.time(), ray.is_initialized()
    with local_ray(num_cpus=2, logging_config=ray.LoggingConfig(log_level="WARNING")):
        ray_start_s = time.time() - t_ray  # 0 when joining a running Ray (the test suite's)
        if not joined:  # a Ray of its own: what --report prints
            root.mkdir(parents=True, exist_ok=True)
            (root / "ray_start.json").write_text(json.dumps({"ray_start_s": ray_start_s}))
        t_all = time.time()
        # the past sweeps feed the warm and pte variants' stores only
        stores = (past_stores(domains, targets, args, root) if {"warm", "pte"} & set(args.variants)
                  else dict.fromkeys(targets))

        def run(v, target, seed):
            return partial(run_sweep, v, domains[target], args, seed, stores[target], root)

        rows = collect(root, targets, args, top, run)
        report(pd.DataFrame(rows), args, top, ray_start_s, time.time() - t_all)
    return 0


def collect(root: Path, targets: list[str], args, top: int, run) -> list[dict]:
    """One row per (target, seed): each variant's time to the goal, trials and test accuracy.
    ``run(variant, target, seed)`` gives the sweep to run where ``root/measured`` lacks it; with
    ``run=None`` (``--report``) only the kept sweeps count: a target without its cold sweeps and
    a seed without every variant are left out."""
    rows = []
    for target in targets:
        runs = {}
        for seed in range(args.seeds):
            # The order rotates with the seed, so a load trend does not favour one variant.
            variants = args.variants
            order = variants[seed % len(variants):] + variants[: seed % len(variants)]
            for v in order:
                folder = root / "measured" / f"{v}-{target}-s{seed}"
                if run is not None:
                    runs[v, seed] = saved_run(folder, run(v, target, seed))
                elif (folder / "summary.json").exists():
                    runs[v, seed] = saved_run(folder, None)
        colds = [final_accuracy(runs["cold", s], top) for s in range(args.seeds)
                 if ("cold", s) in runs]
        if not colds:
            continue
        goal = float(np.median(colds))
        for seed in range(args.seeds):
            if any((v, seed) not in runs for v in args.variants):
                continue
            row = {"target": target.removeprefix("glyphs-"), "seed": seed, "goal": goal,
                   "colds": len(colds)}
            for v in args.variants:
                r = runs[v, seed]
                row[f"{v}_s"], row[f"{v}_trials"], row[f"{v}_reached"] = reach(r, goal, top)
                row[f"{v}_test"], row[f"{v}_wall"] = r["test_acc"], r["wall_s"]
                row[f"{v}_model"], row[f"{v}_seeds"] = r["model_based"], r["seeds"]
            rows.append(row)
            log(f"{target} seed {seed}: goal {goal:.3f}; " + ", ".join(
                f"{v} {row[f'{v}_s']:.1f}s/{row[f'{v}_trials']:.0f} trials "
                f"{'' if row[f'{v}_reached'] else '(never) '}test {row[f'{v}_test']:.3f}"
                for v in args.variants))
    return rows


def ray_start(root: Path) -> float:
    """Ray's start-up as the last run of this script on ``root`` measured it (nan if never)."""
    f = root / "ray_start.json"
    return float(json.loads(f.read_text())["ray_start_s"]) if f.exists() else float("nan")


def report(frame: pd.DataFrame, args, top: int, ray_start_s: float, total_s: float) -> None:
    cols = ["target", "seed", "goal", "colds", *[f"{v}_s" for v in args.variants],
            *[f"{v}_trials" for v in args.variants], *[f"{v}_test" for v in args.variants],
            *[f"{v}_seeds" for v in args.variants if v in ("default", "warm")]]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(f"preset {args.preset}, {args.space} space, {args.samples_per_class} images per class, "
          f"k {args.k}; goal = median of the target's cold sweeps' best val_acc at the top budget "
          f"({top}, colds: how many); seconds from the run_bohb call (unreached: the sweep's end); "
          f"Ray's start {ray_start_s:.1f}s; "
          + (f"total {total_s:.0f}s" if np.isfinite(total_s) else "read back (--report)"))
    figures = {"targets": frame["target"].nunique(), "runs": len(frame),
               "ray_start_s": ray_start_s}
    for v in args.variants:
        figures[f"{v}_s_to_goal"] = float(frame[f"{v}_s"].median())
        figures[f"{v}_trials_to_goal"] = float(frame[f"{v}_trials"].median())
        figures[f"{v}_reached"] = float(frame[f"{v}_reached"].mean())
        figures[f"{v}_test_acc"] = float(frame[f"{v}_test"].mean())
    for v in args.variants[1:]:
        figures[f"{v}_not_worse"] = float((frame[f"{v}_test"] >= frame["cold_test"] - 1e-9).mean())
        figures[f"speedup[{v}]"] = float((frame["cold_s"] / frame[f"{v}_s"]).median())
        figures[f"speedup_with_ray_start[{v}]"] = float(
            ((frame["cold_s"] + ray_start_s) / (frame[f"{v}_s"] + ray_start_s)).median())
    for name, value in figures.items():
        print(f"{name}: {value:.4g}")
    print(f"ratio: {figures['speedup[default]']:.4g}")


if __name__ == "__main__":
    sys.exit(main())
