"""Command-line options shared by several commands, and what they load."""

from __future__ import annotations

import argparse


def summary_of(doc: str | None) -> str:
    """A module docstring's first paragraph as one line: the ``--help`` description of a command
    or script (its first line alone may stop mid-sentence)."""
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The dataset options every command that loads data by name takes."""
    p.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    p.add_argument("--download", action="store_true", help="download missing public data")
    p.add_argument("--samples-per-class", type=int, default=None,
                   help="glyphs-* only: training images per class")


def load_dataset(name: str, args: argparse.Namespace):
    """The dataset named on the command line, with ``--root``/``--download``/``--samples-per-class``.

    A command that runs trials (``--gpus-per-trial``) has its resources checked first against the
    local Ray instance it would start, so that a GPU this machine lacks is refused at once, not
    after the data loads and Ray starts.
    """
    from automl_chars import data

    if hasattr(args, "gpus_per_trial"):
        from automl_chars.search import cluster

        cluster.precheck(getattr(args, "address", None), float(getattr(args, "cpus_per_trial", 1)),
                         float(args.gpus_per_trial))

    options = {} if args.samples_per_class is None else {"samples_per_class": args.samples_per_class}
    return data.load(name, root=args.root, download=args.download, **options)


def store_line(folder) -> str:
    """Where the results of a run in ``folder`` were recorded, and how to look at them."""
    from automl_chars.store import store_beside

    path = store_beside(folder).path
    return f"Results store: {path} (automl-chars store show --store {path})"
