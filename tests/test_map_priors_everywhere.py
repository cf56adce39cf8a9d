"""MAP with Laplace and Gaussian priors on the intercept *and* the slopes, every regression family.

What is checked, for linear, logistic, Poisson (with an exposure), negative binomial (NB2),
softmax (3 classes), Student-t and least-absolute-deviations regressions, with Laplace or Normal
priors on the intercept, the slopes, or both:

1. ``bm.fit(spec, "map")`` certifies its answer (``converged``) without a warning;
2. its parameters equal a reference solve of the same penalised objective;
3. the coordinates it holds exactly at a Laplace centre (``== mu``) are exactly those of the
   reference, so kinks are neither missed (a value 1e-11 off the centre) nor invented;
4. the subgradient (KKT) conditions hold at the *library's* answer, with our own gradient.

The objective is the Jacobian-free log posterior in the natural parametrisation (what
``pymc.find_MAP`` maximises): log-likelihood + log prior of every parameter evaluated at the
parameter itself (HalfNormal density at ``sigma``, no log-Jacobian).

Why the reference is independent: it is written here from the textbook densities, in numpy and
scipy, with hand-derived gradients and Hessians (checked against finite differences below), and
shares no code or parametrisation with the library (no standardisation, no QR, no PyTensor). It
locates the optimum by L-BFGS-B on the smooth split ``w = mu + u - v``, ``u, v >= 0`` (log scale
for the positive parameters, which moves the optimum nowhere since no Jacobian is added), then
runs an active-set Newton method in float64 on the free coordinates until the Newton decrement
is at rounding level, and certifies the zero pattern by strict complementarity. The
least-absolute-deviations likelihood is piecewise linear in the coefficients, so its reference
is a linear programme in *dual* form (the library solves the primal), snapped to its vertex and
certified by a zero duality gap, alternated with the closed-form scale step.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.optimize
import scipy.special as sc

import bayesmle as bm
from bayesmle import models

LOG_2PI = np.log(2.0 * np.pi)


# ---------------------------------------------------------------------------------------------
# Priors, described here (not read back from the library's prior objects)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pr:
    """A prior: ``kind`` and its numbers (scale/location, or Gamma shape/rate)."""

    kind: str
    scale: float = 1.0
    mu: float = 0.0
    rate: float = 1.0

    def to_bm(self) -> bm.Prior:
        return {
            "flat": lambda: bm.Flat(),
            "normal": lambda: bm.Normal(self.scale, mu=self.mu),
            "laplace": lambda: bm.Laplace(self.scale, mu=self.mu),
            "halfflat": lambda: bm.HalfFlat(),
            "halfnormal": lambda: bm.HalfNormal(self.scale),
            "gamma": lambda: bm.Gamma(self.scale, self.rate),
        }[self.kind]()

    def __str__(self) -> str:
        if self.kind in ("flat", "halfflat"):
            return self.kind
        if self.kind == "gamma":
            return f"gamma({self.scale:g},{self.rate:g})"
        loc = f",mu={self.mu:g}" if self.mu else ""
        return f"{self.kind}({self.scale:g}{loc})"


def flat():
    return Pr("flat")


def normal(scale, mu=0.0):
    return Pr("normal", scale, mu)


def laplace(b, mu=0.0):
    return Pr("laplace", b, mu)


def halfflat():
    return Pr("halfflat")


def halfnormal(scale):
    return Pr("halfnormal", scale)


def gamma(shape, rate):
    return Pr("gamma", shape, rate=rate)


def _positive_prior(p: Pr, x: float) -> tuple[float, float, float]:
    """Log-density of a prior on a positive parameter at ``x`` and its two derivatives."""
    if p.kind == "halfflat":
        return 0.0, 0.0, 0.0
    if p.kind == "halfnormal":
        s = p.scale
        return 0.5 * np.log(2.0 / np.pi) - np.log(s) - x**2 / (2 * s**2), -x / s**2, -1 / s**2
    if p.kind == "gamma":
        a, r = p.scale, p.rate
        lp = a * np.log(r) - sc.gammaln(a) + (a - 1) * np.log(x) - r * x
        return lp, (a - 1) / x - r, -(a - 1) / x**2
    raise ValueError(p.kind)


# ---------------------------------------------------------------------------------------------
# Likelihoods: per-observation log-density and derivatives in eta and the extra parameters
# ---------------------------------------------------------------------------------------------
def _gaussian(eta, y, e):
    (s,) = e
    r = y - eta
    ll = -0.5 * LOG_2PI - np.log(s) - r**2 / (2 * s**2)
    d1, d2 = r / s**2, np.full_like(r, -1 / s**2)
    de = (-1 / s + r**2 / s**3)[:, None]
    dee = (1 / s**2 - 3 * r**2 / s**4)[:, None, None]
    dne = (-2 * r / s**3)[:, None]
    return ll, d1, d2, de, dee, dne


def _bernoulli(eta, y, e):
    p = sc.expit(eta)
    ll = y * eta - np.logaddexp(0.0, eta)
    return ll, y - p, -p * (1 - p), None, None, None


def _poisson(eta, y, e):
    mu = np.exp(eta)
    return y * eta - mu - sc.gammaln(y + 1), y - mu, -mu, None, None, None


def _negbin(eta, y, e):
    """NB2 with mean mu = exp(eta) and Var = mu + alpha mu^2, written in r = 1/alpha."""
    (a,) = e
    r = 1.0 / a
    mu = np.exp(eta)
    rm = r + mu
    ll = (sc.gammaln(y + r) - sc.gammaln(r) - sc.gammaln(y + 1)
          - r * np.log1p(mu / r) + y * (eta - np.log(rm)))
    d1 = r * (y - mu) / rm
    d2 = -r * mu * (r + y) / rm**2
    l_r = sc.digamma(y + r) - sc.digamma(r) - np.log1p(mu / r) + (mu - y) / rm
    l_rr = sc.polygamma(1, y + r) - sc.polygamma(1, r) + 1 / r - 1 / rm - (mu - y) / rm**2
    l_re = mu * (y - mu) / rm**2
    # chain rule to alpha: dr/da = -r^2, d2r/da2 = 2 r^3
    de = (-l_r * r**2)[:, None]
    dee = (l_rr * r**4 + 2 * l_r * r**3)[:, None, None]
    dne = (-l_re * r**2)[:, None]
    return ll, d1, d2, de, dee, dne


def _student_t(eta, y, e):
    s, nu = e
    r = y - eta
    A = nu * s**2 + r**2
    ll = (sc.gammaln((nu + 1) / 2) - sc.gammaln(nu / 2) - 0.5 * np.log(np.pi)
          + 0.5 * nu * np.log(nu) + nu * np.log(s) - 0.5 * (nu + 1) * np.log(A))
    d1 = (nu + 1) * r / A
    d2 = -(nu + 1) * (nu * s**2 - r**2) / A**2
    l_s = nu / s - (nu + 1) * nu * s / A
    l_n = (0.5 * sc.digamma((nu + 1) / 2) - 0.5 * sc.digamma(nu / 2) + 0.5 * np.log(nu) + 0.5
           + np.log(s) - 0.5 * np.log(A) - (nu + 1) * s**2 / (2 * A))
    l_ss = -nu / s**2 - nu * (nu + 1) * (A - 2 * nu * s**2) / A**2
    l_sn = 1 / s - s * (2 * nu + 1) / A + nu * (nu + 1) * s**3 / A**2
    l_nn = (0.25 * sc.polygamma(1, (nu + 1) / 2) - 0.25 * sc.polygamma(1, nu / 2) + 0.5 / nu
            - s**2 / A + (nu + 1) * s**4 / (2 * A**2))
    l_es = -2 * nu * (nu + 1) * s * r / A**2
    l_en = r / A - (nu + 1) * r * s**2 / A**2
    de = np.stack([l_s, l_n], axis=1)
    dee = np.stack([np.stack([l_ss, l_sn], axis=1), np.stack([l_sn, l_nn], axis=1)], axis=1)
    dne = np.stack([l_es, l_en], axis=1)
    return ll, d1, d2, de, dee, dne


FAMILIES = {"gaussian": _gaussian, "bernoulli": _bernoulli, "poisson": _poisson,
            "negbin": _negbin, "student_t": _student_t}


# ---------------------------------------------------------------------------------------------
# The problem and its objective
# ---------------------------------------------------------------------------------------------
@dataclass
class Problem:
    """A penalised objective: minus the Jacobian-free log posterior.

    The parameter vector is ``theta = [B.ravel(), extras]`` with ``B`` of shape (d + 1,) or
    (d + 1, K - 1) for softmax: row 0 is the intercept, rows 1..d the slopes.
    """

    family: str  # gaussian, bernoulli, poisson, negbin, student_t, softmax, lad
    X: np.ndarray
    y: np.ndarray
    intercept: Pr
    coef: Pr
    extras: dict[str, Pr] = field(default_factory=dict)
    exposure: np.ndarray | None = None

    def __post_init__(self):
        n, d = self.X.shape
        self.n, self.d = n, d
        self.Z = np.hstack([np.ones((n, 1)), self.X])
        self.k = int(self.y.max()) if self.family == "softmax" else 0  # K - 1
        width = max(self.k, 1)
        self.p = (d + 1) * width
        self.offset = np.zeros(n) if self.exposure is None else np.log(self.exposure)
        rows = [self.intercept] + [self.coef] * d
        per = [p for p in rows for _ in range(width)]
        self.normal = np.array([p.kind == "normal" for p in per])
        self.l1 = np.array([p.kind == "laplace" for p in per])
        self.scale = np.array([p.scale for p in per])
        self.center = np.array([p.mu for p in per])
        self.names = list(self.extras)
        self.size = self.p + len(self.names)

    # -- conversions ---------------------------------------------------------------------------
    def spec(self):
        common = {"prior": self.coef.to_bm(), "intercept_prior": self.intercept.to_bm()}
        ex = {f"{k}_prior": v.to_bm() for k, v in self.extras.items()}
        X, y = self.X, self.y
        match self.family:
            case "gaussian":
                return models.linear_regression(X, y, **common, **ex)
            case "bernoulli":
                return models.logistic_regression(X, y, **common)
            case "poisson":
                return models.poisson_regression(X, y, exposure=self.exposure, **common)
            case "negbin":
                return models.negative_binomial_regression(X, y, exposure=self.exposure,
                                                           **common, **ex)
            case "softmax":
                return models.softmax_regression(X, y, **common)
            case "student_t":
                return models.robust_regression(X, y, noise="student_t", **common, **ex)
            case "lad":
                return models.robust_regression(X, y, noise="laplace", **common, **ex)
        raise ValueError(self.family)

    def theta_of(self, params: dict) -> np.ndarray:
        """The library's answer as our parameter vector."""
        width = max(self.k, 1)
        B = np.vstack([np.reshape(params["intercept"], (1, width)),
                       np.reshape(params["coef"], (self.d, width))])
        return np.concatenate([B.ravel(), [float(params[k]) for k in self.names]])

    # -- objective -----------------------------------------------------------------------------
    def smooth(self, theta, hessian=True):
        """Minus the log posterior without the Laplace terms: value, gradient, Hessian."""
        p = self.p
        B, e = theta[:p], theta[p:]
        if self.family == "softmax":
            Bm = B.reshape(self.d + 1, self.k)
            eta = np.hstack([np.zeros((self.n, 1)), self.Z @ Bm])
            lse = sc.logsumexp(eta, axis=1)
            f = -(eta[np.arange(self.n), self.y] - lse).sum()
            P = np.exp(eta[:, 1:] - lse[:, None])
            Y = (self.y[:, None] == np.arange(1, self.k + 1)).astype(float)
            g = -(self.Z.T @ (Y - P)).ravel()
            H = None
            if hessian:
                W = P[:, :, None] * (np.eye(self.k)[None] - P[:, None, :])
                H = np.einsum("ij,il,ikm->jklm", self.Z, self.Z, W).reshape(p, p)
        else:
            eta = self.Z @ B + self.offset
            ll, d1, d2, de, dee, dne = FAMILIES[self.family](eta, self.y, e)
            f = -ll.sum()
            g = np.empty(self.size)
            g[:p] = -self.Z.T @ d1
            H = np.empty((self.size, self.size)) if hessian else None
            if hessian:
                H[:p, :p] = self.Z.T @ (-d2[:, None] * self.Z)
            if de is not None:
                g[p:] = -de.sum(axis=0)
                if hessian:
                    H[:p, p:] = -self.Z.T @ dne
                    H[p:, :p] = H[:p, p:].T
                    H[p:, p:] = -dee.sum(axis=0)
        nm, s, c = self.normal, self.scale, self.center
        z = (B[nm] - c[nm]) / s[nm]
        f += (0.5 * z**2 + np.log(s[nm]) + 0.5 * LOG_2PI).sum()
        g[:p][nm] += z / s[nm]
        if hessian:
            H[np.flatnonzero(nm), np.flatnonzero(nm)] += 1 / s[nm] ** 2
        for i, name in enumerate(self.names):
            lp, dlp, d2lp = _positive_prior(self.extras[name], e[i])
            f -= lp
            g[p + i] -= dlp
            if hessian:
                H[p + i, p + i] -= d2lp
        return f, g, H

    def penalty(self, theta):
        """The Laplace terms: sum of log(2b) + |w - mu| / b."""
        w, b, c = theta[:self.p][self.l1], self.scale[self.l1], self.center[self.l1]
        return float((np.log(2 * b) + np.abs(w - c) / b).sum())

    def objective(self, theta):
        if np.any(theta[self.p:] <= 0):
            return np.inf
        return self.smooth(theta, hessian=False)[0] + self.penalty(theta)


