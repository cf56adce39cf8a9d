"""The Laplace approximation: the mode of the unconstrained posterior and draws of its Gaussian.

:class:`LaplaceResult` is *composed* of a :class:`~bayesmle.inference.point.PointResult` at the
mode and the :class:`~bayesmle.inference.draws.Draws` of the approximation; it is not a
subclass of either, so code that tells results apart never depends on the order of
``isinstance`` checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle._validation import MAX_DRAWS, check_int, check_memory, check_seed, no_positional
from bayesmle.errors import Diagnostic, SpecError
from bayesmle.inference.bound import bind
from bayesmle.inference.draws import DrawStatistics, posterior_tree
from bayesmle.inference.lad import SOLVER as LAD
from bayesmle.inference.mixed.effects import RandomEffects
from bayesmle.inference.point import PointResult
from bayesmle.inference.point_fit import fit_point
from bayesmle.inference.predictive import Predicts
from bayesmle.inference.responsibilities import Responsibilities
from bayesmle.models.spec import ModelSpec

__all__ = ["LaplaceResult", "laplace_approximation", "normal_draws"]


@dataclass(frozen=True, eq=False)
class LaplaceResult(DrawStatistics, Predicts, RandomEffects, Responsibilities):
    """Gaussian approximation ``N(mode, H^-1)`` of the posterior in the unconstrained space.

    ``params`` is the mode of the posterior density of the unconstrained parameters (log scale,
    log-odds, ... -- the density *with* the Jacobian of the transform) mapped back to the
    natural scale, and ``stderr`` the delta-method standard errors there (both from ``mode``).
    ``mean()``, ``sd()`` and ``interval()`` summarise draws from the Gaussian pushed through
    the inverse transforms, so they respect the support (a scale parameter's draws stay
    positive).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    >>> lap = bm.fit(bm.models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0)), "laplace",
    ...              draws=500, random_seed=0)
    >>> lap.method, lap.converged, sorted(lap.params)
    ('laplace', True, ['p'])
    >>> bool(0.0 < lap.interval(level=0.9).loc["p", "lower"] < lap.mean()["p"])
    True
    """

    mode: PointResult
    datatree: xr.DataTree
    seconds: float = 0.0
    #: The seed of the draws: the one given, or the one drawn when none was.
    random_seed: int | None = None
    method: str = field(default="laplace", init=False)
    #: The draws of the unconstrained coordinates ``x``, ``(draws, size)`` (PSIS-LOO corrects
    #: for the approximation with their densities); None when the Hessian was not PD.
    x_draws: np.ndarray | None = field(default=None, repr=False)
    #: Unnormalised log posterior density of ``x`` (with the Jacobian) at each draw: with
    #: the Gaussian's own density, the importance ratios of approximate-posterior PSIS-LOO.
    log_p_draws: np.ndarray | None = field(default=None, repr=False)

    # -- the mode (delegated) -----------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        """The model."""
        return self.mode.spec

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The mode on the natural scale, by parameter name."""
        return self.mode.params

    @property
    def stderr(self) -> dict[str, np.ndarray]:
        """Delta-method standard errors at the mode."""
        return self.mode.stderr

    @property
    def labels(self) -> list[str]:
        """One label per scalar parameter."""
        return self.mode.labels

    @property
    def converged(self) -> bool:
        """Whether the mode is certified."""
        return self.mode.converged

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """The mode's diagnostics (an uncertified mode, a singular Hessian)."""
        return self.mode.diagnostics

    @property
    def compile_seconds(self) -> float:
        """Seconds spent compiling for this fit."""
        return self.mode.compile_seconds

    def flat_params(self) -> np.ndarray:
        """The mode as one vector, in ``labels`` order."""
        return self.mode.flat_params()

    def conf_int(self, *args, level: float = 0.95, method: str = "wald") -> pd.DataFrame:
        """Wald intervals at the mode (profiles are defined for MLE and MAP only)."""
        no_positional("conf_int", args, 0.95)
        if method == "profile":
            raise SpecError("Profile intervals are defined for 'mle' and 'map' results; for the "
                            "Laplace approximation use result.interval(level=...) on its draws.")
        return self.mode.conf_int(level=level, method=method)

    # -- the draws ----------------------------------------------------------------------------
    def summary(self, *args, level: float = 0.94) -> pd.DataFrame:
        """Mode and its standard error, mean, sd and equal-tailed interval of the draws."""
        no_positional("summary", args, 0.94)
        iv = self.interval(level=level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        df = pd.DataFrame({"mode": self.mode.flat_params(), "stderr": self.mode.flat_stderr()},
                          index=self.labels)
        df["mean"], df["sd"] = self.mean(), self.sd()
        df[f"eti_{lo}"], df[f"eti_{hi}"] = iv["lower"], iv["upper"]
        df.index.name = "parameter"
        return df

    def to_datatree(self) -> xr.DataTree:
        """The draws as a DataTree, with the ``fit`` group of the mode."""
        return xr.DataTree.from_dict({"posterior": self.datatree["posterior"].to_dataset(),
                                      "fit": self.mode.fit_dataset()})

    def __repr__(self) -> str:
        return (f"<LaplaceResult of {self.spec.name}: {self.datatree['posterior'].sizes['draw']}"
                f" draws, mode {'converged' if self.converged else 'NOT converged'}>")


def laplace_approximation(
    spec: ModelSpec, *, draws: int = 2000, random_seed: int | None = None, start=None,
    max_iter: int = 200, strict: bool = False,
) -> LaplaceResult:
    """Gaussian approximation at the posterior mode in the unconstrained space.

    See :func:`bayesmle.fit` for the parametrisation and the treatment of Jacobians.
    """
    draws = check_int("draws", draws, 1, MAX_DRAWS)
    seed = check_seed(random_seed)
    if spec.solver == LAD:
        raise SpecError(
            "The Laplace approximation is not defined for least-absolute-deviations regression "
            "(noise='laplace'): its log-likelihood has no curvature in the coefficients (the "
            "Hessian is zero almost everywhere). Use method='nuts' for the posterior, or "
            "'mle'/'map' for the exact optimum."
        )
    for check in spec.posterior_checks:
        check(spec)
    t0 = time.perf_counter()
    mode = fit_point(spec, "laplace", jacobian=True, start=start, max_iter=max_iter,
                     strict=strict)
    x = mode.optimum.x
    per_draw = sum(int(np.size(v)) for v in mode.params.values())
    check_memory(f"{draws:,} Laplace draws", draws, 8 * (2 * x.size + 4 * per_draw),
                 "Ask for fewer `draws`.")
    arrays, xs, log_p = normal_draws(mode, draws, seed, return_x=True)
    return LaplaceResult(mode=mode, datatree=posterior_tree(spec, arrays),
                         seconds=time.perf_counter() - t0, random_seed=seed, x_draws=xs,
                         log_p_draws=log_p)


def normal_draws(point: PointResult, draws: int, seed: int, *, return_x: bool = False):
    """Reported values at draws of ``x ~ N(optimum, H^-1)`` (free coordinates), by name.

    ``H`` is the Hessian of the point's objective in the model's unconstrained coordinates:
    with the Jacobian (a Laplace mode) this is the Laplace approximation, without it (an MLE)
    the Wald distribution of the estimate -- in either case pushed through the inverse
    transforms, so scales stay positive. Arrays are ``(1, draws, *shape)``; NaN when the
    Hessian is not positive definite. With ``return_x`` also the draws of ``x``,
    ``(draws, size)``, and the log posterior density (with the Jacobian) at each (both None
    when the Hessian is not positive definite).
    """
    spec, opt = point.spec, point.optimum
    x, free = opt.x, opt.free
    values: dict[str, np.ndarray] = {}
    xs = log_p = None
    if point.hessian_pd:
        try:
            cov = np.linalg.inv(opt.hess[np.ix_(free, free)])
            chol = np.linalg.cholesky(0.5 * (cov + cov.T))
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None:
            bound = bind(spec)
            z = np.random.default_rng(seed).standard_normal((draws, int(free.sum())))
            xs = np.tile(x, (draws, 1))
            xs[:, free] += z @ chol.T
            values, log_p = bound.evaluate_draws(xs)
    arrays = {}
    for name in spec.params:
        shape = np.shape(point.params[name])
        arr = values[name] if values else np.full((draws, *shape), np.nan)
        arrays[name] = np.asarray(arr, dtype=float).reshape(1, draws, *shape)
    return (arrays, xs, log_p) if return_x else arrays
