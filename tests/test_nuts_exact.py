"""NUTS against exact posteriors (issue 2, item 6): means within 4 MCSE, sd within 10%,
R-hat < 1.01, no divergence -- also for a strongly correlated raw posterior (calendar years)."""

import json

import numpy as np
import pymc as pm
import scipy.stats
from conftest import DATA

import bayesmle as bm

DRAWS = dict(draws=1000, tune=1000, chains=4, random_seed=20261122)


def check(post, mean, sd):
    summ = post.summary()
    assert post.divergences == 0
    assert (summ["r_hat"] < 1.01).all(), summ
    z = (summ["mean"].to_numpy() - np.asarray(mean)) / summ["mcse_mean"].to_numpy()
    assert np.all(np.abs(z) < 4), (z, summ)
    assert np.all(np.abs(summ["sd"].to_numpy() / np.asarray(sd) - 1) < 0.10), summ


def _normal_normal(data, priors):
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
        sigma = pm.Data("sigma", data["sigma"])
    mu = priors["mu"].rv(model, "mu")
    with model:
        pm.Normal("y_obs", mu, sigma, observed=y)
    return model


def test_normal_normal_user_builder():
    rng = np.random.default_rng(1)
    y, sigma, m0, s0 = rng.normal(3.0, 2.0, size=25), 2.0, 0.0, 1.0
    spec = bm.ModelSpec(name="normal_normal", declare=_normal_normal,
                        data={"y": y, "sigma": np.asarray(sigma)},
                        priors={"mu": bm.Normal(s0, mu=m0)}, params=("mu",))
    prec = 1 / s0**2 + y.size / sigma**2
    mean = (m0 / s0**2 + y.sum() / sigma**2) / prec
    check(bm.fit(spec, "nuts", **DRAWS), [mean], [prec**-0.5])


def test_beta_bernoulli():
    y = (np.random.default_rng(2).random(40) < 0.3).astype(int)
    a, b = 2.0 + y.sum(), 3.0 + y.size - y.sum()
    post = bm.fit(bm.models.bernoulli(y, p_prior=bm.Beta(2.0, 3.0)), "nuts", **DRAWS)
    check(post, [a / (a + b)], [scipy.stats.beta(a, b).std()])


def test_gamma_poisson():
    y = np.random.default_rng(3).poisson(3.0, size=30)
    a, rate = 2.0 + y.sum(), 1.0 + y.size
    post = bm.fit(bm.models.poisson(y, rate_prior=bm.Gamma(2.0, 1.0)), "nuts", **DRAWS)
    check(post, [a / rate], [np.sqrt(a) / rate])


def test_bayesian_linear_regression_known_sigma():
    rng = np.random.default_rng(4)
    n, sigma = 50, 1.5
    X = rng.normal(size=(n, 2))
    y = 1.0 + X @ np.array([0.5, -1.0]) + rng.normal(scale=sigma, size=n)
    tau, t0 = 1.0, 10.0
    spec = bm.models.linear_regression(X, y, prior=bm.Normal(tau),
                                       intercept_prior=bm.Normal(t0), sigma=sigma)
    full = np.column_stack([np.ones(n), X])
    prec = full.T @ full / sigma**2 + np.diag([1 / t0**2, 1 / tau**2, 1 / tau**2])
    cov = np.linalg.inv(prec)
    mean = cov @ (full.T @ y / sigma**2)
    check(bm.fit(spec, "nuts", **DRAWS), mean, np.sqrt(np.diag(cov)))


def test_flat_linear_regression_multivariate_t_calendar_years():
    d = json.loads((DATA / "posteriordb" / "kilpisjarvi_mod-kilpisjarvi.json").read_text())["data"]
    x, y = np.asarray(d["x"], float), np.asarray(d["y"], float)
    # raw (uncentred) years: corr(intercept, slope) in the posterior is about -1
    full = np.column_stack([np.ones_like(x), x])
    a = full.T @ full
    bhat = np.linalg.solve(a, full.T @ y)
    rss = np.sum((y - full @ bhat) ** 2)
    n, p = full.shape
    nu = n - p - 1  # flat prior on (beta, sigma): marginal of beta is t with n - p - 1 dof
    scale = rss / nu * np.linalg.inv(a)
    sd = np.sqrt(np.diag(scale) * nu / (nu - 2))
    post = bm.fit(bm.models.linear_regression(x, y), "nuts", **DRAWS)
    summ = post.summary()
    check_means = summ.loc[["intercept", "coef[x0]"]]
    assert post.divergences == 0
    assert (summ["r_hat"] < 1.01).all()
    z = (check_means["mean"].to_numpy() - bhat) / check_means["mcse_mean"].to_numpy()
    assert np.all(np.abs(z) < 4), summ
    assert np.all(np.abs(check_means["sd"].to_numpy() / sd - 1) < 0.10), summ
    # and the draws really are that correlated: the reparametrisation did the work
    draws = post.draws()
    assert np.corrcoef(draws["intercept"], draws["coef[x0]"])[0, 1] < -0.99
