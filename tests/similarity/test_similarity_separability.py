"""``hscore``, ``sfda``, ``parc`` and ``knn`` against their papers' formulas on features small
enough to work out by hand (the arithmetic is in the comments), plus an ordering case each:
well-separated classes score above mixed ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automl_chars.similarity import hscore, knn_accuracy, parc, sfda

#: Four points in 1-D, two classes: the hand-computable case of H-score and SFDA.
LINE = np.array([[0.0], [2.0], [10.0], [12.0]])
LINE_Y = np.array([0, 0, 1, 1])


def _separated_and_mixed(seed: int = 0, n: int = 60, d: int = 6, classes: int = 3):
    """The same labels on two feature sets: class means far apart (relative to the noise), and
    pure noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    separated = rng.normal(size=(n, d)) + 4.0 * np.eye(classes, d)[y]
    return separated, rng.normal(size=(n, d)), y


# --- H-score ----------------------------------------------------------------------------------

def test_hscore_by_hand():
    # f = 0, 2, 10, 12 (mean 6), classes {0, 2} and {10, 12}: E[f | y] = 1, 1, 11, 11.
    # cov(f) = (36 + 16 + 16 + 36) / 3 = 104 / 3, cov(E[f | y]) = 4 * 25 / 3 = 100 / 3,
    # H = (100 / 3) / (104 / 3) = 100 / 104.
    assert hscore(LINE, LINE_Y) == pytest.approx(100 / 104, rel=1e-12)
    # A constant feature and a copy of f (times 2) make cov(f) singular: the pseudo-inverse
    # ignores the constant direction and the copy adds no information, so H stays 100 / 104.
    wide = np.hstack([LINE, np.full((4, 1), 3.0), 2 * LINE])
    assert hscore(wide, LINE_Y) == pytest.approx(100 / 104, rel=1e-9)
    # Relabelling the classes changes nothing.
    assert hscore(LINE, 1 - LINE_Y) == pytest.approx(100 / 104, rel=1e-12)


def test_hscore_in_two_dimensions():
    # Two uncorrelated features (sum of f1 * f2 = -4 + 2 - 2 + 4 = 0), the class means differing
    # in the first only, so cov(f) and cov(E[f | y]) are diagonal and H = var(E[f1 | y]) / var(f1):
    # f1 = -4, -2, 2, 4 -> var = (16 + 4 + 4 + 16) / 3 = 40 / 3; E[f1 | y] = -3, -3, 3, 3 ->
    # var = 36 / 3; H = 36 / 40 = 0.9. The second feature (1, -1, -1, 1: class means 0) adds 0.
    f = np.array([[-4.0, 1.0], [-2.0, -1.0], [2.0, -1.0], [4.0, 1.0]])
    assert hscore(f, LINE_Y) == pytest.approx(0.9, rel=1e-12)


def test_hscore_prefers_separated_classes_and_saturates_without_enough_images():
    separated, mixed, y = _separated_and_mixed()
    assert 0 <= hscore(mixed, y) < hscore(separated, y) <= 2 + 1e-9  # at most C - 1
    # n <= d: the pseudo-inverse separates any labelling, every source scores C - 1 = 2
    rng = np.random.default_rng(1)
    assert hscore(rng.normal(size=(20, 40)), y[:20]) == pytest.approx(2.0, rel=1e-9)


# --- SFDA -------------------------------------------------------------------------------------

def _sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def test_sfda_by_hand_in_one_dimension():
    """In 1-D the shrinkage has no effect (tr(S) / d = S), the Fisher space is the line scaled
    by S_w^-1/2, and with two classes the Bayes classifier is a logistic function."""
    x, y = np.array([[-2.0], [-1.0], [1.0], [2.0]]), LINE_Y
    # Class means -1.5, 1.5; S_w = 0.25 (each class: +-0.5 around its mean); equal priors.
    # log p(1 | x) / p(0 | x) = x (1.5 - (-1.5)) / 0.25 = 12 x, so p(y_i | x_i) = sigmoid(12 |x|).
    p = [_sigmoid(12 * abs(v)) for v in (-2.0, -1.0, 1.0, 2.0)]
    # Softened: softmax over (p, 1 - p) of the true class = sigmoid(p - (1 - p)) = sigmoid(2p - 1).
    q = [_sigmoid(2 * pi - 1) for pi in p]
    # ConfMix: each point moves to q x + (1 - q) * (the other class's mean, -+1.5).
    other = [1.5, 1.5, -1.5, -1.5]
    moved = [qi * v + (1 - qi) * o for qi, v, o in zip(q, (-2.0, -1.0, 1.0, 2.0), other)]
    # Second pass on the moved points (symmetric: class means -+m, S_w = s):
    m = (moved[2] + moved[3]) / 2
    s = ((moved[3] - moved[2]) / 2) ** 2
    p2 = [_sigmoid(2 * m * abs(v) / s) for v in moved]
    expected = sum(p2) / 4
    assert moved[2] == pytest.approx(0.32765, abs=1e-5) and expected == pytest.approx(0.98384, abs=1e-5)
    assert sfda(x, y) == pytest.approx(expected, rel=1e-9)
    assert sfda(x + 100.0, y) == pytest.approx(expected, rel=1e-9)  # translation-invariant


