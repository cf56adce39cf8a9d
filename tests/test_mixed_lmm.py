"""The Gaussian linear mixed model (bayesmle.inference.mixed.lmm) against independent references.

* statsmodels ``MixedLM`` (ML and REML, converged tightly: several optimisers with small
  gradient tolerances, the best log-likelihood kept) on real data shipped with statsmodels
  (Grunfeld; lme4's Pastes) and on simulated random intercepts and slopes;
* lme4's published fits (``dietox``, ``Pastes``, a singular fit), copied from statsmodels' test
  suite (``tests/data/mixed_README.md``);
* dense linear algebra written here: ``multivariate_normal.logpdf`` with covariance
  ``sigma^2 I + Z Sigma Z'``, GLS profiles, conditional means ``Sigma Z' V^-1 (y - X beta)``;
* closed forms: OLS at the boundary, the shrinkage factor of random-intercept BLUPs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal
from statsmodels.datasets import grunfeld
from statsmodels.regression.mixed_linear_model import MixedLM

from bayesmle.errors import SpecError
from bayesmle.inference.mixed import lmm
from bayesmle.inference.mixed.lmm import (
    conditional_modes,
    fit_lmm,
    gaussian_loglik,
    gaussian_loglik_grad,
    lmm_system,
    profiled_deviance,
)
from bayesmle.models.mixed_design import (
    MixedDesign,
    RandomBlock,
    theta_from_components,
    theta_lower_bounds,
    z_matrix,
)

DATA = Path(__file__).parent / "data"


# -- helpers ----------------------------------------------------------------------------------
def block(name, groups, values, columns):
    levels, codes = np.unique(np.asarray(groups), return_inverse=True)
    values = np.asarray(values, dtype=float).reshape(len(codes), -1)
    return RandomBlock(name, tuple(columns), tuple(map(str, levels)), codes, values)


def one_factor(X, names, y, groups, Zre, columns=("Intercept",), name="g"):
    return MixedDesign(np.asarray(X, float), tuple(names), np.asarray(y, float),
                       (block(name, groups, Zre, columns),))


def sm_fit(y, X, groups, Zre, reml, **model_kw):
    """statsmodels MixedLM converged tightly: the best llf over several optimisers."""
    model = MixedLM(y, X, groups, Zre, **model_kw)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method, kw in (("bfgs", {"gtol": 1e-10}), ("lbfgs", {"pgtol": 1e-12, "factr": 10}),
                           ("cg", {"gtol": 1e-10})):
            res = model.fit(reml=reml, method=method, maxiter=5000, **kw)
            if best is None or res.llf > best.llf:
                best = res
    return best


def sm_components(res):
    cov = np.atleast_2d(np.asarray(res.cov_re))
    sd = np.sqrt(np.diag(cov))
    iu = np.triu_indices(cov.shape[0], 1)
    corr = cov[iu] / (sd[iu[0]] * sd[iu[1]])
    return sd, corr


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def dense_cov(design, sd, corr):
    """Sigma (q x q) of the random effects, block by block, written out here."""
    Sig = np.zeros((design.q, design.q))
    at, s_at, c_at = 0, 0, 0
    for blk in design.blocks:
        k = blk.k
        s = np.asarray(sd[s_at:s_at + k])
        s_at += k
        R = np.eye(k)
        for i in range(k):
            for j in range(i + 1, k):
                R[i, j] = R[j, i] = corr[c_at]
                c_at += 1
        S = np.outer(s, s) * R
        for _ in range(blk.n_levels):
            Sig[at:at + k, at:at + k] = S
            at += k
    return Sig


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grunfeld_case():
    df = grunfeld.load_pandas().data
    X = np.column_stack([np.ones(len(df)), df["value"], df["capital"]])
    y = df["invest"].to_numpy(float)
    design = one_factor(X, ("Intercept", "value", "capital"), y, df["firm"],
                        np.ones(len(df)), name="firm")
    fits = {m: fit_lmm(design, m) for m in ("mle", "reml")}
    refs = {m: sm_fit(y, X, df["firm"].to_numpy(), np.ones((len(df), 1)), m == "reml")
            for m in ("mle", "reml")}
    return design, fits, refs


@pytest.fixture(scope="module")
def slope_case():
    rng = np.random.default_rng(20261201)
    G, per = 20, 25
    g = np.repeat(np.arange(G), per)
    x = rng.normal(size=G * per)
    L = np.linalg.cholesky(np.array([[1.0, 0.5 * 0.6], [0.5 * 0.6, 0.36]]))
    u = rng.normal(size=(G, 2)) @ L.T
    y = 1 + 2 * x + u[g, 0] + u[g, 1] * x + rng.normal(size=G * per)
    X = np.column_stack([np.ones_like(x), x])
    Zre = X.copy()
    design = one_factor(X, ("Intercept", "x"), y, g, Zre, ("Intercept", "x"))
    fits = {m: fit_lmm(design, m) for m in ("mle", "reml")}
    refs = {m: sm_fit(y, X, g, Zre, m == "reml") for m in ("mle", "reml")}
    return design, fits, refs


@pytest.fixture(scope="module")
def pastes():
    df = pd.read_csv(DATA / "mixed_pastes.csv")
    n = len(df)
    one = np.ones(n)
    design = MixedDesign(np.ones((n, 1)), ("Intercept",), df["strength"].to_numpy(float), (
        block("batch:cask", df["sample"], one, ("Intercept",)),
        block("batch", df["batch"], one, ("Intercept",))))
    refs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixedLM.from_formula("strength ~ 1", groups="batch", re_formula="1",
                                     vc_formula={"cask": "0 + cask"}, data=df)
        for m in ("mle", "reml"):
            best = None
            for method, kw in (("bfgs", {"gtol": 1e-10}), ("cg", {"gtol": 1e-10}),
                               ("lbfgs", {"pgtol": 1e-12, "factr": 10})):
                res = model.fit(reml=m == "reml", method=method, maxiter=5000, **kw)
                if best is None or res.llf > best.llf:
                    best = res
            refs[m] = best
    return design, refs


@pytest.fixture(scope="module")
def multi_design():
    """Two crossed factors (one with a correlated slope) and a nested a / a:b pair."""
    rng = np.random.default_rng(11)
    n = 90
    f1, f2 = rng.integers(0, 5, n), rng.integers(0, 4, n)
    a, b = rng.integers(0, 3, n), rng.integers(0, 3, n)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=5)[f1] + rng.normal(size=n)
    one = np.ones(n)
    blocks = (block("f1", f1, one, ("Intercept",)),
              block("f2", f2, np.column_stack([one, x]), ("Intercept", "x")),
              block("a", a, one, ("Intercept",)),
              block("a:b", a * 3 + b, one, ("Intercept",)))
    return MixedDesign(X, ("Intercept", "x", "z"), y, blocks)


@pytest.fixture(scope="module", params=["blocked", "dense", "sparse"])
def any_design(request, multi_design):
    """The multi-factor design factorised dense and sparse, and a one-factor slope design."""
    if request.param == "blocked":
        rng = np.random.default_rng(5)
        n = 60
        g = rng.integers(0, 7, n)
        x = rng.normal(size=n)
        X = np.column_stack([np.ones(n), x])
        y = 1 + x + rng.normal(size=7)[g] + rng.normal(size=n)
        design = one_factor(X, ("Intercept", "x"), y, g, X, ("Intercept", "x"))
        return design, lmm_system(design)
    fill = 1.0 if request.param == "sparse" else -1.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lmm, "SPARSE_MAX_FILL", fill)
        system = lmm_system(multi_design)
    assert system.kind == request.param
    return multi_design, system


# -- statsmodels ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mle", "reml"])
@pytest.mark.parametrize("case", ["grunfeld_case", "slope_case"])
def test_matches_statsmodels(case, method, request):
    design, fits, refs = request.getfixturevalue(case)
    fit, ref = fits[method], refs[method]
    assert fit.converged, fit.message
    sd, corr = sm_components(ref)
    assert rel(fit.beta, ref.fe_params) < 1e-5
    assert rel(fit.sd, sd) < 1e-5
    if corr.size:
        assert rel(fit.corr, corr) < 1e-5
    assert rel(fit.sigma, np.sqrt(ref.scale)) < 1e-5
    assert rel(fit.loglik, ref.llf) < 1e-5
    assert fit.logp == fit.loglik and fit.criterion == pytest.approx(-2 * fit.loglik, rel=1e-14)
    assert not fit.singular and fit.boundary == ()


@pytest.mark.parametrize("case", ["grunfeld_case", "slope_case"])
def test_ml_standard_errors_match_statsmodels(case, request):
    """statsmodels' ML bse_fe inverts the full observed information (beta and the variance
    parameters jointly): that is ``cov``'s beta block. lme4's ``vcov`` (``beta_cov``) is
    ``sigma^2 (R_X'R_X)^-1``, the inverse of the beta block alone: it differs at ~1e-4."""
    design, fits, refs = request.getfixturevalue(case)
    fit, ref = fits["mle"], refs["mle"]
    p = design.p
    assert rel(np.sqrt(np.diag(fit.cov[:p, :p])), ref.bse_fe) < 1e-4
    assert np.all(np.isfinite(fit.cov))
    assert np.allclose(fit.cov, fit.cov.T)


def test_pastes_nested_matches_statsmodels_and_lme4(pastes):
    """(1 | batch) + (1 | batch:cask): two grouping factors (dense and sparse factors)."""
    design, refs = pastes
    for fill, kind in ((-1.0, "dense"), (1.0, "sparse")):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lmm, "SPARSE_MAX_FILL", fill)
            system = lmm_system(design)
        assert system.kind == kind
        for m in ("mle", "reml"):
            fit, ref = fit_lmm(design, m, system=system), refs[m]
            assert fit.converged, fit.message
            assert rel(fit.beta, ref.fe_params) < 1e-5
            # statsmodels: cov_re is batch's variance, vcomp the cask-within-batch variance
            assert rel(fit.sd, np.sqrt([ref.vcomp[0], ref.cov_re.iloc[0, 0]])) < 1e-5
            assert rel(fit.sigma, np.sqrt(ref.scale)) < 1e-5
            assert rel(fit.loglik, ref.llf) < 1e-5
    # lme4 (printed to 3-4 digits in statsmodels' test_pastes_vcomp)
    reml = fit_lmm(design, "reml")
    assert reml.beta[0] == pytest.approx(60.0533, rel=1e-5)
    assert np.sqrt(reml.beta_cov[0, 0]) == pytest.approx(0.6769, rel=1e-4)
    assert reml.sd[1] ** 2 == pytest.approx(1.657, rel=1e-3)
    assert reml.sigma ** 2 == pytest.approx(0.678, rel=1e-3)
    ml = fit_lmm(design, "mle")
    assert np.sqrt(ml.beta_cov[0, 0]) == pytest.approx(0.642, rel=1e-3)
    assert ml.sd[1] ** 2 == pytest.approx(1.199, rel=1e-3)
    assert -2 * ml.loglik + 2 * 4 == pytest.approx(255.9944, rel=1e-6)  # AIC(r)


