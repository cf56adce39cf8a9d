"""``fit(spec, "prior")``: draws of the priors and of the prior predictive distribution.

The reported parameters are drawn independently from their priors (each prior's own PyMC
random variable, the one route of :mod:`bayesmle.priors`), and the observations from the
observation model at those draws (:mod:`bayesmle.inference.predictive`). A flat prior has no
draws: the prior predictive is then undefined, and the method says which prior is improper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesmle._validation import MAX_DRAWS, check_int, check_memory, check_seed, no_positional
from bayesmle.errors import Diagnostic, PriorError, SpecError
from bayesmle.inference.draws import Draws, posterior_tree
from bayesmle.inference.predictive import Predicts, predictive, setup_for
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Flat, HalfFlat

__all__ = ["PriorResult", "sample_prior"]


@dataclass(frozen=True, eq=False)
class PriorResult(Predicts):
    """Draws of the prior and of the prior predictive distribution.

    Attributes
    ----------
    datatree : xarray.DataTree
        ``prior`` (the reported parameters), ``prior_predictive`` and ``observed_data``.
    params : dict of str to ndarray
        Prior means by parameter name.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.poisson(np.array([2.0, 3.0, 1.0]), rate_prior=bm.Gamma(2.0, 1.0))
    >>> prior = bm.fit(spec, "prior", draws=500, random_seed=0)
    >>> sorted(prior.datatree.children)
    ['observed_data', 'prior', 'prior_predictive']
    >>> prior.datatree["prior_predictive"]["y_obs"].shape
    (1, 500, 3)
    """

    spec: ModelSpec
    datatree: xr.DataTree
    seconds: float = 0.0
    random_seed: int | None = None
    method: str = field(default="prior", init=False)

    @cached_property
    def _draws(self) -> Draws:
        return Draws(self.spec, xr.DataTree.from_dict(
            {"posterior": self.datatree["prior"].to_dataset()}))

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Prior means by parameter name."""
        return self._draws.params()

    @property
    def labels(self) -> list[str]:
        """One label per scalar parameter."""
        return list(self._draws.table().columns)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Nothing can go wrong with independent draws."""
        return ()

    def draws(self) -> pd.DataFrame:
        """All prior draws, one column per scalar parameter."""
        return self._draws.table()

    def interval(self, *args, level: float = 0.94) -> pd.DataFrame:
        """Equal-tailed prior intervals."""
        no_positional("interval", args, 0.94)
        return self._draws.interval(level)

    def summary(self, *args, level: float = 0.94) -> pd.DataFrame:
        """Prior mean, sd and equal-tailed interval per scalar parameter."""
        no_positional("summary", args, 0.94)
        iv = self.interval(level=level)
        lo, hi = f"{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}"
        df = pd.DataFrame({"mean": self._draws.mean(), "sd": self._draws.sd(),
                           f"eti_{lo}": iv["lower"], f"eti_{hi}": iv["upper"]})
        df.index.name = "parameter"
        return df

    def to_datatree(self) -> xr.DataTree:
        """The DataTree."""
        return self.datatree

    def __repr__(self) -> str:
        return (f"<PriorResult of {self.spec.name}: "
                f"{self.datatree['prior'].sizes['draw']} draws>")


def sample_prior(spec: ModelSpec, *, draws: int = 1000, random_seed: int | None = None
                 ) -> PriorResult:
    """Draw the parameters from their priors and the observations given them.

    Raises
    ------
    PriorError
        A reported parameter has a flat (improper) prior, or no prior of its own name.
    """
    draws = check_int("draws", draws, 1, MAX_DRAWS)
    seed = check_seed(random_seed)
    check_memory(f"{draws:,} prior predictive draws", draws,
                 8 * (spec.scalar_count() + 2 * (spec.nobs or 1)), "Ask for fewer `draws`.")
    t0 = time.perf_counter()
    missing = [p for p in spec.params if p not in spec.priors]
    if missing:
        raise SpecError(f"The prior predictive draws each reported parameter from its prior; "
                        f"{missing} of model {spec.name!r} have no prior of that name.")
    # improper priors only: Beta(1, 1) and LKJ(1) are flat *and* proper (bounded supports)
    flat = [p for p in spec.params if isinstance(spec.priors[p], Flat | HalfFlat)]
    if flat:
        raise PriorError(
            f"The prior predictive distribution is not defined: {flat} of model "
            f"{spec.name!r} have flat (improper) priors, which cannot be sampled. Give them "
            "proper priors (e.g. prior=bm.Normal(1.0), sigma_prior=bm.HalfNormal(5.0)).")
    setup = setup_for(spec, None)
    rng = np.random.default_rng(seed)
    values = {}
    with pm.Model() as model:
        pass
    for name in spec.params:
        shape = tuple(int(n) for n in setup.compiled.model[name].shape.eval())
        rv = spec.priors[name].rv(model, name, shape=shape)
        values[name] = np.asarray(pm.draw(rv, draws=draws, random_seed=rng)).reshape(
            1, draws, *shape)
    tree = posterior_tree(spec, values)
    result = PriorResult(spec=spec, datatree=xr.DataTree.from_dict(
        {"prior": tree["posterior"].to_dataset()}), random_seed=seed)
    full = predictive(result, random_seed=int(rng.integers(2**63 - 1)))
    groups = {path: node.to_dataset() for path, node in full.children.items()}
    return PriorResult(spec=spec, datatree=xr.DataTree.from_dict(groups),
                       seconds=time.perf_counter() - t0, random_seed=seed)
