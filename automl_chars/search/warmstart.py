"""Warm-started BOHB: seed the first trials from the most similar sources and past sweeps, and
let BOHB's model learn from their results before the target's own arrive.

:func:`plan_warm_start` decides, before Ray starts, what the sweep starts from:

- **seeds** (the first trials): for a transfer sweep, model transfer from the ``k`` portfolio
  entries most similar to the target (by ``measure``); for other sweeps, those entries' own
  configurations when they were trained by the same trainable (configuration transfer); then
  ``num_seeds`` configurations from the results store: a greedy portfolio over the ``k`` nearest
  datasets (kNN over meta-features). By default (``seed_choice="anytime"``,
  :func:`anytime_portfolio`) each step takes the configuration that, trained beside the ones
  taken, lowers the neighbours' regret of the best result so far most over their first seconds
  (their learning curves and training times): good early counts as well as good last. With
  ``seed_choice="rank"`` (:func:`seed_portfolio`; Wistuba et al.'s sequential model-free
  selection, which Syne Tune's ``ZeroShotTransfer`` runs) each dataset ranks the configurations
  it holds (by budget reached, then accuracy); each step takes the configuration with the best
  mean rank, the ranks capped by the portfolio's so far, and starts over among the rest once
  every dataset is covered; a configuration a dataset never ran counts there as its median.
  Each seed records why (``suggested_by``: ``portfolio:<entry>``, ``store:<dataset where it
  ranks best>``).
- **priors** (results BOHB's density estimator starts with): the store's results of the same
  trainable on the ``k`` nearest datasets, at the budgets this sweep's brackets use. Accuracies
  of other datasets differ in scale, so each enters as its quantile within its dataset and
  budget (the best counts like accuracy 1, the worst like 0); once the target has results at a
  budget, the priors there are mapped onto the target's own range (the best quantile onto its
  best result so far, the worst onto its worst), so no prior outranks the target. At most
  ``priors_per_budget`` per budget (default ``2 * (d + 1)``: just enough for hpbandster to fit
  its model from the first trial), spread evenly over the quantiles so good and bad regions are
  both represented.

:class:`WarmStartSearcher` wraps the project's BOHB searcher (keeping the scheduler's contract,
:class:`~automl_chars.search.searcher.BracketSearcher`): it suggests the seeds first (through
:meth:`BOHBSearcher.adopt`), feeds the priors into hpbandster's model from the smallest budget
up (``BOHB.new_result`` drops a result at a budget below one that already has a model), and
**retires one prior for every result of the target at that budget**, so the target's own results
take over and the priors can never outweigh them. Its state (seeds left, priors left) is saved
with the sweep, so a resumed sweep neither seeds again nor loses the priors.

``WarmStart(method="pmf")`` keeps the priors but replaces the store's seed portfolio by
:mod:`~automl_chars.search.pmf`'s picks, made one at a time while the sweep runs:
:func:`plan_from` fits the model (``plan.pmf``), and the runner wraps this searcher in a
:class:`~automl_chars.search.pmf.PMFSearcher`.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.util import deactivate_inactive_hyperparameters
from ray.tune.search import Searcher

from automl_chars import uris
from automl_chars.data import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.search import hpbandster_compat
from automl_chars.search.pmf import PMFModel, fit_pmf
from automl_chars.search.searcher import BOHBSearcher, restore_wrapped, save_wrapped
from automl_chars.similarity.base import DEFAULT_MEASURE
from automl_chars.spaces.values import config_key, plain_config, typed_to_space

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmStart:
    """How a sweep is warm-started (``run_bohb(..., warm_start=WarmStart(...))``).

    Attributes:
        portfolio: a :class:`~automl_chars.portfolio.Portfolio` or its folder (None: none).
        store: a :class:`~automl_chars.store.ResultsStore` or its folder (None: the store beside
            the sweep, or ``$AUTOML_CHARS_STORE``).
        measure: the similarity measure that ranks the portfolio's entries (default
            :data:`~automl_chars.similarity.DEFAULT_MEASURE`, the best measured one).
        k: how many portfolio entries seed the sweep, and how many nearest datasets its store
            seeds and priors come from.
        num_seeds: how many seed trials the store's results give (a greedy portfolio over the
            ``k`` nearest datasets; see the module docstring); 0: none.
        sample_size: target images the measure compares.
        priors_per_budget: cap on the store's results fed to BOHB's model per budget (default
            ``2 * (d + 1)`` for a space of ``d`` hyperparameters); 0 disables priors.
        builtin: also draw on the built-in priors (:func:`builtin_priors`: the shipped
            learning-curve table), which count when they are nearer to the target than the
            store's own datasets.
        seed_trials: start with seed trials; False feeds priors to BOHB's model only.
        same_dataset: draw on the store's results of the target dataset itself (same name or
            contents). The default priors leave them out, so that a sweep does not depend on
            earlier sweeps of the same data; an explicit warm start uses them.
        evidence: plan from this :class:`Evidence` instead of opening the portfolio, the store
            and the built-in priors (a benchmark's leave-one-out data, or your own).
        lead: the seed trials train to the top budget at once, in a bracket of their own,
            before BOHB's HyperBand iterations (else they start at the smallest budget and wait
            for their rung to fill, as Ray's ``points_to_evaluate`` do).
        strict: a warm start that cannot be planned fails the sweep, and one that finds nothing
            warns. The default sweep's (:data:`DEFAULT_PRIORS`) is not strict: it never fails a
            sweep, and starts cold, quietly, where there is nothing to draw on.
        method: how the store's seed trials are chosen: ``"knn"``, the greedy portfolio of the
            ``k`` nearest datasets (above), all planned before the sweep; or ``"pmf"``,
            probabilistic matrix factorisation (:mod:`automl_chars.search.pmf`): the first
            ``num_seeds`` trials picked one at a time by expected improvement, each pick
            knowing the target's results so far. Priors are the same either way. ``"pmf"``
            draws on the store and the built-in priors, not on a portfolio.
        seed_choice: what the ``"knn"`` store seeds are chosen for: ``"anytime"`` (the
            default), the configurations that, trained side by side, keep the neighbours'
            regret lowest over their first seconds (:func:`anytime_portfolio`: their learning
            curves and training times); ``"rank"``, the ones of best mean rank at the
            neighbours' top budget (:func:`seed_portfolio`, as Syne Tune's ``ZeroShotTransfer``).
    """

    portfolio: Any = None
    store: Any = None
    measure: str = DEFAULT_MEASURE
    k: int = 3
    num_seeds: int = 4
    sample_size: int = 300
    priors_per_budget: int | None = None
    builtin: bool = True
    seed_trials: bool = True
    same_dataset: bool = True
    evidence: Evidence | None = None
    lead: bool = True
    strict: bool = True
    method: str = "knn"
    seed_choice: str = "anytime"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidConfigError(f"WarmStart method must be one of {list(METHODS)}, got "
                                     f"{self.method!r}.")
        if self.seed_choice not in SEED_CHOICES:
            raise InvalidConfigError(f"WarmStart seed_choice must be one of "
                                     f"{list(SEED_CHOICES)}, got {self.seed_choice!r}.")
        if self.method == "pmf" and self.portfolio is not None:
            raise InvalidConfigError(
                "WarmStart(method='pmf') picks seed trials from the results store's matrix of "
                "configurations x datasets, not from a portfolio: leave portfolio out (or use "
                "method='knn' to seed from the portfolio's entries).")
        for name in ("k", "num_seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidConfigError(
                    f"WarmStart {name} must be a whole number >= 0, got {value!r}.")
        if self.priors_per_budget is not None and self.priors_per_budget < 0:
            raise InvalidConfigError("WarmStart priors_per_budget must be >= 0.")
        from automl_chars.similarity import MEASURES

        MEASURES.get(self.measure)  # unknown names raise with the closest ones

    def describe(self) -> dict:
        """What defines the warm start (recorded with the sweep; resume checks it). ``builtin``
        is not in it: like ``run_bohb(priors=...)``, it cannot change a resumed sweep, whose
        searcher comes back as it was saved."""
        path = getattr(self.portfolio, "path", self.portfolio)
        store = getattr(self.store, "path", self.store)
        # a URI (or a mirror of one) without its credentials: this is saved with the sweep
        return {"portfolio": uris.shown(path) if path else None,
                "store": uris.shown(store) if store else None,
                "measure": self.measure, "k": self.k, "num_seeds": self.num_seeds,
                "sample_size": self.sample_size,
                "priors_per_budget": self.priors_per_budget, "seed_trials": self.seed_trials,
                "same_dataset": self.same_dataset, "lead": self.lead, "method": self.method,
                "seed_choice": self.seed_choice,
                "evidence": self.evidence.describe() if self.evidence is not None else None}


#: How a warm start chooses its seed trials (``WarmStart.method``).
METHODS = ("knn", "pmf")
#: What the kNN warm start's store seeds are chosen for (``WarmStart.seed_choice``).
SEED_CHOICES = ("anytime", "rank")
#: :func:`anytime_portfolio`'s window: this many times the median time a neighbour's
#: configuration takes to reach its top budget (the seeds train to the top budget at once). 4
#: gave the smallest regret area of 1, 2 and 4 on the glyph domains, left out one at a time.
ANYTIME_WINDOW = 4.0
#: Statuses of a configuration that broke off (diverged, crashed): a seed only once others are taken.
BROKE = ("FAILED", "ERROR")


#: The default sweep's warm start, from other datasets' results (the built-in priors and the
#: store beside the sweep): the greedy portfolio of the nearest datasets' configurations as seed
#: trials at the top budget, and their results as priors for BOHB's model. Never fails a sweep.
DEFAULT_PRIORS = WarmStart(builtin=True, same_dataset=False, strict=False)


@dataclass(frozen=True)
class TargetInfo:
    """What the planner knows of the target: its name, contents and meta-features."""

    name: str
    fingerprint: str
    meta_features: Mapping[str, float]

    @classmethod
    def of(cls, dataset: Dataset) -> TargetInfo:
        """A dataset's (its meta-features computed here, on a sample)."""
        from automl_chars.similarity.meta_features import dataset_meta_features

        return cls(dataset.name, dataset.fingerprint(), dataset_meta_features(dataset))