# ---------------------------------------------------------------------------------------------
# Reference solve for the smooth likelihoods: L-BFGS-B on the split, then active-set Newton
# ---------------------------------------------------------------------------------------------
def _start(prob: Problem) -> np.ndarray:
    theta = np.zeros(prob.size)
    y = prob.y
    if prob.family == "gaussian" or prob.family == "student_t":
        theta[0] = np.median(y)
    elif prob.family == "bernoulli":
        theta[0] = sc.logit(np.clip(y.mean(), 0.05, 0.95))
    elif prob.family in ("poisson", "negbin"):
        theta[0] = np.log(y.mean() + 0.5) - prob.offset.mean()
    start = {"sigma": np.std(y - np.median(y)), "alpha": 0.5, "nu": 5.0}
    for i, name in enumerate(prob.names):
        theta[prob.p + i] = start[name]
    return theta


def _locate(prob: Problem) -> np.ndarray:
    """Approximate optimum: L-BFGS-B with w = mu + u - v on the Laplace coordinates."""
    p, L = prob.p, np.flatnonzero(prob.l1)
    N = np.setdiff1d(np.arange(p), L)
    m, nl = len(prob.names), len(L)
    b, c = prob.scale[L], prob.center[L]
    theta0 = _start(prob)

    def unpack(zv):
        theta = np.empty(prob.size)
        theta[N] = zv[:len(N)]
        theta[p:] = np.exp(zv[len(N):len(N) + m])
        u, v = zv[len(N) + m:len(N) + m + nl], zv[len(N) + m + nl:]
        theta[L] = c + u - v
        return theta, u, v

    def fun(zv):
        theta, u, v = unpack(zv)
        f, g, _ = prob.smooth(theta, hessian=False)
        grad = np.concatenate([g[N], g[p:] * theta[p:], g[L] + 1 / b, -g[L] + 1 / b])
        return f + ((u + v) / b).sum(), grad

    z0 = np.concatenate([theta0[N], np.log(theta0[p:]),
                         np.maximum(theta0[L] - c, 0), np.maximum(c - theta0[L], 0)])
    bounds = [(None, None)] * (len(N) + m) + [(0.0, None)] * (2 * nl)
    res = scipy.optimize.minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                                  options={"maxiter": 50_000, "maxcor": 30, "ftol": 1e-15,
                                           "gtol": 1e-11})
    return unpack(res.x)[0]


