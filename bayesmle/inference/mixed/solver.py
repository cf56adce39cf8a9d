"""Mixed models in the engine's protocol: ``fit(spec, "mle" | "reml" | "map" | "laplace")``.

A mixed-model spec (``ModelSpec.solver == "mixed"``, from ``bm.models.glm`` with random-effects
terms) declares the *joint* PyMC model -- fixed effects, variance components and the random
effects themselves, non-centred -- which NUTS samples like any other model. The point methods
and the Laplace approximation are defined on the *marginal* likelihood instead, with the random
effects integrated out (the joint mode runs to a degenerate spike at sd = 0, so it is never an
estimator here). This module routes them to the numerical code of this package:

* ``"mle"``: Gaussian -- the exact profiled deviance (:func:`.lmm.fit_lmm`); other families --
  the Laplace approximation of ``glmer`` (``nagq=1``) or adaptive Gauss-Hermite quadrature
  (:func:`.glmm.fit_glmm`);
* ``"reml"`` (Gaussian only): lme4's REML criterion;
* ``"map"``: the marginal posterior mode (:func:`.marginal.fit_marginal`, like ``blme``);
  with flat priors it is the MLE, computed by the MLE's route so that MAP = MLE exactly;
* ``"laplace"``: the mode of the marginal posterior density of the unconstrained parameters
  (log sd, transformed correlations, log sigma; Jacobian included) and draws of its Gaussian.

and turns their :class:`~.fit.MixedFit` into the project's results, with a boundary
("singular") estimate reported as such: it exists, on the boundary of the parameter space.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from bayesmle._validation import MAX_DRAWS, check_int, check_seed
from bayesmle.errors import (
    BoundaryWarning,
    ConvergenceError,
    ConvergenceWarning,
    Diagnostic,
    SpecError,
)
from bayesmle.inference.mixed.fit import MixedFit
from bayesmle.inference.optimize import Optimum
from bayesmle.inference.point import PointResult

if TYPE_CHECKING:
    from bayesmle.inference.laplace import LaplaceResult
    from bayesmle.models.mixed_design import MixedDesign
    from bayesmle.models.spec import ModelSpec

__all__ = ["SOLVER", "applies", "fit_mixed", "mixed_laplace"]

#: ``ModelSpec.solver`` of the mixed-model builders.
SOLVER = "mixed"
#: Quadrature points accepted by ``nagq`` (1 = Laplace), as ``glmer``.
MAX_NAGQ = 25


def applies(spec: ModelSpec) -> bool:
    """Whether ``spec`` is a mixed model (fitted on its marginal likelihood here)."""
    return spec.solver == SOLVER


def _design(spec: ModelSpec) -> MixedDesign:
    from bayesmle.models.mixed import mixed_design

    return mixed_design(spec)


def _check_nagq(design: MixedDesign, nagq) -> int:
    nagq = check_int("nagq", nagq, 1, MAX_NAGQ)
    if nagq > 1:
        if design.family == "gaussian":
            raise SpecError("`nagq` applies to non-Gaussian mixed models; the Gaussian marginal "
                            "likelihood is exact (use nagq=1, the default).")
        if len(design.blocks) != 1 or design.blocks[0].k != 1:
            raise SpecError(
                f"`nagq`={nagq} (adaptive Gauss-Hermite quadrature) needs a single scalar "
                "random effect such as (1 | g); this model has "
                f"{[f'{b.columns} | {b.group}' for b in design.blocks]}. Use nagq=1 (Laplace).")
    return nagq


def _loglik(design: MixedDesign, nagq: int = 1):
    """The marginal log-likelihood at natural parameters, and its gradient when available."""
    if design.family == "gaussian":
        from bayesmle.inference.mixed import lmm

        system = lmm.lmm_system(design)
        grad = getattr(lmm, "gaussian_loglik_grad", None)
        return (partial(lmm.gaussian_loglik, system=system),
                partial(grad, system=system) if grad is not None else None,
                partial(lmm.conditional_modes, system=system))
    from bayesmle.inference.mixed import glmm

    def modes(design, beta, theta, sigma=None):
        return glmm.conditional_modes(design, beta, theta)

    def loglik(design, beta, sd, corr, sigma=None):
        return glmm.glmm_loglik(design, beta, sd, corr, nagq=nagq)

    return loglik, None, modes


def _theta_start(design: MixedDesign, start: np.ndarray | None) -> np.ndarray | None:
    """lme4's theta (relative to sigma) from a natural start ``[beta, sd, corr, sigma]``."""
    if start is None:
        return None
    from bayesmle.models.mixed_design import theta_from_components

    p, n_sd = design.p, len(design.sd_labels())
    sd, corr = start[p:p + n_sd], start[p + n_sd:-1]
    sigma = float(start[-1])
    if not sigma > 0:
        raise SpecError(f"start['sigma'] must be > 0, got {sigma}.")
    return theta_from_components(design, sd, corr, sigma)


