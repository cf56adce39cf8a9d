"""A bivariate Gaussian mixture with diagonal covariances = scikit-learn's on iris petals."""

import numpy as np
import pytest
import scipy.stats
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture

import bayesmle as bm


@pytest.fixture(scope="module")
def petals():
    return load_iris().data[:, 2:4]  # petal length and width (cm)


def test_diagonal_mixture_equals_sklearn(petals):
    spec = bm.models.gaussian_mixture(petals, 2)
    mle = bm.fit(spec, "mle", starts=4, random_seed=5)
    em = bm.fit(spec, "em", starts=4, random_seed=5)
    gm = GaussianMixture(n_components=2, covariance_type="diag", tol=1e-12, max_iter=10_000,
                         n_init=10, reg_covar=0.0, random_state=0).fit(petals)
    order = np.argsort(gm.means_[:, 0])
    assert mle.converged and em.converged
    assert abs(mle.loglik - gm.score(petals) * petals.shape[0]) < 1e-6
    np.testing.assert_allclose(mle.params["weights"], gm.weights_[order], atol=1e-5)
    np.testing.assert_allclose(mle.params["mu"], gm.means_[order], atol=1e-5)
    np.testing.assert_allclose(mle.params["sigma"], np.sqrt(gm.covariances_[order]), atol=1e-5)
    for name in ("weights", "mu", "sigma"):
        np.testing.assert_allclose(em.params[name], mle.params[name], atol=1e-6)
    assert np.all(np.diff(em.loglik_trace) >= -1e-9 * np.abs(em.loglik_trace[1:]))
    assert mle.labels[2:4] == ["mu[1,y1]", "mu[1,y2]"]
    w, mu, s = (mle.params[k] for k in ("weights", "mu", "sigma"))
    dens = w * np.prod(scipy.stats.norm.pdf(petals[:, None, :], mu, s), axis=-1)
    np.testing.assert_allclose(mle.responsibilities().to_numpy(),
                               dens / dens.sum(axis=1, keepdims=True), atol=1e-12)