def _newton(prob: Problem, theta, kink, sign):
    """Newton on the free coordinates with the Laplace signs held fixed.

    Returns the polished point and the Laplace coordinates that reached their centre.
    """
    free = ~kink
    w = np.zeros(prob.size)
    w[:prob.p][prob.l1] = 1 / prob.scale[prob.l1]
    for _ in range(200):
        f, g, H = prob.smooth(theta)
        gf = (g + sign * w)[free]
        step = np.zeros(prob.size)
        step[free] = np.linalg.solve(H[np.ix_(free, free)], -gf)
        dec = float(-gf @ step[free])
        assert dec >= -1e-12 * max(1.0, abs(f)), "Hessian of the reference not positive definite"
        # Largest step keeping free Laplace coordinates on their side and the extras positive.
        t_max, hit = 1.0, None
        d = step[:prob.p]
        off = theta[:prob.p] - prob.center
        for j in np.flatnonzero(prob.l1 & free[:prob.p]):
            if off[j] * d[j] < 0 and -off[j] / d[j] < t_max:
                t_max, hit = -off[j] / d[j], j
        pos = step[prob.p:] < 0
        if pos.any():
            t_pos = np.min(-0.99 * theta[prob.p:][pos] / step[prob.p:][pos])
            if t_pos < t_max:
                t_max, hit = t_pos, None
        f0 = prob.objective(theta)
        t = t_max
        while prob.objective(theta + t * step) > f0 - 1e-4 * t * dec + 1e-14 * abs(f0):
            t *= 0.5
            assert t > 1e-12, "reference line search failed"
        new = theta + t * step
        if hit is not None and t == t_max:
            new[hit] = prob.center[hit]
            kink = kink.copy()
            kink[hit], free = True, ~kink
            sign[hit] = 0.0
            theta = new
            continue
        theta = new
        if dec < 1e-26 * max(1.0, abs(f0)):
            break
    return theta, kink


