"""Priors on the probability simplex: the mixture weights of a latent-class model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmle._validation import positive_param
from bayesmle.errors import PriorError
from bayesmle.priors.base import Prior, Support

__all__ = ["Dirichlet"]


@dataclass(frozen=True, eq=False, repr=False)
class Dirichlet(Prior):
    """Dirichlet prior on a vector of probabilities summing to one (support ``"simplex"``).

    ``Dirichlet(1)`` is the uniform distribution on the simplex (the flat prior of this
    support, and proper); ``a > 1`` pulls the weights towards equal shares, ``a < 1`` towards
    the corners. ``a`` is a scalar (the same for every component) or one value per component.

    Examples
    --------
    >>> import bayesmle as bm
    >>> bm.Dirichlet(1.0), bm.Dirichlet(1.0).is_flat, bm.Dirichlet(2.0).support
    (Dirichlet(a=1), True, 'simplex')
    >>> bm.Dirichlet([1.0, 2.0, 3.0]).param_shape()
    (3,)
    """

    a: np.ndarray
    support: ClassVar[Support] = "simplex"
    param_names: ClassVar[tuple[str, ...]] = ("a",)

    def __post_init__(self):
        a = positive_param("Dirichlet", "a", self.a)
        if a.ndim > 1:
            raise PriorError(f"Dirichlet: `a` must be a scalar or a vector (one value per "
                             f"component), got shape {a.shape}.")
        object.__setattr__(self, "a", a)

    @property
    def is_flat(self) -> bool:  # type: ignore[override]
        """True for ``Dirichlet(1)``, the uniform distribution on the simplex."""
        return bool(np.all(self.a == 1.0))

    def check_shape(self, key: str, shape: tuple[int, ...]) -> None:
        """Raise PriorError unless ``shape`` is ``(k,)`` with ``k >= 2`` matching ``a``."""
        if len(shape) != 1 or shape[0] < 2:
            raise PriorError(f"Dirichlet is a prior on a vector of k >= 2 probabilities, but "
                             f"`{key}` has shape {tuple(shape)}.")
        super().check_shape(key, shape)

    def _make_rv(self, name, params, *, shape, dims, **extra):
        a = pt.broadcast_to(params["a"], shape)
        return pm.Dirichlet(name, a=a, shape=shape, dims=dims, **extra)

    def logp(self, model: pm.Model, key: str, value: pt.TensorVariable) -> pt.TensorVariable:
        """Dirichlet log-density of ``value`` (last axis: the components)."""
        params = self._data(model, key)
        a = pt.broadcast_to(params["a"], value.shape)
        return pt.sum(pm.logp(pm.Dirichlet.dist(a=a), value))