@dataclass(frozen=True, eq=False)
class Evidence:
    """What a warm start is planned from, as data (:func:`gather_evidence` reads it from the
    portfolio, the store and the built-in priors).

    Attributes:
        results: past results, as :meth:`ResultsStore.frame` or :meth:`ResultsStore.configs`
            gives them (``config`` as its JSON text or a dict; the planner parses only the rows
            it uses), (``dataset``,
            ``dataset_fingerprint``, ``trainable``, ``config``, ``budget``, ``val_acc``,
            ``trial_id``, ``mf_*`` meta-features), with ``origin`` (where they come from).
        ranking: portfolio entries ranked for the target, best first: index the entry's name,
            columns ``score``, ``measure``, ``trainable`` and ``config``.
        notes: what gathering it had to say (a measure that failed, ...).
    """

    results: pd.DataFrame = field(default_factory=pd.DataFrame)
    ranking: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the sweep's settings."""
        datasets = sorted(set(self.results["dataset"])) if len(self.results) else []
        return (f"{len(self.results)} results of {datasets}, "
                f"{len(self.ranking)} ranked sources {list(self.ranking.index)}")


@dataclass(frozen=True)
class Seed:
    """A configuration the sweep starts with, and why."""

    config: dict
    suggested_by: str
    reason: str