def reference_map(prob: Problem):
    """The optimum, its Laplace coordinates at their centre, and its smooth gradient there."""
    theta = _locate(prob)
    p = prob.p
    l1 = np.zeros(prob.size, dtype=bool)
    l1[:p] = prob.l1
    centre = np.zeros(prob.size)
    centre[:p] = prob.center
    bw = np.full(prob.size, np.inf)
    bw[:p][prob.l1] = prob.scale[prob.l1]
    tol = 1e-6 * (1 + np.abs(centre))
    kink = l1 & (np.abs(theta - centre) <= tol)
    theta[kink] = centre[kink]
    for _ in range(20):
        sign = np.where(l1 & ~kink, np.sign(theta - centre), 0.0)
        theta, kink = _newton(prob, theta, kink, sign)
        _, g, _ = prob.smooth(theta)
        # Strict complementarity decides the pattern; release the worst violated kink.
        slack = np.where(kink, np.abs(g) - 1 / bw, -np.inf)
        j = int(np.argmax(slack))
        if slack[j] <= 0:
            break
        kink[j] = False
        theta[j] = centre[j] - np.sign(g[j]) * 1e-12 * (1 + abs(centre[j]))
    else:  # pragma: no cover
        raise AssertionError("reference active set did not settle")
    _, g, H = prob.smooth(theta)
    # The test problems must be non-degenerate for a zero pattern to be a sharp statement:
    # kinks strictly inside their subdifferential, free Laplace coordinates clearly off centre.
    assert np.all(np.abs(g[kink]) <= 0.99 / bw[kink]), "degenerate kink in a test problem"
    off = np.abs(theta - centre)[l1 & ~kink]
    assert np.all(off > 1e-4 * (1 + np.abs(centre[l1 & ~kink]))), "Laplace coordinate ~ centre"
    return theta, kink, g, H


