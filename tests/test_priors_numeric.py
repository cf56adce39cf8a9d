"""bayesmle.priors.numeric against PyMC's own log-densities (and closed forms for the LKJ)."""

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special, stats

from bayesmle import (
    Beta,
    Exponential,
    Flat,
    Gamma,
    HalfCauchy,
    HalfFlat,
    HalfNormal,
    Laplace,
    Normal,
)
from bayesmle.errors import PriorError
from bayesmle.priors.numeric import logpdf, logpdf_grad


@dataclass(frozen=True)
class LKJ:
    """Stand-in for the LKJ prior class (only its name and ``eta`` matter)."""

    eta: float


# (prior, PyMC distribution factory, values inside the support)
CASES = [
    (Normal([1.0, 2.0, 3.0], mu=0.5), lambda: pm.Normal.dist(0.5, np.array([1.0, 2.0, 3.0])),
     [-1.0, 0.3, 4.0]),
    (Laplace([0.5, 2.0], mu=[0.0, 1.0]),
     lambda: pm.Laplace.dist(np.array([0.0, 1.0]), np.array([0.5, 2.0])), [0.2, -3.0]),
    (HalfNormal([0.5, 2.0, 1.0]), lambda: pm.HalfNormal.dist(np.array([0.5, 2.0, 1.0])),
     [0.0, 1.3, 4.0]),
    (HalfCauchy([0.5, 2.0]), lambda: pm.HalfCauchy.dist(np.array([0.5, 2.0])), [0.0, 2.5]),
    (Exponential([0.5, 3.0]), lambda: pm.Exponential.dist(lam=np.array([0.5, 3.0])),
     [0.0, 3.0]),
    (Gamma([0.5, 1.0, 2.5], [2.0, 0.3, 1.0]),
     lambda: pm.Gamma.dist(np.array([0.5, 1.0, 2.5]), np.array([2.0, 0.3, 1.0])),
     [0.7, 2.0, 0.1]),
    (Beta([0.5, 1.0, 2.0], [1.0, 3.0, 0.7]),
     lambda: pm.Beta.dist(np.array([0.5, 1.0, 2.0]), np.array([1.0, 3.0, 0.7])),
     [0.2, 0.9, 0.4]),
    (Flat(), lambda: pm.Flat.dist(shape=2), [-3.0, 7.0]),
    (HalfFlat(), lambda: pm.HalfFlat.dist(shape=2), [0.0, 7.0]),
    # a scalar prior broadcast over a vector
    # (float64 parameters: PyMC turns a Python float such as 2.0 into a float32 constant)
    (Normal(2.0, mu=-1.0), lambda: pm.Normal.dist(np.float64(-1.0), np.float64(2.0), shape=3),
     [0.0, 1.0, -4.0]),
    (Gamma(2.0, 0.5), lambda: pm.Gamma.dist(np.float64(2.0), np.float64(0.5), shape=2),
     [1.0, 6.0]),
]

# (prior, PyMC distribution factory, scalar values on or outside the edge of the support)
EDGES = [
    (HalfNormal(1.0), lambda: pm.HalfNormal.dist(1.0), [-0.1]),
    (HalfCauchy(1.0), lambda: pm.HalfCauchy.dist(1.0), [-0.1]),
    (Exponential(2.0), lambda: pm.Exponential.dist(lam=2.0), [-0.1]),
    (HalfFlat(), lambda: pm.HalfFlat.dist(), [-0.1]),
    (Gamma(0.5, 2.0), lambda: pm.Gamma.dist(0.5, 2.0), [0.0, -1.0]),
    (Gamma(1.0, 2.0), lambda: pm.Gamma.dist(1.0, 2.0), [0.0]),
    (Gamma(3.0, 2.0), lambda: pm.Gamma.dist(3.0, 2.0), [0.0]),
    (Beta(2.0, 2.0), lambda: pm.Beta.dist(2.0, 2.0), [0.0, 1.0, 1.5]),
    (Beta(1.0, 1.0), lambda: pm.Beta.dist(1.0, 1.0), [0.0, 1.0, -0.5]),
]


@pytest.fixture(scope="module")
def pymc_reference():
    """PyMC's logp (summed) and its gradient for every case, compiled as one function."""
    outputs, edge_out = [], []
    for _, make, values in CASES:
        v = pt.as_tensor_variable(np.asarray(values, dtype=float)).type()
        logp = pt.sum(pm.logp(make(), v))
        outputs.append((v, logp, pt.grad(logp, v, disconnected_inputs="ignore")))
    for _, make, values in EDGES:
        for x in values:
            v = pt.dscalar()
            edge_out.append((v, pm.logp(make(), v), x))
    inputs = [o[0] for o in outputs] + [o[0] for o in edge_out]
    fn = pytensor.function(inputs, [o[1] for o in outputs] + [o[2] for o in outputs]
                           + [o[1] for o in edge_out], mode="FAST_COMPILE",
                           on_unused_input="ignore")
    res = fn(*[np.asarray(c[2], dtype=float) for c in CASES],
             *[np.float64(o[2]) for o in edge_out])
    n = len(CASES)
    return res[:n], res[n:2 * n], res[2 * n:]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[repr(c[0]) for c in CASES])
def test_logpdf_equals_pymc(pymc_reference, i):
    prior, _, values = CASES[i]
    # PyMC's HalfCauchy adds pt.log(2) of an integer constant, computed in float32
    # (off by 1.9e-9 per element); every other family agrees to rounding.
    tol = 5e-9 if type(prior).__name__ == "HalfCauchy" else 1e-13
    assert logpdf(prior, values) == pytest.approx(float(pymc_reference[0][i]), rel=tol,
                                                  abs=tol)


