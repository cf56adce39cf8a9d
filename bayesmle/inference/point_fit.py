"""MLE and MAP: certified optima of the bound model's Jacobian-free log-density."""

from __future__ import annotations

import time

import numpy as np

from bayesmle.errors import ConvergenceError, ConvergenceWarning, Diagnostic, PriorError, checklist
from bayesmle.inference.bound import BoundModel, PointEval, bind
from bayesmle.inference.optimize import Optimum, minimize_composite
from bayesmle.inference.point import PointResult
from bayesmle.models.design import small_cholesky, small_matmul, triangular_inverse
from bayesmle.models.spec import ModelSpec

__all__ = ["DECREMENT_TOL", "check_has_mode", "find_optimum", "fit_point", "local_priors",
           "point_result"]

#: An optimum is certified when one more Newton step would change the objective by less than
#: this (in log-density units, i.e. the estimate is within ~1e-5 standard errors of the optimum).
DECREMENT_TOL = 1e-10


def check_has_mode(spec: ModelSpec, method: str) -> None:
    """Raise PriorError if a prior of ``spec`` has no mode (a horseshoe): no MAP, no Laplace.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.linear_regression(np.eye(3), [1.0, 2.0, 0.5],
    ...                                    prior=bm.Horseshoe(1.0), intercept=False)
    >>> check_has_mode(spec, "laplace")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.PriorError: The marginal density of Horseshoe(tau0=1) is unbounded at ...
    """
    for key, prior in spec.priors.items():
        if not prior.has_mode:
            raise PriorError(f"{prior.no_mode_message(key)} (method {method!r} on model "
                             f"{spec.name!r})")


def local_priors(spec: ModelSpec) -> list[str]:
    """Keys of the priors that are not log-concave: an optimum is then certified as local.

    Examples
    --------
    >>> import bayesmle as bm
    >>> local_priors(bm.models.gaussian([0.5, 1.0, 3.0], mu_prior=bm.Cauchy(1.0)))
    ['mu']
    """
    return [key for key, prior in spec.priors.items() if not prior.log_concave]


def find_optimum(bound: BoundModel, *, jacobian: bool, start=None,
                 max_iter: int = 200) -> Optimum:
    """Run the certified optimiser on a bound model."""
    x0 = bound.start_x(start)
    try:
        return minimize_composite(bound.objective(jacobian=jacobian), x0,
                                  l1=bound.l1_terms(x0), max_iter=max_iter)
    except FloatingPointError:
        raise ConvergenceError(
            checklist(
                f"The log-density of model {bound.spec.name!r} is not finite at the starting "
                f"point {bound.x_to_point(x0)}.",
                ["Pass start={...} with values inside the support.",
                 "Check the data for values outside the family's support."],
            )
        ) from None


def _row_scale(jac: np.ndarray) -> np.ndarray:
    """A power of two near each row's largest entry (1 for zero rows): exact to divide by."""
    top = np.abs(jac).max(axis=1) if jac.size else np.zeros(jac.shape[0])
    top = np.where(np.isfinite(top) & (top > 0), top, 1.0)
    return np.ldexp(1.0, np.frexp(top)[1] - 1)


