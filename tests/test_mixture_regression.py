"""Mixtures of linear regressions against a direct scipy optimisation of the same likelihood."""

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

import bayesmle as bm


def _scipy_max(negll, theta0):
    """A tight quasi-Newton maximisation, polished by Nelder-Mead."""
    res = scipy.optimize.minimize(negll, theta0, method="BFGS",
                                  options={"gtol": 1e-10, "maxiter": 10_000})
    res = scipy.optimize.minimize(negll, res.x, method="Nelder-Mead",
                                  options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 40_000,
                                           "maxfev": 40_000})
    return res.x, -res.fun


def test_mixture_regression_equals_scipy():
    rng = np.random.default_rng(5)
    n = 150
    x = rng.uniform(-2, 2, size=(n, 2))
    z = rng.random(n) < 0.4
    y = np.where(z, 1.0 + x @ [2.0, -0.5], 4.0 + x @ [-1.0, 0.5]) \
        + rng.normal(0, np.where(z, 0.4, 0.7))
    spec = bm.models.mixture_regression(pd.DataFrame(x, columns=["a", "b"]), y, 2)
    start = {"weights": np.array([0.5, 0.5]), **spec.start_values()}
    mle = bm.fit(spec, "mle", start=start, starts=1, random_seed=0)
    em = bm.fit(spec, "em", start=start, starts=1, random_seed=0)
    assert mle.converged and em.converged
    assert mle.labels[:4] == ["weights[1]", "weights[2]", "intercept[1]", "intercept[2]"]
    assert "coef[1,a]" in mle.labels

    design = np.column_stack([np.ones(n), x])

    def unpack(t):
        w = scipy.special.expit(t[0])
        betas = t[1:7].reshape(2, 3)
        return np.array([1 - w, w]), betas, np.exp(t[7:9])

    def negll(t):
        w, betas, s = unpack(t)
        lp = np.log(w) + scipy.stats.norm.logpdf(y[:, None], design @ betas.T, s)
        return -scipy.special.logsumexp(lp, axis=1).sum()

    b0 = np.column_stack([start["intercept"], start["coef"]])
    theta, ll = _scipy_max(negll, np.r_[0.0, b0.ravel(), np.log(start["sigma"])])
    w, betas, s = unpack(theta)
    assert abs(mle.loglik - ll) < 1e-7
    np.testing.assert_allclose(mle.params["weights"], w, atol=1e-6)
    np.testing.assert_allclose(mle.params["intercept"], betas[:, 0], atol=1e-5)
    np.testing.assert_allclose(mle.params["coef"], betas[:, 1:], atol=1e-5)
    np.testing.assert_allclose(mle.params["sigma"], s, atol=1e-5)
    for name in ("weights", "intercept", "coef", "sigma"):
        np.testing.assert_allclose(em.params[name], mle.params[name], atol=1e-6)
    # plug-in responsibilities from the parameters, computed here
    dens = w * scipy.stats.norm.pdf(y[:, None], design @ betas.T, s)
    np.testing.assert_allclose(mle.responsibilities().to_numpy(),
                               dens / dens.sum(axis=1, keepdims=True), atol=1e-5)


def test_map_of_a_regression_mixture_needs_a_steeper_sigma_prior():
    # a line through any 2 points (p = 1) with sigma -> 0: the likelihood grows like sigma^-2,
    # so a prior ~ sigma^(a - 1) keeps the posterior density bounded only for a >= 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1))
    y = x[:, 0] + rng.normal(size=40)
    spec = bm.models.mixture_regression(x, y, 2, intercept_prior=bm.Normal(5.0),
                                        coef_prior=bm.Normal(5.0))
    with pytest.raises(bm.MLENotFoundError, match="a >= 3"):
        bm.inference.run(spec.with_priors(sigma=bm.Gamma(2.0, 1.0)), "map")
    steep = spec.with_priors(sigma=bm.Gamma(3.0, 1.0))
    for check in (*steep.map_checks, *steep.posterior_checks):
        check(steep)  # no error
