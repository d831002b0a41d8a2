"""Does the supernet rank subnets as standalone training does, and at what cost? (issue 8, §4)

For each sampler, ``run_supernet`` trains seed 002's supernet (9 subnets by default) on a glyph
domain and every subnet standalone with the same epochs and hyperparameters (the standalone runs
are shared by the samplers), then fine-tunes the top-k subnets from the supernet's weights.
Printed per sampler: ``kendall_tau[s]``, ``spearman[s]`` (supernet vs standalone test top-1 over
the subnets), ``top1_match[s]`` (1 when the supernet's best is the standalone best),
``top1_after_finetune[s]`` (1 when the best fine-tuned subnet by validation top-1 is the
standalone best), ``ratio[s]`` (supernet CPU- or GPU-seconds / all standalone seconds). Last,
``ratio:`` is the first sampler's cost ratio. Goal: tau >= 0.8 at ratio <= 0.25, and the right
top-1 after fine-tuning. Seed 002 reports tau 0.72 (Spearman 0.87) on MNIST.

    python benchmarks/supernet_ranking.py                       # 5 samplers, glyphs-digits
    python benchmarks/supernet_ranking.py --samplers uniform,fair --epochs 10 --gpus-per-trial 0.25
    python benchmarks/supernet_ranking.py --smoke               # the test suite's tiny run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

SMOKE = {"samplers": "uniform", "epochs": 1, "samples_per_class": 8, "channels": "4,8",
         "depths": "1,2", "top_k": 1, "batch_size": 16, "cpus": 2}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs-digits")
    ap.add_argument("--samples-per-class", type=int, default=300)
    ap.add_argument("--samplers", default="uniform,epsilon_greedy,ucb1,thompson,fair")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--channels", default="16,32")
    ap.add_argument("--depths", default="1,2,3")
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr-schedule", default="cosine",
                    help="constant, cosine or step, for the supernet and the subnets alike")
    ap.add_argument("--warmup", type=int, default=100, help="epsilon_greedy's uniform rounds")
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

    ds = data.load(args.dataset, samples_per_class=args.samples_per_class, seed=args.seed)
    space = SupernetSpace(channels=tuple(int(c) for c in args.channels.split(",")),
                          depths=tuple(int(d) for d in args.depths.split(",")))
    config = {"learning_rate": args.learning_rate, "batch_size": args.batch_size,
              "lr_schedule": args.lr_schedule, "warmup": args.warmup}
    storage = args.storage or tempfile.mkdtemp(prefix="supernet_ranking_")
    print(f"{ds!r}; {space.size} subnets; {args.epochs} epochs, {args.lr_schedule} learning "
          f"rate {args.learning_rate}; runs in {storage}")
    start, results = time.perf_counter(), []
    with local_ray(num_cpus=args.cpus, num_gpus=torch.cuda.device_count()):
        for sampler in args.samplers.split(","):
            r = run_supernet(ds, sampler, args.epochs, storage, args.seed, args.gpus_per_trial,
                             space=space, config=config, top_k=args.top_k,
                             finetune_epochs=args.finetune_epochs, name="bench", verbose=0)
            results.append(r)
            if len(results) == 1:
                print(format_table(r))
    print(f"\n{'sampler':<15} {'tau':>6} {'rho':>6} {'top1':>5} {'ft top1':>7} {'ratio':>6}  "
          f"supernet / standalone / fine-tune ({results[0].costs['unit']})")
    for r in results:
        c, f = r.costs, r.finetune
        print(f"{r.sampler:<15} {r.kendall_tau:6.3f} {r.spearman:6.3f} {int(r.top1_match):5d} "
              f"{int(bool(f.get('right_top1'))):7d} {c['ratio']:6.3f}  {c['supernet']:.0f} / "
              f"{c['standalone']:.0f} / {c['finetune']:.0f}")
    print(f"wall time: {time.perf_counter() - start:.0f}s\n")
    for r in results:
        s = r.sampler
        print(f"kendall_tau[{s}]: {r.kendall_tau:.4f}")
        print(f"spearman[{s}]: {r.spearman:.4f}")
        print(f"top1_match[{s}]: {int(r.top1_match)}")
        print(f"top1_after_finetune[{s}]: {int(bool(r.finetune.get('right_top1')))}")
        print(f"ratio[{s}]: {r.cost_ratio:.4f}")
    print(f"ratio: {results[0].cost_ratio:.4f}")


if __name__ == "__main__":
    sys.exit(main())
