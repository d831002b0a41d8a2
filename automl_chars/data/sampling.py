"""Stratified index selection, shared by validation splits, data-subset budgets and samples."""

from __future__ import annotations

import numpy as np


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``range(len(labels))`` in which every prefix is (nearly) stratified.

    Each class is shuffled, then the classes are interleaved by the relative rank of each item
    inside its class. Taking the first ``k`` items therefore gives each class a share
    proportional to its size, and prefixes are nested: the first ``k`` items are contained in
    the first ``k + 1``. Data-subset budgets rely on that nesting.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        # rank inside the class, centred in (0, 1); a random offset breaks ties between classes
        keys[idx] = (np.arange(len(idx)) + 0.5) / len(idx) + rng.random() * 1e-9
    return np.argsort(keys, kind="stable")


def stratified_subset(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a stratified ``fraction`` of ``labels`` (at least one item), nested in ``fraction``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = max(1, int(round(fraction * len(labels))))
    return np.sort(stratified_order(labels, seed)[:n])


def stratified_split(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices into (rest, held_out) with a stratified ``fraction`` held out per class.

    Every class with at least two items keeps at least one item on each side.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        held.append(idx[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx
