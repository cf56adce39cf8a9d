"""MLE and MAP: certified optima of the compiled model's Jacobian-free log-density."""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from bayesmle.errors import ConvergenceError, ConvergenceWarning, SpecError, checklist
from bayesmle.inference import lad
from bayesmle.inference.compiled import CompiledModel, compiled_model
from bayesmle.inference.optimize import OptimResult, minimize_composite
from bayesmle.inference.point import PointResult
from bayesmle.models.spec import ModelSpec

__all__ = ["fit_point", "optimum"]

log = logging.getLogger("bayesmle")

#: An optimum is certified when one more Newton step would change the objective by less than
#: this (in log-density units, i.e. the estimate is within ~1e-5 standard errors of the optimum).
DECREMENT_TOL = 1e-10


def optimum(cm: CompiledModel, spec: ModelSpec, *, jacobian: bool, start=None,
            max_iter: int = 200) -> OptimResult:
    """Run the certified optimiser on the compiled model (data already set)."""
    l1 = cm.l1()
    start_values = spec.start_values()
    if start:
        unknown = [k for k in start if k not in cm.model.named_vars]
        if unknown:
            raise SpecError(f"`start` names unknown variable(s) {unknown}; free variables are "
                            f"{[rv.name for rv in cm.model.free_RVs]}.")
        start_values.update(start)
    x0 = cm.start_x(start_values)
    fun = cm.objective(jacobian=jacobian)
    try:
        return minimize_composite(fun, x0, l1_index=l1.index, l1_center=l1.center,
                                  l1_weight=l1.weight, max_iter=max_iter)
    except FloatingPointError:
        raise ConvergenceError(
            checklist(
                f"The log-density of model {spec.name!r} is not finite at the starting point "
                f"{cm.x_to_point(x0)}.",
                ["Pass start={...} with values inside the support.",
                 "Check the data for values outside the family's support."],
            )
        ) from None


def _covariance(res: OptimResult, jac: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Covariance of the reported parameters by the delta method, and a mask of undefined ones."""
    free = res.free
    n = res.x.size
    cov_x = np.zeros((n, n))
    ok = res.hess_pd
    if ok:
        hff = res.hess[np.ix_(free, free)]
        hff = 0.5 * (hff + hff.T)
        try:
            cov_x[np.ix_(free, free)] = np.linalg.inv(hff)
        except np.linalg.LinAlgError:
            ok = False
    if not ok:
        cov_x[:] = np.nan
    cov = jac @ cov_x @ jac.T
    # A reported value that moves only with coordinates held at an L1 kink has no stderr.
    undefined = ~np.any(jac[:, free] != 0, axis=1) & np.any(jac[:, ~free] != 0, axis=1)
    cov[undefined, :] = np.nan
    cov[:, undefined] = np.nan
    return cov, undefined, ok


def fit_point(spec: ModelSpec, method: str, *, jacobian: bool = False, start=None,
              max_iter: int = 200, strict: bool = False) -> PointResult:
    """Fit ``spec`` by optimisation (``spec`` already carries the priors to use)."""
    if not jacobian and lad.applies(spec):
        return lad.fit_lad(spec, method, strict=strict, max_iter=max_iter)
    t0 = time.perf_counter()
    cm = compiled_model(spec)
    compile_before = cm.compile_seconds
    with cm.fit_lock:
        cm.set_data(spec)
        res = optimum(cm, spec, jacobian=jacobian, start=start, max_iter=max_iter)
        out = cm.point_fn()(res.x)
    loglik, logp, logp_jac = (float(v) for v in out[:3])
    reported, jac = out[3:-1], np.asarray(out[-1])
    params = {name: np.asarray(v) for name, v in zip(spec.params, reported, strict=True)}
    labels = [lab for name, v in params.items() for lab in spec.labels(name, np.shape(v))]
    cov, undefined, cov_ok = _covariance(res, jac)
    se_flat = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.nan))
    stderr, i = {}, 0
    for name, v in params.items():
        size = int(np.size(v))
        stderr[name] = se_flat[i:i + size].reshape(np.shape(v))
        i += size
    converged = bool(res.hess_pd and res.decrement <= DECREMENT_TOL and np.isfinite(loglik))
    if not converged:
        msg = checklist(
            f"The {method.upper()} of model {spec.name!r} could not be certified: "
            f"{res.message}; gradient norm {res.grad_norm:.3g}, Newton decrement "
            f"{res.decrement:.3g}, Hessian "
            f"{'positive definite' if res.hess_pd else 'NOT positive definite'}.",
            ["A parameter may be running off to the boundary or to infinity: the MLE may not "
             "exist for these data. Try a proper prior and fit 'map'.",
             "Try other starting values with start={...}.",
             "Rescale the predictors if they differ by many orders of magnitude."],
        )
        if strict:
            raise ConvergenceError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    elif not cov_ok:
        warnings.warn("The Hessian is not invertible at the optimum; standard errors are NaN.",
                      ConvergenceWarning, stacklevel=3)
    n_free = int(res.free.sum())
    return PointResult(
        spec=spec, method=method, params=params, stderr=stderr, cov=cov, labels=labels,
        loglik=loglik, logp=logp, n_params=n_free, converged=converged,
        grad_norm=res.grad_norm, newton_decrement=float(res.decrement),
        hessian_pd=res.hess_pd, n_iter=res.n_iter, message=res.message,
        seconds=time.perf_counter() - t0,
        compile_seconds=cm.compile_seconds - compile_before,
        zero_mask=~res.free if (~res.free).any() else None,
        extra={"x": res.x, "logp_jacobian": logp_jac, "hess": res.hess, "jac": jac},
    )
