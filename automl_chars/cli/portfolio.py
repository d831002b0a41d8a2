"""``automl-chars portfolio build|show``: train one model per source dataset; list a portfolio."""

from __future__ import annotations

import argparse
import json

from automl_chars.cli.options import (
    add_data_arguments,
    add_resume_arguments,
    load_dataset,
    location,
    shown,
    store_line,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``portfolio build`` and ``portfolio show``."""
    p = sub.add_parser("portfolio", help="build or show a portfolio of pretrained models")
    cmds = p.add_subparsers(dest="portfolio_command", required=True)

    b = cmds.add_parser("build", help="train one model per source dataset as parallel Ray trials")
    b.add_argument("--sources", required=True,
                   help="comma-separated dataset names, e.g. glyphs-latin-upper,glyphs-greek")
    b.add_argument("--model", default="resnet18", help="sweep spec to train (resnet18, cnn, ...)")
    b.add_argument("--config", default=None,
                   help="hyperparameters as JSON (others take the space's defaults)")
    b.add_argument("--from-sweep", default=None,
                   help="a finished sweep's folder (or storage URI): train its incumbent on "
                        "every source")
    b.add_argument("--epochs", type=int, default=5)
    b.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPU share per source, e.g. 0.25 trains four sources per GPU")
    b.add_argument("--cpus-per-trial", type=float, default=1.0)
    b.add_argument("--out", required=True, help="portfolio folder, a path or a storage URI "
                                                "(s3://bucket/portfolio)")
    b.add_argument("--seed", type=int, default=0)
    add_resume_arguments(b, "finish an interrupted build")
    b.add_argument("--address", default=None, help="Ray cluster address")
    b.add_argument("--verbose", type=int, default=1)
    add_data_arguments(b)
    b.set_defaults(func=cmd_build)

    s = cmds.add_parser("show", help="list a portfolio's entries")
    s.add_argument("path", help="portfolio folder or storage URI")
    s.set_defaults(func=cmd_show)


def cmd_build(args: argparse.Namespace) -> int:
    from automl_chars import uris
    from automl_chars.errors import InvalidConfigError
    from automl_chars.portfolio import build_portfolio

    # a URI's local mirror stands for it: the build writes there and uploads each file
    out = uris.local_path(location(args.out, "--out"), "--out")
    if args.config and args.from_sweep:
        raise InvalidConfigError("Pass --config or --from-sweep, not both.")
    config = None
    if args.config:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as err:
            raise InvalidConfigError(f"--config is not valid JSON ({err}).") from None
    elif args.from_sweep:
        from automl_chars.runner.result import SweepResult

        config = SweepResult.load(location(args.from_sweep, "--from-sweep"))
    names = [s.strip() for s in args.sources.split(",") if s.strip()]
    datasets = [load_dataset(n, args) for n in names]  # unknown names fail before Ray starts
    portfolio = build_portfolio(
        datasets, model=args.model, config=config, epochs=args.epochs,
        gpus_per_trial=args.gpus_per_trial, storage_path=out.parent, name=out.name,
        seed=args.seed, resume=args.resume, restart_errored=args.restart_errored,
        cpus_per_trial=args.cpus_per_trial,
        address=args.address, verbose=args.verbose,
    )
    print(f"\nPortfolio: {shown(portfolio.path)}")
    print(format_entries(portfolio))
    print(store_line(portfolio.path))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from automl_chars.portfolio import Portfolio

    portfolio = Portfolio.load(location(args.path, "path"))
    print(f"Portfolio: {shown(portfolio.path)}")
    print(format_entries(portfolio))
    return 0


def format_entries(portfolio) -> str:
    """The entries as a text table (accuracies as percentages)."""
    frame = portfolio.entries.drop(columns=["created_at", "fingerprint"])
    if frame.empty:
        return "(no entries)"
    for col in ("val_acc", "test_acc"):
        frame[col] = (100 * frame[col]).map("{:.2f}%".format)
    frame["train_seconds"] = frame["train_seconds"].map("{:.1f}".format)
    return frame.to_string(index=False)
