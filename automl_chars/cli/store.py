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
                   help="store folder or storage URI (default $AUTOML_CHARS_STORE or "
                        "<results>/store)")
    s.set_defaults(func=cmd_show)
    c = cmds.add_parser("check", help="read every file in full; list the damaged ones (exit "
                                      f"status {DAMAGE_FOUND} if any)")
    c.add_argument("--store", default=None, help="store folder (default as for show)")
    c.add_argument("--repair", action="store_true",
                   help="move damaged files into the store's damaged/ folder (nothing is deleted)")
    c.set_defaults(func=cmd_check)
    i = cmds.add_parser("import", help="add every sweep and portfolio found under DIR")
    i.add_argument("path", help="folder or storage URI to search (e.g. ~/automl_chars_results, "
                                "s3://bucket/sweeps)")
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


def _store(args: argparse.Namespace):
    """The store ``--store`` names (a URI checked first, its errors naming ``--store``)."""
    from automl_chars.cli.options import location
    from automl_chars.store import ResultsStore

    return ResultsStore(location(args.store, "--store"))


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    frame, damaged = store.read()
    print(f"Store: {store.location} ({len(frame)} rows)")
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
        print(f"Move them aside: automl-chars store check --repair --store {store.location}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from automl_chars import uris
    from automl_chars.store.store import DAMAGED_DIR

    store = _store(args)
    files = store.files()
    aside = uris.shown(store.path / DAMAGED_DIR, query=False)
    if not args.repair:
        damaged = store.check()
        print(f"Store: {store.location}: {len(files)} file(s) checked, {len(damaged)} damaged")
        if damaged:
            _print_damaged(damaged)
            print(f"Move them into {aside} (nothing is deleted): "
                  f"automl-chars store check --repair --store {store.location}")
            return DAMAGE_FOUND
        return 0
    moved = store.repair()
    print(f"Store: {store.location}: {len(files)} file(s) checked, {len(moved)} damaged")
    if moved:
        _print_damaged([d for d, _ in moved])
        print(f"Moved them into {aside} (nothing deleted). A sweep's rows "
              f"come back when it is added again: automl-chars store import DIR --store "
              f"{store.location}")
    return 0


def _print_damaged(damaged) -> None:
    from automl_chars import uris

    for d in damaged:
        print(f"  {uris.shown(d.path, query=False)}: {d.reason}")


def cmd_import(args: argparse.Namespace) -> int:
    from automl_chars.cli.options import location
    from automl_chars.store import import_folder

    store = _store(args)
    added = import_folder(location(args.path, "path"), store)
    for folder, n in added.items():
        print(f"{n:>6} rows  {folder}")
    print(f"Imported {len(added)} folders into {store.location}")
    return 0