def test_saddle_start_is_left(pastes):
    """theta = 0 is a stationary point (the criterion is even in each scalar theta): started
    there, the fit must still reach the optimum."""
    design, refs = pastes
    fit = fit_lmm(design, "reml", start=[0.0, 0.0])
    assert fit.converged, fit.message
    assert rel(fit.loglik, refs["reml"].llf) < 1e-10
    assert rel(fit.sd[0], np.sqrt(refs["reml"].vcomp[0])) < 1e-5


# -- lme4 published values --------------------------------------------------------------------
DIETOX_LME4 = {  # statsmodels test_lme.py: test_dietox, test_dietox_slopes (lmer in R)
    ("int", "reml"): dict(beta=[15.723523, 6.942505], se=[0.78805374, 0.03338727],
                          scale=11.36692, cov=[40.39395], loglik=-2404.775),
    ("int", "mle"): dict(beta=[15.723517, 6.942506], se=[0.7829397, 0.0333661],
                         scale=11.35251, cov=[39.82097], loglik=-2402.932),
    ("slope", "reml"): dict(beta=[15.738650, 6.939014], se=[0.5501253, 0.0798254],
                            scale=6.03745, cov=[19.4934552, 0.2938323, 0.4160620],
                            loglik=-2217.047),
    ("slope", "mle"): dict(beta=[15.73863, 6.93902], se=[0.54629282, 0.07926954],
                           scale=6.037441, cov=[19.190922, 0.293568, 0.409695],
                           loglik=-2215.753),
}


