"""Gaussian approximations of feature samples and the 2-Wasserstein (Fréchet) distance between
them, computed from the samples themselves rather than from ``d x d`` covariance matrices.

With ``A`` the centred sample scaled by ``1/sqrt(n-1)`` (so that the covariance is ``A.T @ A``),
``tr((S_a^1/2 S_b S_a^1/2)^1/2)`` equals the nuclear norm of ``A @ B.T`` (both are the sum of
the singular values of ``S_a^1/2 S_b^1/2``). The squared distance

    ||mu_a - mu_b||^2 + tr S_a + tr S_b - 2 ||A B^T||_*

is therefore exact for the sample covariances, needs one SVD of an ``n_a x n_b`` matrix instead
of a ``d x d`` matrix square root, and stays stable when ``n < d`` (rank-deficient covariances,
the usual case for a few hundred images and wide features), so no ridge is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gaussian:
    """Mean and scaled centred sample (``cov = root.T @ root``) of a set of feature vectors."""

    mean: np.ndarray
    root: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Gaussian:
        f = np.asarray(features, dtype=np.float64)
        mean = f.mean(axis=0)
        return cls(mean, (f - mean) / np.sqrt(max(len(f) - 1, 1)))

    @property
    def trace(self) -> float:
        return float(np.square(self.root).sum())


def nuclear_norm(m: np.ndarray) -> float:
    if m.size == 0:
        return 0.0
    return float(np.linalg.svd(m, compute_uv=False).sum())


def w2_squared(a: Gaussian, b: Gaussian) -> float:
    """Squared 2-Wasserstein distance between the Gaussians ``a`` and ``b`` (Fréchet distance)."""
    bures = a.trace + b.trace - 2.0 * nuclear_norm(a.root @ b.root.T)
    return max(0.0, float(np.square(a.mean - b.mean).sum()) + bures)


def classwise_w2_squared(fa: np.ndarray, ya: np.ndarray, ka: int, fb: np.ndarray,
                         yb: np.ndarray, kb: int) -> np.ndarray:
    """``(ka, kb)`` matrix of squared W2 distances between the Gaussian approximations of each
    class of sample ``a`` and each class of sample ``b``; absent classes give NaN rows/columns."""
    ga = [Gaussian.fit(fa[ya == c]) if np.any(ya == c) else None for c in range(ka)]
    gb = [Gaussian.fit(fb[yb == c]) if np.any(yb == c) else None for c in range(kb)]
    # one product of the stacked roots instead of ka * kb small ones
    ra = [g.root for g in ga if g is not None]
    rb = [g.root for g in gb if g is not None]
    cross = np.concatenate(ra) @ np.concatenate(rb).T
    offs_a = np.cumsum([0] + [len(r) for r in ra])
    offs_b = np.cumsum([0] + [len(r) for r in rb])
    out = np.full((ka, kb), np.nan)
    ia = [c for c in range(ka) if ga[c] is not None]
    ib = [c for c in range(kb) if gb[c] is not None]
    for i, ca in enumerate(ia):
        for j, cb in enumerate(ib):
            block = cross[offs_a[i] : offs_a[i + 1], offs_b[j] : offs_b[j + 1]]
            d2 = (np.square(ga[ca].mean - gb[cb].mean).sum() + ga[ca].trace + gb[cb].trace
                  - 2.0 * nuclear_norm(block))
            out[ca, cb] = max(0.0, float(d2))
    return out
