"""Priors: small frozen objects that know how to declare their PyMC random variable.

Nothing else in bayesmle knows PyMC's distribution classes for priors. A prior's numeric
parameters are registered as ``pm.Data`` (named ``"<key>__prior_<param>"``) so that changing a
prior's values -- a sweep over the Laplace scale, say -- reuses the compiled model.

Three supports are covered:

* location / coefficient parameters (real line): :class:`Flat`, :class:`Normal`, :class:`Laplace`;
* scale and rate parameters (positive): :class:`HalfFlat`, :class:`HalfNormal`,
  :class:`HalfCauchy`, :class:`Exponential`, :class:`Gamma`;
* probabilities (unit interval): :class:`Beta` (``Beta(1, 1)`` is the flat prior).

Parameters may be scalars or arrays (one value per coefficient); they broadcast against the
shape of the parameter they are attached to.

One route into a model
----------------------
A prior reaches a model in one of two equivalent ways, and the fitting engine treats both the
same: ``prior.rv(model, key)`` declares the parameter as a free random variable with this
distribution (what a hand-written PyMC model does), and ``prior.attach(model, key, value)``
puts the prior on a parameter that the model computes from its internal coordinates (a
regression's coefficients in a QR parametrisation, say): it registers ``value`` as the
Deterministic ``key`` and the prior's log-density as the Potential ``"<key>__prior"``. Either
way the model's log-density contains the prior exactly once, the parameter is the model
variable named ``key`` on its natural scale, and the part of the log-density that is not
smooth -- the ``|w - mu| / b`` of a Laplace prior -- is described by :meth:`Prior.l1`, which
the optimiser handles exactly (see :mod:`bayesmle.inference.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmle._validation import positive_param, real_param
from bayesmle.errors import PriorError

__all__ = [
    "L1Part",
    "Beta",
    "Exponential",
    "Flat",
    "Gamma",
    "HalfCauchy",
    "HalfFlat",
    "HalfNormal",
    "Laplace",
    "Normal",
    "Prior",
    "Support",
    "flat_prior_for",
]

Support = Literal["real", "positive", "unit"]


def _fmt(value: np.ndarray) -> str:
    if value.ndim == 0:
        return f"{float(value):g}"
    return np.array2string(value, precision=4, separator=", ", threshold=6)


@dataclass(frozen=True)
class L1Part:
    """The non-smooth part of a prior's log-density: ``-sum(weight * |value - center|)``.

    ``center`` and ``weight`` broadcast against the parameter's shape.
    """

    center: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True, eq=False)
class Prior:
    """Base class of every prior: frozen, validated, with a readable repr."""

    support: ClassVar[Support] = "real"
    is_flat: ClassVar[bool] = False
    #: Names of numeric parameters, in the order PyMC's distribution takes them.
    param_names: ClassVar[tuple[str, ...]] = ()
    #: Whether the log-density has a non-smooth (L1) part; see :meth:`l1`.
    has_l1: ClassVar[bool] = False

    # -- values -----------------------------------------------------------------------------
    def params(self) -> dict[str, np.ndarray]:
        """The prior's numeric parameters as read-only float arrays."""
        return {name: getattr(self, name) for name in self.param_names}

    def param_shape(self) -> tuple[int, ...]:
        """Broadcast shape of the parameters (``()`` for scalars)."""
        return np.broadcast_shapes(*(v.shape for v in self.params().values()), ())

    def structure(self) -> tuple:
        """What the compiled graph depends on: the class and the parameters' shapes."""
        return (type(self).__name__, tuple((k, v.shape) for k, v in self.params().items()))

    def data_values(self, key: str) -> dict[str, np.ndarray]:
        """Values of the ``pm.Data`` containers this prior registers under ``key``."""
        return {f"{key}__prior_{k}": v for k, v in self.params().items()}

    def check_shape(self, key: str, shape: tuple[int, ...]) -> None:
        """Raise PriorError unless the parameters broadcast to ``shape``."""
        pshape = self.param_shape()
        try:
            out = np.broadcast_shapes(pshape, shape)
        except ValueError:
            out = None
        if out != tuple(shape):
            raise PriorError(
                f"{self!r} was given for `{key}`, which has shape {tuple(shape)}, but its "
                f"parameters have shape {pshape}. Give scalars, or arrays that broadcast to "
                f"{tuple(shape)} (one value per element)."
            )

    # -- PyMC -------------------------------------------------------------------------------
    def _data(self, model: pm.Model, key: str) -> dict[str, pt.TensorVariable]:
        with model:
            return {
                k: pm.Data(f"{key}__prior_{k}", v) for k, v in self.params().items()
            }

    def _dist(self, params: dict[str, pt.TensorVariable]):  # pragma: no cover - abstract
        raise NotImplementedError

    def rv(
        self,
        model: pm.Model,
        name: str,
        *,
        shape: tuple[int, ...] = (),
        dims: tuple[str, ...] | None = None,
        key: str | None = None,
    ) -> pt.TensorVariable:
        """Declare the free random variable ``name`` with this prior in ``model``.

        Parameters
        ----------
        model : pymc.Model
            The model to declare the variable in.
        name : str
            Name of the random variable (the prior's key, so that the engine finds it).
        shape : tuple of int
            Shape of the variable.
        dims : tuple of str, optional
            Dimension names for ``model.coords``.
        key : str, optional
            Prefix of the ``pm.Data`` names of the prior's parameters (default ``name``).

        Examples
        --------
        >>> import pymc as pm
        >>> from bayesmle import Normal
        >>> with pm.Model() as model:
        ...     pass
        >>> mu = Normal(10.0).rv(model, "mu")
        >>> sorted(model.named_vars)
        ['mu', 'mu__prior_mu', 'mu__prior_sigma']
        """
        self.check_shape(key or name, shape)
        params = self._data(model, key or name)
        with model:
            return self._make_rv(name, params, shape=shape, dims=dims)

    def attach(self, model: pm.Model, key: str, value: pt.TensorVariable) -> pt.TensorVariable:
        """Put this prior on a parameter the model computes from its coordinates.

        Registers ``value`` as the Deterministic ``key`` (unless the model already has a
        variable of that name) and, unless the prior is flat, its log-density as the Potential
        ``"<key>__prior"``. Returns the model variable ``key``.

        Examples
        --------
        >>> import pymc as pm
        >>> from bayesmle import Normal
        >>> with pm.Model() as model:
        ...     theta = pm.Flat("theta", shape=2)
        >>> coef = Normal(1.0).attach(model, "coef", 2.0 * theta)
        >>> sorted(v.name for v in model.potentials)
        ['coef__prior']
        """
        with model:
            var = model[key] if key in model.named_vars else pm.Deterministic(key, value)
        if not self.is_flat:
            with model:
                pm.Potential(f"{key}__prior", self.logp(model, key, var))
        return var

    def l1(self) -> L1Part | None:
        """The non-smooth part of the log-density (None for smooth priors)."""
        return None

    def _make_rv(self, name, params, *, shape, dims):
        return self._dist_class()(name, **params, shape=shape, dims=dims)

    def _dist_class(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def logp(self, model: pm.Model, key: str, value: pt.TensorVariable) -> pt.TensorVariable:
        """Summed log-density of this prior at ``value`` (for priors on derived quantities)."""
        params = self._data(model, key)
        dist = self._dist_class().dist(**params, shape=value.shape)
        return pt.sum(pm.logp(dist, value))

    def flat(self) -> Prior:
        """The flat prior on the same support (what the MLE uses)."""
        return flat_prior_for(self.support)

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={_fmt(getattr(self, f.name))}" for f in fields(self))
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + tuple(
            getattr(self, f.name).tobytes() for f in fields(self)
        ))