@pytest.mark.parametrize("key", list(DIETOX_LME4))
def test_dietox_matches_lme4(key):
    df = pd.read_csv(DATA / "mixed_dietox.csv")
    X = np.column_stack([np.ones(len(df)), df["Time"]])
    re, method = key
    Zre, cols = (X, ("Intercept", "Time")) if re == "slope" else (X[:, :1], ("Intercept",))
    design = one_factor(X, ("Intercept", "Time"), df["Weight"], df["Pig"], Zre, cols, "Pig")
    fit = fit_lmm(design, method)
    ref = DIETOX_LME4[key]
    assert fit.converged, fit.message
    # lme4's numbers are printed to 7 significant digits (and lme4 stops at bobyqa's tolerance)
    assert rel(fit.beta, ref["beta"]) < 1e-6
    assert rel(np.sqrt(np.diag(fit.beta_cov)), ref["se"]) < 1e-6
    assert rel(fit.sigma ** 2, ref["scale"]) < 1e-6
    cov = [fit.sd[0] ** 2] if re == "int" else [
        fit.sd[0] ** 2, fit.corr[0] * fit.sd[0] * fit.sd[1], fit.sd[1] ** 2]
    assert rel(cov, ref["cov"]) < 2e-6
    assert rel(fit.loglik, ref["loglik"]) < 1e-6


