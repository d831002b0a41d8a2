"""``automl-chars store show|check|import``: the results store of configuration x dataset
results."""

from __future__ import annotations

import argparse

#: Exit status of ``store check`` when it found damaged files and was not asked to repair them.
DAMAGE_FOUND = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``store show``, ``store check`` and ``store import``."""
    p = sub.add_parser("store", help="show or check the results store, or import older result "
                                     "folders")
    cmds = p.add_subparsers(dest="store_command", required=True)
    s = cmds.add_parser("show", help="rows per dataset and trainable, best accuracies, damaged "
                                     "files")
    s.add_argument("--store", default=None,
                   help="store folder (default $AUTOML_CHARS_STORE or <results>/store)")
    s.set_defaults(func=cmd_show)
    c = cmds.add_parser("check", help="read every file in full; list the damaged ones (exit "
                                      f"status {DAMAGE_FOUND} if any)")
    c.add_argument("--store", default=None, help="store folder (default as for show)")
    c.add_argument("--repair", action="store_true",
                   help="move damaged files into the store's damaged/ folder (nothing is deleted)")
    c.set_defaults(func=cmd_check)
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
    frame, damaged = store.read()
    print(f"Store: {store.path} ({len(frame)} rows)")
    if not frame.empty:
        print(summary(frame).to_string(index=False))
    elif args.store is None and not damaged:
        print("Nothing recorded here. Sweeps and portfolios record into store/ beside their "
              "folder (--storage DIR: DIR/store; portfolio build --out DIR: store/ beside DIR), "
              "or into $AUTOML_CHARS_STORE when it is set; each prints its store's path. Pass "
              "that path with --store.")
    if damaged:
        print(f"\n{len(damaged)} damaged file(s), skipped (their rows are not counted above):")
        _print_damaged(damaged)
        print(f"Move them aside: automl-chars store check --repair --store {store.path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from automl_chars.store import ResultsStore
    from automl_chars.store.store import DAMAGED_DIR

    store = ResultsStore(args.store)
    files = store.files()
    if not args.repair:
        damaged = store.check()
        print(f"Store: {store.path}: {len(files)} file(s) checked, {len(damaged)} damaged")
        if damaged:
            _print_damaged(damaged)
            print(f"Move them into {store.path / DAMAGED_DIR} (nothing is deleted): "
                  f"automl-chars store check --repair --store {store.path}")
            return DAMAGE_FOUND
        return 0
    moved = store.repair()
    print(f"Store: {store.path}: {len(files)} file(s) checked, {len(moved)} damaged")
    if moved:
        _print_damaged([d for d, _ in moved])
        print(f"Moved them into {store.path / DAMAGED_DIR} (nothing deleted). A sweep's rows "
              f"come back when it is added again: automl-chars store import DIR --store "
              f"{store.path}")
    return 0


def _print_damaged(damaged) -> None:
    for d in damaged:
        print(f"  {d.path}: {d.reason}")


def cmd_import(args: argparse.Namespace) -> int:
    from automl_chars.store import ResultsStore, import_folder

    store = ResultsStore(args.store)
    added = import_folder(args.path, store)
    for folder, n in added.items():
        print(f"{n:>6} rows  {folder}")
    print(f"Imported {len(added)} folders into {store.path}")
    return 0
