"""``automl-chars table build|show``: build a learning-curve table; summarise one."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``table build`` and ``table show``."""
    p = sub.add_parser("table", help="build or show a learning-curve table (docs/tabular.md)")
    cmds = p.add_subparsers(dest="table_command", required=True)

    b = cmds.add_parser("build", help="train the same CNN configurations on every dataset and "
                                      "keep every epoch's metrics")
    b.add_argument("--datasets", required=True,
                   help="comma-separated dataset names, e.g. glyphs-digits,glyphs-greek")
    b.add_argument("--configs", type=int, required=True,
                   help="configurations drawn from the CNN space besides its default")
    b.add_argument("--epochs", type=int, required=True, help="epochs of every trial")
    b.add_argument("--samples-per-class", type=int, default=None,
                   help="glyphs-* only: training images per class")
    b.add_argument("--out", required=True, help="the table's file (.parquet)")
    b.add_argument("--resume", action="store_true", help="finish an interrupted build")
    b.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPU share per trial, e.g. 0.25 trains four trials per GPU")
    b.add_argument("--cpus-per-trial", type=float, default=1.0)
    b.add_argument("--seed", type=int, default=0, help="draws the configurations, seeds training")
    b.add_argument("--storage", default=None,
                   help="results root of the Ray run (default ~/automl_chars_results)")
    b.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    b.add_argument("--address", default=None, help="Ray cluster address")
    b.add_argument("--verbose", type=int, default=1)
    b.set_defaults(func=cmd_build)

    s = cmds.add_parser("show", help="summarise a learning-curve table per dataset")
    s.add_argument("path", help="the table's file")
    s.set_defaults(func=cmd_show)


def cmd_build(args: argparse.Namespace) -> int:
    from automl_chars.runner import cluster
    from automl_chars.workflows.table import build_table

    cluster.precheck(args.address, float(args.cpus_per_trial), float(args.gpus_per_trial))
    names = [s.strip() for s in args.datasets.split(",") if s.strip()]
    out = Path(args.out).expanduser().resolve()
    table = build_table(names, args.configs, args.epochs, args.samples_per_class, args.seed,
                        args.storage, args.resume, args.gpus_per_trial, out=out,
                        cpus_per_trial=args.cpus_per_trial, data_root=args.root,
                        address=args.address, verbose=args.verbose)
    print(f"\nLearning-curve table: {table.path}")
    print(format_summary(table))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from automl_chars.tabular import LearningCurveTable

    table = LearningCurveTable.load(args.path)
    print(f"Learning-curve table: {table.path}")
    print(format_summary(table))
    return 0


def format_summary(table) -> str:
    """What a table holds, then one line per dataset: configurations, failed ones, the best
    validation accuracy at each epoch budget and the test accuracy of the top budget's best."""
    m = table.manifest
    size = "default" if m.samples_per_class is None else m.samples_per_class
    head = (f"{len(m.configs)} configurations x {len(m.datasets)} datasets x {m.epochs} epochs "
            f"({m.trainable}, samples per class: {size}, seed {m.seed}, space {m.space_fingerprint}, "
            f"devices: {', '.join(m.hardware.get('devices', [])) or 'unknown'})")
    frame = table.summary()
    for col in frame.columns:
        if col.startswith("best@") or col == "test_acc":
            frame[col] = (100 * frame[col]).map("{:.1f}%".format)
    return head + "\n" + frame.to_string(index=False)