def test_singular_fit_matches_lme4():
    """lme01 of statsmodels' suite: lme4's ML fit has a random-intercept variance of 0."""
    df = pd.read_csv(DATA / "mixed_lme01.csv")
    design = one_factor(df[["exog_fe_0"]].to_numpy(), ("exog_fe_0",), df["endog"],
                        df["groups"], df["exog_re_0"], name="groups")
    fit = fit_lmm(design, "mle")
    assert fit.converged, fit.message
    assert fit.singular and fit.boundary == ("sd[groups]",)
    assert fit.sd[0] < 1e-4 * fit.sigma
    assert fit.beta[0] == pytest.approx(-0.9115929, rel=1e-6)
    assert fit.beta_cov[0, 0] == pytest.approx(0.01340632, rel=1e-6)
    assert fit.sigma ** 2 == pytest.approx(4.050921, rel=1e-6)
    assert fit.loglik == pytest.approx(-538.0763, rel=1e-6)
    assert np.all(np.isnan(fit.cov[1])) and np.all(np.isnan(fit.cov[:, 1]))
    assert np.all(np.abs(fit.b) < 1e-6 * fit.sigma)


# -- dense linear algebra ---------------------------------------------------------------------
def random_point(design, rng):
    sd = rng.uniform(0.3, 1.5, size=len(design.sd_labels()))
    corr = rng.uniform(-0.7, 0.7, size=len(design.corr_labels()))
    return rng.normal(size=design.p), sd, corr, float(rng.uniform(0.5, 1.5))


def test_loglik_equals_dense_logpdf(any_design):
    design, system = any_design
    rng = np.random.default_rng(1)
    Z = z_matrix(design).toarray()
    for _ in range(3):
        beta, sd, corr, sigma = random_point(design, rng)
        V = sigma ** 2 * np.eye(design.n) + Z @ dense_cov(design, sd, corr) @ Z.T
        ref = multivariate_normal(design.X @ beta, V).logpdf(design.y)
        ours = gaussian_loglik(design, beta, sd, corr, sigma, system=system)
        assert ours == pytest.approx(ref, rel=1e-10)
        value, _ = gaussian_loglik_grad(design, beta, sd, corr, sigma, system=system)
        assert value == pytest.approx(ref, rel=1e-10)


