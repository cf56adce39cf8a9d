"""Poisson mixtures against a direct scipy optimisation of the same marginal likelihood."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

import bayesmle as bm

EPIL = Path(__file__).parents[1] / "models" / "data" / "epil.csv"


def _scipy_max(negll, theta0):
    """A tight quasi-Newton maximisation, polished by Nelder-Mead."""
    res = scipy.optimize.minimize(negll, theta0, method="BFGS",
                                  options={"gtol": 1e-10, "maxiter": 10_000})
    res = scipy.optimize.minimize(negll, res.x, method="Nelder-Mead",
                                  options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 40_000,
                                           "maxfev": 40_000})
    return res.x, -res.fun


@pytest.fixture(scope="module")
def seizures():
    return pd.read_csv(EPIL)["y"].to_numpy(dtype=float)


def test_poisson_mixture_equals_scipy(seizures):
    y = seizures
    spec = bm.models.poisson_mixture(y, 2)
    em = bm.fit(spec, "em", starts=1, random_seed=0)
    mle = bm.fit(spec, "mle", starts=1, random_seed=0)
    assert mle.converged and em.converged
    assert np.all(np.diff(em.loglik_trace) >= -1e-9 * np.abs(em.loglik_trace[1:]))
    # the same start (the builder's: equal weights, quantile-group means), unconstrained
    rate0 = spec.start["rate"]

    def negll(t):
        w = scipy.special.expit(t[0])
        lp = np.log([1 - w, w]) + scipy.stats.poisson.logpmf(y[:, None], np.exp(t[1:]))
        return -scipy.special.logsumexp(lp, axis=1).sum()

    theta, ll = _scipy_max(negll, np.r_[0.0, np.log(rate0)])
    assert abs(mle.loglik - ll) < 1e-7
    np.testing.assert_allclose(mle.params["rate"], np.exp(theta[1:]), rtol=1e-6)
    w = scipy.special.expit(theta[0])
    np.testing.assert_allclose(mle.params["weights"], [1 - w, w], rtol=0, atol=1e-6)
    np.testing.assert_allclose(em.params["rate"], mle.params["rate"], rtol=1e-7)
