"""Marginal MAP and Laplace mode of mixed models against references written here.

The references are independent of the code under test: the Gaussian marginal log-likelihood is
the dense ``N(X beta, sigma^2 I + Z G Z')`` density of SciPy (``Z G Z'`` built here from the
grouping codes), the Poisson one integrates each group's random intercept with
``scipy.integrate.quad``, the priors are SciPy densities, and the optima come from closed forms
(profiled fixed effects) and SciPy optimisers.
"""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
from scipy import special, stats

from bayesmle import Exponential, Gamma, HalfCauchy, HalfNormal, Laplace, Normal
from bayesmle.errors import PriorError, SpecError
from bayesmle.inference.mixed.marginal import (
    fit_marginal,
    log_jacobian,
    natural_draws,
    natural_from_phi,
    phi_from_natural,
)
from bayesmle.models.mixed_design import MixedDesign, RandomBlock


class LKJ:
    """Stand-in for the LKJ prior class (only its name and ``eta`` matter)."""

    def __init__(self, eta):
        self.eta = eta


# ---------------------------------------------------------------------------------------------
# Data and dense references
# ---------------------------------------------------------------------------------------------
def _design(seed, *, groups=8, per=6, slope=False, k3=False, y=None, x=None):
    rng = np.random.default_rng(seed)
    n = groups * per
    codes = np.repeat(np.arange(groups), per)
    x = rng.normal(size=n) if x is None else x
    X = np.column_stack([np.ones(n), x])
    cols = ("Intercept", "x") if slope else ("Intercept",)
    b0 = rng.normal(scale=0.8, size=groups)
    b1 = rng.normal(scale=0.5, size=groups)
    if y is None:
        y = 1.0 + 0.5 * x + b0[codes] + (b1[codes] * x if slope else 0.0) \
            + rng.normal(scale=0.7, size=n)
    blocks = [RandomBlock("g", cols, tuple(f"g{i}" for i in range(groups)), codes,
                          X[:, :len(cols)])]
    if k3:
        z = rng.normal(size=n)
        codes2 = rng.integers(0, 5, size=n)
        blocks.append(RandomBlock("h", ("Intercept", "x", "z"), tuple(f"h{i}" for i in range(5)),
                                  codes2, np.column_stack([np.ones(n), x, z])))
    return MixedDesign(X, ("Intercept", "x"), np.asarray(y, float), tuple(blocks))


def _corr_matrix(corr, k):
    R = np.eye(k)
    iu = np.triu_indices(k, 1)
    R[iu] = corr
    R.T[iu] = corr
    return R


def _dense_V(design, sd, corr, sigma):
    V = sigma ** 2 * np.eye(design.n)
    s_at = c_at = 0
    for block in design.blocks:
        k = block.k
        m = k * (k - 1) // 2
        C = np.outer(sd[s_at:s_at + k], sd[s_at:s_at + k]) * _corr_matrix(
            corr[c_at:c_at + m], k)
        s_at, c_at = s_at + k, c_at + m
        same = block.codes[:, None] == block.codes[None, :]
        V += same * (block.values @ C @ block.values.T)
    return V


def dense_loglik(design, beta, sd, corr, sigma):
    V = _dense_V(design, np.asarray(sd), np.asarray(corr), sigma)
    return stats.multivariate_normal.logpdf(design.y, design.X @ beta, V)


def _gls(design, V, prec=None, mean=None):
    """Mode of beta given V (and a Normal prior of precision ``prec``): a closed form."""
    X, y = design.X, design.y
    Vi = np.linalg.inv(V)
    A, c = X.T @ Vi @ X, X.T @ Vi @ y
    if prec is not None:
        A, c = A + np.diag(prec), c + prec * mean
    return np.linalg.solve(A, c)