def _authors_sfda(x: np.ndarray, y: np.ndarray) -> float:
    """The authors' algorithm step by step (github.com/TencentARC/SFDA, metrics.py), written
    independently: no centring, no change of basis, scipy's generalised eigensolver."""
    import scipy.linalg

    def cov(a, shrinkage=None):
        c = np.atleast_2d(np.cov(a.T, bias=True))
        if shrinkage is None:
            return c
        return (1 - shrinkage) * c + shrinkage * np.trace(c) / len(c) * np.eye(len(c))

    def fit_predict(a, shrinkage):
        classes = np.unique(y)
        priors = np.array([np.mean(y == c) for c in classes])
        means = np.array([a[y == c].mean(axis=0) for c in classes])
        sw = sum(p * cov(a[y == c]) for p, c in zip(priors, classes))
        if shrinkage is None:
            shrinkage = max(math.exp(-5 * np.linalg.eigvalsh(sw)[-1]), 1e-10)
        sw_shrunk = (1 - shrinkage) * sw + shrinkage * np.trace(sw) / len(sw) * np.eye(len(sw))
        evals, evecs = scipy.linalg.eigh(cov(a, shrinkage) - sw_shrunk, sw_shrunk)
        evecs = evecs[:, np.argsort(evals)[::-1]]
        coef = means @ evecs @ evecs.T
        scores = a @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), shrinkage

    prob, shrinkage = fit_predict(x, None)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    means = np.array([x[y == c].mean(axis=0) for c in np.unique(y)])
    moved = x.copy()
    for c in np.unique(y):
        others = (means.sum(axis=0) - means[c]) / (len(means) - 1)
        q = prob[y == c, c][:, None]
        moved[y == c] = q * x[y == c] + (1 - q) * others
    prob, _ = fit_predict(moved, shrinkage)
    return float(np.mean(prob[np.arange(len(y)), y]))


@pytest.mark.parametrize("n,d,scale", [(60, 5, 1.0), (80, 16, 0.3), (28, 50, 0.05), (200, 10, 3.0)])
def test_sfda_matches_the_authors_algorithm(n, d, scale):
    """Random features, shifted away from 0, with the shrinkage from weak (scale 3: 1e-10) to
    strong (scale 0.05); (28, 50): fewer images than dimensions, where the change of basis to the
    features' span must give the same score."""
    rng = np.random.default_rng(n + d)
    y = np.arange(n) % 4
    x = scale * (rng.normal(size=(n, d)) + 1.5 * np.eye(4, d)[y]) + 7.0
    assert sfda(x, y) == pytest.approx(_authors_sfda(x, y), rel=1e-7)


def test_sfda_prefers_separated_classes():
    separated, mixed, y = _separated_and_mixed()
    assert 0 <= sfda(mixed, y) < sfda(separated, y) <= 1
    assert sfda(separated, y) > 0.8 and sfda(mixed, y) < 0.5  # 0.90 and 0.35; chance: 1/3


def test_constant_features_are_a_clear_error():
    """A dead network's features are the same for every image: SFDA's within-class covariance
    and PARC's correlations are undefined, and both say why."""
    dead, y = np.zeros((12, 4)), np.arange(12) % 3
    for measure in (sfda, parc):
        with pytest.raises(ValueError, match="the same for every image"):
            measure(dead, y)
    assert hscore(dead, y) == 0.0  # no variance at all, none between the classes


# --- PARC -------------------------------------------------------------------------------------

#: Four points whose columns already have mean 0 and standard deviation 1 (standardising changes
#: nothing) and whose rows have mean 0: x4 = -x1, x3 = -x2, and x1 is orthogonal to x2.
SQUARE = np.array([[1.0, 1.0, -1.0, -1.0],
                   [1.0, -1.0, 1.0, -1.0],
                   [-1.0, 1.0, -1.0, 1.0],
                   [-1.0, -1.0, 1.0, 1.0]])


