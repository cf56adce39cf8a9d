"""Shrinkage priors (issue 15, part 1): ElasticNet, StudentT, Cauchy, Horseshoe.

References are independent of the code under test: quadrature (scipy.integrate), scikit-learn's
ElasticNet, glmnet's published solutions as shipped with statsmodels (tests/data/enet_README.md),
KKT conditions written here in numpy, scipy optimisation of log posteriors written here, and
ordinary least squares.
"""

from __future__ import annotations

import math
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pymc as pm
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats

import bayesmle as bm
from bayesmle.specfile import parse_prior
from bayesmle.specfile._schema import Where

DATA = Path(__file__).parent / "data"


# ---------------------------------------------------------------------------------------------
# Elastic net: the density
# ---------------------------------------------------------------------------------------------
def _enet_kernel(w, b, sigma, mu=0.0):
    return np.exp(-np.abs(w - mu) / b - (w - mu) ** 2 / (2 * sigma**2))


@pytest.mark.parametrize(("b", "sigma"), [(1.0, 1.0), (0.05, 3.0), (20.0, 0.1), (1e-3, 50.0)])
def test_enet_normaliser_by_quadrature(b, sigma):
    half, _ = scipy.integrate.quad(_enet_kernel, 0, np.inf, args=(b, sigma), epsabs=0,
                                   epsrel=1e-12, limit=500)
    z = 2 * half
    assert math.isclose(float(bm.priors.elastic_net_log_normaliser(b, sigma)), math.log(z),
                        rel_tol=0, abs_tol=1e-9)


def test_enet_pymc_logp_is_the_normalised_density():
    prior = bm.ElasticNet(0.7, 1.3, mu=0.4)
    with pm.Model() as model:
        pass
    w = prior.rv(model, "w", shape=(4,))
    values = np.array([-2.0, 0.4, 0.5, 3.0])
    logp = model.compile_logp(vars=[w], sum=False)({"w": values})[0]
    z = 2 * scipy.integrate.quad(_enet_kernel, 0, np.inf, args=(0.7, 1.3), epsrel=1e-12)[0]
    np.testing.assert_allclose(logp, np.log(_enet_kernel(values, 0.7, 1.3, 0.4) / z),
                               rtol=0, atol=1e-9)


def test_enet_sampler_matches_quadrature_moments():
    b, sigma, mu = 0.5, 2.0, 1.0
    with pm.Model() as model:
        pass
    rv = bm.ElasticNet(b, sigma, mu=mu).rv(model, "w", shape=(20_000,))
    draws = pm.draw(rv, random_seed=11)
    z = 2 * scipy.integrate.quad(_enet_kernel, 0, np.inf, args=(b, sigma))[0]
    # moments of w - mu by quadrature (symmetric: the mean is mu)
    m_abs = 2 * scipy.integrate.quad(lambda t: t * _enet_kernel(t, b, sigma), 0, np.inf)[0] / z
    m_2 = 2 * scipy.integrate.quad(lambda t: t * t * _enet_kernel(t, b, sigma), 0, np.inf)[0] / z
    m_4 = 2 * scipy.integrate.quad(lambda t: t**4 * _enet_kernel(t, b, sigma), 0, np.inf)[0] / z
    n = draws.size
    u = draws - mu
    assert abs(u.mean()) <= 5 * math.sqrt(m_2 / n)
    assert abs(np.abs(u).mean() - m_abs) <= 5 * math.sqrt((m_2 - m_abs**2) / n)
    assert abs((u**2).mean() - m_2) <= 5 * math.sqrt((m_4 - m_2**2) / n)
    # and by a Kolmogorov-Smirnov test against the CDF from quadrature
    grid = np.linspace(-12, 12, 4001)
    dens = _enet_kernel(grid, b, sigma) / z
    cdf = np.concatenate(([0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))))
    assert scipy.stats.kstest(u, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


# ---------------------------------------------------------------------------------------------
# Elastic net: MAP = scikit-learn's ElasticNet (Gaussian, sigma fixed, intercept unpenalised)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sparse_data():
    rng = np.random.default_rng(20261202)
    n, d = 80, 8
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d)
    y = 2.0 + X @ np.r_[1.5, -1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.2] + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.1, 0.5), (0.3, 0.9), (0.02, 0.2),
                                                 (1.0, 0.5)])
