"""Result surfaces: DataTrees for ArviZ, Laplace approximation, conf_int and summaries."""

import arviz_plots as azp
import numpy as np
import scipy.stats

import bayesmle as bm
from bayesmle import models


def test_point_result_surface_and_forest_plot():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 2))
    y = 0.5 + X @ np.array([1.0, -0.5]) + rng.normal(size=80)
    spec = models.linear_regression(X, y, prior=bm.Normal(1.0))
    mle, map_ = bm.fit(spec, "mle"), bm.fit(spec, "map")
    ci = mle.conf_int(level=0.90)
    z = scipy.stats.norm.ppf(0.95)
    np.testing.assert_allclose(ci["upper"] - ci["lower"], 2 * z * mle.flat_stderr())
    assert list(mle.summary().index) == ["intercept", "coef[x0]", "coef[x1]", "sigma"]
    assert np.isclose(mle.aic, 2 * 4 - 2 * mle.loglik)
    assert np.isclose(mle.bic, 4 * np.log(80) - 2 * mle.loglik)
    trees = {"mle": mle.to_datatree(), "map": map_.to_datatree()}
    assert trees["mle"]["posterior"]["coef"].dims == ("chain", "draw", "feature")
    azp.plot_forest(trees, var_names=["coef"], backend="none")


def test_laplace_is_exact_for_a_gaussian_location():
    # mu ~ Normal(0, 1), y ~ Normal(mu, 2) with sigma known: the posterior is Gaussian, so the
    # Laplace approximation is exact (no transform on mu).
    y = np.random.default_rng(9).normal(1.0, 2.0, size=16)
    spec = models.linear_regression(np.zeros((16, 1)) + np.arange(16)[:, None] * 0.0 + 1.0, y,
                                    intercept=False, prior=bm.Normal(1.0), sigma=2.0)
    prec = 1.0 + 16 / 4.0
    mean = (y.sum() / 4.0) / prec
    lap = bm.fit(spec, "laplace", draws=4000, random_seed=1)
    assert np.isclose(lap.params["coef"][0], mean, rtol=1e-10)
    assert np.isclose(lap.stderr["coef"][0], prec**-0.5, rtol=1e-10)
    se = prec**-0.5 / np.sqrt(4000)
    assert abs(lap.mean()["coef[x0]"] - mean) < 4 * se
