"""ADVI (mean-field and full-rank) by ``pymc.fit``, checked against the exact posterior.

PyMC fits the Gaussian approximation of the posterior of the unconstrained value variables
(stochastic gradient ascent on the ELBO); its mean and covariance are read from the
approximation and mapped, by value-variable name, onto the engine's coordinates ``x``. The
draws are then made here (NumPy, seeded), with the Gaussian's ``log q`` and the exact
``log p`` (:meth:`~bayesmle.inference.bound.BoundModel.evaluate`) of each, so that the Pareto
``k`` of ``p / q`` tells how good the approximation is.

The optimiser is Adam (``learning_rate``, default 0.01) with ``obj_n_mc=10`` Monte Carlo draws
per gradient: PyMC's default (windowed Adagrad, learning rate 0.001) had not reached the
posterior sds of a 3-coefficient regression after 5000 iterations (0.35 for 0.21). A constant
step size leaves the final parameters jittering around the optimum (about 0.1-0.2 posterior
sds for the means in the tests): ADVI is a stochastic approximation.

Convergence: the ELBO trace must have reached a plateau -- the mean loss of the last 10% of
iterations within 3 standard errors of that of the 10% before (``pymc.callbacks.
CheckParametersConvergence`` stops on the change of the parameters, which never falls below
its tolerance under this noise). Otherwise the result carries a ``ConvergenceWarning``.
"""

from __future__ import annotations

import time

import numpy as np
import pymc as pm

from bayesmle._validation import MAX_DRAWS, check_int, check_memory, check_seed
from bayesmle.errors import ConvergenceError, ConvergenceWarning, Diagnostic, SpecError
from bayesmle.inference.approximation import (
    ApproximationResult,
    check_spec,
    gaussian_logq,
    make_result,
    pareto_k,
)
from bayesmle.inference.bound import BoundModel, bind
from bayesmle.models.spec import ModelSpec

__all__ = ["ADVI_METHODS", "advi"]

#: ``fit`` method name -> ``pymc.fit`` method.
ADVI_METHODS = {"advi": "advi", "fullrank_advi": "fullrank_advi"}
_N_MC = 10


def _engine_layout(approx, bound: BoundModel) -> np.ndarray:
    """Index array taking PyMC's flattened approximation vector to the engine's ``x``."""
    group = approx.groups[0]
    ordering = group.ordering
    index = []
    template = bound.x_to_point(np.zeros(bound.size))
    for v in bound.compiled.value_vars:
        name = v.name
        if name not in ordering:
            raise SpecError(f"ADVI: the value variable {name!r} of the compiled model is not "
                            f"in PyMC's approximation ({list(ordering)}).")
        _, sl, shape, _ = ordering[name]
        if tuple(shape) != np.shape(template[name]):
            raise SpecError(f"ADVI: value variable {name!r} has shape {tuple(shape)} in PyMC's "
                            f"approximation and {np.shape(template[name])} in the engine.")
        index.append(np.arange(sl.start, sl.stop))
    out = np.concatenate(index) if index else np.zeros(0, dtype=int)
    if out.size != bound.size:
        raise SpecError(f"ADVI: the approximation has {group.ddim} coordinates, the model "
                        f"{bound.size}.")
    return out


def _plateau(hist: np.ndarray) -> tuple[bool, float, float, float]:
    """Whether the loss trace is flat: last 10% vs the 10% before, within 3 standard errors."""
    m = hist.size // 10
    if m < 2 or not np.all(np.isfinite(hist[-2 * m:])):
        return False, float("nan"), float("nan"), float("nan")
    a, b = hist[-2 * m:-m], hist[-m:]
    se = float(np.sqrt(a.var(ddof=1) / m + b.var(ddof=1) / m))
    return bool(abs(b.mean() - a.mean()) <= 3 * se), float(b.mean()), float(a.mean()), se