def test_parc_by_hand():
    # Row correlations: r(1,4) = r(2,3) = -1, the other four pairs 0; feature dissimilarities
    # (1 - r) over the pairs (12, 13, 14, 23, 24, 34): 1, 1, 2, 2, 1, 1.
    # Labels 0, 0, 1, 1: one-hot rows correlate 1 within a class and -1 across (C = 2), so the
    # label dissimilarities are 0, 2, 2, 2, 2, 0.
    # Ranks (ties averaged): features 2.5, 2.5, 5.5, 5.5, 2.5, 2.5; labels 1.5, 4.5 x 4, 1.5.
    # Centred: (-1, -1, 2, 2, -1, -1) and (-2, 1, 1, 1, 1, -2): products sum to 6, squares to 12
    # each, so Spearman's rho = 6 / 12 = 0.5.
    assert parc(SQUARE, np.array([0, 0, 1, 1])) == pytest.approx(0.5, rel=1e-12)
    assert parc(SQUARE, np.array([0, 1, 0, 1])) == pytest.approx(0.5, rel=1e-12)  # the same by symmetry
    # Labels 0, 1, 1, 0 put the opposite points together: label dissimilarities 2, 2, 0, 0, 2, 2
    # against 1, 1, 2, 2, 1, 1: perfectly reversed ranks, rho = -1.
    assert parc(SQUARE, np.array([0, 1, 1, 0])) == pytest.approx(-1.0, rel=1e-12)


def test_parc_standardises_and_reduces_wide_features():
    # Scaling and shifting a feature column changes nothing (each is standardised first).
    y = np.array([0, 0, 1, 1])
    assert parc(SQUARE * [1, 10, 0.1, 3] + [5, -2, 0, 1], y) == pytest.approx(0.5, rel=1e-9)
    # Features wider than 32 go through PCA to 32 dimensions first.
    separated, mixed, y = _separated_and_mixed(d=40, n=80)
    assert -1 <= parc(mixed, y) < parc(separated, y) <= 1


def test_parc_prefers_separated_classes():
    separated, mixed, y = _separated_and_mixed()
    assert parc(separated, y) > 0.5 and abs(parc(mixed, y)) < 0.1


# --- k-NN -------------------------------------------------------------------------------------

def _on_circle(degrees) -> np.ndarray:
    return np.array([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in degrees])


#: Angles 0, 15, 20 and 90, 100, 115 degrees: the cosine distance grows with the angle between
#: two points, so the nearest neighbours are read off the angles.
ANGLES = _on_circle([0, 15, 20, 90, 100, 115])


def test_knn_by_hand():
    # Nearest other point (1-NN): 0->15, 15->20, 20->15, 90->100, 100->90, 115->100.
    y = np.array([0, 0, 0, 1, 1, 1])
    assert knn_accuracy(ANGLES, y, k=1) == 1.0
    # 20 degrees relabelled 1: 15 (label 0) gets 20's label 1 and 20 gets 15's label 0; 4 of 6.
    flipped = np.array([0, 0, 1, 1, 1, 1])
    assert knn_accuracy(ANGLES, flipped, k=1) == pytest.approx(4 / 6)
    # 3-NN: 0 -> 15, 20, 90 (votes 0, 0, 1); 90 -> 100, 115, 20 (1, 1, 0); every point keeps a
    # majority of its own class: accuracy 1. With the flipped labels, 0 -> 15 (0), 20 (1), 90 (1)
    # votes 1 (wrong), 15 -> 20 (1), 0 (0), 90 (1) votes 1 (wrong), 20 -> 15 (0), 0 (0), 90 (1)
    # votes 0 (wrong), the class-1 points stay right: 3 of 6.
    assert knn_accuracy(ANGLES, y, k=3) == 1.0
    assert knn_accuracy(ANGLES, flipped, k=3) == pytest.approx(3 / 6)
    # Cosine: the length of a feature vector does not matter.
    assert knn_accuracy(ANGLES * [[1], [5], [0.2], [3], [1], [9]], flipped, k=1) == pytest.approx(4 / 6)


def test_knn_tie_goes_to_the_nearest():
    # 2-NN of 15 degrees: 20 (label 1, nearer) and 0 (label 0): one vote each, the nearer wins.
    y = np.array([0, 0, 1, 1, 1, 1])
    # 0 -> 15 (0), 20 (1): tie, 15 is nearer -> 0, right; 15 -> 20 (1), 0 (0) -> 1, wrong;
    # 20 -> 15 (0), 0 (0) -> 0, wrong; 90 -> 100, 115 -> 1, right; 100 -> 90, 115 -> right;
    # 115 -> 100, 90 -> right: 4 of 6.
    assert knn_accuracy(ANGLES, y, k=2) == pytest.approx(4 / 6)


def test_knn_leaves_out_copies_of_the_image():
    # Every point twice (a bootstrap resample): without groups each copy is the other's nearest
    # neighbour and 1-NN is always right; with the base rows as groups it is the case above.
    flipped = np.array([0, 0, 1, 1, 1, 1])
    rows = np.repeat(np.arange(6), 2)
    assert knn_accuracy(ANGLES[rows], flipped[rows], k=1) == 1.0
    assert knn_accuracy(ANGLES[rows], flipped[rows], k=1, groups=rows) == pytest.approx(4 / 6)


def test_knn_prefers_separated_classes():
    separated, mixed, y = _separated_and_mixed()
    assert knn_accuracy(separated, y) > 0.9 and knn_accuracy(mixed, y) < 0.6  # 1.0 and 0.4
