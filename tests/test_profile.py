"""Profile-likelihood intervals (``conf_int(method="profile")``) against independent references.

Closed forms (Gaussian mean with sigma profiled out), likelihood-ratio intervals solved by
scipy's brentq on closed-form log-likelihoods (Gaussian sigma, Bernoulli, Poisson,
exponential, a one-coefficient lasso posterior), a Gaussian posterior (MAP profile = exact
quantiles) and statsmodels GLM fits with the profiled coefficient moved into the offset.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats

import bayesmle as bm
from bayesmle import models
from bayesmle.inference.profile import parameter_range, profile_curve, profile_interval

sm = pytest.importorskip("statsmodels.api")


def lr_interval(loglik, estimate, lower, upper, level=0.95):
    """Roots of 2 (l(est) - l(c)) = chi2_1(level) on each side, by brentq."""
    q = scipy.stats.chi2.ppf(level, 1)
    top = loglik(estimate)

    def f(c):
        return 2 * (top - loglik(c)) - q

    return (scipy.optimize.brentq(f, lower, estimate, xtol=1e-15, rtol=1e-15),
            scipy.optimize.brentq(f, estimate, upper, xtol=1e-15, rtol=1e-15))


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_gaussian_mean_and_sigma_closed_forms(level):
    y = np.random.default_rng(1).normal(3.0, 2.0, size=30)
    n = y.size
    ci = bm.fit(models.gaussian(y), "mle").conf_int(level=level, method="profile")
    q = scipy.stats.chi2.ppf(level, 1)
    m, s = y.mean(), y.std()
    # max over sigma of the loglik at mu: -n/2 log(2 pi s2(mu)) - n/2, s2(mu) = s^2 + (m - mu)^2,
    # so 2 (l_hat - l_p(mu)) = n log(1 + (m - mu)^2 / s^2) = q  <=>  |m - mu| = s sqrt(e^{q/n} - 1)
    half = s * np.sqrt(np.expm1(q / n))
    np.testing.assert_allclose(ci.loc["mu"], [m - half, m + half], rtol=1e-12)
    # profile of sigma: mu = mean(y) for every sigma
    lo, hi = lr_interval(lambda sg: scipy.stats.norm.logpdf(y, m, sg).sum(), s, 1e-3, 100.0,
                         level)
    np.testing.assert_allclose(ci.loc["sigma"], [lo, hi], rtol=1e-10)


def test_one_parameter_families_match_likelihood_ratio_intervals():
    rng = np.random.default_rng(2)
    yb = (rng.random(40) < 0.3).astype(float)
    k, n = yb.sum(), yb.size
    ci = bm.fit(models.bernoulli(yb), "mle").conf_int(method="profile")
    ref = lr_interval(lambda p: scipy.stats.binom.logpmf(k, n, p), k / n, 1e-12, 1 - 1e-12)
    np.testing.assert_allclose(ci.loc["p"], ref, rtol=1e-10)

    yp = rng.poisson(2.5, size=25)
    ci = bm.fit(models.poisson(yp), "mle").conf_int(method="profile")
    ref = lr_interval(lambda lam: scipy.stats.poisson.logpmf(yp, lam).sum(), yp.mean(), 1e-9,
                      50.0)
    np.testing.assert_allclose(ci.loc["rate"], ref, rtol=1e-10)

    ye = rng.exponential(1 / 1.5, size=15)
    ci = bm.fit(models.exponential(ye), "mle").conf_int(level=0.9, method="profile")
    ref = lr_interval(lambda r: scipy.stats.expon.logpdf(ye, scale=1 / r).sum(),
                      1 / ye.mean(), 1e-6, 50.0, level=0.9)
    np.testing.assert_allclose(ci.loc["rate"], ref, rtol=1e-10)


def glm_profile_interval(y, full, j, family, level=0.95):
    """statsmodels reference: coefficient j fixed via the offset, the rest refitted by IRLS."""
    ref = sm.GLM(y, full, family=family).fit(tol=1e-14)
    others = np.delete(full, j, axis=1)

    def loglik(c):
        return sm.GLM(y, others, family=family, offset=c * full[:, j]).fit(tol=1e-14).llf

    b, se = ref.params[j], ref.bse[j]
    return lr_interval(loglik, b, b - 8 * se, b + 8 * se, level)


def test_logistic_regression_matches_statsmodels_profiles():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    eta = 0.3 + X @ np.array([1.5, -1.0])
    y = (rng.random(40) < 1 / (1 + np.exp(-eta))).astype(float)
    res = bm.fit(models.logistic_regression(X, y), "mle")
    ci = res.conf_int(method="profile")
    full = sm.add_constant(X)
    for j, label in enumerate(["intercept", "coef[x0]", "coef[x1]"]):
        ref = glm_profile_interval(y, full, j, sm.families.Binomial())
        np.testing.assert_allclose(ci.loc[label], ref, rtol=1e-8, atol=1e-10)
    # profile intervals are not symmetric about the estimate, unlike Wald's
    wald = res.conf_int()
    assert not np.allclose(ci["upper"] - res.flat_params(), res.flat_params() - ci["lower"],
                           rtol=1e-3)
    assert list(wald.index) == list(ci.index)


def test_poisson_regression_with_offset_matches_statsmodels():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    exposure = rng.uniform(0.5, 2.0, size=60)
    y = rng.poisson(exposure * np.exp(0.2 + X @ np.array([0.4, -0.3])))
    res = bm.fit(models.poisson_regression(X, y, exposure=exposure), "mle")
    ci = profile_interval(res, level=0.9, labels=["coef[x1]"])
    full = sm.add_constant(X)
    ref_fit = sm.GLM(y, full, family=sm.families.Poisson(), offset=np.log(exposure))
    b, se = ref_fit.fit(tol=1e-14).params[2], ref_fit.fit(tol=1e-14).bse[2]

    def loglik(c):
        return sm.GLM(y, full[:, :2], family=sm.families.Poisson(),
                      offset=np.log(exposure) + c * full[:, 2]).fit(tol=1e-14).llf

    ref = lr_interval(loglik, b, b - 8 * se, b + 8 * se, 0.9)
    np.testing.assert_allclose(ci.loc["coef[x1]"], ref, rtol=1e-8)
    assert list(ci.index) == ["coef[x1]"]




def test_map_profile_of_a_gaussian_posterior_is_exact():
    # Known sigma and a Normal prior: the log-posterior is exactly quadratic, so the profile
    # interval is mode +- sqrt(chi2_1(level)) * posterior sd.
    rng = np.random.default_rng(6)
    X = rng.normal(size=(25, 2))
    y = X @ np.array([1.0, -2.0]) + rng.normal(size=25)
    tau, sigma = 0.7, 1.0
    spec = models.linear_regression(X, y, intercept=False, prior=bm.Normal(tau), sigma=sigma)
    res = bm.fit(spec, "map")
    prec = X.T @ X / sigma**2 + np.eye(2) / tau**2
    cov = np.linalg.inv(prec)
    mode = cov @ X.T @ y / sigma**2
    half = np.sqrt(scipy.stats.chi2.ppf(0.95, 1) * np.diag(cov))
    ci = res.conf_int(method="profile")
    np.testing.assert_allclose(ci["lower"], mode - half, rtol=1e-9)
    np.testing.assert_allclose(ci["upper"], mode + half, rtol=1e-9)


def test_map_profile_with_a_lasso_zero_is_the_penalised_profile():
    # One coefficient, known sigma, Laplace(b) prior: log-posterior
    # -(y - x c)'(y - x c) / (2 sigma^2) - |c| / b; the MAP is exactly 0 when |x'y| <= sigma^2/b.
    rng = np.random.default_rng(7)
    x = rng.normal(size=20)
    y = 0.05 * x + rng.normal(size=20)
    b = 0.5 * 1.0 / abs(x @ y)
    spec = models.linear_regression(x[:, None], y, intercept=False, prior=bm.Laplace(b),
                                    sigma=1.0)
    res = bm.fit(spec, "map")
    assert res.params["coef"][0] == 0.0

    def logpost(c):
        return -np.sum((y - x * c) ** 2) / 2 - abs(c) / b

    ref = lr_interval(logpost, 0.0, -10.0, 10.0)
    ci = res.conf_int(method="profile")
    np.testing.assert_allclose(ci.loc["coef[x0]"], ref, rtol=1e-9)


def test_profile_curve_and_parameter_range():
    y = np.random.default_rng(8).normal(1.0, 0.5, size=12)
    res = bm.fit(models.gaussian(y), "mle")
    values = np.array([0.6, 0.9, 1.0, 1.4])
    s2 = np.array([np.mean((y - v) ** 2) for v in values])
    ref = -y.size / 2 * np.log(2 * np.pi * s2) - y.size / 2
    np.testing.assert_allclose(profile_curve(res, "mu", values), ref, rtol=1e-12)
    sig = np.array([0.2, 0.5, 1.5])
    ref = [scipy.stats.norm.logpdf(y, y.mean(), s).sum() for s in sig]
    np.testing.assert_allclose(profile_curve(res, "sigma", sig), ref, rtol=1e-12)
    assert np.isnan(profile_curve(res, "sigma", [-1.0])[0])
    assert parameter_range(res, "mu") == (-np.inf, np.inf)
    assert parameter_range(res, "sigma") == (0.0, np.inf)
    yb = np.array([0, 1, 1, 0, 1, 0, 0, 0], dtype=float)
    assert parameter_range(bm.fit(models.bernoulli(yb), "mle"), "p") == (0.0, 1.0)


def test_errors_name_the_problem():
    y = np.random.default_rng(9).normal(size=10)
    res = bm.fit(models.gaussian(y), "mle")
    with pytest.raises(bm.SpecError, match=r"valid methods: \['wald', 'profile'\]"):
        res.conf_int(method="bootstrap")
    with pytest.raises(bm.SpecError, match="level"):
        res.conf_int(level=1.5, method="profile")
    with pytest.raises(bm.SpecError, match="Unknown parameter label"):
        profile_interval(res, labels=["nu"])
    lap = bm.fit(models.gaussian(y, mu_prior=bm.Normal(1.0)), "laplace", draws=10,
                 random_seed=0)
    with pytest.raises(bm.SpecError, match="'mle' and 'map'"):
        lap.conf_int(method="profile")
    X = np.random.default_rng(10).normal(size=(30, 1))
    yl = X[:, 0] + np.random.default_rng(11).laplace(size=30)
    lad = bm.fit(models.robust_regression(X, yl, noise="laplace"), "mle")
    with pytest.raises(bm.SpecError, match="least-absolute-deviations"):
        lad.conf_int(method="profile")
    assert isinstance(res.conf_int(method="wald"), pd.DataFrame)
