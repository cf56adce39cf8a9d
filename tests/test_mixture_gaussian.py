"""Gaussian mixtures: MLE = scikit-learn's EM on iris, EM = Newton, degenerate starts, MAP."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture

import bayesmle as bm
from bayesmle.errors import MLENotFoundError, SpecError


@pytest.fixture(scope="module")
def petal():
    return load_iris().data[:, 2]  # petal length (cm): setosa vs the other two species


@pytest.fixture(scope="module")
def sklearn_fit(petal):
    gm = GaussianMixture(n_components=2, covariance_type="full", tol=1e-12, max_iter=10_000,
                         n_init=10, reg_covar=0.0, random_state=0).fit(petal[:, None])
    order = np.argsort(gm.means_[:, 0])
    return {"weights": gm.weights_[order], "mu": gm.means_[order, 0],
            "sigma": np.sqrt(gm.covariances_[order, 0, 0]),
            "loglik": gm.score(petal[:, None]) * petal.size}  # score: mean log-likelihood


@pytest.fixture(scope="module")
def fits(petal):
    spec = bm.models.gaussian_mixture(petal, 2)
    return spec, bm.fit(spec, "mle", starts=6, random_seed=4), bm.fit(spec, "em", starts=6,
                                                                      random_seed=4)


def test_mle_equals_sklearn(fits, sklearn_fit):
    _, mle, _ = fits
    assert mle.converged
    # total log-likelihood (sklearn's score() times n) to 1e-6, parameters to 1e-5
    assert abs(mle.loglik - sklearn_fit["loglik"]) < 1e-6
    for name in ("weights", "mu", "sigma"):
        np.testing.assert_allclose(mle.params[name], sklearn_fit[name], rtol=0, atol=1e-5)


def test_em_agrees_with_newton_and_is_monotone(fits):
    _, mle, em = fits
    assert em.method == "em" and em.converged and em.em_iterations > 1
    trace = em.loglik_trace
    assert trace.size == em.em_iterations + 1
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))  # EM never decreases it
    assert abs(em.loglik - mle.loglik) < 1e-8
    for name in ("weights", "mu", "sigma"):
        np.testing.assert_allclose(em.params[name], mle.params[name], rtol=0, atol=1e-6)


def test_results_say_the_optimum_is_local(fits):
    _, mle, _ = fits
    assert any("local" in n for n in mle.notes)
    assert any("unbounded" in n for n in mle.notes)
    table = mle.starts
    assert list(table.columns) == ["loglik", "logp", "converged", "degenerate", "iterations",
                                   "max_abs_diff", "best"]
    assert table["best"].sum() == 1 and len(table) == 6
    assert table.loc[table["best"], "loglik"].item() == pytest.approx(mle.loglik, abs=0)


def test_responsibilities_plug_in(fits, petal):
    _, mle, _ = fits
    w, mu, s = (mle.params[k] for k in ("weights", "mu", "sigma"))
    dens = w * scipy.stats.norm.pdf(petal[:, None], mu, s)
    expected = dens / dens.sum(axis=1, keepdims=True)
    got = mle.responsibilities()
    assert isinstance(got, pd.DataFrame) and got.shape == (150, 2)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


@pytest.fixture(scope="module")
def two_groups():
    rng = np.random.default_rng(11)
    return np.r_[rng.normal(0.0, 1.0, 40), rng.normal(5.0, 0.7, 30)]


def test_degenerate_start_is_reported(two_groups):
    y = two_groups
    spec = bm.models.gaussian_mixture(y, 2)
    i = int(np.argmin(y))  # one component sitting on the smallest observation
    rest = np.delete(y, i)
    start = {"weights": [1.0 / y.size, 1 - 1.0 / y.size], "mu": [y[i], rest.mean()],
             "sigma": [1e-5, rest.std()]}
    with pytest.raises(MLENotFoundError, match="degenerate"):
        bm.inference.run(spec, "mle", start=start, starts=1, random_seed=0)
    res = bm.inference.run(spec, "mle", start=start, starts=4, random_seed=0)
    assert res.starts.loc[0, "degenerate"] != "" and not res.starts.loc[0, "best"]
    assert np.isnan(res.starts.loc[0, "max_abs_diff"])
    assert res.converged and np.all(res.params["sigma"] > 0.3)


def test_map_needs_a_prior_vanishing_at_zero(two_groups):
    spec = bm.models.gaussian_mixture(two_groups, 2, mu_prior=bm.Normal(10.0))
    with pytest.raises(MLENotFoundError, match="unbounded"):
        bm.inference.run(spec.with_priors(sigma=bm.HalfNormal(5.0)), "map")
    map_ = bm.inference.run(spec.with_priors(sigma=bm.Gamma(2.0, 1.0)), "map", starts=3,
                            random_seed=1)
    assert map_.converged and map_.newton_decrement <= 1e-10
    # the MAP maximises log-likelihood + log-priors: check its stationarity by a direct
    # scipy computation of that function at the estimate (finite differences)
    w, mu, s = (map_.params[k] for k in ("weights", "mu", "sigma"))

    def logpost(mu_, s_):
        return (np.log((w * scipy.stats.norm.pdf(two_groups[:, None], mu_, s_)).sum(1)).sum()
                + scipy.stats.norm.logpdf(mu_, 0, 10).sum()
                + scipy.stats.gamma.logpdf(s_, 2.0, scale=1.0).sum())

    h = 1e-6
    for j in range(2):
        e = np.eye(2)[j] * h
        assert abs(logpost(mu + e, s) - logpost(mu - e, s)) / (2 * h) < 1e-5
        assert abs(logpost(mu, s + e) - logpost(mu, s - e)) / (2 * h) < 1e-5


def test_builder_errors(two_groups):
    with pytest.raises(bm.DataError, match="distinct values"):
        bm.models.gaussian_mixture([1.0, 1.0, 2.0, 2.0], 2)
    with pytest.raises(bm.PriorError, match="ordered"):
        bm.models.gaussian_mixture(two_groups, 2, mu_prior=bm.Laplace(1.0))
    with pytest.raises(bm.PriorError, match="simplex"):
        bm.models.gaussian_mixture(two_groups, 2, weights_prior=bm.Beta(1.0, 1.0))
    with pytest.raises(SpecError, match="mixture"):
        bm.fit(bm.models.gaussian(two_groups), "em")
    with pytest.raises(SpecError, match="mixture"):
        bm.fit(bm.models.gaussian(two_groups), "mle", starts=3)
    with pytest.raises(bm.ImproperPosteriorError, match="flat"):
        bm.fit(bm.models.gaussian_mixture(two_groups, 2), "nuts")
