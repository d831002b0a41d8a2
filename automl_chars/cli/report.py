"""``automl-chars report DIR... [--out FILE.html]``: one self-contained HTML page (images
embedded, works offline) about result folders of any kind: sweeps (several overlaid, e.g. warm
against cold), portfolios, supernet runs, similarity tables, a benchmark's figures."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``report`` command to ``subparsers`` (of ``automl-chars``)."""
    p = subparsers.add_parser(
        "report", help="write one HTML page about result folders (docs/report.md)",
        description="Writes one self-contained HTML page (images embedded, works offline) about "
                    "result folders of any kind: sweeps (several overlaid, e.g. warm against "
                    "cold), portfolios, supernet runs, similarity tables, a benchmark's figures. "
                    "What the page shows: docs/report.md.")
    p.add_argument("folders", nargs="+", metavar="DIR",
                   help="result folders (paths or storage URIs: s3://, gs://): a sweep, a "
                        "portfolio, a supernet run, a folder of similarity-*.csv tables or of "
                        "PNG figures")
    p.add_argument("--out", default=None, metavar="FILE.html",
                   help="the page to write, a path or a storage URI (default report.html in "
                        "the first folder)")
    p.add_argument("--title", default=None, help="the page's title (default: the folders' names)")
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from automl_chars.cli.options import location
    from automl_chars.reporting.page import report

    location(args.out, "--out")
    for folder in args.folders:
        location(folder, "DIR")
    page = report(args.folders, out=args.out, title=args.title)
    print(f"Report: {page}{_uploaded(page)}")
    return 0


def _uploaded(page) -> str:
    """Where a page written into the mirror of a storage URI was uploaded, if it was."""
    from automl_chars import uris

    remote = uris.shown(page)
    return f" (uploaded to {remote})" if remote != str(page) else ""
