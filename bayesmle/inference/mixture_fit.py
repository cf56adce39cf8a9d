"""MLE, MAP and EM for mixtures: several starts, degenerate ones reported, the best certified.

A mixture likelihood has many local maxima (and, for Gaussian components with free variances,
no global one: it is unbounded). :func:`fit_mixture` therefore runs the optimiser -- the
engine's certified Newton method, or EM followed by the engine's certificate -- from several
starts: the builder's quantile split, then k-means++ seeds (or random responsibilities for
regressions) turned into parameters by one M-step. A start that ends on a collapsing component
(:func:`bayesmle.models.mixture.degenerate_components`) is reported as degenerate, never as an
estimate; the best certified non-degenerate optimum is returned with a table of all starts
(``result.starts``) and notes that say plainly that it is a local maximum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from pymc.blocking import DictToArrayBijection

from bayesmle._validation import check_int, check_seed
from bayesmle.errors import ConvergenceError, MLENotFoundError, SpecError, checklist
from bayesmle.inference import em
from bayesmle.inference.bound import BoundModel, bind
from bayesmle.inference.optimize import Optimum, minimize_composite
from bayesmle.inference.point import PointResult
from bayesmle.inference.point_fit import DECREMENT_TOL, point_result
from bayesmle.models.mixture import (
    corr_matrices,
    degenerate_components,
    is_mixture,
    ordering_key,
    ordering_values,
)
from bayesmle.models.spec import ModelSpec

__all__ = ["DEFAULT_STARTS", "MixturePointResult", "applies", "fit_mixture", "refuse_options"]

#: Number of starts of a mixture MLE/MAP/EM fit unless ``starts=`` says otherwise.
DEFAULT_STARTS = 5
MAX_STARTS = 1000
#: Options only mixture fits take.
MIXTURE_OPTIONS = frozenset({"starts", "random_seed", "tol"})


@dataclass(frozen=True, eq=False)
class MixturePointResult(PointResult):
    """A :class:`PointResult` of a mixture: the best start, and what the other starts found.

    Attributes
    ----------
    starts : pandas.DataFrame
        One row per start: ``loglik``, ``logp``, ``converged``, ``degenerate`` (the reason,
        empty if none), ``iterations``, ``max_abs_diff`` (largest difference of a reported
        parameter from the best start's; NaN for degenerate starts), ``best``.
    notes : tuple of str
        What the result is: a local maximum; for Gaussian components with free variances, of
        an unbounded likelihood.
    random_seed : int
        The seed of the random starts.
    em_iterations : int or None
        EM iterations of the best start (``method == "em"``), None otherwise.
    loglik_trace : ndarray or None
        EM's log-likelihood after each iteration of the best start (non-decreasing).
    """

    starts: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    notes: tuple[str, ...] = ()
    random_seed: int | None = None
    em_iterations: int | None = None
    loglik_trace: np.ndarray | None = field(default=None, repr=False)


def applies(spec: ModelSpec) -> bool:
    """Whether ``spec`` is fitted by this module (a mixture builder's spec)."""
    return is_mixture(spec)


def refuse_options(spec: ModelSpec, method: str, options: dict) -> None:
    """SpecError for method ``"em"`` or mixture-only options given to another model."""
    if method == "em":
        raise SpecError(f"method 'em' is the EM algorithm of the mixture models "
                        f"(bm.models.gaussian_mixture, poisson_mixture, mixture_regression); "
                        f"model {spec.name!r} is not one. Use 'mle'.")
    given = sorted(MIXTURE_OPTIONS & set(options))
    if given:
        raise SpecError(f"Option(s) {given} apply to mixture models (bm.models.gaussian_mixture,"
                        f" poisson_mixture, mixture_regression) only; model {spec.name!r} is "
                        "not one.")


# ---------------------------------------------------------------------------------------------
# Starts
# ---------------------------------------------------------------------------------------------
def _kmeanspp_labels(v: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Hard labels from k-means++ seeds (nearest seed; columns standardised)."""
    v = v.reshape(v.shape[0], -1)
    sd = v.std(axis=0)
    v = v / np.where(sd > 0, sd, 1.0)
    n = v.shape[0]
    centers = [v[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((v[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centers.append(v[rng.choice(n, p=p)])
    return np.argmin(((v[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)


def _valid(spec: ModelSpec, params: dict[str, np.ndarray]) -> bool:
    key = ordering_values(spec, params)
    ok = np.all(np.isfinite(np.concatenate([np.atleast_1d(v).ravel() for v in params.values()])))
    ok = ok and np.all(np.diff(key) > 0) and np.all(params["weights"] > 0)
    if "sigma" in params:
        ok = ok and np.all(np.asarray(params["sigma"]) > 0)
    if ok and "corr" in params:  # full covariances: positive definite correlation matrices
        R = corr_matrices(params["corr"], spec.options["d"])
        ok = bool(np.all(np.linalg.eigvalsh(R)[..., 0] > 0))
    if "rate" in params:
        ok = ok and np.all(np.asarray(params["rate"]) > 0)
    return bool(ok)


def _builder_start(spec: ModelSpec, user: dict | None) -> dict[str, np.ndarray]:
    k = spec.options["k"]
    values = {"weights": np.full(k, 1.0 / k), **spec.start_values()}
    values.update({name: np.asarray(v, dtype=float) for name, v in (user or {}).items()})
    return values


def _random_start(spec: ModelSpec, rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    k = spec.options["k"]
    y = spec.data["y"]
    for _ in range(20):
        if spec.options["mixture"] == "regression":
            resp = rng.dirichlet(np.ones(k), size=y.shape[0])
        else:
            resp = np.eye(k)[_kmeanspp_labels(y, k, rng)]
        if np.any(resp.sum(axis=0) < 2.0):
            continue
        params = em.sort_components(spec, em.m_step(spec, resp))
        if _valid(spec, params) and not degenerate_components(spec, params):
            return params
    return None


def starting_values(spec: ModelSpec, n: int, rng: np.random.Generator,
                    user: dict | None = None) -> list[dict[str, np.ndarray]]:
    """``n`` natural-scale starts: the builder's (with ``user`` overrides), then random ones."""
    out = [_builder_start(spec, user)]
    while len(out) < n:
        params = _random_start(spec, rng)
        if params is None:
            break
        out.append(params)
    return out


def x_from_values(bound: BoundModel, values: dict[str, np.ndarray]) -> np.ndarray:
    """The unconstrained vector of natural-scale values of every free variable."""
    cm = bound.compiled
    model = cm.model
    names = tuple(rv.name for rv in model.free_RVs)
    missing = [n for n in names if n not in values]
    if missing:
        raise SpecError(f"`start` lacks {missing}; a mixture start needs {list(names)}.")
    arrays = []
    for name in names:
        shape = tuple(model[name].type.shape)
        try:
            arrays.append(np.broadcast_to(np.asarray(values[name], dtype=model[name].dtype),
                                          shape).copy())
        except (TypeError, ValueError):
            raise SpecError(f"`start[{name!r}]` must broadcast to shape {shape}, got "
                            f"{values[name]!r}.") from None
    out = cm.natural_to_x_fn(names)(*arrays, *bound.data)
    point = {model.rvs_to_values[model[n]].name: np.asarray(v) for n, v in
             zip(names, out, strict=True)}
    x = DictToArrayBijection.map({v.name: point[v.name] for v in cm.value_vars}).data
    if not np.all(np.isfinite(x)):
        raise SpecError(checklist(
            f"The start {values} is outside the support of the mixture {bound.spec.name!r}.",
            ["Weights must be positive and sum to 1; sigma and rates positive; the ordered "
             f"parameter `{ordering_key(bound.spec)}` strictly increasing."]))
    return x


# ---------------------------------------------------------------------------------------------
# One start
# ---------------------------------------------------------------------------------------------
@dataclass
class _Run:
    opt: Optimum | None
    ev: object = None
    converged: bool = False
    degenerate: str = ""
    iterations: int = 0
    trace: np.ndarray | None = None
    error: str = ""


def _certificate(bound: BoundModel, x: np.ndarray, iterations: int, message: str) -> Optimum:
    """The engine's gradient and Hessian at ``x`` as an Optimum (solver "em")."""
    f, g, h = bound.objective(jacobian=False)(x)
    try:
        chol = np.linalg.cholesky(0.5 * (h + h.T))
        z = np.linalg.solve(chol, g)
        pd_, dec = True, 0.5 * float(z @ z)
    except np.linalg.LinAlgError:
        pd_, dec = False, np.inf
    return Optimum(x=x, f=float(f), penalty=0.0, grad=g, hess=h, free=np.ones(x.size, bool),
                   residual=g, decrement=dec, hess_pd=pd_, n_iter=iterations,
                   n_eval=iterations, message=message, solver="em")


def _one_start(spec: ModelSpec, bound: BoundModel, values: dict, solver: str,
               max_iter: int, tol: float) -> _Run:
    trace = None
    if solver == "em":
        emr = em.run_em(spec, values, max_iter=max_iter, tol=tol)
        trace = emr.trace
        if emr.degenerate:
            return _Run(None, degenerate=emr.degenerate, iterations=emr.iterations, trace=trace)
        if not _valid(spec, emr.params):
            return _Run(None, degenerate="two components coincide (equal "
                        f"{ordering_key(spec)})", iterations=emr.iterations, trace=trace)
        x = x_from_values(bound, emr.params)
        msg = ("EM stopped: log-likelihood gain below tol" if emr.stopped
               else "EM reached max_iter")
        opt = _certificate(bound, x, emr.iterations, msg)
    else:
        x0 = x_from_values(bound, values)
        try:
            opt = minimize_composite(bound.objective(jacobian=False), x0,
                                     l1=bound.l1_terms(x0), max_iter=max_iter)
        except (FloatingPointError, np.linalg.LinAlgError) as exc:
            return _Run(None, error=f"optimiser failed: {exc}")
    ev = bound.evaluate(opt.x)
    reasons = degenerate_components(spec, ev.values)
    finite = np.isfinite(ev.logp) and np.all(np.isfinite(ev.flat))
    if not finite:
        reasons = reasons or ["the log-density is not finite there"]
    converged = bool(opt.hess_pd and opt.decrement <= DECREMENT_TOL and finite)
    return _Run(opt, ev, converged, "; ".join(reasons), opt.n_iter, trace)


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------
def _notes(spec: ModelSpec, method: str, n_starts: int, n_good: int) -> tuple[str, ...]:
    what = "likelihood" if spec.is_flat or method in ("mle", "em") else "posterior density"
    notes = [f"A mixture {what} is multimodal: this is the best of {n_good} non-degenerate "
             f"local maxima found from {n_starts} starts, a certified *local* maximum, not a "
             "proven global one."]
    unbounded = spec.options["mixture"] in ("gaussian", "regression") and not \
        spec.options.get("equal_variances", False)
    if unbounded and what == "likelihood":
        line = (", or a component on the line through two observations with its correlation"
                " -> +-1" if spec.options.get("covariance") == "full" else "")
        notes.append("With free component variances the likelihood is unbounded (a component "
                     f"centred on one observation with sigma -> 0{line}): the global MLE does "
                     "not exist, and starts that run into such a spike are reported as "
                     "degenerate.")
    return tuple(notes)


def fit_mixture(spec: ModelSpec, method: str, *, start: dict | None = None,
                max_iter: int | None = None, strict: bool = False,
                starts: int = DEFAULT_STARTS, random_seed: int | None = None,
                tol: float | None = None) -> MixturePointResult:
    """MLE/MAP (certified Newton) or EM of a mixture ``spec`` from several starts.

    Parameters
    ----------
    spec : ModelSpec
        A mixture spec carrying the priors to use (flat for ``"mle"`` and ``"em"``).
    method : {"mle", "map", "em"}
        ``"em"``: EM iterations, then the engine's certificate at EM's stopping point.
    start : dict, optional
        Natural-scale values overriding the builder's start (the first start).
    max_iter : int, optional
        Newton iterations (200) or EM iterations (10,000) per start.
    strict : bool
        Raise ConvergenceError if the best start is not certified.
    starts : int, default 5
        Number of starts (the builder's and ``starts - 1`` random ones).
    random_seed : int, optional
        Seed of the random starts (drawn from OS entropy and recorded when absent).
    tol : float, optional
        EM's stopping rule: the log-likelihood gain of one iteration (default 1e-12).

    Returns
    -------
    MixturePointResult

    Raises
    ------
    MLENotFoundError
        Every start ended on a degenerate component.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[rng.poisson(1.0, 60), rng.poisson(8.0, 40)]
    >>> res = bm.fit(bm.models.poisson_mixture(y, 2), "em", starts=2, random_seed=0)
    >>> res.method, res.converged, bool(np.all(np.diff(res.loglik_trace) >= -1e-9))
    ('em', True, True)
    >>> list(res.starts.columns)[:4]
    ['loglik', 'logp', 'converged', 'degenerate']
    """
    t0 = time.perf_counter()
    if method == "em" and not spec.is_flat:
        raise SpecError("method 'em' maximises the likelihood (flat priors); fit 'map' for the "
                        "posterior mode.")
    solver = "em" if method == "em" else "newton"
    starts = check_int("starts", starts, 1, MAX_STARTS)
    seed = check_seed(random_seed)
    if max_iter is None:
        max_iter = em.DEFAULT_MAX_ITER if solver == "em" else 200
    if tol is None:
        tol = em.DEFAULT_TOL
    elif not (isinstance(tol, float | int) and not isinstance(tol, bool) and 0 <= tol < 1):
        raise SpecError(f"`tol` must be a number in [0, 1), got {tol!r}.")
    rng = np.random.default_rng(seed)
    bound = bind(spec)
    compile_before = bound.compiled.compile_seconds
    runs = [_one_start(spec, bound, values, solver, max_iter, float(tol))
            for values in starting_values(spec, starts, rng, start)]
    good = [i for i, r in enumerate(runs) if r.opt is not None and not r.degenerate]
    if not good:
        lines = [f"start {i}: {r.degenerate or r.error}" for i, r in enumerate(runs)]
        raise MLENotFoundError(checklist(
            f"Every start of the {method.upper()} of {spec.name!r} ended on a degenerate "
            "solution, where the likelihood is unbounded or a component is empty: "
            + "; ".join(lines) + ".",
            ["Use fewer components (k).",
             "Give sigma a prior that vanishes at 0 (sigma_prior=Gamma(2.0, b)) and fit 'map'.",
             "Try more starts (starts=...) or another random_seed."]))
    best = max(good, key=lambda i: (runs[i].converged, runs[i].ev.logp))
    b = runs[best]
    flat_best = b.ev.flat
    rows = []
    for i, r in enumerate(runs):
        ok = r.opt is not None and r.ev is not None
        rows.append({
            "loglik": r.ev.loglik if ok else np.nan,
            "logp": r.ev.logp if ok else np.nan,
            "converged": r.converged,
            "degenerate": r.degenerate or r.error,
            "iterations": r.iterations,
            "max_abs_diff": (float(np.max(np.abs(r.ev.flat - flat_best)))
                             if ok and not r.degenerate else np.nan),
            "best": i == best,
        })
    table = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="start"))
    hints = ("This is one of several starts; see result.starts.",
             "Try more starts or another random_seed.")
    base = point_result(spec, method, b.opt, b.ev, converged=b.converged,
                        n_params=int(b.opt.free.sum()), strict=False, message=b.opt.message,
                        seconds=time.perf_counter() - t0,
                        compile_seconds=bound.compiled.compile_seconds - compile_before,
                        hints=hints)
    if strict and not b.converged:
        raise ConvergenceError(base.diagnostics[0].message)
    values = {f.name: getattr(base, f.name) for f in fields(PointResult)}
    return MixturePointResult(
        **values, starts=table, notes=_notes(spec, method, len(runs), len(good)),
        random_seed=seed, em_iterations=b.iterations if solver == "em" else None,
        loglik_trace=b.trace if solver == "em" else None)
