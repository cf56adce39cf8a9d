"""Variational approximations (ADVI, Pathfinder): their result and the PSIS check against p.

An :class:`ApproximationResult` holds draws of the reported parameters from an approximation
``q`` of the posterior in the model's unconstrained coordinates ``x`` (those of
:class:`~bayesmle.inference.bound.BoundModel`), with -- for every draw of ``q`` -- the exact
unnormalised log posterior density ``log p(x)`` (with the Jacobian of the transforms) and the
approximation's own ``log q(x)``. The Pareto ``k`` of the importance ratios ``p / q``
(Pareto-smoothed importance sampling, Yao, Vehtari, Simpson & Gelman 2018) says how good the
approximation is: below 0.5 good, 0.5-0.7 usable with care, above 0.7 the approximation (and
anything importance sampling would do to fix it) is unreliable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle._validation import no_positional
from bayesmle.errors import Diagnostic, SamplingWarning, SpecError, checklist
from bayesmle.inference.bound import BoundModel
from bayesmle.inference.draws import DrawSummaries, posterior_tree
from bayesmle.inference.lad import SOLVER as LAD
from bayesmle.inference.predictive import Predicts
from bayesmle.inference.responsibilities import Responsibilities
from bayesmle.models.spec import ModelSpec

__all__ = ["APPROXIMATION_METHODS", "K_BAD", "K_GOOD", "ApproximationResult", "check_spec",
           "gaussian_logq", "make_result", "pareto_k", "values_at"]

#: The methods whose results are :class:`ApproximationResult`.
APPROXIMATION_METHODS = ("advi", "fullrank_advi", "pathfinder")
#: Pareto k above this: the approximation is poor (a ``SamplingWarning`` diagnostic).
K_BAD = 0.7
#: Pareto k above this (and at most ``K_BAD``): a softer note.
K_GOOD = 0.5


def pareto_k(log_ratios: np.ndarray) -> tuple[float, np.ndarray]:
    """Pareto k of importance ratios ``exp(log_ratios)`` and their PSIS-smoothed log weights.

    ``log_ratios`` are ``log p(x) - log q(x)`` at draws ``x`` of ``q`` (constants do not
    matter). Uses ``arviz_stats``' array function, which emits no Python warning for a large k.

    Returns
    -------
    k : float
        The Pareto shape of the upper tail of the ratios (NaN for fewer than 2 draws or
        non-finite ratios).
    log_weights : ndarray
        Normalised Pareto-smoothed log weights (summing to 1 on the natural scale).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> k, lw = pareto_k(rng.normal(scale=0.1, size=2000))  # near-constant ratios: k small
    >>> bool(k < 0.5), bool(np.isclose(np.exp(lw).sum(), 1.0))
    (True, True)
    >>> k, _ = pareto_k(np.log(rng.pareto(1.0, size=4000) + 1.0))  # tail index 1: k near 1
    >>> bool(0.7 < k < 1.3)
    True
    """
    lr = np.asarray(log_ratios, dtype=float).ravel()
    if lr.size < 2 or not np.all(np.isfinite(lr)):
        return math.nan, np.full(lr.shape, np.nan)
    from arviz_stats.base import array_stats  # heavy (~1 s): imported on first use

    # arviz_stats' psislw takes log-likelihood values (the ratios of leave-one-out are
    # 1 / likelihood): pass minus the log ratios.
    log_weights, k = array_stats.psislw(-(lr - lr.max()))
    return float(k), np.asarray(log_weights, dtype=float)


def gaussian_logq(xs: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Log density of ``N(mean, chol chol')`` at the rows of ``xs``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.stats
    >>> cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    >>> x = np.array([[0.1, -0.2], [1.0, 2.0]])
    >>> got = gaussian_logq(x, np.zeros(2), np.linalg.cholesky(cov))
    >>> bool(np.allclose(got, scipy.stats.multivariate_normal(np.zeros(2), cov).logpdf(x)))
    True
    """
    import scipy.linalg

    d = np.atleast_2d(xs) - mean
    z = scipy.linalg.solve_triangular(chol, d.T, lower=True)
    logdet = float(np.sum(np.log(np.abs(np.diag(chol)))))
    return -0.5 * np.sum(z * z, axis=0) - logdet - 0.5 * mean.size * math.log(2 * math.pi)


