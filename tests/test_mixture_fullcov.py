"""Bivariate Gaussian mixtures with full covariances = scikit-learn's on iris sepals."""

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture

import bayesmle as bm
from bayesmle.errors import ImproperPosteriorError, MLENotFoundError, SpecError
from bayesmle.models.mixture import covariances, degenerate_components


@pytest.fixture(scope="module")
def sepals():
    y = load_iris().data[:, :2]  # sepal length and width (cm), standardised
    return (y - y.mean(axis=0)) / y.std(axis=0)


@pytest.fixture(scope="module")
def spec(sepals):
    return bm.models.gaussian_mixture(sepals, 2, covariance="full")


@pytest.fixture(scope="module")
def mle(spec):
    return bm.fit(spec, "mle", starts=4, random_seed=5)


@pytest.fixture(scope="module")
def em(spec):
    return bm.fit(spec, "em", starts=4, random_seed=5)


@pytest.fixture(scope="module")
def sklearn_fit(sepals):
    gm = GaussianMixture(n_components=2, covariance_type="full", tol=1e-12, max_iter=10_000,
                         n_init=10, reg_covar=0.0, random_state=0).fit(sepals)
    order = np.argsort(gm.means_[:, 0])
    return gm, order


def _cov(params):
    s, r = params["sigma"], params["corr"][:, 0]
    return np.array([[[a * a, c * a * b], [c * a * b, b * b]]
                     for (a, b), c in zip(s, r, strict=True)])


def test_mle_equals_sklearn(mle, sklearn_fit, sepals):
    gm, order = sklearn_fit
    assert mle.converged
    assert abs(mle.loglik - gm.score(sepals) * sepals.shape[0]) < 1e-6
    np.testing.assert_allclose(mle.params["weights"], gm.weights_[order], atol=1e-5)
    np.testing.assert_allclose(mle.params["mu"], gm.means_[order], atol=1e-5)
    np.testing.assert_allclose(_cov(mle.params), gm.covariances_[order], atol=1e-5)
    assert mle.labels[-2:] == ["corr[1,y1:y2]", "corr[2,y1:y2]"]


def test_em_agrees_with_newton_and_is_monotone(em, mle):
    assert em.converged
    for name in ("weights", "mu", "sigma", "corr"):
        np.testing.assert_allclose(em.params[name], mle.params[name], atol=1e-6)
    trace = em.loglik_trace
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