def test_loglik_gradient_vs_finite_differences(any_design):
    design, system = any_design
    rng = np.random.default_rng(2)
    beta, sd, corr, sigma = random_point(design, rng)
    x0 = np.concatenate([beta, sd, corr, [sigma]])
    p, ns = design.p, sd.size
    _, grad = gaussian_loglik_grad(design, beta, sd, corr, sigma, system=system)
    Z = z_matrix(design).toarray()

    def dense(x):  # the reference log-likelihood, written out densely
        V = x[-1] ** 2 * np.eye(design.n) + Z @ dense_cov(design, x[p:p + ns], x[p + ns:-1]) @ Z.T
        return multivariate_normal(design.X @ x[:p], V).logpdf(design.y)

    h = 1e-5
    fd = np.array([(dense(x0 + h * e) - dense(x0 - h * e)) / (2 * h) for e in np.eye(x0.size)])
    assert np.max(np.abs(grad - fd) / np.maximum(1.0, np.abs(fd))) < 1e-6


def test_loglik_at_the_boundary(multi_design):
    """sd = 0 (and a correlation of 1) are valid points: the dense covariance is singular-free
    because of sigma^2 I."""
    design = multi_design
    rng = np.random.default_rng(3)
    beta, sd, corr, sigma = random_point(design, rng)
    sd[0] = 0.0  # f1's intercept
    corr[0] = 1.0  # f2's intercept and slope perfectly correlated
    Z = z_matrix(design).toarray()
    V = sigma ** 2 * np.eye(design.n) + Z @ dense_cov(design, sd, corr) @ Z.T
    ref = multivariate_normal(design.X @ beta, V).logpdf(design.y)
    assert gaussian_loglik(design, beta, sd, corr, sigma) == pytest.approx(ref, rel=1e-10)
    # a correlation whose sd is 0 is undefined: NaN is accepted
    sd2 = sd.copy()
    sd2[1] = 0.0
    V2 = sigma ** 2 * np.eye(design.n) + Z @ dense_cov(design, sd2, [0.0]) @ Z.T
    ref2 = multivariate_normal(design.X @ beta, V2).logpdf(design.y)
    assert gaussian_loglik(design, beta, sd2, [np.nan], sigma) == pytest.approx(ref2, rel=1e-10)
    # the gradient at sd = 0: the dense formula is smooth through sd = 0 (Sigma = D R D)
    p, ns = design.p, sd.size
    x0 = np.concatenate([beta, sd, [0.3], [sigma]])

    def dense(x):
        V = x[-1] ** 2 * np.eye(design.n) + Z @ dense_cov(design, x[p:p + ns], x[p + ns:-1]) @ Z.T
        return multivariate_normal(design.X @ x[:p], V).logpdf(design.y)

    h = 1e-5
    fd = np.array([(dense(x0 + h * e) - dense(x0 - h * e)) / (2 * h) for e in np.eye(x0.size)])
    _, grad = gaussian_loglik_grad(design, beta, sd, [0.3], sigma)
    assert np.max(np.abs(grad - fd) / np.maximum(1.0, np.abs(fd))) < 1e-6
    with pytest.MonkeyPatch.context() as mp:  # sparse factor: one-sided differences at sd = 0
        mp.setattr(lmm, "SPARSE_MAX_FILL", 1.0)
        system = lmm_system(design)
    _, grad = gaussian_loglik_grad(design, beta, sd, [0.3], sigma, system=system)
    assert np.max(np.abs(grad - fd) / np.maximum(1.0, np.abs(fd))) < 1e-5


