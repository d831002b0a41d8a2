"""The ``automl-chars`` command: ``datasets``, ``bohb``, ``train``, ``show``, ``pareto``,
``portfolio``, ``store``, ``similarity``, ``supernet``, ``table``, ``report``.

Errors the platform raises on purpose (unknown names, missing data, bad presets, experiments that
cannot be resumed, a cluster that cannot be reached) are printed as one clear message with exit
status 2, not as a traceback. An interrupted sweep (Ctrl-C, SIGTERM, ``ray job stop``) prints how
to resume it and exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from automl_chars.cli import pareto, portfolio, report, similarity, store, supernet, table, train
from automl_chars.cli.options import (
    add_data_arguments,
    add_limit_arguments,
    add_resume_arguments,
    add_workers_argument,
    check_resume_arguments,
    load_dataset,
    location,
    shown,
    store_line,
    summary_of,
)
from automl_chars.errors import AutomlCharsError, SweepInterrupted


def add_sweep_arguments(p: argparse.ArgumentParser, *, preset_default: str | None = None) -> None:
    """The options shared by ``automl-chars bohb`` and the experiment scripts."""
    p.add_argument("--preset", default=preset_default,
                   help="BOHB preset eta_min_max_iterations, e.g. 3_1_9_20 (seed 001's names)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPU share per trial, e.g. 0.25 for four trials per GPU (0 = CPU only)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    add_workers_argument(p)
    p.add_argument("--fidelity", choices=("epochs", "subset"), default="epochs",
                   help="what a budget unit is: an epoch, or a growing stratified data subset")
    p.add_argument("--num-samples", type=int, default=None,
                   help="Ray trials (default: what the preset's iterations need)")
    p.add_argument("--storage", default=None, help="results root (default ~/automl_chars_results)")
    p.add_argument("--name", default=None, help="experiment folder name")
    p.add_argument("--seed", type=int, default=0)
    add_resume_arguments(p, "continue an interrupted sweep (errored trials are retried from "
                            "their last checkpoint)")
    p.add_argument("--max-failures", type=int, default=2,
                   help="retries of a trial whose process or node died, from its last checkpoint")
    add_data_arguments(p)
    p.add_argument("--address", default=None, help="Ray cluster address (default: local or $RAY_ADDRESS)")
    p.add_argument("--no-priors", action="store_true",
                   help="start BOHB's model empty: without the built-in priors (and, without "
                        "--warm-start, the store's results)")
    p.add_argument("--autotune-lr", action="store_true",
                   help="AutotuneLR: take learning_rate out of the space; each trial tunes its "
                        "own by a refined grid search of short runs (docs/training-tools.md)")
    p.add_argument("--verbose", type=int, default=1,
                   help="0 silent, 1 a line per finished trial and a progress line with an ETA "
                        "(default), 2-4 Ray Tune's own output")
    add_objective_arguments(p)


def add_objective_arguments(p: argparse.ArgumentParser) -> None:
    """Cost limits and MnasNet's reward (docs/hardware-aware.md)."""
    g = p.add_argument_group("hardware-aware objective (docs/hardware-aware.md)")
    add_limit_arguments(g, "a configuration over it is infeasible: it trains nothing and is "
                           "never the incumbent")
    g.add_argument("--reward-target", action="append", default=None, metavar="COST=TARGET",
                   help="maximise MnasNet's reward acc * (cost/target)^w, e.g. latency_ms=0.5 "
                        "(repeatable; costs: params, flops, latency_ms)")
    g.add_argument("--reward-weight", type=float, default=None,
                   help="the reward's exponent w (default -0.07, MnasNet's soft constraint)")
    g.add_argument("--reward-weight-over", type=float, default=None,
                   help="w above the target (default: --reward-weight; -1 with "
                        "--reward-weight 0 is MnasNet's hard constraint)")


