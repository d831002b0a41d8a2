"""Transferability of each source model to the target's labels: ``logme`` and ``leep``.

Unlike the distances, these run every source's own model on the target images (normalised as
that model was trained) and ask how well its features or outputs predict the target labels.
Higher is better. Neither looks at the source sample.
"""

from __future__ import annotations

import numpy as np

from automl_chars.similarity.base import Context, Measure, register_measure
from automl_chars.similarity.source import Sample, SourceView


def logme(features: np.ndarray, labels: np.ndarray, num_classes: int | None = None,
          max_iter: int = 100, tol: float = 1e-4) -> float:
    """LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021): the log marginal evidence per sample of a Bayesian linear regression
    from ``features`` to each one-hot label column, maximised over the prior precision ``alpha``
    and noise precision ``beta`` by MacKay's fixed-point iteration, averaged over classes.

    With ``F = U diag(s) V^T``, ``sigma = s^2`` and ``x = U^T y``, for ``t = alpha / beta``::

        gamma = sum sigma / (sigma + t)            m2  = sum sigma x^2 / (sigma + t)^2
        res2  = sum x^2 t^2 / (sigma + t)^2 + (|y|^2 - |x|^2)
        alpha = gamma / m2                         beta = (n - gamma) / res2
        evidence = d/2 log alpha + n/2 log beta - 1/2 log|alpha I + beta F^T F|
                   - beta/2 res2 - alpha/2 m2 - n/2 log 2 pi

    where ``log|alpha I + beta F^T F|`` sums ``log(alpha + beta sigma)`` over the ``d``
    eigenvalues of ``F^T F`` (the ``d - rank`` zero ones contribute ``log alpha``).
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    k = int(num_classes if num_classes is not None else y.max() + 1)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for c in np.unique(y) if k > 1 else [0]:
        target = (y == c).astype(np.float64)
        x = u.T @ target
        x2 = x**2
        outside = max(0.0, float(target @ target - x2.sum()))  # part of y outside F's span
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
            res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + outside
            alpha = gamma / (m2 + 1e-10)
            beta = (n - gamma) / (res2 + 1e-10)
            if abs(alpha / beta - t) / t <= tol:
                break
        t = alpha / beta
        m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
        res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + outside
        logdet = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
        evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * logdet
                    - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def leep(probabilities: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """LEEP (Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned
    Representations", ICML 2020): with ``theta(x)`` the source model's softmax over its own
    classes ``z``, the empirical conditional ``P(y | z)`` of target labels given source labels
    is estimated from the sample, and the score is the mean log-likelihood
    ``1/n sum_i log sum_z P(y_i | z) theta(x_i)_z`` of the resulting "expected empirical
    predictor" (<= 0; higher transfers better)."""
    theta = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    joint = np.zeros((num_classes, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= len(y)
    conditional = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)
    predicted = (theta @ conditional.T)[np.arange(len(y)), y]
    return float(np.mean(np.log(np.maximum(predicted, 1e-300))))


@register_measure
class LogME(Measure):
    """LogME of each source model's penultimate features on the target labels (You et al. 2021)."""

    name = "logme"
    description = "evidence of a linear model on each source model's features (You et al. 2021)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        feats = ctx.outputs(source, target).features
        return logme(feats, target.labels, target.num_classes)


@register_measure
class LEEP(Measure):
    """LEEP of each source model's outputs on the target labels (Nguyen et al. 2020)."""

    name = "leep"
    description = "log-likelihood of the expected empirical predictor (Nguyen et al. 2020)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (-np.inf, 0.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        probs = ctx.outputs(source, target).probabilities()
        return leep(probs, target.labels, target.num_classes)