def _ml_random_intercept(design):
    """ML of a random-intercept LMM: beta and sigma profiled in closed form, one-dim search."""
    n = design.n
    same = (design.blocks[0].codes[:, None] == design.blocks[0].codes[None, :]).astype(float)

    def profile(gamma):
        W = np.eye(n) + gamma ** 2 * same
        beta = _gls(design, W)
        r = design.y - design.X @ beta
        s2 = r @ np.linalg.solve(W, r) / n
        ll = -0.5 * n * (np.log(2 * np.pi * s2) + 1) - 0.5 * np.linalg.slogdet(W)[1]
        return ll, beta, np.sqrt(s2)

    coarse = scipy.optimize.minimize_scalar(lambda g: -profile(g)[0], bounds=(0.0, 10.0),
                                            method="bounded")
    assert 0.01 < coarse.x < 9.99  # an interior optimum: polish it as a root of the gradient
    gamma = _scipy_optimum(lambda v: -profile(v[0])[0], np.array([coarse.x]))[0]
    ll, beta, sigma = profile(gamma)
    return beta, gamma * sigma, sigma, ll


def _grad5(fun, v, h=1e-4):
    """5-point central-difference gradient."""
    out = np.zeros(v.size)
    for i, e in enumerate(np.eye(v.size) * h):
        out[i] = (fun(v - 2 * e) - 8 * fun(v - e) + 8 * fun(v + e) - fun(v + 2 * e)) / (12 * h)
    return out


def _scipy_optimum(fun, x0):
    """SciPy's BFGS, then its hybrid Powell root of the 5-point gradient (BFGS on forward
    differences alone stops some 1e-5 short of the optimum)."""
    res = scipy.optimize.minimize(fun, x0, method="BFGS")
    root = scipy.optimize.root(lambda v: _grad5(fun, v), res.x, method="hybr",
                               options={"xtol": 1e-12})
    # success, or stopped at the noise floor of the differenced gradient
    assert root.success or np.max(np.abs(_grad5(fun, root.x))) < 1e-8, root.message
    assert fun(root.x) <= res.fun + 1e-10
    return root.x


def _fd_hessian(f, x, h=1e-4):
    m = x.size
    H = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            ei, ej = np.eye(m)[i] * h, np.eye(m)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * h * h)
    return H


# ---------------------------------------------------------------------------------------------
# Fits shared across tests
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ri():
    return _design(1)


@pytest.fixture(scope="module")
def ri_flat(ri):
    return fit_marginal(ri, {}, dense_loglik)


@pytest.fixture(scope="module")
def slope_design():
    return _design(2, slope=True)


# ---------------------------------------------------------------------------------------------
# Flat priors: the MAP is the MLE
# ---------------------------------------------------------------------------------------------
def test_flat_priors_give_the_ml_optimum(ri, ri_flat):
    beta, sd, sigma, ll = _ml_random_intercept(ri)
    fit = ri_flat
    assert fit.converged, fit.message
    assert fit.method == "map" and fit.coords == "natural" and fit.boundary == ()
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-8)
    np.testing.assert_allclose(fit.sd, [sd], rtol=1e-8)
    assert fit.sigma == pytest.approx(sigma, rel=1e-8)
    assert fit.loglik == pytest.approx(ll, abs=1e-9)
    assert fit.logp == fit.loglik and fit.criterion == pytest.approx(-2 * ll, abs=1e-8)
    np.testing.assert_allclose(fit.natural(), fit.x)
    np.testing.assert_allclose(fit.theta, [sd / sigma], rtol=1e-8)


