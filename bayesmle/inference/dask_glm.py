"""Out-of-core MLE and MAP of GLMs on Dask: Newton iterations as blockwise reductions.

For a spec built from Dask data (``solver = "dask_glm"``, see
:mod:`bayesmle.models.dask_data`) each evaluation of the objective is one pass over the row
chunks: per chunk the log-likelihood, its gradient and its exact Hessian (``X'WX`` with the
family's and link's own weights, so the certificate and the standard errors are those of the
in-memory fit), computed where the chunk lives (``dask.compute``: the active scheduler, a
``distributed.Client`` when one is active); the small per-chunk results are summed on the
client *in chunk order*, so a threaded and a distributed run give bit-identical answers. The
``p x p`` solves run locally in :func:`~bayesmle.inference.optimize.minimize_composite`, the
certified proximal Newton method of the in-memory fits (Armijo step halving on the summed log
posterior; Laplace priors handled exactly by its proximal step on the summed quadratic model,
Normal priors as smooth terms). Coordinates: ``(intercept, coef)`` on the natural scale, and
``log sigma`` for a Gaussian model with unknown ``sigma``; Newton's method is affine
invariant, and the certificate (Newton decrement <= 1e-10 and a positive definite Hessian)
is the in-memory one, so the two fits agree to rounding.

Existence of the optimum, checked without gathering the data:

* rank / identification: the R factor of ``[1, X]`` from the validation pass (one-level
  TSQR), judged as in memory (:func:`bayesmle.models.dask_data.check_identified`);
* a single class (logistic; binomial: no or every trial a success), all-zero counts
  (Poisson), an exact fit (Gaussian ``sigma``): from the same pass;
* (quasi-)complete separation: the in-memory code solves a linear programme over the rows,
  which is not blockwise. Here it is *detected from the iterates*: on separated data the
  log-likelihood is bounded by 0 but not attained, the Newton iterates diverge, and the
  fitted probabilities (Poisson means of zero counts) run to their limits. After the fit,
  the rows whose fitted value is within ``exp(-20)`` of its limit are counted blockwise. If
  there are any, the data are gathered and the exact LP check of the in-memory model runs
  when they hold at most :data:`CONFIRM_MAX_BYTES`; above that, ``MLENotFoundError`` is
  raised saying that separation is *indicated* (not proven) by the diverging iterates.
  Guaranteed: a separated data set never yields a certified optimum silently (its iterates
  always reach extreme fitted values); not guaranteed above the size limit: that a
  non-separated data set whose MLE genuinely has fitted probabilities within ``exp(-20)`` of
  0/1 is not refused (such a fit is refused with the explanation, never returned).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from bayesmle.errors import MLENotFoundError, SpecError, checklist
from bayesmle.inference.bound import PointEval
from bayesmle.inference.glm_newton import block_terms as _block_terms
from bayesmle.inference.optimize import L1Terms, minimize_composite
from bayesmle.inference.point import PointResult
from bayesmle.inference.point_fit import DECREMENT_TOL, point_result
from bayesmle.models.dask_data import (
    SOLVER,
    DaskGLMData,
    DaskSummary,
    check_identified,
)
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import ElasticNet, Flat, HalfFlat, Laplace, Normal, elastic_net_log_normaliser

__all__ = ["CONFIRM_MAX_BYTES", "NAME", "applies", "fit_dask_glm"]

#: ``Optimum.solver`` of these fits.
NAME = "dask-newton"
#: Separation suspected on data of at most this many bytes (X, y, offset as float64) is
#: confirmed or refuted by the in-memory linear programme; larger data are refused.
CONFIRM_MAX_BYTES = 256 * 2**20
_LOG_2PI = math.log(2.0 * math.pi)


def applies(spec: ModelSpec) -> bool:
    """True for a spec built from Dask data (``solver == "dask_glm"``).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> applies(bm.models.logistic_regression(np.eye(3)[:, :1], np.array([0, 1, 1])))
    False
    """
    return spec.solver == SOLVER


# Per chunk (runs on the workers): glm_newton.block_terms, the closed forms shared with the
# in-memory fits of large regressions.
# ---------------------------------------------------------------------------------------------
# Priors
# ---------------------------------------------------------------------------------------------
_SUPPORTED = (Flat, Normal, Laplace, ElasticNet)


def _prior_terms(spec: ModelSpec, q: int) -> tuple[float, np.ndarray, np.ndarray, L1Terms]:
    """Constant, linear-part centre and precision of the Normal priors; the Laplace L1 terms.

    Returns ``(const, mu, prec, l1)``: the smooth log-prior is
    ``const - sum(prec * (x - mu)^2) / 2`` (``prec = 0`` for flat coordinates).
    """
    k = int(spec.options["intercept"])
    d = spec.prior_shapes["coef"][0]
    mu, prec = np.zeros(q), np.zeros(q)
    const = 0.0
    l1_index, l1_center, l1_weight = [], [], []
    slots = ([("intercept", np.arange(1))] if k else []) + [("coef", np.arange(k, k + d))]
    for key, idx in slots:
        prior = spec.priors[key]
        if not isinstance(prior, _SUPPORTED):
            raise SpecError(
                f"Out-of-core fits support Flat, Normal, Laplace and ElasticNet priors on "
                f"`{key}`, got "
                f"{prior!r}. Use one of those, or fit an in-memory spec (a `.compute()`d "
                "sample) for other priors.")
        if isinstance(prior, Normal):
            m = np.broadcast_to(prior.mu, idx.shape).astype(float)
            s = np.broadcast_to(prior.sigma, idx.shape).astype(float)
            mu[idx], prec[idx] = m, 1.0 / s**2
            const += float(np.sum(-np.log(s) - 0.5 * _LOG_2PI))
        elif isinstance(prior, Laplace):
            m = np.broadcast_to(prior.mu, idx.shape).astype(float)
            b = np.broadcast_to(prior.b, idx.shape).astype(float)
            l1_index.append(idx)
            l1_center.append(m)
            l1_weight.append(1.0 / b)
            const += float(np.sum(-np.log(2.0 * b)))
        elif isinstance(prior, ElasticNet):  # the Laplace part exact, the Normal part smooth
            m = np.broadcast_to(prior.mu, idx.shape).astype(float)
            b = np.broadcast_to(prior.b, idx.shape).astype(float)
            s = np.broadcast_to(prior.sigma, idx.shape).astype(float)
            mu[idx], prec[idx] = m, 1.0 / s**2
            l1_index.append(idx)
            l1_center.append(m)
            l1_weight.append(1.0 / b)
            const -= float(np.sum(elastic_net_log_normaliser(b, s)))
    if "sigma" in spec.priors and not isinstance(spec.priors["sigma"], HalfFlat):
        raise SpecError(
            f"Out-of-core Gaussian fits support the flat prior on `sigma` only (got "
            f"{spec.priors['sigma']!r}). Leave sigma_prior unset, give a known `sigma=`, or "
            "fit an in-memory spec (a `.compute()`d sample) for other sigma priors.")
    l1 = (L1Terms(np.concatenate(l1_index), np.concatenate(l1_center),
                  np.concatenate(l1_weight)) if l1_index else L1Terms())
    return const, mu, prec, l1


# ---------------------------------------------------------------------------------------------
# The objective: one blockwise pass per evaluation
# ---------------------------------------------------------------------------------------------
class _Objective:
    """``x -> (f, grad, hess)`` of the negative smooth log posterior, by blockwise passes."""

    def __init__(self, data: DaskGLMData, sigma_known: float, const: float, mu: np.ndarray,
                 prec: np.ndarray):
        self.data, self.sigma_known = data, sigma_known
        self.const, self.mu, self.prec = const, mu, prec
        self.blocks = data.blocks()
        self.passes = 0
        self.seen: dict[bytes, tuple[float, float]] = {}  # x -> (loglik, extreme rows)

    def terms(self, x: np.ndarray) -> np.ndarray:
        """The per-chunk terms summed in chunk order (one pass over the data)."""
        import dask

        theta = np.array(x, dtype=float)
        tasks = [dask.delayed(_block_terms, pure=True)(
            xb, yb, ob, tb, theta, self.data.family, self.data.intercept, self.sigma_known)
            for xb, yb, ob, tb in self.blocks]
        parts = dask.compute(*tasks)
        self.passes += 1
        total = np.zeros_like(parts[0])
        for part in parts:  # a fixed order: the same sum under every scheduler
            total += part
        return total

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        q = x.size
        t = self.terms(x)
        ll, g, h, extreme = t[0], t[1:1 + q], t[1 + q:1 + q + q * q].reshape(q, q), t[-1]
        self.seen[x.tobytes()] = (float(ll), float(extreme))
        dx = x - self.mu
        lp = self.const - 0.5 * float(np.sum(self.prec * dx**2))
        f = -(ll + lp)
        grad = -(g - self.prec * dx)
        hess = -(h - np.diag(self.prec))
        if not np.isfinite(f):
            f = np.inf
        return f, grad, 0.5 * (hess + hess.T)


# ---------------------------------------------------------------------------------------------
# Existence checks from the validation pass
# ---------------------------------------------------------------------------------------------
def _flat_intercept(spec: ModelSpec, method: str) -> bool:
    return bool(spec.options["intercept"]) and (method == "mle"
                                               or spec.priors["intercept"].is_flat)


def _check_existence(spec: ModelSpec, data: DaskGLMData, summary: DaskSummary,
                     method: str) -> float:
    """Raise MLENotFoundError when the optimum does not exist; the design's condition."""
    what = "MLE" if method == "mle" else "MAP"
    runaway = method == "mle" or _flat_intercept(spec, method)
    if data.family == "bernoulli" and summary.y_min == summary.y_max and runaway:
        v = int(summary.y_min)
        raise MLENotFoundError(checklist(
            f"The {what} does not exist: every value of `y` is {v}, a single class, so the "
            "intercept runs to " + ("+inf." if v == 1 else "-inf."),
            ["Check the response column.",
             "Give the intercept a proper prior (intercept_prior=Normal(2.5)) and fit 'map'."]))
    if data.family == "binomial" and runaway and data.n in (summary.n_none, summary.n_all):
        none = summary.n_none == data.n
        raise MLENotFoundError(checklist(
            f"The {what} does not exist: "
            + ("no row has a success (every `successes` is 0)" if none else
               "every trial is a success (`successes` equals `trials` on every row)")
            + ", so the probability's MLE is " + ("0" if none else "1")
            + " and the intercept runs to " + ("-inf." if none else "+inf."),
            ["Check the response columns (successes and trials).",
             "Give the intercept a proper prior (intercept_prior=Normal(2.5)) and fit 'map'."]))
    if data.family == "poisson" and summary.y_max == 0 and runaway:
        raise MLENotFoundError(checklist(
            f"The {what} does not exist: every count of `y` is zero, so the log-link "
            "intercept runs to -inf (the rate's MLE is 0, on the boundary).",
            ["Give the intercept a proper prior (intercept_prior=Normal(5.0)) and fit 'map'.",
             "Check the response column."]))
    cond = check_identified(data, summary, spec.priors, method)
    if data.family == "gaussian" and "sigma" in spec.params:
        r = summary.r
        p = r.shape[1] - 1
        rss = float(r[p, p]) if r.shape[0] > p else 0.0
        scale = max(abs(summary.y_min), abs(summary.y_max), 1e-300)
        if abs(rss) / math.sqrt(data.n) <= 64 * np.finfo(float).eps * scale:
            raise MLENotFoundError(checklist(
                f"The {what} of sigma does not exist: the predictors fit y exactly (zero "
                "residuals), so the likelihood grows without bound as sigma -> 0.",
                ["Check for a column that duplicates the response.",
                 "Give a known sigma (sigma=...) to fit the coefficients."]))
    return cond


