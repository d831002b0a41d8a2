"""Does the warm start pay off? Leave-one-out over the glyph domains, cold against warm BOHB.

For every held-out ``glyphs-*`` domain (the target) and every seed, three sweeps of the same
small CNN subspace with the same preset run on the target:

- **cold**: ``run_bohb(priors=False)``: BOHB from nothing;
- **warm**: ``run_bohb(warm_start=WarmStart(store=<store of the OTHER domains>, k=K))``: the
  store's best configurations of the ``k`` nearest domains as the first trials, and the store's
  results (quantile-normalised) as priors in BOHB's model;
- **pte**: Ray Tune's own option, ``TuneBOHB(points_to_evaluate=...)`` with the same seed
  configurations as the warm sweep, but no priors (a searcher that hands the seeds to BOHB with
  ``adopt(..., "given")``, exactly what ``TuneBOHB`` does with ``points_to_evaluate``).

The store holds "past sweeps": one cold sweep per domain (seeds ``--past-seed`` + the domain's
position, run once and reused), each target's store built from the other domains' sweeps only.
No portfolio is used.

**What is timed.** Every result a trial reports is timestamped in the driver (a Tune callback).
A sweep *reaches the goal* at the first result at the **top budget** whose ``val_acc`` is at least
the cold sweep's final one (its best top-budget ``val_acc``, the incumbent's). Seconds count from
the moment ``run_bohb`` is called (for pte: from planning its seeds), so data loading, the warm
start's planning (meta-features, kNN) and Ray's actor start-up all count. Trials to the goal =
the position of the reaching trial in creation order. A warm or pte sweep that never reaches the
goal counts as ratio 0 (conservative). Final test accuracy = the incumbent's, as ``run_bohb``
reports it.

Prints one row per (target, seed), named figures and last ``ratio:`` = median over targets and
seeds of cold seconds / warm seconds (goal in the issue: >= 4, final accuracy no worse)::

    python benchmarks/warm_start.py                  # 8 targets x 3 seeds
    python benchmarks/warm_start.py --storage DIR    # again: measured rows and past sweeps are reused
    python benchmarks/warm_start.py --targets glyphs-greek,glyphs-digits --seeds 1
    python benchmarks/warm_start.py --smoke          # 2 domains, 1 target, 1 seed (the tests')
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: The CNN hyperparameters searched (the rest keep the CNN space's defaults).
KEEP = ("learning_rate", "batch_size", "optimizer", "momentum", "conv1_channels", "weight_decay")
VARIANTS = ("cold", "warm", "pte")
SMOKE = {"domains": ("glyphs-latin-upper", "glyphs-latin-lower"), "targets": 1, "seeds": 1,
         "preset": "2_1_2_2", "samples_per_class": 6}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="", help="comma-separated target domains (default: all)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per target (0, 1, ...)")
    p.add_argument("--preset", default="3_1_3_3", help="BOHB preset of every sweep")
    p.add_argument("--samples-per-class", type=int, default=15)
    p.add_argument("--k", type=int, default=3, help="nearest datasets that seed and prime")
    p.add_argument("--past-seed", type=int, default=1000,
                   help="seed of the first domain's past sweep (the next domain's is +1, ...)")
    p.add_argument("--storage", default=None, help="where sweeps go (default: a temp folder)")
    p.add_argument("--root", default=None, help="data folder ($AUTOML_CHARS_DATA by default)")
    p.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    return p.parse_args(argv)


def make_space(seed: int):
    from automl_chars.spaces import cnn_space, subspace

    return subspace(cnn_space(seed), KEEP, seed=seed)


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


def run_sweep(variant: str, ds, args, seed: int, store, root: Path) -> dict:
    """One sweep on ``ds``; returns its timed reports and final figures."""
    from automl_chars import run_bohb
    from automl_chars.search import WarmStart, plan_warm_start
    from automl_chars.search.presets import get_preset
    from automl_chars.search.spec import get_spec

    space = make_space(seed)
    cb = reports_callback()
    kwargs = {}
    start = time.time()
    plan_s = 0.0
    n_seeds = 0
    if variant == "warm":
        kwargs["warm_start"] = WarmStart(store=store, k=args.k, builtin=False)
    elif variant == "pte":
        plan = plan_warm_start(ds, get_spec(None, space, seed),
                               WarmStart(store=store, k=args.k, builtin=False),
                               get_preset(args.preset).budgets, store=store, seed=seed)
        plan_s = time.time() - start
        n_seeds = len(plan.seeds)
        kwargs["searcher"] = seeds_first([s.config for s in plan.seeds])
    result = run_bohb(ds, space=space, preset=args.preset, storage_path=root / "runs",
                      name=f"{variant}-{ds.name}-s{seed}", seed=seed, callbacks=[cb],
                      verbose=0, priors=variant != "cold", **kwargs)
    reports = pd.DataFrame(cb.rows)
    reports["t"] -= start
    reports["position"] = reports["trial_id"].map({t: i + 1 for i, t in enumerate(cb.started)})
    trials = result.trials
    if variant == "warm":
        n_seeds = int(trials["suggested_by"].str.startswith(("store:", "portfolio:")).sum())
        plan_s = float(result.settings["started_at"]) - start  # planning + loading + checks
    return {"variant": variant, "reports": reports, "test_acc": float(result.test_accuracy),
            "wall_s": time.time() - start, "plan_s": plan_s, "n_seeds": n_seeds,
            "model_based": int((trials["suggested_by"] == "model").sum()),
            "trials": len(trials)}


def reach(run: dict, goal: float, top: int) -> tuple[float, float]:
    """Seconds and trials (position of the trial in start order) until ``run`` first reports ``val_acc >= goal`` at budget ``top``."""
    r = run["reports"]
    hit = r[(r["budget"] >= top) & (r["val_acc"] >= goal - 1e-9)].sort_values("t")
    if hit.empty:
        return float("inf"), float("inf")
    return float(hit["t"].iloc[0]), float(hit["position"].iloc[0])


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
        done = (root / "past" / f"past-{name}" / "summary.json").exists()  # read back
        res = run_bohb(ds, space=make_space(seed), preset=args.preset,
                       storage_path=root / "past", name=f"past-{name}", seed=seed,
                       resume=done, verbose=0, priors=False)
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


def cached_rows(path: Path, key: dict) -> list[dict]:
    """Rows an earlier run with the same ``--storage`` and settings measured."""
    if not path.exists():
        return []
    frame = pd.read_csv(path)
    same = np.logical_and.reduce([frame[k].astype(str) == str(v) for k, v in key.items()])
    return frame[same].to_dict("records")


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
    n_targets = None
    if args.smoke:
        names = list(SMOKE["domains"])
        n_targets, args.seeds, args.preset = SMOKE["targets"], SMOKE["seeds"], SMOKE["preset"]
        args.samples_per_class = SMOKE["samples_per_class"]
    targets = [t for t in args.targets.split(",") if t] or names[:n_targets]
    unknown = sorted(set(targets) - set(names))
    if unknown:
        raise SystemExit(f"unknown target domains {unknown}; choose from {names}")
    top = get_preset(args.preset).max_budget
    root = Path(args.storage or tempfile.mkdtemp(prefix="warm_start_bench-")).resolve()
    domains = {n: data.load(n, root=args.root, samples_per_class=args.samples_per_class)
               for n in names}
    with local_ray(num_cpus=2, logging_config=ray.LoggingConfig(log_level="WARNING")):
        t_all = time.time()
        stores = past_stores(domains, targets, args, root)
        rows_file = root / "warm_start_rows.csv"
        key = {"preset": args.preset, "samples_per_class": args.samples_per_class, "k": args.k,
               "past_seed": args.past_seed}
        rows = cached_rows(rows_file, key)
        for target in targets:
            for seed in range(args.seeds):
                if any(r["target"] == target.removeprefix("glyphs-") and r["seed"] == seed
                       for r in rows):
                    continue  # measured by an earlier run with this --storage
                for v in VARIANTS:  # a (target, seed) cut short earlier starts again
                    shutil.rmtree(root / "runs" / f"{v}-{target}-s{seed}", ignore_errors=True)
                # The order rotates with the seed, so a load trend does not favour one variant.
                order = VARIANTS[seed % 3:] + VARIANTS[: seed % 3]
                runs = {v: run_sweep(v, domains[target], args, seed, stores[target], root)
                        for v in order}
                cold = runs["cold"]["reports"]
                goal = float(cold.loc[cold["budget"] >= top, "val_acc"].max())
                row = {"target": target.removeprefix("glyphs-"), "seed": seed, "goal": goal, **key}
                for v, run in runs.items():
                    row[f"{v}_s"], row[f"{v}_trials"] = reach(run, goal, top)
                    row[f"{v}_test"] = run["test_acc"]
                    row[f"{v}_wall"] = run["wall_s"]
                    row[f"{v}_model"] = run["model_based"]
                row["seeds"] = runs["warm"]["n_seeds"]
                row["plan_s"] = runs["warm"]["plan_s"]
                for v in ("warm", "pte"):
                    row[f"{v}_ratio"] = (row["cold_s"] / row[f"{v}_s"]
                                         if np.isfinite(row[f"{v}_s"]) else 0.0)
                rows.append(row)
                pd.DataFrame(rows).to_csv(rows_file, index=False)
                log(f"{target} seed {seed}: goal {goal:.3f}; " + ", ".join(
                    f"{v} {row[f'{v}_s']:.1f}s/{row[f'{v}_trials']:.0f} trials test "
                    f"{row[f'{v}_test']:.3f}" for v in VARIANTS))
        wanted = {(t.removeprefix("glyphs-"), s) for t in targets for s in range(args.seeds)}
        frame = pd.DataFrame([r for r in rows if (r["target"], r["seed"]) in wanted])
        report(frame, args, top, time.time() - t_all)
    return 0


def report(frame: pd.DataFrame, args, top: int, total_s: float) -> None:
    shown = frame[["target", "seed", "goal", "cold_s", "warm_s", "pte_s", "cold_trials",
                   "warm_trials", "pte_trials", "cold_test", "warm_test", "pte_test",
                   "warm_model", "cold_model", "seeds", "plan_s", "warm_ratio", "pte_ratio"]]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(f"preset {args.preset}, {args.samples_per_class} images per class, k {args.k}, "
          f"space {', '.join(KEEP)}; goal = cold sweep's best val_acc at the top budget ({top}); "
          f"seconds from the run_bohb call; unreached = ratio 0; total {total_s:.0f}s")
    med = frame.median(numeric_only=True)
    finite = lambda col: frame[col].replace(np.inf, np.nan)  # noqa: E731
    figures = {
        "targets": frame["target"].nunique(),
        "runs": len(frame),
        "cold_s_to_goal": med["cold_s"],
        "warm_s_to_goal": float(finite("warm_s").median()),
        "pte_s_to_goal": float(finite("pte_s").median()),
        "cold_trials_to_goal": med["cold_trials"],
        "warm_trials_to_goal": float(finite("warm_trials").median()),
        "pte_trials_to_goal": float(finite("pte_trials").median()),
        "warm_reached": float(np.isfinite(frame["warm_s"]).mean()),
        "pte_reached": float(np.isfinite(frame["pte_s"]).mean()),
        "trials_ratio": float((frame["cold_trials"] / frame["warm_trials"]).median()),
        "cold_test_acc": frame["cold_test"].mean(),
        "warm_test_acc": frame["warm_test"].mean(),
        "pte_test_acc": frame["pte_test"].mean(),
        "warm_not_worse": float((frame["warm_test"] >= frame["cold_test"] - 1e-9).mean()),
        "warm_model_based": frame["warm_model"].mean(),
        "cold_model_based": frame["cold_model"].mean(),
        "pte_ratio": float(frame["pte_ratio"].median()),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.4g}")
    print(f"ratio: {float(frame['warm_ratio'].median()):.4g}")


if __name__ == "__main__":
    sys.exit(main())
