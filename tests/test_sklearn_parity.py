"""Gaussian prior = ridge, Laplace prior = lasso: parity with scikit-learn (issue 2, item 4).

Mappings (DESIGN.md): linear regression with noise sigma and slopes ~ Normal(0, tau) has MAP
slopes = Ridge(alpha = sigma^2 / tau^2); slopes ~ Laplace(0, b) give Lasso(alpha = sigma^2 /
(b n)); with sigma estimated jointly the MAP is the fixed point with sigma^2 = RSS / n, so the
reference is fitted at our sigma and then the fixed point itself is checked. Logistic
regression: Normal(0, tau) = LogisticRegression(l2, C = tau^2), Laplace(0, b) = (l1, C = b),
intercept unpenalised.
"""

import warnings

import numpy as np
import pytest

import bayesmle as bm

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.linear_model import Lasso, LogisticRegression, Ridge  # noqa: E402

RTOL = 1e-5


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = np.maximum(np.abs(b), 1e-12 * np.max(np.abs(b)))
    return np.max(np.abs(a - b) / scale)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


def test_ridge(diabetes):
    X, y = diabetes
    tau = 50.0
    res = bm.fit(bm.models.linear_regression(X, y, prior=bm.Normal(tau)), "map")
    assert res.converged
    sigma = float(res.params["sigma"])
    ref = Ridge(alpha=sigma**2 / tau**2, tol=1e-14, solver="cholesky").fit(X, y)
    assert rel(res.params["coef"], ref.coef_) <= RTOL
    assert rel(res.params["intercept"], ref.intercept_) <= RTOL
    resid = y - ref.predict(X)
    assert rel(sigma**2, np.mean(resid**2)) <= 1e-9


@pytest.mark.parametrize("b", [8.0, 40.0, 400.0])
def test_lasso_exact_zeros(diabetes, b):
    X, y = diabetes
    n = len(y)
    res = bm.fit(bm.models.linear_regression(X, y, prior=bm.Laplace(b)), "map")
    assert res.converged
    sigma = float(res.params["sigma"])
    ref = Lasso(alpha=sigma**2 / (b * n), tol=1e-14, max_iter=1_000_000).fit(X, y)
    ours = res.params["coef"]
    np.testing.assert_array_equal(ours == 0.0, ref.coef_ == 0.0)
    assert (ours == 0.0).sum() > 0 or b == 400.0
    nz = ref.coef_ != 0
    assert rel(ours[nz], ref.coef_[nz]) <= RTOL
    assert rel(res.params["intercept"], ref.intercept_) <= RTOL
    # the reference's coefficients are good to ~1e-7 (coordinate descent at tol=1e-14), which
    # bounds how well its RSS pins down sigma^2 = RSS / n
    assert rel(sigma**2, np.mean((y - ref.predict(X)) ** 2)) <= 1e-7
    # lasso coefficients at zero have no standard error; the others do
    assert np.all(np.isnan(res.stderr["coef"][~nz]))
    assert np.all(np.isfinite(res.stderr["coef"][nz]))


def test_lasso_many_zeros_synthetic():
    rng = np.random.default_rng(7)
    n, d = 200, 20
    X = rng.normal(size=(n, d))
    beta = np.r_[np.array([3.0, -2.0, 1.5, 1.0, -1.0, 0.5, 0.5, -0.5]), np.zeros(d - 8)]
    y = 1.0 + X @ beta + rng.normal(size=n)
    b = 0.05
    res = bm.fit(bm.models.linear_regression(X, y, prior=bm.Laplace(b)), "map")
    sigma = float(res.params["sigma"])
    ref = Lasso(alpha=sigma**2 / (b * n), tol=1e-14, max_iter=1_000_000).fit(X, y)
    np.testing.assert_array_equal(res.params["coef"] == 0.0, ref.coef_ == 0.0)
    assert (ref.coef_ == 0).sum() >= 5
    nz = ref.coef_ != 0
    assert rel(res.params["coef"][nz], ref.coef_[nz]) <= RTOL


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return X[:, :10], y


def test_logistic_l2(cancer):
    X, y = cancer
    tau = 1.5
    res = bm.fit(bm.models.logistic_regression(X, y, prior=bm.Normal(tau)), "map")
    ref = LogisticRegression(C=tau**2, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(
        X, y)
    assert res.converged
    assert rel(res.params["coef"], ref.coef_.ravel()) <= RTOL
    assert rel(res.params["intercept"], ref.intercept_) <= RTOL


def test_logistic_l1(cancer):
    X, y = cancer
    b = 0.1
    res = bm.fit(bm.models.logistic_regression(X, y, prior=bm.Laplace(b)), "map")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(C=b, l1_ratio=1.0, solver="saga", tol=1e-13,
                                 max_iter=2_000_000).fit(X, y)
    assert res.converged
    coef = ref.coef_.ravel()
    np.testing.assert_array_equal(res.params["coef"] == 0.0, np.abs(coef) < 1e-9)
    nz = np.abs(coef) >= 1e-9
    assert rel(res.params["coef"][nz], coef[nz]) <= RTOL