def _covariance(opt: Optimum, jac: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Covariance and stderr of the reported parameters (delta method); whether they exist.

    Computed with the Jacobian's rows scaled by powers of two, so that a standard error of
    1e170 (a coefficient of a column of order 1e-170) is exact although its variance (1e340)
    is not representable: that covariance entry is then inf, the stderr finite.
    """
    free = opt.free
    n = opt.x.size
    cov_x = np.zeros((n, n))
    ok = opt.hess_pd
    if ok:
        hff = opt.hess[np.ix_(free, free)]
        hff = 0.5 * (hff + hff.T)
        try:  # H = R'R, H^-1 = R^-1 R^-T (compiled loops where BLAS would use threads)
            r_inv = triangular_inverse(small_cholesky(hff))
            cov_x[np.ix_(free, free)] = small_matmul(r_inv, r_inv.T)
        except np.linalg.LinAlgError:
            ok = False
    scale = _row_scale(jac)
    js = jac / scale[:, None]
    if ok:
        cov_s = small_matmul(small_matmul(js, cov_x), js.T)
    else:
        cov_x[:] = np.nan
        cov_s = js @ cov_x @ js.T
    diag = np.diag(cov_s)
    stderr = scale * np.sqrt(np.where(diag >= 0, diag, np.nan))
    with np.errstate(over="ignore"):  # entries beyond the float range become inf
        cov = cov_s * np.outer(scale, scale)
    # A reported value that moves only with coordinates held at an L1 kink has no stderr.
    undefined = ~np.any(jac[:, free] != 0, axis=1) & np.any(jac[:, ~free] != 0, axis=1)
    cov[undefined, :] = np.nan
    cov[:, undefined] = np.nan
    stderr[undefined] = np.nan
    return cov, stderr, ok


def point_result(spec: ModelSpec, method: str, opt: Optimum, ev: PointEval, *,
                 converged: bool, n_params: int, strict: bool, message: str,
                 cov: np.ndarray | None = None, seconds: float = 0.0,
                 compile_seconds: float = 0.0, hints: tuple[str, ...] = (),
                 local_optimum: bool = False) -> PointResult:
    """Assemble a :class:`PointResult` (covariance by the delta method unless given).

    An uncertified optimum raises :class:`ConvergenceError` under ``strict``; otherwise it is
    recorded as a :class:`ConvergenceWarning` diagnostic (emitted by ``fit``).
    """
    cov_ok = True
    if cov is None:
        cov, se_flat, cov_ok = _covariance(opt, ev.jacobian)
    else:
        diag = np.diag(cov)
        se_flat = np.sqrt(np.where(diag >= 0, diag, np.nan))
    stderr, i = {}, 0
    for name, v in ev.values.items():
        size = int(np.size(v))
        stderr[name] = se_flat[i:i + size].reshape(np.shape(v))
        i += size
    labels = [lab for name, v in ev.values.items() for lab in spec.labels(name, np.shape(v))]
    diagnostics = []
    if not converged:
        text = checklist(
            f"The {method.upper()} of model {spec.name!r} could not be certified: "
            f"{message}; gradient norm {opt.grad_norm:.3g}, Newton decrement "
            f"{opt.decrement:.3g}, Hessian "
            f"{'positive definite' if opt.hess_pd else 'NOT positive definite'}.",
            list(hints) or [
                "A parameter may be running off to the boundary or to infinity: the MLE may "
                "not exist for these data. Try a proper prior and fit 'map'.",
                "Try other starting values with start={...}.",
                "Rescale the predictors if they differ by many orders of magnitude."],
        )
        if strict:
            raise ConvergenceError(text)
        diagnostics.append(Diagnostic(ConvergenceWarning, text))
    elif not cov_ok:
        diagnostics.append(Diagnostic(
            ConvergenceWarning,
            "The Hessian is not invertible at the optimum; standard errors are NaN."))
    return PointResult(
        spec=spec, method=method, params=ev.values, stderr=stderr, cov=cov, labels=labels,
        loglik=ev.loglik, logp=ev.logp, logp_jacobian=ev.logp_jacobian, n_params=n_params,
        converged=converged, message=message, optimum=opt, jacobian=ev.jacobian,
        seconds=seconds, compile_seconds=compile_seconds, diagnostics=tuple(diagnostics),
        local_optimum=local_optimum,
    )


def fit_point(spec: ModelSpec, method: str, *, jacobian: bool = False, start=None,
              max_iter: int = 200, strict: bool = False) -> PointResult:
    """Fit ``spec`` by the certified Newton optimiser (``spec`` carries the priors to use)."""
    check_has_mode(spec, method)
    t0 = time.perf_counter()
    bound = bind(spec)
    cm = bound.compiled
    compile_before = cm.compile_seconds
    opt = find_optimum(bound, jacobian=jacobian, start=start, max_iter=max_iter)
    ev = bound.evaluate(opt.x)
    converged = bool(opt.hess_pd and opt.decrement <= DECREMENT_TOL and np.isfinite(ev.loglik))
    local = local_priors(spec)
    message = opt.message
    if local:
        message += (f"; a local optimum: the prior(s) on {local} are not log-concave, so the "
                    "posterior may have other modes (compare starts, or use NUTS)")
    return point_result(spec, method, opt, ev, converged=converged,
                        n_params=int(opt.free.sum()), strict=strict, message=message,
                        seconds=time.perf_counter() - t0,
                        compile_seconds=cm.compile_seconds - compile_before,
                        local_optimum=bool(local))
