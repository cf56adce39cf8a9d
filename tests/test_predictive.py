"""Predictions (predict / predictive / log_likelihood / fit(spec, "prior")) against
independent references: conjugate closed forms, statsmodels, scipy quantiles, simulation.

Posterior checks are scaled by Monte Carlo standard errors computed from the draws; every
random step is seeded.
"""

import threading
import warnings

import arviz_plots as azp
import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import scipy.stats as st
import statsmodels.api as sm

import bayesmle as bm
from bayesmle import ModelSpec
from bayesmle.errors import DataError, PriorError, SpecError

NUTS = {"chains": 2, "draws": 1000, "tune": 1000, "progressbar": False}
LEVEL = 0.9
Z = st.norm.ppf(1 - (1 - LEVEL) / 2)


def _mcse(values):
    """MCSE of the mean of per-draw values (chain, draw)."""
    return float(azs.mcse(np.asarray(values, dtype=float)))


def _ess(values):
    return float(azs.ess(np.asarray(values, dtype=float)))


def _quantile_tol(p, density, n_eff, k=4.5):
    """``k`` standard errors of a sample quantile at probability ``p``."""
    return k * np.sqrt(p * (1 - p) / n_eff) / density


# ---------------------------------------------------------------------------------------------
# 1a. Gaussian mean, known sigma, Normal prior: a hand-written ModelSpec (default observations)
# ---------------------------------------------------------------------------------------------
M0, S0, SIGMA = 0.5, 3.0, 2.0


def _declare_gauss(data, priors):
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
        mu = priors["mu"].rv(model, "mu")
        pm.Normal("y_obs", mu, pm.Data("sigma_known", data["sigma_known"]), observed=y)
    return model


@pytest.fixture(scope="module")
def gauss():
    y = np.random.default_rng(11).normal(1.0, SIGMA, size=8)
    spec = ModelSpec(name="gauss_known_sigma", declare=_declare_gauss,
                     data={"y": y, "sigma_known": np.array(SIGMA)},
                     priors={"mu": bm.Normal(S0, M0)}, params=("mu",))
    prec = 1 / S0**2 + len(y) / SIGMA**2
    m_n = (M0 / S0**2 + y.sum() / SIGMA**2) / prec
    return {"spec": spec, "y": y, "m_n": m_n, "s_n2": 1 / prec,
            "nuts": bm.fit(spec, "nuts", random_seed=1, **NUTS),
            "map": bm.fit(spec, "map")}


