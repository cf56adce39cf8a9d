"""Point results (MLE, MAP, Laplace): one surface, as in statsmodels and lifelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr

from bayesmle.errors import SpecError

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["PointResult", "check_level"]


def check_level(level: float) -> float:
    """Validate a confidence/credible level in (0, 1)."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise SpecError(f"`level` must be a number in (0, 1), got {level!r}.") from None
    if not 0.0 < value < 1.0:
        raise SpecError(f"`level` must be in the open interval (0, 1), got {level!r}.")
    return value


@dataclass(frozen=True, eq=False)
class PointResult:
    """An optimum of the likelihood or posterior, certified, with its observed information.

    Attributes
    ----------
    method : str
        ``"mle"`` or ``"map"`` (``"laplace"`` in a
        :class:`~bayesmle.inference.laplace.LaplaceResult`).
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
        True only if the gradient (minimum-norm subgradient) is small *and* the Hessian is
        positive definite on the free coordinates.
    grad_norm : float
        Infinity norm of the gradient of the objective in the optimiser's (unconstrained)
        coordinates at the estimate.
    newton_decrement : float
        Predicted decrease of the objective by one more Newton step (in log-density units).
    hessian_pd : bool
        Whether the Hessian is positive definite at the estimate.
    """

    spec: ModelSpec
    method: str
    params: dict[str, np.ndarray]
    stderr: dict[str, np.ndarray]
    cov: np.ndarray
    labels: list[str]
    loglik: float
    logp: float
    n_params: int
    converged: bool
    grad_norm: float
    newton_decrement: float
    hessian_pd: bool
    n_iter: int
    message: str
    seconds: float = 0.0
    compile_seconds: float = 0.0
    zero_mask: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

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

    def conf_int(self, level: float = 0.95, method: str = "wald") -> pd.DataFrame:
        """Confidence intervals, one row per scalar parameter.

        Parameters
        ----------
        level : float, default 0.95
            Coverage level in (0, 1).
        method : {"wald", "profile"}
            ``"wald"``: estimate ± z·stderr on the natural scale.
            ``"profile"``: profile-likelihood interval, where the log-likelihood maximised
            over the other parameters drops by ``chi2_1(level) / 2`` (for a MAP, the
            log-posterior is profiled); see :mod:`bayesmle.inference.profile`.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, index ``labels``.
        """
        level = check_level(level)
        valid = ["wald", "profile"]
        if method not in valid:
            raise SpecError(f"Unknown interval method {method!r}; valid methods: {valid}.")
        if method == "profile":
            from bayesmle.inference.profile import profile_interval

            return profile_interval(self, level)
        z = scipy.stats.norm.ppf(0.5 + level / 2)
        est, se = self.flat_params(), self.flat_stderr()
        return pd.DataFrame({"lower": est - z * se, "upper": est + z * se}, index=self.labels)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, standard errors, z statistics, p-values and Wald intervals."""
        est, se = self.flat_params(), self.flat_stderr()
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        ci = self.conf_int(level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        return pd.DataFrame(
            {"estimate": est, "stderr": se, "z": z,
             "p_value": 2 * scipy.stats.norm.sf(np.abs(z)),
             f"ci_{lo}": ci["lower"].to_numpy(), f"ci_{hi}": ci["upper"].to_numpy()},
            index=pd.Index(self.labels, name="parameter"),
        )

    # -- ArviZ ------------------------------------------------------------------------------
    def _dims(self, name: str, value: np.ndarray) -> tuple[list[str], dict]:
        dims = list(self.spec.dims.get(name, ()))[: value.ndim]
        dims += [f"{name}_dim_{i}" for i in range(len(dims), value.ndim)]
        coords = {}
        for d, n in zip(dims, value.shape, strict=True):
            labels = self.spec.coords.get(d)
            coords[d] = list(labels) if labels is not None and len(labels) == n else list(
                range(n))
        return dims, coords

    def to_datatree(self) -> xr.DataTree:
        """The estimate as an ArviZ DataTree.

        ``posterior`` holds the estimate as a single draw (chain 0, draw 0); ``fit`` holds the
        flat estimate, standard errors and covariance (``mean_vector``, ``covariance_matrix``,
        as ``pymc.find_MAP`` stores them) and the convergence certificate.
        """
        post = {}
        for name, value in self.params.items():
            value = np.asarray(value)
            dims, coords = self._dims(name, value)
            post[name] = xr.DataArray(value[None, None], dims=["chain", "draw", *dims],
                                      coords={"chain": [0], "draw": [0], **coords})
        fit = xr.Dataset(
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
            },
            coords={"rows": self.labels, "columns": self.labels},
            attrs={"method": self.method, "model": self.spec.name, "message": self.message},
        )
        return xr.DataTree.from_dict({"posterior": xr.Dataset(post), "fit": fit})

    def __repr__(self) -> str:
        flag = "converged" if self.converged else "NOT converged"
        return (f"<PointResult {self.method} of {self.spec.name}: loglik={self.loglik:.6g}, "
                f"{flag}, grad_norm={self.grad_norm:.2g}>")
