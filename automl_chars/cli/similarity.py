"""``automl-chars similarity``: compare a target dataset with every entry of a portfolio.

Prints one block per measure (the entries most similar first, each with its score, interval and
seconds), narrow enough for a terminal, and writes the whole table (CSV) and a heatmap (PNG).
Wire it into the main command with :func:`add_parser`.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from automl_chars.cli.options import add_data_arguments, load_dataset, location

#: What ``--measure`` says of each measure set. The costs are per portfolio entry with 300 target
#: images and 20 bootstrap rounds on a shared 2-core CPU (docs/similarity.md, "The measures").
MEASURE_HELP = (
    "'fast' (default): frechet, hscore, knn, learned, leep, logme, meta_features, nce, nleep, "
    "otdd, parc, sen, sfda, about 4 s per portfolio entry on a CPU; 'all': those and task2vec, which adds "
    "~11 s per entry with a ResNet-18 portfolio (~2 s with a small CNN; far more when other "
    "jobs share the CPU); or comma-separated names")

#: Widest line the command prints, but for long source names (a terminal's width).
MAX_WIDTH = 100


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``similarity`` command to ``subparsers`` (of ``automl-chars``)."""
    p = subparsers.add_parser(
        "similarity", help="compare a target dataset with every portfolio entry",
        description="Scores every portfolio entry's similarity to a target dataset by each "
                    "measure, on a stratified sample of the target (docs/similarity.md). By "
                    "default the fast measures run (every one but task2vec); --measure all "
                    "adds task2vec, which takes many seconds per entry on a CPU.")
    p.add_argument("--target", required=True, help="target dataset (a name from `automl-chars datasets`)")
    p.add_argument("--portfolio", required=True, help="portfolio folder or storage URI (from `automl-chars portfolio build`)")
    p.add_argument("--measure", "--measures", dest="measure", default="fast", help=MEASURE_HELP)
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
    p.add_argument("--csv", default=None,
                   help="CSV of the whole table: every score, interval bound and timing "
                        "(default similarity-<target>.csv in the current folder)")
    add_data_arguments(p)
    p.set_defaults(func=cmd_similarity)
    return p


def cmd_similarity(args: argparse.Namespace) -> int:
    from automl_chars.portfolio import Portfolio
    from automl_chars.similarity import plot_heatmap, resolve_measures, similarity

    measures = resolve_measures(args.measure)  # a bad name fails before anything loads
    location(args.portfolio, "--portfolio")  # a bad URI too
    target = load_dataset(args.target, args)
    portfolio = Portfolio.load(args.portfolio)
    sources = portfolio.sources(sample_size=args.source_sample_size, seed=args.seed)
    frame = similarity(target, sources, measures, sample_size=args.sample_size, seed=args.seed,
                       bootstrap=args.bootstrap, reference=args.reference)
    print(f"Target: {frame.attrs['target']} ({frame.attrs['sample_size']} images); "
          f"reference network: {frame.attrs['reference']}\n"
          f"Bootstrap: {args.bootstrap} rounds, {frame.attrs['level']:.0%} intervals\n")
    print(format_blocks(frame, measures))
    for where, message in frame.attrs["errors"].items():
        print(textwrap.fill(f"failed: {where}: {message}", MAX_WIDTH, subsequent_indent="  "))
    name = frame.attrs["target"]
    csv = Path(args.csv or f"similarity-{name}.csv")
    frame.to_csv(csv)
    print(f"\nTable (every column): {csv}")
    print(f"Heatmap: {plot_heatmap(frame, Path(args.heatmap or f'similarity-{name}.png'))}")
    return 0


def format_blocks(frame, measures: list[str]) -> str:
    """One block per measure, its sources most similar first: rank, source, score, interval and
    seconds (and ``sen``'s ``label_l1`` and ``labels_only``), four significant digits. Blocks keep a line as
    narrow as the longest source name allows, however many measures there are; the full
    precision stays in the frame (the command's CSV)."""
    return "\n\n".join(format_block(frame, m) for m in measures)


def format_block(frame, measure: str) -> str:
    """A heading ``<measure> (<lower|higher> = more similar)`` and the ranked rows of one measure."""
    import numpy as np

    from automl_chars.similarity import MEASURES, rank_sources

    def num(v) -> str:
        return f"{v:.4g}" if np.isfinite(v) else "nan"

    order = rank_sources(frame, measure)
    rows = frame.loc[order]
    level = frame.attrs.get("level", 0.95)
    columns = {
        "#": [str(i) for i in range(1, len(order) + 1)],
        "source": [str(s) for s in order],
        "score": [num(v) for v in rows[measure]],
        f"{level:.0%} interval": [f"[{num(lo)}, {num(hi)}]" if np.isfinite(lo) else "-" for lo, hi
                                  in zip(rows[f"{measure}_low"], rows[f"{measure}_high"])],
        "seconds": [f"{s:.2f}" for s in rows[f"{measure}_seconds"]],
    }
    if measure == "sen" and "sen_label_l1" in frame:
        # the CSV's sen_label_l1 and sen_labels_only (docs/similarity.md, "sen")
        columns["label_l1"] = [f"{v:.3f}" for v in rows["sen_label_l1"]]
        columns["labels_only"] = [f"{v:.3f}" for v in rows["sen_labels_only"]]
    arrow = "higher" if MEASURES.get(measure).higher_is_more_similar else "lower"
    return f"{measure} ({arrow} = more similar)\n" + text_columns(columns, left=("source",))


def text_columns(columns: dict[str, list[str]], left: tuple[str, ...] = ()) -> str:
    """Columns of strings under their headers, two spaces apart, right-aligned (those named in
    ``left`` left-aligned), with no trailing spaces."""
    widths = {h: max([len(h), *map(len, v)]) for h, v in columns.items()}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(c.ljust(widths[h]) if h in left else c.rjust(widths[h])
                         for h, c in cells.items()).rstrip()

    n = len(next(iter(columns.values()), []))
    return "\n".join([line({h: h for h in columns}),
                      *(line({h: v[i] for h, v in columns.items()}) for i in range(n))])
