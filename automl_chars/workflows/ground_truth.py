"""The ground truth of transferability: how well every model of a zoo really fine-tunes on
every target, measured as the field measures it (SFDA's protocol, Shao et al. 2022).

1. **A zoo**: every source domain trained with each of several architectures
   (:data:`ARCHS`: CNN sizes, ResNet-18 widths), as parallel Ray trials; one portfolio whose
   entries are named ``<domain>@<arch>`` (:func:`build_zoo`).
2. **Fine-tuning over a grid**: for each regime (:data:`REGIMES`: few-shot, standard), each
   seed, every target and every zoo entry trained on *another* domain, one
   ``TransferTrainable`` trial per (learning rate, weight decay) of the grid; all of one
   (regime, seed) are jobs of one :func:`~automl_chars.runner.trials.run_trials` call, so a
   killed run resumes and a finished one is read back (:func:`fine_tune_grid`).
3. **Selection**: per (target, source) the grid point with the best validation accuracy, mean
   over seeds; its test accuracy (mean over seeds) is the ground truth
   (:meth:`GroundTruth.accuracy`).

Every fine-tuning goes into the results store (``kind = "ground_truth"``, ``suggested_by`` =
``<regime>:<seed>``), so the ground truth can be rebuilt from the store alone
(:meth:`GroundTruth.from_store`). ``benchmarks/transferability.py`` drives it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from automl_chars.data import Dataset, load
from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import results_root
from automl_chars.portfolio import Portfolio
from automl_chars.portfolio.entry import MANIFEST_FILE
from automl_chars.store import ResultsStore, store_beside
from automl_chars.store.ingest import add_trials
from automl_chars.workflows.portfolio import add_checkpoint

#: Store rows of the ground truth carry this ``kind``.
KIND = "ground_truth"
#: Joins a zoo entry's domain and architecture: ``glyphs-greek@cnn-m``.
SEP = "@"


def _cnn(channels: Sequence[int], units: int) -> dict:
    """A CNN-space configuration: 3x3 convolutions with batch norm and 2x2 max-pool, one fully
    connected layer; Adam 1e-3, batch 32 (the portfolio's training)."""
    config: dict = {"n_conv_layers": len(channels), "activation": "relu", "n_fc_layers": 1,
                    "fc1_units": units, "fc1_batchnorm": False, "fc1_dropout": False,
                    "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32,
                    "lr_schedule": "constant", "weight_decay": 1e-5, "augment": False}
    for i, c in enumerate(channels, 1):
        config.update({f"conv{i}_channels": c, f"conv{i}_kernel_size": 3,
                       f"conv{i}_padding": 1, f"conv{i}_stride": 1, f"conv{i}_batchnorm": True,
                       f"conv{i}_maxpool": True, f"conv{i}_pool_size": 2,
                       f"conv{i}_dropout": False})
    return config


@dataclass(frozen=True)
class Arch:
    """One architecture of the zoo: the sweep spec that trains it and its configuration."""

    trainable: str
    config: Mapping


#: The zoo's architectures by name. ``cnn-m`` is the transfer benchmark's former single model
#: (two convolutions of 16 and 32 channels, 64 units); ``cnn-s`` and ``cnn-l`` are a size
#: smaller and larger; the ResNet-18 widths are for a machine with time (a GPU).
ARCHS: dict[str, Arch] = {
    "cnn-s": Arch("cnn", _cnn((8,), 32)),
    "cnn-m": Arch("cnn", _cnn((16, 32), 64)),
    "cnn-l": Arch("cnn", _cnn((32, 64, 128), 128)),
    "resnet18-w0.125": Arch("resnet18", {"width": 0.125, "optimizer": "adam",
                                         "learning_rate": 1e-3, "batch_size": 32,
                                         "lr_schedule": "constant"}),
    "resnet18-w0.25": Arch("resnet18", {"width": 0.25, "optimizer": "adam",
                                        "learning_rate": 1e-3, "batch_size": 32,
                                        "lr_schedule": "constant"}),
}
DEFAULT_ARCHS = ("cnn-s", "cnn-m", "cnn-l")


@dataclass(frozen=True)
class Regime:
    """How much of a target fine-tuning sees: images per class for training, validation (the
    grid's selection) and test (the ground truth), epochs and batch size."""

    name: str
    samples_per_class: int
    val_per_class: int
    test_per_class: int
    epochs: int
    batch_size: int


#: Few-shot (5 images per class) and standard (100 per class), as the field's two settings.
REGIMES: dict[str, Regime] = {
    "few": Regime("few", samples_per_class=5, val_per_class=5, test_per_class=20, epochs=10,
                  batch_size=8),
    "standard": Regime("standard", samples_per_class=100, val_per_class=20, test_per_class=20,
                       epochs=5, batch_size=32),
}
#: The fine-tuning's fixed part: Adam, a constant rate, the pretrained body at a tenth of it.
FINE_TUNE = {"optimizer": "adam", "lr_schedule": "constant", "body_lr_factor": 0.1,
             "freeze": 0.0}
#: The default grid: learning rates x weight decays (SFDA's is 11 x 7; ours is small for CPUs).
LEARNING_RATES = (1e-3, 3e-3, 1e-2)
WEIGHT_DECAYS = (0.0, 5e-4)


@dataclass(frozen=True)
class GroundTruthSettings:
    """What defines a ground-truth run (its folders' names derive from it).

    Attributes:
        domains: the datasets, each a source (with every architecture) and a target.
        archs: names in :data:`ARCHS`.
        regimes: names in :data:`REGIMES`.
        seeds: fine-tunings per grid point, seeds ``seed .. seed + seeds - 1``.
        learning_rates, weight_decays: the grid.
        source_samples_per_class, source_epochs: how the zoo is trained.
        seed: seeds the zoo's training and the first fine-tuning; targets are drawn with
            generator seed ``seed + 1000`` (other images than the zoo's).
        regime_overrides: per regime, fields of :class:`Regime` to replace (a smoke run's
            tiny sizes).
    """

    domains: tuple[str, ...]
    archs: tuple[str, ...] = DEFAULT_ARCHS
    regimes: tuple[str, ...] = ("few", "standard")
    seeds: int = 3
    learning_rates: tuple[float, ...] = LEARNING_RATES
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS
    source_samples_per_class: int = 100
    source_epochs: int = 6
    seed: int = 0
    regime_overrides: Mapping[str, Mapping] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if len(self.domains) < 3 or len(set(self.domains)) != len(self.domains):
            problems.append(f"domains must be at least 3 distinct datasets, got {self.domains}")
        unknown = [a for a in self.archs if a not in ARCHS]
        if unknown or not self.archs:
            problems.append(f"archs must name some of {', '.join(ARCHS)}; unknown: {unknown}")
        bad = [r for r in self.regimes if r not in REGIMES]
        if bad or not self.regimes:
            problems.append(f"regimes must name some of {', '.join(REGIMES)}; unknown: {bad}")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            problems.append(f"seeds must be a whole number >= 1, got {self.seeds!r}")
        if not self.learning_rates or any(not lr > 0 for lr in self.learning_rates):
            problems.append(f"learning_rates must be > 0, got {self.learning_rates}")
        if not self.weight_decays or any(not wd >= 0 for wd in self.weight_decays):
            problems.append(f"weight_decays must be >= 0, got {self.weight_decays}")
        if problems:
            raise InvalidConfigError("Invalid ground-truth settings: " + "; ".join(problems) + ".")

    def regime(self, name: str) -> Regime:
        """The regime ``name`` with this run's overrides."""
        base = REGIMES[name]
        return Regime(**{**base.__dict__, **dict(self.regime_overrides.get(name, {}))})

    @property
    def grid(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.learning_rates for wd in self.weight_decays]

    def zoo_name(self) -> str:
        key = json.dumps([sorted(self.domains), list(self.archs)])
        return (f"zoo-n{self.source_samples_per_class}-e{self.source_epochs}-s{self.seed}-"
                f"{hashlib.sha256(key.encode()).hexdigest()[:8]}")

    def run_name(self, regime: Regime, seed: int) -> str:
        key = json.dumps([sorted(self.domains), list(self.archs), self.grid, regime.__dict__,
                          self.zoo_name()])
        return f"gt-{regime.name}-s{seed}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def entry_name(domain: str, arch: str) -> str:
    return f"{domain}{SEP}{arch}"


def split_entry(name: str) -> tuple[str, str]:
    """``"glyphs-greek@cnn-m"`` -> ``("glyphs-greek", "cnn-m")``."""
    domain, _, arch = name.rpartition(SEP)
    if not domain:
        raise InvalidConfigError(f"{name!r} is not a zoo entry name (<domain>{SEP}<arch>).")
    return domain, arch


def build_zoo(settings: GroundTruthSettings, storage: str | os.PathLike, *,
              data_root: str | os.PathLike | None = None, cpus_per_trial: float = 1.0,
              gpus_per_trial: float = 0.0, verbose: int = 0) -> Portfolio:
    """Every domain trained with every architecture (one ``run_trials`` per trainable,
    resumable), as one portfolio ``<storage>/<zoo name>`` with entries ``<domain>@<arch>``;
    a finished zoo is read back."""
    from automl_chars.runner.core import can_resume
    from automl_chars.runner.trials import TrialJob, run_trials
    from automl_chars.store.ingest import record_portfolio

    folder = results_root(storage) / settings.zoo_name()  # a URI's mirror too
    portfolio = Portfolio.load(folder) if (folder / MANIFEST_FILE).exists() else Portfolio(folder)
    wanted = [entry_name(d, a) for d in settings.domains for a in settings.archs]
    if set(wanted) <= set(portfolio.names()):
        return portfolio
    datasets = {d: load(d, root=data_root, samples_per_class=settings.source_samples_per_class,
                        seed=settings.seed) for d in settings.domains}
    by_trainable: dict[str, list[str]] = {}
    for a in settings.archs:
        by_trainable.setdefault(ARCHS[a].trainable, []).append(a)
    for trainable, archs in by_trainable.items():
        jobs = [TrialJob(entry_name(d, a), datasets[d], dict(ARCHS[a].config))
                for d in settings.domains for a in archs]
        name = f"training-{trainable}"
        run = run_trials(jobs, trainable, settings.source_epochs, name=name, storage_path=folder,
                         seed=settings.seed, resume=can_resume(folder / name) or
                         (folder / name / "summary.json").exists(),
                         cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                         verbose=verbose)
        for job in jobs:
            if job.label not in portfolio.names():
                add_checkpoint(portfolio, job.dataset, run.checkpoint(job.label), run.row(job.label),
                               trainable, name=job.label, seed=settings.seed)
    record_portfolio(folder)
    return portfolio


def load_targets(settings: GroundTruthSettings, regime: Regime,
                 data_root: str | os.PathLike | None = None) -> dict[str, Dataset]:
    """Each domain as a target of ``regime``: images drawn with generator seed ``seed + 1000``."""
    return {d: load(d, root=data_root, samples_per_class=regime.samples_per_class,
                    val_per_class=regime.val_per_class, test_per_class=regime.test_per_class,
                    seed=settings.seed + 1000) for d in settings.domains}


def grid_jobs(zoo: Portfolio, targets: Mapping[str, Dataset], settings: GroundTruthSettings,
              regime: Regime) -> list:
    """One ``TrialJob`` per (target, entry of another domain, grid point), labelled
    ``<target>|<entry>|<lr>|<wd>``; the target's own domain is never a source."""
    from automl_chars.runner.trials import TrialJob

    jobs = []
    for t, ds in targets.items():
        for source in zoo.names():
            if split_entry(source)[0] == t:
                continue
            for lr, wd in settings.grid:
                config = {**FINE_TUNE, "source": source, "learning_rate": lr,
                          "weight_decay": wd, "batch_size": regime.batch_size}
                jobs.append(TrialJob(f"{t}|{source}|{lr:g}|{wd:g}", ds, config))
    return jobs


def fine_tune_grid(zoo: Portfolio, settings: GroundTruthSettings, regime: Regime, seed: int,
                   storage: str | os.PathLike, *, store: ResultsStore | None = None,
                   data_root: str | os.PathLike | None = None, cpus_per_trial: float = 1.0,
                   gpus_per_trial: float = 0.0, verbose: int = 0) -> pd.DataFrame:
    """Every grid job of ``regime`` with ``seed``: one resumable ``run_trials`` call (a
    finished one is read back), its trials added to the results store. Returns one row per
    trial: ``regime``, ``seed``, ``target``, ``source``, ``learning_rate``, ``weight_decay``,
    ``val_acc``, ``test_acc``, ``seconds``, ``status``."""
    from automl_chars.layout import SUMMARY_FILE, experiment_dir
    from automl_chars.runner.core import can_resume
    from automl_chars.runner.trials import run_trials
    from automl_chars.search.spec import transfer_spec

    targets = load_targets(settings, regime, data_root)
    jobs = grid_jobs(zoo, targets, settings, regime)
    name = settings.run_name(regime, seed)
    folder = experiment_dir(storage, name)
    resume = folder.is_dir() and ((folder / SUMMARY_FILE).exists() or can_resume(folder))
    result = run_trials(jobs, transfer_spec(zoo), regime.epochs, name=name, storage_path=storage,
                        seed=seed, resume=resume, cpus_per_trial=cpus_per_trial,
                        gpus_per_trial=gpus_per_trial, verbose=verbose)
    add_trials(result.path, store or store_beside(result.path), kind=KIND,
               suggested_by=f"{regime.name}:{seed}", trainable="transfer",
               fingerprints={t: ds.fingerprint() for t, ds in targets.items()})
    return trial_frame(result.table, regime.name, seed)


def trial_frame(table: pd.DataFrame, regime: str, seed: int) -> pd.DataFrame:
    """A ``run_trials`` table of grid jobs as ground-truth rows (see :func:`fine_tune_grid`)."""
    return pd.DataFrame({
        "regime": regime, "seed": int(seed), "target": table["dataset"].astype(str),
        "source": table["config/source"].astype(str),
        "learning_rate": table["config/learning_rate"].astype(float),
        "weight_decay": table["config/weight_decay"].astype(float),
        "val_acc": table["val_acc"].astype(float), "test_acc": table["test_acc"].astype(float),
        "seconds": table["seconds"].astype(float), "status": table["status"].astype(str),
    })


@dataclass
class GroundTruth:
    """Every fine-tuning of a ground-truth run (:func:`fine_tune_grid`'s rows) and the zoo.

    ``trials`` columns: ``regime``, ``seed``, ``target``, ``source``, ``learning_rate``,
    ``weight_decay``, ``val_acc``, ``test_acc``, ``seconds``, ``status``.
    """

    trials: pd.DataFrame
    zoo: Portfolio | None = None

    def __post_init__(self) -> None:
        bad = self.trials[self.trials["status"] != "TERMINATED"]
        if len(bad):
            raise ExperimentStateError(
                f"{len(bad)} fine-tuning trials did not finish (e.g. {bad.iloc[0]['target']} "
                f"from {bad.iloc[0]['source']}); run the same settings again to retry them.")

    @property
    def regimes(self) -> list[str]:
        return list(dict.fromkeys(self.trials["regime"]))

    def selected(self, regime: str) -> pd.DataFrame:
        """Per (target, source) the grid point with the best validation accuracy (mean over
        seeds; ties go to the first in grid order), with its mean and seed-to-seed standard
        deviation of test accuracy: ``target``, ``source``, ``learning_rate``,
        ``weight_decay``, ``val_acc``, ``test_acc``, ``test_sd``, ``seeds``."""
        rows = self.trials[self.trials["regime"] == regime]
        if rows.empty:
            raise InvalidConfigError(f"No ground truth for regime {regime!r}; it has "
                                     f"{self.regimes}.")
        keys = ["target", "source", "learning_rate", "weight_decay"]
        per_point = rows.groupby(keys, sort=False).agg(
            val_acc=("val_acc", "mean"), test_acc=("test_acc", "mean"),
            test_sd=("test_acc", lambda s: float(np.std(s, ddof=1)) if len(s) > 1 else 0.0),
            seeds=("seed", "nunique")).reset_index()
        best = per_point.loc[per_point.groupby(["target", "source"], sort=False)["val_acc"]
                             .idxmax()]
        return best.reset_index(drop=True)

    def accuracy(self, regime: str) -> pd.DataFrame:
        """The ground truth of ``regime``: test accuracy of the selected grid point, targets x
        sources (NaN where a source is the target's own domain)."""
        frame = self.selected(regime).pivot(index="target", columns="source", values="test_acc")
        frame.index.name, frame.columns.name = "target", "source"
        return frame

    @classmethod
    def from_store(cls, store: ResultsStore, targets: Sequence[str] | None = None
                   ) -> GroundTruth:
        """The ground-truth rows of ``store`` (every run recorded there; ``targets`` keeps
        those targets only)."""
        frame = store.configs()
        frame = frame[frame["kind"] == KIND]
        if targets is not None:
            frame = frame[frame["dataset"].isin(list(targets))]
        if frame.empty:
            raise InvalidConfigError(f"The results store {store.path} has no {KIND} rows; run "
                                     f"benchmarks/transferability.py with --storage first.")
        regime_seed = frame["suggested_by"].str.split(":", n=1, expand=True)
        return cls(pd.DataFrame({
            "regime": regime_seed[0], "seed": regime_seed[1].astype(int),
            "target": frame["dataset"], "source": frame["source"],
            "learning_rate": [float(c["learning_rate"]) for c in frame["config"]],
            "weight_decay": [float(c["weight_decay"]) for c in frame["config"]],
            "val_acc": frame["val_acc"], "test_acc": frame["test_acc"],
            "seconds": frame["seconds"], "status": frame["status"],
        }).reset_index(drop=True))


def ground_truth(settings: GroundTruthSettings, storage: str | os.PathLike, *,
                 store: ResultsStore | None = None, data_root: str | os.PathLike | None = None,
                 cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 verbose: int = 0) -> GroundTruth:
    """The zoo and every (regime, seed) grid run of ``settings`` under ``storage`` (each
    resumed or read back when it is there already); the store defaults to ``store/`` beside
    the runs."""
    zoo = build_zoo(settings, storage, data_root=data_root, cpus_per_trial=cpus_per_trial,
                    gpus_per_trial=gpus_per_trial, verbose=verbose)
    frames = [fine_tune_grid(zoo, settings, settings.regime(r), settings.seed + s, storage,
                             store=store, data_root=data_root, cpus_per_trial=cpus_per_trial,
                             gpus_per_trial=gpus_per_trial, verbose=verbose)
              for r in settings.regimes for s in range(settings.seeds)]
    return GroundTruth(pd.concat(frames, ignore_index=True), zoo)


__all__ = ["ARCHS", "DEFAULT_ARCHS", "FINE_TUNE", "KIND", "LEARNING_RATES", "REGIMES",
           "WEIGHT_DECAYS", "Arch", "GroundTruth", "GroundTruthSettings", "Regime", "build_zoo",
           "entry_name", "fine_tune_grid", "grid_jobs", "ground_truth", "load_targets",
           "split_entry", "trial_frame"]