def test_enet_map_equals_sklearn(sparse_data, alpha, l1_ratio):
    from sklearn.linear_model import ElasticNet as SkElasticNet

    X, y = sparse_data
    n, s = len(y), 1.7
    prior = bm.ElasticNet.from_sklearn(alpha, l1_ratio, n=n, noise_sd=s)
    res = bm.fit(bm.models.linear_regression(X, y, prior=prior, sigma=s), "map")
    ref = SkElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-15,
                       max_iter=1_000_000).fit(X, y)
    assert res.converged
    coef = res.params["coef"]
    np.testing.assert_array_equal(coef == 0.0, ref.coef_ == 0.0)
    np.testing.assert_allclose(coef, ref.coef_, rtol=0, atol=1e-8)
    assert abs(float(res.params["intercept"]) - ref.intercept_) <= 1e-8
    if alpha == 0.3:
        assert 0 < (coef == 0.0).sum() < coef.size


def test_enet_map_1d_closed_form():
    # y_i ~ N(w, 1), w ~ ElasticNet(b, sigma): MAP = soft(sum y, 1/b) / (n + 1/sigma^2)
    y = np.array([0.3, 1.1, 0.9, 1.5])
    X = np.ones((4, 1))
    for b, sigma in [(0.5, 1.0), (0.2, 2.0), (0.1, 0.5)]:
        res = bm.fit(bm.models.linear_regression(X, y, prior=bm.ElasticNet(b, sigma),
                                                 intercept=False, sigma=1.0), "map")
        s = y.sum()
        expect = np.sign(s) * max(abs(s) - 1 / b, 0.0) / (len(y) + 1 / sigma**2)
        assert abs(float(res.params["coef"][0]) - expect) <= 1e-12
        assert (float(res.params["coef"][0]) == 0.0) == (expect == 0.0)


def test_enet_as_a_free_variable():
    # the other route into a model: the prior's own random variable (CustomDist)
    y = np.array([0.2, 1.4, 0.9, 2.1, 0.3])
    b, s = 0.3, 0.8
    spec = bm.models.gaussian(y, mu_prior=bm.ElasticNet(b, s), sigma_prior=bm.HalfNormal(2.0))
    res = bm.fit(spec, "map")
    assert res.converged and not res.local_optimum
    mu, sigma = float(res.params["mu"]), float(res.params["sigma"])
    # given sigma, the mode in mu is a soft-thresholded weighted mean (closed form)
    t = y.sum() / sigma**2
    expect = np.sign(t) * max(abs(t) - 1 / b, 0.0) / (len(y) / sigma**2 + 1 / s**2)
    # 1e-8: an optimum located through f values is resolved to ~sqrt(eps |f| / f'') ~ 1e-8
    assert abs(mu - expect) <= 1e-8
    draws = bm.fit(spec, "prior", draws=4000, random_seed=2).datatree["prior"]["mu"]
    z = 2 * scipy.integrate.quad(_enet_kernel, 0, np.inf, args=(b, s))[0]
    m_2 = 2 * scipy.integrate.quad(lambda t: t * t * _enet_kernel(t, b, s), 0, np.inf)[0] / z
    m_4 = 2 * scipy.integrate.quad(lambda t: t**4 * _enet_kernel(t, b, s), 0, np.inf)[0] / z
    d2 = np.asarray(draws).ravel() ** 2
    assert abs(d2.mean() - m_2) <= 5 * math.sqrt((m_4 - m_2**2) / d2.size)


