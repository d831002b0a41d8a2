"""``automl-chars supernet``: seed 002's experiment (a weight-sharing supernet per sampler against
every subnet trained standalone) on any dataset, printed as tables, saved with plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from automl_chars.cli.options import (
    add_data_arguments,
    add_limit_arguments,
    add_resume_arguments,
    load_dataset,
)
from automl_chars.errors import InvalidConfigError

#: Command-line options that become training hyperparameters or sampler settings of the config.
CONFIG_OPTIONS = {"learning_rate": float, "batch_size": int, "optimizer": str,
                  "lr_schedule": str, "epsilon": float, "warmup": int, "ucb_c": float,
                  "discount": float, "arch_learning_rate": float, "arch_weight_decay": float}


def int_list(text: str) -> tuple[int, ...]:
    """``"16,32"`` -> ``(16, 32)``; anything else is a clear error."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. "
                                         f"16,32; got {text!r}") from None


def add_supernet_arguments(p: argparse.ArgumentParser, *, samplers: tuple[str, ...] = ("uniform",),
                           ) -> None:
    """The options of ``automl-chars supernet`` and ``experiments/supernet_mnist.py``."""
    p.add_argument("--sampler", action="append", default=None,
                   help=f"subnet sampler, repeatable: uniform, epsilon_greedy, ucb1, thompson, "
                        f"fair, or darts (a DARTS search; docs/supernet.md) (default "
                        f"{', '.join(samplers)})")
    p.set_defaults(default_samplers=list(samplers))
    p.add_argument("--epochs", type=int, default=3, help="epochs of the supernet and each subnet")
    p.add_argument("--top-k", type=int, default=3, help="subnets fine-tuned from the supernet")
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--channels", type=int_list, default=(16, 32),
                   help="channels of each NAS block, e.g. 16,32 (their number = NAS blocks)")
    p.add_argument("--depths", type=int_list, default=(1, 2, 3), help="sub-blocks a block may run")
    p.add_argument("--ops", default="conv3",
                   help="sub-block operations, e.g. conv3,conv5,skip (one: only depths vary)")
    p.add_argument("--stem-stride", type=int, default=2)
    p.add_argument("--standalone-sample", type=int, default=None, metavar="N",
                   help="train only N subnets standalone, a stratified sample (parameter-count "
                        "strata, the smallest and largest always in): for spaces of more than "
                        "64 subnets; correlations over the sample, the cost ratio against the "
                        "estimated cost of all (default: every subnet)")
    for option, kind in CONFIG_OPTIONS.items():
        p.add_argument("--" + option.replace("_", "-"), type=kind, default=None)
    darts = p.add_argument_group("DARTS warm start (--sampler darts)")
    darts.add_argument("--darts-warm-start", default=None, metavar="PORTFOLIO",
                       help="start the architecture weights from the saved DARTS search of the "
                            "portfolio dataset most similar to --dataset")
    darts.add_argument("--darts-results", default=None, metavar="DIR",
                       help="results root holding earlier DARTS searches (default --storage)")
    darts.add_argument("--darts-measure", default=None,
                       help="similarity measure ranking the portfolio (default logme)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--storage", default=None, help="results root (default ~/automl_chars_results)")
    p.add_argument("--name", default=None, help="experiment folder (default supernet-<dataset>)")
    p.add_argument("--seed", type=int, default=0)
    add_resume_arguments(p, "continue an interrupted run")
    p.add_argument("--max-failures", type=int, default=2)
    add_data_arguments(p)
    p.add_argument("--address", default=None, help="Ray cluster address")
    p.add_argument("--verbose", type=int, default=1)
    add_limit_arguments(p.add_argument_group("the best subnet within cost limits "
                                             "(docs/hardware-aware.md)"),
                        "print the subnet the supernet ranks best among those within them")


def samplers_of(args: argparse.Namespace) -> list[str]:
    """The samplers asked for, each checked (an unknown one suggests the closest names)."""
    from automl_chars.supernet import SamplerSettings
    from automl_chars.workflows.darts import DARTS

    names = args.sampler or args.default_samplers
    for name in names:
        if name != DARTS:
            SamplerSettings(name)
    if len(set(names)) != len(names):
        raise InvalidConfigError(f"--sampler names repeat: {names}.")
    darts_only = [f for f in ("darts_warm_start", "darts_results", "darts_measure")
                  if getattr(args, f, None) is not None]
    if darts_only and DARTS not in names:
        raise InvalidConfigError(
            f"{', '.join('--' + f.replace('_', '-') for f in darts_only)} belong(s) to DARTS: "
            f"add --sampler darts.")
    if (args.darts_results or args.darts_measure) and not args.darts_warm_start:
        raise InvalidConfigError("--darts-results and --darts-measure choose a warm start's "
                                 "neighbour: add --darts-warm-start PORTFOLIO.")
    return names


