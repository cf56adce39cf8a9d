"""``pymc.find_MAP`` as a selectable optimiser for MLE and MAP, checked by our certificate.

``fit(spec, "mle" | "map", optimizer="find_map", polish=False, **find_map_kwargs)`` calls
``pymc.find_MAP`` on the model (looked up on the ``pymc`` module at call time), maps its point
to the engine's unconstrained coordinates ``x`` by value-variable name, and certifies it
exactly as the default optimiser certifies its own answer: the Newton decrement of one more
(proximal) Newton step, computed by :func:`~bayesmle.inference.optimize.minimize_composite`'s
own code *at that point* (no step is taken), must be at most
:data:`~bayesmle.inference.point_fit.DECREMENT_TOL` with a positive definite Hessian. A point
where find_MAP stopped early is reported as it is: ``converged=False`` and a diagnostic with
its gradient norm. ``polish=True`` continues from find_MAP's point with the certified
optimiser.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc

from bayesmle.errors import ConvergenceError, SpecError
from bayesmle.inference.bound import BoundModel, bind
from bayesmle.inference.lad import SOLVER as LAD
from bayesmle.inference.optimize import Optimum, minimize_composite
from bayesmle.inference.point import PointResult
from bayesmle.inference.point_fit import DECREMENT_TOL, point_result
from bayesmle.models.spec import ModelSpec

__all__ = ["OPTIMIZERS", "RESERVED", "certify_at", "fit_find_map"]

#: Values of ``fit``'s ``optimizer`` option for "mle" and "map".
OPTIMIZERS = ("newton", "find_map")
#: ``pymc.find_MAP`` arguments set by this module (not passable through ``fit``).
RESERVED = frozenset({"model", "return_inferencedata", "idata_kwargs", "progressbar", "vars",
                      "return_raw", "include_transformed", "initvals"})


class _Frozen:
    """The objective at ``x0``; ``inf`` elsewhere (so that no step can be accepted)."""

    def __init__(self, fun, x0: np.ndarray):
        self.fun, self.x0 = fun, x0

    def __call__(self, x):
        if np.array_equal(x, self.x0):
            return self.fun(x)
        n = self.x0.size
        return np.inf, np.full(n, np.nan), np.full((n, n), np.nan)


def certify_at(bound: BoundModel, x: np.ndarray, *, jacobian: bool = False) -> Optimum:
    """The optimiser's record at ``x``: gradient, Hessian, residual and Newton decrement.

    The decrement is computed by the certified optimiser's own first iteration at ``x``; the
    objective is made infinite everywhere else, so the point is never moved.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([1.0, 2.0, 4.0])
    >>> bound = bm.inference.bind(bm.models.gaussian(y))
    >>> x = bound.x_for(np.array([7 / 3, np.std(y)]), bound.start_x())  # the MLE
    >>> opt = certify_at(bound, x)
    >>> bool(opt.decrement < 1e-20), opt.hess_pd, bool(np.array_equal(opt.x, x))
    (True, True, True)
    """
    x = np.asarray(x, dtype=float)
    opt = minimize_composite(_Frozen(bound.objective(jacobian=jacobian), x), x,
                             l1=bound.l1_terms(x), max_iter=1)
    return dataclasses.replace(opt, n_iter=0, n_eval=1)


def _x_of(bound: BoundModel, tree) -> np.ndarray:
    """find_MAP's point in the engine's ``x`` (value variables by name)."""
    post = tree["posterior"].to_dataset()
    parts = []
    template = bound.x_to_point(np.zeros(bound.size))
    for v in bound.compiled.value_vars:
        if v.name not in post:
            raise SpecError(f"pymc.find_MAP returned no value for {v.name!r} (it returned "
                            f"{list(post.data_vars)}).")
        value = np.asarray(post[v.name].to_numpy(), dtype=float).reshape(
            np.shape(template[v.name]))
        parts.append(value.ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def fit_find_map(spec: ModelSpec, method: str, *, polish: bool = False, start=None,
                 max_iter: int = 200, strict: bool = False,
                 find_map_kwargs: Mapping[str, Any] | None = None) -> PointResult:
    """MLE or MAP by ``pymc.find_MAP``, certified (``spec`` carries the priors to use).

    Parameters
    ----------
    spec : ModelSpec
        The model; for an MLE the flat-prior spec (``spec.flat()``).
    method : {"mle", "map"}
        What the result is called.
    polish : bool, default False
        Continue from find_MAP's point with the certified Newton optimiser.
    start : dict, optional
        Natural-scale starting values (find_MAP's ``initvals``).
    max_iter : int, default 200
        Iterations of the polishing optimiser.
    strict : bool, default False
        Raise ConvergenceError instead of recording a diagnostic when uncertified.
    find_map_kwargs : dict, optional
        Passed to ``pymc.find_MAP`` (``method`` -- any ``scipy.optimize.minimize`` method --,
        ``maxiter``, ``tol``, ``jitter``, ``random_seed``...; default ``jitter=False``).

    Returns
    -------
    PointResult
        ``optimum.solver`` is ``"pymc.find_MAP(<method>)"`` (with ``" + proximal_newton"``
        when polished).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.random.default_rng(0).normal(1.0, 2.0, size=50)
    >>> res = fit_find_map(bm.models.gaussian(y).flat(), "mle", polish=True)
    >>> res.optimum.solver, res.converged
    ('pymc.find_MAP(L-BFGS-B) + proximal_newton', True)
    """
    if spec.solver in ("mixed", LAD):
        raise SpecError(
            f"optimizer='find_map' is not available for model {spec.name!r} (solver "
            f"{spec.solver!r}): its {method.upper()} is computed by an exact solver "
            "(least absolute deviations) or on the marginal likelihood (mixed models), which "
            "pymc.find_MAP does not optimise. Use the default optimizer.")
    kwargs = dict(find_map_kwargs or {})
    reserved = sorted(set(kwargs) & RESERVED)
    if reserved:
        raise SpecError(f"pymc.find_MAP argument(s) {reserved} are set by bayesmle and cannot "
                        "be passed; `start` gives the initial values.")
    scipy_method = kwargs.pop("method", "L-BFGS-B")
    if not isinstance(scipy_method, str):
        raise SpecError(f"find_MAP's `method` must be a scipy.optimize.minimize method name, "
                        f"got {scipy_method!r}.")
    kwargs.setdefault("jitter", False)
    t0 = time.perf_counter()
    bound = bind(spec)
    model = spec.build()
    tree = pymc.find_MAP(scipy_method, model=model, initvals=dict(start) if start else None,
                         progressbar=False, return_inferencedata=True,
                         idata_kwargs={"include_transformed": True}, **kwargs)
    x = _x_of(bound, tree)
    solver = f"pymc.find_MAP({scipy_method})"
    res = tree["optimizer_result"].to_dataset() if "optimizer_result" in tree.children else {}
    scipy_message = str(res["message"].to_numpy()) if "message" in res else ""
    if not np.all(np.isfinite(x)):
        raise ConvergenceError(f"{solver} returned a non-finite point for model "
                               f"{spec.name!r}: {bound.x_to_point(x)} ({scipy_message}).")
    l1 = bound.l1_terms(x)
    if polish:
        opt = minimize_composite(bound.objective(), x, l1=l1, max_iter=max_iter)
        solver += " + proximal_newton"
        message = f"{opt.message} (polished from {solver.split(' +')[0]}: {scipy_message})"
    else:
        opt = certify_at(bound, x)
        counts = {k: int(res[k].to_numpy()) for k in ("nit", "nfev") if k in res}
        opt = dataclasses.replace(opt, n_iter=counts.get("nit", 0),
                                  n_eval=counts.get("nfev", 1))
        message = f"{solver}: {scipy_message}"
    opt = dataclasses.replace(opt, solver=solver, message=message)
    ev = bound.evaluate(opt.x)
    converged = bool(opt.hess_pd and opt.decrement <= DECREMENT_TOL and np.isfinite(ev.loglik))
    hints = [f"{solver} stopped at gradient norm {opt.grad_norm:.3g}: pass polish=True to "
             "continue with the certified optimiser, or tighten its tolerances (e.g. "
             "tol=1e-12, maxiter=...).",
             "Or use the default optimizer (optimizer='newton')."]
    if len(l1):
        hints.insert(0, "The model has Laplace (L1) priors: find_MAP's smooth optimisers "
                        "cannot reach exact zeros, so its point cannot satisfy the certificate "
                        "of the composite objective; polish=True or the default optimizer "
                        "give the exact zeros.")
    return point_result(spec, method, opt, ev, converged=converged,
                        n_params=int(opt.free.sum()), strict=strict, message=message,
                        seconds=time.perf_counter() - t0, hints=tuple(hints))