def test_flat_map_covariance_is_the_inverse_observed_information(ri, ri_flat):
    fit = ri_flat

    def nll(v):
        return -dense_loglik(ri, v[:2], v[2:3], np.zeros(0), v[3])

    H = _fd_hessian(nll, fit.x, h=1e-4)
    np.testing.assert_allclose(fit.hess, H, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fit.cov, np.linalg.inv(H), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(fit.beta_cov, fit.cov[:2, :2])


def test_flat_priors_with_a_random_slope_give_the_ml_optimum(slope_design):
    d = slope_design
    fit = fit_marginal(d, {}, dense_loglik)
    assert fit.converged, fit.message

    # reference: beta profiled in closed form, then Nelder-Mead on (log sd, atanh corr, log sigma)
    def negll(v):
        sd, corr, sigma = np.exp(v[:2]), np.tanh(v[2:3]), np.exp(v[3])
        V = _dense_V(d, sd, corr, sigma)
        return -dense_loglik(d, _gls(d, V), sd, corr, sigma)

    v = _scipy_optimum(negll, np.array([0.0, -0.5, 0.0, -0.5]))
    sd, corr, sigma = np.exp(v[:2]), np.tanh(v[2:3]), np.exp(v[3])
    beta = _gls(d, _dense_V(d, sd, corr, sigma))
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-8)
    np.testing.assert_allclose(fit.sd, sd, rtol=1e-8)
    np.testing.assert_allclose(fit.corr, corr, rtol=1e-8)
    assert fit.sigma == pytest.approx(sigma, rel=1e-8)
    # lme4's theta: the Cholesky factor of the covariance relative to sigma
    L = np.linalg.cholesky(np.outer(sd, sd) * _corr_matrix(corr, 2)) / sigma
    np.testing.assert_allclose(fit.theta, [L[0, 0], L[1, 0], L[1, 1]], rtol=1e-5)


def test_analytic_gradient_path_gives_the_same_optimum(ri):
    """``loglik_grad``: the score of the dense density, written here."""
    same = (ri.blocks[0].codes[:, None] == ri.blocks[0].codes[None, :]).astype(float)

    def value_and_grad(design, beta, sd, corr, sigma):
        V = sigma ** 2 * np.eye(design.n) + sd[0] ** 2 * same
        Vi = np.linalg.inv(V)
        r = design.y - design.X @ beta
        a = Vi @ r
        ll = stats.multivariate_normal.logpdf(design.y, design.X @ beta, V)

        def d(dV):
            return 0.5 * (a @ dV @ a - np.sum(Vi * dV))

        return ll, np.concatenate([design.X.T @ a, [d(2 * sd[0] * same)],
                                   [d(2 * sigma * np.eye(design.n))]])

    beta, sd, sigma, _ = _ml_random_intercept(ri)
    fit = fit_marginal(ri, None, dense_loglik, loglik_grad=value_and_grad)
    assert fit.converged, fit.message
    np.testing.assert_allclose(fit.natural(), np.r_[beta, sd, sigma], rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Proper priors: the MAP against a SciPy optimisation of the same log posterior
# ---------------------------------------------------------------------------------------------
def test_normal_and_gamma_priors_give_the_map(slope_design):
    d = slope_design
    priors = {"intercept": Normal(2.0, mu=0.5), "coef": Normal(0.3), "sd": Gamma(2.0, 1.5),
              "sigma": HalfNormal(1.0), "corr": LKJ(2.0)}
    fit = fit_marginal(d, priors, dense_loglik)
    assert fit.converged, fit.message and fit.boundary == ()
    prec, mean = np.array([1 / 2.0 ** 2, 1 / 0.3 ** 2]), np.array([0.5, 0.0])

    def log_prior(beta, sd, corr, sigma):
        return (stats.norm.logpdf(beta[0], 0.5, 2.0) + stats.norm.logpdf(beta[1], 0.0, 0.3)
                + stats.gamma.logpdf(sd, 2.0, scale=1 / 1.5).sum()
                + stats.halfnorm.logpdf(sigma)
                # LKJ(2) on a 2 x 2 correlation: (r + 1) / 2 ~ Beta(2, 2)
                + stats.beta.logpdf((corr[0] + 1) / 2, 2.0, 2.0) - np.log(2.0))

    def neg_post(v):  # beta profiled: Gaussian likelihood x Normal prior has a closed-form mode
        sd, corr, sigma = np.exp(v[:2]), np.tanh(v[2:3]), np.exp(v[3])
        beta = _gls(d, _dense_V(d, sd, corr, sigma), prec, mean)
        return -(dense_loglik(d, beta, sd, corr, sigma) + log_prior(beta, sd, corr, sigma))

    v = _scipy_optimum(neg_post, np.array([0.0, -0.5, 0.0, -0.5]))
    sd, corr, sigma = np.exp(v[:2]), np.tanh(v[2:3]), np.exp(v[3])
    beta = _gls(d, _dense_V(d, sd, corr, sigma), prec, mean)
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-8)
    np.testing.assert_allclose(fit.sd, sd, rtol=1e-8)
    np.testing.assert_allclose(fit.corr, corr, rtol=1e-8)
    assert fit.sigma == pytest.approx(sigma, rel=1e-8)
    ll = dense_loglik(d, fit.beta, fit.sd, fit.corr, fit.sigma)
    assert fit.loglik == pytest.approx(ll, abs=1e-9)
    assert fit.logp == pytest.approx(ll + log_prior(fit.beta, fit.sd, fit.corr, fit.sigma),
                                     abs=1e-9)
    assert fit.criterion == pytest.approx(-2 * fit.logp, abs=1e-8)


