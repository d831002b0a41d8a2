"""``automl-chars pareto DIR``: the Pareto fronts of accuracy against each cost of a finished
sweep (or of a supernet run's subnets), as tables and a plot, and the best result within cost
limits (docs/hardware-aware.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from automl_chars.cli.options import add_limit_arguments, location, shown, summary_of

#: Columns printed for each front (those the points have).
SHOWN = ("trial_id", "subnet", "budget", "val_acc", "supernet_acc", "standalone_acc", "params",
         "flops", "latency_ms")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``automl-chars pareto`` on the main parser's subcommands."""
    p = subparsers.add_parser("pareto", help="Pareto fronts of accuracy against parameters, "
                                             "FLOPs and latency of a finished sweep or supernet run",
                              description=summary_of(__doc__))
    p.add_argument("path", help="a sweep's folder, or a supernet run's sampler folder "
                                "(<storage>/supernet-<dataset>/<sampler>); a folder or a "
                                "storage URI (s3://, gs://)")
    p.add_argument("--cost", action="append", default=None, choices=("params", "flops",
                                                                     "latency_ms"),
                   help="cost to draw a front against (repeatable; default all three)")
    p.add_argument("--budget", type=int, default=None,
                   help="sweeps: the budget whose trials are compared (default the highest "
                        "reached)")
    p.add_argument("--metric", default=None,
                   help="supernet runs: supernet_acc (default: the supernet's own estimate) "
                        "or standalone_acc")
    add_limit_arguments(p, "only results within the limits are drawn, and the best of them "
                           "is printed")
    p.add_argument("--out", default=None, help="plot file, a path or a storage URI (default "
                                               "DIR/pareto.png)")
    p.set_defaults(func=cmd_pareto)
    return p


def cmd_pareto(args: argparse.Namespace) -> int:
    from automl_chars.layout import run_folder
    from automl_chars.reporting.pareto import (
        PARETO_COSTS,
        PARETO_FILE,
        pareto_fronts,
        plot_pareto,
    )
    from automl_chars.training.objective import Objective, within_limits

    limits = Objective(max_params=args.max_params, max_flops=args.max_flops,
                       max_latency_ms=args.max_latency_ms)  # bad values fail before reading
    location(args.out, "--out")
    costs = args.cost or list(PARETO_COSTS)
    folder = run_folder(location(args.path, "path"), "path")
    points, metric, what = _points(folder, args)
    points = within_limits(points, limits)
    fronts = pareto_fronts(points, costs, metric)
    for cost in costs:
        front = fronts[fronts["front"] == cost]
        print(f"\nPareto front of {metric} against {cost} ({len(front)} of {len(points)} "
              f"{what}):")
        print(front[[c for c in SHOWN if c in front]].to_string(index=False))
    if limits.limits:
        if points.empty:
            print(f"\nNo {what[:-1] if what.endswith('s') else what} is within the limits.")
        else:
            best = points.sort_values(metric, ascending=False, kind="stable").iloc[0]
            line = ", ".join(f"{c} {best[c]:g}" if isinstance(best[c], float) else f"{c} {best[c]}"
                             for c in SHOWN if c in best.index)
            print(f"\nBest within the limits: {line}")
    out = plot_pareto(points, args.out or folder / PARETO_FILE, costs, metric,
                      title=f"{folder.name}: {metric} against each cost")
    print(f"\nPlot: {shown(out)}")
    return 0


def _points(folder: Path, args: argparse.Namespace):
    """``(points, metric, what they are)`` of ``folder`` (local, its files downloaded): a
    sweep's trials or a supernet run's subnets."""
    from automl_chars.errors import InvalidConfigError

    if (folder / "table.csv").exists() and not (folder / "trials.csv").exists():
        from automl_chars.supernet.result import SupernetResult
        from automl_chars.supernet.select import SUBNET_METRICS, subnet_points

        metric = args.metric or SUBNET_METRICS[0]
        if args.budget is not None:
            raise InvalidConfigError("--budget applies to sweeps; a supernet run's subnets all "
                                     "trained the same epochs.")
        return subnet_points(SupernetResult.load(folder), metric), metric, "subnets"
    from automl_chars.reporting.pareto import sweep_points

    if args.metric not in (None, "val_acc"):
        raise InvalidConfigError(f"--metric {args.metric}: a sweep's fronts are of val_acc.")
    return sweep_points(folder, args.budget), "val_acc", "trials"