def test_gaussian_map_plugin_interval_exact(gauss):
    table = gauss["map"].predict(level=LEVEL)
    assert len(table) == len(gauss["y"])
    np.testing.assert_allclose(table["mean"], gauss["m_n"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(table["lower"], table["mean"] - Z * SIGMA, rtol=0, atol=1e-10)
    np.testing.assert_allclose(table["upper"], table["mean"] + Z * SIGMA, rtol=0, atol=1e-10)
    assert table.attrs["predictive"] == "plug-in"


def test_gaussian_nuts_posterior_predictive(gauss):
    post = gauss["nuts"]
    table = post.predict(level=LEVEL, random_seed=3)
    mu = post.datatree["posterior"]["mu"].to_numpy()
    np.testing.assert_allclose(table["mean"], gauss["m_n"], rtol=0, atol=4 * _mcse(mu))
    sd = np.sqrt(gauss["s_n2"] + SIGMA**2)
    n_eff = min(mu.size, _ess(mu))
    for col, p in (("lower", (1 - LEVEL) / 2), ("upper", 1 - (1 - LEVEL) / 2)):
        q = gauss["m_n"] + st.norm.ppf(p) * sd
        tol = _quantile_tol(p, st.norm.pdf(st.norm.ppf(p)) / sd, n_eff)
        np.testing.assert_allclose(table[col], q, rtol=0, atol=tol)
        # the rows are independent predictive draws: their average is much closer
        assert abs(table[col].mean() - q) < tol


def test_gaussian_predictive_tree_draws(gauss):
    tree = gauss["nuts"].predictive(random_seed=4)
    yrep = tree["posterior_predictive"]["y_obs"].to_numpy()
    assert yrep.shape == (2, 1000, len(gauss["y"]))
    sd = np.sqrt(gauss["s_n2"] + SIGMA**2)
    first = yrep[..., 0]
    assert abs(first.mean() - gauss["m_n"]) < 4 * _mcse(first)
    assert abs(first.std() / sd - 1) < 4 / np.sqrt(2 * min(first.size, _ess(first)))
    np.testing.assert_array_equal(tree["observed_data"]["y_obs"].to_numpy(), gauss["y"])
    ll = tree["log_likelihood"]["y_obs"].to_numpy()
    mu = tree["posterior"]["mu"].to_numpy()
    np.testing.assert_allclose(ll, st.norm.logpdf(gauss["y"], mu[..., None], SIGMA),
                               rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 1b. Linear regression with known sigma: Normal posterior, Normal predictive
# ---------------------------------------------------------------------------------------------
SIG_LIN = 1.3
TAU_COEF, TAU_INT = 2.0, 5.0


@pytest.fixture(scope="module")
def linreg():
    rng = np.random.default_rng(21)
    X = rng.normal(size=(15, 2))
    y = 1.0 + X @ [0.7, -1.2] + SIG_LIN * rng.normal(size=15)
    X_new = rng.normal(size=(4, 2)) * 1.5
    spec = bm.models.linear_regression(X, y, sigma=SIG_LIN, prior=bm.Normal(TAU_COEF),
                                       intercept_prior=bm.Normal(TAU_INT))
    Zd = np.column_stack([np.ones(len(y)), X])
    cov = np.linalg.inv(np.diag([TAU_INT**-2, TAU_COEF**-2, TAU_COEF**-2])
                        + Zd.T @ Zd / SIG_LIN**2)
    m = cov @ Zd.T @ y / SIG_LIN**2
    Zn = np.column_stack([np.ones(len(X_new)), X_new])
    return {"spec": spec, "X": X, "y": y, "X_new": X_new, "Zn": Zn, "m": m, "cov": cov,
            "pred_mean": Zn @ m,
            "pred_sd": np.sqrt(np.einsum("ij,jk,ik->i", Zn, cov, Zn) + SIG_LIN**2),
            "nuts": bm.fit(spec, "nuts", random_seed=2, **NUTS),
            "laplace": bm.fit(spec, "laplace", draws=4000, random_seed=3)}


@pytest.mark.parametrize("method", ["nuts", "laplace"])
def test_linear_known_sigma_predictive_new_data(linreg, method):
    res = linreg[method]
    table = res.predict({"X": linreg["X_new"]}, level=LEVEL, random_seed=5)
    assert len(table) == len(linreg["X_new"])
    post = res.datatree["posterior"]
    eta = (post["intercept"].to_numpy()[..., None]
           + np.einsum("cdk,nk->cdn", post["coef"].to_numpy(), linreg["X_new"]))
    for i in range(len(table)):
        tol = 4 * _mcse(eta[..., i])
        assert abs(table["mean"].iloc[i] - linreg["pred_mean"][i]) < tol
        n_eff = min(eta[..., i].size, _ess(eta[..., i]))
        for col, p in (("lower", (1 - LEVEL) / 2), ("upper", 1 - (1 - LEVEL) / 2)):
            sd = linreg["pred_sd"][i]
            q = linreg["pred_mean"][i] + st.norm.ppf(p) * sd
            assert abs(table[col].iloc[i] - q) < _quantile_tol(
                p, st.norm.pdf(st.norm.ppf(p)) / sd, n_eff), (method, i, col)


def test_linear_laplace_is_the_exact_posterior(linreg):
    lap = linreg["laplace"]
    np.testing.assert_allclose(lap.params["intercept"], linreg["m"][0], atol=5e-3)
    np.testing.assert_allclose(lap.params["coef"], linreg["m"][1:], atol=5e-3)


# ---------------------------------------------------------------------------------------------
# 1c. Poisson with Gamma prior: negative binomial predictive
# ---------------------------------------------------------------------------------------------
A_G, B_G = 2.0, 0.5  # Gamma(shape, rate), as pm.Gamma(alpha, beta)


@pytest.fixture(scope="module")
def poisson_gamma():
    y = np.random.default_rng(31).poisson(3.0, size=12)
    spec = bm.models.poisson(y, rate_prior=bm.Gamma(A_G, B_G))
    r, rate = A_G + y.sum(), B_G + len(y)
    return {"y": y, "spec": spec, "nb": st.nbinom(r, rate / (rate + 1.0)),
            "post_mean": r / rate, "nuts": bm.fit(spec, "nuts", random_seed=4, **NUTS)}


def test_poisson_gamma_predictive_mean_and_interval(poisson_gamma):
    post, nb = poisson_gamma["nuts"], poisson_gamma["nb"]
    table = post.predict(level=LEVEL, random_seed=6)
    rate = post.datatree["posterior"]["rate"].to_numpy()
    np.testing.assert_allclose(table["mean"], poisson_gamma["post_mean"], rtol=0,
                               atol=4 * _mcse(rate))
    assert np.isclose(nb.mean(), poisson_gamma["post_mean"])
    for col in ("lower", "upper"):
        assert np.all(table[col] == np.round(table[col])), col
    # inverted-CDF quantiles of ~2000 draws: F(lower) >= p - tol and F(lower - 1) < p + tol
    n = rate.size
    for col, p in (("lower", (1 - LEVEL) / 2), ("upper", 1 - (1 - LEVEL) / 2)):
        tol = 4.5 * np.sqrt(p * (1 - p) / n)
        q = table[col].to_numpy()
        assert np.all(nb.cdf(q) >= p - tol), col
        assert np.all(nb.cdf(q - 1) <= p + tol), col


def test_poisson_gamma_predictive_draws_are_negative_binomial(poisson_gamma):
    tree = poisson_gamma["nuts"].predictive(random_seed=7)
    yrep = tree["posterior_predictive"]["y_obs"].to_numpy()
    assert np.issubdtype(yrep.dtype, np.integer)
    first = yrep[..., 0]
    nb = poisson_gamma["nb"]
    for k in range(0, 9):
        ind = (first == k).astype(float)
        assert abs(ind.mean() - nb.pmf(k)) < 4.5 * max(_mcse(ind), 1e-3), k
    # pooled chi-square over the rows' marginals (each row a NB draw): bins 0..8, 9+
    counts = np.array([(first == k).sum() for k in range(9)] + [(first >= 9).sum()])
    probs = np.append(nb.pmf(np.arange(9)), nb.sf(8))
    chi2 = ((counts - first.size * probs) ** 2 / (first.size * probs)).sum()
    assert chi2 < st.chi2.ppf(0.999, len(counts) - 1)


# ---------------------------------------------------------------------------------------------
# 1d. Bernoulli with Beta prior: beta-binomial predictive with one trial
# ---------------------------------------------------------------------------------------------
A_B, B_B = 2.0, 3.0


@pytest.fixture(scope="module")
def bernoulli_beta():
    y = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0], dtype=float)
    spec = bm.models.bernoulli(y, p_prior=bm.Beta(A_B, B_B))
    return {"y": y, "spec": spec, "nuts": bm.fit(spec, "nuts", random_seed=5, **NUTS)}


def test_bernoulli_beta_posterior_predictive(bernoulli_beta):
    y = bernoulli_beta["y"]
    post = bernoulli_beta["nuts"]
    table = post.predict()
    p = post.datatree["posterior"]["p"].to_numpy()
    expected = (A_B + y.sum()) / (A_B + B_B + len(y))
    np.testing.assert_allclose(table["mean"], expected, rtol=0, atol=4 * _mcse(p))


def test_bernoulli_prior_predictive(bernoulli_beta):
    prior = bm.fit(bernoulli_beta["spec"], "prior", draws=4000, random_seed=8)
    assert sorted(prior.datatree.children) == ["observed_data", "prior", "prior_predictive"]
    yrep = prior.datatree["prior_predictive"]["y_obs"].to_numpy()
    assert yrep.shape == (1, 4000, len(bernoulli_beta["y"]))
    p0 = A_B / (A_B + B_B)
    # the prior draws are independent: the binomial SE of a frequency
    first = yrep[..., 0]
    assert abs(first.mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / first.size)
    # rows share a p per draw: var of the row-mean = Var(p) + E[p(1-p)]/n
    var_p = A_B * B_B / ((A_B + B_B) ** 2 * (A_B + B_B + 1))
    row_mean = yrep.mean(axis=-1)
    se = np.sqrt((var_p + (p0 * (1 - p0) - var_p) / yrep.shape[-1]) / row_mean.size)
    assert abs(row_mean.mean() - p0) < 4 * se
    # prior draws of p are Beta(a, b)
    p = prior.datatree["prior"]["p"].to_numpy().ravel()
    assert st.kstest(p, st.beta(A_B, B_B).cdf).pvalue > 1e-3
    np.testing.assert_allclose(prior.predict()["mean"], p.mean(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 2. MLE plug-in predictions vs statsmodels and scipy
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def design():
    rng = np.random.default_rng(41)
    X = rng.normal(size=(60, 2))
    X_new = rng.normal(size=(7, 2))
    return rng, X, X_new, sm.add_constant(X), sm.add_constant(X_new)


def test_mle_linear_matches_ols(design):
    rng, X, X_new, Xc, Xnc = design
    y = 1.0 + X @ [0.5, -2.0] + rng.normal(size=len(X))
    mle = bm.fit(bm.models.linear_regression(X, y), "mle")
    table = mle.predict({"X": X_new}, level=LEVEL)
    ols = sm.OLS(y, Xc).fit()
    np.testing.assert_allclose(table["mean"], ols.get_prediction(Xnc).predicted_mean,
                               rtol=0, atol=1e-8)
    sigma_mle = np.sqrt(np.sum(ols.resid**2) / len(y))
    np.testing.assert_allclose(table["lower"], table["mean"] - Z * sigma_mle, rtol=0,
                               atol=1e-10)
    np.testing.assert_allclose(table["upper"], table["mean"] + Z * sigma_mle, rtol=0,
                               atol=1e-10)


def test_mle_logistic_matches_glm(design):
    rng, X, X_new, Xc, Xnc = design
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-(0.3 + X @ [1.0, -1.0])))).astype(float)
    mle = bm.fit(bm.models.logistic_regression(X, y), "mle")
    glm = sm.GLM(y, Xc, family=sm.families.Binomial()).fit(tol=1e-12)
    np.testing.assert_allclose(mle.predict({"X": X_new})["mean"], glm.predict(Xnc),
                               rtol=0, atol=1e-6)