# ---------------------------------------------------------------------------------------------
# The boundary sd = 0
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def alike():
    """Every group has the same responses at the same x: the group means coincide."""
    groups, per = 6, 5
    rng = np.random.default_rng(5)
    x1 = rng.normal(size=per)
    e1 = rng.normal(scale=0.6, size=per)
    x = np.tile(x1, groups)
    y = 2.0 - 0.7 * x + np.tile(e1, groups)
    return _design(0, groups=groups, per=per, x=x, y=y)


def test_half_normal_prior_on_alike_groups_puts_the_sd_on_the_boundary(alike):
    fit = fit_marginal(alike, {"sd": HalfNormal(1.0)}, dense_loglik)
    assert fit.converged, fit.message
    assert fit.boundary == ("sd[g]",) and fit.sd[0] == 0.0 and fit.singular
    assert fit.theta.tolist() == [0.0]
    # with sd = 0 the model is least squares: closed forms for beta and sigma
    beta, *_ = np.linalg.lstsq(alike.X, alike.y, rcond=None)
    sigma = np.sqrt(np.mean((alike.y - alike.X @ beta) ** 2))
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-8)
    assert fit.sigma == pytest.approx(sigma, rel=1e-8)
    # the boundary is the mode: the log posterior falls as sd moves inside
    post0 = dense_loglik(alike, beta, [0.0], [], sigma) + stats.halfnorm.logpdf(0.0)
    for s in (1e-3, 1e-2, 1e-1):
        assert dense_loglik(alike, beta, [s], [], sigma) + stats.halfnorm.logpdf(s) < post0
    assert np.all(np.isnan(fit.cov[2])) and np.all(np.isnan(fit.cov[:, 2]))
    assert np.all(np.isfinite(fit.cov[np.ix_([0, 1, 3], [0, 1, 3])]))


@pytest.mark.parametrize("prior", [Exponential(1.0), HalfCauchy(1.0), None])
def test_priors_finite_at_zero_also_reach_the_boundary(alike, prior):
    fit = fit_marginal(alike, {"sd": prior}, dense_loglik)
    assert fit.converged, fit.message
    assert fit.boundary == ("sd[g]",) and fit.sd[0] == 0.0


