"""Every use of hpbandster's internals, in one place (as :mod:`~automl_chars.ray_compat`
is for Ray's): the warm start feeds results of other datasets into BOHB's model, retires them and
rescales them, which hpbandster offers no API for; and hpbandster's KDEs warn through statsmodels.

hpbandster 0.7.4 is unmaintained; ``pyproject.toml`` pins ``>=0.7.4`` and each function here is
tested against it in ``tests/search/test_hpbandster_compat.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from hpbandster.core.dispatcher import Job
from hpbandster.optimizers.config_generators.bohb import BOHB

#: statsmodels (>= 0.15) warns whenever hpbandster builds a KDE without a random generator:
#: hpbandster passes none, and the sweep seeds numpy's global one for it (``np.random.seed``),
#: which is what statsmodels still uses. The user cannot act on it, so it is hidden, this one
#: message only; when statsmodels changes the default, the test of this filter fails.
STATSMODELS_SEED_WARNING = "After 0.17 or January 2028"
warnings.filterwarnings("ignore", message=STATSMODELS_SEED_WARNING, category=FutureWarning)


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
