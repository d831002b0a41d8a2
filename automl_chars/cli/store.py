"""``automl-chars store show|import``: the results store of configuration x dataset results."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``store show`` and ``store import``."""
    p = sub.add_parser("store", help="show the results store, or import older result folders")
    cmds = p.add_subparsers(dest="store_command", required=True)
    s = cmds.add_parser("show", help="rows per dataset and trainable, best accuracies")
    s.add_argument("--store", default=None,
                   help="store folder (default $AUTOML_CHARS_STORE or <results>/store)")
    s.set_defaults(func=cmd_show)
    i = cmds.add_parser("import", help="add every sweep and portfolio found under DIR")
    i.add_argument("path", help="folder to search (e.g. ~/automl_chars_results)")
    i.add_argument("--store", default=None, help="store folder (default as for show)")
    i.set_defaults(func=cmd_import)


def summary(frame):
    """Rows, trials, best validation and incumbent test accuracy per kind, dataset, trainable."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame(columns=["kind", "dataset", "trainable", "rows", "trials",
                                     "best_val_acc", "test_acc"])
    grouped = frame.groupby(["kind", "dataset", "trainable"], as_index=False)
    return grouped.agg(rows=("val_acc", "size"), trials=("trial_id", "nunique"),
                       best_val_acc=("val_acc", "max"), test_acc=("test_acc", "max"))


def cmd_show(args: argparse.Namespace) -> int:
    from automl_chars.store import ResultsStore

    store = ResultsStore(args.store)
    frame = store.frame()
    print(f"Store: {store.path} ({len(frame)} rows)")
    if not frame.empty:
        print(summary(frame).to_string(index=False))
    elif args.store is None:
        print("Nothing recorded here. Sweeps and portfolios record into store/ beside their "
              "folder (--storage DIR: DIR/store; portfolio build --out DIR: store/ beside DIR), "
              "or into $AUTOML_CHARS_STORE when it is set; each prints its store's path. Pass "
              "that path with --store.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from automl_chars.store import ResultsStore, import_folder

    store = ResultsStore(args.store)
    added = import_folder(args.path, store)
    for folder, n in added.items():
        print(f"{n:>6} rows  {folder}")
    print(f"Imported {len(added)} folders into {store.path}")
    return 0
