"""``result.random_effects()``: the random effects of a mixed model, one row per effect.

* MLE / REML / MAP: the conditional modes of the random effects at the estimate (for the
  Gaussian family the BLUPs, lme4's ``ranef``), with their conditional standard deviations
  (lme4's ``condVar``) and the interval ``mode +- z * cond_sd``;
* Laplace approximation: the same at the mode of the marginal posterior;
* NUTS: posterior mean, sd and equal-tailed interval of each random effect (from the draws of
  the non-centred joint model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesmle._validation import check_level
from bayesmle.errors import SpecError

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["RandomEffects", "random_effects"]


def _index(spec: ModelSpec) -> pd.MultiIndex:
    from bayesmle.models.mixed import mixed_design

    labels = mixed_design(spec).re_labels()
    return pd.MultiIndex.from_tuples(labels, names=["group", "level", "term"])


def _point_table(spec: ModelSpec, mixed, level: float) -> pd.DataFrame:
    import scipy.stats

    z = scipy.stats.norm.ppf(0.5 + level / 2)
    b, sd = np.asarray(mixed.b, dtype=float), np.asarray(mixed.b_sd, dtype=float)
    return pd.DataFrame({"estimate": b, "cond_sd": sd, "lower": b - z * sd,
                         "upper": b + z * sd}, index=_index(spec))


def _posterior_draws(result) -> np.ndarray:
    """Draws ``(chains * draws, q)`` of the random effects from a NUTS posterior."""
    from bayesmle.inference.bound import bind

    post = result.datatree["posterior"].to_dataset()
    bound = bind(result.spec)
    model = bound.compiled.model
    free = [rv.name for rv in model.free_RVs]
    chains, n = post.sizes["chain"], post.sizes["draw"]
    inputs = [np.asarray(post[name].values, dtype=model[name].dtype).reshape(
        chains * n, *post[name].shape[2:]) for name in free]
    (re,) = bound.derived(("re",), inputs)
    return np.asarray(re, dtype=float).reshape(chains * n, -1)


def random_effects(result, *, level: float = 0.95) -> pd.DataFrame:
    """The random effects of a mixed-model fit, indexed by (group, level, term).

    Parameters
    ----------
    result : PointResult, LaplaceResult or PosteriorResult
        A fit of a mixed model (``bm.models.glm`` with random-effects terms).
    level : float, default 0.95
        Coverage of the interval columns.

    Returns
    -------
    pandas.DataFrame
        Point fits and Laplace: ``estimate`` (conditional mode), ``cond_sd``, ``lower``,
        ``upper``. NUTS: ``mean``, ``sd``, ``lower``, ``upper`` (equal-tailed).

    Raises
    ------
    SpecError
        The result is not a fit of a mixed model.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(list("abcdef"), 5)
    >>> y = 2.0 + np.repeat(rng.normal(0, 1, 6), 5) + rng.normal(0, 0.5, 30)
    >>> fit = bm.fit(bm.models.glm("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g})), "reml")
    >>> fit.random_effects().index.names
    FrozenList(['group', 'level', 'term'])
    """
    level = check_level(level)
    spec = result.spec
    if spec.solver != "mixed":
        raise SpecError(f"random_effects() is defined for mixed models (random-effects terms "
                        f"such as (1 | g) in bm.models.glm); model {spec.name!r} has none.")
    mixed = getattr(result, "mixed", None)
    if mixed is None and hasattr(result, "mode"):  # Laplace: at the mode
        mixed = getattr(result.mode, "mixed", None)
    if mixed is not None:
        return _point_table(spec, mixed, level)
    if getattr(result, "method", None) != "nuts":
        raise SpecError(f"random_effects() needs a fit by 'mle', 'reml', 'map', 'laplace' or "
                        f"'nuts', got {getattr(result, 'method', type(result).__name__)!r}.")
    draws = _posterior_draws(result)
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return pd.DataFrame({"mean": draws.mean(0), "sd": draws.std(0, ddof=1), "lower": lo,
                         "upper": hi}, index=_index(spec))


class RandomEffects:
    """Mixin: ``result.random_effects(level=...)`` on every result of a mixed model."""

    def random_effects(self, *, level: float = 0.95) -> pd.DataFrame:
        """The random effects: conditional modes (point fits) or posterior summaries (NUTS).

        See :func:`bayesmle.inference.mixed.effects.random_effects`.
        """
        return random_effects(self, level=level)