def test_gamma_two_prior_keeps_the_sd_inside(alike):
    fit = fit_marginal(alike, {"sd": Gamma(2.0, 1.0)}, dense_loglik)
    assert fit.converged, fit.message
    assert fit.boundary == () and fit.sd[0] > 0

    def neg_post(v):  # flat beta: generalised least squares in closed form
        sd, sigma = np.exp(v[0]), np.exp(v[1])
        beta = _gls(alike, _dense_V(alike, [sd], [], sigma))
        return -(dense_loglik(alike, beta, [sd], [], sigma)
                 + stats.gamma.logpdf(sd, 2.0, scale=1.0))

    v = _scipy_optimum(neg_post, np.array([-1.0, -0.5]))
    sd, sigma = np.exp(v)
    np.testing.assert_allclose(fit.sd, [sd], rtol=1e-8)
    assert fit.sigma == pytest.approx(sigma, rel=1e-8)
    np.testing.assert_allclose(fit.beta, _gls(alike, _dense_V(alike, [sd], [], sigma)),
                               rtol=1e-8, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big():
    return _design(3, slope=True, k3=True)


def test_transforms_round_trip(big):
    rng = np.random.default_rng(11)
    m = 2 + 5 + 1 + 3 + 1
    for _ in range(5):
        phi = rng.normal(scale=1.2, size=m)
        nat = natural_from_phi(big, phi)
        np.testing.assert_allclose(phi_from_natural(big, nat), phi, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(natural_from_phi(big, phi_from_natural(big, nat)), nat,
                                   rtol=1e-12, atol=1e-14)
        # closed forms: exp for scales, tanh for a 2 x 2 correlation
        np.testing.assert_allclose(nat[2:7], np.exp(phi[2:7]))
        assert nat[7] == pytest.approx(np.tanh(phi[7]))
        assert nat[-1] == pytest.approx(np.exp(phi[-1]))
        # the 3 x 3 correlations form a positive definite matrix with a unit diagonal
        assert np.all(np.linalg.eigvalsh(_corr_matrix(nat[8:11], 3)) > 0)
    draws = rng.normal(size=(4, m))
    np.testing.assert_allclose(natural_draws(big, draws),
                               np.array([natural_from_phi(big, row) for row in draws]))


def test_three_by_three_correlations_follow_the_partial_correlation_construction(big):
    # Lewandowski et al. (2009): r12 = p12, r13 = p13, r23 = p23 sqrt((1-p12^2)(1-p13^2))
    # + p12 p13, with p_ab = tanh(z_ab).
    z = np.array([0.3, -0.8, 1.1])
    phi = np.zeros(12)
    phi[8:11] = z
    p12, p13, p23 = np.tanh(z)
    expected = [p12, p13, p23 * np.sqrt((1 - p12 ** 2) * (1 - p13 ** 2)) + p12 * p13]
    np.testing.assert_allclose(natural_from_phi(big, phi)[8:11], expected, rtol=1e-14)


def test_log_jacobian_is_the_log_determinant_of_the_transform(big):
    rng = np.random.default_rng(12)
    for _ in range(3):
        phi = rng.normal(scale=0.8, size=12)
        h = 1e-5
        J = np.column_stack([
            (natural_from_phi(big, phi + h * e) - natural_from_phi(big, phi - h * e)) / (2 * h)
            for e in np.eye(12)])
        assert log_jacobian(big, phi) == pytest.approx(np.linalg.slogdet(J)[1], abs=1e-7)


def test_transform_errors(big):
    with pytest.raises(SpecError, match="shape"):
        natural_from_phi(big, np.zeros(5))
    nat = natural_from_phi(big, np.zeros(12))
    nat[2] = 0.0
    with pytest.raises(SpecError, match="sd\\[g\\]"):
        phi_from_natural(big, nat)
    nat = natural_from_phi(big, np.zeros(12))
    nat[8:11] = [0.9, -0.9, 0.9]  # not positive definite
    with pytest.raises(SpecError, match="positive definite"):
        phi_from_natural(big, nat)


# ---------------------------------------------------------------------------------------------
# The mode of the density of phi (Laplace approximation)
# ---------------------------------------------------------------------------------------------
def test_laplace_mode_against_scipy_on_the_phi_density(slope_design):
    d = slope_design
    priors = {"coef": Normal(1.0), "sd": HalfNormal(2.0), "sigma": Exponential(1.0)}
    fit = fit_marginal(d, priors, dense_loglik, jacobian=True)
    assert fit.converged, fit.message
    assert fit.method == "laplace_mode" and fit.coords == "phi"

    def log_density(v):  # written independently: exp, tanh and their log-Jacobian
        beta, sd, z, sigma = v[:2], np.exp(v[2:4]), v[4], np.exp(v[5])
        corr = np.tanh(z)
        return (dense_loglik(d, beta, sd, [corr], sigma)
                + stats.norm.logpdf(beta[1]) + stats.halfnorm.logpdf(sd, scale=2.0).sum()
                + stats.expon.logpdf(sigma)
                + v[2] + v[3] + v[5] + np.log1p(-corr ** 2))

    v = _scipy_optimum(lambda v: -log_density(v), np.array([1.0, 0.5, 0.0, -0.5, 0.0, -0.5]))
    np.testing.assert_allclose(fit.x, v, rtol=1e-8, atol=1e-8)
    H = _fd_hessian(lambda v: -log_density(v), fit.x, h=1e-4)
    np.testing.assert_allclose(fit.hess, H, rtol=1e-4, atol=1e-4)
    assert fit.criterion == pytest.approx(-2 * log_density(fit.x), abs=1e-8)
    # the covariance of the natural vector: delta method through the transform
    J = np.diag(np.r_[1.0, 1.0, np.exp(fit.x[2:4]), 1 - np.tanh(fit.x[4]) ** 2,
                      np.exp(fit.x[5])])
    np.testing.assert_allclose(fit.cov, J @ np.linalg.inv(H) @ J.T, rtol=1e-4, atol=1e-8)


@pytest.fixture(scope="module")
def three():
    """One block (1 + x + z | g): a 3 x 3 correlation matrix."""
    rng = np.random.default_rng(31)
    groups, per = 10, 6
    n = groups * per
    codes = np.repeat(np.arange(groups), per)
    x, z = rng.normal(size=n), rng.normal(size=n)
    V = np.column_stack([np.ones(n), x, z])
    b = rng.normal(size=(groups, 3)) @ np.diag([0.8, 0.5, 0.4])
    y = 1.0 + 0.5 * x + np.sum(V * b[codes], axis=1) + rng.normal(scale=0.6, size=n)
    block = RandomBlock("g", ("Intercept", "x", "z"), tuple(f"g{i}" for i in range(groups)),
                        codes, V)
    return MixedDesign(V[:, :2], ("Intercept", "x"), y, (block,))


@pytest.mark.parametrize("jacobian", [False, True])
def test_three_by_three_block_with_lkj_prior_against_scipy(three, jacobian):
    d = three
    priors = {"sd": Gamma(2.0, 1.0), "corr": LKJ(2.0), "sigma": HalfNormal(2.0)}
    fit = fit_marginal(d, priors, dense_loglik, jacobian=jacobian)
    assert fit.converged, fit.message

    def unpack(v):  # partial correlations -> correlations, by hand for k = 3
        p12, p13, p23 = np.tanh(v[5:8])
        corr = np.array([p12, p13, p23 * np.sqrt((1 - p12 ** 2) * (1 - p13 ** 2)) + p12 * p13])
        return v[:2], np.exp(v[2:5]), corr, np.exp(v[8]), (p12, p13, p23)

    def log_density(v):
        beta, sd, corr, sigma, (p12, p13, p23) = unpack(v)
        out = (dense_loglik(d, beta, sd, corr, sigma)
               + stats.gamma.logpdf(sd, 2.0).sum() + stats.halfnorm.logpdf(sigma, scale=2.0)
               + np.linalg.slogdet(_corr_matrix(corr, 3))[1])  # LKJ(2): det(R)^(2 - 1)
        if jacobian:  # d corr / d p is triangular with diagonal 1, 1, sqrt((1-p12^2)(1-p13^2))
            out += (np.sum(v[2:5]) + v[8] + np.log1p(-p12 ** 2) + np.log1p(-p13 ** 2)
                    + np.log1p(-p23 ** 2) + 0.5 * np.log1p(-p12 ** 2)
                    + 0.5 * np.log1p(-p13 ** 2))
        return out

    v = _scipy_optimum(lambda v: -log_density(v), np.r_[1.0, 0.5, np.full(3, -0.5),
                                                         np.zeros(3), -0.5])
    beta, sd, corr, sigma, _ = unpack(v)
    np.testing.assert_allclose(fit.natural(), np.r_[beta, sd, corr, sigma], rtol=1e-8,
                               atol=1e-9)
    if jacobian:
        np.testing.assert_allclose(fit.x, v, rtol=1e-8, atol=1e-9)


def _no_slope_variation():
    rng = np.random.default_rng(3)
    groups, per = 6, 5
    n = groups * per
    codes = np.repeat(np.arange(groups), per)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=groups)[codes] + rng.normal(scale=0.5, size=n)
    return _design(0, groups=groups, per=per, slope=True, x=x, y=y)


@pytest.mark.parametrize("make", [
    _no_slope_variation,
    # an intercept sd that first heads to 0: at sd = 0 the held correlation must be freed
    # to see that a rank-one covariance with a small intercept sd is better
    lambda: _design(108, groups=6, per=4, slope=True),
], ids=["no-slope-variation", "small-intercept-sd"])
def test_singular_random_slope_puts_the_correlation_on_the_boundary(make):
    """ML of a random slope the data do not support: lme4 reports corr = +-1."""
    d = make()
    n, codes, y = d.n, d.blocks[0].codes, d.y
    fit = fit_marginal(d, {}, dense_loglik)
    assert fit.converged, fit.message
    assert fit.boundary == ("corr[g]",) and abs(fit.corr[0]) == 1.0 and fit.singular
    sign = np.sign(fit.corr[0])

    # reference in lme4's theta = (L11, L21, L22) relative to sigma, with L22 = 0 (rank one):
    # beta and sigma profiled in closed form, (L11, L21) by SciPy
    def profile(t, l22=0.0):
        L = np.array([[t[0], 0.0], [t[1], l22]])
        C = L @ L.T
        same = codes[:, None] == codes[None, :]
        W = np.eye(n) + same * (d.X @ C @ d.X.T)
        beta = _gls(d, W)
        r = y - d.X @ beta
        s2 = r @ np.linalg.solve(W, r) / n
        return -0.5 * n * (np.log(2 * np.pi * s2) + 1) - 0.5 * np.linalg.slogdet(W)[1], beta, s2

    t = _scipy_optimum(lambda t: -profile(t)[0], np.array([1.0, 0.2 * sign]))
    ll, beta, s2 = profile(t)
    sigma = np.sqrt(s2)
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-8)
    np.testing.assert_allclose(fit.sd, np.abs(t) * sigma, rtol=1e-8)
    assert fit.sigma == pytest.approx(sigma, rel=1e-8)
    assert fit.corr[0] == np.sign(t[0] * t[1])
    assert fit.loglik == pytest.approx(ll, abs=1e-9)
    # and the boundary is the optimum: moving L22 off 0 lowers the profiled likelihood
    for l22 in (1e-3, 1e-2, 1e-1):
        assert profile(t, l22)[0] < ll
    np.testing.assert_allclose(fit.theta, [abs(t[0]), np.sign(t[0]) * t[1], 0.0], rtol=1e-5,
                               atol=1e-12)
    assert np.all(np.isnan(fit.cov[4])) and np.all(np.isfinite(fit.cov[:4, :4]))


