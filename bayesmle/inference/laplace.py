"""The Laplace approximation: a point result at the mode plus draws from its Gaussian."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd
import xarray as xr

from bayesmle.inference.point import PointResult
from bayesmle.inference.posterior import PosteriorResult

__all__ = ["LaplaceResult"]


@dataclass(frozen=True, eq=False)
class LaplaceResult(PointResult):
    """Gaussian approximation ``N(mode, H^-1)`` of the posterior in the unconstrained space.

    ``params`` is the mode of the posterior density of the unconstrained parameters (log scale,
    log-odds, ... -- the density *with* the Jacobian of the transform) mapped back to the natural
    scale, and ``stderr`` the delta-method standard errors. ``mean()``, ``sd()`` and
    ``interval()`` summarise draws from the Gaussian pushed through the inverse transforms, so
    they respect the support (a scale parameter's draws stay positive).
    """

    posterior: PosteriorResult | None = None

    @classmethod
    def from_point(cls, point: PointResult, datatree: xr.DataTree) -> LaplaceResult:
        """Attach Laplace draws to a point result at the mode."""
        values = {f.name: getattr(point, f.name) for f in fields(PointResult)}
        posterior = PosteriorResult(spec=point.spec, method="laplace", datatree=datatree)
        return cls(**values, posterior=posterior)

    @property
    def datatree(self) -> xr.DataTree:
        """DataTree of the draws (one chain)."""
        return self.posterior.datatree

    def mean(self) -> pd.Series:
        """Mean of the approximate posterior (Monte Carlo over the draws)."""
        return self.posterior.mean()

    def sd(self) -> pd.Series:
        """Standard deviation of the approximate posterior (Monte Carlo over the draws)."""
        return self.posterior.sd()

    def interval(self, level: float = 0.94) -> pd.DataFrame:
        """Equal-tailed intervals of the approximate posterior."""
        return self.posterior.interval(level)

    def to_datatree(self) -> xr.DataTree:
        """The draws as a DataTree, with the ``fit`` group of the mode."""
        point = PointResult.to_datatree(self)
        return xr.DataTree.from_dict({"posterior": self.datatree["posterior"].to_dataset(),
                                      "fit": point["fit"].to_dataset()})
