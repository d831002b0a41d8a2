"""Subnets by cost: each subnet's parameters, FLOPs and latency, and the best subnet within cost
limits ("the best subnet under 50k parameters", Once-for-All's question to a trained supernet).

A subnet's costs are those of its standalone model (:class:`~automl_chars.supernet.model.Subnet`,
the one :meth:`Supernet.extract` returns), measured like every trial's model
(:mod:`automl_chars.models.costs`). :func:`~automl_chars.supernet.run_supernet` writes them into
its table (``params``, ``flops``, ``latency_ms``, measured by the standalone subnets' trials);
``SupernetTrainable`` reports them for every subnet it evaluates.
"""

from __future__ import annotations

import pandas as pd
import torch

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.models.costs import LatencySettings, ModelCosts, measure_costs
from automl_chars.supernet.model import Subnet, SubnetSpec
from automl_chars.supernet.result import SupernetResult
from automl_chars.supernet.space import Arch, SupernetSpace
from automl_chars.training.objective import LIMITED_COSTS, Objective, within_limits

#: The accuracy columns of a supernet run's table a subnet may be chosen by, default first.
SUBNET_METRICS = ("supernet_acc", "standalone_acc", "finetuned_acc")


def measure_subnet_costs(space: SupernetSpace, arch: Arch | str, num_classes: int,
                         input_shape: tuple[int, int, int],
                         device: torch.device | str = "cpu",
                         latency: LatencySettings = LatencySettings()) -> ModelCosts:
    """The costs of subnet ``arch`` of ``space`` as a standalone model on ``device`` (its
    weights do not matter: a freshly built one is measured). Torch's global random state is
    left as it was, so a trial that measures costs trains as one that does not."""
    with torch.random.fork_rng(devices=[]):
        net = Subnet(SubnetSpec(space, space.check(arch)), num_classes, input_shape)
    return measure_costs(net.to(device), input_shape, latency)


def subnet_points(result: SupernetResult, metric: str = SUBNET_METRICS[0]) -> pd.DataFrame:
    """The subnets of a finished run with their accuracies and costs (its table); raises for a
    run from before subnets' costs were recorded, or an unknown ``metric``."""
    if metric not in SUBNET_METRICS:
        raise InvalidConfigError(f"A subnet is chosen by one of {list(SUBNET_METRICS)}, not "
                                 f"{metric!r}.")
    missing = [c for c in LIMITED_COSTS if c not in result.table]
    if missing:
        raise ExperimentStateError(
            f"The table of {result.path} has no {', '.join(missing)}: the run is from before "
            f"subnets' costs were recorded. Run it again (its standalone trials are reused only "
            f"if they recorded costs: use another experiment name).")
    return result.table


def best_subnet(result: SupernetResult, metric: str = SUBNET_METRICS[0], *,
                max_params: float | None = None, max_flops: float | None = None,
                max_latency_ms: float | None = None) -> pd.Series:
    """The subnet with the highest ``metric`` (default its top-1 in the supernet) among those
    within the limits: its table row (``subnet``, accuracies, ``params``, ``flops``,
    ``latency_ms``). The first in table order wins a tie; no subnet within the limits raises."""
    limits = Objective(max_params=max_params, max_flops=max_flops, max_latency_ms=max_latency_ms)
    table = subnet_points(result, metric).dropna(subset=[metric])
    within = within_limits(table, limits)
    if within.empty:
        cheapest = {c: float(table[c].min()) for c in limits.limits}
        raise InvalidConfigError(
            f"No subnet of {result.path} is within the limits {limits.limits} (the cheapest "
            f"costs are {cheapest}); raise max_params, max_flops or max_latency_ms.")
    return within.loc[within[metric].idxmax()]


__all__ = ["SUBNET_METRICS", "best_subnet", "measure_subnet_costs", "subnet_points"]
