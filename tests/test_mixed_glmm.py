"""GLMM Laplace / AGQ marginal likelihood (bayesmle.inference.mixed.glmm).

Every reference is computed here, independently of the library: the per-group integrand
``log p(y_g | b) + log N(b; 0, Sigma)`` written with scipy.stats, its mode by brentq on the
analytic derivative (or scipy.optimize.minimize in 2-D), its curvature analytic or by central
differences, the exact integral by scipy.integrate.quad, the GLM by statsmodels.
"""

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import statsmodels.api as sm
from scipy import stats

from bayesmle.errors import SpecError
from bayesmle.inference.mixed.glmm import (
    conditional_modes,
    fit_glmm,
    glmm_loglik,
    laplace_deviance,
)
from bayesmle.models.mixed_design import MixedDesign, RandomBlock

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
G, PER = 15, 12


def _mu(link, eta):
    if link == "logit":
        return scipy.special.expit(eta)
    if link == "probit":
        return stats.norm.cdf(eta)
    return -np.expm1(-np.exp(eta))


def _simulate(family, link, *, seed, slopes=False, offset=False, groups=G, per=PER):
    rng = np.random.default_rng(seed)
    n = groups * per
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    b0 = rng.normal(0.0, 0.8, groups)
    b1 = rng.normal(0.0, 0.5, groups)
    off = rng.normal(0.0, 0.3, n) if offset else None
    eta = -0.4 + 0.8 * x + b0[g] + (b1[g] * x if slopes else 0.0) + (0.0 if off is None else off)
    trials = None
    if family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "binomial":
        trials = rng.integers(1, 6, n).astype(float)
        y = rng.binomial(trials.astype(int), _mu(link, eta)).astype(float)
    else:
        y = rng.binomial(1, _mu(link, eta)).astype(float)
    cols = ("Intercept", "x") if slopes else ("Intercept",)
    block = RandomBlock("g", cols, tuple(f"l{i}" for i in range(groups)), g,
                        X.copy() if slopes else np.ones((n, 1)))
    return MixedDesign(X=X, fixed_names=("Intercept", "x"), y=y, blocks=(block,),
                       family=family, link=link, trials=trials, offset=off)


# ---------------------------------------------------------------------------------------------
# Independent per-group Laplace / exact integrals (scipy only)
# ---------------------------------------------------------------------------------------------
def _rows(design):
    off = np.zeros(design.n) if design.offset is None else design.offset
    m = np.ones(design.n) if design.trials is None else design.trials
    return off, m


def _loglik_rows(design, eta):
    _, m = _rows(design)
    if design.family == "poisson":
        return stats.poisson.logpmf(design.y, np.exp(eta))
    mu = _mu(design.link, eta)
    if design.family == "binomial":
        return stats.binom.logpmf(design.y, m, mu)
    return stats.bernoulli.logpmf(design.y, mu)


def _score_rows(design, eta):
    """d log p / d eta, analytic."""
    _, m = _rows(design)
    y = design.y
    if design.family == "poisson":
        return y - np.exp(eta)
    mu = _mu(design.link, eta)
    if design.link == "logit":
        return y - m * mu
    dmu = stats.norm.pdf(eta) if design.link == "probit" else np.exp(eta - np.exp(eta))
    return (y / mu - (m - y) / (1.0 - mu)) * dmu


def _info_rows(design, eta):
    """-d^2 log p / d eta^2: analytic for logit / log, central differences of the score else."""
    _, m = _rows(design)
    if design.family == "poisson":
        return np.exp(eta)
    if design.link == "logit":
        mu = _mu("logit", eta)
        return m * mu * (1 - mu)
    h = 1e-5
    return -(_score_rows(design, eta + h) - _score_rows(design, eta - h)) / (2 * h)


