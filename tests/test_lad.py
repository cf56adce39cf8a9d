"""Least-absolute-deviations regression (``robust_regression(noise="laplace")``): exact optima.

References: brute-force enumeration of vertices (the LAD fit interpolates p observations),
statsmodels ``QuantReg(q=0.5)`` on its Engel data, scikit-learn ``QuantileRegressor`` for the
L1-penalised case (its objective at q=0.5 is sum|r| / (2n) + alpha·|coef|_1, so a Laplace(b)
coefficient prior at noise scale sigma maps to alpha = sigma / (2 n b)), and closed forms for
sigma (mean absolute residual) and the Laplace log-density.
"""

import itertools

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

import bayesmle as bm
from bayesmle import models


def _design(X):
    return np.hstack([np.ones((X.shape[0], 1)), X])


def test_lad_equals_vertex_enumeration(rng):
    n = 15
    X = rng.normal(size=(n, 2))
    y = 1.0 + X @ [2.0, -1.0] + rng.laplace(size=n)
    A = _design(X)
    best = None
    for rows in itertools.combinations(range(n), 3):
        sub = A[list(rows)]
        if abs(np.linalg.det(sub)) < 1e-12:
            continue
        beta = np.linalg.solve(sub, y[list(rows)])
        obj = np.abs(y - A @ beta).sum()
        if best is None or obj < best[0]:
            best = (obj, beta)
    res = bm.fit(models.robust_regression(X, y, noise="laplace"), "mle")
    est = np.concatenate([[res.params["intercept"]], res.params["coef"]])
    assert res.converged
    np.testing.assert_allclose(est, best[1], rtol=1e-12, atol=1e-13)
    sigma = best[0] / n
    np.testing.assert_allclose(res.params["sigma"], sigma, rtol=1e-12)
    resid = y - A @ best[1]
    loglik = scipy.stats.laplace.logpdf(resid, scale=sigma).sum()
    assert res.loglik == pytest.approx(loglik, rel=1e-12)
    # Expected information for the coefficients, observed (= expected) for sigma.
    cov = sigma**2 * np.linalg.inv(A.T @ A)
    np.testing.assert_allclose(res.stderr["coef"], np.sqrt(np.diag(cov))[1:], rtol=1e-10)
    assert res.stderr["sigma"] == pytest.approx(sigma / np.sqrt(n), rel=1e-10)


def test_lad_matches_statsmodels_quantreg():
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.engel.load_pandas().data
    res = bm.fit(models.robust_regression(data[["income"]], data["foodexp"], noise="laplace"),
                 "mle")
    ref = sm.QuantReg(data["foodexp"], sm.add_constant(data[["income"]])).fit(
        q=0.5, max_iter=20000, p_tol=1e-12)
    assert res.converged
    est = [float(res.params["intercept"]), float(res.params["coef"][0])]
    np.testing.assert_allclose(est, ref.params.to_numpy(), rtol=1e-6)
    # Our objective is at least as low as the iterative reference's.
    ours = np.abs(data["foodexp"] - est[0] - est[1] * data["income"]).sum()
    theirs = np.abs(ref.resid).sum()
    assert ours <= theirs + 1e-9 * theirs


def test_lasso_lad_matches_sklearn_quantile_regressor(rng):
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    n, b = 300, 0.05
    X = rng.normal(size=(n, 8))
    y = 0.5 + X[:, :3] @ [2.0, -1.0, 0.5] + rng.laplace(size=n)
    res = bm.fit(models.robust_regression(X, y, noise="laplace", prior=bm.Laplace(b)), "map")
    assert res.converged
    sigma = float(res.params["sigma"])
    resid = y - res.params["intercept"] - X @ res.params["coef"]
    assert sigma == pytest.approx(np.abs(resid).mean(), rel=1e-12)  # sigma's fixed point
    ref = sklearn_lm.QuantileRegressor(quantile=0.5, alpha=sigma / (2 * n * b),
                                       solver="highs").fit(X, y)
    zeros = res.params["coef"] == 0.0
    assert 0 < zeros.sum() < 8
    np.testing.assert_array_equal(zeros, np.abs(ref.coef_) < 1e-10)
    np.testing.assert_allclose(res.params["coef"], ref.coef_, rtol=1e-6, atol=1e-9)
    assert np.all(np.isnan(res.stderr["coef"][zeros]))


def test_lad_map_sigma_prior_solves_its_score_equation(rng):
    n, tau = 40, 0.5
    X = rng.normal(size=(n, 2))
    y = X @ [1.0, 1.0] + 2.0 * rng.laplace(size=n)
    res = bm.fit(models.robust_regression(X, y, noise="laplace",
                                          sigma_prior=bm.HalfNormal(tau)), "map")
    mle = bm.fit(models.robust_regression(X, y, noise="laplace"), "mle")
    # The coefficients do not depend on sigma's prior; sigma maximises the 1-D posterior.
    np.testing.assert_allclose(res.params["coef"], mle.params["coef"], rtol=1e-12)
    abs_sum = float(mle.params["sigma"]) * n

    def neg(log_s):
        s = np.exp(log_s)
        return n * np.log(s) + abs_sum / s - scipy.stats.halfnorm.logpdf(s, scale=tau)

    ref = scipy.optimize.minimize_scalar(neg, bracket=(-3, 1), tol=1e-12)
    assert res.converged
    assert float(res.params["sigma"]) == pytest.approx(np.exp(ref.x), rel=1e-7)


def test_laplace_approximation_refuses_lad(rng):
    X = rng.normal(size=(20, 1))
    spec = models.robust_regression(X, X[:, 0] + rng.laplace(size=20), noise="laplace")
    with pytest.raises(bm.SpecError, match="not defined"):
        bm.fit(spec, "laplace", random_seed=1)
