"""MLEs with closed forms, to 1e-9 relative error (issue 2, item 1)."""

import numpy as np
import pytest

import bayesmle as bm
from bayesmle import models

RTOL = 1e-9


def rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


@pytest.mark.parametrize("y", [
    np.random.default_rng(1).normal(3.0, 2.0, size=500),
    1e7 + 0.1 * np.arange(1, 101),  # huge mean, tiny spread
    np.array([1000000.2, 1000000.1, 1000000.3] * 3),  # NIST NumAcc2-style
])
def test_gaussian_mle_is_mean_and_std(y):
    res = bm.fit(models.gaussian(y), "mle")
    assert res.converged
    assert rel(res.params["mu"], np.mean(y)) <= RTOL
    assert rel(res.params["sigma"], np.std(y, ddof=0)) <= RTOL
    # observed information: se(mu) = sigma / sqrt(n), se(sigma) = sigma / sqrt(2n)
    n, s = y.size, np.std(y)
    assert rel(res.stderr["mu"], s / np.sqrt(n)) <= 1e-7
    assert rel(res.stderr["sigma"], s / np.sqrt(2 * n)) <= 1e-7


def test_bernoulli_binomial_p_is_k_over_n():
    y = np.r_[np.ones(37), np.zeros(63)]
    res = bm.fit(models.bernoulli(y), "mle")
    assert rel(res.params["p"], 0.37) <= RTOL
    assert rel(res.stderr["p"], np.sqrt(0.37 * 0.63 / 100)) <= 1e-7
    k, t = np.array([3, 5, 0, 9]), np.array([10, 10, 4, 12])
    res = bm.fit(models.binomial(k, t), "mle")
    assert rel(res.params["p"], k.sum() / t.sum()) <= RTOL


def test_poisson_rate_is_mean_and_exponential_rate_is_inverse_mean():
    y = np.random.default_rng(2).poisson(4.2, size=300)
    res = bm.fit(models.poisson(y), "mle")
    assert rel(res.params["rate"], y.mean()) <= RTOL
    assert rel(res.stderr["rate"], np.sqrt(y.mean() / y.size)) <= 1e-7
    w = np.random.default_rng(3).exponential(2.5, size=300)
    res = bm.fit(models.exponential(w), "mle")
    assert rel(res.params["rate"], 1 / w.mean()) <= RTOL
    assert np.isclose(res.loglik, np.sum(np.log(1 / w.mean()) - w / w.mean()), rtol=1e-12)


def test_map_under_flat_priors_equals_mle():
    y = np.random.default_rng(4).normal(-1.0, 0.5, size=50)
    spec = models.gaussian(y)
    mle, map_ = bm.fit(spec, "mle"), bm.fit(spec, "map")
    assert map_.params["mu"] == mle.params["mu"]
    assert map_.params["sigma"] == mle.params["sigma"]


def test_gaussian_map_with_normal_prior_matches_fixed_point():
    # MAP of mu under Normal(m0, s0) with sigma jointly: mu = (n ybar/s2 + m0/s0^2)/(n/s2 + 1/s0^2)
    y = np.random.default_rng(5).normal(10.0, 3.0, size=20)
    res = bm.fit(models.gaussian(y, mu_prior=bm.Normal(1.0, mu=0.0)), "map")
    mu, s2 = float(res.params["mu"]), float(res.params["sigma"]) ** 2
    n = y.size
    assert rel(mu, (n * y.mean() / s2) / (n / s2 + 1.0)) <= 1e-9
    assert rel(s2, np.mean((y - mu) ** 2)) <= 1e-9


def test_refit_same_structure_does_not_recompile():
    rng = np.random.default_rng(6)
    first = bm.fit(models.gaussian(rng.normal(size=30)), "mle")
    second = bm.fit(models.gaussian(rng.normal(size=77)), "mle")
    assert second.compile_seconds == 0.0
    assert first.params["mu"] != second.params["mu"]