def test_responsibilities_match_scipy(mle, sepals):
    w, mu = mle.params["weights"], mle.params["mu"]
    cov = _cov(mle.params)
    dens = np.column_stack([w[j] * scipy.stats.multivariate_normal(mu[j], cov[j]).pdf(sepals)
                            for j in range(2)])
    np.testing.assert_allclose(mle.responsibilities().to_numpy(),
                               dens / dens.sum(axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(covariances(mle.spec, mle.params), cov, rtol=1e-14)


def test_degenerate_start_is_reported(spec, sepals, mle):
    i = int(np.argmin(sepals[:, 0]))
    start = {"weights": np.array([0.5, 0.5]),
             "mu": np.array([sepals[i], sepals.mean(axis=0) + [1.0, 0.0]]),
             "sigma": np.array([[1e-4, 1e-4], [1.0, 1.0]]), "corr": np.zeros((2, 1))}
    res = bm.fit(spec, "em", start=start, starts=2, random_seed=5)
    assert "component 1" in res.starts.loc[0, "degenerate"]
    assert not res.starts.loc[0, "best"] and res.starts.loc[1, "best"]
    np.testing.assert_allclose(res.loglik, mle.loglik, atol=1e-6)


def test_collapse_onto_a_line_is_degenerate(spec):
    # two components; the first has r -> 1: its covariance is singular (a line)
    params = {"weights": np.array([0.5, 0.5]), "mu": np.array([[-1.0, 0.0], [1.0, 0.0]]),
              "sigma": np.array([[0.5, 0.5], [1.0, 1.0]]),
              "corr": np.array([[1.0 - 1e-14], [0.0]])}
    reasons = degenerate_components(spec, params)
    assert len(reasons) == 1 and reasons[0].startswith("component 1: smallest sd")


@pytest.fixture(scope="module")
def clusters():
    """Continuous data in general position: no three points on a line (m = 2)."""
    rng = np.random.default_rng(7)
    c = np.array([[1.0, 0.6], [0.6, 1.0]])
    return np.r_[rng.multivariate_normal([0, 0], c, 40),
                 rng.multivariate_normal([4, 1], 0.5 * c, 30)]


def test_map_needs_lkj_eta_2(clusters):
    # a component on the line through two points, r -> +-1 with its sds fixed: likelihood
    # ~ (1 - r^2)^-1, LKJ(eta) ~ (1 - r^2)^(eta - 1): bounded iff eta >= 2, whatever the sd prior
    spec = bm.models.gaussian_mixture(clusters, 2, covariance="full",
                                      sigma_prior=bm.Gamma(4.0, 2.0), corr_prior=bm.LKJ(1.5))
    with pytest.raises(MLENotFoundError, match=r"eta >= 2"):
        bm.fit(spec, "map")


def test_map_equals_a_scipy_posterior(clusters):
    spec = bm.models.gaussian_mixture(clusters, 2, covariance="full",
                                      sigma_prior=bm.Gamma(2.0, 1.0), corr_prior=bm.LKJ(2.0))
    res = bm.fit(spec, "map", starts=3, random_seed=1)
    assert res.converged

    def log_post(th):  # weights logit, means, log sds, atanh correlations; Dirichlet(1) = 1
        w = scipy.special.expit(th[0])
        mu, s, r = th[1:5].reshape(2, 2), np.exp(th[5:9]).reshape(2, 2), np.tanh(th[9:11])
        dens = sum(wj * scipy.stats.multivariate_normal(
            mu[j], [[s[j, 0] ** 2, r[j] * s[j, 0] * s[j, 1]],
                    [r[j] * s[j, 0] * s[j, 1], s[j, 1] ** 2]]).pdf(clusters)
            for j, wj in enumerate((w, 1.0 - w)))
        return (np.log(dens).sum() + scipy.stats.gamma(2.0).logpdf(s).sum()
                + (scipy.stats.beta(2.0, 2.0).logpdf((r + 1) / 2) - np.log(2.0)).sum())

    p = res.params
    th = np.r_[np.log(p["weights"][0] / p["weights"][1]), p["mu"].ravel(),
               np.log(p["sigma"]).ravel(), np.arctanh(p["corr"][:, 0])]
    assert abs(res.logp - log_post(th)) < 1e-6
    better = scipy.optimize.minimize(lambda t: -log_post(t), th, method="BFGS",
                                     options={"gtol": 1e-9})
    assert -better.fun - log_post(th) < 1e-8
    np.testing.assert_allclose(better.x, th, atol=1e-5)


def test_collinear_rounded_data_need_a_stronger_lkj(sepals):
    # iris sepals are rounded to 1 mm: 12 rows lie on one oblique line (counted here directly)
    y = sepals
    best = 0
    for i in range(len(y)):
        for j in range(len(y)):
            d = y[j] - y[i]
            if i != j and d[0] != 0 and d[1] != 0:
                cross = (y[:, 0] - y[i, 0]) * d[1] - (y[:, 1] - y[i, 1]) * d[0]
                best = max(best, int(np.sum(np.abs(cross) < 1e-9)))
    assert best == 12
    spec = bm.models.gaussian_mixture(sepals, 2, covariance="full", mu_prior=bm.Normal(3.0),
                                      sigma_prior=bm.Gamma(30.0, 30.0))
    with pytest.raises(ImproperPosteriorError, match="eta > 5"):
        bm.fit(spec, "laplace")
    with pytest.raises(MLENotFoundError, match="eta >= 7"):
        bm.fit(spec.with_priors(corr=bm.LKJ(6.0)), "map")


def test_full_refuses_other_shapes(sepals):
    with pytest.raises(SpecError, match="d >= 2"):
        bm.models.gaussian_mixture(sepals[:, :1], 2, covariance="full")
    with pytest.raises(SpecError, match="covariance"):
        bm.models.gaussian_mixture(sepals, 2, covariance="spherical")
    with pytest.raises(SpecError, match="corr_prior"):
        bm.models.gaussian_mixture(sepals, 2, corr_prior=bm.LKJ(2.0))