def test_mle_poisson_exposure_matches_glm_and_scipy_quantiles(design):
    rng, X, X_new, Xc, Xnc = design
    e = rng.uniform(1, 4, len(X))
    y = rng.poisson(e * np.exp(0.3 + X @ [0.5, 0.2]))
    mle = bm.fit(bm.models.poisson_regression(X, y, exposure=e), "mle")
    glm = sm.GLM(y, Xc, family=sm.families.Poisson(), exposure=e).fit(tol=1e-12)
    e_new = rng.uniform(0.5, 6, len(X_new))
    table = mle.predict({"X": X_new, "exposure": e_new}, level=LEVEL)
    expected = glm.predict(Xnc, exposure=e_new)
    np.testing.assert_allclose(table["mean"], expected, rtol=1e-6)
    # quantiles of the Poisson at the MLE mean (computed from the MLE's own parameters)
    mu = e_new * np.exp(mle.params["intercept"] + X_new @ mle.params["coef"])
    np.testing.assert_array_equal(table["lower"], st.poisson.ppf((1 - LEVEL) / 2, mu))
    np.testing.assert_array_equal(table["upper"], st.poisson.ppf(1 - (1 - LEVEL) / 2, mu))
    # exposure matters: doubling it doubles the mean
    doubled = mle.predict({"X": X_new, "exposure": 2 * e_new})["mean"]
    np.testing.assert_allclose(doubled, 2 * table["mean"], rtol=1e-12)