def _marginal_priors(spec: ModelSpec) -> dict:
    return {k: spec.priors[k] for k in ("intercept", "coef", "sd", "corr", "sigma")
            if k in spec.priors}


def _estimate(spec: ModelSpec, design: MixedDesign, method: str, *, nagq: int,
              start, max_iter: int, jacobian: bool = False) -> MixedFit:
    if method == "reml":
        if design.family != "gaussian":
            raise SpecError(
                f"method 'reml' is defined for Gaussian mixed models; this model's family is "
                f"{design.family!r}. Use 'mle' (Laplace approximation, nagq=...) or 'map'.")
        from bayesmle.inference.mixed.lmm import fit_lmm

        return fit_lmm(design, "reml", start=_theta_start(design, start), max_iter=max_iter)
    if method == "mle" or (method == "map" and spec.is_flat and not jacobian):
        if design.family == "gaussian":
            from bayesmle.inference.mixed.lmm import fit_lmm

            return fit_lmm(design, "mle", start=_theta_start(design, start), max_iter=max_iter)
        from bayesmle.inference.mixed.glmm import fit_glmm

        return fit_glmm(design, "mle", nagq=nagq, start=start, max_iter=max_iter)
    from bayesmle.inference.mixed.marginal import fit_marginal

    loglik, grad, modes = _loglik(design, nagq)
    return fit_marginal(design, _marginal_priors(spec), loglik, jacobian=jacobian, start=start,
                        max_iter=max_iter, loglik_grad=grad, conditional_modes=modes)


def _params(spec: ModelSpec, design: MixedDesign, mf: MixedFit) -> tuple[dict, np.ndarray]:
    """Reported values by name and the permutation of the natural vector into label order."""
    names = list(design.fixed_names)
    p = len(names)
    has_int = "Intercept" in names
    order = ([names.index("Intercept")] if has_int else []) + \
        [i for i, n in enumerate(names) if n != "Intercept"]
    beta = np.asarray(mf.beta, dtype=float)
    values: dict[str, np.ndarray] = {}
    for name in spec.params:
        if name == "intercept":
            values[name] = np.asarray(beta[names.index("Intercept")])
        elif name == "coef":
            values[name] = beta[[i for i, n in enumerate(names) if n != "Intercept"]]
        elif name == "sd":
            values[name] = np.asarray(mf.sd, dtype=float)
        elif name == "corr":
            values[name] = np.asarray(mf.corr, dtype=float)
        elif name == "sigma":
            values[name] = np.asarray(float(mf.sigma))
    rest = np.arange(p, p + mf.sd.size + mf.corr.size + (mf.sigma is not None))
    return values, np.concatenate([np.asarray(order, dtype=int), rest])


def _free_mask(design: MixedDesign, mf: MixedFit) -> np.ndarray:
    """Coordinates of ``mf.x`` not held at a bound (theta's diagonal at 0)."""
    free = np.ones(mf.x.size, dtype=bool)
    if mf.coords in ("theta", "theta_beta"):
        from bayesmle.models.mixed_design import theta_lower_bounds

        lower = theta_lower_bounds(design)
        at = np.isfinite(lower) & (np.asarray(mf.x[:lower.size]) <= lower + 1e-12)
        free[:lower.size] = ~at
    elif mf.coords == "natural":  # [beta, sd, corr, sigma]: sd >= 0, |corr| <= 1 held
        p, n_sd, n_corr = design.p, len(design.sd_labels()), len(design.corr_labels())
        free[p:p + n_sd] = mf.x[p:p + n_sd] > 0.0
        free[p + n_sd:p + n_sd + n_corr] = np.abs(mf.x[p + n_sd:p + n_sd + n_corr]) < 1.0
    return free


