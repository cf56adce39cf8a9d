r"""A loss dictionary: each common machine-learning loss is a negative log-likelihood.

Every ``*_nll`` function returns the *total* negative log-likelihood :math:`-\sum_i \log
f(y_i \mid \theta_i)` of the data ``y`` under predictions ``theta`` (a scalar or one value per
observation), with every normalising constant included, so that it equals minus the sum of
``scipy.stats`` log-densities. Each loss is an affine function of that NLL whose coefficients
depend only on the data and on fixed nuisance parameters (``sigma``, ``b``), never on the
predictions -- so minimising the loss *is* maximum likelihood:

=========================  ============  ===================================================
loss                       family        relation (n observations)
=========================  ============  ===================================================
mse                        Gaussian      mse = (2 sigma^2 / n) * (nll - n/2 log(2 pi sigma^2))
binary_cross_entropy       Bernoulli     bce = nll / n
categorical_cross_entropy  Categorical   cce = nll / n
poisson_deviance           Poisson       deviance = (2 / n) * (nll - nll_saturated(y))
mae                        Laplace       mae = (b / n) * (nll - n log(2 b))
=========================  ============  ===================================================

:data:`LOSSES` holds these relations as executable :class:`LossEntry` records (and
:func:`loss_table` as a DataFrame), each naming the scikit-learn metric the loss equals.

The module is numpy/scipy only. Invalid input raises :class:`~bayesmle.errors.DataError` naming
the argument, the offending value(s) and what is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln, xlog1py, xlogy

from bayesmle._validation import as_count_array, as_float_array
from bayesmle.errors import DataError

__all__ = [
    "LOSSES",
    "LossEntry",
    "ROW_SUM_TOL",
    "bernoulli_nll",
    "bernoulli_nll_logits",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "categorical_nll",
    "categorical_nll_logits",
    "gaussian_nll",
    "laplace_nll",
    "loss_table",
    "mae",
    "mse",
    "poisson_deviance",
    "poisson_nll",
    "poisson_saturated_nll",
]

#: Tolerance on ``|sum(P[i]) - 1|`` for a row of a probability matrix (scikit-learn's choice).
ROW_SUM_TOL = float(np.sqrt(np.finfo(np.float64).eps))


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------
def _rows(idx: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in idx[:10])
    return shown + (f" (and {idx.size - 10} more)" if idx.size > 10 else "")


def _values(arr: np.ndarray, idx: np.ndarray) -> str:
    if arr.ndim == 1:
        return str(sorted(set(arr[idx[:10]].tolist())))
    return "; ".join(str(row) for row in arr[idx[:3]].tolist()) + ("; ..." if idx.size > 3 else "")


def _check_valid(name: str, arr: np.ndarray, bad: np.ndarray, valid: str) -> None:
    """Raise a DataError naming the rows of ``arr`` where ``bad`` holds, if any."""
    if arr.ndim == 0:
        if bool(bad):
            raise DataError(f"`{name}` must be {valid}, but got {arr.item()!r}.")
        return
    idx = np.flatnonzero(bad)
    if idx.size:
        raise DataError(
            f"`{name}` must be {valid}, but row(s) {_rows(idx)} hold {_values(arr, idx)}."
        )


def _observations(name: str, value: Any) -> np.ndarray:
    return as_float_array(name, value, ndim=1)


def _predictions(name: str, value: Any, n: int) -> np.ndarray:
    """A finite scalar or length-``n`` prediction array (returned unbroadcast)."""
    arr = as_float_array(name, value, ndim=(0, 1))
    if arr.ndim == 1 and arr.shape[0] != n:
        raise DataError(
            f"`{name}` has shape {arr.shape} but `y` has {n} value(s); `{name}` must be a "
            f"scalar or an array of shape ({n},)."
        )
    return arr


def _positive_scalar(name: str, value: Any) -> float:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"`{name}` must be a finite number > 0, but got {value!r}.") from None
    if arr.ndim != 0:
        raise DataError(
            f"`{name}` must be a scalar (one value shared by all observations), but got an "
            f"array of shape {arr.shape}."
        )
    x = float(arr)
    if not (np.isfinite(x) and x > 0):
        raise DataError(f"`{name}` must be a finite number > 0, but got {value!r}.")
    return x


def _binary_labels(value: Any) -> np.ndarray:
    y = _observations("y", value)
    _check_valid("y", y, (y != 0) & (y != 1), "binary labels in {0, 1} (or booleans)")
    return y


def _class_labels(value: Any, n: int, k: int, scores: str) -> np.ndarray:
    """Integer labels 0..k-1 from integer labels (n,) or a one-hot matrix (n, k)."""
    y = as_float_array("y", value, ndim=(1, 2))
    if y.shape[0] != n:
        raise DataError(
            f"`y` has {y.shape[0]} row(s) but `{scores}` has {n}; they must have the same "
            f"number of rows (one per observation)."
        )
    if y.ndim == 2:
        if y.shape[1] != k:
            raise DataError(
                f"one-hot `y` has {y.shape[1]} column(s) but `{scores}` has {k}; both need one "
                f"column per class."
            )
        _check_valid("y", y, ((y != 0) & (y != 1)).any(axis=1), "one-hot rows of 0s and 1s")
        _check_valid("y", y, y.sum(axis=1) != 1, "one-hot rows with exactly one 1")
        return np.argmax(y, axis=1)
    valid = f"integer class labels in {{0, ..., {k - 1}}} (one per column of `{scores}`)"
    _check_valid("y", y, (y < 0) | (y > k - 1) | (y != np.round(y)), valid)
    return y.astype(np.intp)


def _score_matrix(name: str, value: Any) -> np.ndarray:
    arr = as_float_array(name, value, ndim=2)
    if arr.shape[1] < 2:
        raise DataError(
            f"`{name}` has shape {arr.shape}; it needs one column per class and at least 2 "
            f"classes."
        )
    return arr


def _probability_matrix(value: Any) -> np.ndarray:
    P = _score_matrix("P", value)
    _check_valid("P", P, ((P < 0) | (P > 1)).any(axis=1), "probabilities in [0, 1]")
    sums = P.sum(axis=1)
    idx = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOL)
    if idx.size:
        raise DataError(
            f"each row of `P` must sum to 1 (within {ROW_SUM_TOL:.1e}), but row(s) {_rows(idx)} "
            f"sum to {sorted(set(sums[idx[:10]].tolist()))}. Normalise the rows, or pass "
            f"unnormalised scores to `categorical_nll_logits`."
        )
    return P


# ---------------------------------------------------------------------------------------------
# Gaussian <-> mean squared error
# ---------------------------------------------------------------------------------------------
def gaussian_nll(y: Any, mu: Any, sigma: float = 1.0) -> float:
    r"""Negative log-likelihood of ``y`` under :math:`N(\mu_i, \sigma^2)`.

    .. math:: \mathrm{NLL} = \frac{n}{2}\log(2\pi\sigma^2) + \frac{\mathrm{SSE}}{2\sigma^2},
              \qquad \mathrm{SSE} = \sum_i (y_i - \mu_i)^2 .

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations.
    mu : float or array_like, shape (n,)
        Means (predictions).
    sigma : float, default 1.0
        Standard deviation of the noise, a positive scalar shared by all observations.

    Returns
    -------
    float
        The total NLL, ``-scipy.stats.norm.logpdf(y, mu, sigma).sum()``.

    Raises
    ------
    DataError
        If ``y`` or ``mu`` is empty, non-finite or of mismatched shape, or ``sigma <= 0``.
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    sigma = _positive_scalar("sigma", sigma)
    sse = float(np.sum((y - mu) ** 2))
    return float(0.5 * y.size * np.log(2.0 * np.pi * sigma**2) + sse / (2.0 * sigma**2))


