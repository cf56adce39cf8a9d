"""NUTS posteriors: draws in an ArviZ DataTree, summaries and diagnostics as data."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle._validation import no_positional
from bayesmle.errors import Diagnostic, SamplingWarning, checklist
from bayesmle.inference.draws import DrawSummaries
from bayesmle.inference.mixed.effects import RandomEffects
from bayesmle.inference.predictive import Predicts
from bayesmle.inference.responsibilities import Responsibilities

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["ESS_MIN", "RHAT_MAX", "PosteriorResult"]

#: Diagnostics thresholds (Vehtari et al. 2021): R-hat < 1.01 and bulk/tail ESS >= 100 per chain
#: is what they recommend; we flag below 100 in total for small unit-test runs too.
RHAT_MAX = 1.01
ESS_MIN = 100.0


@dataclass(frozen=True, eq=False)
class PosteriorResult(DrawSummaries, Predicts, RandomEffects, Responsibilities):
    """Posterior draws with their diagnostics.

    Attributes
    ----------
    datatree : xarray.DataTree
        ArviZ DataTree with ``posterior`` (the reported parameters), ``sample_stats`` and
        ``observed_data``.
    method : str
        ``"nuts"``.
    params : dict of str to ndarray
        Posterior means by parameter name (the result protocol's estimates).
    diagnostics : tuple of Diagnostic
        Failed sampling diagnostics (divergences, R-hat, ESS), as data; :func:`bayesmle.fit`
        emits them as :class:`~bayesmle.errors.SamplingWarning`.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.random.default_rng(0).normal(1.0, 2.0, size=50)
    >>> spec = bm.models.gaussian(y, mu_prior=bm.Normal(10.0), sigma_prior=bm.HalfNormal(5.0))
    >>> post = bm.fit(spec, "nuts", draws=200, tune=200, chains=2, random_seed=1)
    >>> list(post.summary().index), post.interval(level=0.9).shape
    (['mu', 'sigma'], (2, 2))
    """

    spec: ModelSpec
    method: str
    datatree: xr.DataTree
    seconds: float = 0.0
    sampler: str = ""
    compile_seconds: float = 0.0
    #: Number of draws requested per chain (an interrupted run never returns a result).
    requested_draws: int = field(default=0, repr=False)
    #: The sampler's seed: the one given, or the one drawn when none was.
    random_seed: int | None = None

    # -- diagnostics ------------------------------------------------------------------------
    def rhat(self) -> pd.Series:
        """Rank-normalised split R-hat per scalar parameter."""
        return self._draws.rhat()

    def ess_bulk(self) -> pd.Series:
        """Bulk effective sample size per scalar parameter."""
        return self._draws.ess_bulk()

    def ess_tail(self) -> pd.Series:
        """Tail effective sample size per scalar parameter."""
        return self._draws.ess_tail()

    def mcse_mean(self) -> pd.Series:
        """Monte Carlo standard error of the posterior mean per scalar parameter."""
        return self._draws.mcse_mean()

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

    @cached_property
    def _problems(self) -> tuple[str, ...]:
        out = []
        if self.divergences:
            out.append(f"{self.divergences} divergent transition(s)")
        if self._draws.n_chains > 1:
            rhat = self.rhat()
            bad = rhat[~(rhat < RHAT_MAX)]
            if len(bad):
                out.append(f"R-hat >= {RHAT_MAX} for {list(bad.index)} (max {bad.max():.3f})")
        ess = np.minimum(self.ess_bulk(), self.ess_tail())
        low = ess[~(ess >= ESS_MIN)]
        if len(low):
            out.append(f"ESS < {ESS_MIN:g} for {list(low.index)} (min {low.min():.0f})")
        return tuple(out)

    def problems(self) -> list[str]:
        """Human-readable list of failed diagnostics (empty when all is well)."""
        return list(self._problems)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """The failed diagnostics as one :class:`SamplingWarning` diagnostic (or none)."""
        if not self._problems:
            return ()
        return (Diagnostic(SamplingWarning, checklist(
            f"NUTS diagnostics for {self.spec.name!r} are bad: " + "; ".join(self._problems)
            + ".",
            ["Increase tune/draws, or target_accept (e.g. 0.95) for divergences.",
             "Use more informative priors if the posterior is weakly identified.",
             "Do not trust intervals from these draws until the diagnostics pass."])),)

    def summary(self, *args, level: float = 0.94) -> pd.DataFrame:
        """Mean, sd, equal-tailed interval, MCSE, ESS and R-hat per parameter, with a flag."""
        no_positional("summary", args, 0.94)
        iv = self.interval(level=level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        df = pd.DataFrame({
            "mean": self.mean(), "sd": self.sd(),
            f"eti_{lo}": iv["lower"], f"eti_{hi}": iv["upper"],
            "mcse_mean": self.mcse_mean(), "ess_bulk": self.ess_bulk(),
            "ess_tail": self.ess_tail(),
        })
        n_chains = self._draws.n_chains
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
