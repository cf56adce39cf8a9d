"""Posterior results: NUTS draws (and Laplace-approximation draws) in an ArviZ DataTree."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesmle.errors import SamplingWarning, checklist
from bayesmle.inference.point import check_level

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["PosteriorResult", "RHAT_MAX", "ESS_MIN"]

#: Diagnostics thresholds (Vehtari et al. 2021): R-hat < 1.01 and bulk/tail ESS >= 100 per chain
#: is what they recommend; we warn below 100 in total for small unit-test runs too.
RHAT_MAX = 1.01
ESS_MIN = 100.0


def _flatten(ds: xr.Dataset, names: tuple[str, ...], spec: ModelSpec) -> pd.DataFrame:
    """Draws as a (sample, label) DataFrame."""
    cols = {}
    for name in names:
        da = ds[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        values = da.transpose("chain", "draw", *extra).to_numpy()
        values = values.reshape(values.shape[0] * values.shape[1], -1)
        for j, label in enumerate(spec.labels(name, tuple(da.sizes[d] for d in extra))):
            cols[label] = values[:, j]
    return pd.DataFrame(cols)


@dataclass(frozen=True, eq=False)
class PosteriorResult:
    """Posterior draws with diagnostics.

    Attributes
    ----------
    datatree : xarray.DataTree
        ArviZ DataTree with ``posterior``, ``sample_stats`` (for NUTS) and ``observed_data``.
    method : str
        ``"nuts"`` or ``"laplace"`` (draws from the Gaussian approximation).
    """

    spec: ModelSpec
    method: str
    datatree: xr.DataTree
    seconds: float = 0.0
    sampler: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the reported parameters."""
        return self.spec.params

    def draws(self) -> pd.DataFrame:
        """All draws, one column per scalar parameter (chains stacked)."""
        return _flatten(self.datatree["posterior"].to_dataset(), self.params, self.spec)

    def mean(self) -> pd.Series:
        """Posterior means, one per scalar parameter."""
        return self.draws().mean()

    def sd(self) -> pd.Series:
        """Posterior standard deviations (ddof=1)."""
        return self.draws().std(ddof=1)

    def interval(self, level: float = 0.94) -> pd.DataFrame:
        """Equal-tailed credible intervals (columns ``lower``, ``upper``)."""
        level = check_level(level)
        d = self.draws()
        return pd.DataFrame({"lower": d.quantile((1 - level) / 2),
                             "upper": d.quantile(1 - (1 - level) / 2)})

    # -- diagnostics ------------------------------------------------------------------------
    def _per_label(self, func) -> pd.Series:
        ds = self.datatree["posterior"].to_dataset()
        out = {}
        for name in self.params:
            da = ds[name]
            extra = [d for d in da.dims if d not in ("chain", "draw")]
            arr = da.transpose("chain", "draw", *extra).to_numpy()
            arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
            labels = self.spec.labels(name, tuple(da.sizes[d] for d in extra))
            for j, label in enumerate(labels):
                out[label] = float(func(arr[:, :, j]))
        return pd.Series(out)

    def rhat(self) -> pd.Series:
        """Rank-normalised split R-hat per scalar parameter."""
        return self._per_label(lambda a: azs.rhat(a, method="rank"))

    def ess_bulk(self) -> pd.Series:
        """Bulk effective sample size per scalar parameter."""
        return self._per_label(lambda a: azs.ess(a, method="bulk"))

    def ess_tail(self) -> pd.Series:
        """Tail effective sample size per scalar parameter."""
        return self._per_label(lambda a: azs.ess(a, method="tail", prob=0.05))

    def mcse_mean(self) -> pd.Series:
        """Monte Carlo standard error of the posterior mean per scalar parameter."""
        return self._per_label(lambda a: azs.mcse(a, method="mean"))

    @property
    def divergences(self) -> int:
        """Number of divergent transitions after tuning."""
        if "sample_stats" not in self.datatree.children:
            return 0
        stats = self.datatree["sample_stats"].to_dataset()
        if "diverging" not in stats:
            return 0
        return int(stats["diverging"].sum())

    def diagnostics_ok(self) -> bool:
        """True when R-hat < 1.01, ESS >= 100 and there is no divergence."""
        return not self.problems()

    def problems(self) -> list[str]:
        """Human-readable list of failed diagnostics (empty when all is well)."""
        out = []
        if self.divergences:
            out.append(f"{self.divergences} divergent transition(s)")
        n_chains = self.datatree["posterior"].sizes.get("chain", 1)
        if n_chains > 1:
            rhat = self.rhat()
            bad = rhat[~(rhat < RHAT_MAX)]
            if len(bad):
                out.append(f"R-hat >= {RHAT_MAX} for {list(bad.index)} (max {bad.max():.3f})")
        ess = np.minimum(self.ess_bulk(), self.ess_tail())
        low = ess[~(ess >= ESS_MIN)]
        if len(low):
            out.append(f"ESS < {ESS_MIN:g} for {list(low.index)} (min {low.min():.0f})")
        return out

    def warn_if_bad(self, stacklevel: int = 3) -> None:
        """Emit a SamplingWarning listing failed diagnostics."""
        problems = self.problems()
        if problems:
            warnings.warn(
                checklist(
                    f"NUTS diagnostics for {self.spec.name!r} are bad: " + "; ".join(problems)
                    + ".",
                    ["Increase tune/draws, or target_accept (e.g. 0.95) for divergences.",
                     "Use more informative priors if the posterior is weakly identified.",
                     "Do not trust intervals from these draws until the diagnostics pass."],
                ),
                SamplingWarning,
                stacklevel=stacklevel,
            )

    def summary(self, level: float = 0.94) -> pd.DataFrame:
        """Mean, sd, equal-tailed interval, MCSE, ESS and R-hat per parameter, with a flag."""
        iv = self.interval(level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        df = pd.DataFrame({
            "mean": self.mean(), "sd": self.sd(),
            f"eti_{lo}": iv["lower"], f"eti_{hi}": iv["upper"],
            "mcse_mean": self.mcse_mean(), "ess_bulk": self.ess_bulk(),
            "ess_tail": self.ess_tail(),
        })
        n_chains = self.datatree["posterior"].sizes.get("chain", 1)
        df["r_hat"] = self.rhat() if n_chains > 1 else np.nan
        df["ok"] = (df["ess_bulk"] >= ESS_MIN) & (df["ess_tail"] >= ESS_MIN) & (
            (df["r_hat"] < RHAT_MAX) | (n_chains == 1)) & (self.divergences == 0)
        df.index.name = "parameter"
        return df

    def to_datatree(self) -> xr.DataTree:
        """The ArviZ DataTree."""
        return self.datatree

    def __repr__(self) -> str:
        post = self.datatree["posterior"]
        return (f"<PosteriorResult {self.method} of {self.spec.name}: "
                f"{post.sizes.get('chain')} chains x {post.sizes.get('draw')} draws, "
                f"{self.divergences} divergences>")
