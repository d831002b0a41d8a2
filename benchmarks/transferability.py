"""Do the similarity measures rank a model zoo by how well it really fine-tunes? Leave one glyph
domain out, against a ground truth measured as the field measures it.

**Ground truth** (:mod:`automl_chars.workflows.ground_truth`, SFDA's protocol): a zoo of every
``glyphs-*`` domain trained with each of ``--archs`` (CNN sizes by default: ``cnn-s``, ``cnn-m``,
``cnn-l``; ResNet-18 widths too), entries ``<domain>@<arch>``. Every domain in turn is the
**target** (fresh images: another generator seed) and every zoo entry of another domain a
**source** (the target's own domain never is). In each regime (``--regime``: ``few``, 5 images
per class, 10 epochs; ``standard``, 100 per class, 5 epochs) every source is fine-tuned on the
target at every point of a learning-rate x weight-decay ``--grid`` with ``--seeds`` seeds
(Adam, pretrained body at a tenth of the rate, nothing frozen); per (target, source) the grid
point with the best mean validation accuracy is kept and its mean test accuracy is the ground
truth. All fine-tunings of one (regime, seed) are jobs of one ``run_trials`` call: a killed run
continues where it stopped, a finished one is read back, and every trial goes into the results
store (``<storage>/store``, ``kind = "ground_truth"``).

**Measures**: each ranks the target's sources on its training images (``--sample-size`` at
most; the reference network of ``sen``/``frechet``/``otdd``/``task2vec`` is the source with the
most classes). ``learned`` is scored leave-one-target-out: per target, a ranker fitted on the
other targets' ground truth (both regimes) and scores, never its own (the shipped ranker was
trained on these very targets, so it is not what the table shows). **Baselines**: ``fixed``
(each source's mean per-target-standardised accuracy over the *other* targets: target-blind),
``size`` (parameters of the source's body: bigger is better) and ``random`` (expected values).

Per measure, regime and target: Kendall's tau with the ground truth, weighted tau
(``scipy.stats.weightedtau``, hyperbolic weights, ranked by the measure), top-1 regret (best
accuracy minus the pick's; ties of the score split the pick evenly) and seconds; the tables show
means over targets. Printed last, for the main regime (``standard`` when run, else ``few``):
``<measure>_weighted_tau``, ``fixed_weighted_tau``, ``size_weighted_tau``, ``best_measure``,
``best_weighted_tau``, ``best_regret``, ``best_vs_fixed``, ``best_vs_size``, the default
measure's (``automl_chars.similarity.DEFAULT_MEASURE``) and ``ratio:`` = the best measure's
weighted tau (goal: >= 0.7, beating ``fixed`` and ``size`` by 0.2).

    python benchmarks/transferability.py [--regime few|standard|both] [--seeds 3]
        [--grid 1e-3,3e-3,1e-2/0,5e-4] [--archs cnn-s,cnn-m,cnn-l] [--domains ...]
        [--measures fast] [--storage DIR] [--scores CSV] [--plot PNG] [--smoke]

``--storage DIR`` keeps the zoo, the runs, the store and ``scores.csv`` (each measure's score and
the ground truth per regime, target and source: what ``scripts/train_learned_ranker.py``
retrains the shipped ranker from); default a temporary folder, removed at the end.
``--smoke`` is the test suite's tiny run: three domains, two small CNNs, the few-shot regime on
3 images per class, one epoch, one seed, one grid point, the cheap measures (18 trials).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from automl_chars import data  # noqa: E402
from automl_chars.similarity import (  # noqa: E402
    DEFAULT_MEASURE,
    MEASURES,
    Context,
    resolve_measures,
    similarity,
)
from automl_chars.similarity.learned import (  # noqa: E402
    DEFAULT_BASES,
    SCORE_COLUMNS,
    body_parameters,
    leave_one_target_out,
)
from automl_chars.workflows.ground_truth import (  # noqa: E402
    ARCHS,
    DEFAULT_ARCHS,
    LEARNING_RATES,
    WEIGHT_DECAYS,
    GroundTruthSettings,
    load_targets,
    split_entry,
)

SMOKE_DOMAINS = ("glyphs-latin-upper", "glyphs-greek", "glyphs-digits")
SMOKE_MEASURES = "logme,leep,nce,hscore,sfda,parc,knn,sen"
#: The learned ranker, scored leave-one-target-out (not the shipped file).
LEARNED = "learned"
BASELINES = ("fixed", "size", "random")
DEFAULT_GRID = f"{','.join(f'{x:g}' for x in LEARNING_RATES)}/{','.join(f'{x:g}' for x in WEIGHT_DECAYS)}"


def glyph_domains() -> list[str]:
    return sorted(n for n in data.names() if n.startswith("glyphs-"))


def parse_grid(text: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``"1e-3,1e-2/0,5e-4"`` -> learning rates, weight decays."""
    try:
        lrs, wds = text.split("/")
        return (tuple(float(x) for x in lrs.split(",") if x.strip()),
                tuple(float(x) for x in wds.split(",") if x.strip()))
    except ValueError:
        raise ValueError(f"--grid must read LR,LR,.../WD,WD,... (e.g. {DEFAULT_GRID}), got "
                         f"{text!r}") from None


