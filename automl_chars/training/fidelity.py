"""What one budget unit means: an epoch over the training set, or a stratified data subset.

``epochs``: budget unit ``k`` is one epoch over the whole training set; a trial at budget ``b``
has trained ``b`` epochs.

``subset``: budget ``b`` means the trial trains on a stratified fraction ``b / max_budget`` of
the training set. Unit ``k`` is one epoch over the first ``k / max_budget`` of a fixed
stratified order (fixed by the data seed), so the subsets are nested and a trial that is paused
at budget ``b`` and resumed continues exactly as if it had never stopped: unit ``k`` always
sees the same samples. A trial at budget ``b`` has seen ``N * b * (b + 1) / (2 * max_budget)``
samples in total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from automl_chars.data.sampling import stratified_order
from automl_chars.errors import InvalidConfigError

FIDELITIES = ("epochs", "subset")


@dataclass(frozen=True)
class Fidelity:
    """The budget's meaning (``kind``) and its maximum (the scheduler's ``max_t``)."""

    kind: str = "epochs"
    max_budget: int = 9
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FIDELITIES:
            raise InvalidConfigError(f"fidelity must be one of {FIDELITIES}, got {self.kind!r}.")
        if self.max_budget < 1:
            raise InvalidConfigError(f"max_budget must be >= 1, got {self.max_budget}.")

    def fraction(self, unit: int) -> float:
        """Share of the training set that budget unit ``unit`` (1-based) trains on."""
        return 1.0 if self.kind == "epochs" else min(1.0, unit / self.max_budget)

    def order(self, labels: np.ndarray) -> np.ndarray | None:
        """The fixed stratified order subsets are prefixes of (None for ``epochs``)."""
        return None if self.kind == "epochs" else stratified_order(labels, self.data_seed)

    def indices(self, unit: int, order: np.ndarray | None) -> np.ndarray | None:
        """Training indices of budget unit ``unit``; None means the whole training set."""
        if order is None or self.fraction(unit) >= 1.0:
            return None
        n = max(1, int(round(self.fraction(unit) * len(order))))
        return np.sort(order[:n])