@dataclass(frozen=True)
class Prior:
    """A result from another dataset, as BOHB's model sees it (``loss`` = minus the quantile)."""

    config: dict
    budget: int
    loss: float
    dataset: str


@dataclass
class WarmStartPlan:
    """What :func:`plan_warm_start` decided: seeds, priors, and the rankings behind them."""

    seeds: list[Seed] = field(default_factory=list)
    priors: list[Prior] = field(default_factory=list)
    ranking: pd.DataFrame = field(default_factory=pd.DataFrame)
    neighbours: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    pmf: PMFModel | None = None
    pmf_trials: int = 0

    @property
    def first_trials(self) -> int:
        """The trials the warm start proposes itself: its seeds, then its PMF picks."""
        return len(self.seeds) + (self.pmf_trials if self.pmf is not None else 0)

    def summary(self) -> dict:
        """The plan as plain data (saved as ``warm_start.json`` in the sweep's folder)."""
        pmf = ({"trials": self.pmf_trials, **self.pmf.summary()} if self.pmf is not None
               else None)
        return {"pmf": pmf, "seeds": [{"suggested_by": s.suggested_by, "reason": s.reason, "config": s.config}
                          for s in self.seeds],
                "priors": {"count": len(self.priors),
                           "datasets": sorted({p.dataset for p in self.priors}),
                           "budgets": sorted({p.budget for p in self.priors})},
                "ranking": self.ranking.reset_index(names="source").to_dict("records"),
                "neighbours": self.neighbours.reset_index(names="dataset").to_dict("records"),
                "notes": list(self.notes)}

    def cap_seeds(self, num_trials: int) -> None:
        """Keeps the first ``num_trials`` seeds (a sweep of fewer trials cannot run the rest)
        and notes the ones left out."""
        if len(self.seeds) > num_trials:
            left = self.seeds[num_trials:]
            self.notes.append(f"{len(left)} seed(s) left out, the sweep runs {num_trials} "
                              f"trial(s): " + ", ".join(s.suggested_by for s in left))
            self.seeds = self.seeds[:num_trials]
        room = num_trials - len(self.seeds)
        if self.pmf is not None and self.pmf_trials > room:
            self.notes.append(f"{self.pmf_trials - room} PMF trial(s) left out, the sweep runs "
                              f"{num_trials} trial(s)")
            self.pmf_trials = room

    @property
    def empty(self) -> bool:
        """Nothing to start from: the sweep runs as a cold BOHB sweep."""
        return not self.seeds and not self.priors and not (self.pmf and self.pmf_trials)

    def describe(self, default: bool = False) -> str:
        """A few lines for the log: where the seeds and priors come from (``default``: for the
        default sweep's warm start, which says how to turn it off)."""
        off = " (--no-priors / priors=False: start cold)" if default else ""
        lines = ([f"Warm start: {len(self.seeds)} seeded trials, {len(self.priors)} prior "
                  f"results of the nearest datasets{off}"] if self.seeds else
                 [f"Priors: BOHB's model starts from {len(self.priors)} results of the nearest "
                  f"datasets{off}"])
        lines += [f"  seed {s.suggested_by}: {s.reason}" for s in self.seeds]
        if self.pmf is not None and self.pmf_trials:
            m = self.pmf.summary()
            lines.insert(1, f"  PMF: the first {self.pmf_trials} trials picked by expected "
                            f"improvement over {m['candidates']} configurations factorised on "
                            f"{len(m['datasets'])} dataset(s) x {len(m['budgets'])} budget(s) "
                            f"({m['observed']:.0%} observed), first the best on average")
        if len(self.priors):
            by = pd.Series([p.dataset for p in self.priors]).value_counts()
            lines.append("  priors from " + ", ".join(f"{d} ({n})" for d, n in by.items()))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def fit_to_space(config: Mapping[str, Any], space: ConfigurationSpace) -> dict | None:
    """``config`` as a configuration of ``space``: its values for the space's hyperparameters
    (the space's defaults for the rest), inactive ones dropped; None when a value does not fit."""
    typed = typed_to_space({k: v for k, v in config.items() if k in space}, space)
    try:  # already a whole configuration of the space (a store's rows mostly are): one check
        return plain_config(Configuration(space, values=typed))
    except (ValueError, TypeError, KeyError):
        pass
    values = {name: hp.default_value for name, hp in space.items()}
    values.update(typed)
    try:
        return plain_config(deactivate_inactive_hyperparameters(values, space))
    except (ValueError, TypeError, KeyError):
        return None


def plan_warm_start(target: Dataset, spec, warm: WarmStart, budgets: Sequence[int],
                    store=None, seed: int = 0) -> WarmStartPlan:
    """Seeds and priors for a sweep of ``spec`` on ``target`` (see the module docstring):
    :func:`plan_from` the :func:`gather_evidence` of ``warm`` (or its own ``evidence``)."""
    evidence = warm.evidence if warm.evidence is not None else gather_evidence(
        target, warm, store, seed)
    return plan_from(TargetInfo.of(target), spec, warm, budgets, evidence)


def gather_evidence(target: Dataset, warm: WarmStart, store=None, seed: int = 0) -> Evidence:
    """What the warm start can draw on for ``target``: the portfolio's entries ranked by
    ``warm.measure`` (when it seeds trials), ``store``'s rows and, with ``warm.builtin``, the
    built-in priors'. A measure that fails on the target is noted and the sources are ranked
    by ``meta_features``."""
    notes: list[str] = []
    ranking = pd.DataFrame()
    portfolio = _portfolio(warm.portfolio) if warm.seed_trials else None
    if portfolio is not None and len(portfolio):
        portfolio.check_fits(target.image_shape)
        ranking = _rank_sources(target, portfolio, warm, seed, notes)
        entries = [portfolio.entry(name) for name in ranking.index]
        ranking = ranking.assign(trainable=[e.trainable for e in entries],
                                 config=[dict(e.config) for e in entries])
    return Evidence(_store_rows(store, warm.builtin), ranking, tuple(notes))


