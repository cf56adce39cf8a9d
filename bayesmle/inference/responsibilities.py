"""``result.responsibilities()``: each observation's class probabilities, from every method.

* MLE / EM / MAP: plug-in, ``P(z_i = j | y_i, theta_hat)`` at the estimate;
* Laplace approximation: averaged over the approximation's draws (``plug_in=True``: at the
  mode);
* NUTS: averaged over the posterior draws, ``E[P(z_i = j | y_i, theta) | y]`` -- the posterior
  probability that observation ``i`` belongs to component ``j``, with the uncertainty about
  ``theta`` integrated out. :func:`responsibility_draws` gives the draws themselves (their
  spread is the uncertainty of each observation's class that a plug-in value hides).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmle.errors import SpecError
from bayesmle.models.mixture import is_mixture, responsibilities_at

__all__ = ["Responsibilities", "responsibilities", "responsibility_draws"]

#: Draws processed at once (bounds the ``(draws, n, k)`` temporary array).
_CHUNK = 256


def _check(result) -> None:
    if not is_mixture(result.spec):
        raise SpecError(f"responsibilities() needs a mixture model (bm.models.gaussian_mixture, "
                        f"poisson_mixture, mixture_regression); model {result.spec.name!r} is "
                        "not one.")


def _frame(spec, values: np.ndarray) -> pd.DataFrame:
    k = spec.options["k"]
    labels = list(spec.coords.get("component", range(1, k + 1)))
    return pd.DataFrame(values, columns=pd.Index([str(c) for c in labels], name="component"),
                        index=pd.RangeIndex(values.shape[0], name="row"))


def _draws_of(result) -> dict[str, np.ndarray]:
    post = result.datatree["posterior"].to_dataset()
    out = {}
    for name in result.spec.params:
        arr = np.asarray(post[name].values, dtype=float)
        out[name] = arr.reshape(-1, *arr.shape[2:])
    return out


def responsibility_draws(result, *, max_draws: int | None = None) -> np.ndarray:
    """Responsibilities at each draw of a NUTS or Laplace result, shape ``(draws, n, k)``.

    ``max_draws`` keeps that many draws, evenly spaced (all by default).
    """
    _check(result)
    draws = _draws_of(result)
    s = next(iter(draws.values())).shape[0]
    keep = np.arange(s) if max_draws is None or max_draws >= s else \
        np.linspace(0, s - 1, max_draws).round().astype(int)
    return responsibilities_at(result.spec, {k: v[keep] for k, v in draws.items()})


def responsibilities(result, *, plug_in: bool | None = None) -> pd.DataFrame:
    """Each observation's class probabilities (rows sum to 1), one column per component.

    Parameters
    ----------
    result : PointResult, LaplaceResult or PosteriorResult
        A fit of a mixture model.
    plug_in : bool, optional
        At the point estimate (default for MLE, EM and MAP; for Laplace, its mode) instead of
        averaged over draws (default for Laplace and NUTS; refused for point fits).

    Returns
    -------
    pandas.DataFrame
        ``n x k``, indexed by row, columns the components (in the ordered labelling).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.r_[np.zeros(5), np.ones(5) * 8.0] + np.arange(10) * 0.1
    >>> mle = bm.fit(bm.models.gaussian_mixture(y, 2), "mle", starts=1, random_seed=0)
    >>> mle.responsibilities().round(3).iloc[[0, 9]].values.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    _check(result)
    has_draws = hasattr(result, "datatree") and result.method != "prior"
    if plug_in is None:
        plug_in = not has_draws
    if plug_in:
        params = result.mode.params if hasattr(result, "mode") else result.params
        if has_draws and not hasattr(result, "mode"):
            raise SpecError("plug_in=True needs a point estimate; a NUTS result has draws "
                            "only (use plug_in=False, the posterior average).")
        return _frame(result.spec, responsibilities_at(result.spec, params))
    if not has_draws:
        raise SpecError(f"A {result.method!r} fit has no draws to average over; use "
                        "plug_in=True (the default).")
    draws = _draws_of(result)
    s = next(iter(draws.values())).shape[0]
    total = 0.0
    for a in range(0, s, _CHUNK):
        total = total + responsibilities_at(
            result.spec, {k: v[a:a + _CHUNK] for k, v in draws.items()}).sum(axis=0)
    return _frame(result.spec, total / s)


class Responsibilities:
    """Mixin: ``result.responsibilities()`` for every result type (see the module)."""

    def responsibilities(self, *, plug_in: bool | None = None) -> pd.DataFrame:
        """Each observation's class probabilities; see :func:`responsibilities`."""
        return responsibilities(self, plug_in=plug_in)
