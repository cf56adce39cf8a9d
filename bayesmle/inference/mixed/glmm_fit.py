"""Maximising a GLMM's Laplace / AGQ likelihood jointly over ``(theta, beta)`` (lme4's stage 2).

1. L-BFGS-B on the deviance with its exact gradient, ``theta``'s diagonal bounded below by 0,
   from the GLM fit with ``theta`` = 1 (or the user's start).
2. Polishing: Newton steps on the free coordinates (the Hessian by central differences of the
   exact gradient) with a projected backtracking line search, until the projected gradient is
   at rounding level. A ``theta`` entry that ends within ``1e-7`` of its bound and does not
   lower the deviance there is set to the bound exactly.
3. A coordinate held at its bound with a zero gradient (the deviance is even in each column of
   ``L_b``, so a scalar random effect at 0 always has one) is checked by the gradient just
   inside the bound: if the deviance falls there, 0 is a saddle, not the optimum, and the
   optimiser restarts from inside.

Then the record: ``beta_cov`` is the fixed-effects block of ``2 H^{-1}`` (lme4's default
``use.hessian = TRUE``), ``H`` the Hessian of the deviance in ``(theta, beta)`` restricted to the
free coordinates; ``cov`` maps the same matrix to ``[beta, sd, corr]`` by the delta method, NaN
for components on the boundary.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from bayesmle.inference.mixed.fit import MixedFit
from bayesmle.inference.mixed.glmm_laplace import conditional_b, conditional_sd
from bayesmle.inference.mixed.glmm_objective import Objective
from bayesmle.models.mixed_design import (
    MixedDesign,
    components,
    lambda_factors,
    theta_lower_bounds,
)

__all__ = ["GTOL", "SINGULAR_TOL", "nan_fit", "optimise", "record"]

#: Projected-gradient infinity norm (of the deviance) below which a fit is certified.
GTOL = 1e-5
#: lme4's ``isSingular`` tolerance on the diagonal of ``L_b``.
SINGULAR_TOL = 1e-4
_POLISH_TOL = 1e-10
_POLISH_ROUNDS = 30
_SNAP = 1e-7
_ESCAPES = 3


def _projected(g: np.ndarray, x: np.ndarray, lb: np.ndarray) -> np.ndarray:
    at = np.isfinite(lb) & (x <= lb)
    return np.where(at, np.minimum(g, 0.0), g)


def _snap(obj: Objective, x: np.ndarray, f: float, lb: np.ndarray) -> tuple[np.ndarray, float]:
    near = np.flatnonzero(np.isfinite(lb) & (x > lb) & (x - lb < _SNAP))
    for j in near:
        trial = x.copy()
        trial[j] = lb[j]
        f_trial = obj.safe(trial)[0]
        if f_trial <= f + 1e-10 * max(1.0, abs(f)):
            x, f = trial, f_trial
    return x, f


def _polish(obj: Objective, x: np.ndarray, lb: np.ndarray) -> tuple[np.ndarray, int]:
    """Newton steps on the free coordinates until the projected gradient is at rounding."""
    rounds = 0
    f, g = obj.safe(x)
    while rounds < _POLISH_ROUNDS:
        rounds += 1
        x, f = _snap(obj, x, f, lb)
        f, g = obj.safe(x)
        pg = _projected(g, x, lb)
        if not np.isfinite(f) or np.max(np.abs(pg), initial=0.0) < _POLISH_TOL:
            break
        free = ~(np.isfinite(lb) & (x <= lb) & (g >= 0))
        H = obj.hessian(x, free)[np.ix_(free, free)]
        if not np.all(np.isfinite(H)):
            break
        evals, evecs = np.linalg.eigh(H)
        floor = 1e-8 * max(1.0, float(np.max(np.abs(evals))))
        evals = np.maximum(np.abs(evals), floor)
        step = -(evecs @ ((evecs.T @ g[free]) / evals))
        dec = float(-g[free] @ step)
        norm = np.max(np.abs(pg))
        t, accepted = 1.0, False
        for _ in range(40):
            trial = x.copy()
            trial[free] += t * step
            trial = np.maximum(trial, lb)
            f_t, g_t = obj.safe(trial)
            if np.isfinite(f_t) and (
                    f_t < f - 1e-4 * t * dec or
                    (f_t <= f + 1e-11 * max(1.0, abs(f))
                     and np.max(np.abs(_projected(g_t, trial, lb))) < norm)):
                accepted = True
                break
            t /= 2
        if not accepted:
            break
        x = trial
    return x, rounds


def _saddle_escape(obj: Objective, x: np.ndarray, g: np.ndarray, lb: np.ndarray
                   ) -> np.ndarray | None:
    """A point inside the bound from which the deviance falls, if ``x`` is a boundary saddle."""
    held = np.flatnonzero(np.isfinite(lb) & (x <= lb) & (np.abs(g) <= GTOL))
    for j in held:
        inside = x.copy()
        inside[j] = lb[j] + 1e-3
        f_in, g_in = obj.safe(inside)
        if np.isfinite(f_in) and g_in[j] < -1e-8:
            inside[j] = lb[j] + 0.5
            return inside
    return None


def optimise(obj: Objective, x0: np.ndarray, max_iter: int) -> dict:
    """Minimise the deviance from ``x0``: L-BFGS-B, polishing, saddle checks at the bounds."""
    design = obj.st.design
    lb = np.concatenate([theta_lower_bounds(design), np.full(design.p, -np.inf)])
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lb]
    x = np.maximum(np.asarray(x0, dtype=float), lb)
    n_iter, message = 0, ""
    for _ in range(_ESCAPES + 1):
        res = scipy.optimize.minimize(
            obj.safe, x, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": max_iter, "maxfun": 20 * max_iter, "ftol": 1e-15,
                     "gtol": 1e-9, "maxcor": 20})
        n_iter += int(res.nit)
        message = str(res.message)
        x, rounds = _polish(obj, np.asarray(res.x, dtype=float), lb)
        n_iter += rounds
        f, g = obj.safe(x)
        if not np.isfinite(f):
            break
        restart = _saddle_escape(obj, x, g, lb)
        if restart is None:
            break
        x = restart
        message = "restarted from inside a bound where the deviance fell"
    f, g = obj.safe(x)
    return {"x": x, "f": f, "g": g, "lb": lb, "n_iter": n_iter, "message": message}


def _natural_jacobian(design: MixedDesign, theta: np.ndarray) -> np.ndarray:
    """``d [sd, corr] / d theta`` (NaN where an sd is 0)."""
    n_sd, n_corr = len(design.sd_labels()), len(design.corr_labels())
    J = np.zeros((n_sd + n_corr, theta.size))
    s_at, c_at, t_at = 0, n_sd, 0
    for block, L in zip(design.blocks, lambda_factors(design, theta), strict=True):
        k = block.k
        S = L @ L.T
        sd = np.sqrt(np.clip(np.diag(S), 0.0, None))
        iu = np.triu_indices(k, 1)
        for j in range(k):
            for i in range(j, k):
                E = np.zeros((k, k))
                E[i, j] = 1.0
                dS = E @ L.T + L @ E.T
                with np.errstate(divide="ignore", invalid="ignore"):
                    dsd = np.diag(dS) / (2 * sd)
                    J[s_at:s_at + k, t_at] = dsd
                    if k >= 2:
                        rho = S[iu] / (sd[iu[0]] * sd[iu[1]])
                        drho = dS[iu] / (sd[iu[0]] * sd[iu[1]]) - rho * (
                            dsd[iu[0]] / sd[iu[0]] + dsd[iu[1]] / sd[iu[1]])
                        J[c_at:c_at + len(iu[0]), t_at] = drho
                t_at += 1
        s_at += k
        if k >= 2:
            c_at += len(iu[0])
    return J


def _boundary(design: MixedDesign, theta: np.ndarray, sd: np.ndarray, corr: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the sd and corr components on the boundary."""
    sd_at = sd < SINGULAR_TOL
    corr_at = np.zeros(corr.size, dtype=bool)
    s_at = c_at = 0
    for block, L in zip(design.blocks, lambda_factors(design, theta), strict=True):
        k = block.k
        if k >= 2:
            iu = np.triu_indices(k, 1)
            s = sd[s_at:s_at + k]
            for a, (i, j) in enumerate(zip(*iu, strict=True)):
                r = corr[c_at + a]
                ends = (k == 2 and L[1, 1] < SINGULAR_TOL) or (np.isfinite(r) and
                                                                1 - abs(r) < 1e-6)
                corr_at[c_at + a] = bool(ends and s[i] >= SINGULAR_TOL and s[j] >= SINGULAR_TOL)
            c_at += len(iu[0])
        s_at += k
    return sd_at, corr_at