def plan_from(target: TargetInfo, spec, warm: WarmStart, budgets: Sequence[int],
              evidence: Evidence) -> WarmStartPlan:
    """Seeds and priors for a sweep of ``spec`` on ``target`` from ``evidence`` (no files
    read, nothing trained): the ``k`` best-ranked portfolio entries, then ``num_seeds``
    configurations of the ``k`` datasets nearest to the target (:func:`anytime_portfolio`, or
    :func:`seed_portfolio` with ``seed_choice="rank"``; PMF's picks with ``method="pmf"``);
    priors from those datasets' results at ``budgets``. Empty evidence gives an empty plan (a
    cold sweep), with a warning when the warm start is strict."""
    plan = WarmStartPlan(notes=list(evidence.notes))
    if warm.seed_trials and len(evidence.ranking):
        plan.ranking = evidence.ranking[["score", "measure"]]
        for rank, (name, entry) in enumerate(evidence.ranking.iloc[: warm.k].iterrows(), 1):
            seed_config = _portfolio_seed(name, entry, spec)
            if seed_config is None:
                plan.notes.append(f"entry {name}: trained by another trainable; not a seed")
                continue
            plan.seeds.append(Seed(seed_config, f"portfolio:{name}",
                                   f"rank {rank} by {entry['measure']}"))
    frame = evidence.results
    if not frame.empty and not warm.same_dataset:
        mine = (frame["dataset"] == target.name) | (
            frame["dataset_fingerprint"] == target.fingerprint)
        frame = frame[~mine]
    if not frame.empty:
        if warm.method == "pmf":  # PMF learns from every dataset: every row is fitted
            frame = _usable_rows(frame, spec, plan.notes, warn=warm.strict)
            plan.neighbours = _nearest(target, frame, warm.k)
            near = frame[frame["dataset"].isin(plan.neighbours.index)]
        else:  # only the nearest datasets' rows are used: only they are fitted
            plan.neighbours, near = _nearest_usable(target, frame, spec, warm.k, plan.notes,
                                                    warn=warm.strict)
        if warm.method == "pmf":
            if warm.seed_trials and warm.num_seeds:  # every dataset: PMF learns who is alike
                plan.pmf, plan.pmf_trials = fit_pmf(frame, budgets), warm.num_seeds
        elif warm.seed_trials:
            choose = anytime_portfolio if warm.seed_choice == "anytime" else seed_portfolio
            plan.seeds += [Seed(row["config"], f"store:{row['dataset']}",
                                f"portfolio step {step}: {row['why']} ({_origin(row, target)})")
                           for step, row in enumerate(choose(
                               near, warm.num_seeds, list(plan.neighbours.index)), 1)]
        cap = (2 * (len(spec.space) + 1) if warm.priors_per_budget is None
               else warm.priors_per_budget)
        plan.priors = _priors(near, budgets, cap)
    plan.seeds = _valid_unique(plan.seeds, spec.space, plan.notes)
    if plan.empty and warm.strict:
        warnings.warn("Warm start: the portfolio and the store hold nothing for this sweep; "
                      "it runs as a cold BOHB sweep.", stacklevel=2)
    return plan


def _store_rows(store, builtin: bool) -> pd.DataFrame:
    """The store's rows, with the built-in priors' after them when ``builtin`` (column
    ``origin``: ``"store"`` or ``"built-in priors"``). The built-in priors never depend on the
    user's files: a store that cannot be read at all is a warning and leaves them (its damaged
    files are skipped by the store itself, with a warning each)."""
    frames = []
    if store is not None:
        try:
            # configurations as their JSON text: the plan parses only the rows it uses
            frames.append(store.frame().assign(origin="store"))
        except Exception as err:
            where = getattr(store, "path", store)
            warnings.warn(f"Warm start: the results store {where} cannot be read "
                          f"({type(err).__name__}: {err}); its results are left out"
                          f"{', the built-in priors are used' if builtin else ''}. Check it with "
                          f"`automl-chars store check --store {where}`.", stacklevel=2)
    if builtin:
        frames.append(builtin_priors())
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def builtin_priors() -> pd.DataFrame:
    """The built-in priors as store rows (``origin`` "built-in priors"): every curve of the
    shipped learning-curve table (:func:`~automl_chars.tabular.shipped.glyph_curves`: 201
    configurations of the CNN space trained 9 epochs on each glyph domain, every epoch a
    result)."""
    return _builtin_priors().copy()


@functools.lru_cache(maxsize=1)
def _builtin_priors() -> pd.DataFrame:
    from automl_chars.tabular.shipped import readable_curves

    # A damaged part of the package's data is left out with a warning naming it (reinstall):
    # the other parts still serve.
    table = readable_curves()
    rows = table.store_rows() if table is not None else pd.DataFrame()
    return rows.assign(origin="built-in priors") if len(rows) else rows


def _origin(row: pd.Series, target: TargetInfo) -> str:
    """Where a store result comes from, and whether it is the target's own dataset: the same
    name counts as the same dataset (a glyph domain or public set drawn at another size), and the
    plan says so, since its results were not measured on the target's exact data."""
    where = f"from the {row.get('origin', 'store')}"
    if row["dataset_fingerprint"] == target.fingerprint:
        return f"{where}; the target's own data"
    if row["dataset"] == target.name:
        return f"{where}; the target's dataset drawn at another size or sample"
    return where


def _portfolio(p):
    if p is None:
        return None
    from automl_chars.portfolio import Portfolio

    return p if isinstance(p, Portfolio) else Portfolio.load(p)


