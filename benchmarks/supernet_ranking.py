"""Does the supernet rank subnets as standalone training does, and at what cost? (issue 8, §4;
DARTS: issue 18, §3; at a size that matters: issue 18, §4)

For each sampler, ``run_supernet`` trains seed 002's supernet (9 subnets by default) on a glyph
domain and every subnet standalone with the same epochs and hyperparameters (the standalone runs
are shared by the samplers of a seed), then fine-tunes the top-k subnets from the supernet's
weights. ``darts`` is a DARTS search instead of a sampler: its answer is the derived
architecture (argmax per choice), its ranking the subnets' probabilities under the architecture
weights. With ``--seeds``, every seed is a run of its own (standalone runs included) and the
figures are means over seeds. ``--standalone-sample N`` trains only a stratified sample of N
subnets standalone (parameter-count quintiles, the smallest and the largest subnet always in, the
same sample for every sampler of a seed; DARTS's derived subnet is trained standalone too when it
is outside it): the correlations and the top-1 are over the sample, and the cost ratio is
against the standalone cost of every subnet, estimated per stratum from the sample.

Printed per sampler, for each seed (``kendall_tau[s,seed=0]``, ...) and then as the mean over
seeds: ``kendall_tau[s]``, ``spearman[s]`` (supernet vs standalone test top-1 over the
standalone-trained subnets), ``top1_regret[s]`` (standalone test top-1 of the best
standalone-trained subnet minus that of the supernet's first among them, DARTS's derived subnet;
0 = the right choice), ``ratio[s]`` (supernet CPU- or GPU-seconds / standalone seconds of every
subnet, estimated from the sample with ``--standalone-sample``); then the means of
``top1_match[s]`` (the fraction of seeds where the supernet's first, DARTS's derived subnet, is
the standalone best), ``top1_after_finetune[s]`` (the best fine-tuned subnet by validation top-1
is the standalone best) and ``ratio_sampled[s]`` (supernet / the standalone seconds actually
spent); for DARTS also ``derived_rank[darts]`` (the derived subnet's mean rank among the
standalone-trained subnets, 1 = best) and ``arch_prob_tau[darts]`` (Kendall tau of the
probabilities against standalone). Last, ``ratio:`` is the first sampler's mean cost ratio.
Goals: tau >= 0.8 at ratio <= 0.25 and the right top-1 after fine-tuning on seed 002's 9 subnets
(seed 002: tau 0.72, Spearman 0.87 on MNIST); DARTS finds the standalone best in most seeds; at
size (196 subnets), tau >= 0.9 at ratio <= 0.1.

    python benchmarks/supernet_ranking.py                       # 5 samplers and DARTS
    python benchmarks/supernet_ranking.py --samplers darts --seeds 0,1,2,3,4 --storage DIR
    python benchmarks/supernet_ranking.py --samplers uniform,darts --depths 1,2 --ops conv3,conv5
    python benchmarks/supernet_ranking.py --samplers uniform,fair --epochs 10 --gpus-per-trial 0.25
    python benchmarks/supernet_ranking.py --smoke               # the test suite's tiny run

At size (issue 18, §4): 196 subnets (two blocks, depths 1 to 3, conv3 or conv5 per sub-block),
every sampler and DARTS, 5 seeds, a stratified sample of 30 subnets trained standalone per seed
(hours on a CPU; ``--gpus-per-trial 0.25`` on a GPU):

    python benchmarks/supernet_ranking.py --ops conv3,conv5 --depths 1,2,3 \
        --standalone-sample 30 --seeds 0,1,2,3,4 --storage DIR

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
         "depths": "1,2", "top_k": 1, "batch_size": 16, "cpus": 2, "standalone_sample": 2}


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
    ap.add_argument("--standalone-sample", type=int, default=None, metavar="N",
                    help="train only a stratified sample of N subnets standalone (default: all)")
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
                                 resume=(Path(storage) / name).exists(),
                                 standalone_sample=args.standalone_sample)
                results[sampler].append(r)
                if seed == seeds[0] and sampler == samplers[0]:  # the standalone-trained rows
                    print(format_table(r, sampled_only=True))
    first = results[samplers[0]][0]
    if first.standalone_sample:
        print(f"standalone: a stratified sample of {len(first.standalone_sample['subnets'])} of "
              f"{space.size} subnets per seed (strata of "
              f"{first.standalone_sample['stratum_sizes']} subnets by parameters); standalone "
              f"seconds of all estimated from it")
    print(f"\n{'sampler':<15} {'tau':>6} {'rho':>6} {'top1':>5} {'regret':>7} {'ft top1':>7} "
          f"{'ratio':>6}  supernet / standalone (all; sampled) / fine-tune "
          f"({first.costs['unit']})")
    for sampler in samplers:
        for r in results[sampler]:
            c, f = r.costs, r.finetune
            print(f"{r.sampler:<15} {r.kendall_tau:6.3f} {r.spearman:6.3f} {int(r.top1_match):5d} "
                  f"{r.top1_regret:7.4f} {int(bool(f.get('right_top1'))):7d} {c['ratio']:6.3f}  "
                  f"{c['supernet']:.1f} / {c['standalone']:.1f}; "
                  f"{c.get('standalone_sampled', c['standalone']):.1f} / {c['finetune']:.1f}  "
                  f"seed {r.summary['seed']}")
    if "darts" in results:
        print("\nDARTS: seed, derived subnet, its standalone rank, standalone best, epochs to "
              "its final choice")
        for r in results["darts"]:
            d = r.darts
            where = "" if d.get("derived_in_sample", True) else " (outside the sample)"
            print(f"  {r.summary['seed']}  {d['derived']:<20} {d['derived_standalone_rank']:>3} of "
                  f"{d['n_subnets']}{where}  {r.summary['standalone_top1']:<20} "
                  f"{d['epochs_to_final']}")
    print(f"wall time: {time.perf_counter() - start:.0f}s (all runs)\n")

    def mean(values) -> float:
        return sum(values) / len(values)

    per_seed = {"kendall_tau": lambda r: r.kendall_tau, "spearman": lambda r: r.spearman,
                "top1_regret": lambda r: r.top1_regret, "ratio": lambda r: r.cost_ratio}
    for sampler in samplers:
        rs = results[sampler]
        for figure, of in per_seed.items():
            for r in rs:
                print(f"{figure}[{sampler},seed={r.summary['seed']}]: {of(r):.4f}")
            print(f"{figure}[{sampler}]: {mean([of(r) for r in rs]):.4f}")
        print(f"top1_match[{sampler}]: {mean([int(r.top1_match) for r in rs]):.4f}")
        print(f"top1_after_finetune[{sampler}]: "
              f"{mean([int(bool(r.finetune.get('right_top1'))) for r in rs]):.4f}")
        print(f"ratio_sampled[{sampler}]: {mean([r.costs['ratio_sampled'] for r in rs]):.4f}")
        if sampler == "darts":
            print(f"derived_rank[darts]: {mean([r.darts['derived_standalone_rank'] for r in rs]):.4f}")
            print(f"arch_prob_tau[darts]: {mean([r.darts['arch_prob_kendall_tau'] for r in rs]):.4f}")
    print(f"ratio: {mean([r.cost_ratio for r in results[samplers[0]]]):.4f}")


if __name__ == "__main__":
    sys.exit(main())