def oriented(frame: pd.DataFrame, measure: str) -> pd.Series:
    """The measure's scores with higher = more similar; a source it failed on ranks last."""
    score = frame[measure].astype(float)
    if measure in MEASURES and not MEASURES.get(measure).higher_is_more_similar:
        score = -score
    finite = score[np.isfinite(score)]
    return score.fillna(finite.min() - 1 if len(finite) else 0.0)


def agreement(score: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Kendall tau, weighted tau (ranked by ``score``) and top-1 regret of ``score`` against
    the ground ``truth`` (both indexed by source); tied top scores share the pick evenly."""
    truth = truth[score.index]
    x, y = score.to_numpy(float), truth.to_numpy(float)
    with warnings.catch_warnings():  # constant input: tau is NaN, said by the NaN itself
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(x, y).statistic
        wtau = stats.weightedtau(x, y, rank=None).statistic
    picked = y[x >= x.max()]
    return {"kendall_tau": float(tau), "weighted_tau": float(wtau),
            "regret": float(y.max() - picked.mean()),
            "best_pick": float(np.mean(picked >= y.max() - 1e-12))}


def fixed_scores(truth: pd.DataFrame, target: str, sources: list[str]) -> pd.Series:
    """Each source's mean standardised accuracy over the targets other than ``target``."""
    others = truth.drop(index=target)
    z = others.sub(others.mean(axis=1), axis=0).div(others.std(axis=1).replace(0, 1), axis=0)
    return z[sources].mean(axis=0).fillna(0.0)


def measure_scores(gt, views, settings, measures, args) -> pd.DataFrame:
    """Every measure's score (and seconds) per regime, target and source, with the ground
    truth and the ranker's meta columns: the scores table."""
    rows = []
    for regime_name in gt.regimes:
        regime = settings.regime(regime_name)
        truth = gt.accuracy(regime_name)
        targets = load_targets(settings, regime, args.root)
        contexts: dict[str, Context] = {}
        for t, target in targets.items():
            sources = [v for v in views if split_entry(v.name)[0] != t]
            ref = max(sources, key=lambda v: (len(v.classes), v.name))
            ctx = contexts.setdefault(ref.name, Context(ref, args.seed))
            frame = similarity(target, sources, measures,
                               sample_size=min(args.sample_size, len(target.y_train)),
                               seed=args.seed, bootstrap=args.bootstrap, context=ctx)
            for v in sources:
                row = {"regime": regime_name, "target": t, "source": v.name,
                       "accuracy": float(truth.loc[t, v.name]),
                       "params": body_parameters(v.model),
                       "images_per_class": len(target.y_train) / target.num_classes,
                       "source_classes": len(v.classes)}
                for m in measures:
                    row[m] = float(frame.loc[v.name, m])
                    row[f"{m}_seconds"] = float(frame.loc[v.name, f"{m}_seconds"])
                rows.append(row)
    return pd.DataFrame(rows)


def evaluate(scores: pd.DataFrame, measures: list[str], gt, learned: bool) -> pd.DataFrame:
    """One row per (regime, target, measure or baseline): the agreement with the truth."""
    bases = [m for m in DEFAULT_BASES if m in measures]
    if learned:
        scores = scores.assign(**{LEARNED: leave_one_target_out(scores, bases)})
    rows = []
    for (regime, t), frame in scores.groupby(["regime", "target"], sort=False):
        frame = frame.set_index("source")
        truth = frame["accuracy"]
        scored = [*measures, *([LEARNED] if learned else [])]
        for m in scored:
            seconds = frame[[f"{b}_seconds" for b in bases]].to_numpy().sum() \
                if m == LEARNED else frame[f"{m}_seconds"].sum()
            rows.append({"regime": regime, "target": t, "measure": m,
                         **agreement(oriented(frame, m), truth), "seconds": float(seconds)})
        baselines = {"fixed": fixed_scores(gt.accuracy(regime), t, list(frame.index)),
                     "size": frame["params"].astype(float)}
        for b, score in baselines.items():
            rows.append({"regime": regime, "target": t, "measure": b,
                         **agreement(score, truth), "seconds": 0.0})
        rows.append({"regime": regime, "target": t, "measure": "random", "kendall_tau": 0.0,
                     "weighted_tau": 0.0, "regret": float(truth.max() - truth.mean()),
                     "best_pick": float(np.mean(truth >= truth.max() - 1e-12)),
                     "seconds": 0.0})
    return pd.DataFrame(rows)


def plot(per_target: pd.DataFrame, path: str) -> None:
    """Weighted tau per measure (rows) and target (columns), one panel per regime."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = list(dict.fromkeys(per_target["regime"]))
    fig, axes = plt.subplots(1, len(regimes), figsize=(7 * len(regimes), 6), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        grid = per_target[per_target["regime"] == regime].pivot(
            index="measure", columns="target", values="weighted_tau")
        grid = grid.loc[list(dict.fromkeys(per_target["measure"]))]
        im = ax.imshow(grid.to_numpy(float), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [c.removeprefix("glyphs-") for c in grid.columns],
                      rotation=45, ha="right")
        ax.set_yticks(range(grid.shape[0]), grid.index)
        for (i, j), v in np.ndenumerate(grid.to_numpy(float)):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(f"weighted tau, {regime} regime")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def report(gt, per_target: pd.DataFrame, settings, measures: list[str]) -> None:
    """The ground truth's summary and the tables; the named figures, ``ratio`` last."""
    for regime in gt.regimes:
        sel = gt.selected(regime)
        truth = gt.accuracy(regime)
        by_arch = sel.assign(arch=[split_entry(s)[1] for s in sel["source"]]).groupby(
            "arch")["test_acc"].mean()
        r = settings.regime(regime)
        print(f"\nground truth, {regime} regime ({r.samples_per_class} images/class, "
              f"{r.epochs} epochs, {len(settings.grid)} grid points x {settings.seeds} seed(s)): "
              f"mean test accuracy per arch " + ", ".join(f"{a} {v:.3f}" for a, v in
                                                          by_arch.items()))
        spread = (truth.max(axis=1) - truth.min(axis=1))
        best = truth.idxmax(axis=1)
        print("  per target: best source (accuracy), sources' spread, median seed sd:")
        for t in truth.index:
            sd = sel[sel["target"] == t]["test_sd"].median()
            print(f"  {t.removeprefix('glyphs-'):<12} {best[t]:<28} {truth.loc[t].max():.3f}  "
                  f"spread {spread[t]:.3f}  seed sd {sd:.3f}")
        lr_wd = sel.groupby(["learning_rate", "weight_decay"]).size()
        print("  grid points chosen: " + ", ".join(f"lr {lr:g} wd {wd:g}: {n}"
                                                   for (lr, wd), n in lr_wd.items()))
    cols = ["kendall_tau", "weighted_tau", "regret", "best_pick", "seconds"]
    tables = {r: per_target[per_target["regime"] == r].groupby("measure", sort=False)[cols].mean()
              for r in gt.regimes}
    for regime, table in tables.items():
        print(f"\n{regime} regime: means over {per_target[per_target['regime'] == regime]['target'].nunique()} "
              f"targets (seconds: per target; best_pick: share of targets where the pick is the "
              f"truly best source):")
        print(table.round(3).to_string())
    main = "standard" if "standard" in tables else gt.regimes[0]
    ranked = [*measures, *([LEARNED] if LEARNED in tables[main].index else [])]
    for regime, table in tables.items():
        suffix = "" if regime == main else f"[{regime}]"
        scored = table.loc[ranked, "weighted_tau"]
        best = scored.idxmax() if scored.notna().any() else ranked[0]
        for m in ranked:
            print(f"{m}_weighted_tau{suffix}: {table.loc[m, 'weighted_tau']:.3f}")
        for b in ("fixed", "size"):
            print(f"{b}_weighted_tau{suffix}: {table.loc[b, 'weighted_tau']:.3f}")
        print(f"best_measure{suffix}: {best}")
        print(f"best_regret{suffix}: {table.loc[best, 'regret']:.3f}")
        print(f"best_weighted_tau{suffix}: {table.loc[best, 'weighted_tau']:.3f}")
        for b in ("fixed", "size"):
            print(f"best_vs_{b}{suffix}: "
                  f"{table.loc[best, 'weighted_tau'] - table.loc[b, 'weighted_tau']:.3f}")
        if DEFAULT_MEASURE in table.index:
            print(f"default_measure{suffix}: {DEFAULT_MEASURE} (automl_chars.similarity."
                  f"DEFAULT_MEASURE), weighted tau {table.loc[DEFAULT_MEASURE, 'weighted_tau']:.3f}")
    table = tables[main]
    scored = table.loc[ranked, "weighted_tau"]
    best = scored.idxmax() if scored.notna().any() else ranked[0]
    print(f"ratio: {table.loc[best, 'weighted_tau']:.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", default=None,
                   help="comma-separated glyph domains (default: all glyphs-* domains)")
    p.add_argument("--archs", default=",".join(DEFAULT_ARCHS),
                   help=f"comma-separated zoo architectures of {', '.join(ARCHS)}")
    p.add_argument("--regime", choices=("few", "standard", "both"), default="both",
                   help="few-shot (5 images/class), standard (100/class), or both")
    p.add_argument("--seeds", type=int, default=3, help="fine-tunings per grid point")
    p.add_argument("--grid", default=DEFAULT_GRID,
                   help=f"learning rates / weight decays (default {DEFAULT_GRID})")
    p.add_argument("--source-samples-per-class", type=int, default=100,
                   help="training images per class of each zoo entry's domain")
    p.add_argument("--source-epochs", type=int, default=6, help="training epochs per zoo entry")
    p.add_argument("--measures", default="fast",
                   help=f"'fast', 'all' or comma-separated names of {', '.join(MEASURES.names())}; "
                        f"'{LEARNED}' is always scored leave-one-target-out when its bases are in")
    p.add_argument("--sample-size", type=int, default=300,
                   help="target images the measures see (at most the target's training split)")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap rounds of the measures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", default=None,
                   help="folder for the zoo, runs, store and scores (default: a temporary one)")
    p.add_argument("--scores", default=None,
                   help="write the scores table here too (default: <storage>/scores.csv)")
    p.add_argument("--plot", default=None, help="write a PNG of weighted tau per measure and target")
    p.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPU share per fine-tuning and zoo trial (0 = CPU only)")
    p.add_argument("--smoke", action="store_true",
                   help="three domains, two small CNNs, few-shot, tiny sizes (tests)")
    args = p.parse_args(argv)
    all_domains = glyph_domains()
    domains = all_domains if args.domains is None else [d.strip() for d in args.domains.split(",")]
    overrides = {}
    if args.smoke:
        domains = list(SMOKE_DOMAINS)
        args.archs, args.regime, args.seeds, args.grid = "cnn-s,cnn-m", "few", 1, "1e-2/0"
        args.source_samples_per_class, args.source_epochs, args.bootstrap = 10, 2, 0
        overrides = {"few": {"samples_per_class": 3, "val_per_class": 3, "test_per_class": 5,
                             "epochs": 1}}
        if args.measures == "fast":
            args.measures = SMOKE_MEASURES
    unknown = sorted(set(domains) - set(all_domains))
    if unknown or len(domains) < 3:
        p.error(f"--domains needs at least 3 of {', '.join(all_domains)}; unknown: {unknown}")
    try:
        lrs, wds = parse_grid(args.grid)
        settings = GroundTruthSettings(
            tuple(domains), tuple(a.strip() for a in args.archs.split(",") if a.strip()),
            ("few", "standard") if args.regime == "both" else (args.regime,), args.seeds, lrs,
            wds, args.source_samples_per_class, args.source_epochs, args.seed, overrides)
    except Exception as err:  # names the field; the flags carry the same names
        p.error(str(err))
    measures = [m for m in resolve_measures(args.measures) if m != LEARNED]
    learned = any(m in measures for m in DEFAULT_BASES)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    import ray

    from automl_chars.runner.cluster import local_ray
    from automl_chars.workflows.ground_truth import ground_truth

    storage = args.storage or tempfile.mkdtemp(prefix="transferability-")
    try:
        with local_ray(num_cpus=args.cpus,
                       logging_config=ray.LoggingConfig(log_level="WARNING")):
            gt = ground_truth(settings, storage, gpus_per_trial=args.gpus_per_trial)
        tuned_s = time.perf_counter() - started
        views = gt.zoo.sources(seed=args.seed)
        n_trials = len(gt.trials)
        print(f"zoo: {len(gt.zoo)} entries ({len(domains)} domains x {len(settings.archs)} "
              f"archs); fine-tuning: {n_trials} trials ({', '.join(gt.regimes)}; "
              f"{len(settings.grid)} grid points x {settings.seeds} seed(s)); trials' own time "
              f"{gt.trials['seconds'].sum():.0f} s, mean "
              + ", ".join(f"{r} {gt.trials[gt.trials['regime'] == r]['seconds'].mean():.2f} s"
                          for r in gt.regimes)
              + f" per trial; zoo and fine-tuning {tuned_s:.0f} s wall", flush=True)
        measured = time.perf_counter()
        scores = measure_scores(gt, views, settings, measures, args)
        similarity_s = time.perf_counter() - measured
        for path in {args.scores, os.path.join(storage, "scores.csv") if args.storage else None}:
            if path:
                scores[[*SCORE_COLUMNS, *measures, *[f"{m}_seconds" for m in measures]]].to_csv(
                    path, index=False)
                print(f"scores: {path}")
    finally:
        if args.storage is None:
            shutil.rmtree(storage, ignore_errors=True)
    per_target = evaluate(scores, measures, gt, learned)
    print(f"measures: {similarity_s:.0f} s; whole run {time.perf_counter() - started:.0f} s")
    if args.plot:
        plot(per_target, args.plot)
        print(f"plot: {args.plot}")
    report(gt, per_target, settings, measures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
