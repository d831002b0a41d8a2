"""Does the supernet rank subnets as standalone training does, and at what cost? (issue 8, §4;
DARTS: issue 18, §3)

For each sampler, ``run_supernet`` trains seed 002's supernet (9 subnets by default) on a glyph
domain and every subnet standalone with the same epochs and hyperparameters (the standalone runs
are shared by the samplers of a seed), then fine-tunes the top-k subnets from the supernet's
weights. ``darts`` is a DARTS search instead of a sampler: its answer is the derived
architecture (argmax per choice), its ranking the subnets' probabilities under the architecture
weights. With ``--seeds``, every seed is a run of its own (standalone runs included) and the
figures are means over seeds.

Printed per sampler: ``kendall_tau[s]``, ``spearman[s]`` (supernet vs standalone test top-1 over
the subnets), ``top1_match[s]`` (the fraction of seeds where the supernet's best, DARTS's derived
subnet, is the standalone best), ``top1_after_finetune[s]`` (the best fine-tuned subnet by
validation top-1 is the standalone best), ``ratio[s]`` (supernet CPU- or GPU-seconds / all
standalone seconds); for DARTS also ``derived_rank[darts]`` (the derived subnet's mean rank among
the standalone-trained subnets, 1 = best) and ``arch_prob_tau[darts]`` (Kendall tau of the
probabilities against standalone). Last, ``ratio:`` is the first sampler's cost ratio. Goals:
tau >= 0.8 at ratio <= 0.25 and the right top-1 after fine-tuning (seed 002: tau 0.72, Spearman
0.87 on MNIST); DARTS finds the standalone best in most seeds.

    python benchmarks/supernet_ranking.py                       # 5 samplers and DARTS
    python benchmarks/supernet_ranking.py --samplers darts --seeds 0,1,2,3,4 --storage DIR
    python benchmarks/supernet_ranking.py --samplers uniform,darts --depths 1,2 --ops conv3,conv5
    python benchmarks/supernet_ranking.py --samplers uniform,fair --epochs 10 --gpus-per-trial 0.25
    python benchmarks/supernet_ranking.py --smoke               # the test suite's tiny run

With ``--storage DIR`` an interrupted run continues where it stopped (finished seeds and
samplers are read back).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

SMOKE = {"samplers": "uniform,darts", "epochs": 1, "samples_per_class": 8, "channels": "4,8",
         "depths": "1,2", "top_k": 1, "batch_size": 16, "cpus": 2}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs-digits")
    ap.add_argument("--samples-per-class", type=int, default=300)
    ap.add_argument("--samplers", default="uniform,epsilon_greedy,ucb1,thompson,fair,darts")
    ap.add_argument("--seeds", default=None,
                    help="comma-separated seeds, each a run of its own (default: --seed)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--channels", default="16,32")
    ap.add_argument("--depths", default="1,2,3")
    ap.add_argument("--ops", default="conv3", help="sub-block operations, e.g. conv3,conv5")
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr-schedule", default="cosine",
                    help="constant, cosine or step, for the supernet and the subnets alike")
    ap.add_argument("--warmup", type=int, default=100, help="epsilon_greedy's uniform rounds")
    ap.add_argument("--arch-learning-rate", type=float, default=3e-3,
                    help="DARTS: Adam's learning rate of the architecture weights")
    ap.add_argument("--gpus-per-trial", type=float, default=0.0)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--seed", type=int, default=0)
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
    from automl_chars.runner.cluster import local_ray
    from automl_chars.supernet import SupernetSpace, run_supernet
    from automl_chars.supernet.result import format_table

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    space = SupernetSpace(channels=tuple(int(c) for c in args.channels.split(",")),
                          depths=tuple(int(d) for d in args.depths.split(",")),
                          ops=tuple(args.ops.split(",")))
    config = {"learning_rate": args.learning_rate, "batch_size": args.batch_size,
              "lr_schedule": args.lr_schedule, "warmup": args.warmup,
              "arch_learning_rate": args.arch_learning_rate}
    storage = args.storage or tempfile.mkdtemp(prefix="supernet_ranking_")
    samplers = args.samplers.split(",")
    print(f"{args.dataset}, {args.samples_per_class} images per class; {space.size} subnets; "
          f"{args.epochs} epochs, {args.lr_schedule} learning rate {args.learning_rate}; seeds "
          f"{seeds}; runs in {storage}")
    start, results = time.perf_counter(), {s: [] for s in samplers}
    with local_ray(num_cpus=args.cpus, num_gpus=torch.cuda.device_count()):
        for seed in seeds:
            ds = data.load(args.dataset, samples_per_class=args.samples_per_class, seed=seed)
            name = "bench" if len(seeds) == 1 else f"bench-s{seed}"
            for sampler in samplers:
                r = run_supernet(ds, sampler, args.epochs, storage, seed, args.gpus_per_trial,
                                 space=space, config=config, top_k=args.top_k,
                                 finetune_epochs=args.finetune_epochs, name=name, verbose=0,
                                 resume=(Path(storage) / name).exists())
                results[sampler].append(r)
                if seed == seeds[0] and sampler == samplers[0]:
                    print(format_table(r))
    print(f"\n{'sampler':<15} {'tau':>6} {'rho':>6} {'top1':>5} {'ft top1':>7} {'ratio':>6}  "
          f"supernet / standalone / fine-tune ({results[samplers[0]][0].costs['unit']}), "
          f"first seed")
    for sampler in samplers:
        for r in results[sampler]:
            c, f = r.costs, r.finetune
            print(f"{r.sampler:<15} {r.kendall_tau:6.3f} {r.spearman:6.3f} {int(r.top1_match):5d} "
                  f"{int(bool(f.get('right_top1'))):7d} {c['ratio']:6.3f}  {c['supernet']:.0f} / "
                  f"{c['standalone']:.0f} / {c['finetune']:.0f}  seed {r.summary['seed']}")
    if "darts" in results:
        print("\nDARTS: seed, derived subnet, its standalone rank, standalone best, epochs to "
              "its final choice")
        for r in results["darts"]:
            d = r.darts
            print(f"  {r.summary['seed']}  {d['derived']:<20} {d['derived_standalone_rank']:>3} of "
                  f"{d['n_subnets']}  {r.summary['standalone_top1']:<20} {d['epochs_to_final']}")
    print(f"wall time: {time.perf_counter() - start:.0f}s (all runs)\n")

    def mean(values) -> float:
        return sum(values) / len(values)

    for sampler in samplers:
        rs = results[sampler]
        print(f"kendall_tau[{sampler}]: {mean([r.kendall_tau for r in rs]):.4f}")
        print(f"spearman[{sampler}]: {mean([r.spearman for r in rs]):.4f}")
        print(f"top1_match[{sampler}]: {mean([int(r.top1_match) for r in rs]):.4f}")
        print(f"top1_after_finetune[{sampler}]: "
              f"{mean([int(bool(r.finetune.get('right_top1'))) for r in rs]):.4f}")
        print(f"ratio[{sampler}]: {mean([r.cost_ratio for r in rs]):.4f}")
        if sampler == "darts":
            print(f"derived_rank[darts]: {mean([r.darts['derived_standalone_rank'] for r in rs]):.4f}")
            print(f"arch_prob_tau[darts]: {mean([r.darts['arch_prob_kendall_tau'] for r in rs]):.4f}")
    print(f"ratio: {mean([r.cost_ratio for r in results[samplers[0]]]):.4f}")


if __name__ == "__main__":
    sys.exit(main())
