"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari 2022, JMLR 23(306)): quasi-Newton VI.

Implemented here on the engine's unconstrained coordinates ``x`` because pymc-extras (the
PyMC implementation) requires ``pymc<6.4`` and does not install on the pinned stack.

**Single path** (the paper's Algorithm 1). L-BFGS (SciPy's, history ``history``) minimises
``f(x) = -log p(x)`` -- the log posterior density of ``x`` *with* the Jacobian of the
transforms, L1 parts of priors included -- from a jittered start, recording every iterate
``x_l`` and gradient ``g_l``. Along the path the L-BFGS inverse-Hessian estimate is rebuilt:
a diagonal ``alpha`` updated from each accepted pair ``(s, y) = (Δx, Δg)`` (the paper's
Algorithm 3; pairs with ``s'y <= 1e-12 |y|^2`` fail the curvature condition and are skipped)
and the ``history`` most recent accepted pairs on top of it. The BFGS recursion from
``diag(alpha)`` is applied densely: for the model sizes of this library it is the same matrix
as the Byrd-Nocedal-Schnabel compact form ``diag(alpha) + beta gamma beta'`` the paper uses
for large dimensions. At each iterate the Gaussian ``N(x_l - H_l g_l, H_l)`` is scored by its
ELBO, estimated with ``elbo_draws`` draws; the best one gives ``draws`` draws with their
``log q``.

**Multi-path** (Algorithm 2): ``paths`` single paths from independent jittered starts (each
``x0 + U(-2, 2)`` per coordinate, as Stan's initialisation), their draws pooled and
importance-resampled (with replacement) by Pareto-smoothed importance weights ``p / q``. The
Pareto ``k`` of the pooled ratios is the result's ``pareto_k``.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.optimize

from bayesmle._validation import MAX_DRAWS, check_int, check_memory, check_seed
from bayesmle.errors import ConvergenceError, ConvergenceWarning, Diagnostic
from bayesmle.inference.approximation import (
    ApproximationResult,
    check_spec,
    gaussian_logq,
    make_result,
    pareto_k,
)
from bayesmle.inference.bound import BoundModel, bind
from bayesmle.models.spec import ModelSpec

__all__ = ["pathfinder"]

_CURVATURE_EPS = 1e-12
_JITTER = 2.0


def _objective(bound: BoundModel):
    """``x -> (f, grad)`` of minus the full log density of ``x`` (L1 parts by subgradient)."""
    smooth = bound.objective(jacobian=True, hessian=False)
    l1 = bound.l1_terms()

    def fg(x):
        f, g = smooth(x)
        f = float(f)
        g = np.array(g, dtype=float)
        if len(l1):
            f += l1.penalty(x)
            g[l1.index] += l1.weight * np.sign(x[l1.index] - l1.center)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return np.inf, np.zeros_like(g)
        return f, g

    return fg


def _update_alpha(alpha: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The paper's diagonal inverse-Hessian update from one accepted pair (kept if not > 0)."""
    a = float(y @ (alpha * y))
    b = float(y @ s)
    c = float(s @ (s / alpha))
    inv = a / (b * alpha) + y**2 / b - a * s**2 / (b * c * alpha**2)
    new = 1.0 / inv
    return new if np.all(np.isfinite(new)) and np.all(new > 0) else alpha


def _inverse_hessian(alpha: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]
                     ) -> np.ndarray:
    """BFGS inverse Hessian from ``diag(alpha)`` and the pairs (oldest first)."""
    h = np.diag(alpha)
    eye = np.eye(alpha.size)
    for s, y in pairs:
        rho = 1.0 / float(y @ s)
        v = eye - rho * np.outer(s, y)
        h = v @ h @ v.T + rho * np.outer(s, s)
    return 0.5 * (h + h.T)


def _path(fg, x0: np.ndarray, rng: np.random.Generator, *, history: int, elbo_draws: int,
          draws: int, max_iter: int) -> dict:
    """One Pathfinder path: the best Gaussian along the L-BFGS path and draws from it."""
    iterates = [np.array(x0, dtype=float)]

    def record(intermediate_result):
        iterates.append(np.array(intermediate_result.x, dtype=float))

    opt = scipy.optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", callback=record,
                                  options={"maxcor": history, "maxiter": max_iter,
                                           "ftol": 1e-13, "gtol": 1e-10})
    grads = [fg(x)[1] for x in iterates]
    alpha = np.ones(x0.size)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    best = None
    for i in range(1, len(iterates)):
        s, y = iterates[i] - iterates[i - 1], grads[i] - grads[i - 1]
        if not float(s @ y) > _CURVATURE_EPS * float(y @ y):
            continue
        alpha = _update_alpha(alpha, s, y)
        pairs = [*pairs, (s, y)][-history:]
        h = _inverse_hessian(alpha, pairs)
        try:
            chol = np.linalg.cholesky(h)
        except np.linalg.LinAlgError:
            continue
        mean = iterates[i] - h @ grads[i]
        xs = mean + rng.standard_normal((elbo_draws, x0.size)) @ chol.T
        log_p = -np.array([fg(x)[0] for x in xs])
        elbo = float(np.mean(log_p - gaussian_logq(xs, mean, chol)))
        if not np.isfinite(elbo):
            continue
        if best is None or elbo > best["elbo"]:
            best = {"elbo": elbo, "mean": mean, "chol": chol, "iteration": i}
    if best is None:
        return {"n_iter": len(iterates) - 1, "message": str(opt.message), "failed": True}
    xs = best["mean"] + rng.standard_normal((draws, x0.size)) @ best["chol"].T
    return {**best, "xs": xs, "log_q": gaussian_logq(xs, best["mean"], best["chol"]),
            "n_iter": len(iterates) - 1, "message": str(opt.message), "failed": False}


def _jittered_start(fg, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    for _ in range(20):
        x = x0 + rng.uniform(-_JITTER, _JITTER, size=x0.size)
        if np.isfinite(fg(x)[0]):
            return x
    return x0


def pathfinder(spec: ModelSpec, *, draws: int = 1000, paths: int = 4, max_iter: int = 1000,
               history: int = 6, elbo_draws: int = 50, random_seed: int | None = None,
               start=None) -> ApproximationResult:
    """Multi-path Pathfinder approximation of the posterior (see the module docstring).

    Parameters
    ----------
    spec : ModelSpec
        The model (not a mixed model nor least-absolute-deviations regression).
    draws : int, default 1000
        Draws returned; with ``paths > 1`` also the draws made per path before resampling.
    paths : int, default 4
        Independent paths; 1 returns the draws of the single path's Gaussian unresampled.
    max_iter : int, default 1000
        L-BFGS iterations per path.
    history : int, default 6
        L-BFGS history size ``J``.
    elbo_draws : int, default 50
        Draws ``K`` estimating the ELBO of each Gaussian along a path.
    random_seed : int, optional
        Seed of the starts and draws (drawn from entropy and recorded when absent).
    start : dict, optional
        Natural-scale values around which the starts are jittered.

    Returns
    -------
    ApproximationResult

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([1.2, 0.4, 2.2, 1.0])
    >>> spec = bm.models.gaussian(y, mu_prior=bm.Normal(10.0),
    ...                           sigma_prior=bm.HalfNormal(5.0))
    >>> res = pathfinder(spec, draws=400, paths=2, random_seed=3)
    >>> res.info["paths"], res.draws().shape
    (2, (400, 2))
    """
    check_spec(spec, "pathfinder")
    draws = check_int("draws", draws, 1, MAX_DRAWS)
    paths = check_int("paths", paths, 1, 64)
    max_iter = check_int("max_iter", max_iter, 1, 100_000)
    history = check_int("history", history, 1, 100)
    elbo_draws = check_int("elbo_draws", elbo_draws, 1, 100_000)
    seed = check_seed(random_seed)
    t0 = time.perf_counter()
    bound = bind(spec)
    check_memory(f"{paths} x {draws:,} Pathfinder draws", paths * draws, 8 * 4 * bound.size,
                 "Ask for fewer `draws` or `paths`.")
    fg = _objective(bound)
    x0 = bound.start_x(start)
    if not np.isfinite(fg(x0)[0]):
        raise ConvergenceError(f"Pathfinder: the log-density of model {spec.name!r} is not "
                               f"finite at the start {bound.x_to_point(x0)}; pass start={{...}} "
                               "inside the support.")
    rngs = [np.random.default_rng([seed, p]) for p in range(paths)]
    results = [_path(fg, _jittered_start(fg, x0, rng), rng, history=history,
                     elbo_draws=elbo_draws, draws=draws, max_iter=max_iter) for rng in rngs]
    good = [r for r in results if not r["failed"]]
    if not good:
        raise ConvergenceError(
            f"Pathfinder found no Gaussian approximation along any of its {paths} path(s) for "
            f"model {spec.name!r} (no L-BFGS step satisfied the curvature condition or every "
            f"ELBO was infinite); L-BFGS said: {results[0]['message']}. Try method='laplace' "
            "or 'nuts'.")
    diagnostics = []
    if len(good) < paths:
        diagnostics.append(Diagnostic(ConvergenceWarning, (
            f"Pathfinder: {paths - len(good)} of {paths} paths found no approximation and "
            "were left out.")))
    pooled = np.concatenate([r["xs"] for r in good])
    log_q = np.concatenate([r["log_q"] for r in good])
    log_p_pool = -np.array([fg(x)[0] for x in pooled])
    k, log_w = pareto_k(log_p_pool - log_q)
    info = {"paths": paths, "n_iter": [r["n_iter"] for r in results],
            "best_iteration": [r.get("iteration") for r in results],
            "elbo": [r.get("elbo") for r in results], "history": history,
            "elbo_draws": elbo_draws}
    if len(good) > 1:
        weights = np.exp(log_w) if np.all(np.isfinite(log_w)) else None
        if weights is not None:
            weights = weights / weights.sum()
        pick = np.random.default_rng([seed, paths]).choice(pooled.shape[0], size=draws,
                                                            replace=True, p=weights)
        xs, log_q_out = pooled[pick], None
        info["resampled"] = True
    else:
        xs, log_q_out = pooled, log_q
        info["resampled"] = False
    return make_result(spec, "pathfinder", bound, xs, log_q_out, k=k,
                       seconds=time.perf_counter() - t0, seed=seed, info=info,
                       diagnostics=tuple(diagnostics))
