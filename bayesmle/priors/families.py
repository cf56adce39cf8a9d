"""The proper prior families of the real line, the positive half-line and correlation matrices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmle._validation import positive_param, real_param
from bayesmle.errors import PriorError
from bayesmle.priors.base import L1Part, Prior, Support

__all__ = ["LKJ", "Exponential", "Gamma", "HalfCauchy", "HalfNormal", "Laplace", "Normal",
           "check_support", "lkj_log_normaliser"]


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


# ---------------------------------------------------------------------------------------------
# Correlation matrices
# ---------------------------------------------------------------------------------------------
def lkj_log_normaliser(eta, k: int, gammaln=None):
    """``log c_k(eta)``: the LKJ density of a k x k correlation matrix is ``det(R)^(eta-1) / c``.

    Lewandowski, Kurowicka and Joe (2009, eq. 16):
    ``c_k(eta) = prod_{i=1}^{k-1} [2^(2 eta - 2 + k - i) B(a_i, a_i)]^(k - i)`` with
    ``a_i = eta + (k - i - 1) / 2``. For ``k = 2`` the correlation ``r`` then has
    ``(r + 1) / 2 ~ Beta(eta, eta)``; for ``k = 3, eta = 1`` ``c`` is the volume ``pi^2 / 2`` of
    the 3 x 3 correlation matrices. ``gammaln`` defaults to SciPy's (pass ``pt.gammaln`` for a
    PyTensor ``eta``).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.priors import lkj_log_normaliser
    >>> bool(np.isclose(lkj_log_normaliser(1.0, 3), np.log(np.pi**2 / 2)))
    True
    """
    if gammaln is None:
        from scipy.special import gammaln
    log2 = float(np.log(2.0))
    total = 0.0
    for i in range(1, int(k)):
        a = eta + (k - i - 1) / 2.0
        total = total + (k - i) * ((2.0 * eta - 2.0 + k - i) * log2
                                   + 2.0 * gammaln(a) - gammaln(2.0 * a))
    return total


@dataclass(frozen=True, eq=False, repr=False)
class LKJ(Prior):
    r"""LKJ prior on a correlation matrix: density :math:`\propto \det(R)^{\eta - 1}`.

    Lewandowski, Kurowicka and Joe (2009). ``eta = 1`` is uniform over correlation matrices
    (the flat prior of this support, and proper); ``eta > 1`` favours small correlations,
    ``eta < 1`` large ones. For a 2 x 2 matrix the correlation ``r`` has
    ``(r + 1) / 2 ~ Beta(eta, eta)``. The prior of the correlations of mixed models' random
    effects (key ``"corr"``): each block of correlated effects gets its own matrix, all with
    this ``eta``.

    In a PyMC model, :meth:`rv` declares the lower Cholesky factor ``L`` of ``R = L L'``
    (PyMC's ``LKJCorr``, whose density includes the Jacobian of ``L -> R``); :meth:`logp`
    is the density of ``R`` itself.

    Examples
    --------
    >>> import bayesmle as bm
    >>> bm.LKJ(2.0), bm.LKJ().is_flat, bm.LKJ(2.0).support
    (LKJ(eta=2), True, 'correlation')
    >>> from bayesmle.priors import check_support
    >>> check_support("corr", bm.Normal(1.0), "correlation")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.PriorError: `corr` is a parameter on the correlation matrices but got ...
    """

    eta: np.ndarray = 1.0  # type: ignore[assignment]
    support: ClassVar[Support] = "correlation"
    param_names: ClassVar[tuple[str, ...]] = ("eta",)

    def __post_init__(self):
        eta = positive_param("LKJ", "eta", self.eta)
        if eta.ndim != 0:
            raise PriorError(f"LKJ: `eta` must be one number > 0 (the shape of every "
                             f"correlation matrix under this prior), got an array of shape "
                             f"{eta.shape}.")
        object.__setattr__(self, "eta", eta)

    @property
    def is_flat(self) -> bool:  # type: ignore[override]
        """True for ``LKJ(1)``, the uniform distribution over correlation matrices."""
        return bool(self.eta == 1.0)

    def _data(self, model: pm.Model, key: str) -> dict[str, pt.TensorVariable]:
        # One ``eta`` for every correlation matrix under this key (a model may hold several).
        name = f"{key}__prior_eta"
        if name in model.named_vars:
            return {"eta": model[name]}
        return super()._data(model, key)

    def rv(self, model: pm.Model, name: str, *, shape: tuple[int, ...] = (),
           dims: tuple[str, ...] | None = None, key: str | None = None) -> pt.TensorVariable:
        """Declare the Cholesky factor ``L`` (shape ``(k, k)``, ``k >= 2``) of ``R = L L'``.

        ``key`` (default ``name``) names the ``pm.Data`` of ``eta``, shared by every matrix
        declared under the same key.
        """
        shape = tuple(int(n) for n in shape)
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
            raise PriorError(f"LKJ is a prior on a k x k correlation matrix (k >= 2), but "
                             f"`{key or name}` asked for shape {shape}.")
        params = self._data(model, key or name)
        with model:
            return pm.LKJCorr(name, n=shape[0], eta=params["eta"])

    def logp(self, model: pm.Model, key: str, value: pt.TensorVariable) -> pt.TensorVariable:
        """Summed LKJ log-density of correlation matrices ``value`` (shape ``(..., k, k)``)."""
        eta = self._data(model, key)["eta"]
        k = int(value.type.shape[-1]) if value.type.shape[-1] is not None else None
        if k is None:
            raise PriorError(f"LKJ.logp needs the matrix size of `{key}` to be known.")
        logdet = pt.log(pt.linalg.det(value)) if value.ndim == 2 else pt.log(
            pt.linalg.det(value.reshape((-1, k, k))))
        const = lkj_log_normaliser(eta, k, gammaln=pt.gammaln)
        return pt.sum((eta - 1.0) * logdet - const)


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
            "correlation": "LKJ",
            "simplex": "Dirichlet",
        }[support]
        where = {"real": "real line", "correlation": "correlation matrices"}.get(
            support, f"{support} scale")
        raise PriorError(
            f"`{key}` is a parameter on the {where}"
            f" but got {prior!r}, a prior on the {prior.support} support. "
            f"Valid priors for `{key}`: {valid}."
        )
    return prior