def objective_of(args: argparse.Namespace):
    """The :class:`~automl_chars.training.objective.Objective` of the command line's limits and
    reward (None when none is given); bad values fail here, before any data loads."""
    from automl_chars.errors import InvalidConfigError
    from automl_chars.training.objective import MNASNET_WEIGHT, Objective

    targets = {}
    for item in getattr(args, "reward_target", None) or []:
        cost, sep, value = item.partition("=")
        try:
            targets[cost.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidConfigError(f"--reward-target takes COST=TARGET, e.g. latency_ms=0.5; "
                                     f"got {item!r}.")
    weight = getattr(args, "reward_weight", None)
    if not targets and (weight is not None or getattr(args, "reward_weight_over", None)
                        is not None):
        raise InvalidConfigError("--reward-weight and --reward-weight-over need --reward-target.")
    objective = Objective(
        max_params=args.max_params, max_flops=args.max_flops, max_latency_ms=args.max_latency_ms,
        reward_targets=targets, reward_weight=MNASNET_WEIGHT if weight is None else weight,
        reward_weight_over=getattr(args, "reward_weight_over", None))
    return objective if objective.active else None


def sweep(dataset, args: argparse.Namespace, preset: str, name: str | None = None, space=None,
          resume: bool | None = None, warm_start=None, spec: str | None = None):
    """Runs one sweep of ``spec`` (a name in ``SPECS`` or a ``SweepSpec``; default the CNN) from parsed arguments
    (``resume`` overrides ``--resume``)."""
    from automl_chars import run_bohb
    from automl_chars.search.presets import get_preset

    get_preset(preset)  # a bad preset fails before the dataset loads
    objective = objective_of(args)
    return run_bohb(
        dataset, space=space, preset=preset, num_samples=args.num_samples, fidelity=args.fidelity,
        gpus_per_trial=args.gpus_per_trial, cpus_per_trial=args.cpus_per_trial,
        storage_path=args.storage, name=name or args.name, seed=args.seed,
        resume=args.resume if resume is None else resume, max_failures=args.max_failures,
        address=args.address, verbose=args.verbose, warm_start=warm_start,
        priors=not args.no_priors, autotune_lr=getattr(args, "autotune_lr", False),
        objective=objective, workers_per_trial=args.workers_per_trial, spec=spec,
        restart_errored=getattr(args, "restart_errored", False),
    )


def print_result(result) -> None:
    from automl_chars.reporting import format_table, top_trials
    from automl_chars.reporting.tables import seeded_trials

    print(f"\nExperiment: {shown(result.path)}")
    print(store_line(result.path))
    print(f"Trials: {len(result.trials)} ({result.n_model_based} proposed by BOHB's model)")
    if result.objective.active:
        print(f"Objective: {describe_objective(result.objective)}; {result.n_infeasible} "
              f"trials infeasible (over the limits, not trained)")
    seeded = seeded_trials(result.trials)
    if not seeded.empty:
        print("\nSeeded trials (warm start):")
        print(seeded.to_string(index=False))
    print("\nBest trials:")
    print(top_trials(result, 5).to_string(index=False))
    print("\nIncumbent:", result.incumbent)
    print()
    print(format_table(result.table))


def describe_objective(objective) -> str:
    """An objective in the command line's words, e.g. ``--max-params 50000``."""
    parts = [f"{CLI_FLAGS[arg]} {getattr(objective, arg):g}"
             for arg in ("max_params", "max_flops", "max_latency_ms")
             if getattr(objective, arg) is not None]
    if objective.reward_targets:
        targets = ", ".join(f"{c}={t:g}" for c, t in objective.reward_targets.items())
        parts.append(f"reward acc * (cost/target)^w for {targets}, w = "
                     f"{objective.reward_weight:g} under, {objective.weight_over:g} over the target")
    return "; ".join(parts)


def cmd_datasets(args: argparse.Namespace) -> int:
    from automl_chars import data

    root = data.data_root(args.root)
    print(f"Data root: {root}\n")
    rows = []
    for name in data.names():
        s = data.spec(name)
        status = "built-in" if s.builtin else ("available" if s.available(root) else "missing")
        rows.append((name, status, s.description))
    width = max(len(r[0]) for r in rows)
    for name, status, desc in rows:
        print(f"{name:<{width}}  {status:<9}  {desc}")
    return 0


def cmd_bohb(args: argparse.Namespace) -> int:
    objective_of(args)  # bad limits or reward fail before the data loads
    spec, dataset_name = _bohb_target(args)  # so do an unknown model family or experiment
    warm = None
    choice = {"seed_choice": args.seed_choice} if args.seed_choice else {}
    if args.warm_start or args.store or args.warm_method != "knn":
        from automl_chars.errors import InvalidConfigError
        from automl_chars.search.warmstart import WarmStart

        if args.warm_method == "pmf" and args.warm_start:
            raise InvalidConfigError(
                "--warm-method pmf picks seed trials from the results store (--store), not from "
                "a portfolio: leave out --warm-start PORTFOLIO_DIR, or use --warm-method knn.")
        if args.warm_method == "pmf" and args.seed_choice:
            raise InvalidConfigError(
                "--seed-choice chooses the knn warm start's store seeds; --warm-method pmf picks "
                "them by expected improvement: leave out one of the two.")
        measure = {"measure": args.measure} if args.measure else {}  # else WarmStart's default
        warm = WarmStart(portfolio=location(args.warm_start, "--warm-start"),
                         store=location(args.store, "--store"), **measure, k=args.k,
                         num_seeds=args.num_seeds, method=args.warm_method,
                         **choice)  # bad values fail before the data loads
    elif args.seed_choice:  # the default sweep's warm start, its seeds chosen so
        from dataclasses import replace

        from automl_chars.errors import InvalidConfigError
        from automl_chars.search.warmstart import DEFAULT_PRIORS

        if args.no_priors:
            raise InvalidConfigError(
                "--seed-choice chooses the warm start's seed trials, and --no-priors starts the "
                "sweep cold, without any: leave out one of the two.")
        warm = replace(DEFAULT_PRIORS, **choice)
    ds = load_dataset(dataset_name, args)
    result = sweep(ds, args, args.preset, warm_start=warm, spec=spec,
                   name=args.name or _experiment_sweep_name(args, ds.name))
    print_result(result)
    if args.plot:
        from automl_chars.reporting import plot_learning_curves

        print(f"\nLearning curves: {shown(plot_learning_curves(result.path))}")
    return 0


def _bohb_target(args: argparse.Namespace):
    """What ``bohb`` sweeps and on which dataset: ``--model``'s spec on ``--dataset``, or a
    named experiment's free hyperparameters (``--experiment``, ``--set``) on its dataset."""
    from automl_chars.errors import InvalidConfigError
    from automl_chars.search.named import experiment_spec, parse_sets
    from automl_chars.search.spec import SPECS

    if args.experiment is None:
        if args.sets:
            raise InvalidConfigError("--set fixes a named experiment's hyperparameters: use it "
                                     "with --experiment NAME.")
        if args.dataset is None:
            raise InvalidConfigError("bohb needs --dataset (a name from `automl-chars datasets`) "
                                     "or --experiment NAME.")
        SPECS.get(args.model or "cnn")
        return args.model or "cnn", args.dataset
    from automl_chars.workflows.named import resolve_experiment

    exp = resolve_experiment(args.experiment, parse_sets(args.sets))
    if args.model is not None and args.model != exp.model:
        raise InvalidConfigError(f"--experiment {exp.name} sweeps the {exp.model} family; leave "
                                 f"out --model {args.model}.")
    return experiment_spec(exp, args.seed), args.dataset or exp.dataset


def _experiment_sweep_name(args: argparse.Namespace, dataset: str) -> str | None:
    """A named experiment's sweep folder, ``<experiment>-bohb-<dataset>-<preset>`` (None:
    run_bohb's default)."""
    return f"{args.experiment}-bohb-{dataset}-{args.preset}" if args.experiment else None


def cmd_show(args: argparse.Namespace) -> int:
    from automl_chars.runner.result import SweepResult

    print_result(SweepResult.load(location(args.path, "path")))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl-chars", description=summary_of(__doc__))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list every dataset and whether it is available locally")
    p.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("bohb", help="run a BOHB sweep of a model family's space (the CNN's by "
                                    "default) and print its table")
    p.add_argument("--dataset", default=None,
                   help="a name from `automl-chars datasets` (required without --experiment)")
    p.add_argument("--model", default=None,
                   help="model family whose space is swept: cnn (seed 001's, default), mlp, "
                        "resnet18, resnet34, mobilenetv2 (docs/models.md), or another sweep "
                        "spec's name")
    p.add_argument("--experiment", default=None, metavar="NAME",
                   help="sweep a named experiment's free hyperparameters, its fixed ones in "
                        "every trial, on its dataset unless --dataset is given "
                        "(docs/named-experiments.md; `automl-chars train --list`)")
    train.add_set_argument(p)
    add_sweep_arguments(p, preset_default="3_1_9_20")
    p.add_argument("--plot", action="store_true", help="also save learning curves as PNG")
    p.add_argument("--warm-start", default=None, metavar="PORTFOLIO_DIR",
                   help="seed the sweep from this portfolio's most similar entries and the "
                        "results store (docs/warm-start.md)")
    p.add_argument("--store", default=None,
                   help="results store for the warm start (default: beside the sweep)")
    p.add_argument("--measure", default=None,
                   help="similarity measure ranking the sources (default: the best measured, "
                        "automl_chars.similarity.DEFAULT_MEASURE)")
    p.add_argument("--k", type=int, default=3, help="sources and nearest datasets to seed from")
    p.add_argument("--num-seeds", type=int, default=4,
                   help="seed trials from the store's nearest datasets (a portfolio of them), or "
                        "PMF trials with --warm-method pmf")
    p.add_argument("--warm-method", choices=("knn", "pmf"), default="knn",
                   help="how the store seeds the sweep: knn, a portfolio of the nearest "
                        "datasets' best configurations (default); pmf, trials picked one at a "
                        "time by expected improvement over a factorised configurations x "
                        "datasets matrix (turns the warm start on; docs/warm-start.md)")
    p.add_argument("--seed-choice", choices=("anytime", "rank"), default=None,
                   help="how the warm start's store seeds are chosen, the default sweep's or "
                        "--warm-start's: anytime, the ones that keep the nearest datasets' "
                        "regret lowest from the start, by their learning curves and times "
                        "(default); rank, the best mean rank at the top budget "
                        "(docs/warm-start.md)")
    p.set_defaults(func=cmd_bohb)

    p = sub.add_parser("show", help="print the table of a finished sweep")
    p.add_argument("path", help="experiment folder or storage URI (s3://bucket/sweeps/NAME)")
    p.set_defaults(func=cmd_show)

    train.add_parser(sub)
    pareto.add_parser(sub)
    portfolio.add_parser(sub)
    store.add_parser(sub)
    similarity.add_parser(sub)
    supernet.add_parser(sub)
    table.add_parser(sub)
    report.add_parser(sub)
    return parser


