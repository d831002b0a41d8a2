"""hpbandster's internals the warm start uses, against the real hpbandster (an upgrade that
changes them fails here), and the statsmodels warning its KDEs raise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ConfigSpace import ConfigurationSpace, Float
from hpbandster.optimizers.config_generators.bohb import BOHB

from automl_chars.search import hpbandster_compat as compat


def _bohb():
    space = ConfigurationSpace(seed=0)
    space.add(Float("x", (0.0, 1.0)))
    return BOHB(space, min_points_in_model=3, random_fraction=0)


def _feed(bohb, n, budget=1):
    for i in range(n):
        compat.add_prior(bohb, {"x": i / n}, budget, -i / n, ("p", budget, i),
                         update_model=i == n - 1)


def test_priors_fed_build_a_model_that_is_refit_and_can_be_retired_and_rescaled():
    bohb = _bohb()
    _feed(bohb, 6)
    assert compat.results_at(bohb, 1) == 6 and 1 in bohb.kde_models  # a model from the priors
    compat.retire_prior(bohb, 1, 2)
    assert compat.results_at(bohb, 1) == 5 and bohb.configs[1][2][0] == pytest.approx(3 / 6)
    compat.set_loss(bohb, 1, 0, -5.0)
    assert compat.loss_of(bohb, 1, 0) == -5.0
    _, info = bohb.get_config(1)
    assert info["model_based_pick"]
    compat.forget_results(bohb)  # as a fresh BOHB: no data, no model, random picks
    assert compat.results_at(bohb, 1) == 0 and not bohb.kde_models
    assert not bohb.get_config(1)[1]["model_based_pick"]


def test_the_statsmodels_warning_the_filter_hides_is_still_raised_by_hpbandsters_kde():
    """The filter names statsmodels' exact message: while statsmodels still raises it, the
    filter is needed; when it stops (the default generator changed), remove the filter."""
    import statsmodels.api as sm

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.random.seed(0)
        sm.nonparametric.KDEMultivariate(data=np.random.rand(10, 1), var_type="c",
                                         bw="normal_reference")
    assert any(compat.STATSMODELS_SEED_WARNING in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", message=compat.STATSMODELS_SEED_WARNING,
                                category=FutureWarning)
        _feed(_bohb(), 6)
    assert not [w for w in caught if compat.STATSMODELS_SEED_WARNING in str(w.message)]


def test_fast_truncnorm_draws_what_scipy_draws_from_the_same_stream():
    """The candidates BOHB's model proposes do not change with the faster sampler: the same
    numbers (to rounding) and numpy's global generator left where scipy leaves it, over the
    (mean, bandwidth) pairs hpbandster passes, a mirrored upper tail and bounds deep in one."""
    import scipy.stats as sps

    rng = np.random.default_rng(0)
    cases = [(-m / bw, (1 - m) / bw, m, bw) for m, bw in
             zip(rng.uniform(0, 1, 300), 10 ** rng.uniform(-3, 0.5, 300))]
    cases += [(0.5, 3.0, 0.0, 1.0), (2.0, 9.0, 1.0, 0.1), (40.0, 41.0, 0.0, 1.0),
              (-41.0, -40.0, 0.0, 1.0), (-1.0, 1.0, 0.0, 1.0)]
    for seed in (0, 1):
        np.random.seed(seed)
        expected = [sps.truncnorm.rvs(a, b, loc=loc, scale=s) for a, b, loc, s in cases]
        after = np.random.uniform()
        np.random.seed(seed)
        drawn = [compat.FastTruncnorm.rvs(a, b, loc=loc, scale=s) for a, b, loc, s in cases]
        assert np.random.uniform() == after
        np.testing.assert_allclose(drawn, expected, rtol=1e-9, atol=1e-12)
        assert all(loc + s * a <= x <= loc + s * b
                   for x, (a, b, loc, s) in zip(drawn, cases))


def test_bohb_samples_through_the_fast_truncnorm():
    from hpbandster.optimizers.config_generators import bohb as bohb_module

    assert bohb_module.sps.truncnorm is compat.FastTruncnorm
    assert bohb_module.sps.norm is __import__("scipy.stats").stats.norm  # the rest is scipy's
    bohb = _bohb()
    _feed(bohb, 6)
    np.random.seed(0)
    config, info = bohb.get_config(1)
    assert info["model_based_pick"] and 0.0 <= config["x"] <= 1.0


def test_fast_kde_gives_statsmodels_densities():
    """The same densities as statsmodels' own loop, to the bit: mixed continuous and unordered
    variables as hpbandster builds them, a one-level column (statsmodels' inf/nan kept), several
    points at once, the training data, and ordered variables through statsmodels' path."""
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, var_type in ((60, "cucuuccu"), (12, "cc"), (9, "uu"), (20, "cuo")):
            data = rng.uniform(size=(n, len(var_type)))
            for j, kind in enumerate(var_type):
                if kind != "c":
                    data[:, j] = rng.integers(0, 3, n)
            if "u" in var_type:
                data[:, var_type.index("u")] = 1.0  # one level: statsmodels divides by zero
            points = np.vstack([data[:4], rng.uniform(size=(3, len(var_type))),
                                np.round(rng.uniform(0, 2, size=(3, len(var_type))))])
            slow = KDEMultivariate(data=data, var_type=var_type, bw="normal_reference")
            fast = compat.FastKDE(data=data, var_type=var_type, bw="normal_reference")
            np.testing.assert_array_equal(fast.bw, slow.bw)
            np.testing.assert_array_equal(fast.pdf(points), slow.pdf(points))
            np.testing.assert_array_equal(fast.pdf(), slow.pdf())
            for point in points:  # one point at a time, as hpbandster calls it
                np.testing.assert_array_equal(fast.pdf(list(point)), slow.pdf(list(point)))
            assert np.isfinite(fast.pdf(data[0]))


def test_bohb_fits_fast_kdes_and_picks_with_them():
    from hpbandster.optimizers.config_generators import bohb as bohb_module

    assert bohb_module.sm.nonparametric.KDEMultivariate is compat.FastKDE
    bohb = _bohb()
    _feed(bohb, 6)
    assert {type(k) for m in bohb.kde_models.values() for k in m.values()} == {compat.FastKDE}
    np.random.seed(0)
    config, info = bohb.get_config(1)
    assert info["model_based_pick"] and 0.0 <= config["x"] <= 1.0


def test_the_faster_imputation_gives_hpbandsters_data_from_the_same_draws():
    """BOHB's refit imputes inactive (NaN) values from other rows; the faster loop gives the
    same array and leaves numpy's global generator where hpbandster's leaves it, on data with
    conditional columns, a column no row sets, and a NaN in the first column (hpbandster's
    ``np.any`` of the indices skips a row whose only NaN is there)."""
    bohb = _bohb()
    bohb.vartypes = np.array([0, 3, 0, 4, 0, 2])
    rng = np.random.default_rng(1)
    for n in (1, 7, 60):
        array = rng.uniform(size=(n, 6))
        array[rng.uniform(size=(n, 6)) < 0.4] = np.nan
        array[:, 4] = np.nan  # no donor: a random value
        array[0, :] = [np.nan, 1, 0.5, 2, 0.1, 1]  # only the first column missing
        for seed in (0, 1):
            np.random.seed(seed)
            expected = compat.HPBANDSTER_IMPUTE(bohb, array)
            after = np.random.uniform()
            np.random.seed(seed)
            got = bohb.impute_conditional_data(array)
            assert np.random.uniform() == after
            np.testing.assert_array_equal(got, expected)
        assert np.isnan(got[0, 0]) and not np.isnan(got[1:]).any()