def values_at(bound: BoundModel, xs: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Reported values ``(1, draws, *shape)`` by name and ``log p`` (with Jacobian) at ``xs``."""
    values, log_p = bound.evaluate_draws(xs)
    arrays = {name: np.asarray(values[name], dtype=float)[None] for name in bound.spec.params}
    return arrays, log_p


def check_spec(spec: ModelSpec, method: str) -> None:
    """Refuse models the approximations do not cover, and improper posteriors."""
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"`spec` must be a ModelSpec, got {type(spec).__name__}.")
    if spec.solver == "mixed":
        raise SpecError(
            f"method {method!r} is not available for mixed models (random-effects terms): "
            "their methods are 'mle', 'reml', 'map', 'laplace' (marginal likelihood) and "
            "'nuts' (joint model).")
    if spec.solver == LAD:
        raise SpecError(
            f"method {method!r} is not available for least-absolute-deviations regression "
            "(noise='laplace'): its log-density is not differentiable in the coefficients. "
            "Use 'nuts', or 'mle'/'map' for the exact optimum.")
    for check in spec.posterior_checks:
        check(spec)


@dataclass(frozen=True, eq=False)
class ApproximationResult(DrawSummaries, Predicts, Responsibilities):
    """Draws from a variational approximation of the posterior, with its Pareto k.

    ``params`` are the means of the draws (as for NUTS); ``mean()``, ``sd()`` and
    ``interval()`` summarise the draws. ``pareto_k`` compares the approximation ``q`` with
    the exact posterior density ``p`` over ``q``'s own draws; above 0.7 the result carries a
    ``SamplingWarning`` diagnostic (the approximation is poor), above 0.5 a softer one.

    Attributes
    ----------
    method : str
        ``"advi"`` (mean-field), ``"fullrank_advi"`` or ``"pathfinder"``.
    pareto_k : float
        Pareto k of the importance ratios ``p(x) / q(x)`` over the draws of ``q``.
    x_draws, log_p_draws, log_q_draws : ndarray
        Draws of the unconstrained coordinates ``(draws, size)``, the unnormalised log
        posterior density (with the Jacobian) and the approximation's log density at each
        (``log_q_draws`` is None when the draws were importance-resampled, as multi-path
        Pathfinder does: they then approximate the posterior itself).
    info : dict
        Method-specific details (iterations, ELBO, paths...).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.random.default_rng(0).normal(1.0, 0.5, size=40)
    >>> spec = bm.models.gaussian(y, mu_prior=bm.Normal(10.0),
    ...                           sigma_prior=bm.HalfNormal(5.0))
    >>> res = bm.fit(spec, "pathfinder", draws=1000, random_seed=1)
    >>> res.method, sorted(res.params), bool(res.pareto_k < 0.5)
    ('pathfinder', ['mu', 'sigma'], True)
    """

    spec: ModelSpec
    method: str
    datatree: xr.DataTree
    pareto_k: float
    x_draws: np.ndarray = field(repr=False)
    log_p_draws: np.ndarray = field(repr=False)
    log_q_draws: np.ndarray | None = field(default=None, repr=False)
    seconds: float = 0.0
    random_seed: int | None = None
    info: dict = field(default_factory=dict, repr=False)
    extra_diagnostics: tuple[Diagnostic, ...] = field(default=(), repr=False)

    def summary(self, *args, level: float = 0.94) -> pd.DataFrame:
        """Mean, sd and equal-tailed interval of the draws, one row per scalar parameter."""
        no_positional("summary", args, 0.94)
        iv = self.interval(level=level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        df = pd.DataFrame({"mean": self.mean(), "sd": self.sd(),
                           f"eti_{lo}": iv["lower"], f"eti_{hi}": iv["upper"]})
        df.index.name = "parameter"
        return df

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """A poor approximation (Pareto k) and the method's own problems, as data."""
        out = list(self.extra_diagnostics)
        k = self.pareto_k
        name = {"advi": "Mean-field ADVI", "fullrank_advi": "Full-rank ADVI",
                "pathfinder": "Pathfinder"}.get(self.method, self.method)
        if not k <= K_BAD:
            out.append(Diagnostic(SamplingWarning, checklist(
                f"{name} is a poor approximation of the posterior of {self.spec.name!r}: "
                f"Pareto k = {k:.2f} > {K_BAD} for the importance ratios p/q over its draws"
                + ("" if k == k else " (NaN: the posterior density is not finite at some "
                                     "draws)") + ".",
                ["Do not trust its means, sds or intervals; use method='nuts'.",
                 "A funnel or strongly skewed posterior cannot be approximated by a Gaussian "
                 "in these coordinates; reparametrise (non-centred) if possible."])))
        elif k > K_GOOD:
            out.append(Diagnostic(SamplingWarning, (
                f"{name}: Pareto k = {k:.2f} for the importance ratios p/q (0.5 < k <= 0.7): "
                f"the approximation of the posterior of {self.spec.name!r} is only roughly "
                "right; check it against method='nuts'.")))
        return tuple(out)

    def to_datatree(self) -> xr.DataTree:
        """The draws as a DataTree, with a ``fit`` group holding the Pareto k."""
        fit = xr.Dataset({"pareto_k": self.pareto_k},
                         attrs={"method": self.method, "model": self.spec.name})
        return xr.DataTree.from_dict({"posterior": self.datatree["posterior"].to_dataset(),
                                      "fit": fit})

    def __repr__(self) -> str:
        return (f"<ApproximationResult {self.method} of {self.spec.name}: "
                f"{self.datatree['posterior'].sizes['draw']} draws, "
                f"pareto_k={self.pareto_k:.2f}>")


def make_result(spec: ModelSpec, method: str, bound: BoundModel, xs: np.ndarray,
                log_q: np.ndarray | None, *, k: float, seconds: float, seed: int,
                info: dict, diagnostics: tuple[Diagnostic, ...] = (),
                log_p: np.ndarray | None = None,
                values: dict[str, np.ndarray] | None = None) -> ApproximationResult:
    """Assemble a result from draws of ``x`` (values and ``log p`` computed unless given)."""
    if values is None or log_p is None:
        values, log_p = values_at(bound, xs)
    return ApproximationResult(
        spec=spec, method=method, datatree=posterior_tree(spec, values), pareto_k=k,
        x_draws=xs, log_p_draws=log_p, log_q_draws=log_q, seconds=seconds,
        random_seed=seed, info=info, extra_diagnostics=diagnostics)