def darts_warm_start_of(args: argparse.Namespace):
    """The ``--darts-*`` options as a :class:`~automl_chars.workflows.darts.DartsWarmStart`
    (None without ``--darts-warm-start``); the portfolio must exist."""
    from automl_chars.workflows.darts import DartsWarmStart

    if not args.darts_warm_start:
        return None
    if not Path(args.darts_warm_start).expanduser().is_dir():
        raise InvalidConfigError(f"--darts-warm-start {args.darts_warm_start}: no portfolio "
                                 f"folder there (build one with `automl-chars portfolio build`).")
    extra = {"measure": args.darts_measure} if args.darts_measure else {}
    return DartsWarmStart(args.darts_warm_start, results=args.darts_results, **extra)


def run_samplers(dataset_name: str, args: argparse.Namespace) -> list:
    """Runs :func:`run_supernet` for each sampler of ``args`` (sharing the standalone runs),
    prints each table and summary, and plots the samplers side by side."""
    from automl_chars.reporting.supernet import plot_result
    from automl_chars.supernet import SupernetSpace, run_supernet
    from automl_chars.supernet.result import format_summary, format_table
    from automl_chars.workflows.darts import DARTS

    samplers = samplers_of(args)
    warm = darts_warm_start_of(args)
    limits = limits_of(args)  # bad limits fail before anything trains
    space = SupernetSpace(channels=args.channels, depths=args.depths,
                          ops=tuple(o.strip() for o in args.ops.split(",") if o.strip()),
                          stem_stride=args.stem_stride)
    config = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k) is not None}
    ds = load_dataset(dataset_name, args)
    results = []
    for sampler in samplers:
        result = run_supernet(
            ds, sampler, args.epochs, args.storage, args.seed, args.gpus_per_trial, space=space,
            config=config, top_k=args.top_k, finetune_epochs=args.finetune_epochs,
            name=args.name, resume=args.resume, restart_errored=args.restart_errored,
            cpus_per_trial=args.cpus_per_trial,
            max_failures=args.max_failures, address=args.address, verbose=args.verbose,
            warm_start=warm if sampler == DARTS else None,
            standalone_sample=getattr(args, "standalone_sample", None))
        plot_result(result)
        print(f"\n== {result.sampler}: {result.path}")
        print(format_table(result))
        print(format_summary(result))
        if limits.limits:
            print(best_subnet_line(result, limits))
        results.append(result)
    plots = [*sampler_plots(results), *comparison_plots(results)]
    print("\nPlots:\n" + "\n".join(f"  {p}" for p in plots))
    return results


def limits_of(args: argparse.Namespace):
    """The ``--max-*`` limits as an :class:`~automl_chars.training.objective.Objective`."""
    from automl_chars.training.objective import Objective

    return Objective(max_params=getattr(args, "max_params", None),
                     max_flops=getattr(args, "max_flops", None),
                     max_latency_ms=getattr(args, "max_latency_ms", None))


def best_subnet_line(result, limits) -> str:
    """The subnet the supernet ranks best within ``limits``, and its costs, in a line."""
    from automl_chars.supernet.select import best_subnet

    try:
        row = best_subnet(result, **{k: v for k, v in vars(limits).items()
                                     if k.startswith("max_")})
    except InvalidConfigError as err:
        return f"best subnet within the limits: none ({err})"
    return (f"best subnet within the limits: {row['subnet']} (top-1 in the supernet "
            f"{row['supernet_acc']:.4f}, standalone {row['standalone_acc']:.4f}; params "
            f"{row['params']:.0f}, FLOPs {row['flops']:.0f}, latency {row['latency_ms']:.3f} ms)")


def sampler_plots(results: list) -> list[Path]:
    """The plots :func:`run_supernet` wrote into each sampler's folder (those there)."""
    from automl_chars.reporting.supernet import RESULT_PLOTS

    return [r.path / name for r in results for name in RESULT_PLOTS if (r.path / name).exists()]


def comparison_plots(results: list) -> list[Path]:
    """Dynamics and sampling counts of every sampler side by side, in the experiment folder."""
    from automl_chars.reporting.supernet import (
        COUNTS_FILE,
        DYNAMICS_FILE,
        plot_counts,
        plot_dynamics,
    )

    root = Path(results[0].path).parent
    return [plot_dynamics(results, root / DYNAMICS_FILE), plot_counts(results, root / COUNTS_FILE)]


def cmd_supernet(args: argparse.Namespace) -> int:
    run_samplers(args.dataset, args)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``automl-chars supernet`` on the main parser's subcommands."""
    p = subparsers.add_parser("supernet", help="train a weight-sharing supernet per sampler and "
                                               "every subnet standalone; compare the rankings")
    p.add_argument("--dataset", required=True, help="a name from `automl-chars datasets`")
    add_supernet_arguments(p)
    p.set_defaults(func=cmd_supernet)
    return p