def advi(spec: ModelSpec, *, method: str = "advi", draws: int = 2000, n: int = 10_000,
         learning_rate: float = 0.01, random_seed: int | None = None) -> ApproximationResult:
    """ADVI approximation of the posterior (see the module docstring).

    Parameters
    ----------
    spec : ModelSpec
        The model (not a mixed model nor least-absolute-deviations regression).
    method : {"advi", "fullrank_advi"}
        Mean-field (independent Gaussians) or full-rank (one correlated Gaussian).
    draws : int, default 2000
        Draws from the fitted approximation.
    n : int, default 10000
        Number of ADVI iterations.
    learning_rate : float, default 0.01
        Adam's step size.
    random_seed : int, optional
        Seed of the fit and the draws (drawn from entropy and recorded when absent).

    Returns
    -------
    ApproximationResult

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    >>> res = advi(bm.models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0)), draws=500,
    ...            random_seed=0)
    >>> res.method, bool(0.4 < res.params["p"] < 0.8)
    ('advi', True)
    """
    if method not in ADVI_METHODS:
        raise SpecError(f"ADVI `method` must be one of {list(ADVI_METHODS)}, got {method!r}.")
    check_spec(spec, method)
    draws = check_int("draws", draws, 1, MAX_DRAWS)
    n = check_int("n", n, 1, 10_000_000)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not (
            0 < learning_rate <= 1):
        raise SpecError(f"`learning_rate` must be a number in (0, 1], got {learning_rate!r}.")
    seed = check_seed(random_seed)
    t0 = time.perf_counter()
    bound = bind(spec)
    check_memory(f"{draws:,} ADVI draws", draws, 8 * 4 * bound.size, "Ask for fewer `draws`.")
    model = spec.build()
    try:
        approx = pm.fit(n=n, method=ADVI_METHODS[method], model=model,
                        random_seed=seed % 2**32, progressbar=False,
                        obj_optimizer=pm.adam(learning_rate=float(learning_rate)),
                        obj_n_mc=_N_MC)
    except FloatingPointError as exc:  # PyMC: NaN in the ELBO
        raise ConvergenceError(
            f"ADVI ({method}) on model {spec.name!r} diverged: {exc}. Try method='pathfinder', "
            "'laplace' or 'nuts', or more informative priors.") from None
    iterations = len(approx.hist)
    layout = _engine_layout(approx, bound)
    mean = np.asarray(approx.mean.eval(), dtype=float)[layout]
    cov = np.asarray(approx.cov.eval(), dtype=float)[np.ix_(layout, layout)]
    try:
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
    except np.linalg.LinAlgError:
        raise ConvergenceError(f"ADVI ({method}) on model {spec.name!r} returned a covariance "
                               "that is not positive definite.") from None
    rng = np.random.default_rng([seed, 1])
    xs = mean + rng.standard_normal((draws, mean.size)) @ chol.T
    log_q = gaussian_logq(xs, mean, chol)
    result = make_result(spec, method, bound, xs, log_q, k=np.nan, seconds=0.0, seed=seed,
                         info={})
    k, _ = pareto_k(result.log_p_draws - log_q)
    hist = np.asarray(approx.hist, dtype=float)
    diagnostics = []
    converged, last, before, se = _plateau(hist)
    if not converged:
        diagnostics.append(Diagnostic(ConvergenceWarning, (
            f"ADVI ({method}) on model {spec.name!r} has not converged in n={n} iterations: "
            f"the mean -ELBO of the last 10% of iterations ({last:.6g}) differs from that of "
            f"the 10% before ({before:.6g}) by more than 3 standard errors ({se:.3g}). "
            "Increase `n`, or use method='pathfinder' or 'nuts'.")))
    info = {"iterations": iterations, "converged": converged, "learning_rate": learning_rate,
            "loss": hist, "mean_x": mean, "cov_x": cov}
    return ApproximationResult(
        spec=spec, method=method, datatree=result.datatree, pareto_k=k, x_draws=xs,
        log_p_draws=result.log_p_draws, log_q_draws=log_q,
        seconds=time.perf_counter() - t0, random_seed=seed, info=info,
        extra_diagnostics=tuple(diagnostics))