def test_mle_negative_binomial_matches_statsmodels(design):
    rng, X, X_new, Xc, Xnc = design
    mu = np.exp(1.0 + X @ [0.5, 0.2])
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    mle = bm.fit(bm.models.negative_binomial_regression(X, y), "mle")
    nb = sm.NegativeBinomial(y, Xc).fit(method="newton", disp=0, maxiter=200, tol=1e-12)
    np.testing.assert_allclose(mle.params["alpha"], nb.params[-1], rtol=1e-5)
    table = mle.predict({"X": X_new}, level=LEVEL)
    np.testing.assert_allclose(table["mean"], nb.predict(Xnc), rtol=1e-6)
    # NB2 at the MLE: scipy's nbinom(n=1/alpha, p=1/(1+alpha mu))
    alpha = float(mle.params["alpha"])
    m = np.exp(mle.params["intercept"] + X_new @ mle.params["coef"])
    dist = st.nbinom(1 / alpha, 1 / (1 + alpha * m))
    np.testing.assert_array_equal(table["lower"], dist.ppf((1 - LEVEL) / 2))
    np.testing.assert_array_equal(table["upper"], dist.ppf(1 - (1 - LEVEL) / 2))


def test_mle_softmax_matches_mnlogit(design):
    rng, X, X_new, Xc, Xnc = design
    codes = np.clip(np.round(X[:, 0] + rng.normal(size=len(X))).astype(int) + 1, 0, 2)
    labels = np.array(["a", "b", "c"])[codes]
    mle = bm.fit(bm.models.softmax_regression(X, labels), "mle")
    mn = sm.MNLogit(codes, Xc).fit(method="newton", disp=0, maxiter=200, tol=1e-12)
    table = mle.predict({"X": X_new})
    probs = table[["prob[a]", "prob[b]", "prob[c]"]].to_numpy()
    np.testing.assert_allclose(probs, mn.predict(Xnc), rtol=0, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert table["predicted"].tolist() == list(np.array(["a", "b", "c"])[probs.argmax(1)])
    # log-likelihood of new labels = log of the predicted class probabilities
    y_new = np.array(["c", "a", "b", "b", "a", "c", "a"])
    ll = mle.log_likelihood({"X": X_new, "y": y_new})["y_obs"].to_numpy()[0, 0]
    np.testing.assert_allclose(ll, np.log(mn.predict(Xnc)[np.arange(7), [2, 0, 1, 1, 0, 2, 0]]),
                               atol=1e-6)


# ---------------------------------------------------------------------------------------------
# 3. Wald predictive
# ---------------------------------------------------------------------------------------------
def test_wald_known_sigma_matches_closed_form(design):
    rng, X, X_new, Xc, Xnc = design
    y = 1.0 + X @ [0.5, -2.0] + SIG_LIN * rng.normal(size=len(X))
    X_far = X_new * 3  # far from the data: coefficient uncertainty is visible
    mle = bm.fit(bm.models.linear_regression(X, y, sigma=SIG_LIN), "mle")
    n_draws = 20_000
    wald = mle.predict({"X": X_far}, level=LEVEL, uncertainty="wald", draws=n_draws,
                       random_seed=9)
    plug = mle.predict({"X": X_far}, level=LEVEL)
    cov = SIG_LIN**2 * np.linalg.inv(Xc.T @ Xc)  # the MLE's covariance, known sigma
    Zn = sm.add_constant(X_far)
    sd = np.sqrt(SIG_LIN**2 + np.einsum("ij,jk,ik->i", Zn, cov, Zn))
    se_eta = np.sqrt(np.einsum("ij,jk,ik->i", Zn, cov, Zn))
    np.testing.assert_array_less(np.abs(wald["mean"] - plug["mean"]),
                                 4 * se_eta / np.sqrt(n_draws))
    p = 1 - (1 - LEVEL) / 2
    tol = _quantile_tol(p, st.norm.pdf(Z) / sd, n_draws)
    np.testing.assert_array_less(np.abs(wald["upper"] - (plug["mean"] + Z * sd)), tol)
    np.testing.assert_array_less(np.abs(wald["lower"] - (plug["mean"] - Z * sd)), tol)
    assert np.all(wald["upper"] - wald["lower"] > plug["upper"] - plug["lower"])


def test_wald_widens_estimated_sigma(design):
    rng, X, X_new, Xc, Xnc = design
    y = 1.0 + X[:12] @ [0.5, -2.0] + rng.normal(size=12)
    mle = bm.fit(bm.models.linear_regression(X[:12], y), "mle")
    wald = mle.predict({"X": X_new}, level=LEVEL, uncertainty="wald", draws=20_000,
                       random_seed=10)
    plug = mle.predict({"X": X_new}, level=LEVEL)
    assert wald.attrs["predictive"] == "wald"
    assert np.all(wald["upper"] - wald["lower"] > plug["upper"] - plug["lower"])


# ---------------------------------------------------------------------------------------------
# 4. Coverage by simulation
# ---------------------------------------------------------------------------------------------
def test_predictive_coverage_posterior_vs_plugin():
    reps, n = 200, 10
    rng = np.random.default_rng(51)
    tau, sig_scale = 2.0, 1.0
    hit_post = hit_mle = 0
    for r in range(reps):
        beta = rng.normal(0, tau, size=2)  # parameters drawn from the prior
        sigma = abs(rng.normal(0, sig_scale))
        x = rng.normal(size=(n, 1))
        y = beta[0] + beta[1] * x[:, 0] + sigma * rng.normal(size=n)
        x_new = rng.normal(size=(1, 1))
        y_new = beta[0] + beta[1] * x_new[0, 0] + sigma * rng.normal()
        spec = bm.models.linear_regression(x, y, prior=bm.Normal(tau),
                                           intercept_prior=bm.Normal(tau),
                                           sigma_prior=bm.HalfNormal(sig_scale))
        lap = bm.fit(spec, "laplace", draws=2000, random_seed=r)
        t = lap.predict({"X": x_new}, level=LEVEL, random_seed=r)
        hit_post += bool(t["lower"].iloc[0] <= y_new <= t["upper"].iloc[0])
        t = bm.fit(spec, "mle").predict({"X": x_new}, level=LEVEL)
        hit_mle += bool(t["lower"].iloc[0] <= y_new <= t["upper"].iloc[0])
    se = np.sqrt(LEVEL * (1 - LEVEL) / reps)
    cov_post, cov_mle = hit_post / reps, hit_mle / reps
    assert abs(cov_post - LEVEL) < 3 * se, cov_post
    assert cov_mle < LEVEL - se, cov_mle  # the plug-in under-covers at n = 10


# ---------------------------------------------------------------------------------------------
# 5. ArviZ / PyMC interoperability
# ---------------------------------------------------------------------------------------------
def test_predictive_tree_with_arviz(linreg):
    post = linreg["nuts"]
    tree = post.predictive(random_seed=11)
    assert sorted(tree.children) == ["log_likelihood", "observed_data", "posterior",
                                     "posterior_predictive"]
    azp.plot_ppc_dist(tree, backend="none")
    loo = azs.loo(post.datatree)
    assert np.isfinite(loo.elpd)
    loo_tree = azs.loo(tree)
    np.testing.assert_allclose(loo_tree.elpd, loo.elpd, rtol=1e-8)
    # log_likelihood group equals the Normal log-density by hand
    ll = tree["log_likelihood"]["y_obs"].to_numpy()
    p = tree["posterior"]
    eta = p["intercept"].to_numpy()[..., None] + np.einsum(
        "cdk,nk->cdn", p["coef"].to_numpy(), linreg["X"])
    np.testing.assert_allclose(ll, st.norm.logpdf(linreg["y"], eta, SIG_LIN), rtol=1e-10)


@pytest.fixture(scope="module")
def pois_reg():
    rng = np.random.default_rng(61)
    X = rng.normal(size=(25, 2))
    y = rng.poisson(np.exp(0.5 + X @ [0.3, -0.2]))
    spec = bm.models.poisson_regression(X, y, prior=bm.Normal(1.0),
                                        intercept_prior=bm.Normal(2.0))
    return spec, X, bm.fit(spec, "nuts", random_seed=12, **{**NUTS, "draws": 500})


def test_pymc_sample_posterior_predictive(pois_reg):
    spec, X, post = pois_reg
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potentials.*", category=UserWarning)
        pp = pm.sample_posterior_predictive(post.datatree, model=spec.build(),
                                            random_seed=13, progressbar=False)
    draws = pp["posterior_predictive"]["y_obs"].to_numpy()
    ours = post.predict()["mean"].to_numpy()
    theirs = draws.mean(axis=(0, 1))
    # MCSE of the mean of predictive draws (one per posterior draw)
    tol = 4.5 * np.array([_mcse(draws[..., i]) for i in range(draws.shape[-1])])
    np.testing.assert_array_less(np.abs(theirs - ours), tol)


def test_new_data_different_rows(pois_reg):
    spec, X, post = pois_reg
    X_new = np.random.default_rng(62).normal(size=(3, 2))
    table = post.predict({"X": X_new}, level=LEVEL, random_seed=14)
    assert len(table) == 3
    p = post.datatree["posterior"]
    mu = np.exp(p["intercept"].to_numpy()[..., None]
                + np.einsum("cdk,nk->cdn", p["coef"].to_numpy(), X_new))
    np.testing.assert_allclose(table["mean"], mu.mean(axis=(0, 1)), rtol=1e-10)
    tree = post.predictive({"X": X_new}, random_seed=15)
    assert tree["posterior_predictive"]["y_obs"].shape == (2, 500, 3)
    assert "log_likelihood" not in tree.children
    y_new = np.array([1, 0, 2])
    ll = post.log_likelihood({"X": X_new, "y": y_new})["y_obs"].to_numpy()
    np.testing.assert_allclose(ll, st.poisson.logpmf(y_new, mu), rtol=1e-10)
    one = post.predict({"X": X_new[:1]})
    np.testing.assert_allclose(one["mean"].iloc[0], table["mean"].iloc[0], rtol=1e-12)


def test_dataframe_new_data_by_column_name():
    rng = np.random.default_rng(63)
    X = pd.DataFrame(rng.normal(size=(30, 2)), columns=["age", "dose"])
    y = 1 + X.to_numpy() @ [1.0, -0.5] + rng.normal(size=30)
    mle = bm.fit(bm.models.linear_regression(X, y), "mle")
    new = pd.DataFrame({"dose": [0.0, 1.0], "age": [2.0, -1.0]}, index=["p", "q"])
    table = mle.predict(new)
    assert list(table.index) == ["p", "q"]
    expected = mle.params["intercept"] + new[["age", "dose"]].to_numpy() @ mle.params["coef"]
    np.testing.assert_allclose(table["mean"], expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 6. New-data validation
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pois_mle():
    rng = np.random.default_rng(71)
    X = pd.DataFrame(rng.normal(size=(30, 2)), columns=["a", "b"])
    y = rng.poisson(np.exp(0.5 + X.to_numpy() @ [0.3, -0.2]))
    return bm.fit(bm.models.poisson_regression(X, y), "mle")


@pytest.mark.parametrize("data, match", [
    ({"X": np.ones((3, 3))}, "3 column"),
    ({"X": np.array([[1.0, np.nan], [0.0, 1.0]])}, "non-finite"),
    (pd.DataFrame({"a": [1.0], "c": [2.0]}), r"unknown column\(s\) \['c'\]"),
    (pd.DataFrame({"a": [1.0]}), r"missing column\(s\) \['b'\]"),
    ({"X": np.ones((3, 2)), "exposure": [1.0, -1.0, 2.0]}, "exposure"),
    ({"X": np.ones((3, 2)), "weights": [1.0, 1.0, 1.0]}, r"unknown key\(s\) \['weights'\]"),
    ({"X": np.ones((3, 2)), "y": [1, 2]}, "rows"),
    ({"X": np.ones((3, 2)), "y": [1, -2, 3]}, "negative"),
    ({"X": np.ones((3, 2)), "y": [1, 2.5, 3]}, "whole|integer|count"),
])
def test_new_data_errors(pois_mle, data, match):
    with pytest.raises(DataError, match=match):
        if isinstance(data, dict) and "y" in data:
            pois_mle.log_likelihood(data)
        else:
            pois_mle.predict(data)


def test_softmax_unseen_label():
    rng = np.random.default_rng(72)
    X = rng.normal(size=(30, 1))
    mle = bm.fit(bm.models.softmax_regression(X, np.array(["a", "b", "c"] * 10)), "mle")
    with pytest.raises(DataError, match="'z'"):
        mle.log_likelihood({"X": X[:3], "y": ["a", "b", "z"]})
    with pytest.raises(SpecError, match="level"):
        mle.predict(level=0.9)


def test_generic_new_response_validated():
    """New values of a single-distribution model's response are refused like the fitted ones
    (the observation model casts counts to integers: 2.5 must not become 2)."""
    mle = bm.fit(bm.models.poisson(np.array([1, 2, 3, 4])), "mle")
    with pytest.raises(DataError, match="data\\['y'\\]"):
        mle.log_likelihood({"y": [1.0, 2.5]})
    with pytest.raises(DataError, match="unknown key"):
        mle.predict({"z": [1.0]})
    ll = mle.log_likelihood({"y": [0, 5]})["y_obs"].to_numpy().ravel()
    np.testing.assert_allclose(ll, st.poisson.logpmf([0, 5], 2.5), rtol=1e-12)


def test_uncertainty_and_level_errors(gauss):
    with pytest.raises(SpecError, match="uncertainty"):
        gauss["nuts"].predict(uncertainty="wald")
    with pytest.raises(SpecError, match="level"):
        gauss["map"].predict(level=1.5)
    with pytest.raises(SpecError, match="uncertainty"):
        gauss["map"].predict(uncertainty="bootstrap")


def test_prior_with_flat_prior_refused():
    spec = bm.models.linear_regression(np.random.default_rng(73).normal(size=(10, 1)),
                                       np.arange(10.0), prior=bm.Normal(1.0))
    with pytest.raises(PriorError, match="intercept"):
        bm.fit(spec, "prior", draws=10, random_seed=1)



def test_prior_with_uniform_beta_is_sampled():
    """Beta(1, 1) is the flat prior of a probability and proper: its draws are uniform."""
    spec = bm.models.bernoulli(np.array([0.0, 1.0, 1.0]), p_prior=bm.Beta(1.0, 1.0))
    draws = bm.fit(spec, "prior", draws=2000, random_seed=5).draws()["p"].to_numpy()
    assert st.kstest(draws, "uniform").pvalue > 1e-3

# ---------------------------------------------------------------------------------------------
# 7. Thread safety
# ---------------------------------------------------------------------------------------------
def test_predict_threads_identical(linreg, pois_mle):
    cases = [(linreg["nuts"], {"X": linreg["X_new"]}, {}),
             (pois_mle, None, {"uncertainty": "wald", "draws": 500})]
    for res, data, kw in cases:
        serial = res.predict(data, level=LEVEL, random_seed=99, **kw)
        out = [None] * 4
        barrier = threading.Barrier(4)

        def run(i, res=res, data=data, kw=kw, out=out, barrier=barrier):
            barrier.wait()
            out[i] = res.predict(data, level=LEVEL, random_seed=99, **kw)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for table in out:
            pd.testing.assert_frame_equal(table, serial)


# ---------------------------------------------------------------------------------------------
# Exact plug-in quantiles of other families (scipy references at the MLE/MAP)
# ---------------------------------------------------------------------------------------------
def test_robust_plugin_quantiles_match_scipy():
    rng = np.random.default_rng(81)
    X = rng.normal(size=(40, 1))
    y = 1 + X[:, 0] + st.t(4).rvs(size=40, random_state=rng)
    x_new = np.array([[0.5], [-2.0]])
    probs = [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2]
    for noise in ("student_t", "laplace", "cauchy"):
        mle = bm.fit(bm.models.robust_regression(X, y, noise=noise), "mle")
        table = mle.predict({"X": x_new}, level=LEVEL)
        p = mle.params
        mu = p["intercept"] + x_new @ p["coef"]
        dist = {"student_t": lambda m, p=p: st.t(p["nu"], m, p["sigma"]),
                "laplace": lambda m, p=p: st.laplace(m, p["sigma"]),
                "cauchy": lambda m, p=p: st.cauchy(m, p["sigma"])}[noise](mu)
        np.testing.assert_allclose(table["lower"], dist.ppf(probs[0]), rtol=1e-9)
        np.testing.assert_allclose(table["upper"], dist.ppf(probs[1]), rtol=1e-9)
        if noise == "cauchy":
            assert table["mean"].isna().all() and not table.attrs["mean_defined"]
        else:
            np.testing.assert_allclose(table["mean"], mu, rtol=1e-12)


def test_poisson_gamma_map_plugin_and_prior_predictive(poisson_gamma):
    y = poisson_gamma["y"]
    m = bm.fit(poisson_gamma["spec"], "map")
    mode = (A_G + y.sum() - 1) / (B_G + len(y))  # the Gamma posterior's mode
    table = m.predict(level=LEVEL)
    np.testing.assert_allclose(table["mean"], mode, rtol=1e-6)
    np.testing.assert_array_equal(table["lower"], st.poisson.ppf((1 - LEVEL) / 2, mode))
    np.testing.assert_array_equal(table["upper"], st.poisson.ppf(1 - (1 - LEVEL) / 2, mode))
    prior = bm.fit(poisson_gamma["spec"], "prior", draws=4000, random_seed=16)
    first = prior.datatree["prior_predictive"]["y_obs"].to_numpy()[0, :, 0]
    nb = st.nbinom(A_G, B_G / (B_G + 1.0))  # prior predictive: NB(a, b / (b + 1))
    for k in range(6):
        f = nb.pmf(k)
        assert abs((first == k).mean() - f) < 4.5 * np.sqrt(f * (1 - f) / first.size), k


def test_generic_new_response_outside_support():
    """A new response outside the family's support is refused, not scored -inf."""
    mle = bm.fit(bm.models.bernoulli(np.array([0.0, 1.0, 1.0, 0.0])), "mle")
    with pytest.raises(DataError, match=r"support.*row\(s\) \[1\]"):
        mle.log_likelihood({"y": [0.0, 2.0]})
    pois = bm.fit(bm.models.poisson(np.array([1.0, 2.0, 3.0])), "mle")
    with pytest.raises(DataError, match=r"support.*row\(s\) \[0\]"):
        pois.predictive({"y": [-1.0, 2.0]}, draws=5, random_seed=1)
    np.testing.assert_allclose(mle.log_likelihood({"y": [1.0, 0.0]})["y_obs"].to_numpy().ravel(),
                               np.log([0.5, 0.5]), rtol=1e-12)


def test_poisson_vs_negative_binomial_with_arviz_compare():
    """The user's question of the issue: Poisson or negative binomial? ``arviz_stats.compare``
    takes the NUTS DataTrees directly (pointwise log_likelihood group), and on counts
    simulated with NB2 dispersion 1.0 it ranks the negative binomial first, by far more than
    the SE of the difference; the Poisson's in-sample log-likelihood at its MLE matches
    scipy's (the log_likelihood group is the Poisson log-pmf at each draw)."""
    rng = np.random.default_rng(77)
    X = rng.normal(size=(120, 1))
    mu = np.exp(1.0 + 0.5 * X[:, 0])
    y = rng.negative_binomial(1.0, 1.0 / (1.0 + mu))  # NB2 with alpha = 1: Var = mu + mu^2
    priors = {"prior": bm.Normal(1.0), "intercept_prior": bm.Normal(3.0)}
    pois = bm.models.poisson_regression(X, y, **priors)
    nb = bm.models.negative_binomial_regression(X, y, alpha_prior=bm.HalfNormal(2.0), **priors)
    trees = {name: bm.fit(spec, "nuts", random_seed=3, **NUTS).datatree
             for name, spec in (("poisson", pois), ("negative_binomial", nb))}
    with warnings.catch_warnings():  # the Poisson misfit has influential points (k > 0.7)
        warnings.filterwarnings("ignore", message=".*Pareto distribution.*",
                                category=UserWarning)
        table = azs.compare(trees, round_to=None)
    assert table.index[0] == "negative_binomial"
    assert abs(table.loc["poisson", "elpd_diff"]) > 4 * table.loc["poisson", "dse"]
    mle = bm.fit(pois, "mle")
    ll = mle.log_likelihood()["y_obs"].to_numpy().ravel()
    rate = np.exp(mle.params["intercept"] + X @ mle.params["coef"])
    np.testing.assert_allclose(ll, st.poisson.logpmf(y, rate), rtol=1e-12)


def test_binomial_plugin_intervals_match_scipy():
    """Binomial counts (i.i.d. and regression): the plug-in interval is scipy's binomial
    quantiles at the fitted p for the *new* trial counts, integer-valued; draws need integer
    trials (a float count used to break numpy's sampler)."""
    k, n = np.array([3.0, 4.0, 2.0]), np.array([10.0, 10.0, 8.0])
    spec = bm.models.binomial(k, n, p_prior=bm.Beta(2.0, 2.0))
    p_map = (k.sum() + 1) / (n.sum() + 2)
    table = bm.fit(spec, "map").predict({"trials": [5, 20]}, level=0.9)
    np.testing.assert_allclose(table["mean"], p_map * np.array([5, 20]), rtol=1e-9)
    np.testing.assert_array_equal(table["lower"], st.binom.ppf(0.05, [5, 20], p_map))
    np.testing.assert_array_equal(table["upper"], st.binom.ppf(0.95, [5, 20], p_map))
    assert table["lower"].dtype.kind == "i"
    prior = bm.fit(spec, "prior", draws=200, random_seed=4)
    assert prior.datatree["prior_predictive"]["successes_obs"].dtype.kind == "i"

    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 1))
    trials = rng.integers(5, 30, size=80)
    succ = rng.binomial(trials, 1 / (1 + np.exp(-(0.2 + 0.7 * X[:, 0]))))
    fit = bm.fit(bm.models.binomial_regression(X, succ, trials), "mle")
    new = {"X": np.array([[0.0], [1.5]]), "trials": [12, 40]}
    table = fit.predict(new, level=0.8)
    p = 1 / (1 + np.exp(-(fit.params["intercept"] + np.array([0.0, 1.5]) * fit.params["coef"][0])))
    np.testing.assert_allclose(table["mean"], p * [12, 40], rtol=1e-10)
    np.testing.assert_array_equal(table["lower"], st.binom.ppf(0.1, [12, 40], p))
    np.testing.assert_array_equal(table["upper"], st.binom.ppf(0.9, [12, 40], p))


