"""Every internal parametrisation of a linear model gives the same, independently checked answer.

A regression design is parametrised one of four ways (see ``bayesmle.models.design``): QR with
Q never formed (well-conditioned designs), QR with a stored Q (ill-conditioned ones), and the
standardised parametrisation with or without a stored copy of X (Laplace priors; rank-deficient
designs under proper priors). Gaussian models are optimised through sufficient statistics.
Each path is checked here against references computed without bayesmle: ridge MAPs in closed
form (augmented least squares), lasso MAPs against scikit-learn, log-likelihoods against
``scipy.stats.norm``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import Lasso

import bayesmle as bm
from bayesmle import models

SIGMA = 0.7
TAU = 0.5


def _well(rng, n=300, d=4):
    X = rng.standard_normal((n, d)) + np.array([0.5, -1.0, 2.0, 0.0])[:d]
    return X


def _ill(rng, n=300):
    x = rng.uniform(1.0, 10.0, n)
    return np.column_stack([x**k for k in range(1, 7)])  # scaled design: cond ~ 4e4


def _deficient(rng, n=300):
    X = rng.standard_normal((n, 4))
    X[:, 3] = X[:, 0] - 2.0 * X[:, 1]  # exactly collinear
    return X


DESIGNS = {"well": _well, "ill": _ill, "deficient": _deficient}


def _data(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = DESIGNS[kind](rng)
    beta = np.resize([0.8, -0.5, 0.3, 0.0], X.shape[1])
    scale = 1.0 / np.abs(X).max(axis=0)
    y = 1.5 + X @ (beta * scale * 3) + rng.normal(0.0, SIGMA, X.shape[0])
    return X, y


def _exact_lstsq(a, y):
    """The exact least-squares solution of float64 data (rational normal equations)."""
    fa = [[Fraction(v) for v in row] for row in a.tolist()]
    fy = [Fraction(v) for v in y.tolist()]
    p = a.shape[1]
    m = [[sum(r[i] * r[j] for r in fa) for j in range(p)]
         + [sum(r[i] * v for r, v in zip(fa, fy, strict=True))] for i in range(p)]
    for k in range(p):  # Gauss-Jordan elimination, exact
        m[k] = [v / m[k][k] for v in m[k]]
        for i in range(p):
            if i != k and m[i][k] != 0:
                m[i] = [vi - m[i][k] * vk for vi, vk in zip(m[i], m[k], strict=True)]
    return np.array([float(row[-1]) for row in m])


def _ridge_closed_form(X, y, intercept):
    """argmin |y - a - X b|^2 / (2 s^2) + |b|^2 / (2 tau^2), by augmented least squares."""
    n, d = X.shape
    top = np.column_stack([np.ones(n), X]) if intercept else X
    pen = np.zeros((d, top.shape[1]))
    pen[:, int(intercept):] = np.eye(d) * SIGMA / TAU
    sol, *_ = np.linalg.lstsq(np.vstack([top, pen]), np.concatenate([y, np.zeros(d)]),
                              rcond=None)
    return (sol[0], sol[1:]) if intercept else (0.0, sol)


def _loglik(X, y, fit):
    eta = X @ np.asarray(fit.params["coef"]) + float(fit.params.get("intercept", 0.0))
    sigma = float(fit.params["sigma"]) if "sigma" in fit.params else SIGMA
    return stats.norm.logpdf(y, eta, sigma).sum()


def _path(spec):
    arrays = spec.arrays()
    if "Q" in arrays:
        return "stored Q"
    if "Xs" in arrays:
        return "stored Xs"
    return "no copy"


@pytest.mark.parametrize("kind", ["well", "ill", "deficient"])
@pytest.mark.parametrize("intercept", [True, False])
def test_ridge_map_equals_closed_form_on_every_path(kind, intercept):
    X, y = _data(kind)
    spec = models.linear_regression(X, y, prior=bm.Normal(TAU), intercept=intercept,
                                    sigma=SIGMA)
    fit = bm.fit(spec, "map", strict=True)
    a, b = _ridge_closed_form(X, y, intercept)
    expected_path = {"well": "no copy", "ill": "stored Q", "deficient": "stored Xs"}[kind]
    assert _path(spec) == expected_path
    np.testing.assert_allclose(fit.params["coef"], b, rtol=1e-8, atol=1e-10)
    if intercept:
        np.testing.assert_allclose(fit.params["intercept"], a, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.loglik, _loglik(X, y, fit), rtol=1e-10)


@pytest.mark.parametrize("kind", ["well", "ill"])
def test_ols_mle_and_sigma_on_every_path(kind):
    X, y = _data(kind)
    spec = models.linear_regression(X, y)
    fit = bm.fit(spec, "mle", strict=True)
    full = np.column_stack([np.ones(len(y)), X])
    sol = _exact_lstsq(full, y)
    resid = y - full @ sol
    np.testing.assert_allclose(fit.params["coef"], sol[1:], rtol=1e-9)
    np.testing.assert_allclose(fit.params["intercept"], sol[0], rtol=1e-9)
    np.testing.assert_allclose(fit.params["sigma"], np.sqrt(resid @ resid / len(y)), rtol=1e-10)
    np.testing.assert_allclose(fit.loglik, _loglik(X, y, fit), rtol=1e-10)


@pytest.mark.parametrize("kind", ["well", "ill", "deficient"])
def test_lasso_map_satisfies_kkt_and_matches_scikit_learn(kind):
    X, y = _data(kind)
    b = 0.02
    spec = models.linear_regression(X, y, prior=bm.Laplace(b), sigma=SIGMA)
    fit = bm.fit(spec, "map", strict=True)
    assert _path(spec) == ("no copy" if kind == "well" else "stored Xs")
    coef = np.asarray(fit.params["coef"])
    a = float(fit.params["intercept"])
    # Optimality of the convex objective |y - a - X c|^2 / (2 s^2) + |c|_1 / b, checked
    # directly: the subgradient conditions at the returned point.
    score = X.T @ (y - a - X @ coef) / SIGMA**2
    nonzero = coef != 0
    assert abs(np.sum(y - a - X @ coef)) / SIGMA**2 <= 1e-7 * np.abs(score).max() + 1e-9
    np.testing.assert_allclose(score[nonzero], np.sign(coef[nonzero]) / b, rtol=1e-7)
    assert np.all(np.abs(score[~nonzero]) <= (1 + 1e-7) / b)
    if kind == "well":  # coordinate descent converges here: scikit-learn as a second reference
        ref = Lasso(alpha=SIGMA**2 / (b * len(y)), tol=1e-13, max_iter=1_000_000).fit(X, y)
        np.testing.assert_array_equal(coef == 0, ref.coef_ == 0)
        np.testing.assert_allclose(coef, ref.coef_, atol=1e-7)
        np.testing.assert_allclose(a, ref.intercept_, atol=1e-7)
    np.testing.assert_allclose(fit.loglik, _loglik(X, y, fit), rtol=1e-10)


def test_well_conditioned_designs_are_never_copied():
    X, y = _data("well")
    for prior in (None, bm.Normal(1.0), bm.Laplace(0.1)):
        for spec in (models.linear_regression(X, y, prior=prior),
                     models.logistic_regression(X, (y > 1.5).astype(int), prior=prior)):
            arrays = spec.arrays()
            assert "Q" not in arrays and "Xs" not in arrays
            assert np.shares_memory(arrays["X"], X)


def test_perfect_fit_is_still_detected_on_the_fast_path():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    y = 2.0 + X @ np.array([1.0, -2.0, 0.5])
    with pytest.raises(bm.MLENotFoundError, match="exactly"):
        bm.fit(models.linear_regression(X, y), "mle")


@pytest.mark.parametrize("kind", ["well", "ill", "deficient"])
def test_new_data_of_the_same_structure_reuse_the_compiled_model(kind):
    from bayesmle.inference.engine import compiled_model

    cases = [(models.linear_regression, bm.Normal(TAU)),
             (models.linear_regression, bm.Laplace(0.02))]
    if kind == "well":
        cases += [(models.logistic_regression, None), (models.logistic_regression, bm.Laplace(1.0))]
    for builder, prior in cases:
        fits = []
        for seed in (1, 2):
            X, y = _data(kind, seed=seed)
            if builder is models.logistic_regression:
                y = (y > np.median(y)).astype(int)
            spec = builder(X, y, prior=prior)
            assert compiled_model(spec).reusable, (builder.__name__, prior, sorted(spec.arrays()))
            fits.append(bm.fit(spec, "map"))
        assert fits[1].compile_seconds == 0.0, (builder.__name__, prior)