def _rank_sources(target: Dataset, portfolio, warm: WarmStart, seed: int,
                  notes: list[str]) -> pd.DataFrame:
    from automl_chars.similarity import rank_sources, similarity

    sources = portfolio.sources(seed=seed)
    measure = warm.measure
    try:
        frame = similarity(target, sources, measure, sample_size=warm.sample_size, seed=seed,
                           bootstrap=0, on_error="raise")
    except Exception as err:  # any measure failure: rank by the model-free measure instead
        notes.append(f"measure {measure} failed on the target ({err}); ranked by meta_features")
        logger.warning("Warm start: %s failed on the target (%s); ranking by meta_features.",
                       measure, err)
        measure = "meta_features"
        frame = similarity(target, sources, measure, sample_size=warm.sample_size, seed=seed,
                           bootstrap=0)
    order = rank_sources(frame, measure)
    return pd.DataFrame({"score": frame.loc[order, measure], "measure": measure}, index=order)


def _portfolio_seed(name: str, entry: pd.Series, spec) -> dict | None:
    """A ranked entry as a seed: model transfer from it, or its configuration when it was
    trained by the sweep's own trainable (None otherwise)."""
    if spec.name == "transfer":
        return {"source": name}
    if entry["trainable"] == spec.results_of:
        return dict(entry["config"])
    return None


def _usable_rows(frame: pd.DataFrame, spec, notes: list[str], warn: bool = True) -> pd.DataFrame:
    """The store's finished results of ``spec``'s trainable whose configuration fits the space
    (the rest noted, and warned about when ``warn``: default priors in a subspace sweep drop
    the other hyperparameters as a matter of course)."""
    frame, unknown, unfit = _fitted_rows(_finished_rows(frame, spec), spec)
    _note_unfit(unknown, unfit, notes, warn)
    return frame