def test_student_t_mean_exists_only_for_nu_above_one():
    """E[y] of a Student-t exists iff nu > 1 (PyMC's mean returns mu whatever nu): with prior
    draws of nu below 1 the predictive mean is NaN and flagged; with nu far above 1 it is the
    average of the linear predictor over the draws."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(10, 1))
    y = X[:, 0] + rng.standard_t(3, size=10)
    base = {"prior": bm.Normal(1.0), "intercept_prior": bm.Normal(1.0),
            "sigma_prior": bm.HalfNormal(1.0)}
    heavy = bm.models.robust_regression(X, y, noise="student_t", nu_prior=bm.Gamma(2.0, 2.0),
                                        **base)
    table = bm.fit(heavy, "prior", draws=400, random_seed=1).predict(level=0.8, random_seed=2)
    assert table["mean"].isna().all() and table.attrs["mean_defined"] is False
    assert np.isfinite(table[["lower", "upper"]].to_numpy()).all()
    light = heavy.with_priors(nu=bm.Gamma(400.0, 40.0))  # nu ~ 10 +- 0.5
    prior = bm.fit(light, "prior", draws=400, random_seed=1)
    table = prior.predict(random_seed=2)
    post = prior.datatree["prior"]
    eta = (post["intercept"].to_numpy()[..., None]
           + post["coef"].to_numpy()[..., 0, None] * X[:, 0])
    np.testing.assert_allclose(table["mean"], eta.mean(axis=(0, 1)), rtol=1e-10, atol=1e-12)
    assert table.attrs["mean_defined"] is True