def run_command(func, args: argparse.Namespace) -> int:
    """``func(args)`` with the platform's errors and interrupts turned into one line and an exit
    status (shared by ``automl-chars`` and the experiment scripts)."""
    try:
        check_resume_arguments(args)
        code = func(args)
        sys.stdout.flush()  # inside the try: a reader that left (`| head`) is a BrokenPipeError
        return code
    except SweepInterrupted as err:
        print(f"interrupted: {cli_wording(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:  # outside a sweep's fit(): before it started, or while writing up
        print("interrupted (SIGINT). A sweep that had started is resumable: run the same command "
              "with --resume.", file=sys.stderr)
        return 130
    except AutomlCharsError as err:
        print(f"error: {cli_wording(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `automl-chars show DIR | head`: the reader left; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it


#: The Python API's argument names in the platform's messages, and the CLI flags that set them.
CLI_FLAGS = {"gpus_per_trial": "--gpus-per-trial", "cpus_per_trial": "--cpus-per-trial",
             "workers_per_trial": "--workers-per-trial",
             "num_samples": "--num-samples", "max_failures": "--max-failures",
             "storage_path": "--storage", "data_root": "--root", "samples_per_class":
             "--samples-per-class", "seed": "--seed", "priors": "--no-priors",
             "num_seeds": "--num-seeds", "max_params": "--max-params", "max_flops":
             "--max-flops", "max_latency_ms": "--max-latency-ms", "reward_targets":
             "--reward-target", "reward_weight": "--reward-weight", "reward_weight_over":
             "--reward-weight-over"}


def cli_wording(message: str) -> str:
    """``message`` in the command line's words: ``gpus_per_trial=2`` -> ``--gpus-per-trial 2``,
    ``resume=True`` -> ``--resume`` (errors are raised by the Python API, shared by both)."""
    message = message.replace("resume=True (command line: the same command with --resume)",
                              "the same command and --resume")
    message = re.sub(r"restart_errored=True(?: \((?:CLI|command line)[^)]*\))?",
                     "--resume --restart-errored", message)
    message = re.sub(r"resume=True(?: \((?:CLI|command line)[^)]*\))?", "--resume", message)
    message = re.sub(r"priors=False", "--no-priors", message)
    names = "|".join(k for k in CLI_FLAGS if k != "priors")
    return re.sub(rf"\b({names})\b(=|\s*(?=[<>]=?))?",
                  lambda m: CLI_FLAGS[m.group(1)] + (" " if m.group(2) else ""), message)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)


def entry_point() -> int:
    """The ``automl-chars`` script: :func:`main`, then Ray shut down in order while the
    interpreter is still whole (left to interpreter exit, Ray's threads and gRPC may print
    teardown noise, e.g. after Ctrl-C)."""
    try:
        return main()
    finally:
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry_point())
