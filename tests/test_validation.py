"""Typed errors for bad input and for MLEs that do not exist."""

import numpy as np
import pytest

import bayesmle as bm
from bayesmle import models


@pytest.mark.parametrize("bad", [[1.0, np.nan, 2.0], [1.0, np.inf, 3.0], [], [[1.0, 2.0]]])
def test_gaussian_rejects_bad_y(bad):
    with pytest.raises(bm.DataError, match="`y`"):
        models.gaussian(bad)


def test_labels_outside_support():
    with pytest.raises(bm.DataError, match="binary"):
        models.bernoulli([0, 1, 2])
    with pytest.raises(bm.DataError, match="negative"):
        models.poisson([1, -1, 2])
    with pytest.raises(bm.DataError, match="fractional"):
        models.poisson([1, 1.5])
    with pytest.raises(bm.DataError, match="> 0"):
        models.exponential([1.0, 0.0])
    with pytest.raises(bm.DataError, match="exceeds"):
        models.binomial([3, 5], [4, 4])


def test_shapes_must_match():
    with pytest.raises(bm.DataError, match="rows"):
        models.linear_regression(np.ones((5, 2)), np.ones(4))


@pytest.mark.parametrize("make", [lambda: bm.Normal(0.0), lambda: bm.Laplace(-1.0),
                                  lambda: bm.HalfNormal(np.nan), lambda: bm.Gamma(1.0, 0.0)])
def test_invalid_prior_parameters(make):
    with pytest.raises(bm.PriorError, match="> 0|finite"):
        make()


def test_prior_on_wrong_support():
    with pytest.raises(bm.PriorError, match="positive"):
        models.gaussian([1.0, 2.0, 3.0], sigma_prior=bm.Normal(1.0))


def test_unknown_method_and_option():
    spec = models.gaussian([1.0, 2.0, 3.0])
    with pytest.raises(bm.SpecError, match="Valid methods"):
        bm.fit(spec, "bfgs")
    with pytest.raises(bm.SpecError, match="Valid options"):
        bm.fit(spec, "mle", draws=3)


def test_mle_does_not_exist_cases():
    with pytest.raises(bm.MLENotFoundError, match="boundary"):
        bm.fit(models.bernoulli([1, 1, 1]), "mle")
    with pytest.raises(bm.MLENotFoundError, match="zero"):
        bm.fit(models.poisson([0, 0, 0]), "mle")
    with pytest.raises(bm.MLENotFoundError, match="sigma"):
        bm.fit(models.gaussian([2.0, 2.0, 2.0]), "mle")
    # a proper prior makes the MAP exist
    res = bm.fit(models.bernoulli([1, 1, 1], p_prior=bm.Beta(2.0, 2.0)), "map")
    assert np.isclose(res.params["p"], 4 / 5, rtol=1e-10)


def test_collinear_columns_are_named():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    X = np.column_stack([x, x[:, 0] + 2 * x[:, 1]])
    y = rng.normal(size=30)
    with pytest.raises(bm.MLENotFoundError, match=r"x0, x1, x2"):
        bm.fit(models.linear_regression(X, y), "mle")
    with pytest.raises(bm.ImproperPosteriorError):
        bm.fit(models.linear_regression(X, y), "nuts", random_seed=0)
    # ridge is fine on a rank-deficient design
    res = bm.fit(models.linear_regression(X, y, prior=bm.Normal(1.0)), "map")
    assert res.converged


def test_quasi_complete_separation_detected():
    # x > 0 -> y = 1, x < 0 -> y = 0, ties at x = 0 with both outcomes: quasi-complete
    x = np.array([-3, -2, -1, 0, 0, 1, 2, 3], dtype=float)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    with pytest.raises(bm.MLENotFoundError, match="quasi-complete separation"):
        bm.fit(models.logistic_regression(x, y), "mle")
    res = bm.fit(models.logistic_regression(x, y, prior=bm.Normal(2.5)), "map")
    assert res.converged


def test_complete_separation_is_called_complete():
    # Every margin can be made strictly positive (x < 0 all failures, x > 0 all successes),
    # although the sum-of-margins LP may stop at a vertex where some margins are 0.
    x = np.array([-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0])
    y = (x > 0).astype(float)
    with pytest.raises(bm.MLENotFoundError, match="show complete separation"):
        bm.fit(models.logistic_regression(x, y), "mle")
    labels = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    with pytest.raises(bm.MLENotFoundError, match=r"(?<!quasi-)complete separation"):
        bm.fit(models.softmax_regression(np.arange(8.0), labels), "mle")


@pytest.mark.parametrize("noise", [None, "laplace"])
def test_exact_fit_has_no_mle_of_sigma(noise):
    X = np.random.default_rng(3).normal(size=(30, 2)) * 1e3
    y = 1e6 + X @ np.array([2.0, -0.5])  # y lies exactly in the span of [1, X]
    spec = (models.linear_regression(X, y) if noise is None
            else models.robust_regression(X, y, noise=noise))
    with pytest.raises(bm.MLENotFoundError, match="zero residuals"):
        bm.fit(spec, "mle")
    # One observation off the plane: the MLE exists again.
    y2 = y.copy()
    y2[0] += 1.0
    assert bm.fit(models.linear_regression(X, y2), "mle").converged