# ---------------------------------------------------------------------------------------------
# Real line
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Flat(Prior):
    """Improper flat prior on the real line (the MLE's prior)."""

    is_flat: ClassVar[bool] = True


    def _dist_class(self):
        return pm.Flat

    def logp(self, model, key, value):
        """Log-density of a flat prior: zero."""
        return pt.constant(0.0)


@dataclass(frozen=True, eq=False, repr=False)
class Normal(Prior):
    """Gaussian prior ``Normal(mu, sigma)``; on regression slopes it is ridge regression."""

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
    """Laplace prior ``Laplace(mu, b)``; on regression slopes its MAP is the lasso."""

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
class HalfFlat(Prior):
    """Improper flat prior on (0, inf) (the MLE's prior for scales and rates)."""

    support: ClassVar[Support] = "positive"
    is_flat: ClassVar[bool] = True

    def _dist_class(self):
        return pm.HalfFlat

    def logp(self, model, key, value):
        """Log-density of a flat prior: zero."""
        return pt.constant(0.0)


@dataclass(frozen=True, eq=False, repr=False)
class HalfNormal(Prior):
    """Half-normal prior on a scale, ``HalfNormal(sigma)``."""

    sigma: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("sigma",)

    def __post_init__(self):
        object.__setattr__(self, "sigma", positive_param("HalfNormal", "sigma", self.sigma))

    def _dist_class(self):
        return pm.HalfNormal


