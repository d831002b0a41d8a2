"""Does a warm-started DARTS settle on its architecture sooner than a cold one? (issue 18, §3)

DARTS searches each source glyph domain (cold, ``--source-epochs``); each source's trained
supernet becomes a portfolio entry (a model trained on it, for the similarity measure) and its
search is saved beside its run (``arch_weights.json``). Then, for every seed, DARTS searches the
target twice for ``--epochs``: cold (uniform architecture weights) and warm-started
(``DartsWarmStart``: the weights of the most similar source's search, by ``--measure``).

Printed: per seed and start, the derived architecture after each epoch; then
``epochs_to_final[cold|warm]`` (mean first epoch from which the derived architecture stays the
run's final one), ``val_acc_epoch1[cold|warm]`` (mean validation top-1 of the derived subnet after
the first epoch: equal epochs), ``val_acc_final[cold|warm]``, ``same_final`` (fraction of seeds
where both end on the same architecture) and last ``ratio:`` = epochs_to_final[warm] /
epochs_to_final[cold] (below 1: the warm start settles sooner).

    python benchmarks/darts_warm_start.py                        # 3 sources, 5 seeds
    python benchmarks/darts_warm_start.py --storage DIR          # keep (and resume) the runs
    python benchmarks/darts_warm_start.py --smoke                # the test suite's tiny run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

SMOKE = {"sources": "glyphs-greek", "target": "glyphs-digits", "samples_per_class": 8,
         "channels": "4,8", "depths": "1,2", "epochs": 2, "source_epochs": 2, "seeds": "0",
         "batch_size": 16, "cpus": 2, "measure": "meta_features"}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default="glyphs-latin-upper,glyphs-greek,glyphs-hebrew")
    ap.add_argument("--target", default="glyphs-latin-lower")
    ap.add_argument("--samples-per-class", type=int, default=100)
    ap.add_argument("--channels", default="16,32")
    ap.add_argument("--depths", default="1,2,3")
    ap.add_argument("--ops", default="conv3")
    ap.add_argument("--epochs", type=int, default=6, help="epochs of each target search")
    ap.add_argument("--source-epochs", type=int, default=8)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--arch-learning-rate", type=float, default=3e-3)
    ap.add_argument("--measure", default="logme", help="similarity measure ranking the sources")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--storage", default=None, help="keep the runs here (default: a temp folder)")
    ap.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = ap.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


def main(argv=None) -> None:
    args = parse(argv)
    import torch

    from automl_chars import data
    from automl_chars.checkpoints import load_trial_state
    from automl_chars.portfolio import Portfolio
    from automl_chars.runner.cluster import local_ray
    from automl_chars.supernet import SupernetSpace
    from automl_chars.workflows.darts import DartsWarmStart, run_darts

    space = SupernetSpace(channels=tuple(int(c) for c in args.channels.split(",")),
                          depths=tuple(int(d) for d in args.depths.split(",")),
                          ops=tuple(args.ops.split(",")))
    config = {"learning_rate": args.learning_rate, "batch_size": args.batch_size,
              "lr_schedule": "cosine", "arch_learning_rate": args.arch_learning_rate}
    storage = Path(args.storage or tempfile.mkdtemp(prefix="darts_warm_start_"))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"target {args.target}, sources {args.sources}; {space.size} subnets; "
          f"{args.samples_per_class} images per class; seeds {seeds}; runs in {storage}")
    start = time.perf_counter()

    def load(name: str, seed: int = 0):
        return data.load(name, samples_per_class=args.samples_per_class, seed=seed)

    def search(ds, epochs, seed, name, warm=None):
        exp = storage / name
        return run_darts(ds, epochs, storage, seed, space=space, config=config, name=name,
                         warm_start=warm, verbose=0,
                         resume=(exp / ("darts-warm" if warm else "darts")).exists())

    with local_ray(num_cpus=args.cpus, num_gpus=torch.cuda.device_count()):
        portfolio = Portfolio(storage / "portfolio")
        for source in args.sources.split(","):
            ds = load(source)
            run = search(ds, args.source_epochs, 0, f"source-{source}")
            if source not in portfolio.names():  # the searched supernet: a model of the source
                state = load_trial_state(run.trials.checkpoint("darts"))
                portfolio.add(ds, "supernet", space.to_dict(), state["state_dict"],
                              trainable="darts", epochs=args.source_epochs)
            print(f"source {source}: derived {run.derived} after {args.source_epochs} epochs")
        warm = DartsWarmStart(portfolio, results=storage, measure=args.measure)
        runs = {"cold": [], "warm": []}
        for seed in seeds:
            target = load(args.target, seed)
            runs["cold"].append(search(target, args.epochs, seed, f"target-s{seed}"))
            runs["warm"].append(search(target, args.epochs, seed, f"target-s{seed}", warm))
    n = runs["warm"][0].neighbour
    print(f"\nwarm start from {n['dataset']} (rank {n['rank']} by {n['measure']}, its derived "
          f"{n['derived']})")
    for seed, cold, warm_run in zip(seeds, runs["cold"], runs["warm"]):
        for kind, r in (("cold", cold), ("warm", warm_run)):
            path = " ".join(h["derived"] for h in r.weights.history)
            print(f"  seed {seed} {kind}: {path}  (final from epoch {r.epochs_to_final})")
    print(f"wall time: {time.perf_counter() - start:.0f}s\n")

    def mean(values) -> float:
        return sum(values) / len(values)

    settle = {k: mean([r.epochs_to_final for r in rs]) for k, rs in runs.items()}
    for kind, rs in runs.items():
        print(f"epochs_to_final[{kind}]: {settle[kind]:.4f}")
        print(f"val_acc_epoch1[{kind}]: {mean([r.weights.history[0]['val_acc'] for r in rs]):.4f}")
        print(f"val_acc_final[{kind}]: {mean([r.weights.history[-1]['val_acc'] for r in rs]):.4f}")
    print(f"same_final: {mean([c.derived == w.derived for c, w in zip(runs['cold'], runs['warm'])]):.4f}")
    print(f"ratio: {settle['warm'] / settle['cold']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
