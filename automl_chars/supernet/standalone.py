"""Which subnets a supernet run trains standalone when the space is too large to train them all:
a stratified sample, and the standalone cost of every subnet estimated from it.

The ground truth of a supernet's ranking is standalone training, one trial per subnet; at a
size that matters (196 subnets: ``ops conv3,conv5``, depths 1 to 3, two blocks) that is hours.
:func:`stratified_sample` picks a few subnets spread over the space: the subnets sorted by their
parameters (:func:`subnet_params`, then total depth) are cut into equal-count strata
(quantiles), each stratum gets its share of the sample (at least one subnet), drawn at random
with the seed, and the smallest and the largest subnet are always in. The rank correlations are
then computed over the sample (:mod:`automl_chars.supernet.ranking` leaves the rest out), and
:func:`estimated_standalone_cost` scales the sample's seconds up to every subnet, stratum by
stratum (a deeper subnet costs more), so the supernet's cost ratio stays one against training
every subnet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from automl_chars.errors import InvalidConfigError
from automl_chars.supernet.space import OPS, Arch, SupernetSpace

#: Strata (parameter-count quantiles) of a sample, at most one per sampled subnet.
STRATA = 5


@lru_cache(maxsize=256)
def _op_params(op: str, channels: int) -> int:
    return sum(p.numel() for p in OPS.get(op)(channels).parameters())


def subnet_params(space: SupernetSpace, arch: Arch | str) -> int:
    """Parameters of ``arch``'s sub-blocks: what differs between subnets (the stem, the
    reductions and the head are shared by all), so it orders subnets by size."""
    arch = space.check(arch)
    return sum(_op_params(op, c) for block, c in zip(arch, space.channels) for op in block)


@dataclass(frozen=True)
class StandaloneSample:
    """The subnets a run trains standalone, and the strata they were drawn from.

    Attributes:
        subnets: the sampled subnets' names, in the space's order.
        strata: every subnet's name to its stratum (0: the smallest subnets).
        size: the number of subnets asked for; seed: the draw's seed.
        by: what the strata are quantiles of (``params``: :func:`subnet_params`).
    """

    subnets: tuple[str, ...]
    strata: dict[str, int]
    size: int
    seed: int
    by: str = "params"

    @property
    def num_strata(self) -> int:
        return max(self.strata.values()) + 1

    def stratum_sizes(self) -> list[int]:
        """Subnets of the space in each stratum."""
        return np.bincount(list(self.strata.values()), minlength=self.num_strata).tolist()

    def to_dict(self) -> dict:
        return {"subnets": list(self.subnets), "strata": dict(self.strata), "size": self.size,
                "seed": self.seed, "by": self.by, "n_subnets": len(self.strata),
                "stratum_sizes": self.stratum_sizes()}


def _allocate(sizes: list[int], total: int) -> list[int]:
    """``total`` draws over strata of ``sizes``: proportional (largest remainder), at least one
    and at most its size per stratum."""
    quota = [total * n / sum(sizes) for n in sizes]
    alloc = [min(n, max(1, math.floor(q))) for n, q in zip(sizes, quota)]
    while sum(alloc) < total:
        room = [i for i, n in enumerate(sizes) if alloc[i] < n]
        alloc[max(room, key=lambda i: (quota[i] - alloc[i], -i))] += 1
    while sum(alloc) > total:
        spare = [i for i in range(len(sizes)) if alloc[i] > 1]
        alloc[min(spare, key=lambda i: (quota[i] - alloc[i], i))] -= 1
    return alloc


def stratified_sample(space: SupernetSpace, size: int, seed: int = 0,
                      strata: int = STRATA) -> StandaloneSample:
    """``size`` subnets of ``space`` spread over ``min(strata, size)`` parameter-count strata,
    the smallest and the largest subnet always among them; the same for the same space, size
    and seed (every sampler of a seed shares them). ``size >= space.size`` takes every subnet."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise InvalidConfigError(f"A standalone sample needs at least 2 subnets (the smallest "
                                 f"and the largest), got {size!r}.")
    if isinstance(strata, bool) or not isinstance(strata, int) or strata < 1:
        raise InvalidConfigError(f"strata must be a whole number >= 1, got {strata!r}.")
    names = [space.name(a) for a in space.archs]
    order = sorted(range(len(names)), key=lambda i: (subnet_params(space, space.archs[i]),
                                                     sum(map(len, space.archs[i])), i))
    chunks = [c.tolist() for c in np.array_split(order, min(strata, size, len(order)))]
    stratum = {names[i]: k for k, chunk in enumerate(chunks) for i in chunk}
    if size >= len(names):
        return StandaloneSample(tuple(names), stratum, size, seed)
    rng = np.random.default_rng(seed)
    extremes = {order[0], order[-1]}
    chosen: set[int] = set()
    for chunk, n in zip(chunks, _allocate([len(c) for c in chunks], size)):
        forced = [i for i in chunk if i in extremes]
        rest = [i for i in chunk if i not in extremes]
        chosen.update(forced)
        chosen.update(rng.choice(rest, size=max(0, n - len(forced)), replace=False).tolist())
    return StandaloneSample(tuple(names[i] for i in sorted(chosen)), stratum, size, seed)


def estimated_standalone_cost(seconds: Mapping[str, float], sample: StandaloneSample) -> float:
    """The standalone cost of every subnet of the space, from the sampled ones' ``seconds``:
    each stratum's mean times its number of subnets, summed (the sum itself when every subnet
    was trained)."""
    missing = sorted(set(sample.subnets) - set(seconds))
    if missing:
        raise InvalidConfigError(f"No standalone seconds for the sampled subnets {missing}.")
    sizes = sample.stratum_sizes()
    by_stratum: dict[int, list[float]] = {}
    for name in sample.subnets:
        by_stratum.setdefault(sample.strata[name], []).append(float(seconds[name]))
    empty = [k for k in range(len(sizes)) if k not in by_stratum]
    if empty:
        raise InvalidConfigError(f"Strata {empty} have no sampled subnet: no estimate of "
                                 f"their standalone cost.")
    return float(sum(sizes[k] * np.mean(v) for k, v in by_stratum.items()))


__all__ = ["STRATA", "StandaloneSample", "estimated_standalone_cost", "stratified_sample",
           "subnet_params"]