# ---------------------------------------------------------------------------------------------
# Least absolute deviations: a dual linear programme (Laplace priors) or dual box QP (Normal)
# ---------------------------------------------------------------------------------------------
def _lad_beta_laplace(prob: Problem, sigma: float):
    """argmin_beta sum|y - Z beta| + sigma * sum_j |beta_j - mu_j| / b_j via the dual LP.

    Dual: max u.(y - Z mu) s.t. |u_i| <= 1, |(Z'u)_j| <= sigma / b_j (= 0 for flat coordinates).
    Residuals with |u_i| < 1 are zero and coordinates with |(Z'u)_j| < sigma/b_j sit at mu_j;
    the square system of those equations is the primal vertex. Certified by a zero duality gap.
    """
    Z, y, n = prob.Z, prob.y, prob.n
    wts = np.where(prob.l1, sigma / prob.scale, 0.0)
    c = prob.center
    res = scipy.optimize.linprog(-(y - Z @ c), A_ub=np.vstack([Z.T, -Z.T]),
                                 b_ub=np.concatenate([wts, wts]), bounds=[(-1, 1)] * n,
                                 method="highs-ds", options={"primal_feasibility_tolerance": 1e-10,
                                                             "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0, res.message
    u = res.x
    zero_res = np.abs(u) < 1 - 1e-7
    at_c = prob.l1 & (np.abs(Z.T @ u) < wts * (1 - 1e-7))
    assert zero_res.sum() + at_c.sum() == prob.p, "degenerate LAD vertex in a test problem"
    A = np.vstack([Z[zero_res], np.eye(prob.p)[at_c]])
    beta = np.linalg.solve(A, np.concatenate([y[zero_res], c[at_c]]))
    beta[at_c] = c[at_c]
    primal = np.abs(y - Z @ beta).sum() + (wts * np.abs(beta - c)).sum()
    dual = u @ (y - Z @ c)
    assert primal - dual <= 1e-10 * primal, "LAD duality gap"
    return beta, at_c


def _lad_beta_normal(prob: Problem, sigma: float, u0=None):
    """argmin_beta sum|y - Z beta| / sigma + sum_j (beta_j - mu_j)^2 / (2 s_j^2) (Normal priors).

    Dual: max u.(y - Z mu)/sigma - u'Z D Z'u / (2 sigma^2), |u_i| <= 1, beta = mu + D Z'u / sigma
    (D = diag s^2), by L-BFGS-B; residuals with |u_i| < 1 are zero, which fixes u exactly.
    """
    assert prob.normal.all(), "this reference needs Normal priors on every coefficient"
    Z, y, c = prob.Z, prob.y, prob.center
    D = prob.scale**2
    M = (Z * D) @ Z.T / sigma**2
    q = (y - Z @ c) / sigma

    def neg(u):
        Mu = M @ u
        return 0.5 * u @ Mu - q @ u, Mu - q

    u0 = np.zeros(prob.n) if u0 is None else u0
    res = scipy.optimize.minimize(neg, u0, jac=True, method="L-BFGS-B",
                                  bounds=[(-1, 1)] * prob.n,
                                  options={"maxiter": 50_000, "ftol": 1e-16, "gtol": 1e-13})
    u = res.x
    inner = np.abs(u) < 1 - 1e-6
    u[~inner] = np.sign(u[~inner])
    rhs = q[inner] - M[np.ix_(inner, ~inner)] @ u[~inner]
    u[inner] = np.linalg.solve(M[np.ix_(inner, inner)], rhs)
    assert np.all(np.abs(u[inner]) < 1), "LAD-QP active set"
    beta = c + D * (Z.T @ u) / sigma
    r = y - Z @ beta
    assert np.all(np.sign(r[~inner]) == u[~inner]), "LAD-QP active set"
    return beta, u


def _sigma_for(prob: Problem, abs_sum: float) -> float:
    """The sigma maximising -n log(2 sigma) - S / sigma + log p(sigma)."""
    prior = prob.extras["sigma"]

    def score(s):
        return prob.n / s - abs_sum / s**2 - _positive_prior(prior, s)[1]

    hi = abs_sum / prob.n
    while score(hi) < 0:
        hi *= 2
    return scipy.optimize.brentq(score, hi * 1e-3, hi, xtol=1e-300, rtol=1e-15)


def lad_objective(prob: Problem, theta) -> float:
    beta, s = theta[:prob.p], theta[prob.p]
    ll = -prob.n * np.log(2 * s) - np.abs(prob.y - prob.Z @ beta).sum() / s
    nm, sc_, c = prob.normal, prob.scale, prob.center
    lp = -(0.5 * ((beta[nm] - c[nm]) / sc_[nm]) ** 2 + np.log(sc_[nm]) + 0.5 * LOG_2PI).sum()
    return -ll - lp - _positive_prior(prob.extras["sigma"], s)[0] + prob.penalty(theta)


def reference_lad(prob: Problem):
    """Alternate the exact coefficient step and the exact sigma step to their fixed point."""
    sigma = np.mean(np.abs(prob.y - np.median(prob.y)))
    if prob.l1.any() or not prob.normal.any():
        kink = None
        for _ in range(100):
            beta, at_c = _lad_beta_laplace(prob, sigma)
            new = _sigma_for(prob, np.abs(prob.y - prob.Z @ beta).sum())
            if np.array_equal(at_c, kink) and abs(new - sigma) <= 1e-15 * sigma:
                break
            sigma, kink = new, at_c
        theta = np.concatenate([beta, [sigma]])
        return theta, np.concatenate([at_c, [False]])

    dual = [None]

    def score(s):  # envelope theorem: d/dsigma of the profile objective
        beta, dual[0] = _lad_beta_normal(prob, s, dual[0])
        return (prob.n / s - np.abs(prob.y - prob.Z @ beta).sum() / s**2
                - _positive_prior(prob.extras["sigma"], s)[1])

    lo, hi = 0.5 * sigma, 2 * sigma
    while score(lo) > 0:
        lo /= 2
    while score(hi) < 0:
        hi *= 2
    sigma = scipy.optimize.brentq(score, lo, hi, xtol=1e-300, rtol=1e-15)
    return (np.concatenate([_lad_beta_normal(prob, sigma, dual[0])[0], [sigma]]),
            np.zeros(prob.size, dtype=bool))


def lad_kkt_violation(prob: Problem, theta) -> tuple[float, float]:
    """Worst violation of the coefficient subgradient conditions at ``theta`` (an LP), and the
    relative residual of sigma's score equation.

    0 in d/d beta: -Z'u / sigma + grad(Normal terms) + v / b, with u_i = sign(r_i) unless r_i = 0
    (then |u_i| <= 1) and v_j = sign(beta_j - mu_j) unless beta_j == mu_j (then |v_j| <= 1).
    """
    Z, n, p = prob.Z, prob.n, prob.p
    beta, s = theta[:p], theta[p]
    r = prob.y - Z @ beta
    at0 = np.abs(r) <= 1e-11 * (np.abs(prob.y).max() + np.abs(Z @ beta).max())
    at_c = prob.l1 & (beta == prob.center)
    smooth = np.where(prob.normal, (beta - prob.center) / prob.scale**2, 0.0)
    fixed = (-Z[~at0].T @ np.sign(r[~at0]) / s + smooth
             + np.where(prob.l1 & ~at_c, np.sign(beta - prob.center) / prob.scale, 0.0))
    # unknowns: u (|at0|), v (|at_c|), t; minimise t s.t. |fixed - Z_0'u/s + E v/b| <= t
    nu, nv = int(at0.sum()), int(at_c.sum())
    A = np.hstack([-Z[at0].T / s, np.eye(p)[:, at_c] / prob.scale[at_c]])
    cost = np.zeros(nu + nv + 1)
    cost[-1] = 1.0
    ones = np.ones((p, 1))
    A_ub = np.vstack([np.hstack([A, -ones]), np.hstack([-A, -ones])])
    b_ub = np.concatenate([-fixed, fixed])
    res = scipy.optimize.linprog(cost, A_ub=A_ub, b_ub=b_ub,
                                 bounds=[(-1, 1)] * (nu + nv) + [(0, None)], method="highs")
    assert res.status == 0, res.message
    score = n / s - np.abs(r).sum() / s**2 - _positive_prior(prob.extras["sigma"], s)[1]
    return float(res.x[-1]), float(abs(score) * s / n)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def _data(family: str, seed: int, n: int, coef, intercept, **kw):
    rng = np.random.default_rng(seed)
    coef = np.asarray(coef, dtype=float)
    X = rng.normal(size=(n, coef.shape[0]))
    X[:, 0] += 0.5 * X[:, -1]  # some correlation between predictors
    eta = intercept + X @ coef
    exposure = None
    if family == "gaussian":
        y = eta + kw.get("noise", 1.0) * rng.normal(size=n)
    elif family == "bernoulli":
        y = (rng.random(n) < sc.expit(eta)).astype(np.int64)
    elif family in ("poisson", "negbin"):
        exposure = rng.uniform(0.5, 3.0, size=n)
        mu = exposure * np.exp(eta)
        if family == "negbin":
            a = kw["alpha"]
            mu = rng.gamma(1 / a, a * mu)
        y = rng.poisson(mu)
    elif family == "softmax":
        eta = np.hstack([np.zeros((n, 1)), eta])
        prob = np.exp(eta - sc.logsumexp(eta, axis=1, keepdims=True))
        y = (rng.random(n)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    elif family == "student_t":
        y = eta + kw["scale"] * rng.standard_t(kw["nu"], size=n)
    elif family == "lad":
        y = eta + rng.laplace(size=n)
    else:  # pragma: no cover
        raise ValueError(family)
    return X, y, exposure


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A family, its data-generating parameters and the priors of the MAP."""

    id: str
    family: str
    n: int
    coef: tuple
    intercept: object
    intercept_prior: Pr
    coef_prior: Pr
    extras: tuple = ()
    data_kw: tuple = ()
    seed: int = 0
    marks: tuple = ()

    def problem(self) -> Problem:
        X, y, exposure = _data(self.family, self.seed, self.n, self.coef,
                               np.asarray(self.intercept), **dict(self.data_kw))
        return Problem(self.family, X, y, self.intercept_prior, self.coef_prior,
                       dict(self.extras), exposure)


HN2 = (("sigma", halfnormal(2.0)),)
CASES = [
    # Linear: Laplace intercept with Normal slopes (strong prior: at its centre 0.5; weak: not),
    # Laplace intercept with flat slopes and flat sigma, and the lasso with a Normal intercept.
    Case("linear-int_laplace_strong_mu-slopes_normal", "gaussian", 150, (1.0, -0.5, 0.25), 0.8,
         laplace(0.01, mu=0.5), normal(1.0), HN2, seed=11),
    Case("linear-int_laplace_weak-slopes_normal", "gaussian", 150, (1.0, -0.5, 0.25), 0.8,
         laplace(0.5), normal(1.0), HN2, seed=12),
    Case("linear-int_laplace-slopes_flat-sigma_flat", "gaussian", 120, (1.0, -0.5, 0.25), 0.1,
         laplace(0.05), flat(), (("sigma", halfflat()),), seed=13),
    Case("linear-int_normal-slopes_laplace_mu", "gaussian", 150, (1.0, 0.1, -0.7), 0.8,
         normal(2.0), laplace(0.05, mu=0.1), HN2, seed=14),
    # Logistic: the example (intercept at 0), a weak intercept prior, the l1 slopes.
    Case("logistic-int_laplace_strong-slopes_normal", "bernoulli", 200, (1.0, -0.5, 0.0), 0.3,
         laplace(0.05), normal(1.0), seed=21),
    Case("logistic-int_laplace_weak-slopes_normal", "bernoulli", 200, (1.0, -0.5, 0.0), 0.6,
         laplace(1.0), normal(1.0), seed=22),
    Case("logistic-int_normal-slopes_laplace", "bernoulli", 200, (1.5, 0.0, -1.0), 0.3,
         normal(2.0), laplace(0.05), seed=23),
    # Poisson with exposure: intercept pinned at a non-zero centre; Normal on both.
    Case("poisson-int_laplace_strong_mu-slopes_normal", "poisson", 150, (0.4, -0.3), -0.1,
         laplace(0.01, mu=-0.2), normal(1.0), seed=31),
    Case("poisson-int_laplace_weak-slopes_normal", "poisson", 150, (0.4, -0.3), 0.3,
         laplace(0.5), normal(1.0), seed=33),
    Case("poisson-int_normal-slopes_normal", "poisson", 150, (0.4, -0.3), -0.1,
         normal(0.5, mu=0.2), normal(0.3), seed=32),
    # Negative binomial, alpha with a HalfNormal prior.
    Case("negbin-int_laplace_strong_mu-slopes_normal", "negbin", 200, (0.4, -0.3, 0.0), 0.5,
         laplace(0.01, mu=0.4), normal(1.0), (("alpha", halfnormal(1.0)),), (("alpha", 0.5),),
         seed=43),
    Case("negbin-int_laplace_weak-slopes_normal", "negbin", 200, (0.4, -0.3, 0.0), 0.5,
         laplace(0.2), normal(1.0), (("alpha", halfnormal(1.0)),), (("alpha", 0.5),), seed=41),
    Case("negbin-int_normal-slopes_laplace", "negbin", 200, (0.6, 0.0, -0.4), 0.5,
         normal(2.0), laplace(0.03), (("alpha", halfnormal(1.0)),), (("alpha", 0.5),), seed=42,
         marks=(pytest.mark.slow,)),
    # Softmax, 3 classes: one intercept at its centre and one not; then l1 slopes.
    Case("softmax-int_laplace-slopes_normal", "softmax", 240, ((0.8, -0.5), (0.3, 0.6)),
         (0.0, 0.9), laplace(0.05), normal(1.0), seed=51),
    Case("softmax-int_normal-slopes_laplace", "softmax", 240, ((1.0, 0.0), (0.0, 0.8)),
         (0.2, 0.5), normal(2.0), laplace(0.05), seed=52, marks=(pytest.mark.slow,)),
    # Student-t noise, nu with a Gamma(2, 0.1) prior.
    Case("student_t-int_laplace_strong_mu-slopes_normal", "student_t", 150, (0.8, -0.4), 0.4,
         laplace(0.02, mu=0.3), normal(1.0),
         (("sigma", halfnormal(2.0)), ("nu", gamma(2.0, 0.1))), (("nu", 4.0), ("scale", 1.0)),
         seed=61),
    Case("student_t-int_laplace_weak-slopes_normal", "student_t", 150, (0.8, -0.4), 0.4,
         laplace(1.0), normal(1.0),
         (("sigma", halfnormal(2.0)), ("nu", gamma(2.0, 0.1))), (("nu", 4.0), ("scale", 1.0)),
         seed=62),
]
LAD_CASES = [
    Case("lad-int_laplace_strong-slopes_laplace", "lad", 120, (1.0, 0.0, -0.6), 0.3,
         laplace(0.01), laplace(0.05), HN2, seed=71),
    Case("lad-int_laplace_weak_mu-slopes_laplace", "lad", 120, (1.0, 0.0, -0.6), 0.3,
         laplace(1.0, mu=0.1), laplace(0.05), HN2, seed=72),
]
LAD_NORMAL = Case("lad-int_normal-slopes_normal", "lad", 120, (1.0, 0.0, -0.6), 0.3,
                  normal(2.0), normal(0.5), HN2, seed=73)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
EPS = np.finfo(float).eps
#: Parameters: |library - reference| <= PARAM_SD * (posterior sd of the coordinate). A deviation
#: of 1e-6 sd lowers the log posterior by ~5e-13, so this is "equal to the optimum" at double
#: precision; in absolute terms it is 5e-8..3e-7 for these problems (sd 0.05..0.3), i.e. the
#: ~1e-7 relative agreement of a polished Newton solution. It is 14x stricter than the
#: library's own certificate (Newton decrement <= 1e-10, i.e. ~1.4e-5 sd), which promises more:
#: iterations continue to the limit of double precision (correct fits here agree to <= 1e-12).
PARAM_SD = 1e-6
#: KKT: each coordinate's (sub)gradient residual, divided by the square root of its own
#: curvature (observed information), must be <= KKT_TOL: moving that coordinate alone could then
#: raise the log posterior by at most KKT_TOL**2 / 2 = 5e-13. Scale-free, and growing like
#: sqrt(n) in gradient units.
KKT_TOL = 1e-6
#: Objective: the library's minus log posterior may exceed the reference's by rounding (a few eps
#: of its size) plus the certificate's 1e-10; the failures caught here are 1e-3..1.
GAP_TOL = 1e-10


def _fit_map(prob: Problem):
    """``bm.fit(spec, "map")``, recording ConvergenceWarnings so the report can list them with
    the distances (they still fail the test); any other warning raises as configured."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=bm.ConvergenceWarning)
        res = bm.fit(prob.spec(), "map")
    return res, [f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught]


def _report(case_id, res, lib, ref, gap, problems):
    head = (f"{case_id}: converged={res.converged} ({res.message}); "
            f"max|library - reference| = {np.max(np.abs(lib - ref)):.3g}; "
            f"objective gap (minus log posterior, library - reference) = {gap:.3g}\n"
            f"  reference {np.array2string(ref, precision=10)}\n"
            f"  library   {np.array2string(lib, precision=10)}")
    return "\n".join([head, *(f"  - {p}" for p in problems)])


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "poisson", "negbin", "student_t",
                                    "softmax"])
def test_reference_derivatives_match_finite_differences(family):
    """The reference's hand-written gradients and Hessians, against central differences."""
    extras = {"gaussian": {"sigma": halfnormal(2.0)}, "negbin": {"alpha": halfnormal(1.0)},
              "student_t": {"sigma": halfnormal(2.0), "nu": gamma(2.0, 0.1)}}.get(family, {})
    coef = ((0.5, -1.0), (0.2, 0.3)) if family == "softmax" else (0.5, -0.3)
    a = (0.1, -0.4) if family == "softmax" else 0.3
    X, y, exposure = _data(family, 5, 40, coef, np.asarray(a), alpha=0.5, nu=4.0, scale=1.0)
    prob = Problem(family, X, y, normal(1.0, mu=0.2), normal(0.7), extras, exposure)
    rng = np.random.default_rng(6)
    theta = 0.3 * rng.normal(size=prob.size)
    theta[prob.p:] = rng.uniform(0.5, 3.0, size=len(extras))
    _, g, H = prob.smooth(theta)
    h = 1e-6 * np.maximum(1.0, np.abs(theta))
    for j in range(prob.size):
        e = np.zeros(prob.size)
        e[j] = h[j]
        fp, gp, _ = prob.smooth(theta + e)
        fm, gm, _ = prob.smooth(theta - e)
        assert (fp - fm) / (2 * h[j]) == pytest.approx(g[j], rel=1e-6, abs=1e-6)
        np.testing.assert_allclose((gp - gm) / (2 * h[j]), H[:, j], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_map_equals_penalised_optimum(case):
    prob = case.problem()
    ref, kink_ref, g_ref, H_ref = reference_map(prob)
    p = prob.p
    centre = np.concatenate([prob.center, np.full(prob.size - p, np.nan)])
    l1 = np.concatenate([prob.l1, np.zeros(prob.size - p, dtype=bool)])
    inv_b = np.where(l1, 1 / np.concatenate([prob.scale, np.ones(prob.size - p)]), 0.0)
    # The reference itself: KKT at rounding level (a check of the test, not of the library).
    free_ref = ~kink_ref
    resid_ref = g_ref + np.where(l1 & free_ref, np.sign(ref - centre) * inv_b, 0.0)
    assert np.all(np.abs(resid_ref[free_ref]) <= 1e-9 * np.sqrt(np.diag(H_ref))[free_ref])
    sd = np.sqrt(np.diag(np.linalg.inv(H_ref[np.ix_(free_ref, free_ref)])))
    sd_all = 1 / np.sqrt(np.diag(H_ref))  # for coordinates at a kink (not free)
    sd_all[free_ref] = sd

    res, caught = _fit_map(prob)
    lib = prob.theta_of(res.params)
    f_ref = prob.objective(ref)
    f_lib = prob.objective(lib)
    gap = f_lib - f_ref
    problems = list(caught)
    if not res.converged:
        problems.append("converged is False")
    # (2) parameters
    dev = np.abs(lib - ref) / sd_all
    if not np.all(dev <= PARAM_SD):
        problems.append(f"parameters differ from the reference by up to {dev.max():.3g} "
                        f"posterior sd (tolerance {PARAM_SD:g}) at index {np.argmax(dev)}")
    if gap > GAP_TOL + 4 * EPS * abs(f_ref):
        problems.append(f"objective above the optimum by {gap:.3g}")
    assert gap > -(1e-12 + 8 * EPS * abs(f_ref)), "the library beat the reference: fix the test"
    # (3) zero pattern: exact equality with the Laplace centre
    kink_lib = l1 & (lib == centre)
    if not np.array_equal(kink_lib, kink_ref):
        off = np.flatnonzero(kink_ref & ~kink_lib)
        problems.append(
            f"zero pattern: library holds {np.flatnonzero(kink_lib).tolist()} at the Laplace "
            f"centre, reference {np.flatnonzero(kink_ref).tolist()}"
            + (f" (library off the centre by {np.abs(lib - centre)[off].tolist()})"
               if off.size else ""))
    # (4) KKT at the library's answer, with our gradient
    if np.all(lib[p:] > 0):
        _, g, H = prob.smooth(lib)
        resid = np.where(kink_lib, np.maximum(np.abs(g) - inv_b, 0.0),
                         g + np.where(l1, np.sign(lib - centre) * inv_b, 0.0))
        scaled = np.abs(resid) / np.sqrt(np.diag(H))
        if not np.all(scaled <= KKT_TOL):
            problems.append(f"KKT violated: scaled subgradient residual up to {scaled.max():.3g} "
                            f"(tolerance {KKT_TOL:g}) at index {np.argmax(scaled)}")
    else:
        problems.append("library's positive parameters are not positive")
    assert not problems, _report(case.id, res, lib, ref, gap, problems)


@functools.cache
def _lad_reference(case: Case):
    prob = case.problem()
    ref, kink = reference_lad(prob)
    # The reference is optimal: subgradient conditions (an LP over the dual vector) and sigma's
    # score equation hold at rounding level.
    viol, score = lad_kkt_violation(prob, ref)
    assert viol <= 1e-11 * np.abs(prob.Z).sum(axis=0).max() / ref[-1] and score <= 1e-12
    return prob, ref, kink


def _check_lad(case: Case, rtol: float, atol: float, kkt_tol: float):
    prob, ref, kink_ref = _lad_reference(case)
    res, caught = _fit_map(prob)
    lib = prob.theta_of(res.params)
    f_ref, f_lib = lad_objective(prob, ref), lad_objective(prob, lib)
    gap = f_lib - f_ref
    problems = list(caught)
    if not res.converged:
        problems.append("converged is False")
    if not np.allclose(lib, ref, rtol=rtol, atol=atol):
        problems.append(f"parameters differ (rtol {rtol:g}, atol {atol:g})")
    if gap > GAP_TOL + 4 * EPS * abs(f_ref):
        problems.append(f"objective above the optimum by {gap:.3g}")
    assert gap > -(1e-12 + 8 * EPS * abs(f_ref)), "the library beat the reference: fix the test"
    kink_lib = np.concatenate([prob.l1 & (lib[:prob.p] == prob.center), [False]])
    if not np.array_equal(kink_lib, kink_ref):
        problems.append(f"zero pattern: library {np.flatnonzero(kink_lib).tolist()}, "
                        f"reference {np.flatnonzero(kink_ref).tolist()}")
    if lib[-1] > 0:
        # Gradient terms are of size sum_i |z_ij| / sigma; the dual solve is exact.
        viol, score = lad_kkt_violation(prob, lib)
        size = np.abs(prob.Z).sum(axis=0).max() / lib[-1]
        if viol > kkt_tol * size or score > kkt_tol:
            problems.append(f"KKT violated: coefficient residual {viol / size:.3g} (relative), "
                            f"sigma score {score:.3g}")
    assert not problems, _report(case.id, res, lib, ref, gap, problems)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in LAD_CASES])
def test_lad_map_with_laplace_priors_equals_lp_optimum(case):
    # Both answers are exact vertices (square linear systems solved in double precision) and
    # sigma solves a 1-D equation to rounding: agreement to ~cond * eps is expected.
    _check_lad(case, rtol=1e-9, atol=1e-12, kkt_tol=1e-9)


def test_lad_reference_with_normal_priors_is_optimal():
    # Outside the xfail below, so that a broken reference cannot hide behind it.
    _lad_reference(LAD_NORMAL)


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="LAD with Gaussian coefficient priors is a quadratic "
                   "programme per sigma; the library falls back to its smooth optimiser and "
                   "reports converged=False (documented in bayesmle/inference/lad.py)")
def test_lad_map_with_normal_priors_equals_qp_optimum():
    # The optimum interpolates some observations (zero residuals) and is solved exactly on that
    # pattern by the reference; a polished solver should agree to ~1e-7 relative.
    _check_lad(LAD_NORMAL, rtol=1e-7, atol=1e-9, kkt_tol=1e-7)