SCIPY = {
    "Normal": lambda p, x: stats.norm.logpdf(x, p.mu, p.sigma),
    "Laplace": lambda p, x: stats.laplace.logpdf(x, p.mu, p.b),
    "HalfNormal": lambda p, x: stats.halfnorm.logpdf(x, scale=p.sigma),
    "HalfCauchy": lambda p, x: stats.halfcauchy.logpdf(x, scale=p.beta),
    "Exponential": lambda p, x: stats.expon.logpdf(x, scale=1 / p.lam),
    "Gamma": lambda p, x: stats.gamma.logpdf(x, p.alpha, scale=1 / p.beta),
    "Beta": lambda p, x: stats.beta.logpdf(x, p.a, p.b),
}


@pytest.mark.parametrize("i", [i for i, c in enumerate(CASES) if type(c[0]).__name__ in SCIPY],
                         ids=[repr(c[0]) for c in CASES if type(c[0]).__name__ in SCIPY])
def test_logpdf_equals_scipy(i):
    prior, _, values = CASES[i]
    ref = np.sum(SCIPY[type(prior).__name__](prior, np.asarray(values)))
    assert logpdf(prior, values) == pytest.approx(ref, rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[repr(c[0]) for c in CASES])
def test_logpdf_grad_equals_pymc_gradient(pymc_reference, i):
    prior, _, values = CASES[i]
    np.testing.assert_allclose(logpdf_grad(prior, values), pymc_reference[1][i],
                               rtol=1e-12, atol=1e-14)


def test_edges_equal_pymc(pymc_reference):
    expected = iter(pymc_reference[2])
    for prior, _, values in EDGES:
        for x in values:
            ref = float(next(expected))
            got = logpdf(prior, x)
            assert got == ref or np.isclose(got, ref, rtol=1e-13), (prior, x, got, ref)


def _random_corr(k, rng):
    a = rng.normal(size=(k, k + 2))
    c = a @ a.T
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("eta", [0.7, 1.0, 2.5])
def test_lkj_equals_pymc_cholesky_density_minus_its_jacobian(k, eta):
    R = _random_corr(k, np.random.default_rng(k * 10 + int(eta * 10)))
    L = np.linalg.cholesky(R)
    v = pt.dmatrix()
    ref = pm.logp(pm.LKJCorr.dist(n=k, eta=eta), v).eval({v: L}, mode="FAST_COMPILE")
    # PyMC's density is of the Cholesky factor; that of R drops the Jacobian of L -> R.
    jac = np.sum((k - np.arange(1, k + 1)) * np.log(np.diag(L)))
    assert logpdf(LKJ(eta), R) == pytest.approx(float(ref) - jac, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("eta", [0.6, 1.0, 3.0])
def test_lkj_two_by_two_is_a_scaled_beta(eta):
    # For k = 2, (r + 1) / 2 ~ Beta(eta, eta).
    for r in (-0.9, 0.0, 0.35):
        R = np.array([[1.0, r], [r, 1.0]])
        ref = stats.beta.logpdf((r + 1) / 2, eta, eta) - np.log(2.0)
        assert logpdf(LKJ(eta), R) == pytest.approx(ref, rel=1e-12)


def test_lkj_uniform_three_by_three_is_one_over_the_elliptope_volume():
    # The set of 3 x 3 correlation matrices has volume pi^2 / 2 (Rousseeuw & Molenberghs 1994).
    assert np.exp(logpdf(LKJ(1.0), np.eye(3))) == pytest.approx(2 / np.pi ** 2, rel=1e-13)


def test_lkj_normaliser_by_quadrature():
    # k = 3, eta = 2: the density integrates to 1 over the elliptope. Integrate in partial
    # correlations (r12, p13, p23 in (-1, 1)^3), where det R = (1-r12^2)(1-p13^2)(1-p23^2) and
    # the Jacobian of (r12, p13, p23) -> (r12, r13, r23) is sqrt((1-r12^2)(1-p13^2)), so the
    # integral factorises into one-dimensional Beta integrals.
    eta = 2.0

    def one(e):  # integral over (-1, 1) of (1 - x^2)^e
        return 2 ** (2 * e + 1) * np.exp(special.betaln(e + 1, e + 1))

    total = one(eta - 1 + 0.5) * one(eta - 1 + 0.5) * one(eta - 1)
    const = logpdf(LKJ(eta), np.eye(3))  # det(I) = 1: the log normaliser itself
    assert np.exp(const) * total == pytest.approx(1.0, rel=1e-12)


def test_lkj_grad_matches_finite_differences():
    R = _random_corr(3, np.random.default_rng(7))
    G = logpdf_grad(LKJ(2.5), R)
    h = 1e-6
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        Rp, Rm = R.copy(), R.copy()
        Rp[i, j] = Rp[j, i] = R[i, j] + h
        Rm[i, j] = Rm[j, i] = R[i, j] - h
        fd = (logpdf(LKJ(2.5), Rp) - logpdf(LKJ(2.5), Rm)) / (2 * h)
        assert G[i, j] == pytest.approx(fd, rel=1e-7)
        assert G[j, i] == G[i, j]
    assert np.all(np.diag(G) == 0)


def test_bad_inputs_raise_prior_error():
    with pytest.raises(PriorError, match="broadcast"):
        logpdf(Normal([1.0, 2.0]), [0.0, 1.0, 2.0])
    with pytest.raises(PriorError, match="eta"):
        logpdf(LKJ(0.0), np.eye(2))
    with pytest.raises(PriorError, match="square"):
        logpdf(LKJ(1.0), np.ones(3))
    with pytest.raises(PriorError, match="No numeric log-density"):
        logpdf(object(), 1.0)
