"""Rankings of subnets: the supernet's against standalone training (pure pandas and scipy)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
from scipy import stats

from automl_chars.errors import InvalidConfigError

#: Columns of :func:`ranking_table`, in order (seed 002's table, then ranks and fine-tuning).
RANKING_COLUMNS = ("subnet", "supernet_acc", "standalone_acc", "supernet_rank", "standalone_rank",
                   "finetuned_acc", "sampled")


def ranks(values: pd.Series) -> pd.Series:
    """1 = best (highest); ties share the best rank of their group."""
    return values.rank(ascending=False, method="min").astype("Int64")


def ranking_table(supernet: Mapping[str, float], standalone: Mapping[str, float],
                  finetuned: Mapping[str, float] | None = None,
                  sampled: Mapping[str, int] | None = None,
                  order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per subnet: its top-1 in the supernet and standalone, both ranks, its top-1
    after fine-tuning (NaN unless fine-tuned) and how many rounds trained it in the supernet.

    Every subnet has a supernet accuracy; ``standalone`` may cover a sample of them (the others'
    standalone accuracy and rank are NaN, and the correlations leave them out). ``order``
    (default: sorted names) orders the rows.
    """
    extra = sorted(set(standalone) - set(supernet))
    if extra:
        raise InvalidConfigError(f"Subnets {extra} have a standalone accuracy but no supernet "
                                 f"one; the ranking needs the supernet's for every subnet.")
    names = list(order) if order is not None else sorted(supernet)
    table = pd.DataFrame({
        "subnet": names,
        "supernet_acc": [float(supernet[n]) for n in names],
        "standalone_acc": [float(standalone.get(n, math.nan)) for n in names],
    })
    table["supernet_rank"] = ranks(table["supernet_acc"])
    table["standalone_rank"] = ranks(table["standalone_acc"])
    table["finetuned_acc"] = [float((finetuned or {}).get(n, math.nan)) for n in names]
    table["sampled"] = [int((sampled or {}).get(n, 0)) for n in names]
    return table[list(RANKING_COLUMNS)]


def correlations(table: pd.DataFrame, a: str = "supernet_acc",
                 b: str = "standalone_acc") -> dict[str, float]:
    """Kendall's tau and Spearman's rho between two accuracy columns (NaN rows left out; NaN
    when fewer than two subnets or a column is constant)."""
    t = table[[a, b]].dropna()
    if len(t) < 2 or t[a].nunique() < 2 or t[b].nunique() < 2:
        return {"kendall_tau": math.nan, "spearman": math.nan}
    return {"kendall_tau": float(stats.kendalltau(t[a], t[b]).statistic),
            "spearman": float(stats.spearmanr(t[a], t[b]).statistic)}


def best(table: pd.DataFrame, column: str) -> str:
    """The subnet with the highest ``column`` (the first in table order among ties)."""
    t = table.dropna(subset=[column])
    if t.empty:
        raise InvalidConfigError(f"No subnet has a value in {column!r}.")
    return str(t.loc[t[column].idxmax(), "subnet"])


def top1_regret(table: pd.DataFrame, column: str = "supernet_acc",
                reference: str = "standalone_acc") -> float:
    """How much standalone top-1 choosing by ``column`` loses: among the subnets with a
    ``reference`` value, the best ``reference`` minus that of the one ``column`` ranks first
    (0: the right choice)."""
    t = table.dropna(subset=[reference])
    if t.empty:
        raise InvalidConfigError(f"No subnet has a value in {reference!r}.")
    chosen = best(t, column)
    return float(t[reference].max() - t.set_index("subnet").loc[chosen, reference])


def ordering_errors(table: pd.DataFrame, column: str, subnets: Sequence[str] | None = None,
                    reference: str = "standalone_acc") -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` among ``subnets`` (default all) that ``column`` orders ``a`` above ``b``
    while ``reference`` puts ``b`` strictly above ``a`` (seed 002's (1, 3) vs (2, 2))."""
    t = table.set_index("subnet")
    names = [n for n in (subnets if subnets is not None else t.index) if n in t.index]
    errors = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            for hi, lo in ((x, y), (y, x)):
                if t.loc[hi, column] > t.loc[lo, column] and t.loc[lo, reference] > t.loc[hi, reference]:
                    errors.append((hi, lo))
    return errors
