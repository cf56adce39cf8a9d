"""Full-covariance Gaussian mixtures for d >= 3: the CPC transform and scikit-learn's fit."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.stats
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture

import bayesmle as bm
from bayesmle.errors import MLENotFoundError, SpecError
from bayesmle.models.corr_transform import CorrCPC
from bayesmle.models.mixture import covariances


@pytest.mark.parametrize("d", [3, 4])
def test_cpc_round_trip_and_log_jacobian(d):
    p = d * (d - 1) // 2
    t = CorrCPC(d)
    v = pt.vector("v")
    back = pytensor.function([v], t.backward(v))
    fwd = pytensor.function([v], t.forward(v))
    logj = pytensor.function([v], t.log_jac_det(v))
    rng = np.random.default_rng(d)
    iu = np.triu_indices(d, 1)
    for _ in range(3):
        u = rng.normal(size=p)
        r = back(u)
        R = np.eye(d)
        R[iu] = r
        R.T[iu] = r
        assert np.linalg.eigvalsh(R).min() > 0  # a valid correlation matrix
        np.testing.assert_allclose(fwd(r), u, atol=1e-12)
        h = 1e-6  # central differences of backward: log|det J| to ~1e-8
        J = np.column_stack([(back(u + h * e) - back(u - h * e)) / (2 * h) for e in np.eye(p)])
        assert abs(np.linalg.slogdet(J)[1] - logj(u)) < 1e-6
    # a correlation matrix drawn independently (scipy) maps to the real line and back
    R = scipy.stats.random_correlation.rvs(rng.dirichlet(np.ones(d)) * d, random_state=rng)
    np.testing.assert_allclose(back(fwd(R[iu])), R[iu], atol=1e-12)


@pytest.fixture(scope="module")
def iris3():
    y = load_iris().data[:, :3]  # sepal length, sepal width, petal length, standardised
    return (y - y.mean(axis=0)) / y.std(axis=0)


@pytest.fixture(scope="module")
def spec(iris3):
    return bm.models.gaussian_mixture(iris3, 2, covariance="full")


@pytest.fixture(scope="module")
def mle(spec):
    return bm.fit(spec, "mle", starts=4, random_seed=5)


@pytest.fixture(scope="module")
def sklearn_fit(iris3):
    gm = GaussianMixture(n_components=2, covariance_type="full", tol=1e-12, max_iter=10_000,
                         n_init=10, reg_covar=0.0, random_state=0).fit(iris3)
    return gm, np.argsort(gm.means_[:, 0])


@pytest.mark.slow
def test_mle_equals_sklearn(mle, sklearn_fit, iris3):
    gm, order = sklearn_fit
    assert mle.converged
    assert abs(mle.loglik - gm.score(iris3) * iris3.shape[0]) < 1e-6
    np.testing.assert_allclose(mle.params["weights"], gm.weights_[order], atol=1e-5)
    np.testing.assert_allclose(mle.params["mu"], gm.means_[order], atol=1e-5)
    np.testing.assert_allclose(covariances(mle.spec, mle.params), gm.covariances_[order],
                               atol=1e-5)
    assert mle.labels[-3:] == ["corr[2,y1:y2]", "corr[2,y1:y3]", "corr[2,y2:y3]"]


@pytest.mark.slow
def test_em_agrees_with_newton(spec, mle):
    em = bm.fit(spec, "em", starts=4, random_seed=5)
    assert em.converged
    for name in ("weights", "mu", "sigma", "corr"):
        np.testing.assert_allclose(em.params[name], mle.params[name], atol=1e-6)
    trace = em.loglik_trace
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


@pytest.mark.slow
def test_responsibilities_and_loglik_match_scipy(mle, iris3):
    w, mu = mle.params["weights"], mle.params["mu"]
    s, r = mle.params["sigma"], mle.params["corr"]
    iu = np.triu_indices(3, 1)
    dens = []
    for j in range(2):  # the covariance built here from sigma and the free correlations
        R = np.eye(3)
        R[iu] = r[j]
        R.T[iu] = r[j]
        cov = R * np.outer(s[j], s[j])
        dens.append(w[j] * scipy.stats.multivariate_normal(mu[j], cov).pdf(iris3))
    dens = np.column_stack(dens)
    np.testing.assert_allclose(mle.responsibilities().to_numpy(),
                               dens / dens.sum(axis=1, keepdims=True), atol=1e-12)
    assert abs(mle.loglik - np.log(dens.sum(axis=1)).sum()) < 1e-8


def test_map_and_posterior_refused_for_d3():
    rng = np.random.default_rng(3)  # continuous data: no ties (the sigma checks pass)
    y = np.r_[rng.normal(size=(30, 3)), rng.normal(3.0, 1.0, size=(20, 3))]
    spec = bm.models.gaussian_mixture(y, 2, covariance="full", mu_prior=bm.Normal(3.0),
                                      sigma_prior=bm.Gamma(4.0, 2.0), corr_prior=bm.LKJ(4.0))
    with pytest.raises(MLENotFoundError, match="d = 2 coordinates only"):
        bm.fit(spec, "map")
    with pytest.raises(SpecError, match="d = 2 coordinates only"):
        bm.fit(spec, "laplace")
