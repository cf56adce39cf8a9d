"""Log-densities of the priors in NumPy/SciPy, equal to PyMC's ``logp`` (constants included).

The numerical code that never builds a PyMC graph -- the marginal posterior mode of a mixed
model, say -- needs the prior log-densities and their derivatives as plain floats. These are the
densities PyMC evaluates (normalising constants included, edge-of-support conventions as PyMC's),
so that a log posterior computed here and one PyMC computes agree to rounding:

* ``Flat``: 0; ``HalfFlat``: 0 on ``[0, inf)``, ``-inf`` below;
* ``Normal(mu, sigma)``, ``Laplace(mu, b)``;
* ``HalfNormal(sigma)``, ``HalfCauchy(beta)``, ``Exponential(lam)``, ``Gamma(alpha, beta)``
  (shape, rate) on ``[0, inf)`` (``-inf`` below 0; a Gamma with ``alpha < 1`` is ``-inf`` at 0,
  PyMC's convention at the edge of the support);
* ``Beta(a, b)`` on ``[0, 1]``;
* ``LKJ(eta)`` on a ``k x k`` correlation matrix ``R``: ``c(eta, k) + (eta - 1) log det R``,
  the density over the free correlations ``R[i, j], i < j`` with PyMC's normalising constant.
  (PyMC's ``LKJCorr`` is a distribution of the Cholesky factor ``L`` of ``R``; its log-density
  is this one plus the log-Jacobian ``sum_i (k - i) log L[i, i]`` of ``L -> R``, ``i`` one-based.)

The LKJ prior is recognised by its class name (``"LKJ"``) and its ``eta`` attribute.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from bayesmle.errors import PriorError

__all__ = ["logpdf", "logpdf_grad", "lkj_log_normaliser"]

_LOG_2PI = math.log(2.0 * math.pi)


def _name(prior: object) -> str:
    return type(prior).__name__


def _is_lkj(prior: object) -> bool:
    return _name(prior) == "LKJ" and hasattr(prior, "eta")


def _params(prior: object, value) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``value`` and the prior's parameters as float arrays broadcast together."""
    names = tuple(getattr(prior, "param_names", ()))
    arrays = [np.asarray(value, dtype=float)] + [np.asarray(getattr(prior, n), dtype=float)
                                                 for n in names]
    try:
        out = np.broadcast_arrays(*arrays)
    except ValueError:
        raise PriorError(
            f"{prior!r}: its parameters (shapes {[a.shape for a in arrays[1:]]}) do not "
            f"broadcast against `value` of shape {arrays[0].shape}. Give scalar parameters or "
            "one value per element."
        ) from None
    return out[0], dict(zip(names, out[1:], strict=True))


def lkj_log_normaliser(eta: float, k: int) -> float:
    """Log normalising constant of the LKJ density of a ``k x k`` correlation matrix.

    The same constant as PyMC's ``LKJCorr``: the density is ``exp(c) det(R)^(eta - 1)`` over
    the ``k (k - 1) / 2`` free correlations.

    Examples
    --------
    For ``k = 2`` and ``eta = 1`` the correlation is uniform on (-1, 1):

    >>> round(float(np.exp(lkj_log_normaliser(1.0, 2))), 12)
    0.5
    """
    kk = np.arange(1, k)
    return float((k - 1) * special.gammaln(eta + 0.5 * (k - 1))
                 - np.sum(0.5 * kk * math.log(math.pi) + special.gammaln(eta + 0.5 * (k - 1 - kk))))


