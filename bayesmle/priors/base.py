"""The base of every prior, and the flat priors the MLE uses.

A prior is a frozen value with its PyMC random variable, its log-density (as a Potential on a
derived parameter) and the non-smooth (L1) part of that log-density.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmle._validation import positive_param
from bayesmle.errors import PriorError

__all__ = ["Beta", "Flat", "HalfFlat", "L1Part", "Prior", "Support", "flat_prior_for"]

#: What a parameter is: a real number, a positive one, a probability, or a correlation matrix.
Support = Literal["real", "positive", "unit", "correlation", "simplex"]


def _fmt(value: np.ndarray) -> str:
    if value.ndim == 0:
        return f"{float(value):g}"
    text = np.array2string(value, precision=4, separator=", ", threshold=6,
                           max_line_width=10**6)
    return " ".join(text.split())  # one line, whatever the shape


@dataclass(frozen=True)
class L1Part:
    """The non-smooth part of a prior's log-density: ``-sum(weight * |value - center|)``.

    ``center`` and ``weight`` broadcast against the parameter's shape.

    Examples
    --------
    >>> from bayesmle import Laplace
    >>> part = Laplace(0.5).l1()
    >>> float(part.center), float(part.weight)  # -|w - 0| / 0.5
    (0.0, 2.0)
    """

    center: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True, eq=False)
class Prior:
    """Base class of every prior: frozen, validated, with a readable repr.

    Examples
    --------
    >>> from bayesmle import Normal
    >>> prior = Normal(2.0, mu=1.0)
    >>> prior, prior.support, prior.is_flat, prior.flat()  # flat(): what the MLE uses
    (Normal(sigma=2, mu=1), 'real', False, Flat())
    >>> Normal([1.0, 10.0]).param_shape()  # one scale per coefficient
    (2,)
    """

    support: ClassVar[Support] = "real"
    is_flat: ClassVar[bool] = False
    #: Names of numeric parameters, in the order PyMC's distribution takes them.
    param_names: ClassVar[tuple[str, ...]] = ()
    #: Whether the log-density has a non-smooth (L1) part; see :meth:`l1`.
    has_l1: ClassVar[bool] = False
    #: Whether the log-density is concave: if not, a MAP can be a *local* optimum only.
    log_concave: ClassVar[bool] = True
    #: Whether the density is bounded (so that a MAP can exist); False for the horseshoe.
    has_mode: ClassVar[bool] = True
    #: Whether :meth:`rv` declares auxiliary free variables and the parameter as their
    #: Deterministic (non-centred shrinkage priors): such a prior cannot be attached to a
    #: parameter computed from other coordinates, so regressions let it own the coefficients.
    owns_variables: ClassVar[bool] = False
    #: NUTS settings this prior needs by default (the largest of the model's priors wins;
    #: the user's options always do): e.g. the horseshoe's funnel needs a small step size.
    nuts_defaults: ClassVar[dict[str, float]] = {}

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
        transform=None,
        initval=None,
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
        transform, initval : optional
            Passed to PyMC when given (e.g. the ordered transform of a mixture's means).

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
            extra = {k: v for k, v in (("transform", transform), ("initval", initval))
                     if v is not None}
            return self._make_rv(name, params, shape=shape, dims=dims, **extra)

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

    def l1_remainder(self, params: dict[str, pt.TensorVariable], value: pt.TensorVariable
                     ) -> pt.TensorVariable | None:
        """Smooth part of the log-density of a prior with an L1 part, up to a constant.

        The engine replaces the prior's log-density by this plus the L1 part (:meth:`l1`);
        None (the Laplace prior) means the L1 part is all there is. ``params`` are the model's
        ``pm.Data`` of the prior's parameters, by name.
        """
        return None

    def _make_rv(self, name, params, *, shape, dims, **extra):
        return self._dist_class()(name, **params, shape=shape, dims=dims, **extra)

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
# The flat priors (what the MLE uses), one per support
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Flat(Prior):
    """Improper flat prior on the real line (the MLE's prior).

    Examples
    --------
    Under a flat prior the MAP is the MLE:

    >>> import bayesmle as bm
    >>> spec = bm.models.gaussian([0.5, 1.5, 1.0, 2.0, 0.0], mu_prior=bm.Flat())
    >>> round(float(bm.fit(spec, "map").params["mu"]), 4), float(bm.fit(spec, "mle").params["mu"])
    (1.0, 1.0)
    """

    is_flat: ClassVar[bool] = True


    def _dist_class(self):
        return pm.Flat

    def logp(self, model, key, value):
        """Log-density of a flat prior: zero."""
        return pt.constant(0.0)


@dataclass(frozen=True, eq=False, repr=False)
class HalfFlat(Prior):
    """Improper flat prior on (0, inf) (the MLE's prior for scales and rates).

    Examples
    --------
    >>> from bayesmle import HalfFlat
    >>> HalfFlat().support, HalfFlat().is_flat
    ('positive', True)
    """

    support: ClassVar[Support] = "positive"
    is_flat: ClassVar[bool] = True

    def _dist_class(self):
        return pm.HalfFlat

    def logp(self, model, key, value):
        """Log-density of a flat prior: zero."""
        return pt.constant(0.0)


@dataclass(frozen=True, eq=False, repr=False)
class Beta(Prior):
    """Beta prior on a probability; ``Beta(1, 1)`` is flat on (0, 1).

    Examples
    --------
    >>> from bayesmle import Beta
    >>> Beta(1.0, 1.0).is_flat, Beta(2.0, 2.0).is_flat
    (True, False)
    """

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

    def _make_rv(self, name, params, *, shape, dims, **extra):
        return pm.Beta(name, alpha=params["a"], beta=params["b"], shape=shape, dims=dims,
                       **extra)

    def logp(self, model, key, value):
        """Summed Beta log-density at ``value``."""
        params = self._data(model, key)
        dist = pm.Beta.dist(alpha=params["a"], beta=params["b"], shape=value.shape)
        return pt.sum(pm.logp(dist, value))


def flat_prior_for(support: Support) -> Prior:
    """The flat prior on a support: Flat, HalfFlat, Beta(1, 1) or LKJ(1).

    ``LKJ(1)`` is the uniform distribution over correlation matrices (proper: the set is
    bounded), as ``Beta(1, 1)`` is over probabilities.

    Examples
    --------
    >>> from bayesmle.priors import flat_prior_for
    >>> flat_prior_for("real"), flat_prior_for("positive"), flat_prior_for("unit")
    (Flat(), HalfFlat(), Beta(a=1, b=1))
    >>> flat_prior_for("correlation")
    LKJ(eta=1)
    """
    match support:
        case "real":
            return Flat()
        case "positive":
            return HalfFlat()
        case "unit":
            return Beta(1.0, 1.0)
        case "correlation":
            from bayesmle.priors.families import LKJ  # families builds on this module

            return LKJ(1.0)
        case "simplex":
            from bayesmle.priors.simplex import Dirichlet  # builds on this module

            return Dirichlet(1.0)
    raise PriorError(f"Unknown support {support!r}; valid supports are 'real', 'positive', "
                     f"'unit', 'correlation', 'simplex'.")
