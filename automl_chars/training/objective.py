"""Hardware-aware objectives: accuracy under cost limits, or MnasNet's scalarised reward.

A sweep with an :class:`Objective` optimises the result key :data:`OBJECTIVE` instead of the
validation accuracy (see docs/hardware-aware.md):

- **Limits** (``max_params``, ``max_flops``, ``max_latency_ms``): a configuration whose model
  costs more than a limit is *infeasible*. It trains nothing (its costs are known once the model
  is built) and reports ``-violation``, the sum of its relative excesses (``cost / limit - 1``
  over each limit it breaks): below every feasible value (accuracies and rewards are >= 0), so
  BOHB's model learns the region is bad, and graded, so that before any feasible configuration
  is found BOHB still moves toward the limits. An infeasible trial is never the incumbent.
- **Reward** (``reward_targets``): MnasNet's ``acc * prod_i (cost_i / target_i) ** w_i``, with
  ``w_i = reward_weight`` where the cost is at or under its target and ``reward_weight_over``
  above it. MnasNet's soft constraint is ``-0.07`` for both; ``(0, -1)`` is its hard one.

Both may be combined (a reward among the configurations within the limits). The objective is a
plain value passed to the trials (``tune.with_parameters``) and recorded with the sweep.

No torch here: reading a finished sweep (``automl-chars show``, Pareto fronts) needs these names
without importing it; the costs are measured by :mod:`automl_chars.models.costs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from automl_chars.errors import InvalidConfigError

#: A model's costs as result keys (``ModelCosts.metrics()``), each reported by every trial.
COST_METRICS = ("params", "flops", "latency_ms", "throughput")
#: The costs a sweep may limit or reward, each smaller-is-better (not ``throughput``).
LIMITED_COSTS = ("params", "flops", "latency_ms")

#: The result key a sweep with an objective optimises (mode ``max``).
OBJECTIVE = "objective"
#: MnasNet's exponent of its soft latency constraint (Tan et al., 2019).
MNASNET_WEIGHT = -0.07
#: The limit argument (and CLI flag, ``--max-...``) of each cost.
LIMIT_ARGUMENTS = {"params": "max_params", "flops": "max_flops", "latency_ms": "max_latency_ms"}


def _positive_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@dataclass(frozen=True)
class Objective:
    """What a sweep maximises besides accuracy (see the module docstring).

    Attributes:
        max_params: most parameters a feasible model may have.
        max_flops: most FLOPs of one image's forward pass.
        max_latency_ms: most milliseconds of a batch-1 forward pass on the trial's device.
        reward_targets: cost name (``params``, ``flops``, ``latency_ms``) -> target of MnasNet's
            reward; empty: the objective is the accuracy.
        reward_weight: the reward's exponent where a cost is at or under its target.
        reward_weight_over: its exponent above the target (default: ``reward_weight``).
    """

    max_params: float | None = None
    max_flops: float | None = None
    max_latency_ms: float | None = None
    reward_targets: Mapping[str, float] = field(default_factory=dict)
    reward_weight: float = MNASNET_WEIGHT
    reward_weight_over: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reward_targets", dict(self.reward_targets or {}))
        problems = []
        for name in LIMIT_ARGUMENTS.values():
            value = getattr(self, name)
            if value is not None and not _positive_number(value):
                problems.append(f"{name} must be a number > 0, got {value!r}")
        unknown = sorted(set(self.reward_targets) - set(LIMITED_COSTS))
        if unknown:
            problems.append(f"reward_targets names unknown costs {unknown}; the costs are "
                            f"{list(LIMITED_COSTS)} (e.g. latency_ms=2.5)")
        bad = {k: v for k, v in self.reward_targets.items()
               if k in LIMITED_COSTS and not _positive_number(v)}
        if bad:
            problems.append(f"reward_targets must be numbers > 0, got {bad}")
        for name in ("reward_weight", "reward_weight_over"):
            value = getattr(self, name)
            if (value is not None or name == "reward_weight") and (
                    isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
                problems.append(f"{name} must be a finite number, got {value!r}")
        if problems:
            raise InvalidConfigError("Invalid objective: " + "; ".join(problems) + ".")

    # -- what it is -------------------------------------------------------------------------
    @property
    def limits(self) -> dict[str, float]:
        """Cost name -> its limit, for the limits that are set."""
        return {cost: getattr(self, arg) for cost, arg in LIMIT_ARGUMENTS.items()
                if getattr(self, arg) is not None}

    @property
    def active(self) -> bool:
        """Whether it differs from plain accuracy (any limit or reward target)."""
        return bool(self.limits or self.reward_targets)

    def describe(self) -> dict:
        """Plain values recorded with a sweep (empty for plain accuracy)."""
        if not self.active:
            return {}
        out: dict = {"limits": self.limits}
        if self.reward_targets:
            out.update(reward_targets=dict(self.reward_targets), reward_weight=self.reward_weight,
                       reward_weight_over=self.reward_weight_over)
        return out

    @classmethod
    def from_description(cls, description: Mapping | None) -> Objective:
        """The objective :meth:`describe` recorded (plain accuracy for an empty one)."""
        d = dict(description or {})
        limits = d.get("limits", {})
        return cls(**{LIMIT_ARGUMENTS[c]: v for c, v in limits.items()},
                   reward_targets=d.get("reward_targets", {}),
                   reward_weight=d.get("reward_weight", MNASNET_WEIGHT),
                   reward_weight_over=d.get("reward_weight_over"))

    @property
    def weight_over(self) -> float:
        return self.reward_weight if self.reward_weight_over is None else self.reward_weight_over

    # -- what it says about a model -----------------------------------------------------------
    def violation(self, costs: Mapping[str, float]) -> float:
        """Sum of ``cost / limit - 1`` over the limits ``costs`` break (0: feasible)."""
        return sum(max(0.0, float(costs[c]) / limit - 1.0) for c, limit in self.limits.items())

    def violations(self, costs: Mapping[str, float]) -> list[str]:
        """Each broken limit in words, e.g. ``"params 120000 > max_params 50000"``."""
        return [f"{c} {_fmt(costs[c])} > {LIMIT_ARGUMENTS[c]} {_fmt(limit)}"
                for c, limit in self.limits.items() if float(costs[c]) > limit]

    def feasible(self, costs: Mapping[str, float]) -> bool:
        return not self.violations(costs)

    def reward(self, accuracy: float, costs: Mapping[str, float]) -> float:
        """MnasNet's ``accuracy * prod (cost / target) ** w`` (the accuracy without targets)."""
        factor = 1.0
        for c, target in self.reward_targets.items():
            ratio = float(costs[c]) / target
            factor *= ratio ** (self.reward_weight if ratio <= 1 else self.weight_over)
        return float(accuracy) * factor

    def value(self, accuracy: float, costs: Mapping[str, float]) -> float:
        """The :data:`OBJECTIVE` of a result: ``-violation`` when infeasible, else the reward;
        NaN for a failed result (NaN accuracy), which BOHB scores as the worst."""
        violation = self.violation(costs)
        if violation > 0:
            return -violation
        if accuracy is None or not math.isfinite(float(accuracy)):
            return math.nan
        return self.reward(accuracy, costs)


def within_limits(points: pd.DataFrame, objective: Objective) -> pd.DataFrame:
    """The rows of ``points`` (one per model, a column per cost) within ``objective``'s limits
    (all of them without limits)."""
    keep = pd.Series(True, index=points.index)
    for cost, limit in objective.limits.items():
        if cost not in points:
            raise InvalidConfigError(f"No {cost!r} column to hold against its limit; the "
                                     f"points have {list(points.columns)}.")
        keep &= points[cost] <= limit
    return points[keep]


def _fmt(value: float) -> str:
    value = float(value)
    return f"{value:.0f}" if value == int(value) and abs(value) >= 10 else f"{value:.4g}"


__all__ = ["COST_METRICS", "LIMITED_COSTS", "LIMIT_ARGUMENTS", "MNASNET_WEIGHT", "OBJECTIVE", "Objective",
           "within_limits"]