def _optimum(design: MixedDesign, mf: MixedFit, solver: str) -> Optimum:
    x = np.asarray(mf.x, dtype=float)
    free = _free_mask(design, mf)
    # theta coordinates: derivatives of the criterion (-2 log L); the marginal-posterior fits
    # ("phi", "natural") give those of -log density already
    half = 1.0 if mf.coords in ("phi", "natural") else 0.5
    grad = half * np.asarray(mf.grad, dtype=float)
    hess = half * np.asarray(mf.hess, dtype=float)
    residual = np.where(free, grad, np.minimum(grad, 0.0))
    h = hess[np.ix_(free, free)]
    try:
        hess_pd = bool(h.size == 0 or np.linalg.eigvalsh(0.5 * (h + h.T)).min() > 0)
        decrement = float(grad[free] @ np.linalg.solve(h, grad[free])) / 2 if h.size else 0.0
    except np.linalg.LinAlgError:
        hess_pd, decrement = False, float("inf")
    return Optimum(x=x, f=0.5 * float(mf.criterion), penalty=0.0, grad=grad, hess=hess,
                   free=free, residual=residual, decrement=abs(decrement), hess_pd=hess_pd,
                   n_iter=int(mf.n_iter), n_eval=int(mf.n_eval), message=mf.message,
                   solver=solver)


def _diagnostics(spec: ModelSpec, method: str, mf: MixedFit, strict: bool) -> tuple:
    out = []
    if not mf.converged:
        text = (f"The {method.upper()} of mixed model {spec.name!r} could not be certified: "
                f"{mf.message} (projected gradient norm {mf.grad_norm:.3g}). A fixed effect may "
                "be running to infinity (separation) or the optimiser stalled; try a proper "
                "prior and method='map', or other starting values with start={...}.")
        if strict:
            raise ConvergenceError(text)
        out.append(Diagnostic(ConvergenceWarning, text))
    if mf.singular or mf.boundary:
        where = ", ".join(mf.boundary) or "a variance component"
        out.append(Diagnostic(BoundaryWarning, (
            f"boundary (singular) fit of {spec.name!r} by {method.upper()}: {where} on the "
            "boundary of the parameter space (a standard deviation at 0 or a correlation at "
            "+-1), as lme4's isSingular reports. The estimate exists -- it is on the boundary "
            "-- but its standard error is not defined (NaN); use "
            "result.conf_int(method='profile') for an interval, or a scale prior that vanishes "
            "at 0 (e.g. sd=bm.Gamma(2, ...), as blme) with method='map'.")))
    return tuple(out)


def _point(spec: ModelSpec, design: MixedDesign, mf: MixedFit, method: str, *, strict: bool,
           seconds: float, solver: str) -> PointResult:
    values, order = _params(spec, design, mf)
    cov = np.asarray(mf.cov, dtype=float)
    if cov.shape != (order.size, order.size):
        raise ConvergenceError(f"internal: covariance of shape {cov.shape} for {order.size} "
                               "reported values")
    cov = cov[np.ix_(order, order)]
    diag = np.diag(cov)
    se_flat = np.sqrt(np.where(diag >= 0, diag, np.nan))
    stderr, labels, i = {}, [], 0
    for name, v in values.items():
        size = int(np.size(v))
        stderr[name] = se_flat[i:i + size].reshape(np.shape(v))
        labels += spec.labels(name, np.shape(v))
        i += size
    n_params = design.p + design.n_theta + (1 if design.family == "gaussian" else 0)
    return PointResult(
        spec=spec, method=method, params=values, stderr=stderr, cov=cov, labels=labels,
        loglik=float(mf.loglik), logp=float(mf.logp), logp_jacobian=float(mf.logp),
        n_params=n_params, converged=bool(mf.converged), message=mf.message,
        optimum=_optimum(design, mf, solver),
        jacobian=np.full((order.size, np.size(mf.x)), np.nan), seconds=seconds,
        diagnostics=_diagnostics(spec, method, mf, strict), mixed=mf,
    )