def _start(spec: ModelSpec, data: DaskGLMData, summary: DaskSummary, q: int,
           start: Mapping[str, Any] | None) -> np.ndarray:
    k = int(data.intercept)
    x = np.zeros(q)
    p = k + data.d
    if data.family == "gaussian":
        r = summary.r
        if r.shape[0] > p:
            coef = np.linalg.lstsq(r[:p, :p], r[:p, p], rcond=None)[0]
            x[:p] = coef
            rss = float(r[p, p]) ** 2
        else:
            x[0] = summary.y_sum / data.n if k else 0.0
            rss = 1.0
        if "sigma" in spec.params:
            x[-1] = 0.5 * math.log(max(rss / data.n, 1e-300))
    elif k:
        m = summary.y_sum / data.n
        if data.family in ("bernoulli", "binomial"):
            if data.family == "binomial":
                m = summary.y_sum / summary.trials_sum
            m = min(max(m, 0.02), 0.98)
            x[0] = math.log(m / (1.0 - m))
        else:
            x[0] = math.log(max(m, 0.1)) - summary.offset_mean
    for key, value in (start or {}).items():
        if key not in spec.params:
            raise SpecError(f"`start` names {key!r}, which is not a parameter of model "
                            f"{spec.name!r}; valid names: {list(spec.params)}.")
        arr = np.asarray(value, dtype=float)
        if key == "intercept":
            x[0] = float(arr)
        elif key == "coef":
            x[k:p] = np.broadcast_to(arr, (data.d,))
        else:
            if not float(arr) > 0:
                raise SpecError(f"`start['sigma']` must be positive, got {value!r}.")
            x[-1] = math.log(float(arr))
    return x


