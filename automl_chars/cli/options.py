"""Command-line options shared by several commands, and what they load."""

from __future__ import annotations

import argparse


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The dataset options every command that loads data by name takes."""
    p.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    p.add_argument("--download", action="store_true", help="download missing public data")
    p.add_argument("--samples-per-class", type=int, default=None,
                   help="glyphs-* only: training images per class")


def load_dataset(name: str, args: argparse.Namespace):
    """The dataset named on the command line, with ``--root``/``--download``/``--samples-per-class``."""
    from automl_chars import data

    options = {} if args.samples_per_class is None else {"samples_per_class": args.samples_per_class}
    return data.load(name, root=args.root, download=args.download, **options)