def test_enet_mappings():
    n, lam, a, s = 50, 0.2, 0.4, 1.5
    p = bm.ElasticNet.from_glmnet(lam, a, n=n, noise_sd=s)
    assert math.isclose(float(p.b), s**2 / (n * lam * a))
    assert math.isclose(float(p.sigma) ** 2, s**2 / (n * lam * (1 - a)))
    assert bm.ElasticNet.from_sklearn(lam, a, n=n, noise_sd=s) == p
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(bm.PriorError, match="alpha"):
            bm.ElasticNet.from_glmnet(lam, bad, n=n)
        with pytest.raises(bm.PriorError, match="l1_ratio"):
            bm.ElasticNet.from_sklearn(lam, bad, n=n)
    with pytest.raises(bm.PriorError, match="`sigma` must be > 0"):
        bm.ElasticNet(1.0, -1.0)


# ---------------------------------------------------------------------------------------------
# Elastic net, logistic and Poisson: KKT and glmnet's published solutions
# ---------------------------------------------------------------------------------------------
def _glmnet_rows():
    rows = []
    for line in (DATA / "enet_glmnet_results.csv").read_text().splitlines():
        if line.startswith("#"):
            continue
        fam, j, *vals = line.split(",")
        vals = [float(v) for v in vals]
        rows.append((fam, int(j), vals[0], vals[1], np.array(vals[2:])))
    return rows


def _mean_loglik(fam, X, y, w):
    eta = X @ w
    if fam == "binomial":
        return float(np.mean(y * eta - np.logaddexp(0.0, eta)))
    return float(np.mean(y * eta - np.exp(eta)))  # Poisson without the log(y!) constant


def _score(fam, X, y, w):
    eta = X @ w
    mean = 1 / (1 + np.exp(-eta)) if fam == "binomial" else np.exp(eta)
    return X.T @ (y - mean) / len(y)


