"""Draws of the reported parameters in an ArviZ DataTree, and their summaries.

:class:`Draws` is the part that NUTS posteriors and Laplace approximations share: both results
are *composed* with one (see :mod:`bayesmle.inference.posterior` and
:mod:`bayesmle.inference.laplace`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle._validation import check_level, no_positional

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["DrawStatistics", "DrawSummaries", "Draws", "posterior_tree"]


def posterior_tree(spec: ModelSpec, values: dict[str, np.ndarray], *,
                   groups: dict[str, xr.Dataset] | None = None) -> xr.DataTree:
    """A DataTree whose ``posterior`` holds ``values`` (each ``(chain, draw, *shape)``).

    Dimensions and coordinates are named after the spec's (``coef`` over ``feature``...).
    """
    post = {}
    for name, arr in values.items():
        arr = np.asarray(arr)
        shape = arr.shape[2:]
        dims = list(spec.dims.get(name, ()))[: len(shape)]
        dims += [f"{name}_dim_{k}" for k in range(len(dims), len(shape))]
        coords = {d: list(spec.coords[d]) for d, n in zip(dims, shape, strict=True)
                  if d in spec.coords and len(spec.coords[d]) == n}
        post[name] = xr.DataArray(arr, dims=["chain", "draw", *dims], coords=coords)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(post), **(groups or {})})


@dataclass(frozen=True, eq=False)
class Draws:
    """Draws of a spec's reported parameters (the ``posterior`` group of ``datatree``)."""

    spec: ModelSpec
    datatree: xr.DataTree

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return int(self.datatree["posterior"].sizes.get("chain", 1))

    def _arrays(self):
        """``(label list, (chain, draw, k) array)`` per reported parameter."""
        ds = self.datatree["posterior"].to_dataset()
        for name in self.spec.params:
            da = ds[name]
            extra = [d for d in da.dims if d not in ("chain", "draw")]
            arr = da.transpose("chain", "draw", *extra).to_numpy()
            labels = self.spec.labels(name, tuple(da.sizes[d] for d in extra))
            yield labels, arr.reshape(arr.shape[0], arr.shape[1], -1)

    def table(self) -> pd.DataFrame:
        """All draws, one column per scalar parameter (chains stacked)."""
        cols = {}
        for labels, arr in self._arrays():
            flat = arr.reshape(arr.shape[0] * arr.shape[1], -1)
            for j, label in enumerate(labels):
                cols[label] = flat[:, j]
        return pd.DataFrame(cols)

    def params(self) -> dict[str, np.ndarray]:
        """Posterior means by parameter name, in each parameter's shape."""
        ds = self.datatree["posterior"].to_dataset()
        return {name: np.asarray(ds[name].mean(("chain", "draw")).to_numpy())
                for name in self.spec.params}

    def mean(self) -> pd.Series:
        """Means, one per scalar parameter."""
        return self.table().mean()

    def sd(self) -> pd.Series:
        """Standard deviations (ddof=1)."""
        return self.table().std(ddof=1)

    def interval(self, level: float) -> pd.DataFrame:
        """Equal-tailed intervals (columns ``lower``, ``upper``)."""
        level = check_level(level)
        d = self.table()
        return pd.DataFrame({"lower": d.quantile((1 - level) / 2),
                             "upper": d.quantile(1 - (1 - level) / 2)})

    def per_label(self, func) -> pd.Series:
        """``func((chain, draw) array)`` for every scalar parameter."""
        out = {}
        for labels, arr in self._arrays():
            for j, label in enumerate(labels):
                out[label] = float(func(arr[:, :, j]))
        return pd.Series(out)

    def rhat(self) -> pd.Series:
        """Rank-normalised split R-hat per scalar parameter."""
        import arviz_stats as azs

        return self.per_label(lambda a: azs.rhat(a, method="rank"))

    def ess_bulk(self) -> pd.Series:
        """Bulk effective sample size per scalar parameter."""
        import arviz_stats as azs

        return self.per_label(lambda a: azs.ess(a, method="bulk"))

    def ess_tail(self) -> pd.Series:
        """Tail effective sample size per scalar parameter."""
        import arviz_stats as azs

        return self.per_label(lambda a: azs.ess(a, method="tail", prob=0.05))

    def mcse_mean(self) -> pd.Series:
        """Monte Carlo standard error of the mean per scalar parameter."""
        import arviz_stats as azs

        return self.per_label(lambda a: azs.mcse(a, method="mean"))


class DrawStatistics:
    """Mixin: statistics of the draws of every draws-based result (Laplace, NUTS, ADVI...).

    The class provides ``spec`` and ``datatree`` (whose ``posterior`` group holds the draws).
    """

    @cached_property
    def _draws(self) -> Draws:
        return Draws(self.spec, self.datatree)

    def draws(self) -> pd.DataFrame:
        """All draws, one column per scalar parameter (chains stacked)."""
        return self._draws.table()

    def mean(self) -> pd.Series:
        """Means of the draws, one per scalar parameter."""
        return self._draws.mean()

    def sd(self) -> pd.Series:
        """Standard deviations of the draws (ddof=1)."""
        return self._draws.sd()

    def interval(self, *args, level: float = 0.94) -> pd.DataFrame:
        """Equal-tailed intervals of the draws (columns ``lower``, ``upper``)."""
        no_positional("interval", args, 0.94)
        return self._draws.interval(level)


class DrawSummaries(DrawStatistics):
    """Mixin: :class:`DrawStatistics` plus ``labels`` and ``params`` (the draws' means)."""

    @property
    def labels(self) -> list[str]:
        """One label per scalar parameter (``coef[age]``, ``sigma``...)."""
        return list(self.mean().index)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Means of the draws by parameter name, in each parameter's shape."""
        return self._draws.params()
