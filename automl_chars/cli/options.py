"""Command-line options shared by several commands, and what they load."""

from __future__ import annotations

import argparse
import tempfile


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
                   help="glyphs-* and rgb-glyphs-* only: training images per class")


def add_limit_arguments(p, what: str) -> None:
    """``--max-params``, ``--max-flops`` and ``--max-latency-ms`` (the limits of an
    :class:`~automl_chars.training.objective.Objective`); ``what`` a limit does, for the help."""
    p.add_argument("--max-params", type=float, default=None, help=f"most parameters ({what})")
    p.add_argument("--max-flops", type=float, default=None,
                   help="most FLOPs of one image's forward pass")
    p.add_argument("--max-latency-ms", type=float, default=None,
                   help="most milliseconds of a batch-1 forward pass on the trial's device")


def add_workers_argument(p: argparse.ArgumentParser) -> None:
    """``--workers-per-trial``: data-parallel trials (Ray Train workers, DDP)."""
    p.add_argument("--workers-per-trial", type=int, default=1,
                   help="train each trial data-parallel (DDP) on N Ray Train workers; "
                        "--cpus-per-trial and --gpus-per-trial (0 or 1) are then each "
                        "worker's (docs/cluster.md)")


def add_resume_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--resume`` (``what`` it does) and ``--restart-errored``, which a resume needs to train
    a trial again whose checkpoint cannot be restored (``checkpoints.damaged_checkpoint_remedy``)."""
    p.add_argument("--resume", action="store_true", help=what)
    p.add_argument("--restart-errored", action="store_true",
                   help="with --resume: train errored trials again from scratch, not from their "
                        "last checkpoint (for a trial whose checkpoint is damaged)")


def check_resume_arguments(args: argparse.Namespace) -> None:
    """``--restart-errored`` only with ``--resume``: it acts on a resume."""
    from automl_chars.errors import InvalidConfigError

    if getattr(args, "restart_errored", False) and not getattr(args, "resume", False):
        raise InvalidConfigError("--restart-errored acts on a resume: add --resume (it trains "
                                 "the errored trials of the earlier run again).")


def load_dataset(name: str, args: argparse.Namespace):
    """The dataset named on the command line, with ``--root``/``--download``/``--samples-per-class``.

    A command that runs trials (``--gpus-per-trial``) has its resources checked first against the
    local Ray instance it would start, so that a GPU this machine lacks is refused at once, not
    after the data loads and Ray starts.
    """
    from automl_chars import data

    if hasattr(args, "gpus_per_trial"):
        from automl_chars.runner import cluster

        cluster.precheck(getattr(args, "address", None), float(getattr(args, "cpus_per_trial", 1)),
                         float(args.gpus_per_trial), getattr(args, "workers_per_trial", 1))

    options = {} if args.samples_per_class is None else {"samples_per_class": args.samples_per_class}
    return data.load(name, root=args.root, download=args.download, **options)


def store_line(folder) -> str:
    """Where the results of a run in ``folder`` were recorded, and how to look at them."""
    from automl_chars.store import store_beside

    where = store_beside(folder).location
    return f"Results store: {where} (automl-chars store show --store {where})"


def location(value, flag: str):
    """``value``, a folder or file given as ``flag`` (a path or a storage URI), with a URI
    checked usable first: one pyarrow cannot open, or whose store or bucket cannot be reached,
    raises :class:`~automl_chars.errors.InvalidConfigError` naming ``flag``, before any work."""
    from automl_chars import uris

    if value is not None and uris.is_uri(value):
        uris.check(value, flag)
    return value


def shown(path) -> str:
    """A local path as the user should read it: the URI (no credentials) it mirrors, if any."""
    from automl_chars import uris

    return uris.shown(path)


#: ``--smoke``'s help in every experiment script.
SMOKE_HELP = ("tiny, offline run on built-in glyph data (what the tests run); its results go to a "
              "fresh temporary folder unless --storage is given")


def smoke_storage(args: argparse.Namespace, prog: str) -> str:
    """The results root of an experiment's ``--smoke`` run: ``--storage`` where given, else a
    fresh temporary folder (set as ``args.storage``). A smoke run uses the default experiment
    names; under the user's results root it would meet their runs of those names ("An
    experiment already exists", or a finished smoke portfolio read back by a real run) and its
    own earlier smoke runs."""
    from automl_chars.errors import InvalidConfigError

    if args.storage is None:
        if getattr(args, "resume", False):
            raise InvalidConfigError(f"{prog}: --smoke --resume needs --storage DIR: without "
                                     f"--storage each smoke run writes to a fresh temporary "
                                     f"folder, so there is nothing to resume.")
        args.storage = tempfile.mkdtemp(prefix=f"{prog}-smoke-")
        print(f"Smoke run: results in {args.storage}", flush=True)
    return args.storage