def _finished_rows(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """The rows of ``spec``'s trainable with a validation accuracy (nothing fitted yet; the
    frame itself when every row is one: a copy of a 100,000-row store costs ~0.2 s)."""
    keep = ((frame["trainable"] == spec.results_of) & frame["val_acc"].notna()).to_numpy(bool)
    return frame if keep.all() else frame[keep]


def _fitted_rows(frame: pd.DataFrame, spec) -> tuple[pd.DataFrame, int, int]:
    """``frame``'s rows whose configuration fits ``spec``'s space, fitted (:func:`fit_to_space`);
    how many rows had hyperparameters the space lacks (ignored) and how many did not fit. Rows
    recorded by sweeps of this very space (their ``space_fingerprint``) hold whole
    configurations of it: taken as they are, without ConfigSpace's check (~1 ms a row)."""
    if frame.empty:
        return frame.copy(), 0, 0
    space = spec.space
    names = set(space.keys())
    texts = list(frame["config"])
    configs = [_parsed(c) for c in texts]
    own = (frame["space_fingerprint"] == spec.fingerprint()).to_numpy() \
        if "space_fingerprint" in frame else np.zeros(len(frame), dtype=bool)
    others = iter(_fit_all([c for c, mine in zip(configs, own) if not mine], space))
    fitted = [{k: v for k, v in c.items() if k in names} if mine else next(others)
              for c, mine in zip(configs, own)]
    extra = [bool(set(c) - names) for c in configs]
    ok = [f is not None for f in fitted]
    # the store writes a configuration as its key (canonical JSON): an own-space row with
    # nothing dropped keeps its text as its key
    keys = [t if mine and not more and isinstance(t, str) else
            config_key(f) if f is not None else ""
            for t, f, mine, more in zip(texts, fitted, own, extra)]
    return frame.assign(config=fitted, config_key=keys)[ok], sum(extra), ok.count(False)


def _config_keys(frame: pd.DataFrame) -> list[str]:
    """:func:`config_key` of each row's configuration (fitted rows carry theirs)."""
    if "config_key" in frame:
        return list(frame["config_key"])
    return [config_key(c) for c in frame["config"]]


def _parsed(config: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    """A store row's configuration as a mapping (the store keeps it as JSON text)."""
    if isinstance(config, str):
        return json.loads(config)
    return config if config is not None else {}


def _note_unfit(unknown: int, unfit: int, notes: list[str], warn: bool) -> None:
    if unknown or unfit:
        msg = (f"{unknown} store rows have hyperparameters this space lacks (ignored) and "
               f"{unfit} do not fit it (skipped)")
        notes.append(msg)
        if warn:
            warnings.warn(f"Warm start: {msg}.", stacklevel=4)


def _nearest_usable(target: TargetInfo, frame: pd.DataFrame, spec, k: int, notes: list[str],
                    warn: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` datasets nearest to ``target`` (:func:`_nearest`) among those with results of
    ``spec``'s trainable that fit its space, and those results, fitted. Datasets are taken in
    order of distance and only their rows are fitted (ConfigSpace checks a configuration in
    about a millisecond: a store of 100,000 rows took minutes when every row was fitted); one
    whose rows all fail to fit is passed over for the next. (Datasets without meta-features
    rank by their best accuracy among all their rows of the trainable, fitting or not.)"""
    frame = _finished_rows(frame, spec)
    order = _nearest(target, frame, frame["dataset"].nunique() if k else 0)
    kept, unknown, unfit = [], 0, 0
    for dataset in order.index:
        rows, lacks, fails = _fitted_rows(frame[frame["dataset"] == dataset], spec)
        unknown, unfit = unknown + lacks, unfit + fails
        if len(rows):
            kept.append(rows)
        if len(kept) == k:
            break
    _note_unfit(unknown, unfit, notes, warn)
    near = pd.concat(kept) if kept else frame.iloc[:0].copy()
    return order.loc[[rows["dataset"].iloc[0] for rows in kept]], near


#: fit_to_space's answers by (space fingerprint, configuration): the built-in priors repeat each
#: of their 201 configurations at 9 epochs on every domain, and ConfigSpace takes ~10 ms a fit.
_FITTED: dict[tuple[str, str], dict | None] = {}


def _fit_all(configs: Iterable[Mapping[str, Any]], space: ConfigurationSpace) -> list[dict | None]:
    """:func:`fit_to_space` of each configuration (each distinct one fitted once; copies out)."""
    from automl_chars.spaces.fingerprint import space_fingerprint

    fp = space_fingerprint(space)
    out = []
    for config in configs:
        key = (fp, config_key(config))
        if key not in _FITTED:
            if len(_FITTED) >= 100_000:
                _FITTED.clear()
            _FITTED[key] = fit_to_space(config, space)
        fitted = _FITTED[key]
        out.append(dict(fitted) if fitted is not None else None)
    return out


def _nearest(target: TargetInfo, frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` store datasets nearest to ``target`` by standardised meta-features (datasets
    without them come last, in order of their best accuracy)."""
    if frame.empty or k == 0:
        return pd.DataFrame(columns=["distance"])
    mine = target.meta_features
    cols = [f"mf_{n}" for n in mine if f"mf_{n}" in frame]
    per = frame.groupby("dataset")[cols].first() if cols else pd.DataFrame(index=frame["dataset"].unique())
    dist = pd.Series(np.inf, index=per.index)
    if cols:
        known = per.dropna()
        if len(known):
            both = pd.concat([known, pd.DataFrame([{c: mine[c[3:]] for c in cols}], index=["__t"])])
            z = (both - both.mean()) / both.std(ddof=0).replace(0, 1)
            d = np.sqrt(((z.drop(index="__t") - z.loc["__t"]) ** 2).sum(axis=1))
            dist.loc[d.index] = d
    best = frame.groupby("dataset")["val_acc"].max()
    order = sorted(dist.index, key=lambda n: (dist[n], -best[n]))
    return pd.DataFrame({"distance": dist[order]}, index=order).head(k)


def seed_portfolio(frame: pd.DataFrame, n: int, datasets: Sequence[str]) -> list[pd.Series]:
    """``n`` configurations of ``frame``'s results (columns dataset, config, budget, val_acc)
    that together rank well on every one of ``datasets`` (nearest first: it breaks ties).

    Each dataset ranks the configurations it ran, by the budget they reached, then their
    accuracy there, as quantiles (0 the best, 1 the worst; 0.5 where a dataset never ran one);
    each step takes the configuration of least mean quantile, every quantile capped by the
    portfolio's best on that dataset so far, and starts over among the rest once all are
    capped alike. One row per pick, the result that ranked it (with ``why``).
    """
    datasets = [d for d in datasets if d in set(frame["dataset"])]
    if frame.empty or n == 0 or not datasets:
        return []
    frame = frame[frame["dataset"].isin(datasets)]
    key = _config_keys(frame)
    top = (frame.assign(key=key).sort_values(["budget", "val_acc"], ascending=False)
           .drop_duplicates(["dataset", "key"]))  # each configuration's furthest, best result
    place = top.groupby("dataset").cumcount()
    size = top.groupby("dataset")["key"].transform("size")
    top = top.assign(q=(place / (size - 1).clip(lower=1)).to_numpy())
    ran = top.pivot(index="key", columns="dataset", values="q")[datasets]
    home = ran.idxmin(axis=1).map(datasets.index)  # where it ranks best, of the ones it ran on
    quantile = ran.fillna(0.5)
    # ties go to the configuration best on the nearest dataset, then to the better-ranked one
    ties = pd.DataFrame({"home": home, "best": ran.min(axis=1)}, index=quantile.index)
    left = quantile.loc[ties.sort_values(["home", "best"], kind="stable").index]
    capped = left.copy()
    picks = []
    while len(picks) < n and len(left):
        score = capped.mean(axis=1)
        pick = score.idxmin()  # the first of equals, in tie order
        where = datasets[home[pick]]
        row = top[(top["key"] == pick) & (top["dataset"] == where)].iloc[0].copy()
        row["why"] = (f"mean rank quantile {quantile.loc[pick].mean():.2f} over "
                      f"{len(datasets)} dataset(s), best on {where} "
                      f"({row['val_acc']:.3f} at budget {row['budget']:g})")
        picks.append(row)
        capped = capped.clip(upper=left.loc[pick], axis=1).drop(index=pick)
        left = left.drop(index=pick)
        if len(capped) and (capped.std(axis=0, ddof=0).fillna(0) == 0).all():
            capped = left.copy()
    return picks


def anytime_portfolio(frame: pd.DataFrame, n: int, datasets: Sequence[str],
                      window: float = ANYTIME_WINDOW) -> list[pd.Series]:
    """``n`` configurations of ``frame``'s results (columns dataset, config, budget, val_acc,
    seconds) that, trained side by side from the start, keep the regret of the best result so
    far lowest on ``datasets`` (nearest first: it breaks ties) over their first seconds.

    Each dataset's learning curves say when a configuration reports what: its results in order
    of ``seconds`` (the time to reach that budget from scratch; the budget itself where a
    dataset lacks times). Regret is normalised per dataset (0: its best result at its top
    budget, 1: the median configuration's result at its furthest budget) and averaged over
    ``window`` times the median time to the top budget. Each step takes the configuration that
    lowers the mean regret area most, given the ones taken (a dataset where it never ran gains
    nothing from it), and starts over among the rest once none lowers it; a configuration that
    broke off somewhere (status ``FAILED`` or ``ERROR``) is picked only once the others are
    taken. Unlike the mean-rank portfolio (:func:`seed_portfolio`) it values a configuration
    good early as well as good last. One row per pick: its best result at the furthest budget, on the dataset where that
    ranks best (with ``why``).
    """
    if frame.empty or n == 0:
        return []
    frame = frame[frame["dataset"].isin(datasets)]
    frame = frame.assign(key=_config_keys(frame))
    broke = set(frame["key"][frame["status"].isin(BROKE)]) if "status" in frame else set()
    frame = frame[frame["val_acc"].notna()]
    datasets = [d for d in datasets if d in set(frame["dataset"])]
    if frame.empty or not datasets:
        return []
    frame = frame.assign(near=frame["dataset"].map(datasets.index))
    # tie order: the configurations best on the nearest dataset first
    order = frame.sort_values(["near", "budget", "val_acc"], ascending=[True, False, False])
    keys = pd.Index(order["key"].drop_duplicates())
    curves = [_anytime_curves(frame[frame["dataset"] == d], keys, window) for d in datasets]

    def areas(incumbent):  # each key's mean regret area with the incumbent
        out = np.zeros(len(keys))
        for (ran, v, best, scale), inc in zip(curves, incumbent):
            mine = np.full(len(keys), _regret(inc, best, scale).mean())  # where a key never ran
            mine[ran] = _regret(np.maximum(v, inc), best, scale).mean(axis=1)
            out += mine
        return out / len(curves)

    def with_pick(incumbent, pick):
        return [np.maximum(inc, v[row]) if (row := np.searchsorted(ran, pick)) < len(ran)
                and ran[row] == pick else inc for (ran, v, _, _), inc in zip(curves, incumbent)]

    nothing = [np.full(v.shape[1], -np.inf) for _, v, _, _ in curves]
    incumbent, so_far = nothing, np.inf
    held = keys.isin(broke)  # broken off somewhere: a seed only once the others are taken
    free, picks = ~held, []
    while len(picks) < n and (free.any() or held.any()):
        if not free.any():
            free, held = held, np.zeros(len(keys), dtype=bool)
        area = areas(incumbent)
        if not (area[free] < so_far - 1e-12).any():  # nothing gains: start over among the rest
            incumbent, area = nothing, areas(nothing)
        pick = int(np.flatnonzero(free)[np.argmin(area[free])])  # the first of equals
        free[pick], so_far = False, area[pick]
        incumbent = with_pick(incumbent, pick)
        mine = order[order["key"] == keys[pick]].drop_duplicates("dataset")  # each's furthest best
        regret = [_regret(r.val_acc, *curves[r.near][2:]) for r in mine.itertuples()]
        row = mine.iloc[int(np.argmin(regret))].drop(["key", "near"])
        row["why"] = (f"regret area {area[pick]:.3f} over the first {window:g}x a top-budget "
                      f"run of {len(datasets)} dataset(s) with the picks so far, best on "
                      f"{row['dataset']} ({row['val_acc']:.3f} at budget {row['budget']:g})")
        picks.append(row)
    return picks


def _anytime_curves(rows: pd.DataFrame, keys: pd.Index, window: float, points: int = 200
                    ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One dataset's curves: the positions in ``keys`` of the configurations it ran (sorted),
    their best result so far at ``points`` times over ``window`` times its median time to the
    top budget (rows; -inf before the first), its best result at the top budget and that best
    minus the median configuration's result at its furthest budget (in a HyperBand sweep few
    reach the top: their median alone would leave no scale)."""
    seconds = rows["seconds"] if "seconds" in rows else pd.Series(np.nan, index=rows.index)
    clock = (seconds if seconds.notna().all() and (seconds > 0).all() else rows["budget"])
    clock = clock.astype(float).to_numpy()
    top = rows["budget"].to_numpy() == rows["budget"].max()
    furthest = rows.sort_values(["budget", "val_acc"]).drop_duplicates("key", keep="last")
    best, median = rows["val_acc"][top].max(), furthest["val_acc"].median()
    times = np.linspace(0, window * float(np.median(clock[top])), points + 1)[1:]
    ran, index = np.unique(keys.get_indexer(rows["key"]), return_inverse=True)
    sort = np.lexsort((clock, index))
    index, clock = index[sort], clock[sort]
    so_far = pd.Series(rows["val_acc"].to_numpy()[sort]).groupby(index).cummax().to_numpy()
    stride = clock.max() + times[-1] + 1.0  # one key's clock never reaches the next one's
    at = np.searchsorted(index * stride + clock,
                         np.arange(len(ran))[:, None] * stride + times[None, :], "right") - 1
    valid = (at >= 0) & (index[np.clip(at, 0, None)] == np.arange(len(ran))[:, None])
    curves = np.where(valid, so_far[np.clip(at, 0, None)], -np.inf)
    return ran, curves, best, max(best - median, 1e-12)


def _regret(acc, best: float, scale: float):
    """Normalised regret of accuracies (0: ``best``, 1: ``scale`` below it or worse)."""
    return np.clip((best - np.asarray(acc, dtype=float)) / scale, 0.0, 1.0)


def _priors(frame: pd.DataFrame, budgets: Sequence[int], cap: int) -> list[Prior]:
    """Quantile-normalised results at the sweep's budgets, evenly spread, ``cap`` per budget.

    A result counts at the largest of the sweep's budgets it reached; a trial that reported
    every epoch counts once per budget, with its result at the smallest epoch that reached it.
    """
    if frame.empty or cap == 0:
        return []
    budgets = sorted(budgets)
    rung = [max((b for b in budgets if b <= x), default=None) for x in frame["budget"]]
    key = _config_keys(frame)
    frame = (frame.assign(rung=rung, key=key).dropna(subset=["rung"]).sort_values("budget")
             .drop_duplicates(["dataset", "trial_id", "key", "rung"]))
    out = []
    for budget, rows in frame.groupby("rung"):
        q = rows.groupby("dataset")["val_acc"].rank(pct=True, method="average")
        q = (q - q.groupby(rows["dataset"]).transform("min")) / (
            q.groupby(rows["dataset"]).transform("max") - q.groupby(rows["dataset"]).transform("min")
        ).replace(0, 1)
        rows = rows.assign(q=q).sort_values("q")
        take = np.unique(np.linspace(0, len(rows) - 1, min(cap, len(rows))).round().astype(int))
        out += [Prior(r["config"], int(budget), -float(r["q"]), r["dataset"])
                for _, r in rows.iloc[take].iterrows()]
    return out


def _valid_unique(seeds: list[Seed], space: ConfigurationSpace, notes: list[str]) -> list[Seed]:
    out, seen = [], set()
    for s in seeds:
        config = fit_to_space(s.config, space)
        if config is None:
            notes.append(f"seed {s.suggested_by} does not fit the space; skipped")
            continue
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append(Seed(config, s.suggested_by, s.reason))
    return out


#: Version of :meth:`WarmStartSearcher.save`'s file (2: the wrapped searcher's own saved state).
SEARCHER_STATE_FORMAT = 2


class WarmStartSearcher(Searcher):
    """Seeds first, then BOHB, whose model starts from the plan's priors (module docstring)."""

    def __init__(self, bohb: BOHBSearcher, plan: WarmStartPlan):
        super().__init__(metric=bohb.metric, mode=bohb.mode)
        self.bohb = bohb
        self.pending = list(plan.seeds)
        self.priors_left: dict[int, int] = {}
        self.prior_q: dict[int, list[float]] = {}  # quantile of each remaining prior, in order
        self.target_losses: dict[int, tuple[float, float]] = {}  # budget -> (best, worst)
        try:
            self._feed_priors(plan.priors)
        except Exception:  # leave BOHB as it came, so a caller can go on without the priors
            hpbandster_compat.forget_results(bohb.bohber)
            raise

    def _feed_priors(self, priors: list[Prior]) -> None:
        """Priors into hpbandster's model, smallest budget first, the model fitted once per
        budget; remembered (by position) so they can be retired as the target's results come."""
        by_budget: dict[int, list[Prior]] = {}
        for p in priors:
            by_budget.setdefault(p.budget, []).append(p)
        for budget in sorted(by_budget):
            group = by_budget[budget]
            for i, p in enumerate(group):
                hpbandster_compat.add_prior(self.bohb.bohber, p.config, budget, p.loss,
                                            ("prior", budget, i), update_model=i == len(group) - 1)
            self.priors_left[budget] = len(group)
            self.prior_q[budget] = [-p.loss for p in group]

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.bohb.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        if self.pending:
            s = self.pending.pop(0)
            return self.bohb.adopt(trial_id, s.config, s.suggested_by)
        return self.bohb.suggest(trial_id)

    def adopt(self, trial_id: str, config: dict, suggested_by: str) -> dict:
        """A configuration a searcher wrapping this one suggests (:meth:`BOHBSearcher.adopt`)."""
        return self.bohb.adopt(trial_id, config, suggested_by)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        budget = (result.get("hyperband_info") or {}).get("budget")
        if budget is not None and self.priors_left.get(budget):
            self._retire_prior(budget)
            self._rescale_priors(budget, result.get(self.metric))
        self.bohb.on_trial_result(trial_id, result)

    def _rescale_priors(self, budget: int, value: float | None) -> None:
        """Maps the priors at ``budget`` onto the target's own losses there: the best quantile
        onto the target's best result so far, the worst onto its worst. Other datasets'
        accuracies are not comparable, and raw quantiles would outrank the target's results."""
        op = -1.0 if self.mode == "max" else 1.0  # hpbandster minimises, as Ray's TuneBOHB
        if value is None or not np.isfinite(value):
            return
        loss = op * float(value)
        best, worst = self.target_losses.get(budget, (loss, loss))
        best, worst = min(best, loss), max(worst, loss)
        self.target_losses[budget] = (best, worst)
        for i, q in enumerate(self.prior_q[budget]):
            hpbandster_compat.set_loss(self.bohb.bohber, budget, i, worst + q * (best - worst))

    def _retire_prior(self, budget: int) -> None:
        """Drops the priors' middle one at ``budget`` (the target's result takes its place);
        priors sit first in hpbandster's lists because they were fed before any trial."""
        n = self.priors_left[budget]
        idx = n // 2
        hpbandster_compat.retire_prior(self.bohb.bohber, budget, idx)
        del self.prior_q[budget][idx]
        self.priors_left[budget] = n - 1

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.bohb.on_trial_complete(trial_id, result, error)

    def on_pause(self, trial_id: str) -> None:
        self.bohb.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.bohb.on_unpause(trial_id)

    def save(self, checkpoint_path: str) -> None:
        """Its own state, with the wrapped searcher's (see :func:`save_wrapped`)."""
        save_wrapped(checkpoint_path, self.bohb, "bohb_state", {
            "format": SEARCHER_STATE_FORMAT, "pending": self.pending,
            "priors_left": self.priors_left, "prior_q": self.prior_q,
            "target_losses": self.target_losses})

    def restore(self, checkpoint_path: str) -> None:
        """The state :meth:`save` wrote; the wrapped searcher restores its own."""
        state = restore_wrapped(checkpoint_path, self.bohb, "bohb_state", SEARCHER_STATE_FORMAT,
                                "warm-start searcher")
        self.pending, self.priors_left = state["pending"], state["priors_left"]
        self.prior_q, self.target_losses = state["prior_q"], state["target_losses"]


__all__ = ["DEFAULT_PRIORS", "METHODS", "SEED_CHOICES", "Evidence", "Prior", "Seed", "TargetInfo", "WarmStart", "WarmStartPlan",
           "WarmStartSearcher", "fit_to_space", "gather_evidence", "plan_from", "plan_warm_start",
           "builtin_priors", "seed_portfolio", "anytime_portfolio"]
