"""``automl-chars similarity``: compare a target dataset with every entry of a portfolio.

Prints one row per portfolio entry with each measure's score and interval, and writes a heatmap
(PNG). Wire it into the main command with :func:`add_parser`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from automl_chars.cli.options import add_data_arguments, load_dataset


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``similarity`` command to ``subparsers`` (of ``automl-chars``)."""
    p = subparsers.add_parser(
        "similarity", help="compare a target dataset with every portfolio entry",
        description="Scores every portfolio entry's similarity to a target dataset by each "
                    "measure, on a stratified sample of the target (docs/similarity.md).")
    p.add_argument("--target", required=True, help="target dataset (a name from `automl-chars datasets`)")
    p.add_argument("--portfolio", required=True, help="portfolio folder (from `automl-chars portfolio build`)")
    p.add_argument("--measure", default="all",
                   help="'all' or comma-separated names: frechet, leep, logme, meta_features, "
                        "otdd, sen, task2vec")
    p.add_argument("--sample-size", type=int, default=300, help="target images to draw (stratified)")
    p.add_argument("--source-sample-size", type=int, default=300,
                   help="images per portfolio entry (from what the portfolio stores)")
    p.add_argument("--bootstrap", type=int, default=20, help="bootstrap rounds for the intervals (0: none)")
    p.add_argument("--reference", default=None,
                   help="entry whose model is the reference network (sen, frechet, otdd, task2vec); "
                        "default the first entry")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heatmap", default=None,
                   help="PNG to write (default similarity-<target>.png in the current folder)")
    add_data_arguments(p)
    p.set_defaults(func=cmd_similarity)
    return p


def cmd_similarity(args: argparse.Namespace) -> int:
    import pandas as pd

    from automl_chars.portfolio import Portfolio
    from automl_chars.similarity import (
        MEASURES,
        plot_heatmap,
        rank_sources,
        resolve_measures,
        similarity,
    )

    measures = resolve_measures(args.measure)  # a bad name fails before anything loads
    target = load_dataset(args.target, args)
    portfolio = Portfolio.load(args.portfolio)
    sources = portfolio.sources(sample_size=args.source_sample_size, seed=args.seed)
    frame = similarity(target, sources, measures, sample_size=args.sample_size, seed=args.seed,
                       bootstrap=args.bootstrap, reference=args.reference)
    print(f"Target: {frame.attrs['target']} ({frame.attrs['sample_size']} images), "
          f"reference network: {frame.attrs['reference']}, bootstrap: {args.bootstrap}, "
          f"interval: {frame.attrs['level']:.0%}\n")
    with pd.option_context("display.width", 200, "display.max_columns", 100):
        print(format_table(frame, measures).to_string())
    print()
    for m in measures:
        arrow = "higher" if MEASURES.get(m).higher_is_more_similar else "lower"
        print(f"{m:<14} ({arrow} = more similar): {', '.join(rank_sources(frame, m))}")
    for where, message in frame.attrs["errors"].items():
        print(f"failed: {where}: {message}")
    out = Path(args.heatmap or f"similarity-{frame.attrs['target']}.png")
    print(f"\nHeatmap: {plot_heatmap(frame, out)}")
    return 0


def format_table(frame, measures: list[str]):
    """``score [low, high]`` per measure, as strings (what the command prints)."""
    import numpy as np
    import pandas as pd

    cols = {}
    for m in measures:
        cols[m] = [
            "nan" if not np.isfinite(v) else
            f"{v:.4g}" + (f" [{lo:.4g}, {hi:.4g}]" if np.isfinite(lo) else "")
            for v, lo, hi in zip(frame[m], frame[f"{m}_low"], frame[f"{m}_high"])
        ]
        cols[f"{m} s"] = [f"{s:.2f}" for s in frame[f"{m}_seconds"]]
    if "sen_label_l1" in frame:
        cols["sen_label_l1"] = [f"{v:.3f}" for v in frame["sen_label_l1"]]
        cols["sen_labels_only"] = [f"{v:.3f}" for v in frame["sen_labels_only"]]
    return pd.DataFrame(cols, index=frame.index)
