"""The proper prior families of the real line and the positive half-line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pymc as pm

from bayesmle._validation import positive_param, real_param
from bayesmle.errors import PriorError
from bayesmle.priors.base import L1Part, Prior, Support

__all__ = ["Exponential", "Gamma", "HalfCauchy", "HalfNormal", "Laplace", "Normal",
           "check_support"]


# ---------------------------------------------------------------------------------------------
# Real line
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Normal(Prior):
    """Gaussian prior ``Normal(mu, sigma)``; on regression slopes it is ridge regression.

    Examples
    --------
    The mean of the data is 1.0; a ``Normal(1.0)`` prior (centred at 0) pulls the MAP towards 0.

    >>> import bayesmle as bm
    >>> spec = bm.models.gaussian([0.5, 1.5, 1.0, 2.0, 0.0], mu_prior=bm.Normal(1.0))
    >>> round(float(bm.fit(spec, "map").params["mu"]), 4)
    0.9077
    """

    sigma: np.ndarray
    mu: np.ndarray = 0.0  # type: ignore[assignment]
    param_names: ClassVar[tuple[str, ...]] = ("mu", "sigma")

    def __post_init__(self):
        object.__setattr__(self, "sigma", positive_param("Normal", "sigma", self.sigma))
        object.__setattr__(self, "mu", real_param("Normal", "mu", self.mu))


    def _dist_class(self):
        return pm.Normal


@dataclass(frozen=True, eq=False, repr=False)
class Laplace(Prior):
    """Laplace prior ``Laplace(mu, b)``; on regression slopes its MAP is the lasso.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> y = X @ [2.0, 0.0, 0.0] + rng.normal(size=40)
    >>> lasso = bm.fit(bm.models.linear_regression(X, y, prior=bm.Laplace(0.1)), "map")
    >>> (lasso.params["coef"] == 0.0).tolist()  # exact zeros
    [False, True, True]
    """

    b: np.ndarray
    mu: np.ndarray = 0.0  # type: ignore[assignment]
    param_names: ClassVar[tuple[str, ...]] = ("mu", "b")
    has_l1: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "b", positive_param("Laplace", "b", self.b))
        object.__setattr__(self, "mu", real_param("Laplace", "mu", self.mu))


    def _dist_class(self):
        return pm.Laplace

    def l1(self) -> L1Part:
        """``-|w - mu| / b``: centre ``mu``, weight ``1 / b``."""
        return L1Part(center=self.mu, weight=1.0 / self.b)


# ---------------------------------------------------------------------------------------------
# Positive half-line
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class HalfNormal(Prior):
    """Half-normal prior on a scale, ``HalfNormal(sigma)``.

    Examples
    --------
    >>> from bayesmle import HalfNormal
    >>> HalfNormal(5.0)
    HalfNormal(sigma=5)
    >>> HalfNormal(-1.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.PriorError: HalfNormal: `sigma` must be > 0, got -1.0. ...
    """

    sigma: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("sigma",)

    def __post_init__(self):
        object.__setattr__(self, "sigma", positive_param("HalfNormal", "sigma", self.sigma))

    def _dist_class(self):
        return pm.HalfNormal


@dataclass(frozen=True, eq=False, repr=False)
class HalfCauchy(Prior):
    """Half-Cauchy prior on a scale, ``HalfCauchy(beta)``.

    Examples
    --------
    >>> from bayesmle import HalfCauchy
    >>> HalfCauchy(2.0).params()
    {'beta': array(2.)}
    """

    beta: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("beta",)

    def __post_init__(self):
        object.__setattr__(self, "beta", positive_param("HalfCauchy", "beta", self.beta))

    def _dist_class(self):
        return pm.HalfCauchy


@dataclass(frozen=True, eq=False, repr=False)
class Exponential(Prior):
    """Exponential prior with rate ``lam`` on a positive parameter.

    Examples
    --------
    >>> from bayesmle import Exponential
    >>> Exponential(1 / 30), Exponential(0.1).support
    (Exponential(lam=0.0333333), 'positive')
    """

    lam: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("lam",)

    def __post_init__(self):
        object.__setattr__(self, "lam", positive_param("Exponential", "lam", self.lam))

    def _dist_class(self):
        return pm.Exponential


@dataclass(frozen=True, eq=False, repr=False)
class Gamma(Prior):
    """Gamma prior with shape ``alpha`` and rate ``beta`` on a positive parameter.

    Examples
    --------
    A common prior on the degrees of freedom of a Student-t model:

    >>> import bayesmle as bm
    >>> bm.models.student_t([0.1, -0.3, 2.5, 0.4], nu_prior=bm.Gamma(2.0, 0.1)).priors["nu"]
    Gamma(alpha=2, beta=0.1)
    """

    alpha: np.ndarray
    beta: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    def __post_init__(self):
        object.__setattr__(self, "alpha", positive_param("Gamma", "alpha", self.alpha))
        object.__setattr__(self, "beta", positive_param("Gamma", "beta", self.beta))

    def _dist_class(self):
        return pm.Gamma


def check_support(key: str, prior: object, support: Support, default: Prior | None = None
                  ) -> Prior:
    """Check that ``prior`` is a Prior on ``support``; return it (``default`` when None).

    Examples
    --------
    >>> from bayesmle import HalfNormal, Normal
    >>> from bayesmle.priors import check_support
    >>> check_support("sigma_prior", HalfNormal(1.0), "positive")
    HalfNormal(sigma=1)
    >>> check_support("sigma_prior", Normal(1.0), "positive")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.PriorError: `sigma_prior` is a parameter on the positive scale but got ...
    """
    if prior is None and default is not None:
        return default
    if not isinstance(prior, Prior):
        raise PriorError(
            f"`{key}` must be a bayesmle prior (e.g. Flat(), Normal(1.0), HalfNormal(1.0)), "
            f"got {prior!r} of type {type(prior).__name__}."
        )
    if prior.support != support:
        valid = {
            "real": "Flat, Normal, Laplace",
            "positive": "HalfFlat, HalfNormal, HalfCauchy, Exponential, Gamma",
            "unit": "Beta",
        }[support]
        raise PriorError(
            f"`{key}` is a parameter on the {support} {'line' if support == 'real' else 'scale'}"
            f" but got {prior!r}, a prior on the {prior.support} support. "
            f"Valid priors for `{key}`: {valid}."
        )
    return prior
