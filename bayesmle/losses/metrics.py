"""The losses: mean squared error, cross-entropies, Poisson deviance, mean absolute error.

Each equals the scikit-learn metric of the same name and is an affine function of a negative
log-likelihood of :mod:`bayesmle.losses.likelihoods` (see :mod:`bayesmle.losses` for the
relations and :data:`bayesmle.losses.LOSSES` for their constants).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from bayesmle.losses._inputs import _observations, _poisson_inputs, _predictions
from bayesmle.losses.likelihoods import bernoulli_nll, categorical_nll

__all__ = [
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "mae",
    "mse",
    "poisson_deviance",
]


# ---------------------------------------------------------------------------------------------
# Gaussian: mean squared error
# ---------------------------------------------------------------------------------------------
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

    Examples
    --------
    >>> from bayesmle import losses
    >>> y, mu = [1.0, 2.0, 4.0], [1.5, 2.0, 3.0]
    >>> round(losses.mse(y, mu), 4)
    0.4167

    The MSE is an affine function of the Gaussian NLL, whatever ``sigma`` is fixed at:

    >>> import numpy as np
    >>> n, sigma = 3, 2.0
    >>> nll = losses.gaussian_nll(y, mu, sigma)
    >>> round(float(2 * sigma**2 / n * (nll - n / 2 * np.log(2 * np.pi * sigma**2))), 4)
    0.4167
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    return float(np.mean((y - mu) ** 2))

# ---------------------------------------------------------------------------------------------
# Bernoulli: binary cross-entropy
# ---------------------------------------------------------------------------------------------
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
        As :func:`~bayesmle.losses.bernoulli_nll`.

    Examples
    --------
    >>> from bayesmle import losses
    >>> y, p = [1, 0, 1], [0.8, 0.3, 0.6]
    >>> round(losses.binary_cross_entropy(y, p), 4)
    0.3635
    >>> round(losses.bernoulli_nll(y, p) / 3, 4)
    0.3635
    """
    n = _observations("y", y).size
    return bernoulli_nll(y, p) / n

# ---------------------------------------------------------------------------------------------
# Categorical: categorical cross-entropy
# ---------------------------------------------------------------------------------------------
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
        As :func:`~bayesmle.losses.categorical_nll`.

    Examples
    --------
    >>> from bayesmle import losses
    >>> P = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    >>> round(losses.categorical_cross_entropy([0, 1], P), 4)
    0.2899
    """
    nll = categorical_nll(y, P)
    return nll / np.shape(P)[0]

# ---------------------------------------------------------------------------------------------
# Poisson: mean Poisson deviance
# ---------------------------------------------------------------------------------------------
def poisson_deviance(y: Any, rate: Any) -> float:
    r"""Mean Poisson deviance.

    .. math:: D = \frac{2}{n}\sum_i \left[y_i \log\frac{y_i}{\mu_i} - (y_i - \mu_i)\right]
              = \frac{2}{n}\left(\mathrm{NLL} - \mathrm{NLL}_{\mathrm{sat}}\right),

    with :math:`0 \log 0 = 0`; :math:`\mathrm{NLL}_{\mathrm{sat}}` is
    :func:`~bayesmle.losses.poisson_saturated_nll` (it depends on ``y`` only). Equals
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
        As :func:`~bayesmle.losses.poisson_nll`.

    Examples
    --------
    >>> from bayesmle import losses
    >>> y, rate = [0, 2, 5], [1.0, 2.0, 4.0]
    >>> round(losses.poisson_deviance(y, rate), 4)
    0.7438
    >>> round(2 / 3 * (losses.poisson_nll(y, rate) - losses.poisson_saturated_nll(y)), 4)
    0.7438
    """
    y, rate = _poisson_inputs(y, rate)
    return float(np.mean(2.0 * (xlogy(y, y / rate) - y + rate)))

# ---------------------------------------------------------------------------------------------
# Laplace: mean absolute error
# ---------------------------------------------------------------------------------------------
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

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import losses
    >>> y, mu = [1.0, 2.0, 4.0], [1.5, 2.0, 3.0]
    >>> losses.mae(y, mu)
    0.5

    The MAE is an affine function of the Laplace NLL, whatever ``b`` is fixed at:

    >>> n, b = 3, 0.5
    >>> round(float(b / n * (losses.laplace_nll(y, mu, b) - n * np.log(2 * b))), 4)
    0.5
    """
    y = _observations("y", y)
    mu = _predictions("mu", mu, y.size)
    return float(np.mean(np.abs(y - mu)))
