"""Seed 000 end to end: a ResNet-18 portfolio, K49's similarity to it, warm-started vs cold BOHB.

    python experiments/portfolio_k49.py --download --gpus-per-trial 0.25   # five sources -> K49
    python experiments/portfolio_k49.py --smoke                            # glyph domains, offline

1. A portfolio: ResNet-18 trained on EMNIST, KMNIST, MNIST, Omniglot and QMNIST.
2. The similarity of Kuzushiji-49 to each entry by every measure (table and heatmap PNG).
3. Two BOHB sweeps of model transfer from the portfolio (``transfer_spec``) on K49, the same
   preset and seed: warm-started (``WarmStart``: the ``--k`` entries most similar by
   ``--measure`` seed the first trials, the store's results prime BOHB's model) and cold.
4. A table (incumbent validation and test accuracy, trials, seeded and model-based trials,
   runtime, seconds to the incumbent) and the incumbent trajectory: best validation accuracy
   over wall-clock seconds since each sweep started, cold and warm (PNG).

The warm sweep runs first and reads its own store (``--store``; default a fresh one holding the
portfolio's entries), so the cold K49 sweep, which records itself in the store beside the
sweeps, can never leak into it.
"""

import argparse
import sys
from pathlib import Path

from automl_chars.cli.main import add_sweep_arguments, run_command
from automl_chars.cli.options import SMOKE_HELP, load_dataset, smoke_storage
from automl_chars.similarity import DEFAULT_MEASURE

SOURCES = ("emnist", "kmnist", "mnist", "omniglot", "qmnist")
TARGET, PRESET, EPOCHS = "k49", "3_1_9_4", 5
SMOKE = {"sources": ("glyphs-latin-upper", "glyphs-greek"), "target": "glyphs-latin-lower",
         "preset": "2_1_2_1", "samples_per_class": 6, "epochs": 1, "sample_size": 40}
#: Columns of the saved table (one row per sweep: warm, cold).
TABLE_COLUMNS = ("sweep", "val_acc", "test_acc", "trials", "seeded", "model_based",
                 "runtime_s", "incumbent_s")
TABLE_FILE, SIMILARITY_FILE = "table.csv", "similarity.csv"
HEATMAP_FILE, TRAJECTORY_FILE = "similarity.png", "trajectory.png"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="portfolio_k49", description=__doc__.splitlines()[0])
    add_sweep_arguments(parser, preset_default=None)
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs of each portfolio entry (default {EPOCHS})")
    parser.add_argument("--measure", default=DEFAULT_MEASURE,
                        help=f"measure that ranks the sources (default {DEFAULT_MEASURE})")
    parser.add_argument("--k", type=int, default=3, help="portfolio entries that seed the sweep")
    parser.add_argument("--sample-size", type=int, default=None,
                        help="target (and per-entry) images the similarity measures compare "
                             "(default 300)")
    parser.add_argument("--bootstrap", type=int, default=None,
                        help="bootstrap rounds of the similarity intervals (default 20; smoke 0)")
    parser.add_argument("--store", default=None,
                        help="results store the warm start reads (default: a fresh one in "
                             "<storage>/<name>-store holding the portfolio's entries)")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args(argv)
    return run_command(_run, args)


