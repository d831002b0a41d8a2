"""Seed 003's valley study: restarts pushed away from earlier minima by the distance regularizer,
against plain warm restarts and independent runs (distances, loss barriers, ensembles).

    python experiments/valleys.py --out results/valleys --plot docs/valleys.png   # ~20 CPU min
    python experiments/valleys.py --out results/valleys --seeds 3 4               # more seeds
    python experiments/valleys.py --smoke                                         # tiny, offline

For each seed: ``--minima`` networks per arm, each trained ``--epochs`` epochs (SGD, cosine
schedule): independent runs, and three chains from the first independent minimum that restart
from the minimum before: plain (warm restarts), with the distance regularizer over every minimum
so far (``--strength``, ``--width``), and over their mean. Printed and written to ``--out``:
each minimum's accuracy, the distances and loss barriers between minima, the ensembles of the
first j minima at equal epochs, a summary per seed and its mean, and a plot. A rerun with the
same ``--out`` and settings trains only what is missing (seeds can be added).
"""

import argparse
import sys

from automl_chars.cli.main import run_command
from automl_chars.cli.options import SMOKE_HELP, smoke_storage

#: --smoke: one seed, 2 minima of one epoch on 10 digits per class, 3 points per path.
SMOKE = {"dataset": "glyphs-digits", "seeds": [0], "minima": 2, "epochs": 1,
         "samples_per_class": 10, "points": 3, "path_samples": 0}
PLOT_FILE = "valleys.png"


def main(argv=None) -> int:
    from automl_chars.workflows.valleys import ValleySettings

    d = ValleySettings()
    parser = argparse.ArgumentParser(prog="valleys", description=__doc__.splitlines()[0])
    parser.add_argument("--out", "--storage", dest="storage", default=None,
                        help="the study's folder (resumable; default: a fresh temporary folder "
                             "with --smoke, else results/valleys)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="one study per seed (default 0 1 2)")
    parser.add_argument("--dataset", default=d.dataset, help=f"default {d.dataset}")
    parser.add_argument("--samples-per-class", type=int, default=d.samples_per_class,
                        help=f"training images per class (default {d.samples_per_class})")
    parser.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    parser.add_argument("--minima", type=int, default=d.minima,
                        help=f"minima per arm (default {d.minima})")
    parser.add_argument("--epochs", type=int, default=d.epochs,
                        help=f"epochs of each minimum (default {d.epochs})")
    parser.add_argument("--lr", type=float, default=d.learning_rate,
                        help=f"SGD's initial learning rate (default {d.learning_rate})")
    parser.add_argument("--strength", type=float, default=d.strength,
                        help=f"the distance regularizer's strength (default {d.strength})")
    parser.add_argument("--width", type=float, default=d.width,
                        help=f"its width (default {d.width})")
    parser.add_argument("--points", type=int, default=d.points,
                        help=f"points on each path between two minima (default {d.points})")
    parser.add_argument("--path-samples", type=int, default=d.path_samples,
                        help=f"training images each path is evaluated on (0: all; default "
                             f"{d.path_samples})")
    parser.add_argument("--plot", default=None,
                        help=f"where the plot goes (default <out>/{PLOT_FILE})")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: small models are fastest so on a "
                             "busy machine)")
    parser.add_argument("--verbose", type=int, default=1, help="0: tables only")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return run_command(_run, args)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from automl_chars.reporting.valleys import plot_valleys
    from automl_chars.workflows.valleys import ValleySettings, run_valley_study

    settings = ValleySettings(
        dataset=args.dataset, samples_per_class=args.samples_per_class, minima=args.minima,
        epochs=args.epochs, learning_rate=args.lr, strength=args.strength, width=args.width,
        points=args.points, path_samples=args.path_samples)
    if args.smoke:
        smoke_storage(args, "valleys")
    out = Path(args.storage or "results/valleys")
    result = run_valley_study(settings, args.seeds, out, data_root=args.root,
                              log=print if args.verbose else (lambda _: None),
                              threads=args.threads)

    pd.set_option("display.width", 160)
    fmt = {"float_format": lambda v: f"{v:.4f}"}
    print("\nEach minimum (test accuracy; distance to the minimum before):")
    print(result.minima.pivot_table(index=["arm", "index"], columns="seed",
                                    values=["test_acc", "dist_prev"], sort=False).to_string(**fmt))
    print("\nEnsemble of the first minima (test accuracy; equal epochs across arms):")
    ens = result.ensembles.pivot_table(index="epochs", columns="arm", values="test_acc",
                                       sort=False)
    print(ens.to_string(**fmt))
    print("\nSummary (each seed, then the mean over seeds):")
    print(result.summary.to_string(index=False, **fmt))
    plot = plot_valleys(result.minima, result.pairs, result.path_losses, result.ensembles,
                        args.plot or out / PLOT_FILE,
                        title=f"{settings.dataset}: {settings.minima} minima x "
                              f"{settings.epochs} epochs, strength {settings.strength}, "
                              f"width {settings.width}, seeds {result.seeds}")
    print(f"\nTables: {out}/{{minima,pairs,path,ensembles,summary}}.csv\nPlot: {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