# ---------------------------------------------------------------------------------------------
# A Poisson GLMM: the random intercept integrated by quadrature
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def poisson():
    rng = np.random.default_rng(21)
    groups, per = 6, 5
    n = groups * per
    codes = np.repeat(np.arange(groups), per)
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(0.4 + 0.3 * x + rng.normal(scale=0.6, size=groups)[codes]))
    X = np.column_stack([np.ones(n), x])
    block = RandomBlock("g", ("Intercept",), tuple(f"g{i}" for i in range(groups)), codes,
                        np.ones((n, 1)))
    return MixedDesign(X, ("Intercept", "x"), y.astype(float), (block,), family="poisson",
                       link="log")


def poisson_loglik(design, beta, sd, corr):
    eta = design.X @ beta
    codes = design.blocks[0].codes
    s = float(sd[0])
    total = 0.0
    for g in range(design.blocks[0].n_levels):
        yg, eg = design.y[codes == g], eta[codes == g]
        # sum_j y_j (e_j + s u) - exp(e_j + s u) = A + s u Y - exp(s u) B
        A, Y, B = float(yg @ eg), float(yg.sum()), float(np.exp(eg).sum())
        const = -float(special.gammaln(yg + 1).sum())

        def integrand(u, A=A, Y=Y, B=B):
            if abs(u) > 40.0:  # exp(-u^2 / 2) < 1e-347: nothing left to integrate
                return 0.0
            return math.exp(A + s * u * Y - math.exp(s * u) * B - 0.5 * u * u)

        val, _ = scipy.integrate.quad(integrand, -np.inf, np.inf, epsabs=0.0, epsrel=1e-13,
                                      limit=200)
        total += const + math.log(val / math.sqrt(2 * math.pi))
    return total


