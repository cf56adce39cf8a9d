"""The log-likelihood surface and profiles (issue 3, item 6) against scipy's densities."""

import numpy as np
import pytest
import scipy.stats

import bayesmle as bm
from bayesmle import models, studies


@pytest.fixture(scope="module")
def gaussian_surface():
    y = np.random.default_rng(0).normal(170.0, 8.0, size=40)
    spec = models.gaussian(y, mu_prior=bm.Normal(5.0, mu=160.0),
                           sigma_prior=bm.HalfNormal(20.0))
    return y, studies.likelihood_surface(spec, grid=60, span=4.0)


def test_surface_values_are_gaussian_log_likelihoods(gaussian_surface):
    y, res = gaussian_surface
    table = res.table
    assert list(table.columns) == ["mu", "sigma", "loglik"] and len(table) == 60 * 60
    ref = np.array([scipy.stats.norm.logpdf(y, m, s).sum()
                    for m, s in zip(table["mu"], table["sigma"], strict=True)])
    np.testing.assert_allclose(table["loglik"], ref, rtol=0, atol=1e-9)
    # the grid spans +-4 standard errors of the MLE
    mu_hat, s_hat = y.mean(), y.std()
    se_mu, se_s = s_hat / np.sqrt(y.size), s_hat / np.sqrt(2 * y.size)
    assert table["mu"].min() == pytest.approx(mu_hat - 4 * se_mu, rel=1e-12)
    assert table["sigma"].max() == pytest.approx(s_hat + 4 * se_s, rel=1e-12)


def test_grid_maximum_is_the_node_nearest_the_mle(gaussian_surface):
    y, res = gaussian_surface
    mu_axis = np.unique(res.table["mu"])
    s_axis = np.unique(res.table["sigma"])
    d_mu = np.abs(mu_axis - y.mean())
    d_s = np.abs(s_axis - y.std())
    best = res.grid_argmax
    # with an even grid the MLE sits between nodes: ties are allowed
    assert abs(best["mu"] - y.mean()) == pytest.approx(d_mu.min(), abs=1e-12)
    assert abs(best["sigma"] - y.std()) == pytest.approx(d_s.min(), abs=1e-12)
    assert res.max_loglik == pytest.approx(scipy.stats.norm.logpdf(y, y.mean(), y.std()).sum(),
                                           abs=1e-9)
    assert res.table["loglik"].max() <= res.max_loglik
    # the MAP is pulled towards the prior mean 160
    assert res.map.params["mu"] < res.mle.params["mu"]


def test_profiles_match_closed_forms(gaussian_surface):
    y, res = gaussian_surface
    n = y.size
    prof = res.profiles
    mu = prof[prof["parameter"] == "mu"]
    s2 = np.array([np.mean((y - v) ** 2) for v in mu["value"]])
    np.testing.assert_allclose(mu["profile_loglik"], -n / 2 * np.log(2 * np.pi * s2) - n / 2,
                               rtol=0, atol=1e-9)
    ref = [scipy.stats.norm.logpdf(y, v, y.std()).sum() for v in mu["value"]]
    np.testing.assert_allclose(mu["slice_loglik"], ref, rtol=0, atol=1e-9)
    sig = prof[prof["parameter"] == "sigma"]
    ref = [scipy.stats.norm.logpdf(y, y.mean(), v).sum() for v in sig["value"]]
    np.testing.assert_allclose(sig["profile_loglik"], ref, rtol=0, atol=1e-9)
    assert (mu["profile_loglik"] >= mu["slice_loglik"] - 1e-9).all()
    fig = res.plot()
    assert len(fig.axes) >= 3


def test_regression_surface_and_support_truncation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 1))
    y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=8)
    res = studies.likelihood_surface(models.linear_regression(X, y),
                                     params=["coef[x0]", "sigma"], grid=15)
    # sigma's axis would go below 0 at n = 8: it is cut inside the support
    assert res.table["sigma"].min() > 0
    full = np.column_stack([np.ones(8), X])
    beta = res.mle.flat_params()[:2]
    for _, row in res.table.sample(20, random_state=0).iterrows():
        b = np.array([beta[0], row["coef[x0]"]])
        ref = scipy.stats.norm.logpdf(y, full @ b, row["sigma"]).sum()
        assert row["loglik"] == pytest.approx(ref, abs=1e-9)


def test_surface_validates_its_inputs(gaussian_surface):
    y, _ = gaussian_surface
    spec = models.gaussian(y)
    with pytest.raises(bm.SpecError, match="two distinct labels"):
        studies.likelihood_surface(spec, params=["mu", "mu"])
    with pytest.raises(bm.SpecError, match="grid"):
        studies.likelihood_surface(spec, grid=2)
    with pytest.raises(bm.SpecError, match="span"):
        studies.likelihood_surface(spec, span=-1.0)
    with pytest.raises(bm.SpecError, match="single parameter"):
        studies.likelihood_surface(models.poisson([1, 2, 3]))