# ---------------------------------------------------------------------------------------------
# Separation: indicated by the iterates, confirmed in memory when small enough
# ---------------------------------------------------------------------------------------------
def _confirm_separation(spec: ModelSpec, data: DaskGLMData, method: str,
                        extreme: float) -> None:
    """Raise MLENotFoundError for suspected separation (LP-confirmed when small enough)."""
    nbytes = data.n * (data.d + 3) * 8
    what = "MLE" if method == "mle" else "MAP"
    if nbytes <= CONFIRM_MAX_BYTES:
        import dask

        from bayesmle.models import regression
        from bayesmle.models.separation import SEPARATION, no_map_if_separated

        X, y, off, trials = dask.compute(data.X, data.y, data.offset, data.trials)
        kwargs: dict[str, Any] = {"intercept": data.intercept,
                                  "prior": spec.priors["coef"]}
        if data.intercept:
            kwargs["intercept_prior"] = spec.priors["intercept"]
        if data.family == "bernoulli":
            mem = regression.logistic_regression(X, y, **kwargs)
        elif data.family == "binomial":
            mem = regression.binomial_regression(X, y, trials, **kwargs)
        else:
            mem = regression.poisson_regression(X, y, offset=off, **kwargs)
        if method == "mle":
            SEPARATION(mem)
        else:
            no_map_if_separated(mem)
        return  # the LP finds no separation: the extreme fitted values are genuine
    raise MLENotFoundError(checklist(
        f"The {what} appears not to exist: the Newton iterates diverge towards "
        f"(quasi-)complete separation -- after the fit {int(extreme)} row(s) have fitted "
        + ("means within exp(-20) of their zero count" if data.family == "poisson" else
           "probabilities within exp(-20) of the observed 0/1 (no / every trial a success)")
        + ", the signature of a log-likelihood that keeps rising towards its supremum at "
        "infinity. This is indicated by the iterates, not proven: the exact linear-programming "
        f"check runs in memory only on data of at most {CONFIRM_MAX_BYTES // 2**20} MiB "
        f"(these are {nbytes / 2**20:.0f} MiB).",
        ["Give the coefficients proper priors (prior=Normal(2.5), intercept_prior="
         "Normal(10.0)) and fit 'map': the MAP exists whatever the separation.",
         "Run the exact check on a sample in memory: "
         "bm.fit(bm.models.logistic_regression(X[:n].compute(), y[:n].compute()), 'mle').",
         "Look for a predictor (or a level) that predicts the outcome perfectly."]))


