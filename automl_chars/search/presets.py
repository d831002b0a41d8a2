"""BOHB presets named as in seed 001's tables: ``eta_minbudget_maxbudget_iterations``.

BOHB's "iterations" are successive-halving brackets, as in hpbandster: iteration ``i`` runs the
bracket ``s = s_max - (i mod (s_max + 1))`` with ``s_max = floor(log_eta(max / min))``, which
starts ``n_s = ceil((s_max + 1) / (s + 1) * eta**s)`` configurations at budget
``max * eta**-s``. Ray Tune's ``HyperBandForBOHB`` fills brackets in the same order from the
trials it is given, so a preset maps to ``num_samples = sum of n_s over its iterations`` Ray
trials (:attr:`BOHBPreset.num_samples`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from automl_chars.errors import InvalidConfigError
from automl_chars.registry import Registry


def rung_budgets(eta: float, max_budget: int, s: int) -> list[int]:
    """The budgets at which bracket ``s`` halves: hpbandster's ``max * eta**-i`` for
    ``i = s..0``, rounded to whole budget units; the last is ``max_budget`` itself.

    Ray's HyperBand floors the first budget and multiplies by ``eta``, so e.g. preset
    ``3_2_20_20`` would halve at 2, 6, 18 and never reach 20; these rungs are 2, 7, 20. (For
    ``s <= s_max`` every rung is at least ``min_budget >= 1`` before rounding, and ``eta >= 2``
    keeps rounded rungs strictly increasing.)
    """
    return [math.floor(max_budget * eta ** (-i) + 0.5) for i in range(s, -1, -1)]


@dataclass(frozen=True)
class BOHBPreset:
    """BOHB's settings: reduction factor ``eta``, budget range and number of brackets."""

    eta: int
    min_budget: int
    max_budget: int
    iterations: int

    def __post_init__(self) -> None:
        problems = []
        if self.eta < 2:
            problems.append(f"eta must be >= 2 (got {self.eta})")
        if self.min_budget < 1:
            problems.append(f"min_budget must be >= 1 (got {self.min_budget})")
        if self.max_budget < self.min_budget:
            problems.append(f"max_budget ({self.max_budget}) must be >= min_budget ({self.min_budget})")
        if self.iterations < 1:
            problems.append(f"iterations must be >= 1 (got {self.iterations})")
        if problems:
            raise InvalidConfigError(f"Invalid BOHB preset {self.name}: " + "; ".join(problems) + ".")

    @property
    def name(self) -> str:
        return f"{self.eta}_{self.min_budget}_{self.max_budget}_{self.iterations}"

    @property
    def s_max(self) -> int:
        """Index of the largest bracket: ``floor(log_eta(max_budget / min_budget))``."""
        return int(math.floor(math.log(self.max_budget / self.min_budget) / math.log(self.eta) + 1e-9))

    @property
    def budgets(self) -> list[int]:
        """Every budget at which some bracket reports results to BOHB (its rungs), ascending."""
        return sorted({b for s in range(self.s_max + 1)
                       for b in rung_budgets(self.eta, self.max_budget, s)})

    def bracket_sizes(self) -> list[tuple[int, int]]:
        """``(n_configs, first_budget)`` of each iteration's bracket, in order."""
        out = []
        for i in range(self.iterations):
            s = self.s_max - (i % (self.s_max + 1))
            n = int(math.ceil((self.s_max + 1) / (s + 1) * self.eta**s))
            out.append((n, rung_budgets(self.eta, self.max_budget, s)[0]))
        return out

    @property
    def num_samples(self) -> int:
        """Ray trials needed for ``iterations`` brackets."""
        return sum(n for n, _ in self.bracket_sizes())

    def planned_budget(self, num_samples: int | None = None, lead: int = 0) -> int:
        """Budget units a sweep of ``num_samples`` trials (default :attr:`num_samples`) trains
        in all: a warm start's ``lead`` first trials straight to the top budget (the scheduler's
        lead bracket), then brackets filled in order as Ray's ``HyperBandForBOHB`` fills them
        (cycling past ``iterations``; the last one may be part full), each keeping
        ``ceil(n / eta)`` of its nominal ``n`` trials at its next rung (as Ray halves: a
        part-full bracket keeps as many as a full one would, when it has them), a promoted
        trial training on from its checkpoint. What a progress line's ETA counts down."""
        left = self.num_samples if num_samples is None else int(num_samples)
        first = min(left, max(0, int(lead)))
        units, left, i = first * self.max_budget, left - first, 0
        while left > 0:
            s = self.s_max - (i % (self.s_max + 1))
            nominal = int(math.ceil((self.s_max + 1) / (s + 1) * self.eta**s))
            n = min(left, nominal)
            left, i, previous = left - n, i + 1, 0
            for rung in rung_budgets(self.eta, self.max_budget, s):
                units += n * (rung - previous)
                nominal, previous = int(math.ceil(nominal / self.eta)), rung
                n = min(n, nominal)
        return units

    @classmethod
    def parse(cls, text: str) -> BOHBPreset:
        """A preset from its name, e.g. ``"3_1_9_20"`` (a name in :data:`PRESETS` or any such)."""
        m = re.fullmatch(r"\s*(\d+)_(\d+)_(\d+)_(\d+)\s*", str(text))
        if not m:
            raise InvalidConfigError(
                f"Invalid BOHB preset {text!r}: write it as eta_min_max_iterations, e.g. "
                f"'3_1_9_20'. Seed 001's presets: {', '.join(PRESETS.names())}."
            )
        return cls(*(int(g) for g in m.groups()))


PRESETS: Registry[BOHBPreset] = Registry("BOHB preset")
for _name in ("2_1_16_10", "3_1_9_20", "4_1_16_20", "2_1_10_14", "3_2_20_20", "3_1_9_10", "2_1_10_10"):
    PRESETS.add(_name, BOHBPreset(*(int(p) for p in _name.split("_"))))


def get_preset(preset: str | BOHBPreset) -> BOHBPreset:
    """A preset object from a name (registered or of the form ``eta_min_max_iterations``)."""
    if isinstance(preset, BOHBPreset):
        return preset
    return PRESETS.get(preset) if preset in PRESETS else BOHBPreset.parse(preset)