def _lkj_matrix(prior: object, value) -> tuple[float, np.ndarray]:
    eta = float(np.asarray(prior.eta, dtype=float))
    if not eta > 0:
        raise PriorError(f"LKJ: `eta` must be > 0, got {eta!r}. Use eta = 1 for a uniform prior "
                         "on correlation matrices, eta > 1 to favour small correlations.")
    R = np.asarray(value, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise PriorError(f"LKJ: `value` must be a square correlation matrix, got shape "
                         f"{R.shape}. Pass the k x k matrix R (ones on the diagonal).")
    return eta, R


def _logpow(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``m * log(x)`` with PyMC's convention at ``x = 0``: 0 if ``m == 0``, else ``-inf``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logx = np.log(x)
        edge = (logx == -np.inf) & (m <= 0)
        return np.where(edge, np.where(m == 0, 0.0, -np.inf), m * logx)


def _elementwise(prior: object, value) -> np.ndarray:
    """Elementwise log-density (broadcast shape)."""
    x, p = _params(prior, value)
    name = _name(prior)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        match name:
            case "Flat":
                return np.zeros_like(x)
            case "HalfFlat":
                return np.where(x < 0, -np.inf, 0.0)
            case "Normal":
                z = (x - p["mu"]) / p["sigma"]
                return -0.5 * z * z - np.log(p["sigma"]) - 0.5 * _LOG_2PI
            case "Laplace":
                return -np.log(2.0 * p["b"]) - np.abs(x - p["mu"]) / p["b"]
            case "HalfNormal":
                z = x / p["sigma"]
                out = -0.5 * z * z + 0.5 * math.log(2.0 / math.pi) - np.log(p["sigma"])
                return np.where(x >= 0, out, -np.inf)
            case "HalfCauchy":
                b = p["beta"]
                out = math.log(2.0 / math.pi) - np.log(b) - np.log1p((x / b) ** 2)
                return np.where(x >= 0, out, -np.inf)
            case "Exponential":
                lam = p["lam"]
                return np.where(x >= 0, np.log(lam) - lam * x, -np.inf)
            case "Gamma":
                a, b = p["alpha"], p["beta"]
                out = (-special.gammaln(a) + a * np.log(b) - b * x
                       + _logpow(np.where(x >= 0, x, 1.0), a - 1.0))
                return np.where(x >= 0, out, -np.inf)
            case "Beta":
                a, b = p["a"], p["b"]
                inside = (x >= 0) & (x <= 1)
                xc = np.where(inside, x, 0.5)
                out = (np.where(a == 1.0, 0.0, (a - 1.0) * np.log(xc))
                       + np.where(b == 1.0, 0.0, (b - 1.0) * np.log1p(-xc))
                       - special.betaln(a, b))
                return np.where(inside, out, -np.inf)
    raise PriorError(
        f"No numeric log-density for the prior {prior!r} (class {name}). Supported: Flat, "
        "HalfFlat, Normal, Laplace, HalfNormal, HalfCauchy, Exponential, Gamma, Beta, LKJ."
    )


def logpdf(prior: object, value) -> float:
    """Summed log-density of ``prior`` at ``value``, as PyMC's ``logp`` (constants included).

    Parameters
    ----------
    prior : Prior
        A bayesmle prior (``Flat``, ``HalfFlat``, ``Normal``, ``Laplace``, ``HalfNormal``,
        ``HalfCauchy``, ``Exponential``, ``Gamma``, ``Beta``) or an ``LKJ`` correlation prior.
    value : array_like
        Where to evaluate; the prior's parameter arrays broadcast against it. For ``LKJ``, the
        ``k x k`` correlation matrix.

    Returns
    -------
    float
        The sum over elements (``-inf`` outside the support).

    Examples
    --------
    >>> from bayesmle import HalfNormal, Normal
    >>> round(logpdf(Normal(1.0), 0.0), 6)  # -log(2 pi) / 2
    -0.918939
    >>> logpdf(HalfNormal([1.0, 2.0]), [-1.0, 1.0])
    -inf
    """
    if _is_lkj(prior):
        eta, R = _lkj_matrix(prior, value)
        k = R.shape[0]
        const = lkj_log_normaliser(eta, k)
        if eta == 1.0:
            return const
        sign, logdet = np.linalg.slogdet(R)
        if not sign > 0:
            logdet = -np.inf
        return float(const + (eta - 1.0) * logdet) if np.isfinite(logdet) else \
            (-np.inf if eta > 1.0 else np.inf)
    return float(np.sum(_elementwise(prior, value)))


def logpdf_grad(prior: object, value) -> np.ndarray:
    """Elementwise derivative of the log-density of ``prior`` at ``value``.

    For the scalar families the result has the broadcast shape of ``value`` and the parameters;
    it is NaN outside the support, ``0`` at the kink of a Laplace density and the one-sided
    derivative at the end of a half-line. For ``LKJ`` it is the ``k x k`` matrix ``G`` with
    ``G[i, j] = G[j, i]`` the derivative with respect to the correlation ``R[i, j]`` (one free
    variable for both entries) and zeros on the diagonal.

    Examples
    --------
    >>> from bayesmle import Gamma, Normal
    >>> logpdf_grad(Normal(2.0, mu=1.0), [0.0, 3.0]).tolist()  # -(x - mu) / sigma^2
    [0.25, -0.5]
    >>> float(logpdf_grad(Gamma(2.0, 0.5), 1.0))  # (alpha - 1) / x - beta
    0.5
    """
    if _is_lkj(prior):
        eta, R = _lkj_matrix(prior, value)
        if eta == 1.0:
            return np.zeros_like(R)
        G = 2.0 * (eta - 1.0) * np.linalg.inv(R)
        np.fill_diagonal(G, 0.0)
        return 0.5 * (G + G.T)
    x, p = _params(prior, value)
    name = _name(prior)
    with np.errstate(divide="ignore", invalid="ignore"):
        match name:
            case "Flat":
                return np.zeros_like(x)
            case "HalfFlat":
                return np.where(x < 0, np.nan, 0.0)
            case "Normal":
                return -(x - p["mu"]) / p["sigma"] ** 2
            case "Laplace":
                return -np.sign(x - p["mu"]) / p["b"]
            case "HalfNormal":
                return np.where(x >= 0, -x / p["sigma"] ** 2, np.nan)
            case "HalfCauchy":
                return np.where(x >= 0, -2.0 * x / (p["beta"] ** 2 + x * x), np.nan)
            case "Exponential":
                return np.where(x >= 0, -p["lam"], np.nan)
            case "Gamma":
                a, b = p["alpha"], p["beta"]
                lead = np.where(a == 1.0, 0.0, (a - 1.0) / np.where(x > 0, x, 0.0))
                return np.where(x >= 0, lead - b, np.nan)
            case "Beta":
                a, b = p["a"], p["b"]
                inside = (x >= 0) & (x <= 1)
                out = (np.where(a == 1.0, 0.0, (a - 1.0) / x)
                       - np.where(b == 1.0, 0.0, (b - 1.0) / (1.0 - x)))
                return np.where(inside, out, np.nan)
    raise PriorError(
        f"No numeric log-density for the prior {prior!r} (class {name}). Supported: Flat, "
        "HalfFlat, Normal, Laplace, HalfNormal, HalfCauchy, Exponential, Gamma, Beta, LKJ."
    )