def dense_profiles(design, theta):
    """ML deviance and REML criterion at theta by dense GLS (lme4's definitions)."""
    n, p = design.X.shape
    Z = z_matrix(design).toarray()
    lam = np.zeros((design.q, design.q))
    at, t_at = 0, 0
    for blk in design.blocks:
        k = blk.k
        L = np.zeros((k, k))
        for j in range(k):
            for i in range(j, k):
                L[i, j] = theta[t_at]
                t_at += 1
        for _ in range(blk.n_levels):
            lam[at:at + k, at:at + k] = L
            at += k
    V0 = np.eye(n) + Z @ lam @ lam.T @ Z.T  # V / sigma^2
    Vi = np.linalg.inv(V0)
    XtViX = design.X.T @ Vi @ design.X
    beta = np.linalg.solve(XtViX, design.X.T @ Vi @ design.y)
    e = design.y - design.X @ beta
    quad = e @ Vi @ e
    ld = np.linalg.slogdet(V0)[1]
    ml = -2 * multivariate_normal(design.X @ beta, quad / n * V0).logpdf(design.y)
    s2 = quad / (n - p)
    reml = (ld + n * np.log(s2) + np.linalg.slogdet(XtViX / s2)[1] + quad / s2
            + (n - p) * np.log(2 * np.pi))
    return ml, reml


def test_profiled_criteria_equal_dense_gls(any_design):
    design, system = any_design
    rng = np.random.default_rng(4)
    lower = theta_lower_bounds(design)
    for _ in range(2):
        theta = np.where(np.isfinite(lower), rng.uniform(0.2, 1.5, lower.size),
                         rng.uniform(-0.5, 0.5, lower.size))
        ml, reml = dense_profiles(design, theta)
        assert profiled_deviance(system, theta) == pytest.approx(ml, rel=1e-10)
        assert profiled_deviance(system, theta, reml=True) == pytest.approx(reml, rel=1e-10)


def test_conditional_modes_equal_dense(any_design):
    design, system = any_design
    rng = np.random.default_rng(6)
    beta, sd, corr, sigma = random_point(design, rng)
    Z = z_matrix(design).toarray()
    Sig = dense_cov(design, sd, corr)
    V = sigma ** 2 * np.eye(design.n) + Z @ Sig @ Z.T
    Vi = np.linalg.inv(V)
    b_ref = Sig @ Z.T @ Vi @ (design.y - design.X @ beta)
    sd_ref = np.sqrt(np.diag(Sig - Sig @ Z.T @ Vi @ Z @ Sig))
    theta = theta_from_components(design, sd, corr, sigma)
    b, b_sd = conditional_modes(design, beta, theta, sigma, system=system)
    assert np.max(np.abs(b - b_ref)) < 1e-10 * max(1.0, np.max(np.abs(b_ref)))
    assert np.max(np.abs(b_sd - sd_ref)) < 1e-10 * max(1.0, np.max(sd_ref))


# -- boundary and closed forms ----------------------------------------------------------------
def test_boundary_fit_is_ols():
    """Groups generated alike (sd = 0): the ML estimate is on the boundary when the score of
    the group variance at 0, sum_g (sum_i e_i)^2 - RSS (closed form), is negative."""
    rng = np.random.default_rng(14)
    G, per = 15, 8
    g = np.repeat(np.arange(G), per)
    x = rng.normal(size=G * per)
    X = np.column_stack([np.ones_like(x), x])
    y = 1 + 0.5 * x + rng.normal(size=G * per)
    beta_ols, rss = np.linalg.lstsq(X, y, rcond=None)[:2]
    e = y - X @ beta_ols
    assert np.sum(np.bincount(g, weights=e) ** 2) < rss[0]  # the seed gives a boundary MLE
    design = one_factor(X, ("Intercept", "x"), y, g, np.ones_like(x))
    fit = fit_lmm(design, "mle")
    assert fit.converged, fit.message
    assert fit.singular and "sd[g]" in fit.boundary
    n = len(y)
    ols_loglik = -0.5 * n * (1 + np.log(2 * np.pi * rss[0] / n))
    assert fit.loglik == pytest.approx(ols_loglik, rel=1e-8)
    assert np.allclose(fit.beta, beta_ols, rtol=1e-6)
    assert fit.sigma == pytest.approx(np.sqrt(rss[0] / n), rel=1e-6)
    p = design.p
    assert np.all(np.isnan(fit.cov[p])) and np.all(np.isfinite(fit.cov[:p, :p]))


