"""Responsibilities of a mixture from a variational approximation: averaged over its draws.

Reference: the class probabilities computed here with scipy.stats at every draw.
"""

import warnings

import numpy as np
import scipy.stats as st

import bayesmle as bm


def test_pathfinder_responsibilities_average_the_draws():
    rng = np.random.default_rng(3)
    y = np.r_[rng.normal(-2, 1, 30), rng.normal(3, 1, 20)]
    spec = bm.models.gaussian_mixture(y, 2, mu_prior=bm.Normal(10.0),
                                      sigma_prior=bm.Gamma(2.0, 1.0),
                                      weights_prior=bm.Dirichlet(2.0))
    with warnings.catch_warnings():  # a Pareto-k note is not what this test is about
        warnings.simplefilter("ignore", bm.SamplingWarning)
        res = bm.fit(spec, "pathfinder", draws=400, random_seed=1)
    d = res.draws()
    w = d[["weights[1]", "weights[2]"]].to_numpy()
    mu = d[["mu[1]", "mu[2]"]].to_numpy()
    sd = d[["sigma[1]", "sigma[2]"]].to_numpy()
    dens = w[:, None, :] * st.norm.pdf(y[None, :, None], mu[:, None, :], sd[:, None, :])
    expected = (dens / dens.sum(axis=2, keepdims=True)).mean(axis=0)
    got = res.responsibilities()
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=0, atol=1e-12)