@dataclass(frozen=True, eq=False, repr=False)
class HalfCauchy(Prior):
    """Half-Cauchy prior on a scale, ``HalfCauchy(beta)``."""

    beta: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("beta",)

    def __post_init__(self):
        object.__setattr__(self, "beta", positive_param("HalfCauchy", "beta", self.beta))

    def _dist_class(self):
        return pm.HalfCauchy


@dataclass(frozen=True, eq=False, repr=False)
class Exponential(Prior):
    """Exponential prior with rate ``lam`` on a positive parameter."""

    lam: np.ndarray
    support: ClassVar[Support] = "positive"
    param_names: ClassVar[tuple[str, ...]] = ("lam",)

    def __post_init__(self):
        object.__setattr__(self, "lam", positive_param("Exponential", "lam", self.lam))

    def _dist_class(self):
        return pm.Exponential


@dataclass(frozen=True, eq=False, repr=False)
class Gamma(Prior):
    """Gamma prior with shape ``alpha`` and rate ``beta`` on a positive parameter."""

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
# Unit interval
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Beta(Prior):
    """Beta prior on a probability; ``Beta(1, 1)`` is flat on (0, 1)."""

    a: np.ndarray
    b: np.ndarray
    support: ClassVar[Support] = "unit"
    param_names: ClassVar[tuple[str, ...]] = ("a", "b")

    def __post_init__(self):
        object.__setattr__(self, "a", positive_param("Beta", "a", self.a))
        object.__setattr__(self, "b", positive_param("Beta", "b", self.b))

    @property
    def is_flat(self) -> bool:  # type: ignore[override]
        """True for ``Beta(1, 1)``, the uniform distribution."""
        return bool(np.all(self.a == 1.0) and np.all(self.b == 1.0))

    def _make_rv(self, name, params, *, shape, dims):
        return pm.Beta(name, alpha=params["a"], beta=params["b"], shape=shape, dims=dims)

    def logp(self, model, key, value):
        """Summed Beta log-density at ``value``."""
        params = self._data(model, key)
        dist = pm.Beta.dist(alpha=params["a"], beta=params["b"], shape=value.shape)
        return pt.sum(pm.logp(dist, value))


def flat_prior_for(support: Support) -> Prior:
    """The flat prior on a support: Flat, HalfFlat or Beta(1, 1)."""
    match support:
        case "real":
            return Flat()
        case "positive":
            return HalfFlat()
        case "unit":
            return Beta(1.0, 1.0)
    raise PriorError(f"Unknown support {support!r}; valid supports are 'real', 'positive', 'unit'.")


def check_support(key: str, prior: object, support: Support) -> Prior:
    """Check that ``prior`` is a Prior on ``support``; return it."""
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
