"""The loss dictionary: each loss as an affine function of a negative log-likelihood.

:data:`LOSSES` holds one :class:`LossEntry` per loss (its family, NLL, loss, the affine map
``loss = a * nll + c`` and the scikit-learn metric it equals); :func:`loss_table` shows them as
a DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.losses._inputs import _n_rows, _positive_scalar
from bayesmle.losses.likelihoods import (
    bernoulli_nll,
    categorical_nll,
    gaussian_nll,
    laplace_nll,
    poisson_nll,
    poisson_saturated_nll,
)
from bayesmle.losses.metrics import (
    binary_cross_entropy,
    categorical_cross_entropy,
    mae,
    mse,
    poisson_deviance,
)

__all__ = ["LOSSES", "LossEntry", "loss_table"]


def _mse_affine(y: Any, *, sigma: float = 1.0) -> tuple[float, float]:
    n = _n_rows(y)
    s2 = _positive_scalar("sigma", sigma) ** 2
    return 2.0 * s2 / n, -s2 * np.log(2.0 * np.pi * s2)


def _mean_affine(y: Any) -> tuple[float, float]:
    return 1.0 / _n_rows(y), 0.0


def _deviance_affine(y: Any) -> tuple[float, float]:
    n = _n_rows(y)
    return 2.0 / n, -2.0 / n * poisson_saturated_nll(y)


def _mae_affine(y: Any, *, b: float = 1.0) -> tuple[float, float]:
    n = _n_rows(y)
    b = _positive_scalar("b", b)
    return b / n, -b * np.log(2.0 * b)


@dataclass(frozen=True)
class LossEntry:
    """One row of the loss dictionary: a loss, its likelihood, and the affine map between them.

    Attributes
    ----------
    name : str
        The loss's usual name (``"mse"``, ``"binary_cross_entropy"``, ...).
    family : str
        The likelihood family whose NLL it is.
    nll : callable
        ``nll(y, prediction, [nuisance])`` -- the total negative log-likelihood.
    loss : callable
        ``loss(y, prediction)`` -- the loss.
    relation : str
        The relation ``loss = a * nll + c`` in words.
    sklearn_metric : str
        The scikit-learn metric the loss equals.
    nuisance : str or None
        The fixed nuisance parameter the constants depend on (``"sigma"``, ``"b"``) or None.
    affine : callable
        ``affine(y, **nuisance) -> (a, c)`` with ``loss = a * nll + c``; ``a > 0`` and ``c``
        depend on the data (and the nuisance parameter) only, never on the predictions.

    Examples
    --------
    >>> from bayesmle import losses
    >>> entry = next(e for e in losses.LOSSES if e.name == "poisson_deviance")
    >>> entry.family, entry.nll.__name__, entry.sklearn_metric
    ('Poisson(rate)', 'poisson_nll', 'sklearn.metrics.mean_poisson_deviance')

    ``affine(y)`` gives the constants of ``loss = a * nll + c``; they depend on ``y`` only:

    >>> y = [0, 2, 5]
    >>> a, c = entry.affine(y)
    >>> round(a, 4), round(c, 4)
    (0.6667, -2.0314)
    """

    name: str
    family: str
    nll: Callable[..., float]
    loss: Callable[..., float]
    relation: str
    sklearn_metric: str
    nuisance: str | None
    affine: Callable[..., tuple[float, float]]

    def to_loss(self, nll: float, y: Any, **nuisance: float) -> float:
        """Map a total NLL to the loss: ``a * nll + c`` with ``(a, c) = affine(y, **nuisance)``.

        Parameters
        ----------
        nll : float
            The total negative log-likelihood, as returned by :attr:`nll`.
        y : array_like
            The observations the NLL was computed on.
        **nuisance : float
            The nuisance parameter used for the NLL (``sigma=`` or ``b=``), if any.

        Returns
        -------
        float
            The loss.

        Examples
        --------
        >>> from bayesmle import losses
        >>> mse = next(e for e in losses.LOSSES if e.name == "mse")
        >>> y, mu = [1.0, 2.0, 4.0], [1.5, 2.0, 3.0]
        >>> nll = mse.nll(y, mu, 2.0)
        >>> round(mse.to_loss(nll, y, sigma=2.0), 4), round(mse.loss(y, mu), 4)
        (0.4167, 0.4167)
        """
        a, c = self.affine(y, **nuisance)
        return float(a * nll + c)

    def to_nll(self, loss: float, y: Any, **nuisance: float) -> float:
        """Map a loss back to the total NLL: ``(loss - c) / a``.

        Parameters
        ----------
        loss : float
            The loss, as returned by :attr:`loss`.
        y : array_like
            The observations the loss was computed on.
        **nuisance : float
            The nuisance parameter of the NLL (``sigma=`` or ``b=``), if any.

        Returns
        -------
        float
            The total negative log-likelihood.

        Examples
        --------
        >>> from bayesmle import losses
        >>> mae = next(e for e in losses.LOSSES if e.name == "mae")
        >>> y, mu = [1.0, 2.0, 4.0], [1.5, 2.0, 3.0]
        >>> round(mae.to_nll(mae.loss(y, mu), y, b=0.5), 4), round(mae.nll(y, mu, 0.5), 4)
        (3.0, 3.0)
        """
        a, c = self.affine(y, **nuisance)
        return float((loss - c) / a)


LOSSES: tuple[LossEntry, ...] = (
    LossEntry(
        name="mse",
        family="Gaussian(mu, sigma)",
        nll=gaussian_nll,
        loss=mse,
        relation="mse = (2 sigma^2 / n) * (nll - (n/2) log(2 pi sigma^2))",
        sklearn_metric="sklearn.metrics.mean_squared_error",
        nuisance="sigma",
        affine=_mse_affine,
    ),
    LossEntry(
        name="binary_cross_entropy",
        family="Bernoulli(p)",
        nll=bernoulli_nll,
        loss=binary_cross_entropy,
        relation="binary_cross_entropy = nll / n",
        sklearn_metric="sklearn.metrics.log_loss",
        nuisance=None,
        affine=_mean_affine,
    ),
    LossEntry(
        name="categorical_cross_entropy",
        family="Categorical(P)",
        nll=categorical_nll,
        loss=categorical_cross_entropy,
        relation="categorical_cross_entropy = nll / n",
        sklearn_metric="sklearn.metrics.log_loss",
        nuisance=None,
        affine=_mean_affine,
    ),
    LossEntry(
        name="poisson_deviance",
        family="Poisson(rate)",
        nll=poisson_nll,
        loss=poisson_deviance,
        relation="poisson_deviance = (2 / n) * (nll - poisson_saturated_nll(y)), "
        "poisson_saturated_nll(y) = sum(y - y log y + log y!) with 0 log 0 = 0",
        sklearn_metric="sklearn.metrics.mean_poisson_deviance",
        nuisance=None,
        affine=_deviance_affine,
    ),
    LossEntry(
        name="mae",
        family="Laplace(mu, b)",
        nll=laplace_nll,
        loss=mae,
        relation="mae = (b / n) * (nll - n log(2 b))",
        sklearn_metric="sklearn.metrics.mean_absolute_error",
        nuisance="b",
        affine=_mae_affine,
    ),
)


def loss_table() -> pd.DataFrame:
    """The loss dictionary as a DataFrame, one row per loss.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``, with columns ``family``, ``nll`` and ``loss`` (the function names
        in :mod:`bayesmle.losses`), ``relation``, ``nuisance`` and ``sklearn_metric``.

    Examples
    --------
    >>> from bayesmle import losses
    >>> table = losses.loss_table()
    >>> table.index.tolist()
    ['mse', 'binary_cross_entropy', 'categorical_cross_entropy', 'poisson_deviance', 'mae']
    >>> table.columns.tolist()
    ['family', 'nll', 'loss', 'relation', 'nuisance', 'sklearn_metric']
    >>> table.loc["mae", "relation"]
    'mae = (b / n) * (nll - n log(2 b))'
    """
    return pd.DataFrame(
        {
            "name": [e.name for e in LOSSES],
            "family": [e.family for e in LOSSES],
            "nll": [e.nll.__name__ for e in LOSSES],
            "loss": [e.loss.__name__ for e in LOSSES],
            "relation": [e.relation for e in LOSSES],
            "nuisance": [e.nuisance for e in LOSSES],
            "sklearn_metric": [e.sklearn_metric for e in LOSSES],
        }
    ).set_index("name")