@pytest.mark.parametrize("row", _glmnet_rows(), ids=lambda r: f"{r[0]}-{r[1]}")
def test_glm_elastic_net_kkt_and_glmnet(row):
    fam, _, l1_wt, lam, glmnet_params = row
    data = np.loadtxt(DATA / f"enet_{fam}.csv", delimiter=",")
    y, X = data[:, 0], data[:, 1:]
    n = len(y)
    if l1_wt == 1.0:
        prior = bm.Laplace(1 / (n * lam))
    elif l1_wt == 0.0:
        prior = bm.Normal(math.sqrt(1 / (n * lam)))
    else:
        prior = bm.ElasticNet.from_glmnet(lam, l1_wt, n=n)
    build = bm.models.logistic_regression if fam == "binomial" else bm.models.poisson_regression
    res = bm.fit(build(X, y, prior=prior, intercept=False), "map")
    assert res.converged
    w = res.params["coef"]
    # KKT of glmnet's objective: mean loglik - lam ((1 - a) |w|^2 / 2 + a |w|_1)
    g = _score(fam, X, y, w) - lam * (1 - l1_wt) * w
    nz = w != 0
    assert np.all(np.abs(g[nz] - lam * l1_wt * np.sign(w[nz])) <= 1e-8)
    assert np.all(np.abs(g[~nz]) <= lam * l1_wt + 1e-8)

    def plf(p):
        return _mean_loglik(fam, X, y, p) - lam * (
            (1 - l1_wt) * np.sum(p**2) / 2 + l1_wt * np.sum(np.abs(p)))

    assert plf(w) >= plf(glmnet_params) - 1e-12
    # and the same optimum as statsmodels' coordinate descent (its tolerance ~1e-7); for
    # L1_wt = 0 statsmodels takes a ridge shortcut that is 2e-5 off (checked against BFGS
    # at gtol=1e-12 while writing this test), so it is not a reference there
    if l1_wt == 0.0:
        return
    import statsmodels.api as sm

    family = sm.families.Binomial() if fam == "binomial" else sm.families.Poisson()
    ref = sm.GLM(y, X, family=family).fit_regularized(L1_wt=l1_wt, alpha=lam)
    np.testing.assert_allclose(w, ref.params, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Elastic net: NUTS on a 1-D posterior known by quadrature
# ---------------------------------------------------------------------------------------------
def test_enet_nuts_1d_matches_quadrature():
    y = np.array([0.4, 1.3, -0.2])
    b, sigma = 0.6, 1.5
    res = bm.fit(bm.models.linear_regression(np.ones((3, 1)), y, intercept=False, sigma=1.0,
                                             prior=bm.ElasticNet(b, sigma)),
                 "nuts", draws=1000, tune=500, chains=2, random_seed=5)
    assert res.divergences == 0

    def post(w):
        return np.exp(-0.5 * np.sum((y[:, None] - w) ** 2, axis=0) - np.abs(w) / b
                      - w**2 / (2 * sigma**2))

    f = lambda w: post(np.atleast_1d(w))[0]  # noqa: E731
    z = scipy.integrate.quad(f, -20, 20, points=[0.0], epsrel=1e-11)[0]
    mean = scipy.integrate.quad(lambda w: w * f(w), -20, 20, points=[0.0], epsrel=1e-11)[0] / z
    second = scipy.integrate.quad(lambda w: w * w * f(w), -20, 20, points=[0.0])[0] / z
    summary = res.summary()
    row = summary.loc[summary.index[0]]
    assert abs(row["mean"] - mean) <= 4 * row["mcse_mean"]
    # E[w^2], its Monte Carlo standard error from the effective sample size of w^2
    w2 = np.asarray(res.datatree["posterior"]["coef"]).reshape(2, -1) ** 2
    mcse = w2.std() / math.sqrt(float(azs.ess(w2)))
    assert abs(w2.mean() - second) <= 4 * mcse


# ---------------------------------------------------------------------------------------------
# Student-t and Cauchy: certified local optima
# ---------------------------------------------------------------------------------------------
def test_cauchy_map_is_a_certified_local_optimum():
    # ybar = 3 with standard error 1 and a sharp Cauchy(0.1) prior: the log posterior
    # -(w - 3)^2 / 2 - log(1 + (w / 0.1)^2) has two local maxima (near 0 and near 2).
    y = np.array([2.0, 4.0])
    spec = bm.models.linear_regression(np.ones((2, 1)), y, intercept=False,
                                       sigma=math.sqrt(2.0), prior=bm.Cauchy(0.1))

    def dneg(w):  # derivative of minus the log posterior
        return (w - 3.0) + 2 * w / (0.01 + w * w)

    # its zeros: a mode near 0, a trough near 0.9, a mode near 2.05
    modes = [scipy.optimize.brentq(dneg, lo, hi, xtol=1e-15) for lo, hi in [(0.0, 0.5),
                                                                            (1.5, 3.0)]]
    trough = scipy.optimize.brentq(dneg, 0.5, 1.5, xtol=1e-15)
    assert modes[0] < trough < modes[1]  # two modes indeed
    res = bm.fit(spec, "map")
    w = float(res.params["coef"][0])
    assert res.converged and res.local_optimum
    assert "local optimum" in res.message and "local optimum" in repr(res)
    assert bool(res.to_datatree()["fit"]["local_optimum"])
    assert min(abs(w - m) for m in modes) <= 1e-8


def test_student_t_map_matches_scipy():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    y = X @ [1.0, 0.0, -0.5] + rng.normal(size=30)
    res = bm.fit(bm.models.linear_regression(X, y, intercept=False, sigma=1.0,
                                             prior=bm.StudentT(3.0, 0.3)), "map")

    def neg(w):
        return 0.5 * np.sum((y - X @ w) ** 2) - np.sum(
            scipy.stats.t.logpdf(w, df=3.0, scale=0.3))

    ref = scipy.optimize.minimize(neg, np.zeros(3), method="BFGS", options={"gtol": 1e-11})
    assert res.converged and res.local_optimum
    np.testing.assert_allclose(res.params["coef"], ref.x, atol=1e-6)
    # Normal priors are log-concave: no "local" statement
    ridge = bm.fit(bm.models.linear_regression(X, y, prior=bm.Normal(1.0)), "map")
    assert not ridge.local_optimum


# ---------------------------------------------------------------------------------------------
# Horseshoe
# ---------------------------------------------------------------------------------------------
N, D = 100, 20
SIGNALS = np.array([3.0, -2.0, 1.5])


@pytest.fixture(scope="module")
def sparse_regression():
    rng = np.random.default_rng(2026)
    X = rng.normal(size=(N, D))
    beta = np.r_[SIGNALS, np.zeros(D - 3)]
    y = 0.5 + X @ beta + rng.normal(size=N)
    return X, y


def _horseshoe_spec(X, y, prior):
    return bm.models.linear_regression(X, y, prior=prior, intercept_prior=bm.Normal(10.0),
                                       sigma_prior=bm.HalfNormal(5.0))


@pytest.mark.parametrize("prior", [bm.Horseshoe(0.05), bm.RegularizedHorseshoe(0.05, 2.0)])
def test_horseshoe_point_methods_refuse(sparse_regression, prior):
    X, y = sparse_regression
    spec = _horseshoe_spec(X, y, prior)
    for method in ("map", "laplace"):
        with pytest.raises(bm.PriorError, match="unbounded at `coef` = 0") as err:
            bm.fit(spec, method)
        assert "Laplace approximation" in str(err.value) and "nuts" in str(err.value)
    mle = bm.fit(spec, "mle")  # flat priors: ordinary least squares
    ols = np.linalg.lstsq(np.column_stack([np.ones(N), X]), y, rcond=None)[0]
    np.testing.assert_allclose(mle.params["coef"], ols[1:], rtol=1e-9)
    assert spec.params == ("intercept", "coef", "sigma")


def test_horseshoe_prior_draws(sparse_regression):
    X, y = sparse_regression
    tau0 = 0.5
    res = bm.fit(_horseshoe_spec(X, y, bm.Horseshoe(tau0)), "prior", draws=2000,
                 random_seed=4)
    assert set(res.params) == {"intercept", "coef", "sigma"}
    ours = np.asarray(res.datatree["prior"]["coef"]).reshape(-1, D)[:, 0]
    rng = np.random.default_rng(9)
    m = 20_000
    ref = (rng.normal(size=m) * np.abs(rng.standard_cauchy(m))
           * tau0 * np.abs(rng.standard_cauchy(m)))
    assert scipy.stats.ks_2samp(ours, ref).pvalue > 1e-3


def test_regularized_horseshoe_prior_draws(sparse_regression):
    X, y = sparse_regression
    tau0, slab, df = 0.5, 2.0, 4.0
    res = bm.fit(_horseshoe_spec(X, y, bm.RegularizedHorseshoe(tau0, slab, df)), "prior",
                 draws=2000, random_seed=6)
    ours = np.asarray(res.datatree["prior"]["coef"]).reshape(-1, D)[:, 0]
    rng = np.random.default_rng(10)
    m = 20_000
    lam = np.abs(rng.standard_cauchy(m))
    tau = tau0 * np.abs(rng.standard_cauchy(m))
    c2 = scipy.stats.invgamma.rvs(df / 2, scale=df * slab**2 / 2, size=m, random_state=rng)
    ref = rng.normal(size=m) * tau * np.sqrt(c2 * lam**2 / (c2 + tau**2 * lam**2))
    assert scipy.stats.ks_2samp(ours, ref).pvalue > 1e-3


def test_numeric_log_densities_refuse_new_priors_clearly():
    from bayesmle.priors.numeric import logpdf

    for prior in (bm.StudentT(3.0, 1.0), bm.Cauchy(1.0), bm.ElasticNet(1.0, 1.0),
                  bm.Horseshoe(1.0)):
        with pytest.raises(bm.PriorError, match="No numeric log-density"):
            logpdf(prior, 0.0)


def test_horseshoe_cannot_be_attached():
    with pm.Model() as model:
        theta = pm.Flat("theta")
    with pytest.raises(bm.PriorError, match="non-centred"):
        bm.Horseshoe(1.0).attach(model, "coef", 2.0 * theta)


def _tau0():
    return 3 / (D - 3) / math.sqrt(N)  # Piironen & Vehtari: p0 / (d - p0) * sigma / sqrt(n)


@pytest.fixture(scope="module")
def horseshoe_nuts(sparse_regression):
    """The regularised horseshoe, one NUTS run with the default settings (4 x 1000 draws)."""
    X, y = sparse_regression
    return bm.fit(_horseshoe_spec(X, y, bm.RegularizedHorseshoe(_tau0(), 2.0)), "nuts",
                  random_seed=20261202)


@pytest.mark.slow
def test_horseshoe_nuts_shrinks_noise_not_signals(sparse_regression, horseshoe_nuts):
    from sklearn.linear_model import LassoCV

    X, y = sparse_regression
    mean = horseshoe_nuts.params["coef"]
    # The lasso at scikit-learn's 5-fold cross-validated lambda (the universal
    # sigma sqrt(2 log d / n) zeroes every noise coefficient here, leaving nothing to compare),
    # as a MAP: Laplace(b) with b = s^2 / (n lambda), s the OLS residual sd, sigma fixed at s.
    A = np.column_stack([np.ones(N), X])
    ols = np.linalg.lstsq(A, y, rcond=None)[0]
    s = math.sqrt(np.sum((y - A @ ols) ** 2) / (N - D - 1))
    lam = LassoCV(cv=5, random_state=0).fit(X, y).alpha_
    lasso = bm.fit(bm.models.linear_regression(X, y, prior=bm.Laplace(s**2 / (N * lam)),
                                               sigma=s), "map").params["coef"]
    noise = slice(3, None)
    nz = lasso[noise] != 0
    assert nz.any()
    assert np.mean(np.abs(mean[noise])) < np.mean(np.abs(lasso[noise][nz]))
    # signals: closer to least squares than the lasso's
    assert np.all(np.abs(mean[:3] - ols[1:4]) < np.abs(lasso[:3] - ols[1:4]))


@pytest.mark.slow
def test_horseshoe_nuts_no_divergences(horseshoe_nuts):
    # default settings for a horseshoe prior: target_accept 0.99, 2000 tuning steps (at 0.8:
    # ~170 divergences of 4000 on this design); measured 0 in 4 of 4 seeds
    assert horseshoe_nuts.divergences == 0
    assert not horseshoe_nuts.diagnostics


@pytest.mark.slow
def test_plain_horseshoe_divergences_are_reported(sparse_regression):
    """Without a slab the funnel remains at 0.99 (3-14 of 4000 over 4 seeds): reported."""
    X, y = sparse_regression
    with pytest.warns(bm.SamplingWarning, match="divergen"):
        res = bm.fit(_horseshoe_spec(X, y, bm.Horseshoe(_tau0())), "nuts", random_seed=2)
    assert res.divergences > 0


# ---------------------------------------------------------------------------------------------
# Spec files and the mixed-model path
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("ElasticNet(0.5, 2.0)", bm.ElasticNet(0.5, 2.0)),
    ("StudentT(3, 2.5)", bm.StudentT(3.0, 2.5)),
    ("Cauchy(1, mu=2)", bm.Cauchy(1.0, mu=2.0)),
    ("Horseshoe(0.1)", bm.Horseshoe(0.1)),
    ({"dist": "RegularizedHorseshoe", "tau0": 0.1, "slab_scale": 2},
     bm.RegularizedHorseshoe(0.1, 2.0)),
])
def test_specfile_names(text, expected):
    assert parse_prior(text, Where("spec.toml"), "priors.coef") == expected