def mse(y: Any, mu: Any) -> float:
    r"""Mean squared error :math:`\frac1n\sum_i (y_i - \mu_i)^2`.

    Equals ``sklearn.metrics.mean_squared_error(y, mu)`` and, for any fixed ``sigma``,
    ``(2 sigma^2 / n) * (gaussian_nll(y, mu, sigma) - n/2 log(2 pi sigma^2))``.

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations.
    mu : float or array_like, shape (n,)
        Predictions.

    Returns
    -------
    float
        The mean squared error.

    Raises
    ------
    DataError
        If ``y`` or ``mu`` is empty, non-finite or of mismatched shape.
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    return float(np.mean((y - mu) ** 2))


# ---------------------------------------------------------------------------------------------
# Bernoulli <-> binary cross-entropy
# ---------------------------------------------------------------------------------------------
def bernoulli_nll(y: Any, p: Any) -> float:
    r"""Negative log-likelihood of binary ``y`` under :math:`\mathrm{Bernoulli}(p_i)`.

    .. math:: \mathrm{NLL} = -\sum_i \left[ y_i \log p_i + (1 - y_i)\log(1 - p_i) \right],

    with :math:`0 \log 0 = 0`, so ``p`` may be exactly 0 or 1 (the NLL is ``inf`` when such a
    prediction is wrong).

    Parameters
    ----------
    y : array_like, shape (n,)
        Labels in {0, 1} (booleans accepted).
    p : float or array_like, shape (n,)
        Probabilities of the label 1, in [0, 1].

    Returns
    -------
    float
        The total NLL, ``-scipy.stats.bernoulli.logpmf(y, p).sum()``.

    Raises
    ------
    DataError
        If ``y`` is not binary, ``p`` is outside [0, 1], either is empty or non-finite, or the
        shapes do not match.

    See Also
    --------
    bernoulli_nll_logits : The same from log-odds, without rounding or overflow.
    """
    y = _binary_labels(y)
    p = _predictions("p", p, y.size)
    _check_valid("p", p, (p < 0) | (p > 1), "a probability in [0, 1]")
    return float(-np.sum(xlogy(y, p) + xlog1py(1.0 - y, -p)))


def bernoulli_nll_logits(y: Any, eta: Any) -> float:
    r"""Bernoulli negative log-likelihood from log-odds :math:`\eta_i = \operatorname{logit} p_i`.

    Computed as :math:`\sum_i \operatorname{softplus}(\pm\eta_i)` with
    :math:`\operatorname{softplus}(x) = \log(1 + e^x)` = ``np.logaddexp(0, x)``, the sign being
    ``-`` for ``y_i = 1`` and ``+`` for ``y_i = 0``. No probability is formed, so the result is
    accurate to rounding for every finite ``eta`` (``eta = 800`` with ``y = 0`` gives 800, with
    ``y = 1`` gives 0; ``eta = 30`` with ``y = 1`` gives ``log1p(exp(-30))`` to full precision).

    Parameters
    ----------
    y : array_like, shape (n,)
        Labels in {0, 1} (booleans accepted).
    eta : float or array_like, shape (n,)
        Log-odds of the label 1 (any finite real).

    Returns
    -------
    float
        The total NLL, equal to ``bernoulli_nll(y, scipy.special.expit(eta))`` in exact
        arithmetic.

    Raises
    ------
    DataError
        If ``y`` is not binary, either argument is empty or non-finite, or the shapes differ.
    """
    y = _binary_labels(y)
    eta = _predictions("eta", eta, y.size)
    return float(np.sum(np.logaddexp(0.0, np.where(y == 1, -eta, eta))))


def binary_cross_entropy(y: Any, p: Any) -> float:
    """Mean binary cross-entropy (log loss) ``bernoulli_nll(y, p) / n``.

    Equals ``sklearn.metrics.log_loss(y, y_proba=p)`` for ``p`` in ``[eps, 1 - eps]``
    (scikit-learn clips ``p`` to that range; this function does not).

    Parameters
    ----------
    y : array_like, shape (n,)
        Labels in {0, 1}.
    p : float or array_like, shape (n,)
        Probabilities of the label 1, in [0, 1].

    Returns
    -------
    float
        The mean cross-entropy, in nats.

    Raises
    ------
    DataError
        As :func:`bernoulli_nll`.
    """
    n = _observations("y", y).size
    return bernoulli_nll(y, p) / n


# ---------------------------------------------------------------------------------------------
# Categorical <-> categorical cross-entropy
# ---------------------------------------------------------------------------------------------
def categorical_nll(y: Any, P: Any) -> float:
    r"""Negative log-likelihood of class labels under :math:`\mathrm{Categorical}(P_i)`.

    .. math:: \mathrm{NLL} = -\sum_i \log P_{i, y_i}.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, K)
        Integer class labels in {0, ..., K-1}, or the same as one-hot rows.
    P : array_like, shape (n, K)
        Class probabilities; entries in [0, 1], each row summing to 1 (within
        :data:`ROW_SUM_TOL`).

    Returns
    -------
    float
        The total NLL (``inf`` if a true class has probability 0).

    Raises
    ------
    DataError
        If labels are outside {0, ..., K-1} or not one-hot, ``P`` has entries outside [0, 1]
        or rows not summing to 1, an argument is empty or non-finite, or the row counts differ.

    See Also
    --------
    categorical_nll_logits : The same from unnormalised log-probabilities.
    """
    P = _probability_matrix(P)
    labels = _class_labels(y, *P.shape, scores="P")
    picked = P[np.arange(P.shape[0]), labels]
    with np.errstate(divide="ignore"):
        return float(-np.sum(np.log(picked)))


def categorical_nll_logits(y: Any, logits: Any) -> float:
    r"""Categorical negative log-likelihood from logits (softmax regression scores).

    .. math:: \mathrm{NLL} = \sum_i \left[\log\sum_k e^{z_{ik}} - z_{i, y_i}\right].

    Each term is computed as a log-sum-exp of the logits *relative to the true class*,
    :math:`m_i + \operatorname{log1p}\bigl(\sum_{k \ne k^*} e^{s_{ik} - m_i}\bigr)` with
    :math:`s_{ik} = z_{ik} - z_{i,y_i}`, :math:`m_i = \max_k s_{ik}` attained at
    :math:`k^*`; there is no overflow and no cancellation, so logits of any finite size
    (e.g. ±800) give the exact value to rounding.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, K)
        Integer class labels in {0, ..., K-1}, or one-hot rows.
    logits : array_like, shape (n, K)
        Unnormalised log-probabilities (any finite reals).

    Returns
    -------
    float
        The total NLL, equal to ``categorical_nll(y, softmax(logits, axis=1))`` in exact
        arithmetic.

    Raises
    ------
    DataError
        As :func:`categorical_nll` (without the probability checks).
    """
    z = _score_matrix("logits", logits)
    labels = _class_labels(y, *z.shape, scores="logits")
    rows = np.arange(z.shape[0])
    s = z - z[rows, labels][:, None]
    top = np.argmax(s, axis=1)
    m = s[rows, top]
    terms = np.exp(s - m[:, None])
    terms[rows, top] = 0.0
    return float(np.sum(m + np.log1p(terms.sum(axis=1))))


def categorical_cross_entropy(y: Any, P: Any) -> float:
    """Mean categorical cross-entropy (multiclass log loss) ``categorical_nll(y, P) / n``.

    Equals ``sklearn.metrics.log_loss(y, y_proba=P, labels=range(K))`` for entries of ``P`` in
    ``[eps, 1 - eps]`` (scikit-learn clips them; this function does not).

    Parameters
    ----------
    y : array_like, shape (n,) or (n, K)
        Integer class labels in {0, ..., K-1}, or one-hot rows.
    P : array_like, shape (n, K)
        Class probabilities, rows summing to 1.

    Returns
    -------
    float
        The mean cross-entropy, in nats.

    Raises
    ------
    DataError
        As :func:`categorical_nll`.
    """
    nll = categorical_nll(y, P)
    return nll / np.shape(P)[0]


# ---------------------------------------------------------------------------------------------
# Poisson <-> Poisson deviance
# ---------------------------------------------------------------------------------------------
def _poisson_inputs(y: Any, rate: Any) -> tuple[np.ndarray, np.ndarray]:
    y = as_count_array("y", y)
    rate = _predictions("rate", rate, y.size)
    _check_valid("rate", rate, rate <= 0, "a rate > 0")
    return y, rate


def poisson_nll(y: Any, rate: Any) -> float:
    r"""Negative log-likelihood of counts ``y`` under :math:`\mathrm{Poisson}(\mu_i)`.

    .. math:: \mathrm{NLL} = \sum_i \left[\mu_i - y_i \log \mu_i + \log(y_i!)\right],

    the :math:`\log(y_i!)` term computed as ``gammaln(y + 1)``.

    Parameters
    ----------
    y : array_like, shape (n,)
        Non-negative whole-number counts.
    rate : float or array_like, shape (n,)
        Poisson means (> 0).

    Returns
    -------
    float
        The total NLL, ``-scipy.stats.poisson.logpmf(y, rate).sum()``.

    Raises
    ------
    DataError
        If ``y`` holds negative or fractional values, ``rate <= 0``, either is empty or
        non-finite, or the shapes differ.
    """
    y, rate = _poisson_inputs(y, rate)
    return float(np.sum(rate - xlogy(y, rate) + gammaln(y + 1.0)))


def poisson_saturated_nll(y: Any) -> float:
    r"""Poisson NLL of the saturated model (:math:`\mu_i = y_i`), the NLL's lower bound.

    .. math:: \mathrm{NLL}_{\mathrm{sat}} = \sum_i \left[y_i - y_i \log y_i + \log(y_i!)\right],

    with :math:`0 \log 0 = 0` (the limit :math:`\mu \to 0` for a zero count).

    Parameters
    ----------
    y : array_like, shape (n,)
        Non-negative whole-number counts.

    Returns
    -------
    float
        The saturated NLL.

    Raises
    ------
    DataError
        If ``y`` holds negative, fractional or non-finite values or is empty.
    """
    y = as_count_array("y", y)
    return float(np.sum(y - xlogy(y, y) + gammaln(y + 1.0)))


def poisson_deviance(y: Any, rate: Any) -> float:
    r"""Mean Poisson deviance.

    .. math:: D = \frac{2}{n}\sum_i \left[y_i \log\frac{y_i}{\mu_i} - (y_i - \mu_i)\right]
              = \frac{2}{n}\left(\mathrm{NLL} - \mathrm{NLL}_{\mathrm{sat}}\right),

    with :math:`0 \log 0 = 0`; :math:`\mathrm{NLL}_{\mathrm{sat}}` is
    :func:`poisson_saturated_nll` (it depends on ``y`` only). Equals
    ``sklearn.metrics.mean_poisson_deviance(y, rate)``.

    Parameters
    ----------
    y : array_like, shape (n,)
        Non-negative whole-number counts.
    rate : float or array_like, shape (n,)
        Poisson means (> 0).

    Returns
    -------
    float
        The mean deviance.

    Raises
    ------
    DataError
        As :func:`poisson_nll`.
    """
    y, rate = _poisson_inputs(y, rate)
    return float(np.mean(2.0 * (xlogy(y, y / rate) - y + rate)))


# ---------------------------------------------------------------------------------------------
# Laplace <-> mean absolute error
# ---------------------------------------------------------------------------------------------
def laplace_nll(y: Any, mu: Any, b: float = 1.0) -> float:
    r"""Negative log-likelihood of ``y`` under :math:`\mathrm{Laplace}(\mu_i, b)`.

    .. math:: \mathrm{NLL} = n\log(2b) + \frac{\mathrm{SAE}}{b},
              \qquad \mathrm{SAE} = \sum_i |y_i - \mu_i| .

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations.
    mu : float or array_like, shape (n,)
        Locations (predictions).
    b : float, default 1.0
        Scale, a positive scalar shared by all observations.

    Returns
    -------
    float
        The total NLL, ``-scipy.stats.laplace.logpdf(y, mu, b).sum()``.

    Raises
    ------
    DataError
        If ``y`` or ``mu`` is empty, non-finite or of mismatched shape, or ``b <= 0``.
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    b = _positive_scalar("b", b)
    sae = float(np.sum(np.abs(y - mu)))
    return float(y.size * np.log(2.0 * b) + sae / b)


def mae(y: Any, mu: Any) -> float:
    r"""Mean absolute error :math:`\frac1n\sum_i |y_i - \mu_i|`.

    Equals ``sklearn.metrics.mean_absolute_error(y, mu)`` and, for any fixed ``b``,
    ``(b / n) * (laplace_nll(y, mu, b) - n log(2 b))``.

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations.
    mu : float or array_like, shape (n,)
        Predictions.

    Returns
    -------
    float
        The mean absolute error.

    Raises
    ------
    DataError
        If ``y`` or ``mu`` is empty, non-finite or of mismatched shape.
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    return float(np.mean(np.abs(y - mu)))


# ---------------------------------------------------------------------------------------------
# The dictionary
# ---------------------------------------------------------------------------------------------
def _n_rows(y: Any) -> int:
    return as_float_array("y", y, ndim=(1, 2)).shape[0]


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
