"""The negative log-likelihoods: Gaussian, Bernoulli, categorical, Poisson and Laplace.

Each ``*_nll`` function is the *total* negative log-likelihood of the data, every normalising
constant included, so that it equals minus the sum of the ``scipy.stats`` log-densities. The
losses that are affine in them are in :mod:`bayesmle.losses.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln, xlog1py, xlogy

from bayesmle._validation import as_count_array
from bayesmle.losses._inputs import (
    _binary_labels,
    _check_valid,
    _class_labels,
    _observations,
    _poisson_inputs,
    _positive_scalar,
    _predictions,
    _probability_matrix,
    _score_matrix,
)

__all__ = [
    "bernoulli_nll",
    "bernoulli_nll_logits",
    "categorical_nll",
    "categorical_nll_logits",
    "gaussian_nll",
    "laplace_nll",
    "poisson_nll",
    "poisson_saturated_nll",
]


# ---------------------------------------------------------------------------------------------
# Gaussian
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

    Examples
    --------
    The NLL equals minus the summed ``scipy.stats.norm`` log-density:

    >>> from scipy import stats
    >>> from bayesmle import losses
    >>> y, mu = [1.0, 2.0, 4.0], [1.5, 2.0, 3.0]
    >>> round(losses.gaussian_nll(y, mu, sigma=2.0), 4)
    4.9925
    >>> round(float(-stats.norm.logpdf(y, mu, 2.0).sum()), 4)
    4.9925

    Bad input raises a :class:`~bayesmle.errors.DataError` that names the argument:

    >>> losses.gaussian_nll(y, mu, sigma=0.0)
    Traceback (most recent call last):
        ...
    bayesmle.errors.DataError: `sigma` must be a finite number > 0, but got 0.0.
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    sigma = _positive_scalar("sigma", sigma)
    sse = float(np.sum((y - mu) ** 2))
    log_sigma = np.log(float(sigma))  # log(2 pi sigma^2) without squaring: sigma may be huge
    return float(0.5 * y.size * (np.log(2.0 * np.pi) + 2.0 * log_sigma)
                 + 0.5 * sse * np.exp(-2.0 * log_sigma))

# ---------------------------------------------------------------------------------------------
# Bernoulli
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

    Examples
    --------
    >>> from bayesmle import losses
    >>> round(losses.bernoulli_nll([1, 0, 1], [0.8, 0.3, 0.6]), 4)
    1.0906

    Certain predictions are allowed: free when right, infinitely costly when wrong.

    >>> losses.bernoulli_nll([1, 0], [1.0, 0.0]), losses.bernoulli_nll([1, 0], [0.0, 0.0])
    (0.0, inf)
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

    Examples
    --------
    Log-odds of any size are exact (``expit(800)`` rounds to 1, so ``bernoulli_nll`` would
    give ``inf`` for a wrong label 0):

    >>> from bayesmle import losses
    >>> losses.bernoulli_nll_logits([0, 1], [800.0, 800.0])
    800.0
    >>> bool(losses.bernoulli_nll_logits([1], [30.0]) > 0)  # log1p(exp(-30)) is not rounded to 0
    True
    """
    y = _binary_labels(y)
    eta = _predictions("eta", eta, y.size)
    return float(np.sum(np.logaddexp(0.0, np.where(y == 1, -eta, eta))))

# ---------------------------------------------------------------------------------------------
# Categorical
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
        :data:`~bayesmle.losses.ROW_SUM_TOL`).

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

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import losses
    >>> P = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    >>> round(losses.categorical_nll([0, 1], P), 4)
    0.5798
    >>> round(float(-np.log(0.7) - np.log(0.8)), 4)
    0.5798

    One-hot labels give the same:

    >>> round(losses.categorical_nll([[1, 0, 0], [0, 1, 0]], P), 4)
    0.5798
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

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import softmax
    >>> from bayesmle import losses
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.5, 0.3]])
    >>> round(losses.categorical_nll_logits([0, 1], logits), 4)
    0.6629
    >>> round(losses.categorical_nll([0, 1], softmax(logits, axis=1)), 4)
    0.6629

    Huge logits do not overflow:

    >>> losses.categorical_nll_logits([0], [[800.0, 0.0, -800.0]])
    0.0
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

# ---------------------------------------------------------------------------------------------
# Poisson
# ---------------------------------------------------------------------------------------------
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

    Examples
    --------
    >>> from scipy import stats
    >>> from bayesmle import losses
    >>> y, rate = [0, 2, 5], [1.0, 2.0, 4.0]
    >>> round(losses.poisson_nll(y, rate), 4)
    4.1629
    >>> round(float(-stats.poisson.logpmf(y, rate).sum()), 4)
    4.1629
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

    Examples
    --------
    No rate fits the counts better than the counts themselves:

    >>> from bayesmle import losses
    >>> y = [0, 2, 5]
    >>> round(losses.poisson_saturated_nll(y), 4)
    3.0472
    >>> round(losses.poisson_nll(y[1:], y[1:]), 4)  # a zero count adds nothing: 0 log 0 = 0
    3.0472
    >>> bool(losses.poisson_saturated_nll(y) < losses.poisson_nll(y, [1.0, 2.0, 4.0]))
    True
    """
    y = as_count_array("y", y)
    return float(np.sum(y - xlogy(y, y) + gammaln(y + 1.0)))

# ---------------------------------------------------------------------------------------------
# Laplace
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

    Examples
    --------
    >>> from scipy import stats
    >>> from bayesmle import losses
    >>> y, mu = [1.0, 2.0, 4.0], [1.5, 2.0, 3.0]
    >>> round(losses.laplace_nll(y, mu, b=0.5), 4)
    3.0
    >>> round(float(-stats.laplace.logpdf(y, mu, 0.5).sum()), 4)
    3.0
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    b = _positive_scalar("b", b)
    sae = float(np.sum(np.abs(y - mu)))
    return float(y.size * np.log(2.0 * b) + sae / b)
