"""The numerical cores against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from automl_chars.similarity import leep, logme, nce, nleep
from automl_chars.similarity.gaussian import Gaussian, classwise_w2_squared, w2_squared
from automl_chars.similarity.task2vec import task2vec_distance
from automl_chars.similarity.transferability import principal_components


def _frechet_sqrtm(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook form, with scipy's matrix square root."""
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sa @ sb).real
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * root))


@pytest.mark.parametrize("n,d", [(60, 5), (40, 12)])
def test_frechet_matches_the_sqrtm_form(n, d):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    b = rng.normal(size=(n + 7, d)) * 2 + 1
    assert w2_squared(Gaussian.fit(a), Gaussian.fit(b)) == pytest.approx(_frechet_sqrtm(a, b), rel=1e-6)


def test_frechet_stable_when_samples_are_fewer_than_dimensions():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 200))
    assert w2_squared(Gaussian.fit(a), Gaussian.fit(a)) == pytest.approx(0.0, abs=1e-9)
    assert np.isfinite(w2_squared(Gaussian.fit(a), Gaussian.fit(rng.normal(size=(30, 200)))))


def test_classwise_distances():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(30, 4))
    y = np.repeat([0, 1, 2], 10)
    f[y == 1] += 5
    d = classwise_w2_squared(f, y, 4, f, y, 3)
    assert d.shape == (4, 3) and np.isnan(d[3]).all()  # class 3 absent
    assert np.allclose(np.diag(d[:3]), 0, atol=1e-9)
    assert d[0, 1] > 20 and d[0, 1] == pytest.approx(d[1, 0])


def test_leep_known_values():
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[y]
    assert leep(perfect, y, 3) == pytest.approx(0.0)
    assert leep(np.full((6, 5), 0.2), y, 3) == pytest.approx(np.log(1 / 3))
    flipped = np.eye(3)[(y + 1) % 3]  # a relabelled but perfect source is just as transferable
    assert leep(flipped, y, 3) == pytest.approx(0.0)


def test_nce_by_hand():
    # Source predictions z = 0, 0, 1, 1 and target labels y = 0, 1, 1, 1:
    # P(z=0) = P(z=1) = 1/2; given z = 0, y is 0 or 1 (1/2 each): H = log 2; given z = 1, y = 1: 0.
    # H(Y | Z) = 1/2 log 2, so NCE = -log(2) / 2.
    z = np.eye(2)[[0, 0, 1, 1]]
    assert nce(z, np.array([0, 1, 1, 1])) == pytest.approx(-np.log(2) / 2, rel=1e-12)
    # Only the argmax counts (probabilities or logits alike), and source labels that determine
    # the target labels, however they are named, give the maximum, 0.
    y = np.array([0, 1, 2, 0, 1, 2])
    assert nce(np.eye(3)[(y + 1) % 3] * 0.5 + 0.1, y) == pytest.approx(0.0, abs=1e-12)
    # A constant prediction tells nothing: NCE = -H(Y) = -log 3 for three balanced classes.
    assert nce(np.tile([0.2, 0.5, 0.3], (6, 1)), y) == pytest.approx(-np.log(3), rel=1e-12)


def test_nce_prefers_informative_predictions():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 25)
    noisy = np.where(rng.random(100) < 0.8, y, rng.integers(0, 4, 100))  # 80 % kept
    assert nce(np.eye(4)[noisy], y) > nce(np.eye(4)[rng.integers(0, 4, 100)], y)


def test_principal_components():
    # Orthogonal centred columns with variances in the ratio 7 : 2 : 1: the first component keeps
    # 70 % of the variance, two keep 90 %, so "more than 80 %" takes two.
    a, b, c = np.sqrt([7.0, 2.0, 1.0])
    f = np.array([[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0], [0, 0, c], [0, 0, -c]]) + 5.0
    assert principal_components(f, variance=0.8).shape == (6, 2)
    assert principal_components(f, variance=0.6).shape == (6, 1)
    first = principal_components(f, n_components=1)[:, 0]
    assert np.allclose(np.abs(first), [a, a, 0, 0, 0, 0])
    assert principal_components(f, n_components=10).shape == (6, 3)  # at most the rank


def test_nleep_by_hand():
    """Two tight clusters far apart and one component per class: the mixture's posteriors are
    one-hot (cluster membership), so NLEEP is LEEP with hard source labels."""
    rng = np.random.default_rng(6)
    centres = np.repeat([[-10.0, 0.0], [10.0, 0.0]], 4, axis=0)
    f = centres + rng.normal(scale=0.1, size=(8, 2))
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])  # 3 : 1 in each cluster
    # P(y | left cluster) = (3/4, 1/4), P(y | right) = (1/4, 3/4): six images get 3/4, two get
    # 1/4, and NLEEP = (6 log 3/4 + 2 log 1/4) / 8 = 3/4 log 3/4 + 1/4 log 1/4.
    expected = 0.75 * np.log(0.75) + 0.25 * np.log(0.25)
    assert nleep(f, y, components_per_class=1) == pytest.approx(expected, rel=1e-9)
    # labels that follow the clusters: the maximum, 0
    assert nleep(f, np.repeat([0, 1], 4), components_per_class=1) == pytest.approx(0.0, abs=1e-9)
    # five components per class on eight images: capped at four (two images each), still a score
    assert -np.log(2) - 1e-9 <= nleep(f, y) <= 0.0


def test_nleep_prefers_separated_classes_and_is_fixed_by_its_seed():
    rng = np.random.default_rng(7)
    y = np.repeat(np.arange(3), 40)
    separated = rng.normal(size=(120, 5)) + 6.0 * np.eye(3, 5)[y]
    mixed = rng.normal(size=(120, 5))
    assert nleep(mixed, y) < nleep(separated, y) <= 0.0
    assert nleep(mixed, y, seed=3) == nleep(mixed, y, seed=3)


def test_logme_prefers_informative_features():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 25)
    informative = np.eye(4)[y] * 3 + rng.normal(scale=0.5, size=(100, 4))
    informative = np.hstack([informative, rng.normal(size=(100, 12))])
    noise = rng.normal(size=(100, 16))
    assert logme(informative, y, 4) > logme(noise, y, 4)
    # more dimensions than samples (d > n) goes through the same formulas
    assert np.isfinite(logme(rng.normal(size=(20, 64)), y[:20] % 2, 2))


def test_task2vec_distance():
    a = np.array([1.0, 2.0, 3.0])
    assert task2vec_distance(a, a) == pytest.approx(0.0)
    assert task2vec_distance(a, 10 * a) == pytest.approx(0.0)  # scale-free
    assert 0 < task2vec_distance(a, a[::-1]) <= 1


def test_otdd_of_a_sample_with_itself_is_zero_and_reacts_to_labels():
    import ot  # noqa: F401  (POT must be installed: the measure needs it)

    from automl_chars.similarity.distribution import OTDD

    rng = np.random.default_rng(4)
    f = rng.normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    f[y == 1] += 3
    m = OTDD()
    same = m.score(None, (f, y, 2), None, (f, y, 2), None)
    swapped = m.score(None, (f, y, 2), None, (f, 1 - y, 2), None)  # renaming: no change
    shuffled = m.score(None, (f, y, 2), None, (f, rng.permutation(y), 2), None)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert swapped == pytest.approx(0.0, abs=1e-6)
    assert shuffled > 1.0
