"""The small-matrix kernels and certificates behind fast ridge / lasso MAP fits (issue 16).

Spec construction and the proximal Newton step do their (p x p) algebra with compiled loops
instead of (threaded) BLAS/LAPACK calls, certify the Gram factor's conditioning by a norm bound
instead of an SVD, and start Gaussian standardised coordinates at their least-squares anchor.
Everything here is checked against numpy / scipy / scikit-learn computations written in the
test; no timings are asserted.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.linalg
from sklearn.linear_model import Lasso

import bayesmle as bm
from bayesmle.inference.optimize import _positive_definite
from bayesmle.models.design import (
    SMALL_MAX,
    as_design,
    cond_bound,
    gram,
    gram_factor,
    matvec,
    small_cholesky,
    small_matmul,
    triangular_gram,
    triangular_inverse,
)

EPS = np.finfo(float).eps


def _spd(p: int, seed: int, rows: int | None = None) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((rows or 3 * p + 2, p))
    return a.T @ a


@pytest.mark.parametrize("p", [1, 2, 7, 64, 101, SMALL_MAX + 8])
def test_kernels_match_lapack_and_numpy(p):
    h = _spd(p, seed=p)
    r = small_cholesky(h)
    ref = scipy.linalg.cholesky(h, lower=False)
    scale = np.abs(ref).max()
    assert np.allclose(np.tril(r, -1), 0.0)
    assert np.max(np.abs(r - ref)) <= 1e3 * p * EPS * scale
    r_inv = triangular_inverse(r)
    assert np.allclose(np.tril(r_inv, -1), 0.0)
    assert np.max(np.abs(r_inv - np.linalg.inv(ref))) <= 1e3 * p * EPS * np.abs(r_inv).max()
    g = triangular_gram(r)
    assert np.array_equal(g, g.T)
    assert np.max(np.abs(g - ref.T @ ref)) <= 1e3 * p * EPS * np.abs(h).max()
    v = np.random.default_rng(1).standard_normal(p)
    assert np.allclose(matvec(h, v), h @ v, rtol=0, atol=1e3 * p * EPS * scale**2)
    x = np.random.default_rng(5).standard_normal((700, p))
    gx = gram(x)
    assert np.array_equal(gx, gx.T)
    assert np.allclose(gx, x.T @ x, rtol=0, atol=1e-12 * 700 * p)
    m = np.random.default_rng(4).standard_normal((p, p + 2))
    assert np.allclose(small_matmul(h, m), h @ m, rtol=0, atol=1e3 * p * EPS * scale**2 * 4)
    a = np.random.default_rng(2).standard_normal((p + 3, p))
    w = np.random.default_rng(3).standard_normal(p + 3)
    assert np.allclose(matvec(a, w, transpose=True), a.T @ w, rtol=0, atol=1e-12 * p)


@pytest.mark.parametrize("bad", ["indefinite", "nan"])
def test_small_cholesky_refuses_non_positive_definite(bad):
    h = _spd(5, seed=0)
    if bad == "indefinite":
        h[2, 2] = -1.0
    else:
        h[1, 3] = h[3, 1] = np.nan
    with pytest.raises(np.linalg.LinAlgError):
        small_cholesky(h)


@pytest.mark.parametrize("seed", range(6))
def test_cond_bound_is_an_upper_bound_within_p(seed):
    rng = np.random.default_rng(seed)
    p = int(rng.integers(2, 60))
    # columns of very different conditioning: nearly collinear pairs in some seeds
    x = rng.standard_normal((4 * p, p))
    x[:, -1] = x[:, 0] + 10.0 ** -rng.integers(0, 6) * x[:, -1]
    r = scipy.linalg.qr(x, mode="r")[0][:p]
    exact = np.linalg.cond(r)  # singular values by LAPACK's SVD
    bound = cond_bound(r, np.linalg.inv(r))
    assert exact * (1 - 1e-10) <= bound <= p * exact * (1 + 1e-10)


def test_gram_factor_certificate_against_the_svd_of_the_design():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((500, 12)) * 10.0 ** rng.integers(-3, 4, size=12)
    f = gram_factor(as_design(X), intercept=True)
    assert f is not None
    a = np.column_stack([np.ones(500), X]) / f.norms
    exact = np.linalg.cond(a)
    assert exact * (1 - 1e-9) <= f.cond <= a.shape[1] * exact
    assert np.allclose(f.r.T @ f.r, f.gram, rtol=0, atol=1e-13)
    assert np.allclose(f.r_inv @ f.r, np.eye(13), rtol=0, atol=1e-13)
    # a design whose scaled condition number is ~1e6 is never certified
    X[:, 1] = X[:, 0] * (1 + 1e-6 * rng.standard_normal(500))
    assert gram_factor(as_design(X), intercept=True) is None


def test_levenberg_marquardt_shift_without_eigenvalues():
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    evals = np.linspace(-3.0, 5.0, 30)
    h = (q * evals) @ q.T
    (c, lower), shifted = _positive_definite(h)
    assert not lower
    tau = shifted[0, 0] - 0.5 * (h + h.T)[0, 0]
    assert np.allclose(shifted - 0.5 * (h + h.T), tau * np.eye(30), rtol=0, atol=1e-12)
    assert tau > 3.0  # beyond minus the smallest eigenvalue (numpy's eigvalsh: -3)
    absum = np.abs(h).sum(axis=1)
    gershgorin = -(np.diag(h) + np.abs(np.diag(h)) - absum).min()
    assert tau <= 4 * max(gershgorin, 3.0) * (1 + 1e-6)
    assert np.allclose(c.T @ c, shifted, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def lasso_problem():
    rng = np.random.default_rng(6)
    n, d = 1500, 30
    X = rng.standard_normal((n, d)) + 0.3 * rng.standard_normal((n, 1))
    beta = np.where(np.arange(d) < 5, rng.normal(0.0, 1.0, d), 0.0)
    y = 0.5 + X @ beta + rng.normal(0.0, 1.5, n)
    b = 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bm.fit(bm.models.linear_regression(X, y, prior=bm.Laplace(b)), "map")
    return X, y, b, fit


def test_lasso_map_equals_scikit_learn_at_the_mapped_alpha(lasso_problem):
    X, y, b, fit = lasso_problem
    assert fit.converged
    sigma = float(fit.params["sigma"])
    ref = Lasso(alpha=sigma**2 / (b * len(y)), tol=1e-14, max_iter=1_000_000).fit(X, y)
    coef = np.asarray(fit.params["coef"])
    assert np.array_equal(coef == 0.0, ref.coef_ == 0.0)
    assert 0 < np.sum(coef == 0.0) < coef.size
    assert np.max(np.abs(coef - ref.coef_)) <= 1e-8
    assert abs(float(fit.params["intercept"]) - ref.intercept_) <= 1e-8
    # sigma is the fixed point sigma^2 = RSS / n of the joint MAP (HalfFlat prior)
    rss = float(np.sum((y - ref.intercept_ - X @ ref.coef_) ** 2))
    assert sigma == pytest.approx(np.sqrt(rss / len(y)), rel=1e-8)


def test_lasso_start_is_the_least_squares_anchor(lasso_problem):
    X, y, b, _ = lasso_problem
    spec = bm.models.linear_regression(X, y, prior=bm.Laplace(b))
    start = spec.start_values()
    scale = spec.arrays()["scale"]
    ls, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)
    assert np.allclose(np.asarray(start["coef_std"]) / scale, ls[1:], rtol=0, atol=1e-10)
    rss = float(np.sum((y - np.column_stack([np.ones(len(y)), X]) @ ls) ** 2))
    assert start["sigma"] == pytest.approx(np.sqrt(rss / len(y)), rel=1e-10)


def test_lasso_fits_from_threads_equal_the_serial_fit(lasso_problem):
    X, y, b, fit = lasso_problem

    def one(_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bm.fit(bm.models.linear_regression(X, y, prior=bm.Laplace(b)), "map")

    with ThreadPoolExecutor(max_workers=3) as pool:
        fits = list(pool.map(one, range(3)))
    for other in fits:
        assert np.array_equal(other.params["coef"], fit.params["coef"])
        assert other.params["sigma"] == fit.params["sigma"]


@pytest.mark.parametrize("p", [1, 2, 7])
def test_compiled_kernels_at_small_sizes(p):
    """Below OpenBLAS's threading thresholds the wrappers use LAPACK/BLAS; the compiled
    kernels themselves are checked here on the same small matrices."""
    from bayesmle.models import _kernels

    h = _spd(p, seed=p)
    ref = scipy.linalg.cholesky(h, lower=False)
    r, ok = _kernels.cholesky_kernel(np.ascontiguousarray(h))
    assert ok and np.max(np.abs(r - ref)) <= 1e3 * p * EPS * np.abs(ref).max()
    r_inv = _kernels.tri_inv_kernel(np.ascontiguousarray(ref))
    assert np.max(np.abs(r_inv - np.linalg.inv(ref))) <= 1e3 * p * EPS * np.abs(r_inv).max()
    g = _kernels.tri_gram_kernel(np.ascontiguousarray(ref))
    assert np.max(np.abs(g - ref.T @ ref)) <= 1e3 * p * EPS * np.abs(h).max()
    v = np.random.default_rng(1).standard_normal(p)
    assert np.allclose(_kernels.matvec_kernel(h, v, False), h @ v, rtol=0,
                       atol=1e3 * p * EPS * np.abs(h).max() * np.abs(v).max())
    assert np.allclose(_kernels.matvec_kernel(h, v, True), h.T @ v, rtol=0,
                       atol=1e3 * p * EPS * np.abs(h).max() * np.abs(v).max())
    x = np.random.default_rng(5).standard_normal((700, p))
    assert np.allclose(_kernels.gram_kernel(x, 256), x.T @ x, rtol=0, atol=1e-12 * 700 * p)
    m = np.random.default_rng(4).standard_normal((p, p + 2))
    assert np.allclose(_kernels.matmul_kernel(h, m), h @ m, rtol=0,
                       atol=1e3 * p * EPS * np.abs(h).max() * np.abs(m).max() * 4)
    bad = h.copy()
    bad[0, 0] = -1.0
    assert not _kernels.cholesky_kernel(bad)[1]
