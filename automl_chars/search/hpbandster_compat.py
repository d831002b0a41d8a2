"""Every use of hpbandster's internals, in one place (as :mod:`~automl_chars.ray_compat`
is for Ray's): the warm start feeds results of other datasets into BOHB's model, retires them and
rescales them, which hpbandster offers no API for; hpbandster's KDEs warn through statsmodels; and
its model-based pick draws its candidates one scalar at a time through scipy (see
:class:`FastTruncnorm`) and scores each through statsmodels' per-variable kernel loop (see
:class:`FastKDE`), and it refits its model after every result with a per-row search for each
missing value's donors (see :func:`impute_conditional_data`).

hpbandster 0.7.4 is unmaintained; ``pyproject.toml`` pins ``>=0.7.4`` and each function here is
tested against it in ``tests/search/test_hpbandster_compat.py``.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.stats
from hpbandster.core.dispatcher import Job
from hpbandster.optimizers.config_generators import bohb as _bohb_module
from hpbandster.optimizers.config_generators.bohb import BOHB
from scipy.special import ndtr, ndtri
from statsmodels.nonparametric._kernel_base import _adjust_shape
from statsmodels.nonparametric.kernel_density import KDEMultivariate

#: statsmodels (>= 0.15) warns whenever hpbandster builds a KDE without a random generator:
#: hpbandster passes none, and the sweep seeds numpy's global one for it (``np.random.seed``),
#: which is what statsmodels still uses. The user cannot act on it, so it is hidden, this one
#: message only; when statsmodels changes the default, the test of this filter fails.
STATSMODELS_SEED_WARNING = "After 0.17 or January 2028"
warnings.filterwarnings("ignore", message=STATSMODELS_SEED_WARNING, category=FutureWarning)


class FastTruncnorm:
    """``scipy.stats.truncnorm.rvs(a, b, loc, scale)`` for one scalar, as hpbandster's
    ``BOHB.get_config`` calls it: once per continuous hyperparameter of each of ``num_samples``
    candidates (64 x 40-odd dimensions here, ~3,000 calls per model-based configuration), where
    scipy's argument handling makes each call ~0.2 ms: most of the driver's time per trial in a
    long sweep (benchmarks/load.py). The same draw from the same stream: one uniform from numpy's
    global generator (what scipy's default inverse-CDF sampler takes) through the truncated
    normal's inverse CDF, in the tail where it is precise; scipy itself where that underflows."""

    @staticmethod
    def rvs(a: float, b: float, loc: float = 0.0, scale: float = 1.0) -> float:
        if not (a < b and scale > 0):
            return scipy.stats.truncnorm.rvs(a, b, loc=loc, scale=scale)  # scipy's own errors
        q = np.random.uniform()
        flip = a > 0  # sample the mirror image in the lower tail, where ndtr keeps its digits
        lo, hi = (-b, -a) if flip else (a, b)
        p_lo, p_hi = ndtr(lo), ndtr(hi)
        if not p_hi > p_lo:  # both bounds deep in one tail: the masses underflow
            return float(loc + scale * scipy.stats.truncnorm.ppf(q, a, b))
        x = float(ndtri(p_lo + (1.0 - q if flip else q) * (p_hi - p_lo)))
        x = min(max(-x if flip else x, a), b)  # rounding never leaves the interval
        return loc + scale * x


#: hpbandster's BOHB samples through ``scipy.stats`` as ``sps``; it gets scipy.stats with
#: :class:`FastTruncnorm` in place of ``truncnorm`` (tested against scipy's draws).
_bohb_module.sps = types.SimpleNamespace(**{**vars(scipy.stats), "truncnorm": FastTruncnorm})


class FastKDE(KDEMultivariate):
    """statsmodels' ``KDEMultivariate`` whose ``pdf`` takes every variable of a point at once.

    hpbandster scores each of its ``num_samples`` candidates per model-based configuration with
    the good and the bad KDE's ``pdf`` at one point; statsmodels' ``gpke`` loops over the 48-odd
    variables in Python, so a call costs ~1 ms and a configuration ~0.15 s once the bad KDE holds
    a few hundred results: the growth of the driver's time per trial in a long sweep
    (benchmarks/load.py). Here the same kernels (Gaussian for ``c``, Aitchison-Aitken with the
    data's levels for ``u``) fill the same (observations x variables) array in one step per kind,
    multiplied and summed as statsmodels does: the same densities (tested against it). Other
    variable types (``o``) take statsmodels' own path."""

    def pdf(self, data_predict=None):
        if data_predict is None or set(self.var_type) - {"c", "u"}:
            return super().pdf(data_predict)
        points = _adjust_shape(data_predict, self.k_vars)
        cont, unord, data_c, data_u, denom, same, other, norm = self._kernel_constants()
        kval = np.empty(self.data.shape)
        out = []
        for point in points:
            # statsmodels' operations in its order, on the columns taken out once per KDE
            gauss = data_c - point[cont]
            np.square(gauss, out=gauss)
            np.negative(gauss, out=gauss)
            np.divide(gauss, denom, out=gauss)
            np.exp(gauss, out=gauss)
            kval[:, cont] = (1.0 / np.sqrt(2 * np.pi)) * gauss
            kval[:, unord] = np.where(data_u == point[unord], same, other)
            out.append((kval.prod(axis=1) / norm).sum(axis=0) / self.nobs)
        return np.squeeze(out)

    def _kernel_constants(self) -> tuple:
        """What every ``pdf`` call of this data and bandwidth shares: the continuous and the
        unordered columns and their data, the Gaussian's denominator, the Aitchison-Aitken
        kernel's values on and off the point (the latter bandwidth / (levels - 1), the data's
        levels) and the bandwidths' product, kept until either changes."""
        data, bw = self.data, np.asarray(self.bw, dtype=float)
        key = (id(data), data.shape, bw.tobytes())
        if getattr(self, "_constants_key", None) != key:
            kinds = np.array(list(self.var_type))
            cont, unord = kinds == "c", kinds == "u"
            levels = np.array([np.unique(data[:, j]).size for j in np.flatnonzero(unord)])
            with np.errstate(divide="ignore", invalid="ignore"):  # a 1-level column: inf, as in statsmodels
                other = bw[unord] / (levels - 1)
            self._constants_key = key
            self._constants = (cont, unord, data[:, cont], data[:, unord], bw[cont] ** 2 * 2.0,
                               1 - bw[unord], other, np.prod(bw[cont]))
        return self._constants


#: hpbandster's BOHB builds its KDEs through ``statsmodels.api`` as ``sm``; it gets
#: :class:`FastKDE` in their place (``sm.nonparametric.KDEMultivariate`` is all it uses).
_bohb_module.sm = types.SimpleNamespace(
    nonparametric=types.SimpleNamespace(KDEMultivariate=FastKDE))


#: hpbandster's own ``BOHB.impute_conditional_data`` (the tests compare against it).
HPBANDSTER_IMPUTE = BOHB.impute_conditional_data


def impute_conditional_data(self: BOHB, array: np.ndarray) -> np.ndarray:
    """hpbandster's ``BOHB.impute_conditional_data`` with each column's donor rows (the rows
    where it is set) found once per call instead of once per missing value of every row, rows
    with nothing missing copied as they are, and a donor drawn as ``np.random.choice`` draws it
    (one ``randint`` from the global generator) without its per-call argument handling: at 500
    results, its refits after each result took ~0.1 s, most of the driver's time per trial
    (benchmarks/load.py). The same loop otherwise, quirks included (a row whose only missing
    value is the first column keeps it: hpbandster tests ``np.any`` of the indices), and the
    same draws from numpy's global generator, so the same model (tested against hpbandster's)."""
    return_array = np.array(array, dtype=float, copy=True)
    missing = np.isnan(return_array)
    donors: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(missing.any(axis=1)):
        datum = return_array[i]  # a view: filled in place
        nan_indices = missing[i].nonzero()[0]
        while len(nan_indices) > 1 or (len(nan_indices) == 1 and nan_indices[0] != 0):
            nan_idx = int(nan_indices[0])
            if nan_idx not in donors:
                donors[nan_idx] = np.flatnonzero(np.isfinite(array[:, nan_idx]))
            valid_indices = donors[nan_idx]
            if len(valid_indices) > 0:
                row_idx = valid_indices[np.random.randint(0, len(valid_indices))]
                datum[nan_indices] = array[row_idx, nan_indices]
            else:  # no row sets it: a random valid value, as hpbandster draws it
                t = self.vartypes[nan_idx]
                datum[nan_idx] = np.random.rand() if t == 0 else np.random.randint(t)
            nan_indices = np.isnan(datum).nonzero()[0]
    return return_array


BOHB.impute_conditional_data = impute_conditional_data


def add_prior(bohb: BOHB, config: Mapping[str, Any], budget: int, loss: float, key: Any,
              update_model: bool) -> None:
    """Feeds one result (``loss``, hpbandster minimises) of ``config`` at ``budget`` into BOHB's
    model, as if a job had returned it; the KDE is refitted when ``update_model``. BOHB drops a
    result at a budget below one that already has a model, so feed the smallest budget first."""
    job = Job(key, config=dict(config), budget=budget)
    job.result = {"loss": loss}
    bohb.new_result(job, update_model=update_model)


def forget_results(bohb: BOHB) -> None:
    """Empties BOHB's model data (results at every budget, their rankings, the KDEs), as a fresh
    ``BOHB`` starts: undoes priors fed before any trial ran."""
    for attr in ("configs", "losses", "good_config_rankings", "kde_models"):
        getattr(bohb, attr).clear()


def results_at(bohb: BOHB, budget: int) -> int:
    """How many results BOHB's model holds at ``budget``."""
    return len(bohb.losses.get(budget, []))


def retire_prior(bohb: BOHB, budget: int, index: int) -> None:
    """Removes the ``index``-th result at ``budget`` from BOHB's model data (it is not refitted
    until the next result arrives, as hpbandster does for its own results)."""
    del bohb.configs[budget][index]
    del bohb.losses[budget][index]


def set_loss(bohb: BOHB, budget: int, index: int, loss: float) -> None:
    """Changes the loss of the ``index``-th result at ``budget`` (used at the next refit)."""
    bohb.losses[budget][index] = loss


def loss_of(bohb: BOHB, budget: int, index: int) -> float:
    return bohb.losses[budget][index]
