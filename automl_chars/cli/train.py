"""``automl-chars train NAME [--set key=value ...] [--dataset D] [--epochs N] [--smoke]``: one
named experiment (``mnist1``, ``cifar10_1``, ...; ``--list`` shows them) trained as one Ray
trial. Its fixed hyperparameters, with ``--set`` over them, and the family's defaults for the
rest (docs/named-experiments.md)."""

from __future__ import annotations

import argparse

from automl_chars.cli.options import (
    SMOKE_HELP,
    add_data_arguments,
    add_resume_arguments,
    add_workers_argument,
    load_dataset,
    smoke_storage,
)

#: ``--smoke``: training images per class of the built-in dataset, and epochs.
SMOKE_PER_CLASS, SMOKE_EPOCHS = 6, 1


def add_set_argument(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable), shared by ``train`` and ``bohb --experiment``."""
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE", dest="sets",
                   help="fix a hyperparameter of the experiment's model family, e.g. "
                        "learning_rate=0.1 (repeatable; over the experiment's own values)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``train`` command to ``subparsers`` (of ``automl-chars``)."""
    p = subparsers.add_parser(
        "train", help="train a named experiment (mnist1, cifar10_1, ...) as one Ray trial",
        description="Trains a named experiment as one Ray trial: its model family with its fixed "
                    "hyperparameters (--set overrides them), on its dataset for its epochs "
                    "unless --dataset or --epochs say otherwise (docs/named-experiments.md).")
    p.add_argument("experiment", nargs="?", metavar="NAME",
                   help="a named experiment (--list shows them)")
    p.add_argument("--list", action="store_true", help="list the named experiments and exit")
    add_set_argument(p)
    p.add_argument("--dataset", default=None, help="train on this dataset instead of its own")
    p.add_argument("--epochs", type=int, default=None, help="epochs instead of its own")
    p.add_argument("--smoke", action="store_true",
                   help=SMOKE_HELP + f"; {SMOKE_EPOCHS} epoch, {SMOKE_PER_CLASS} images per class")
    p.add_argument("--storage", default=None, help="results root (default ~/automl_chars_results)")
    p.add_argument("--name", default=None, help="run folder name (default train-NAME)")
    p.add_argument("--seed", type=int, default=0)
    add_resume_arguments(p, "continue an interrupted run")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPU share of the trial")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    add_workers_argument(p)
    p.add_argument("--max-failures", type=int, default=2,
                   help="retries of the trial if its process or node died")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (default: local or $RAY_ADDRESS)")
    p.add_argument("--verbose", type=int, default=1)
    add_data_arguments(p)
    p.set_defaults(func=cmd_train)
    return p


def cmd_train(args: argparse.Namespace) -> int:
    from automl_chars.errors import InvalidConfigError
    from automl_chars.search.named import EXPERIMENTS, parse_sets
    from automl_chars.workflows.named import resolve_experiment, train_experiment

    if args.list:
        print_experiments()
        return 0
    if args.experiment is None:
        raise InvalidConfigError(f"train needs a NAME: one of {', '.join(EXPERIMENTS.names())} "
                                 f"(automl-chars train --list).")
    # Unknown names, --set keys and values fail here, before any data loads or Ray starts.
    exp = resolve_experiment(args.experiment, parse_sets(args.sets))
    if args.epochs is not None and args.epochs < 1:
        raise InvalidConfigError(f"--epochs must be >= 1, got {args.epochs}.")
    dataset_name, epochs = args.dataset or exp.dataset, args.epochs or exp.epochs
    if args.smoke:
        smoke_storage(args, f"train-{exp.name}")
        dataset_name = args.dataset or exp.smoke_dataset
        epochs = args.epochs or SMOKE_EPOCHS
        if args.samples_per_class is None:
            args.samples_per_class = SMOKE_PER_CLASS
    ds = load_dataset(dataset_name, args)
    result = train_experiment(
        exp, dataset=ds, epochs=epochs, name=args.name, storage_path=args.storage,
        seed=args.seed, resume=args.resume, restart_errored=args.restart_errored,
        gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial, max_failures=args.max_failures,
        address=args.address, verbose=args.verbose, workers_per_trial=args.workers_per_trial)
    print_trained(result, exp.name)
    return 0


def print_experiments() -> None:
    from automl_chars.search.named import EXPERIMENTS

    for name in EXPERIMENTS.names():
        exp = EXPERIMENTS.get(name)
        fixed = ", ".join(f"{k}={v}" for k, v in exp.fixed.items())
        print(f"{name}: {exp.model} on {exp.dataset}, {exp.epochs} epochs; {fixed}")
        if exp.description:
            print(f"    {exp.description}")


def print_trained(result, label: str) -> None:
    from automl_chars.cli.options import store_line

    row = result.row(label)
    print(f"\nRun: {result.path}")
    print(store_line(result.path))
    print(f"{label}: {row['status']}, {row['epochs']} epochs in {row['seconds']:.1f} s on "
          f"{row['device']}: val_acc {row['val_acc']:.4f}, test_acc {row['test_acc']:.4f}")
    if isinstance(row.get("error"), str) and row["error"]:
        print(f"error: {row['error']}")
    if isinstance(row.get("checkpoint"), str):
        print(f"Checkpoint: {row['checkpoint']}")