def fit_mixed(spec: ModelSpec, method: str, *, start=None, max_iter: int = 500,
              strict: bool = False, nagq: int = 1) -> PointResult:
    """ML, REML or marginal MAP of a mixed model as a :class:`PointResult`.

    ``start`` is a dict of natural-scale starting values (``coef``, ``sd``, ``corr``,
    ``sigma``); ``nagq`` the quadrature points of a non-Gaussian model with one scalar random
    effect (1 = Laplace). ``result.mixed`` keeps the :class:`~.fit.MixedFit` (theta, conditional
    modes of the random effects, the optimised criterion); ``result.random_effects()`` tabulates
    the random effects.
    """
    t0 = time.perf_counter()
    design = _design(spec)
    nagq = _check_nagq(design, nagq)
    mf = _estimate(spec, design, method, nagq=nagq, start=_start(spec, design, start),
                   max_iter=max_iter)
    solver = "mixed_marginal" if mf.coords in ("phi", "natural") else (
        "mixed_lmm" if design.family == "gaussian" else "mixed_glmm")
    return _point(spec, design, mf, method, strict=strict,
                  seconds=time.perf_counter() - t0, solver=solver)


def _start(spec: ModelSpec, design: MixedDesign, start) -> np.ndarray | None:
    """A natural starting vector ``[beta, sd, corr, sigma]`` from a dict by name (or None)."""
    if start is None:
        return None
    unknown = set(start) - set(spec.params)
    if unknown:
        raise SpecError(f"`start` has unknown parameter(s) {sorted(unknown)}; valid names: "
                        f"{list(spec.params)}.")
    default = {"sd": np.ones(len(design.sd_labels())), "corr": np.zeros(len(design.corr_labels())),
               "sigma": np.std(design.y) if design.family == "gaussian" else None}
    beta = np.zeros(design.p)
    names = list(design.fixed_names)
    if "intercept" in start:
        beta[names.index("Intercept")] = float(start["intercept"])
    if "coef" in start:
        beta[[i for i, n in enumerate(names) if n != "Intercept"]] = np.asarray(
            start["coef"], dtype=float)
    parts = [beta]
    for key in ("sd", "corr", "sigma"):
        if default[key] is None:
            continue
        value = np.atleast_1d(np.asarray(start.get(key, default[key]), dtype=float))
        if value.size != np.atleast_1d(default[key]).size:
            raise SpecError(f"start[{key!r}] must have {np.atleast_1d(default[key]).size} "
                            f"value(s), got {value.size}.")
        parts.append(value)
    return np.concatenate(parts)


def mixed_laplace(spec: ModelSpec, *, draws: int = 2000, random_seed: int | None = None,
                  start=None, max_iter: int = 500, strict: bool = False,
                  nagq: int = 1) -> LaplaceResult:
    """Laplace approximation of a mixed model's *marginal* posterior (random effects integrated).

    The mode of the posterior density of ``phi`` = (fixed effects, log sd, transformed
    correlations, log sigma) -- Jacobian included -- and draws of ``N(mode, H^-1)`` pushed back
    to the natural parameters.
    """
    from bayesmle.inference.draws import posterior_tree
    from bayesmle.inference.laplace import LaplaceResult
    from bayesmle.inference.mixed.marginal import natural_draws

    draws = check_int("draws", draws, 1, MAX_DRAWS)
    seed = check_seed(random_seed)
    for check in spec.posterior_checks:
        check(spec)
    t0 = time.perf_counter()
    design = _design(spec)
    nagq = _check_nagq(design, nagq)
    mf = _estimate(spec, design, "laplace", nagq=nagq, start=_start(spec, design, start),
                   max_iter=max_iter, jacobian=True)
    mode = _point(spec, design, mf, "laplace", strict=strict, seconds=0.0,
                  solver="mixed_marginal")
    _, order = _params(spec, design, mf)
    hess = np.asarray(mf.hess, dtype=float)  # of -log density in phi
    arrays: dict[str, np.ndarray] = {}
    try:
        chol = np.linalg.cholesky(np.linalg.inv(0.5 * (hess + hess.T)))
    except np.linalg.LinAlgError:
        chol = None
    if chol is not None and mode.hessian_pd:
        z = np.random.default_rng(seed).standard_normal((draws, mf.x.size))
        natural = natural_draws(design, mf.x + z @ chol.T)[:, order]
        at = 0
        for name, v in mode.params.items():
            size = int(np.size(v))
            arrays[name] = natural[:, at:at + size].reshape(1, draws, *np.shape(v))
            at += size
    else:
        arrays = {name: np.full((1, draws, *np.shape(v)), np.nan)
                  for name, v in mode.params.items()}
    return LaplaceResult(mode=mode, datatree=posterior_tree(spec, arrays),
                         seconds=time.perf_counter() - t0, random_seed=seed)
