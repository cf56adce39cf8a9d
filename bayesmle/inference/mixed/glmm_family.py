"""Per-row log-likelihood of a GLMM's response and its first three derivatives in ``eta``.

The conditional distribution of one row given the linear predictor ``eta``: Bernoulli,
binomial (``trials``) or Poisson, with all normalising constants (``log C(m, y)``,
``-log y!``), as statsmodels' GLM ``llf`` and lme4's ``logLik`` report them. The derivatives
are exact (the *observed* information ``-l''`` is what the Laplace approximation uses; for the
canonical links logit and log it equals the expected one). Everything is computed in log space
so that no ``|eta|`` overflows: ``log1p``/``expm1``, ``scipy.special.log_ndtr`` and ``erfcx``
for the probit, a series in ``t = exp(eta)`` for the complementary log-log when ``t`` is small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from bayesmle.errors import DataError, SpecError
from bayesmle.models.mixed_design import MixedDesign

__all__ = ["LINKS", "RowLik", "row_lik"]

#: The links of each non-Gaussian family fitted here.
LINKS: dict[str, tuple[str, ...]] = {
    "bernoulli": ("logit", "probit", "cloglog"),
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log",),
}
_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
_T_SERIES = 1e-2      # cloglog: below this t = exp(eta), the Taylor series in t
_T_CAP = 700.0        # cloglog: exp(-t) underflows beyond; log mu's derivatives are 0 there
_PROBIT_TAIL = -5.0   # probit: below this eta, the continued fraction of Mills' ratio
_CF_DEPTH = 120       # its depth (converged to rounding for t >= 5)


@dataclass(frozen=True, eq=False)
class RowLik:
    """The response of a GLMM and its log-likelihood as a function of ``eta``.

    Attributes
    ----------
    family, link : str
    y : ndarray
        Response (successes for the binomial family).
    m : ndarray or None
        Trials (binomial; 1 for Bernoulli), None for Poisson.
    const : ndarray
        The normalising constant of each row (``log C(m, y)`` or ``-log y!``).
    offset : ndarray
        Added to every linear predictor (zeros when the design has none).
    """

    family: str
    link: str
    y: np.ndarray
    m: np.ndarray | None
    const: np.ndarray
    offset: np.ndarray

    def logpmf(self, eta: np.ndarray) -> np.ndarray:
        """Log-likelihood of each row at ``eta`` (shape of ``eta``; rows on axis 0)."""
        return self.derivs(eta, 0)[0]

    def derivs(self, eta: np.ndarray, order: int = 3) -> tuple[np.ndarray, ...]:
        """``(l, l', l'', l''')[: order + 1]`` of each row at ``eta`` (rows on axis 0).

        ``eta`` may have trailing axes (quadrature nodes): ``y``, ``m`` broadcast over them.
        """
        eta = np.asarray(eta, dtype=float)
        extra = (slice(None),) + (None,) * (eta.ndim - 1)
        y = self.y[extra]
        const = self.const[extra]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.family == "poisson":
                t = np.exp(eta)
                out = [y * eta - t + const, y - t, -t, -t]
                return tuple(out[:order + 1])
            m = self.m[extra]
            fails = m - y
            a = _log_cdf(self.link, eta, order)
            b = _log_sf(self.link, eta, order)
            out = []
            for k in range(order + 1):
                # 0 * (-inf) is 0 here: a row without successes does not read log mu
                term = np.where(y > 0, y * a[k], 0.0) + np.where(fails > 0, fails * b[k], 0.0)
                out.append(term + const if k == 0 else term)
            return tuple(out)


def _log_cdf(link: str, eta: np.ndarray, order: int) -> list[np.ndarray]:
    """``log mu`` and its derivatives in ``eta``."""
    if link == "logit":
        mu = special.expit(eta)
        q = special.expit(-eta)
        out = [-np.logaddexp(0.0, -eta), q, -mu * q, -mu * q * (q - mu)]
    elif link == "probit":
        out = _log_ndtr_derivs(eta)
    else:
        out = _cloglog_log_mu(eta)
    return out[:order + 1]


def _log_sf(link: str, eta: np.ndarray, order: int) -> list[np.ndarray]:
    """``log(1 - mu)`` and its derivatives in ``eta``."""
    if link == "logit":
        mu = special.expit(eta)
        q = special.expit(-eta)
        out = [-np.logaddexp(0.0, eta), -mu, -mu * q, -mu * q * (q - mu)]
    elif link == "probit":
        a = _log_ndtr_derivs(-eta)  # log(1 - Phi(eta)) = log Phi(-eta)
        out = [a[0], -a[1], a[2], -a[3]]
    else:
        t = np.exp(eta)
        out = [-t, -t, -t, -t]
    return out[:order + 1]


def _log_ndtr_derivs(x: np.ndarray) -> list[np.ndarray]:
    """``log Phi(x)`` and three derivatives.

    ``r = phi/Phi`` from ``erfcx`` (no underflow). In the lower tail (``x < -5``) the
    derivatives ``-r (x + r)`` and its derivative cancel to ``O(1/x^2)`` and ``O(1/x^3)``; there
    they come from the tails ``c_k = k / (t + c_{k+1})`` (``t = -x``) of the continued fraction
    of Mills' ratio: ``x + r = c_1``, ``l'' = -r c_1``, ``l''' = r c_1^2 c_2 (c_3 - c_2)``.
    """
    r = _SQRT_2_OVER_PI / special.erfcx(-x / np.sqrt(2.0))
    d2 = -r * (x + r)
    d3 = -d2 * (x + r) - r * (1.0 + d2)
    tail = x < _PROBIT_TAIL
    if np.any(tail):
        t = -x[tail]
        c = np.zeros_like(t)
        cs = {}
        for k in range(_CF_DEPTH, 0, -1):
            c = k / (t + c)
            if k <= 3:
                cs[k] = c
        rt = t + cs[1]
        d2, d3 = d2.copy(), d3.copy()
        d2[tail] = -rt * cs[1]
        d3[tail] = rt * cs[1] ** 2 * cs[2] * (cs[3] - cs[2])
    return [special.log_ndtr(x), r, d2, d3]


def _cloglog_log_mu(eta: np.ndarray) -> list[np.ndarray]:
    """``log(1 - exp(-t))``, ``t = exp(eta)``, and three derivatives in ``eta``.

    For small ``t`` the series ``eta - t/2 + t^2/24 - t^4/2880 + t^6/181440`` (differentiated
    term by term, ``d/deta t^k = k t^k``); else closed forms in ``s = exp(-t)``,
    ``d = 1 - s`` and ``rho = t/d - 1`` (no cancellation for ``t`` above the series' range).
    """
    t = np.minimum(np.exp(eta), _T_CAP)
    small = t < _T_SERIES
    ts = np.where(small, t, 0.0)
    t2, t4, t6 = ts ** 2, ts ** 4, ts ** 6
    series = [eta - ts / 2 + t2 / 24 - t4 / 2880 + t6 / 181440,
              1 - ts / 2 + t2 / 12 - t4 / 720 + t6 / 30240,
              -ts / 2 + t2 / 6 - t4 / 180 + t6 / 5040,
              -ts / 2 + t2 / 3 - t4 / 45 + t6 / 840]
    tb = np.where(small, 1.0, t)
    s = np.exp(-tb)
    d = -np.expm1(-tb)
    ratio = tb / d                   # t / (1 - e^-t)
    h = tb - d                       # e^-t - 1 + t >= 0
    g = s * ratio                    # d log mu / d eta = t e^-t / (1 - e^-t)
    log_d = np.where(tb > np.log(2.0), np.log1p(-s), np.log(d))
    big = [log_d, g, -g * h / d,
           -tb * (s * h / d ** 2 - tb * s * h / d ** 2 + tb * s / d - 2 * tb * s ** 2 * h / d ** 3)]
    return [np.where(small, a, b) for a, b in zip(series, big, strict=True)]


def _check_response(design: MixedDesign) -> tuple[np.ndarray, np.ndarray | None]:
    y = np.asarray(design.y, dtype=float)
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise DataError(f"`y` must be a finite 1-D array; got shape {y.shape} with "
                        f"{int(np.sum(~np.isfinite(y)))} non-finite value(s).")
    fam = design.family
    if fam == "bernoulli":
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            raise DataError(f"`y` of a bernoulli model must be 0 or 1; row {int(np.argmax(bad))} "
                            f"is {y[bad][0]!r}.")
        return y, np.ones_like(y)
    if fam == "binomial":
        if design.trials is None:
            raise DataError("`trials` is None for a binomial model; give the number of trials "
                            "of each row (or use family='bernoulli' for 0/1 data).")
        m = np.asarray(design.trials, dtype=float)
        if m.shape != y.shape or not np.all(np.isfinite(m)) or np.any(m < 1):
            raise DataError(f"`trials` must be finite, >= 1 and of shape {y.shape}; got shape "
                            f"{m.shape}, minimum {np.nanmin(m) if m.size else None!r}.")
        bad = (y < 0) | (y > m)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"`y` (successes) must lie in [0, trials]; row {i} has y = {y[i]!r} "
                            f"of {m[i]!r} trials.")
        return y, m
    bad = y < 0
    if bad.any():
        raise DataError(f"`y` of a poisson model must be counts >= 0; row {int(np.argmax(bad))} "
                        f"is {y[bad][0]!r}.")
    return y, None


def row_lik(design: MixedDesign) -> RowLik:
    """The response model of a non-Gaussian :class:`MixedDesign`, checked.

    Raises
    ------
    SpecError
        Family not one of ``LINKS`` or a link the family does not have.
    DataError
        Response outside the family's support, bad ``trials`` or ``offset``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign
    >>> d = MixedDesign(X=np.ones((2, 1)), fixed_names=("Intercept",), y=np.array([0.0, 3.0]),
    ...                 blocks=(), family="poisson", link="log")
    >>> rl = row_lik(d)
    >>> float(rl.logpmf(np.zeros(2)).sum())  # two Poisson(1) rows: -1 and -1 - log 3!
    -3.791759469228055
    """
    if design.family not in LINKS:
        raise SpecError(f"`family` = {design.family!r} is not fitted by the GLMM code; valid: "
                        f"{list(LINKS)} (the Gaussian family has its exact marginal likelihood).")
    if design.link not in LINKS[design.family]:
        raise SpecError(f"`link` = {design.link!r} is not a link of the {design.family} family; "
                        f"valid: {list(LINKS[design.family])}.")
    y, m = _check_response(design)
    if design.family == "poisson":
        const = -special.gammaln(y + 1.0)
    elif design.family == "binomial":
        const = special.gammaln(m + 1.0) - special.gammaln(y + 1.0) - special.gammaln(m - y + 1.0)
    else:
        const = np.zeros_like(y)
    if design.offset is None:
        offset = np.zeros_like(y)
    else:
        offset = np.asarray(design.offset, dtype=float)
        if offset.shape != y.shape or not np.all(np.isfinite(offset)):
            raise DataError(f"`offset` must be finite and of shape {y.shape}; got shape "
                            f"{offset.shape}.")
    return RowLik(family=design.family, link=design.link, y=y, m=m, const=const, offset=offset)