# ---------------------------------------------------------------------------------------------
# The fit
# ---------------------------------------------------------------------------------------------
def fit_dask_glm(spec: ModelSpec, method: str, *, start: Mapping[str, Any] | None = None,
                 max_iter: int = 200, strict: bool = False) -> PointResult:
    """MLE or MAP of an out-of-core regression spec by blockwise Newton iterations.

    Parameters
    ----------
    spec : ModelSpec
        A spec with ``solver == "dask_glm"`` (a regression builder given Dask data); for
        ``"mle"`` its flat version (``driver.run`` passes ``spec.flat()``).
    method : {"mle", "map"}
        Labels the result; the priors of ``spec`` are the ones used.
    start : dict, optional
        Natural-scale starting values (``intercept``, ``coef``, ``sigma``).
    max_iter : int, default 200
        Newton iterations (each costs one pass over the data, plus one per step halving).
    strict : bool, default False
        Raise ConvergenceError instead of recording a diagnostic when not certified.

    Returns
    -------
    PointResult
        As the in-memory fit (same ``params``, ``stderr``, ``labels``); ``optimum.x`` holds
        ``(intercept, coef[, log sigma])`` and ``optimum.solver`` is ``"dask-newton"``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> y = (rng.random(2000) < 1 / (1 + np.exp(-X @ [1.0, -0.5]))).astype(float)
    >>> lazy = bm.fit(bm.models.logistic_regression(da.from_array(X, chunks=500),
    ...                                              da.from_array(y, chunks=500)), "mle")
    >>> eager = bm.fit(bm.models.logistic_regression(X, y), "mle")
    >>> lazy.optimum.solver, bool(np.allclose(lazy.params["coef"], eager.params["coef"],
    ...                                        rtol=1e-10, atol=0))
    ('dask-newton', True)
    """
    if method not in ("mle", "map"):  # pragma: no cover - guarded by the driver
        raise SpecError(f"Out-of-core fits support 'mle' and 'map', not {method!r}.")
    t0 = time.perf_counter()
    data: DaskGLMData = spec.options["dask"]
    sigma_known = float(spec.options.get("sigma_known", 0.0))
    summary = data.scan()
    cond = _check_existence(spec, data, summary, method)
    k = int(data.intercept)
    p = k + data.d
    q = p + int("sigma" in spec.params)
    const, mu, prec, l1 = _prior_terms(spec, q)
    objective = _Objective(data, sigma_known, const, mu, prec)
    x0 = _start(spec, data, summary, q, start)
    try:
        opt = minimize_composite(objective, x0, l1=l1, max_iter=max_iter)
    except FloatingPointError:
        raise SpecError(checklist(
            f"The log-likelihood of model {spec.name!r} is not finite at the starting point.",
            ["Pass start={...} with moderate values."])) from None
    opt = replace(opt, solver=NAME)
    if opt.x.tobytes() not in objective.seen:
        objective(opt.x)
    loglik, extreme = objective.seen[opt.x.tobytes()]
    converged = bool(opt.hess_pd and opt.decrement <= DECREMENT_TOL and np.isfinite(loglik))
    flat_coef = method == "mle" or spec.priors["coef"].is_flat or _flat_intercept(spec, method)
    if data.family != "gaussian" and extreme > 0 and flat_coef:
        _confirm_separation(spec, data, method, extreme)

    x = opt.x
    values: dict[str, np.ndarray] = {}
    if k:
        values["intercept"] = np.asarray(x[0])
    values["coef"] = x[k:p].copy()
    jac = np.eye(q)
    if q > p:
        sigma = math.exp(float(x[-1]))
        values["sigma"] = np.asarray(sigma)
        jac[-1, -1] = sigma
    logp = loglik + const - 0.5 * float(np.sum(prec * (x - mu) ** 2)) - l1.penalty(x)
    ev = PointEval(loglik=loglik, logp=logp,
                   logp_jacobian=logp + (float(x[-1]) if q > p else 0.0),
                   values=values, jacobian=jac)
    message = (f"{opt.message}; blockwise Newton over {len(data.chunks)} row chunks, "
               f"{objective.passes} passes over the data; condition number of the "
               f"column-equilibrated design {cond:.3g}")
    return point_result(spec, method, opt, ev, converged=converged,
                        n_params=int(opt.free.sum()), strict=strict, message=message,
                        seconds=time.perf_counter() - t0)