def _group_laplace(design, beta, sd):
    """Sum over groups of the Laplace log-integral, and each group's (mode, conditional sd)."""
    off, _ = _rows(design)
    eta0 = design.X @ beta + off
    codes = design.blocks[0].codes
    total, modes, csd = 0.0, [], []
    for g in range(design.blocks[0].n_levels):
        rows = codes == g
        sub = _Sub(design, rows)

        def dfdb(b, sub=sub, e0=eta0[rows]):
            return np.sum(_score_rows(sub, e0 + b)) - b / sd ** 2

        lo, hi = -1.0, 1.0  # dfdb decreases: widen the bracket until it changes sign
        while dfdb(lo) < 0:
            lo *= 2
        while dfdb(hi) > 0:
            hi *= 2
        b_hat = scipy.optimize.brentq(dfdb, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
        f = np.sum(_loglik_rows(sub, eta0[rows] + b_hat)) + stats.norm.logpdf(b_hat, 0.0, sd)
        curv = np.sum(_info_rows(sub, eta0[rows] + b_hat)) + 1.0 / sd ** 2
        total += f + 0.5 * np.log(2 * np.pi) - 0.5 * np.log(curv)
        modes.append(b_hat)
        csd.append(1.0 / np.sqrt(curv))
    return total, np.array(modes), np.array(csd)


class _Sub:
    """The rows of one group, with the attributes the row functions read."""

    def __init__(self, design, rows):
        self.family, self.link = design.family, design.link
        self.y = design.y[rows]
        self.n = int(rows.sum())
        self.offset = None
        self.trials = None if design.trials is None else design.trials[rows]


def _group_exact(design, beta, sd):
    """Sum over groups of log int p(y_g | b) N(b; 0, sd^2) db by scipy.integrate.quad.

    The integrand is written out for the logit (Bernoulli) and log (Poisson) cases (fast
    scalar calls); the integral is taken on +-40 conditional sds around the group's mode.
    """
    assert (design.family, design.link) in (("bernoulli", "logit"), ("poisson", "log"))
    off, _ = _rows(design)
    eta0 = design.X @ beta + off
    codes = design.blocks[0].codes
    _, modes, csd = _group_laplace(design, beta, sd)
    log_norm = -np.log(sd * np.sqrt(2 * np.pi))
    total = 0.0
    for g in range(design.blocks[0].n_levels):
        rows = codes == g
        y, e0 = design.y[rows], eta0[rows]
        const = -np.sum(scipy.special.gammaln(y + 1)) if design.family == "poisson" else 0.0

        def f(b, y=y, e0=e0, const=const):
            e = e0 + b
            tail = np.sum(np.exp(e)) if design.family == "poisson" else np.sum(np.logaddexp(0, e))
            return y @ e - tail + const - b * b / (2 * sd * sd) + log_norm

        peak = f(modes[g])
        lo, hi = modes[g] - 40 * csd[g], modes[g] + 40 * csd[g]
        val, _ = scipy.integrate.quad(lambda b, f=f, peak=peak: np.exp(f(b) - peak), lo, hi,
                                      points=[modes[g]], epsabs=0.0, epsrel=1e-13, limit=200)
        total += peak + np.log(val)
    return total


# ---------------------------------------------------------------------------------------------
# Fixtures (one simulated data set per case, shared)
# ---------------------------------------------------------------------------------------------
CASES = {
    "bernoulli-logit": ("bernoulli", "logit", False),
    "poisson-log-offset": ("poisson", "log", True),
    "binomial-probit": ("binomial", "probit", False),
    "binomial-cloglog": ("binomial", "cloglog", True),
}


@pytest.fixture(scope="module")
def designs():
    return {name: _simulate(fam, link, seed=100 + i, offset=off)
            for i, (name, (fam, link, off)) in enumerate(CASES.items())}


@pytest.fixture(scope="module")
def logit_fit(designs):
    return fit_glmm(designs["bernoulli-logit"])


# ---------------------------------------------------------------------------------------------
# Laplace at given parameters
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_laplace_equals_per_group_laplace(designs, case):
    d = designs[case]
    beta, sd = np.array([-0.3, 0.7]), 0.9
    ref, _, _ = _group_laplace(d, beta, sd)
    got = glmm_loglik(d, beta, [sd], [])
    assert got == pytest.approx(ref, rel=1e-8)
    # the deviance is -2 loglik, with or without a warm-start state
    state = {}
    for _ in range(2):
        assert laplace_deviance(d, [sd], beta, state=state) == pytest.approx(-2 * ref, rel=1e-8)


def test_conditional_modes_scalar(designs):
    d = designs["bernoulli-logit"]
    beta, sd = np.array([-0.3, 0.7]), 0.9
    _, modes, csd = _group_laplace(d, beta, sd)
    b, b_sd = conditional_modes(d, beta, [sd])
    np.testing.assert_allclose(b, modes, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b_sd, csd, rtol=1e-8)


def test_sd_zero_is_the_glm(designs):
    d = designs["poisson-log-offset"]
    beta = np.array([-0.3, 0.7])
    ref = np.sum(stats.poisson.logpmf(d.y, np.exp(d.X @ beta + d.offset)))
    assert glmm_loglik(d, beta, [0.0], []) == pytest.approx(ref, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# The optimum and the fixed effects' standard errors
# ---------------------------------------------------------------------------------------------
def _independent_optimum(d, x0):
    def dev(x):  # x = (sd, beta); the deviance is even in sd
        return -2.0 * _group_laplace(d, x[1:], abs(x[0]))[0]

    res = scipy.optimize.minimize(dev, x0, method="Nelder-Mead",
                                  options={"xatol": 1e-5, "fatol": 1e-8, "maxfev": 5000})
    res = scipy.optimize.minimize(dev, res.x, method="BFGS", jac="3-point",
                                  options={"gtol": 1e-9})
    # function values resolve the optimum only to ~sqrt(eps): finish on the gradient's root
    root = scipy.optimize.root(lambda x: _central_gradient(dev, x), res.x, method="hybr",
                               options={"xtol": 1e-12})
    assert np.max(np.abs(_central_gradient(dev, root.x))) < 1e-8
    assert dev(root.x) <= res.fun + 1e-10
    return root.x, dev(root.x), dev


def _central_gradient(fun, x, h=1e-5):
    return np.array([(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(x.size)])


@pytest.fixture(scope="module")
def independent_logit_optimum(designs):
    d = designs["bernoulli-logit"]
    return _independent_optimum(d, np.array([0.5, 0.0, 0.0]))


def test_optimum_matches_independent_optimiser(logit_fit, independent_logit_optimum):
    x, fun, _ = independent_logit_optimum
    fit = logit_fit
    assert fit.converged, fit.message
    assert fit.grad_norm < 1e-6
    np.testing.assert_allclose(fit.beta, x[1:], rtol=1e-6)
    assert fit.sd[0] == pytest.approx(abs(x[0]), rel=1e-6)
    assert fit.loglik == pytest.approx(-fun / 2, rel=1e-9)
    assert fit.criterion == pytest.approx(-2 * fit.loglik)
    assert not fit.singular and fit.boundary == ()
    assert fit.coords == "theta_beta" and fit.nagq == 1 and fit.sigma is None


def test_start_at_the_boundary_escapes_the_saddle(designs, independent_logit_optimum):
    """From sd = 0 the deviance's gradient in sd is exactly 0 (it is even in sd): the fit must
    see that 0 is not a minimum and still reach the optimum."""
    x, _, _ = independent_logit_optimum
    fit = fit_glmm(designs["bernoulli-logit"], start=[0.0, 0.0, 0.0])
    assert fit.converged and not fit.singular
    np.testing.assert_allclose(fit.beta, x[1:], rtol=1e-6)
    assert fit.sd[0] == pytest.approx(abs(x[0]), rel=1e-6)


def test_fixed_effect_se_from_independent_hessian(logit_fit, independent_logit_optimum):
    """lme4's vcov (use.hessian=TRUE): beta block of 2 H^{-1}, H the deviance's Hessian in
    (theta, beta); for one scalar random effect theta = sd."""
    x, _, dev = independent_logit_optimum
    h = 1e-3
    k = x.size
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            H[i, j] = (dev(x + ei + ej) - dev(x + ei - ej) - dev(x - ei + ej)
                       + dev(x - ei - ej)) / (4 * h * h)
    cov = 2 * np.linalg.inv(H)
    np.testing.assert_allclose(np.sqrt(np.diag(logit_fit.beta_cov)),
                               np.sqrt(np.diag(cov))[1:], rtol=1e-4)
    # the natural covariance [beta, sd]: same matrix (theta = sd here)
    np.testing.assert_allclose(logit_fit.cov, cov[np.ix_([1, 2, 0], [1, 2, 0])], rtol=1e-3)


def test_fit_fields(logit_fit, designs):
    d = designs["bernoulli-logit"]
    fit = logit_fit
    assert fit.x.shape == (3,) and fit.hess.shape == (3, 3)
    np.testing.assert_array_equal(fit.x, np.concatenate([fit.theta, fit.beta]))
    assert fit.b.shape == (d.q,) and fit.b_sd.shape == (d.q,)
    _, modes, csd = _group_laplace(d, fit.beta, fit.sd[0])
    np.testing.assert_allclose(fit.b, modes, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fit.b_sd, csd, rtol=1e-7)
    assert fit.logp == fit.loglik


def test_poisson_optimum_matches_independent_optimiser(designs):
    d = designs["poisson-log-offset"]
    fit = fit_glmm(d)
    x, fun, _ = _independent_optimum(d, np.array([0.5, 0.0, 0.0]))
    assert fit.converged, fit.message
    np.testing.assert_allclose(fit.beta, x[1:], rtol=1e-6)
    assert fit.sd[0] == pytest.approx(abs(x[0]), rel=1e-6)
    assert fit.loglik == pytest.approx(-fun / 2, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Adaptive Gauss-Hermite quadrature
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["bernoulli-logit", "poisson-log-offset"])
def test_agq25_equals_exact_integral(designs, case):
    d = designs[case]
    beta, sd = np.array([-0.3, 0.7]), 0.9
    exact = _group_exact(d, beta, sd)
    assert glmm_loglik(d, beta, [sd], [], nagq=25) == pytest.approx(exact, rel=1e-8)
    laplace, _, _ = _group_laplace(d, beta, sd)
    assert glmm_loglik(d, beta, [sd], [], nagq=1) == pytest.approx(laplace, rel=1e-10)
    # with few points the quadrature lies between (Laplace is the one-point rule)
    assert abs(glmm_loglik(d, beta, [sd], [], nagq=7) - exact) < abs(laplace - exact)


def test_agq25_fit_maximises_the_exact_likelihood(designs):
    d = designs["bernoulli-logit"]
    fit = fit_glmm(d, nagq=25)
    assert fit.converged and fit.nagq == 25 and fit.grad_norm < 1e-6
    assert fit.loglik == pytest.approx(_group_exact(d, fit.beta, fit.sd[0]), rel=1e-8)

    def exact(x):  # x = (sd, beta)
        return _group_exact(d, x[1:], x[0])

    # the exact integral's gradient vanishes there (a 1e-3 error in any coordinate would
    # leave a gradient of about 1e-2)
    grad = _central_gradient(exact, np.concatenate([fit.sd, fit.beta]), h=1e-4)
    assert np.max(np.abs(grad)) < 1e-6


def test_nagq_validation(designs):
    slopes = _simulate("bernoulli", "logit", seed=7, slopes=True, groups=4, per=5)
    with pytest.raises(SpecError, match="nagq"):
        glmm_loglik(slopes, [0.0, 0.0], [1.0, 1.0], [0.0], nagq=5)
    with pytest.raises(SpecError, match="nagq.*25"):
        glmm_loglik(designs["bernoulli-logit"], [0.0, 0.0], [1.0], [], nagq=26)
    with pytest.raises(SpecError, match="nagq"):
        fit_glmm(designs["bernoulli-logit"], nagq=0)


# ---------------------------------------------------------------------------------------------
# Random slopes (k = 2): independent per-group 2-D Laplace
# ---------------------------------------------------------------------------------------------
def _group_laplace_2d(design, beta, sd, rho):
    S = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    Si = np.linalg.inv(S)
    eta0 = design.X @ beta
    codes = design.blocks[0].codes
    V = design.blocks[0].values
    total, modes, csd = 0.0, [], []
    for g in range(design.blocks[0].n_levels):
        rows = codes == g
        sub = _Sub(design, rows)
        Vg, e0 = V[rows], eta0[rows]

        def negf(b, sub=sub, Vg=Vg, e0=e0):
            return -(np.sum(_loglik_rows(sub, e0 + Vg @ b))
                     + stats.multivariate_normal.logpdf(b, np.zeros(2), S))

        def grad(b, sub=sub, Vg=Vg, e0=e0):
            return -(Vg.T @ _score_rows(sub, e0 + Vg @ b) - Si @ b)

        res = scipy.optimize.minimize(negf, np.zeros(2), jac=grad, method="BFGS",
                                      options={"gtol": 1e-11})
        b_hat = res.x
        hess = np.zeros((2, 2))  # numerical Hessian: central differences of the gradient
        for j in range(2):
            e = np.zeros(2)
            e[j] = 1e-5
            hess[:, j] = (grad(b_hat + e) - grad(b_hat - e)) / 2e-5
        hess = (hess + hess.T) / 2
        total += -negf(b_hat) + np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(hess)[1]
        modes.append(b_hat)
        csd.append(np.sqrt(np.diag(np.linalg.inv(hess))))
    return total, np.concatenate(modes), np.concatenate(csd)


@pytest.mark.parametrize("family,link", [("bernoulli", "logit"), ("poisson", "log")])
def test_random_slopes_laplace(family, link):
    d = _simulate(family, link, seed=11, slopes=True)
    beta, sd, rho = np.array([-0.3, 0.7]), np.array([0.8, 0.5]), 0.35
    ref, modes, csd = _group_laplace_2d(d, beta, sd, rho)
    assert glmm_loglik(d, beta, sd, [rho]) == pytest.approx(ref, rel=1e-6)
    b, b_sd = conditional_modes(d, beta, [0.8, 0.5 * 0.35, 0.5 * np.sqrt(1 - 0.35 ** 2)])
    np.testing.assert_allclose(b, modes, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b_sd, csd, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Crossed factors (dense q x q path): independent joint Laplace over all random effects
# ---------------------------------------------------------------------------------------------
def test_crossed_factors_joint_laplace():
    rng = np.random.default_rng(5)
    n, ga, gb = 160, 10, 6
    a, b = rng.integers(0, ga, n), rng.integers(0, gb, n)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    eta = 0.2 + 0.5 * x + rng.normal(0, 0.7, ga)[a] + rng.normal(0, 0.5, gb)[b]
    y = rng.binomial(1, scipy.special.expit(eta)).astype(float)
    blocks = (RandomBlock("a", ("Intercept",), tuple(map(str, range(ga))), a, np.ones((n, 1))),
              RandomBlock("b", ("Intercept",), tuple(map(str, range(gb))), b, np.ones((n, 1))))
    d = MixedDesign(X, ("Intercept", "x"), y, blocks, family="bernoulli", link="logit")
    beta, sd = np.array([0.1, 0.4]), np.array([0.8, 0.6])
    Z = np.zeros((n, ga + gb))
    Z[np.arange(n), a] = 1.0
    Z[np.arange(n), ga + b] = 1.0
    prior = np.concatenate([np.full(ga, sd[0] ** 2), np.full(gb, sd[1] ** 2)])

    def negf(u):
        e = X @ beta + Z @ u
        return -(np.sum(stats.bernoulli.logpmf(y, scipy.special.expit(e)))
                 + np.sum(stats.norm.logpdf(u, 0.0, np.sqrt(prior))))

    def grad(u):
        return -(Z.T @ (y - scipy.special.expit(X @ beta + Z @ u)) - u / prior)

    res = scipy.optimize.minimize(negf, np.zeros(ga + gb), jac=grad, method="BFGS",
                                  options={"gtol": 1e-11})
    mu = scipy.special.expit(X @ beta + Z @ res.x)
    hess = Z.T @ (Z * (mu * (1 - mu))[:, None]) + np.diag(1 / prior)
    ref = -negf(res.x) + (ga + gb) / 2 * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(hess)[1]
    assert glmm_loglik(d, beta, sd, []) == pytest.approx(ref, rel=1e-8)
    b_hat, b_sd = conditional_modes(d, beta, sd)
    np.testing.assert_allclose(b_hat, res.x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b_sd, np.sqrt(np.diag(np.linalg.inv(hess))), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Boundary, separation, numerical safety
# ---------------------------------------------------------------------------------------------
def test_singular_fit_is_the_glm():
    """No between-group variation: every group has the same rows (a simulated block of 40 with
    sd = 0, repeated over 20 groups). Each group's score at the GLM fit is then 0, so the
    Laplace deviance rises from sd = 0 and the MLE is the GLM's, at the boundary."""
    rng = np.random.default_rng(3)
    per, groups = 40, 20
    x1 = rng.normal(size=per)
    y1 = rng.binomial(1, scipy.special.expit(0.3 + 0.9 * x1)).astype(float)
    n = per * groups
    x, y = np.tile(x1, groups), np.tile(y1, groups)
    X = np.column_stack([np.ones(n), x])
    codes = np.repeat(np.arange(groups), per)
    d = MixedDesign(X, ("Intercept", "x"), y,
                    (RandomBlock("g", ("Intercept",), tuple(map(str, range(groups))), codes,
                                 np.ones((n, 1))),), family="bernoulli", link="logit")
    fit = fit_glmm(d)
    glm = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-14)
    assert fit.converged, fit.message
    assert fit.singular and fit.boundary == ("sd[g]",)
    assert fit.theta[0] == 0.0 and fit.sd[0] == 0.0
    assert fit.loglik == pytest.approx(glm.llf, rel=1e-8)
    np.testing.assert_allclose(fit.beta, glm.params, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.beta_cov)), glm.bse, rtol=1e-5)
    assert np.isnan(fit.cov[2, 2]) and np.all(np.isfinite(fit.cov[:2, :2]))
    np.testing.assert_allclose(fit.b, 0.0, atol=1e-12)


def test_separation_is_not_returned_as_a_number():
    rng = np.random.default_rng(9)
    n = 60
    x = rng.normal(size=n)
    y = (x > 0).astype(float)
    codes = np.repeat(np.arange(6), 10)
    d = MixedDesign(np.column_stack([np.ones(n), x]), ("Intercept", "x"), y,
                    (RandomBlock("g", ("Intercept",), tuple("abcdef"), codes, np.ones((n, 1))),),
                    family="bernoulli", link="logit")
    fit = fit_glmm(d)
    assert not fit.converged
    assert "x" in fit.message and "infinity" in fit.message
    assert np.all(np.isnan(fit.beta))
    assert fit.cov.shape == (3, 3)


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_extreme_linear_predictors_are_finite(link):
    d = _simulate("binomial", link, seed=21, groups=4, per=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for b0 in (-40.0, 40.0, -800.0):
            dev = laplace_deviance(d, [1.0], [b0, 0.0])
            assert np.isfinite(dev) or (b0 > 0 and link == "cloglog")
        # far out but where scipy's direct formula still resolves the tail
        eta = d.X @ np.array([-12.0, 0.0])
        ref = np.sum(stats.binom.logpmf(d.y, d.trials, _mu(link, eta)))
        assert glmm_loglik(d, [-12.0, 0.0], [0.0], []) == pytest.approx(ref, rel=1e-10)


def test_bad_arguments(designs):
    d = designs["bernoulli-logit"]
    with pytest.raises(SpecError, match="theta"):
        laplace_deviance(d, [-1.0], [0.0, 0.0])
    with pytest.raises(SpecError, match="beta"):
        laplace_deviance(d, [1.0], [0.0])
    with pytest.raises(SpecError, match="sd"):
        glmm_loglik(d, [0.0, 0.0], [-1.0], [])
    with pytest.raises(SpecError, match="method"):
        fit_glmm(d, "reml")
    with pytest.raises(SpecError, match="start"):
        fit_glmm(d, start=[0.0, 0.0])
