"""Point results (MLE, MAP): one surface, as in statsmodels and lifelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle._validation import check_level, no_positional
from bayesmle.errors import Diagnostic, SpecError
from bayesmle.inference.mixed.effects import RandomEffects
from bayesmle.inference.optimize import Optimum
from bayesmle.inference.predictive import Predicts
from bayesmle.inference.responsibilities import Responsibilities

if TYPE_CHECKING:
    from bayesmle.inference.mixed.fit import MixedFit
    from bayesmle.models.spec import ModelSpec

__all__ = ["PointResult"]


@dataclass(frozen=True, eq=False)
class PointResult(Predicts, RandomEffects, Responsibilities):
    """An optimum of the likelihood or posterior, certified, with its observed information.

    Attributes
    ----------
    method : str
        ``"mle"`` or ``"map"`` (``"laplace"`` for the mode of a Laplace approximation).
    params : dict of str to ndarray
        Estimates on the natural scale, by parameter name.
    stderr : dict of str to ndarray
        Standard errors from the observed information (inverse negative Hessian of the
        objective at the optimum, mapped to the natural parametrisation). NaN where undefined
        (e.g. lasso coefficients at exactly zero, or a singular Hessian).
    cov : ndarray
        Covariance matrix of the flattened parameters, rows/columns labelled by ``labels``.
    labels : list of str
        One label per scalar parameter (``coef[age]``, ``sigma``...).
    loglik : float
        Log-likelihood at the estimate (observed data only, no prior).
    logp : float
        Log-density of the model at the estimate (likelihood + priors, Jacobian-free).
    aic, bic : float
        Information criteria from ``loglik`` and the number of free parameters.
    converged : bool
        True only if the Newton decrement is at most 1e-10 (for exact solvers: their
        optimality certificate holds) *and* the Hessian is positive definite on the free
        coordinates.
    optimum : Optimum
        The optimiser's record: point in the model's unconstrained coordinates, gradient,
        Hessian, active set, L1 terms, certificate.
    diagnostics : tuple of Diagnostic
        What went wrong (an uncertified optimum, a singular Hessian), as data;
        :func:`bayesmle.fit` emits them as warnings.
    local_optimum : bool
        True when some prior in the objective is not log-concave (Student-t, Cauchy): the
        posterior may have several modes, and the certificate (gradient, Newton decrement,
        positive-definite Hessian) proves a *local* optimum only. Shown in the repr and in the
        ``fit`` group of :meth:`to_datatree`.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([1.0, 2.0, 4.0, 7.0])
    >>> mle = bm.fit(bm.models.gaussian(y), "mle")
    >>> float(mle.params["mu"]), mle.converged
    (3.5, True)
    >>> mle.conf_int(level=0.95).columns.tolist()
    ['lower', 'upper']
    """

    spec: ModelSpec
    method: str
    params: dict[str, np.ndarray]
    stderr: dict[str, np.ndarray]
    cov: np.ndarray
    labels: list[str]
    loglik: float
    logp: float
    logp_jacobian: float
    n_params: int
    converged: bool
    message: str
    optimum: Optimum
    #: Derivative of the flattened reported values with respect to ``optimum.x``.
    jacobian: np.ndarray
    seconds: float = 0.0
    compile_seconds: float = 0.0
    diagnostics: tuple[Diagnostic, ...] = ()
    #: A mixed model's fit record (theta, conditional modes of the random effects, the
    #: optimised marginal criterion); None for other models.
    mixed: MixedFit | None = field(default=None, repr=False)
    local_optimum: bool = False

    # -- the optimiser's certificate -------------------------------------------------------
    @property
    def grad_norm(self) -> float:
        """Infinity norm of the (minimum-norm sub)gradient in the optimiser's coordinates."""
        return self.optimum.grad_norm

    @property
    def newton_decrement(self) -> float:
        """Predicted decrease of the objective by one more Newton step (log-density units)."""
        return float(self.optimum.decrement)

    @property
    def hessian_pd(self) -> bool:
        """Whether the Hessian is positive definite at the estimate (free coordinates)."""
        return bool(self.optimum.hess_pd)

    @property
    def n_iter(self) -> int:
        """Number of optimiser iterations."""
        return int(self.optimum.n_iter)

    @property
    def zero_mask(self) -> np.ndarray | None:
        """Coordinates held exactly at an L1 kink (lasso zeros), or None if there are none."""
        fixed = ~self.optimum.free
        return fixed if fixed.any() else None

    # -- information criteria ---------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations."""
        return int(self.spec.nobs)

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``2k - 2 loglik``."""
        return 2.0 * self.n_params - 2.0 * self.loglik

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``k log(n) - 2 loglik``."""
        return self.n_params * np.log(self.nobs) - 2.0 * self.loglik

    # -- flat views -------------------------------------------------------------------------
    def flat_params(self) -> np.ndarray:
        """All estimates as one vector, in ``labels`` order."""
        return np.concatenate([np.atleast_1d(v).ravel() for v in self.params.values()])

    def flat_stderr(self) -> np.ndarray:
        """All standard errors as one vector, in ``labels`` order."""
        return np.concatenate([np.atleast_1d(v).ravel() for v in self.stderr.values()])

    def conf_int(self, *args, level: float = 0.95, method: str = "wald") -> pd.DataFrame:
        """Confidence intervals, one row per scalar parameter.

        Parameters
        ----------
        level : float, default 0.95
            Coverage, keyword-only, in [0.5, 1) (an ``alpha`` such as 0.05 is refused with a
            message: pass ``level=0.95``).
        method : {"wald", "profile"}
            ``"wald"``: estimate ± z·stderr on the natural scale.
            ``"profile"``: profile-likelihood interval, where the log-likelihood maximised
            over the other parameters drops by ``chi2_1(level) / 2`` (for a MAP, the
            log-posterior is profiled); see :mod:`bayesmle.inference.profile`.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, index ``labels``.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> mle = bm.fit(bm.models.gaussian(np.array([1.0, 2.0, 4.0, 7.0])), "mle")
        >>> ci = mle.conf_int(level=0.9, method="profile")
        >>> bool(ci.loc["sigma", "lower"] < mle.params["sigma"] < ci.loc["sigma", "upper"])
        True
        """
        import scipy.stats

        no_positional("conf_int", args, 0.95)
        level = check_level(level)
        valid = ["wald", "profile"]
        if not isinstance(method, str) or method not in valid:
            raise SpecError(f"Unknown interval method {method!r}; valid methods: {valid}.")
        if method == "profile":
            from bayesmle.inference.profile import profile_interval

            return profile_interval(self, level=level)
        z = scipy.stats.norm.ppf(0.5 + level / 2)
        est, se = self.flat_params(), self.flat_stderr()
        return pd.DataFrame({"lower": est - z * se, "upper": est + z * se}, index=self.labels)

    def interval(self, *args, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals (the result protocol's interval; see :meth:`conf_int`)."""
        no_positional("interval", args, 0.95)
        return self.conf_int(level=level)

    def summary(self, *args, level: float = 0.95) -> pd.DataFrame:
        """A table of the estimate, one row per scalar parameter.

        MLE: ``estimate``, ``stderr``, the Wald ``z`` statistic and two-sided ``p_value`` of
        the test of 0, and the Wald confidence interval ``ci_<lower>``/``ci_<upper>`` --
        frequentist quantities.

        MAP: posterior-mode quantities only -- ``mode``, ``approx_sd`` (the posterior sd of the
        normal approximation at the mode, from the curvature of the log-posterior) and
        ``approx_<lower>``/``approx_<upper>`` (its central interval). A z statistic or p-value
        of a MAP would be a frequentist test of a shrunken estimate, which it is not.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> spec = bm.models.gaussian(np.array([0.5, 1.5, 2.0, 3.0]), mu_prior=bm.Normal(1.0))
        >>> bm.fit(spec, "mle").summary().columns.tolist()
        ['estimate', 'stderr', 'z', 'p_value', 'ci_0.025', 'ci_0.975']
        >>> bm.fit(spec, "map").summary().columns.tolist()
        ['mode', 'approx_sd', 'approx_0.025', 'approx_0.975']
        """
        import scipy.stats

        no_positional("summary", args, 0.95)
        est, se = self.flat_params(), self.flat_stderr()
        ci = self.conf_int(level=level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        index = pd.Index(self.labels, name="parameter")
        if self.method != "mle":
            return pd.DataFrame(
                {"mode": est, "approx_sd": se, f"approx_{lo}": ci["lower"].to_numpy(),
                 f"approx_{hi}": ci["upper"].to_numpy()}, index=index)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        return pd.DataFrame(
            {"estimate": est, "stderr": se, "z": z,
             "p_value": 2 * scipy.stats.norm.sf(np.abs(z)),
             f"ci_{lo}": ci["lower"].to_numpy(), f"ci_{hi}": ci["upper"].to_numpy()},
            index=index,
        )

    # -- ArviZ ------------------------------------------------------------------------------
    def dims_of(self, name: str, value: np.ndarray) -> tuple[list[str], dict]:
        """Dimension names and coordinates of one parameter, after the spec's labels."""
        dims = list(self.spec.dims.get(name, ()))[: value.ndim]
        dims += [f"{name}_dim_{i}" for i in range(len(dims), value.ndim)]
        coords = {}
        for d, n in zip(dims, value.shape, strict=True):
            labels = self.spec.coords.get(d)
            coords[d] = list(labels) if labels is not None and len(labels) == n else list(
                range(n))
        return dims, coords

    def fit_dataset(self) -> xr.Dataset:
        """The ``fit`` group: estimate, standard errors, covariance and certificate."""
        return xr.Dataset(
            {
                "mean_vector": ("rows", self.flat_params()),
                "stderr": ("rows", self.flat_stderr()),
                "covariance_matrix": (("rows", "columns"), self.cov),
                "loglik": self.loglik,
                "logp": self.logp,
                "grad_norm": self.grad_norm,
                "newton_decrement": self.newton_decrement,
                "hessian_pd": self.hessian_pd,
                "converged": self.converged,
                "local_optimum": self.local_optimum,
            },
            coords={"rows": self.labels, "columns": self.labels},
            attrs={"method": self.method, "model": self.spec.name, "message": self.message},
        )

    def to_datatree(self) -> xr.DataTree:
        """The estimate as an ArviZ DataTree.

        ``posterior`` holds the estimate as a single draw (chain 0, draw 0); ``fit`` holds the
        flat estimate, standard errors and covariance (``mean_vector``, ``covariance_matrix``,
        as ``pymc.find_MAP`` stores them) and the convergence certificate.
        """
        post = {}
        for name, value in self.params.items():
            value = np.asarray(value)
            dims, coords = self.dims_of(name, value)
            post[name] = xr.DataArray(value[None, None], dims=["chain", "draw", *dims],
                                      coords={"chain": [0], "draw": [0], **coords})
        return xr.DataTree.from_dict({"posterior": xr.Dataset(post),
                                      "fit": self.fit_dataset()})

    def __repr__(self) -> str:
        flag = "converged" if self.converged else "NOT converged"
        if self.local_optimum:
            flag += " (local optimum: a prior is not log-concave)"
        return (f"<PointResult {self.method} of {self.spec.name}: loglik={self.loglik:.6g}, "
                f"{flag}, grad_norm={self.grad_norm:.2g}>")