def test_correlation_at_one():
    """Slopes proportional to intercepts: the ML covariance is singular with corr = 1. The fit's
    exact log-likelihood (dense) is at least that of statsmodels' best optimum, recomputed
    densely at its parameters (statsmodels' own llf is inaccurate near a singular cov_re)."""
    rng = np.random.default_rng(1)
    G, per = 12, 10
    g = np.repeat(np.arange(G), per)
    x = rng.normal(size=G * per)
    u0 = rng.normal(size=G)
    y = 1 + x + u0[g] + 0.5 * u0[g] * x + rng.normal(size=G * per)
    X = np.column_stack([np.ones_like(x), x])
    design = one_factor(X, ("Intercept", "x"), y, g, X, ("Intercept", "x"))
    fit = fit_lmm(design, "mle")
    assert fit.converged, fit.message
    assert fit.singular and fit.boundary == ("corr[g]",) and fit.corr[0] == pytest.approx(1.0)
    ours = dense_loglik(design, fit.beta, fit.sd, fit.corr, fit.sigma)
    assert fit.loglik == pytest.approx(ours, rel=1e-12)
    model = MixedLM(y, X, g, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.fit(reml=False, method="nm", maxiter=20000, xtol=1e-12, ftol=1e-14)
    sd, corr = sm_components(ref)
    theirs = dense_loglik(design, np.asarray(ref.fe_params), sd, corr, np.sqrt(ref.scale))
    assert ours >= theirs - 1e-12 * abs(theirs)
    assert rel(fit.natural()[[0, 1, 2, 3, 5]], np.r_[ref.fe_params, sd, np.sqrt(ref.scale)]) < 1e-4
    assert np.all(np.isnan(fit.cov[4])) and np.all(np.isnan(fit.cov[:, 4]))
    assert np.isfinite(np.delete(np.delete(fit.cov, 4, 0), 4, 1)).all()


def test_blups_closed_form():
    """Random intercept: b_g = n_g s^2 / (n_g s^2 + sigma^2) * mean_g(y - X beta) and
    var(b_g | y) = s^2 sigma^2 / (n_g s^2 + sigma^2), unbalanced groups."""
    rng = np.random.default_rng(17)
    sizes = rng.integers(2, 15, size=12)
    g = np.repeat(np.arange(12), sizes)
    x = rng.normal(size=g.size)
    X = np.column_stack([np.ones_like(x), x])
    y = 2 - x + 0.8 * rng.normal(size=12)[g] + rng.normal(size=g.size)
    design = one_factor(X, ("Intercept", "x"), y, g, np.ones_like(x))
    fit = fit_lmm(design, "reml")
    s2, sig2 = fit.sd[0] ** 2, fit.sigma ** 2
    resid_mean = np.bincount(g, weights=y - X @ fit.beta) / sizes
    shrink = sizes * s2 / (sizes * s2 + sig2)
    assert np.max(np.abs(fit.b - shrink * resid_mean)) < 1e-10
    assert np.max(np.abs(fit.b_sd - np.sqrt(s2 * sig2 / (sizes * s2 + sig2)))) < 1e-10


# -- refusals ---------------------------------------------------------------------------------
def test_refusals(multi_design):
    d = multi_design
    with pytest.raises(SpecError, match="method"):
        fit_lmm(d, "map")
    with pytest.raises(SpecError, match="start"):
        fit_lmm(d, "mle", start=[1.0, 1.0])
    with pytest.raises(SpecError, match="start"):
        fit_lmm(d, "mle", start=[-1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    with pytest.raises(SpecError, match="max_iter"):
        fit_lmm(d, "mle", max_iter=0)
    binomial = MixedDesign(d.X, d.fixed_names, d.y, d.blocks, family="binomial", link="logit")
    with pytest.raises(SpecError, match="gaussian"):
        lmm_system(binomial)
    with pytest.raises(SpecError, match="sigma"):
        gaussian_loglik(d, [0, 0, 0], np.ones(5), [0.0], 0.0)
    with pytest.raises(SpecError, match="sd"):
        gaussian_loglik(d, [0, 0, 0], -np.ones(5), [0.0], 1.0)
    with pytest.raises(SpecError, match="corr"):
        gaussian_loglik(d, [0, 0, 0], np.ones(5), [1.5], 1.0)
    with pytest.raises(SpecError, match="theta"):
        profiled_deviance(lmm_system(d), [1.0])


# -- observed information ---------------------------------------------------------------------
def dense_loglik(design, beta, sd, corr, sigma, reml=False):
    """log N(y; X beta, V) or the REML log-likelihood (beta at its GLS value), densely."""
    Z = z_matrix(design).toarray()
    V = sigma ** 2 * np.eye(design.n) + Z @ dense_cov(design, sd, corr) @ Z.T
    if not reml:
        return multivariate_normal(design.X @ beta, V).logpdf(design.y)
    Vi = np.linalg.inv(V)
    XtViX = design.X.T @ Vi @ design.X
    e = design.y - design.X @ np.linalg.solve(XtViX, design.X.T @ Vi @ design.y)
    return -0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + e @ Vi @ e
                   + (design.n - design.p) * np.log(2 * np.pi))


def second_differences(f, x, h=1e-4):
    m = x.size
    H = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            ei, ej = np.eye(m)[i] * h, np.eye(m)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                       + f(x - ei - ej)) / (4 * h * h)
    return H


@pytest.mark.parametrize("method", ["mle", "reml"])
def test_cov_is_inverse_observed_information(method):
    """``cov`` against the inverse of second differences of the dense (REML) log-likelihood."""
    rng = np.random.default_rng(21)
    n = 80
    g = rng.integers(0, 8, n)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    u = rng.normal(size=(8, 2)) * [1.0, 0.5]
    y = 1 + x + u[g, 0] + u[g, 1] * x + rng.normal(size=n)
    design = one_factor(X, ("Intercept", "x"), y, g, X, ("Intercept", "x"))
    fit = fit_lmm(design, method)
    assert fit.converged and not fit.singular
    p = design.p
    if method == "mle":
        z0 = fit.natural()

        def f(z):
            return dense_loglik(design, z[:p], z[p:p + 2], z[p + 2:p + 3], z[-1])

        ref = np.linalg.inv(-second_differences(f, z0))
        assert np.max(np.abs(fit.cov - ref) / np.sqrt(np.outer(np.diag(ref), np.diag(ref)))) \
            < 1e-4
    else:
        z0 = fit.natural()[p:]

        def f(z):
            return dense_loglik(design, None, z[:2], z[2:3], z[-1], reml=True)

        ref = np.linalg.inv(-second_differences(f, z0))
        sub = fit.cov[p:, p:]
        assert np.max(np.abs(sub - ref) / np.sqrt(np.outer(np.diag(ref), np.diag(ref)))) < 1e-4
        assert np.array_equal(fit.cov[:p, :p], fit.beta_cov)
        assert np.all(fit.cov[:p, p:] == 0)


def test_offset_enters_the_mean(multi_design):
    d = multi_design
    offset = np.linspace(-1.0, 1.0, d.n)
    with_offset = MixedDesign(d.X, d.fixed_names, d.y, d.blocks, offset=offset)
    rng = np.random.default_rng(8)
    beta, sd, corr, sigma = random_point(d, rng)
    Z = z_matrix(d).toarray()
    V = sigma ** 2 * np.eye(d.n) + Z @ dense_cov(d, sd, corr) @ Z.T
    ref = multivariate_normal(d.X @ beta + offset, V).logpdf(d.y)
    assert gaussian_loglik(with_offset, beta, sd, corr, sigma) == pytest.approx(ref, rel=1e-10)


def test_memory_limit_is_a_typed_error(multi_design):
    for fill in (-1.0, 1.0):  # dense, then sparse factor
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lmm, "SPARSE_MAX_FILL", fill)
            mp.setattr(lmm, "MEMORY_LIMIT_BYTES", 100)
            with pytest.raises(SpecError, match="MEMORY_LIMIT_BYTES"):
                lmm_system(multi_design)