def _run(args: argparse.Namespace) -> int:
    import pandas as pd

    from automl_chars.layout import experiment_dir
    from automl_chars.portfolio import build_portfolio
    from automl_chars.search import WarmStart
    from automl_chars.search.spec import transfer_spec
    from automl_chars.similarity import MEASURES, plot_heatmap, rank_sources, similarity
    from automl_chars.store import ResultsStore, add_portfolio

    sources, target, preset = SOURCES, TARGET, args.preset or PRESET
    epochs, sample_size, bootstrap = args.epochs or EPOCHS, args.sample_size or 300, args.bootstrap
    if args.smoke:
        smoke_storage(args, "portfolio_k49")
        sources, target = SMOKE["sources"], SMOKE["target"]
        preset, epochs = args.preset or SMOKE["preset"], args.epochs or SMOKE["epochs"]
        sample_size = args.sample_size or SMOKE["sample_size"]
        bootstrap = 0 if bootstrap is None else bootstrap
        if args.samples_per_class is None:
            args.samples_per_class = SMOKE["samples_per_class"]
    bootstrap = 20 if bootstrap is None else bootstrap
    name = args.name or "portfolio_k49"
    out = experiment_dir(args.storage, f"{name}-report")
    out.mkdir(parents=True, exist_ok=True)

    # 1. The portfolio (resumed or read back when it was built before).
    source_ds = [load_dataset(s, args) for s in sources]
    target_ds = load_dataset(target, args)
    pf_dir = experiment_dir(args.storage, f"{name}-portfolio")
    portfolio = build_portfolio(source_ds, model="resnet18", epochs=epochs,
                                gpus_per_trial=args.gpus_per_trial,
                                cpus_per_trial=args.cpus_per_trial, storage_path=args.storage,
                                name=pf_dir.name, seed=args.seed,
                                resume=args.resume or (pf_dir / "manifest.json").exists(),
                                data_root=args.root, address=args.address, verbose=args.verbose)
    print(f"Portfolio: {portfolio.path}")
    print(portfolio.entries[["dataset", "val_acc", "test_acc"]].to_string())

    # 2. K49's similarity to each entry, every measure.
    # The smoke run takes the fast set: every measure but the slow ones (task2vec, minutes on a
    # CPU).
    chosen = "fast" if args.smoke else "all"
    sim = similarity(target_ds, portfolio.sources(sample_size=sample_size, seed=args.seed), chosen,
                     sample_size=sample_size, seed=args.seed, bootstrap=bootstrap)
    measures = [m for m in MEASURES.names() if m in sim]
    sim.to_csv(out / SIMILARITY_FILE)
    heatmap = plot_heatmap(sim, out / HEATMAP_FILE, title=f"{target_ds.name}: similarity")
    print(f"\nSimilarity of {target_ds.name} ({sim.attrs.get('sample_size')} images):")
    print(sim[measures].to_string(float_format=lambda v: f"{v:.4g}"))
    for m in measures:
        print(f"  {m:<14} most similar first: {', '.join(rank_sources(sim, m))}")
    for where, message in (sim.attrs.get("errors") or {}).items():
        print(f"  failed: {where}: {message}")
    print(f"Heatmap: {heatmap}")

    # 3. Warm-started, then cold BOHB of model transfer on the target.
    store = ResultsStore(args.store or experiment_dir(args.storage, f"{name}-store"))
    if not args.store:
        add_portfolio(portfolio.path, store)
    warm_start = WarmStart(portfolio=portfolio, store=store, measure=args.measure, k=args.k,
                           sample_size=sample_size)
    spec = transfer_spec(portfolio, seed=args.seed)
    results = {}
    for kind in ("warm", "cold"):
        sweep_name = f"{name}-{kind}-{preset}"
        finished = (experiment_dir(args.storage, sweep_name) / "summary.json").exists()
        results[kind] = _sweep(target_ds, args, preset, sweep_name, spec,
                               args.resume or finished, warm_start if kind == "warm" else None)
        r = results[kind]
        print(f"{kind}: {r.path} ({r.n_model_based} of {len(r.trials)} configurations from "
              f"BOHB's model; incumbent test accuracy {r.test_accuracy:.4f})")

    # 4. Table and trajectory.
    table = pd.DataFrame([_row(kind, r) for kind, r in results.items()], columns=TABLE_COLUMNS)
    table.to_csv(out / TABLE_FILE, index=False)
    shown = table.copy()
    for col in ("val_acc", "test_acc"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.2f}%")
    for col in ("runtime_s", "incumbent_s"):
        shown[col] = shown[col].map(lambda v: f"{v:.1f}s")
    print(f"\n{', '.join(s.name for s in source_ds)} -> {target_ds.name} (transfer, {preset})")
    print(shown.to_string(index=False))
    seeded = results["warm"].trials
    seeded = seeded[seeded["suggested_by"].astype(str).str.startswith(("portfolio:", "store:"))]
    print("\nSeeded trials of the warm sweep:")
    print(seeded[["trial_id", "suggested_by", "budget", "val_acc"]].to_string(index=False))
    plot = plot_trajectories({k: trajectory(r) for k, r in results.items()},
                             out / TRAJECTORY_FILE, title=f"{target_ds.name}: incumbent trajectory")
    print(f"\nTable: {out / TABLE_FILE}\nTrajectory: {plot}")
    return 0


def _sweep(ds, args, preset, name, spec, resume, warm_start):
    from automl_chars import run_bohb

    return run_bohb(ds, spec=spec, preset=preset, num_samples=args.num_samples,
                    fidelity=args.fidelity, gpus_per_trial=args.gpus_per_trial,
                    cpus_per_trial=args.cpus_per_trial, storage_path=args.storage, name=name,
                    seed=args.seed, resume=resume, max_failures=args.max_failures,
                    address=args.address, warm_start=warm_start, verbose=args.verbose,
                    priors=warm_start is not None,  # the cold sweep starts from nothing
                    autotune_lr=args.autotune_lr)


def trajectory(result):
    """Every reported ``val_acc`` (any budget) with its seconds since the sweep started, and the
    best so far: read from each trial's ``progress.csv`` (the trials table where it is missing)."""
    from automl_chars.reporting.plots import learning_curves

    start = float(result.settings.get("started_at", 0.0))
    curves = learning_curves(result.path)
    frame = (curves if "timestamp" in curves else result.trials)[["timestamp", "val_acc"]].dropna()
    frame = frame.assign(seconds=frame["timestamp"] - start).sort_values("seconds")
    return frame.assign(best=frame["val_acc"].cummax())[["seconds", "val_acc", "best"]]


def plot_trajectories(curves: dict, path, title: str | None = None) -> Path:
    """Best validation accuracy over wall-clock seconds, one step line per sweep (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, frame in curves.items():
        (line,) = ax.step(frame["seconds"], frame["best"], where="post", label=kind)
        ax.scatter(frame["seconds"], frame["val_acc"], s=8, alpha=0.35, color=line.get_color())
    ax.set_xlabel("seconds since the sweep started")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(title or "incumbent trajectory")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _row(kind: str, result) -> dict:
    t = result.trials
    by = t["suggested_by"].astype(str)
    curve = trajectory(result)
    best = curve["best"].max() if len(curve) else float("nan")
    at = curve.loc[curve["val_acc"] >= best, "seconds"]
    started = float(result.settings.get("started_at", 0.0))
    return {"sweep": kind, "val_acc": float(t.loc[t["trial_id"] == result.incumbent_trial_id,
                                                   "val_acc"].iloc[0]),
            "test_acc": float(result.test_accuracy), "trials": len(t),
            "seeded": int(by.str.startswith(("portfolio:", "store:")).sum()),
            "model_based": int((by == "model").sum()),
            "runtime_s": float(t["timestamp"].max() - started) if started else float("nan"),
            "incumbent_s": float(at.iloc[0]) if len(at) else float("nan")}


if __name__ == "__main__":
    sys.exit(main())
