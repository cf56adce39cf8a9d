"""The result protocol: what MLE, MAP, Laplace and NUTS results have in common.

Every result of :func:`bayesmle.fit` satisfies :class:`FitResult`, so comparisons, studies,
reports and the command line treat them alike and never depend on which class a result is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle.errors import Diagnostic

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["FitResult"]


@runtime_checkable
class FitResult(Protocol):
    """What every fit returns.

    Attributes
    ----------
    spec : ModelSpec
        The model that was fitted.
    method : str
        ``"mle"``, ``"map"``, ``"laplace"``, ``"nuts"`` or ``"prior"``.
    params : dict of str to ndarray
        The estimates by parameter name: the optimum (MLE, MAP), the mode (Laplace), the
        posterior mean (NUTS), each in its parameter's shape.
    labels : list of str
        One label per scalar parameter (``coef[age]``, ``sigma``...).
    diagnostics : tuple of Diagnostic
        Statistical problems found (an uncertified optimum, bad NUTS diagnostics), as data.
    seconds : float
        Wall time of the fit.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> mle = bm.fit(bm.models.poisson(np.array([2.0, 3.0, 1.0, 4.0])), "mle")
    >>> isinstance(mle, FitResult)
    True
    """

    spec: ModelSpec
    method: str
    seconds: float

    @property
    def params(self) -> dict[str, np.ndarray]: ...  # noqa: D102

    @property
    def labels(self) -> list[str]: ...  # noqa: D102

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]: ...  # noqa: D102

    def summary(self, *, level: float = ...) -> pd.DataFrame:
        """One row per scalar parameter: estimates and their uncertainty."""

    def interval(self, *, level: float = ...) -> pd.DataFrame:
        """Intervals (columns ``lower``, ``upper``): Wald for MLE/MAP, credible otherwise."""

    def to_datatree(self) -> xr.DataTree:
        """The result as an ArviZ DataTree (``posterior`` group and method-specific groups)."""

    def predict(self, data=..., *, level: float | None = ...) -> pd.DataFrame:
        """E[y | x] and predictive intervals for the fitted or new data."""

    def predictive(self, data=..., *, draws: int | None = ...) -> xr.DataTree:
        """Predictive draws as an ArviZ DataTree (``posterior_predictive``...)."""

    def log_likelihood(self, data=...) -> xr.Dataset:
        """Pointwise log-likelihood of the result's draws."""
