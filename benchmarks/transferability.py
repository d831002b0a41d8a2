"""Do the similarity measures pick the source that transfers best? Leave-one-out on the glyph domains.

One portfolio is built over every ``glyphs-*`` domain (a small CNN per domain, trained as
parallel Ray trials by :func:`~automl_chars.portfolio.build_portfolio`). Then every domain in
turn is the **target**: freshly drawn images of it (another generator seed, a few per class for
training, more for the test split), and the **other** domains' entries are the sources (the
target's own entry never is). The ground truth: every source is fine-tuned on the target for a
fixed budget (``--epochs``; Adam, learning rate 1e-2, 0.1 of it for the pretrained body, batch 8,
nothing frozen) and so is the same architecture from random initialisation, with the same seeds;
a source's **gain** is its test accuracy minus random initialisation's. All (target, source)
fine-tunings are jobs of one :func:`~automl_chars.runner.trials.run_trials` call, i.e. parallel
Ray trials of ``TransferTrainable`` (one Ray start-up instead of one per target).

Each similarity measure ranks the target's sources on the target's training images
(``--sample-size`` at most, stratified; the measures that need a reference network use the
source with the most classes). Per measure and target: Kendall's tau between the measure's
scores and the gains (``scipy.stats.kendalltau``), the weighted tau (``scipy.stats.weightedtau``,
hyperbolic weights, the ranking by the measure deciding which sources weigh most), the top-1
regret (gain of the truly best source minus gain of the measure's pick) and the measure's
seconds for the target; the table shows means over targets. Two baselines: ``fixed`` ranks the
sources by their mean gain over the *other* targets (it ignores the target: a measure that does
not beat it is not worth its cost) and ``random`` (expected values of a random ranking).

Printed: the gains (targets x sources), the table, ``<measure>_weighted_tau:`` lines,
``fixed_weighted_tau:``, ``best_weighted_tau:`` (the best measure's), ``best_vs_fixed:`` (best
weighted tau minus the fixed ranking's: > 0 means the best measure beats it) and, last,
``ratio:`` = the best measure's weighted tau (goal: >= 0.7 and ``best_vs_fixed`` > 0).

    python benchmarks/transferability.py [--epochs 5] [--source-epochs 6] [--samples-per-class 100]
        [--target-samples-per-class 5] [--measures all] [--repeats 1] [--seed 0]
        [--storage DIR] [--smoke]

``--storage DIR`` keeps the portfolio and the fine-tuning runs (default: a temporary folder,
removed at the end); a second run with the same settings reads them back instead of training.
``--smoke`` is the test suite's tiny run: four domains, tiny samples, one epoch, cheap measures.
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
from automl_chars.similarity import MEASURES, Context, resolve_measures, similarity  # noqa: E402

#: The portfolio's model: two 3x3 convolutions (16, 32 channels, batch norm, max-pool) and a
#: 64-unit layer, Adam 1e-3 (3e-3 left one of eight entries stuck at chance): 0.5-0.6 test
#: accuracy on glyphs-georgian after 5 epochs of 100 images per class.
SOURCE_CONFIG = {
    "n_conv_layers": 2, "activation": "relu",
    "conv1_channels": 16, "conv1_kernel_size": 3, "conv1_padding": 1, "conv1_stride": 1,
    "conv1_batchnorm": True, "conv1_maxpool": True, "conv1_pool_size": 2, "conv1_dropout": False,
    "conv2_channels": 32, "conv2_kernel_size": 3, "conv2_padding": 1, "conv2_stride": 1,
    "conv2_batchnorm": True, "conv2_maxpool": True, "conv2_pool_size": 2, "conv2_dropout": False,
    "n_fc_layers": 1, "fc1_units": 64, "fc1_batchnorm": False, "fc1_dropout": False,
    "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "lr_schedule": "constant",
    "weight_decay": 1e-5, "augment": False,
}
#: Fine-tuning on the target (tests/trainables/test_transfer_trainable.py: measurably better than
#: random initialisation on small glyph data); random initialisation gets the same, minus the
#: transfer-only hyperparameters.
FINE_TUNE = {"optimizer": "adam", "learning_rate": 1e-2, "batch_size": 8, "lr_schedule": "constant"}
TRANSFER = {**FINE_TUNE, "body_lr_factor": 0.1, "freeze": 0.0}
NONE = "none"
SMOKE_DOMAINS = ("glyphs-latin-upper", "glyphs-latin-lower", "glyphs-greek", "glyphs-digits")
SMOKE_MEASURES = "sen,frechet,meta_features,logme,leep"
#: task2vec is left out by default: its per-image Fisher information of every source's sample
#: took 327 s for the first target (7 sources) on 2 shared CPU cores, against 1-8 s for the
#: others; ``--measures all`` includes it.
DEFAULT_MEASURES = tuple(m for m in MEASURES.names() if m != "task2vec")


def glyph_domains() -> list[str]:
    return sorted(n for n in data.names() if n.startswith("glyphs-"))


def build(domains, args, storage: str):
    """The portfolio over every domain (read back when ``storage`` already holds it)."""
    from automl_chars.portfolio import build_portfolio

    sources = [data.load(d, root=args.root, samples_per_class=args.samples_per_class,
                         seed=args.seed) for d in domains]
    name = (f"portfolio-cnn-n{args.samples_per_class}-e{args.source_epochs}-s{args.seed}-"
            f"{len(domains)}")
    folder = os.path.join(storage, name)
    start = time.perf_counter()
    portfolio = build_portfolio(sources, model="cnn", config=SOURCE_CONFIG,
                                epochs=args.source_epochs, storage_path=storage, name=name,
                                seed=args.seed, resume=os.path.isdir(folder), verbose=0)
    return portfolio, time.perf_counter() - start


def load_target(domain: str, args) -> data.Dataset:
    """Fresh images of ``domain`` (another generator seed than its portfolio entry's data)."""
    return data.load(domain, root=args.root, samples_per_class=args.target_samples_per_class,
                     val_per_class=args.target_samples_per_class,
                     test_per_class=args.target_test_per_class, seed=args.seed + 1000)


def fine_tune(portfolio, targets: dict[str, data.Dataset], args, storage: str, seed: int):
    """Test accuracy of every (target, source) fine-tuning and of random initialisation per
    target: one ``run_trials`` call, labels ``target:source``. Returns ``{target: {source: acc}}``."""
    from automl_chars.layout import SUMMARY_FILE, experiment_dir
    from automl_chars.runner.core import can_resume
    from automl_chars.runner.trials import TrialJob, run_trials
    from automl_chars.search.spec import transfer_spec

    jobs = []
    for t, ds in targets.items():
        sources = [s for s in portfolio.names() if s != t]
        assert t not in sources  # the target's own entry is never a source
        jobs += [TrialJob(f"{t}:{s}", ds, {**TRANSFER, "source": s}) for s in sources]
        jobs.append(TrialJob(f"{t}:{NONE}", ds, {**FINE_TUNE, "source": NONE}))
    name = (f"finetune-e{args.epochs}-n{args.target_samples_per_class}-"
            f"t{args.target_test_per_class}-s{seed}-{len(targets)}")
    folder = experiment_dir(storage, name)
    resume = folder.is_dir() and ((folder / SUMMARY_FILE).exists() or can_resume(folder))
    result = run_trials(jobs, transfer_spec(portfolio), args.epochs, name=name,
                        storage_path=storage, seed=seed, resume=resume, verbose=0)
    table = result.table
    bad = table[table["status"] != "TERMINATED"]
    if len(bad):
        raise SystemExit(f"{len(bad)} fine-tuning trials did not finish: "
                         f"{dict(zip(bad['label'], bad['error']))}")
    acc: dict[str, dict[str, float]] = {t: {} for t in targets}
    for label, value in zip(table["label"], table["test_acc"]):
        t, s = label.split(":", 1)
        acc[t][s] = float(value)
    return acc, float(table["seconds"].sum())


def oriented(frame: pd.DataFrame, measure: str) -> pd.Series:
    """The measure's scores with higher = more similar; a source it failed on ranks last."""
    score = frame[measure].astype(float)
    if not MEASURES.get(measure).higher_is_more_similar:
        score = -score
    finite = score[np.isfinite(score)]
    return score.fillna(finite.min() - 1 if len(finite) else 0.0)


def agreement(score: pd.Series, gain: pd.Series) -> dict[str, float]:
    """Kendall tau, weighted tau (ranked by ``score``) and top-1 regret of ``score`` against the
    measured ``gain`` (both indexed by source)."""
    gain = gain[score.index]
    x, y = score.to_numpy(float), gain.to_numpy(float)
    with warnings.catch_warnings():  # constant input: tau is NaN, said by the NaN itself
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(x, y).statistic
        wtau = stats.weightedtau(x, y, rank=None).statistic
    return {"kendall_tau": float(tau), "weighted_tau": float(wtau),
            "regret": float(y.max() - y[int(np.argmax(x))])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", default=None,
                   help="comma-separated glyph domains (default: all glyphs-* domains)")
    p.add_argument("--samples-per-class", type=int, default=100,
                   help="training images per class of each portfolio entry's domain")
    p.add_argument("--source-epochs", type=int, default=6, help="training epochs per entry")
    p.add_argument("--target-samples-per-class", type=int, default=5,
                   help="training (and validation) images per class of a target")
    p.add_argument("--target-test-per-class", type=int, default=20,
                   help="test images per class of a target (the gains are measured on them)")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning budget (epochs) per source")
    p.add_argument("--repeats", type=int, default=1,
                   help="fine-tune with seeds seed..seed+repeats-1 and average the gains")
    p.add_argument("--measures", default=",".join(DEFAULT_MEASURES),
                   help=f"'all' or comma-separated names of {', '.join(MEASURES.names())} "
                        f"(default: all but task2vec, which takes minutes per target on a CPU)")
    p.add_argument("--sample-size", type=int, default=300,
                   help="target images the measures see (at most the target's training split)")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap rounds of the measures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", default=None,
                   help="folder for the portfolio and runs (default: a temporary folder)")
    p.add_argument("--root", default=None, help="data root (default $AUTOML_CHARS_DATA)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--smoke", action="store_true",
                   help="four domains, tiny samples, one epoch, cheap measures (tests)")
    args = p.parse_args(argv)
    all_domains = glyph_domains()
    domains = all_domains if args.domains is None else [d.strip() for d in args.domains.split(",")]
    if args.smoke:
        domains = list(SMOKE_DOMAINS)
        args.samples_per_class, args.source_epochs = 20, 5
        args.target_samples_per_class, args.target_test_per_class = 3, 10
        args.epochs, args.repeats, args.bootstrap = 1, 1, 0
        if args.measures == ",".join(DEFAULT_MEASURES):
            args.measures = SMOKE_MEASURES
    unknown = sorted(set(domains) - set(all_domains))
    if unknown or len(domains) < 3:
        p.error(f"--domains needs at least 3 of {', '.join(all_domains)}; unknown: {unknown}")
    measures = resolve_measures(args.measures)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    import ray

    from automl_chars.runner.cluster import local_ray

    storage = args.storage or tempfile.mkdtemp(prefix="transferability-")
    try:
        with local_ray(num_cpus=args.cpus,
                       logging_config=ray.LoggingConfig(log_level="WARNING")):
            portfolio, build_s = build(domains, args, storage)
            entries = portfolio.entries.set_index("name")
            print(f"portfolio: {len(portfolio)} CNN entries, {args.samples_per_class} "
                  f"images/class, {args.source_epochs} epochs, built in {build_s:.0f} s; test accuracy "
                  + ", ".join(f"{n}: {a:.2f}" for n, a in entries["test_acc"].items()),
                  flush=True)
            targets = {d: load_target(d, args) for d in domains}
            start = time.perf_counter()
            runs = [fine_tune(portfolio, targets, args, storage, args.seed + r)
                    for r in range(args.repeats)]
            tune_s = time.perf_counter() - start
            # read before a temporary storage goes: the entries' models and image samples
            views = {v.name: v for v in portfolio.sources(seed=args.seed)}
    finally:
        if args.storage is None:
            shutil.rmtree(storage, ignore_errors=True)
    acc = {t: {s: float(np.mean([run[0][t][s] for run in runs])) for s in runs[0][0][t]}
           for t in domains}
    gains = pd.DataFrame({t: {s: a - acc[t][NONE] for s, a in acc[t].items() if s != NONE}
                          for t in domains}).T.reindex(index=domains, columns=domains)
    gains.index.name, gains.columns.name = "target", "source"
    print(f"fine-tuning: {len(domains) * len(domains)} trials x {args.repeats} seed(s), "
          f"{args.epochs} epochs on {args.target_samples_per_class} images/class, "
          f"{tune_s:.0f} s (trials' own time {sum(r[1] for r in runs):.0f} s)")
    print("\ngain in test accuracy over random initialisation (rows targets, columns sources):")
    print(gains.rename(columns=lambda c: c.removeprefix("glyphs-"),
                       index=lambda c: c.removeprefix("glyphs-")).round(3).to_string())
    print("random initialisation: "
          + ", ".join(f"{t.removeprefix('glyphs-')} {acc[t][NONE]:.3f}" for t in domains))

    measured = time.perf_counter()
    contexts: dict[str, Context] = {}
    rows = []
    for t in domains:
        sources = [views[s] for s in domains if s != t]
        # the reference network of sen/frechet/otdd/task2vec: the source with the most classes
        ref = max(sources, key=lambda v: (len(v.classes), v.name))
        ctx = contexts.setdefault(ref.name, Context(ref, args.seed))
        target = targets[t]
        frame = similarity(target, sources, measures, sample_size=min(args.sample_size,
                           len(target.y_train)), seed=args.seed, bootstrap=args.bootstrap,
                           context=ctx)
        gain = gains.loc[t, frame.index]
        for m in measures:
            rows.append({"measure": m, "target": t, **agreement(oriented(frame, m), gain),
                         "seconds": float(frame[f"{m}_seconds"].sum())})
        others = gains.drop(index=t)
        fixed = pd.Series({s: others[s].drop(index=s, errors="ignore").mean()
                           for s in frame.index})
        rows.append({"measure": "fixed", "target": t, **agreement(fixed, gain), "seconds": 0.0})
        rows.append({"measure": "random", "target": t, "kendall_tau": 0.0, "weighted_tau": 0.0,
                     "regret": float(gain.max() - gain.mean()), "seconds": 0.0})
    similarity_s = time.perf_counter() - measured
    per_target = pd.DataFrame(rows)
    table = per_target.groupby("measure", sort=False)[
        ["kendall_tau", "weighted_tau", "regret", "seconds"]].mean()
    table["best_pick"] = per_target.assign(zero=per_target["regret"] <= 1e-12).groupby(
        "measure", sort=False)["zero"].mean()
    print(f"\n{len(domains)} targets, {len(domains) - 1} sources each; measures on "
          f"<= {args.sample_size} target training images, bootstrap {args.bootstrap}; means "
          f"over targets (best_pick: share of targets where the pick is the truly best source); "
          f"similarity {similarity_s:.0f} s, whole run {time.perf_counter() - started:.0f} s:")
    print(table.round(3).to_string())
    scored = table.loc[measures, "weighted_tau"]
    best = scored.idxmax() if scored.notna().any() else measures[0]
    for m in measures:
        print(f"{m}_weighted_tau: {table.loc[m, 'weighted_tau']:.3f}")
    fixed_wtau = float(table.loc["fixed", "weighted_tau"])
    print(f"fixed_weighted_tau: {fixed_wtau:.3f}")
    print(f"best_measure: {best}")
    print(f"best_regret: {table.loc[best, 'regret']:.3f}")
    print(f"best_weighted_tau: {table.loc[best, 'weighted_tau']:.3f}")
    print(f"best_vs_fixed: {table.loc[best, 'weighted_tau'] - fixed_wtau:.3f}")
    print(f"ratio: {table.loc[best, 'weighted_tau']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
