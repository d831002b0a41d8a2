"""Probabilistic matrix factorisation warm start (Fusi, Sheth & Elibol, 2018): configurations
embedded by how they perform across earlier tasks, a new task's next trials picked by expected
improvement in that embedding.

- **Matrix** (:func:`fit_pmf`): rows are the configurations of the evidence (fitted to the
  sweep's space), columns the (dataset, budget) pairs it holds, budgets being the sweep's rungs
  (a result counts at the largest rung it reached). Each column is normalised to normal scores
  (``Φ⁻¹`` of its rank quantiles, a Gaussian copula: other datasets' accuracies differ in
  scale, and a diverged run is one rank below the rest, not an outlier that dominates a fit).
- **Factors** (:func:`factorise`): ``Y ≈ U Vᵀ`` on the observed entries only (the store is
  sparse, a learning-curve table dense), the MAP estimate of PMF (Salakhutdinov & Mnih) under
  Gaussian priors: alternating ridge least squares, deterministic given a seed. ``U`` places
  configurations that rank alike across tasks near each other; the completed matrix ``U Vᵀ``
  fills what a dataset never ran.
- **New task** (:meth:`PMFModel.propose`): a Gaussian process (scikit-learn's) over inputs
  ``[U_c, log budget]`` whose prior mean is each configuration's mean normal score over the other
  datasets at that budget; with no result of the target it proposes the best configuration on
  average (as a zero-shot portfolio's first pick). The target's results enter on the same scale
  (its level fitted, its spread taken from the sources'), so the GP learns where the target
  departs from the average and carries it to configurations with similar factors: the target's
  position in the latent space is inferred from its first results. Next trial: the candidate not
  proposed yet of largest expected improvement at the top budget; trials still running count at
  their predicted value (kriging believer), so trials proposed at once spread out.

:class:`PMFSearcher` wraps a searcher that can :meth:`adopt` configurations (the warm start's,
holding BOHB with its priors): it proposes the first ``trials`` trials, hands every result on
(BOHB learns from them), then hands over to BOHB. Its state is saved with the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ray.tune.search import Searcher
from scipy.stats import norm, rankdata

from automl_chars.search.searcher import restore_wrapped, save_wrapped
from automl_chars.spaces.values import config_key

#: Latent dimensions of the configurations (at most the matrix's columns).
RANK = 5
#: Ridge penalty of the factorisation (the Gaussian priors' precision relative to the noise's).
REGULARISATION = 0.1
#: Alternating least-squares sweeps.
ITERATIONS = 50
#: The GP's noise variance, as a share of its signal variance.
NOISE_SHARE = 0.1
#: Version of :meth:`PMFSearcher.save`'s file.
PMF_STATE_FORMAT = 1


@dataclass(frozen=True)
class Factors:
    """``Y ≈ rows @ cols.T`` (``rows``: one latent vector per row of ``Y``)."""

    rows: np.ndarray
    cols: np.ndarray

    def complete(self) -> np.ndarray:
        return self.rows @ self.cols.T


def factorise(y: np.ndarray, rank: int = RANK, reg: float = REGULARISATION,
              iterations: int = ITERATIONS, seed: int = 0) -> Factors:
    """Latent factors of ``y`` (NaN: missing) fitted on its observed entries by alternating
    ridge least squares (PMF's MAP estimate): each row's factors solve a ridge regression on the
    columns it has, then each column's on the rows it has. Deterministic given ``seed``.

    Raises:
        ValueError: ``y`` is not a 2-D matrix with an observed entry, or ``rank`` < 1.
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or not np.isfinite(y).any():
        raise ValueError(f"factorise needs a 2-D matrix with observed entries, got shape {y.shape}.")
    if rank < 1:
        raise ValueError(f"factorise rank must be >= 1, got {rank}.")
    seen = np.isfinite(y)
    filled = np.where(seen, y, 0.0)
    rng = np.random.default_rng(seed)
    u = rng.normal(scale=0.1, size=(y.shape[0], rank))
    v = rng.normal(scale=0.1, size=(y.shape[1], rank))
    eye = reg * np.eye(rank)
    for _ in range(iterations):
        u = _ridge(v, filled, seen, eye)
        v = _ridge(u, filled.T, seen.T, eye)
    return Factors(u, v)


def _ridge(other: np.ndarray, y: np.ndarray, seen: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Each row of ``y``'s factors given the other side's ``other``, on its seen entries."""
    out = np.zeros((y.shape[0], other.shape[1]))
    for i in range(y.shape[0]):
        o = other[seen[i]]
        out[i] = np.linalg.solve(o.T @ o + eye, o.T @ y[i, seen[i]])
    return out


def normal_scores(values: np.ndarray) -> np.ndarray:
    """``Φ⁻¹`` of each finite value's rank quantile (ties averaged), NaN kept: a column on the
    normal scale whatever its own scale and outliers."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    seen = np.isfinite(values)
    n = int(seen.sum())
    if n:
        out[seen] = norm.ppf(rankdata(values[seen]) / (n + 1))
    return out


@dataclass
class PMFModel:
    """The factorised matrix and what the GP of a new task needs (see the module docstring).

    Attributes:
        candidates: the configurations a PMF trial can be (the matrix's rows).
        latent: their factors, one row each.
        budgets: the sweep's budgets, ascending (the prior mean's columns).
        prior_mean: each candidate's mean normal score over the datasets at each budget (the
            completed matrix where a dataset never ran it).
        spread: per budget, the sources' typical standard deviation of ``val_acc`` across
            configurations (a robust one, from the interquartile range): what one normal-score
            unit is in the target's accuracy.
        amplitude: the GP's signal variance: how far a dataset's normal scores typically depart
            from the mean over datasets.
        length_scale: the GP's length scale in the latent space (median distance of candidates).
        datasets: the datasets of the matrix.
        observed: the share of the matrix's entries observed.
    """

    candidates: list[dict]
    latent: np.ndarray
    budgets: tuple[int, ...]
    prior_mean: np.ndarray
    spread: np.ndarray
    amplitude: float
    length_scale: float
    datasets: list[str] = field(default_factory=list)
    observed: float = 1.0

    @property
    def top(self) -> int:
        return len(self.budgets) - 1

    def summary(self) -> dict:
        """What the model holds, as plain data (for ``warm_start.json``)."""
        best = int(np.argmax(self.prior_mean[:, self.top]))
        return {"candidates": len(self.candidates), "datasets": list(self.datasets),
                "budgets": list(self.budgets), "rank": int(self.latent.shape[1]),
                "observed": round(float(self.observed), 3),
                "first_pick": {"config": self.candidates[best],
                               "mean_normal_score": round(float(self.prior_mean[best, self.top]), 3)}}

    def posterior(self, observations: Sequence[tuple[int, int, float]],
                  pending: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """The GP's mean and standard deviation (normal-score units) of every candidate at the
        top budget, given the target's ``(candidate, budget index, val_acc)`` results and the
        candidates still running (``pending``, at their predicted value)."""
        mean_top = self.prior_mean[:, self.top].copy()
        if not observations and not pending:
            return mean_top, np.full(len(mean_top), np.sqrt(self.amplitude))
        gp = self._gp()
        test = self._inputs(np.arange(len(self.candidates)), np.full(len(self.candidates), self.top))
        idx = np.array([o[0] for o in observations], dtype=int)
        bud = np.array([o[1] for o in observations], dtype=int)
        resid = self._scores(observations) - self.prior_mean[idx, bud]
        x = self._inputs(idx, bud)
        if len(pending):
            believed = (gp.fit(x, resid).predict(test)[list(pending)] if len(idx)
                        else np.zeros(len(pending)))
            x = np.vstack([x, test[list(pending)]])
            resid = np.concatenate([resid, believed])
        mu, sd = gp.fit(x, resid).predict(test, return_std=True)
        return mean_top + mu, sd

    def propose(self, observations: Sequence[tuple[int, int, float]], pending: Sequence[int] = (),
                exclude: set[int] | frozenset[int] = frozenset()) -> tuple[int, float] | None:
        """The candidate (not in ``exclude``) of largest expected improvement at the top budget
        and that improvement; None when every candidate is excluded. With no result and nothing
        running: the best candidate on average."""
        allowed = np.array([i not in exclude for i in range(len(self.candidates))])
        if not allowed.any():
            return None
        mu, sd = self.posterior(observations, pending)
        if not observations and not len(pending):
            score = mu
        else:
            known = sorted({o[0] for o in observations} | set(pending))
            score = expected_improvement(mu, sd, float(mu[known].max()))
        score = np.where(allowed, score, -np.inf)
        pick = int(np.argmax(score))
        return pick, float(score[pick])

    def _gp(self):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        q = self.latent.shape[1]
        span = max(float(np.log(self.budgets[-1] / self.budgets[0])), 1.0)
        kernel = (ConstantKernel(self.amplitude, "fixed")
                  * Matern([self.length_scale] * q + [span], "fixed", nu=2.5)
                  + WhiteKernel(NOISE_SHARE * self.amplitude, "fixed"))
        # fixed hyperparameters: a handful of target results cannot estimate them
        return GaussianProcessRegressor(kernel, optimizer=None, normalize_y=False)

    def _inputs(self, idx: np.ndarray, bud: np.ndarray) -> np.ndarray:
        logb = np.log(np.asarray(self.budgets, dtype=float))[bud]
        return np.column_stack([self.latent[idx], logb])

    def _scores(self, observations: Sequence[tuple[int, int, float]]) -> np.ndarray:
        """The target's results on the normal-score scale, per budget: one unit is the sources'
        ``spread`` there; the level is fitted so that the results' median departure from the
        prior mean is 0. (One result alone says nothing of the level; from two on, their
        difference is information.) Clipped to the copula's range."""
        idx = np.array([o[0] for o in observations], dtype=int)
        bud = np.array([o[1] for o in observations], dtype=int)
        val = np.array([o[2] for o in observations], dtype=float)
        out = np.zeros(len(val))
        for b in np.unique(bud):
            at = bud == b
            z = val[at] / self.spread[b]
            out[at] = z - np.median(z - self.prior_mean[idx[at], b])
        return np.clip(out, -4.0, 4.0)


def expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """EI of a maximisation over ``best`` for Gaussian predictions ``mu``, ``sd``."""
    sd = np.maximum(sd, 1e-12)
    u = (mu - best) / sd
    return (mu - best) * norm.cdf(u) + sd * norm.pdf(u)


def fit_pmf(frame: pd.DataFrame, budgets: Sequence[int], rank: int = RANK,
            seed: int = 0) -> PMFModel | None:
    """The model of ``frame``'s results (columns ``dataset``, ``config`` (fitted to the space),
    ``budget``, ``val_acc``) at the sweep's ``budgets``; None when they hold no result at any.

    A result counts at the largest of ``budgets`` it reached (once per configuration, dataset and
    rung: the mean of its repeats); a budget no result reached takes the prior mean of the
    nearest one below it that has results (or above, for the smallest ones).
    """
    budgets = sorted(int(b) for b in budgets)
    if frame.empty or not budgets:
        return None
    rung = [max((b for b in budgets if b <= x), default=None) for x in frame["budget"]]
    frame = frame.assign(rung=rung, key=[config_key(c) for c in frame["config"]])
    frame = frame.dropna(subset=["rung", "val_acc"])
    if frame.empty:
        return None
    cells = frame.groupby(["key", "dataset", "rung"])["val_acc"].mean()
    raw = cells.unstack(["dataset", "rung"]).sort_index(axis=1)
    keys = list(raw.index)  # sorted: a stable candidate order
    first = frame.drop_duplicates("key").set_index("key")["config"]
    y = np.column_stack([normal_scores(raw[c].to_numpy()) for c in raw.columns])
    factors = factorise(y, rank=min(rank, y.shape[1]), seed=seed)
    completed = np.where(np.isfinite(y), y, factors.complete())
    cols = pd.MultiIndex.from_tuples(raw.columns, names=["dataset", "rung"])
    have = sorted(set(cols.get_level_values("rung")))
    mean, spread = np.zeros((len(keys), len(budgets))), np.zeros(len(budgets))
    for j, b in enumerate(budgets):
        near = max((h for h in have if h <= b), default=min(have))
        at = np.asarray(cols.get_level_values("rung") == near)
        mean[:, j] = completed[:, at].mean(axis=1)
        iqr = raw.loc[:, at].quantile(0.75) - raw.loc[:, at].quantile(0.25)
        spread[j] = max(float(np.nanmedian(iqr.to_numpy())) / 1.349, 1e-3)
    depart = [(y[:, c] - mean[:, budgets.index(int(r))])[np.isfinite(y[:, c])]
              for c, r in enumerate(cols.get_level_values("rung")) if int(r) in budgets]
    variances = [d.var() for d in depart if len(d) > 1]
    several = len(set(cols.get_level_values("dataset"))) > 1
    amplitude = float(np.mean(variances)) if several and variances else 1.0
    amplitude = amplitude if amplitude > 1e-6 else 1.0  # one dataset: no departures to measure
    latent = factors.rows
    dist = np.sqrt(((latent[:, None] - latent[None]) ** 2).sum(-1))
    upper = dist[np.triu_indices(len(latent), 1)]
    length = float(np.median(upper)) if len(upper) and np.median(upper) > 0 else 1.0
    return PMFModel([dict(first[k]) for k in keys], latent, tuple(budgets), mean, spread,
                    amplitude, length, sorted(set(cols.get_level_values("dataset"))),
                    float(np.isfinite(y).mean()))


class PMFSearcher(Searcher):
    """The PMF model's picks for the first ``trials`` trials, then the wrapped searcher's
    (module docstring). ``inner`` adopts the picks (:meth:`BOHBSearcher.adopt`, or a warm-start
    searcher's) and receives every call, so BOHB learns from every result."""

    def __init__(self, inner: Searcher, model: PMFModel, trials: int):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.model, self.left = inner, model, int(trials)
        self.proposed: dict[str, int] = {}  # trial id -> candidate
        self.results: dict[tuple[int, int], float] = {}  # (candidate, budget index) -> val_acc
        self.done: set[str] = set()

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        if self.left > 0:
            pick = self.model.propose(self.observations(), self.pending(),
                                      exclude=set(self.proposed.values()))
            if pick is not None:
                self.left -= 1
                self.proposed[trial_id] = pick[0]
                return self.inner.adopt(trial_id, self.model.candidates[pick[0]], "pmf")
            self.left = 0
        return self.inner.suggest(trial_id)

    def observations(self) -> list[tuple[int, int, float]]:
        """The target's results of the PMF trials: ``(candidate, budget index, val_acc)``."""
        return [(c, b, v) for (c, b), v in sorted(self.results.items())]

    def pending(self) -> list[int]:
        """PMF trials still running without a result at the top budget."""
        top = self.model.top
        return [c for t, c in self.proposed.items()
                if t not in self.done and (c, top) not in self.results]

    def _record(self, trial_id: str, result: dict | None) -> None:
        if trial_id not in self.proposed or not result:
            return
        budget = (result.get("hyperband_info") or {}).get("budget", result.get("training_iteration"))
        value = result.get(self.metric)
        if budget not in self.model.budgets or value is None or not np.isfinite(value):
            return
        sign = 1.0 if self.mode == "max" else -1.0
        self.results[self.proposed[trial_id], self.model.budgets.index(budget)] = sign * float(value)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._record(trial_id, result)
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if not error:
            self._record(trial_id, result)
        self.done.add(trial_id)
        self.inner.on_trial_complete(trial_id, result, error)

    def on_pause(self, trial_id: str) -> None:
        self.inner.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.inner.on_unpause(trial_id)

    def save(self, checkpoint_path: str) -> None:
        """Its state with the wrapped searcher's (see :func:`save_wrapped`)."""
        save_wrapped(checkpoint_path, self.inner, "inner_state", {
            "format": PMF_STATE_FORMAT, "left": self.left, "proposed": self.proposed,
            "results": self.results, "done": self.done, "model": self.model})

    def restore(self, checkpoint_path: str) -> None:
        """The state :meth:`save` wrote; the wrapped searcher restores its own."""
        state = restore_wrapped(checkpoint_path, self.inner, "inner_state", PMF_STATE_FORMAT,
                                "PMF searcher")
        self.left, self.proposed, self.results = state["left"], state["proposed"], state["results"]
        self.done, self.model = state["done"], state["model"]

__all__ = ["Factors", "PMFModel", "PMFSearcher", "expected_improvement", "factorise", "fit_pmf",
           "normal_scores"]