def record(obj: Objective, opt: dict, method: str) -> MixedFit:
    """The :class:`MixedFit` at the optimiser's end point."""
    st = obj.st
    design = st.design
    x, f, g, lb = opt["x"], opt["f"], opt["g"], opt["lb"]
    nt, p = design.n_theta, design.p
    theta, beta = x[:nt], x[nt:]
    at = np.isfinite(lb) & (x <= lb)
    free = ~at
    hess = obj.hessian(x)
    Hf = hess[np.ix_(free, free)]
    cov_x = np.full(hess.shape, np.nan)
    pd = False
    if np.all(np.isfinite(Hf)):
        try:
            np.linalg.cholesky(Hf)
            pd = True
            cov_x[np.ix_(free, free)] = 2.0 * np.linalg.inv(Hf)
        except np.linalg.LinAlgError:
            pd = False
    sd, corr = components(design, theta)
    sd_at, corr_at = _boundary(design, theta, sd, corr)
    J = np.zeros((p + sd.size + corr.size, x.size))
    J[:p, nt:] = np.eye(p)
    J[p:, :nt] = _natural_jacobian(design, theta)
    Jf = J[:, free]
    cov = Jf @ cov_x[np.ix_(free, free)] @ Jf.T
    bad = np.concatenate([np.zeros(p, dtype=bool), sd_at | ~np.isfinite(sd),
                          corr_at | ~np.isfinite(corr)])
    cov[bad, :] = np.nan
    cov[:, bad] = np.nan
    grad_norm = float(np.max(np.abs(_projected(g, x, lb)), initial=0.0))
    converged = bool(np.isfinite(f) and grad_norm <= GTOL and pd)
    if converged:
        message = "converged: projected gradient at rounding level, Hessian positive definite"
    elif not pd:
        message = ("the Hessian of the deviance on the free coordinates is not positive "
                   f"definite ({opt['message']})")
    else:
        message = f"the projected gradient norm is {grad_norm:.3g} > {GTOL} ({opt['message']})"
    mode = obj.mode(x)
    boundary = tuple([lab for lab, b in zip(design.sd_labels(), sd_at, strict=True) if b]
                     + [lab for lab, b in zip(design.corr_labels(), corr_at, strict=True) if b])
    diag = np.isfinite(theta_lower_bounds(design))
    loglik = -0.5 * f
    return MixedFit(
        method=method, beta=beta.copy(), theta=theta.copy(), sigma=None, sd=sd, corr=corr,
        loglik=loglik, criterion=f, logp=loglik, beta_cov=cov_x[nt:, nt:].copy(), cov=cov,
        x=x.copy(), grad=g, hess=hess, coords="theta_beta", converged=converged,
        grad_norm=grad_norm, n_iter=int(opt["n_iter"]), n_eval=int(obj.n_eval),
        message=message, singular=bool(np.any(theta[diag] < SINGULAR_TOL)), boundary=boundary,
        b=conditional_b(st, mode), b_sd=conditional_sd(st, mode), nagq=obj.nagq)


def nan_fit(design: MixedDesign, method: str, nagq: int, message: str) -> MixedFit:
    """The record of a fit whose optimum does not exist: every estimate NaN, not converged."""
    nt, p, q = design.n_theta, design.p, design.q
    m = p + len(design.sd_labels()) + len(design.corr_labels())
    nan = np.nan
    return MixedFit(
        method=method, beta=np.full(p, nan), theta=np.full(nt, nan), sigma=None,
        sd=np.full(len(design.sd_labels()), nan), corr=np.full(len(design.corr_labels()), nan),
        loglik=nan, criterion=nan, logp=nan, beta_cov=np.full((p, p), nan),
        cov=np.full((m, m), nan), x=np.full(nt + p, nan), grad=np.full(nt + p, nan),
        hess=np.full((nt + p, nt + p), nan), coords="theta_beta", converged=False,
        grad_norm=nan, n_iter=0, n_eval=0, message=message, singular=False, boundary=(),
        b=np.full(q, nan), b_sd=np.full(q, nan), nagq=nagq)