def test_poisson_glmm_map_against_scipy(poisson):
    priors = {"intercept": Normal(5.0), "coef": Normal(1.0), "sd": Gamma(2.0, 1.0)}
    fit = fit_marginal(poisson, priors, poisson_loglik)
    assert fit.converged, fit.message
    assert fit.sigma is None and fit.nagq == 1 and fit.boundary == ()

    def neg_post(v):
        beta, sd = v[:2], np.exp(v[2])
        return -(poisson_loglik(poisson, beta, [sd], [])
                 + stats.norm.logpdf(beta[0], scale=5.0) + stats.norm.logpdf(beta[1])
                 + stats.gamma.logpdf(sd, 2.0))

    v = _scipy_optimum(neg_post, np.array([0.3, 0.2, np.log(0.5)]))
    np.testing.assert_allclose(fit.beta, v[:2], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(fit.sd, np.exp(v[2:]), rtol=1e-8)
    assert fit.theta.tolist() == pytest.approx(fit.sd.tolist())  # no residual scale


# ---------------------------------------------------------------------------------------------
# Errors and the remaining fields
# ---------------------------------------------------------------------------------------------
def test_prior_errors(ri):
    with pytest.raises(PriorError, match="NUTS for the Bayesian lasso"):
        fit_marginal(ri, {"coef": Laplace(1.0)}, dense_loglik)
    with pytest.raises(PriorError, match="Unknown prior key"):
        fit_marginal(ri, {"slope": Normal(1.0)}, dense_loglik)
    with pytest.raises(PriorError, match="alpha < 1"):
        fit_marginal(ri, {"sd": Gamma(0.5, 1.0)}, dense_loglik)
    with pytest.raises(PriorError, match="positive"):
        fit_marginal(ri, {"sd": Normal(1.0)}, dense_loglik)
    with pytest.raises(PriorError, match="shape"):
        fit_marginal(ri, {"coef": Normal([1.0, 2.0])}, dense_loglik)


def test_start_errors(ri):
    with pytest.raises(SpecError, match="start"):
        fit_marginal(ri, {}, dense_loglik, start=[0.0, 0.0, -1.0, 1.0])
    with pytest.raises(SpecError, match="shape"):
        fit_marginal(ri, {}, dense_loglik, start=[0.0, 0.0])


def test_conditional_modes_are_filled_from_the_callable(ri, ri_flat):
    seen = {}

    def modes(design, beta, theta, sigma):
        seen.update(beta=beta, theta=theta, sigma=sigma)
        return np.arange(8.0), np.ones(8)

    fit = fit_marginal(ri, {}, dense_loglik, conditional_modes=modes, start=ri_flat.natural())
    np.testing.assert_allclose(seen["theta"], fit.theta)
    assert seen["sigma"] == fit.sigma
    assert fit.b.tolist() == list(range(8)) and fit.b_sd.shape == (8,)
    assert ri_flat.b.shape == (0,) and ri_flat.b_sd.shape == (0,)


def test_intercept_prior_is_applied_only_to_the_intercept(ri):
    """A tight prior on the intercept moves it; a vague one on the slope leaves it."""
    fit = fit_marginal(ri, {"intercept": Normal(1e-3, mu=5.0), "sd": Gamma(2.0, 1.0)},
                       dense_loglik)
    assert fit.converged, fit.message
    assert fit.beta[0] == pytest.approx(5.0, abs=1e-2)
