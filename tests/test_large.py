"""n = 1,000,000 rows, d = 20 (issue 5): linear, logistic and Poisson MLE/MAP on this machine.

References: numpy's least squares and statsmodels' Newton fits on the same data.
"""

import numpy as np
import pytest

import bayesmle as bm
from bayesmle import models

N, D = 1_000_000, 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(2026)
    X = rng.normal(size=(N, D))
    eta = 0.2 + X @ rng.normal(scale=0.2, size=D)
    return X, eta, rng


def test_linear_mle_million_rows(big):
    X, eta, rng = big
    y = eta + rng.normal(size=N)
    res = bm.fit(models.linear_regression(X, y), "mle")
    A = np.column_stack([np.ones(N), X])
    beta, *_ = np.linalg.lstsq(A, y, rcond=None)
    assert res.converged
    np.testing.assert_allclose(np.r_[res.params["intercept"], res.params["coef"]], beta,
                               rtol=1e-9, atol=1e-12)


def test_logistic_mle_and_map_million_rows(big):
    sm = pytest.importorskip("statsmodels.api")
    X, eta, rng = big
    y = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    res = bm.fit(models.logistic_regression(X, y), "mle")
    ref = sm.Logit(y, sm.add_constant(X)).fit(method="newton", disp=0, tol=1e-12)
    assert res.converged
    np.testing.assert_allclose(np.r_[res.params["intercept"], res.params["coef"]], ref.params,
                               rtol=1e-6, atol=1e-9)
    assert res.loglik == pytest.approx(ref.llf, abs=1e-6)
    map_ = bm.fit(models.logistic_regression(X, y, prior=bm.Normal(1.0)), "map")
    assert map_.converged and np.all(np.isfinite(map_.flat_params()))


def test_poisson_mle_million_rows(big):
    sm = pytest.importorskip("statsmodels.api")
    X, eta, rng = big
    y = rng.poisson(np.exp(eta))
    res = bm.fit(models.poisson_regression(X, y), "mle")
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit(tol=1e-12)
    assert res.converged
    np.testing.assert_allclose(np.r_[res.params["intercept"], res.params["coef"]], ref.params,
                               rtol=1e-6, atol=1e-9)
