"""``ModelSpec``: the frozen description of one model (builder + validated data + priors).

A *builder* is a plain function ``declare(data, priors) -> pymc.Model`` that declares a PyMC
model. It must register every array of ``data`` with ``pm.Data(name, data[name])`` under its
key, and give each parameter its prior by one of the two routes of :mod:`bayesmle.priors`:
``priors[key].rv(model, key)`` (a free random variable) or ``priors[key].attach(model, key,
value)`` (a parameter computed from other free variables). Then a spec of the same *structure*
(same builder, same array ranks and column shapes, same prior types) with new values is fitted
by passing the new values to the same compiled functions -- no recompilation.

Write your own model like this::

    import pymc as pm
    from bayesmle import ModelSpec, Normal, HalfNormal, fit

    def declare(data, priors):
        with pm.Model() as model:
            y = pm.Data("y", data["y"])
            mu = priors["mu"].rv(model, "mu")
            sigma = priors["sigma"].rv(model, "sigma")
            pm.Normal("obs", mu, sigma, observed=y)
        return model

    spec = ModelSpec(
        name="my_gaussian",
        declare=declare,
        data={"y": y},
        priors={"mu": Normal(10.0), "sigma": HalfNormal(5.0)},
        params=("mu", "sigma"),
    )
    fit(spec, "mle"), fit(spec, "map"), fit(spec, "nuts")
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pymc as pm

from bayesmle.errors import SpecError
from bayesmle.priors import Prior

if TYPE_CHECKING:
    from bayesmle.models.observations import Observations

__all__ = ["CanonicalGLM", "ExistenceCheck", "ModelSpec"]

Declare = Callable[[Mapping[str, np.ndarray], Mapping[str, Prior]], pm.Model]


@dataclass(frozen=True)
class ExistenceCheck:
    """A check that the MLE exists for a spec's data: ``run(spec)`` raises MLENotFoundError.

    ``suspicious`` marks an expensive check (a linear programme over the rows) whose verdict a
    certified fit can vouch for: on large data the inference layer runs it *after* the fit, and
    only when the fit is not certified or ``suspicious(spec, params)`` finds the estimates
    looking like the failure it detects (e.g. the extreme fitted values of separation).
    """

    run: Callable[[ModelSpec], None]
    suspicious: Callable[[ModelSpec, Mapping[str, np.ndarray]], bool] | None = None

    @property
    def deferrable(self) -> bool:
        """Whether the check may run after the fit on large data."""
        return self.suspicious is not None

    def __call__(self, spec: ModelSpec) -> None:
        """Run the check (raises MLENotFoundError when the MLE does not exist)."""
        self.run(spec)


@dataclass(frozen=True, eq=False)
class CanonicalGLM:
    """A spec's log-likelihood as a GLM with canonical link, in its free coordinates ``x``.

    The contract behind the inference layer's closed-form Newton terms
    (:mod:`bayesmle.inference.glm_newton`): the log-likelihood of the observed data is exactly
    ``sum_i loglik_F(y_i; eta_i)`` with ``eta = intercept + X @ coef + offset`` and the
    family's canonical link (``bernoulli``: logit; ``binomial``: logit with ``trials``;
    ``poisson``: log), and ``(intercept, coef) = A @ x + c`` is an exact affine function of
    the model's free coordinates. ``layout`` names the value variables of ``x`` and their
    sizes, in order (the engine checks it against the compiled model). Free variables carry
    no transform, so the log-density of ``x`` is the Jacobian-free one.

    Attributes
    ----------
    family : {"bernoulli", "binomial", "poisson"}
    X : ndarray, shape (n, d)
        The dense float64 design the model multiplies (no copy).
    y : ndarray, shape (n,)
    offset, trials : ndarray or None
        The Poisson offset (log exposure); the binomial trials.
    intercept : bool
        Whether row 0 of ``A`` is the intercept.
    A : ndarray, shape (intercept + d, size of x)
    c : ndarray, shape (intercept + d,)
    layout : tuple of (str, int)

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.logistic_regression(np.eye(3)[:, :2], np.array([0, 1, 1]))
    >>> glm = spec.glm(spec.arrays(), spec.priors)
    >>> glm.family, glm.A.shape, glm.layout
    ('bernoulli', (3, 3), (('theta', 3),))
    """

    family: str
    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray | None
    trials: np.ndarray | None
    intercept: bool
    A: np.ndarray
    c: np.ndarray
    layout: tuple[tuple[str, int], ...]


def _frozen_array(value: Any) -> np.ndarray:
    """A read-only view (no copy): the spec never writes to its data."""
    arr = np.asarray(value).view()
    arr.setflags(write=False)
    return arr


class _PriorTable(Mapping):
    """The priors handed to a builder: a missing key is a SpecError naming the valid keys."""

    def __init__(self, model: str, priors: Mapping[str, Prior]):
        self._model, self._priors = model, priors

    def __getitem__(self, key: str) -> Prior:
        try:
            return self._priors[key]
        except KeyError:
            raise SpecError(
                f"The builder of model {self._model!r} asked for the prior {key!r}, which the "
                f"spec does not have. Its priors: {sorted(self._priors) or 'none'}; add "
                f"`priors={{{key!r}: bm.Flat(), ...}}` (or the prior you mean) to the ModelSpec."
            ) from None

    def __iter__(self):
        return iter(self._priors)

    def __len__(self) -> int:
        return len(self._priors)


def _row_index(rows: Any, n: int) -> np.ndarray:
    """Positions of rows from integer positions or a boolean mask (typed errors)."""
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise SpecError(f"A boolean `rows` mask must have length {n} (the number of "
                            f"observations), got shape {arr.shape}.")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise SpecError(f"`rows` must be a 1-D array of integer positions or a boolean mask, "
                        f"got {rows!r}.")
    if arr.size == 0:
        raise SpecError("`rows` selects no observation; keep at least one.")
    if arr.min() < 0 or arr.max() >= n:
        raise SpecError(f"`rows` must hold positions in 0..{n - 1}, got values from "
                        f"{arr.min()} to {arr.max()}.")
    return arr.astype(np.intp)


def _readonly(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A model ready to fit: builder, validated data, priors and what to report.

    Parameters
    ----------
    name : str
        Short name of the model (``"gaussian"``, ``"logistic_regression"``...).
    declare : callable
        ``declare(data, priors) -> pymc.Model``; see the module docstring.
    data : mapping of str to array
        Validated data arrays, keyed by their ``pm.Data`` names.
    priors : mapping of str to Prior
        One prior per parameter key.
    params : tuple of str
        Names of the model variables (free random variables or Deterministics) reported as the
        parameters, in order.
    dims : mapping of str to tuple of str, optional
        Dimension names of each reported parameter (e.g. ``{"coef": ("feature",)}``).
    coords : mapping of str to tuple, optional
        Labels of each dimension (e.g. ``{"coef": ("age", "income")}``).
    start : mapping of str to array, optional
        Starting values, on the natural scale, for free random variables of the model.
    row_data : frozenset of str, optional
        Data keys whose first axis is the observation axis (its length may change between fits of
        the same structure without recompiling).
    nobs : int, optional
        Number of observations (for BIC); default the length of the first row array.
    options : mapping, optional
        Structural options of the builder (part of the compile-cache key).
    description : str, optional
        The model in words and equations, for reports.
    family : str, optional
        Likelihood family of a built-in model (``"gaussian"``, ``"bernoulli"``, ``"laplace"``
        ...); empty for models declared by hand.
    solver : str, optional
        Name of an exact optimiser of the inference layer for this model, used for MLE and MAP
        when the priors allow it (``"least_absolute_deviations"``); empty for the general
        certified Newton optimiser.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.gaussian(np.array([1.0, 2.0, 4.0]), mu_prior=bm.Normal(10.0))
    >>> spec.params, spec.nobs, spec.is_flat
    (('mu', 'sigma'), 3, False)
    >>> spec.flat().is_flat
    True
    """

    name: str
    declare: Declare
    data: Mapping[str, np.ndarray]
    priors: Mapping[str, Prior]
    params: tuple[str, ...]
    dims: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    coords: Mapping[str, tuple] = field(default_factory=dict)
    start: Mapping[str, np.ndarray] = field(default_factory=dict)
    row_data: frozenset[str] | None = None
    nobs: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    #: ``prepare(data, priors) -> arrays``: derived arrays pushed into the model's ``pm.Data``
    #: (e.g. the QR factors of a design). Default: the data themselves.
    prepare: Callable[[Mapping[str, np.ndarray], Mapping[str, Prior]], dict] | None = None
    #: ``start_fn(arrays, priors) -> start values`` when they depend on the prepared arrays.
    start_fn: Callable[[Mapping[str, np.ndarray], Mapping[str, Prior]], dict] | None = None
    #: ``fast_loglik(model, priors) -> expression or None``: the log-likelihood of the observed
    #: variables as a cheaper PyTensor expression of the same model's variables (e.g. by
    #: sufficient statistics). It must equal their log-density up to rounding; the optimisers
    #: (MLE, MAP, Laplace, profiles) and the reported ``loglik`` use it, NUTS the model itself.
    fast_loglik: Callable[[pm.Model, Mapping[str, Prior]], Any] | None = None
    #: ``glm(arrays, priors) -> CanonicalGLM or None``: the log-likelihood as a canonical-link
    #: GLM in the model's free coordinates (for these priors, which choose the coordinates),
    #: or None where it is not exactly one. Large fits then evaluate the MLE/MAP objective by
    #: closed-form Newton terms (:mod:`bayesmle.inference.glm_newton`) instead of autodiff.
    glm: Callable[[Mapping[str, np.ndarray], Mapping[str, Prior]], CanonicalGLM | None] | None \
        = field(default=None, repr=False)
    #: Checks run before a flat-prior fit; each raises MLENotFoundError when the MLE does not
    #: exist (plain functions of the spec, or :class:`ExistenceCheck` records).
    mle_checks: tuple[ExistenceCheck, ...] = ()
    #: Checks run before NUTS with the declared priors; raise ImproperPosteriorError when improper.
    posterior_checks: tuple[Callable[[ModelSpec], None], ...] = ()
    #: Checks run before a MAP fit with the declared priors (non-flat; a flat spec's MAP is
    #: its MLE, checked by ``mle_checks``); raise MLENotFoundError when the posterior density
    #: has no unique maximum (a flat-prior direction the data leave free, a scale whose
    #: prior does not vanish at 0 on exactly fitted data).
    map_checks: tuple[Callable[[ModelSpec], None], ...] = ()
    family: str = ""
    solver: str = ""
    #: Shapes of the parameters the priors apply to (checked when priors are replaced); a
    #: parameter not listed here takes the shape of its ``start`` value, if it has one.
    prior_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: How the observations depend on the reported parameters, for predictions on new data
    #: (:class:`bayesmle.models.observations.Observations`); None: derived from the model
    #: itself when its free variables are its reported parameters.
    observations: Observations | None = None
    #: ``rebuild(data, priors) -> ModelSpec``: a spec of the same model for other data (the
    #: builder's validated arrays, keyed as in ``data``) with these priors. Set by builders
    #: whose derived arrays, starting values or checks depend on the data; used by
    #: :meth:`subset` (leave-one-out and K-fold refits).
    rebuild: Callable[[Mapping[str, np.ndarray], Mapping[str, Prior]], ModelSpec] | None = \
        field(default=None, repr=False)

    def __post_init__(self):
        if not callable(self.declare):
            raise SpecError(f"`declare` must be a function (data, priors) -> pm.Model, got "
                            f"{self.declare!r}.")
        if not isinstance(self.params, tuple | list) or not self.params:
            raise SpecError(f"`params` must be a non-empty tuple of names, got {self.params!r}.")
        for key, prior in self.priors.items():
            if not isinstance(prior, Prior):
                raise SpecError(
                    f"priors[{key!r}] must be a bayesmle prior (Flat(), Normal(sigma), ...), "
                    f"got {prior!r}."
                )
        data = {str(k): _frozen_array(v) for k, v in self.data.items()}
        object.__setattr__(self, "data", _readonly(data))
        object.__setattr__(self, "priors", _readonly(self.priors))
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "dims", _readonly({k: tuple(v) for k, v in self.dims.items()}))
        object.__setattr__(self, "coords", _readonly({k: tuple(v) for k, v in self.coords.items()}))
        object.__setattr__(
            self, "start", _readonly({k: _frozen_array(v) for k, v in self.start.items()})
        )
        object.__setattr__(self, "options", _readonly(self.options))
        object.__setattr__(self, "prior_shapes", _readonly(
            {k: tuple(int(n) for n in v) for k, v in self.prior_shapes.items()}))
        object.__setattr__(self, "mle_checks", tuple(
            c if isinstance(c, ExistenceCheck) else ExistenceCheck(c) for c in self.mle_checks))
        object.__setattr__(self, "posterior_checks", tuple(self.posterior_checks))
        object.__setattr__(self, "map_checks", tuple(self.map_checks))
        if self.row_data is None:
            object.__setattr__(
                self, "row_data", frozenset(k for k, v in data.items() if v.ndim >= 1)
            )
        if self.nobs is None:
            rows = [data[k].shape[0] for k in sorted(self.row_data) if data[k].ndim >= 1]
            object.__setattr__(self, "nobs", int(rows[0]) if rows else 1)

    # -- variants ---------------------------------------------------------------------------
    def with_priors(self, **priors: Prior) -> ModelSpec:
        """A copy with some priors replaced.

        Each new prior is checked as the builder checks its own: the key must exist, the prior
        must live on the parameter's support (the support of the prior it replaces) and its
        parameters must broadcast to the parameter's shape.

        Raises
        ------
        SpecError
            An unknown key.
        PriorError
            A prior on the wrong support (e.g. ``HalfNormal`` on a coefficient, ``Beta`` on a
            scale) or of the wrong shape.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> spec = bm.models.gaussian(np.array([1.0, 2.0, 4.0]))
        >>> spec.with_priors(mu=bm.Normal(10.0)).priors["mu"]
        Normal(sigma=10, mu=0)
        >>> spec.with_priors(sigma=bm.Beta(2, 2))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        bayesmle.errors.PriorError: `sigma` is a parameter on the positive scale but got Beta...
        """
        from bayesmle.priors import check_support

        unknown = set(priors) - set(self.priors)
        if unknown:
            raise SpecError(
                f"Unknown prior key(s) {sorted(unknown)} for model {self.name!r}. "
                f"Valid keys: {sorted(self.priors)}."
            )
        for key, prior in priors.items():
            check_support(key, prior, self.priors[key].support)
            shape = self.param_shape(key)
            if shape is not None:
                prior.check_shape(key, shape)
        return replace(self, priors={**self.priors, **priors})

    def flat(self) -> ModelSpec:
        """The same model with every prior replaced by the flat prior on its support."""
        return replace(self, priors={k: p.flat() for k, p in self.priors.items()})

    def subset(self, rows: Any) -> ModelSpec:
        """The same model (same priors) fitted to some of its observations.

        Row arrays (``row_data``) are indexed by ``rows``; other data are unchanged. Builders
        that derive arrays, starting values or checks from the data rebuild the spec through
        ``rebuild``; a spec without ``prepare`` is copied with the indexed data.

        Parameters
        ----------
        rows : array_like of int or bool
            Positions of the observations to keep (0..nobs-1), or a boolean mask of length
            ``nobs``.

        Raises
        ------
        SpecError
            Bad ``rows``, or a spec that prepares derived arrays and has no ``rebuild``.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> spec = bm.models.gaussian(np.array([1.0, 2.0, 4.0, 8.0]), mu_prior=bm.Normal(10.0))
        >>> sub = spec.subset([0, 2, 3])
        >>> sub.data["y"].tolist(), sub.nobs, sub.priors["mu"]
        ([1.0, 4.0, 8.0], 3, Normal(sigma=10, mu=0))
        """
        index = _row_index(rows, int(self.nobs or 0))
        keys = [k for k in sorted(self.row_data)
                if self.data[k].ndim >= 1 and self.data[k].shape[0] == self.nobs]
        if not keys:
            raise SpecError(f"Model {self.name!r} has no row arrays to subset.")
        data = {k: (np.ascontiguousarray(v[index]) if k in keys else v)
                for k, v in self.data.items()}
        if self.rebuild is not None:
            return self.rebuild(data, self.priors)
        if self.prepare is not None:
            raise SpecError(
                f"Model {self.name!r} prepares derived arrays from its data but has no "
                "`rebuild` hook, so a spec for a subset of its rows cannot be made: give the "
                "ModelSpec `rebuild=` (a function (data, priors) -> ModelSpec calling your "
                "builder on the new data).")
        return replace(self, data=data, nobs=None)  # recounted from the row arrays

    @property
    def is_flat(self) -> bool:
        """True when every prior is flat (so the MAP is the MLE)."""
        return all(p.is_flat for p in self.priors.values())

    # -- compilation ------------------------------------------------------------------------
    def structure_key(self) -> tuple:
        """What a compiled model depends on; specs with equal keys share compiled functions."""
        data = tuple(
            (k, v.ndim, v.dtype.kind, v.shape[1:] if k in self.row_data else v.shape)
            for k, v in sorted(self.data.items())
        )
        priors = tuple((k, p.structure()) for k, p in sorted(self.priors.items()))
        options = tuple(sorted((k, repr(v)) for k, v in self.options.items()))
        # Functions hash by identity; builder objects (frozen dataclasses) by value.
        return (self.declare, data, priors, options, self.params, self.family)

    def arrays(self) -> Mapping[str, np.ndarray]:
        """The arrays the builder declares as ``pm.Data`` (prepared once per spec, cached)."""
        cached = self.__dict__.get("_arrays")
        if cached is None:
            raw = self.data if self.prepare is None else self.prepare(self.data, self.priors)
            cached = _readonly({k: _frozen_array(v) for k, v in raw.items()})
            object.__setattr__(self, "_arrays", cached)
        return cached

    def start_values(self) -> dict[str, np.ndarray]:
        """Natural-scale starting values of free variables (builder's guess), possibly empty."""
        values = dict(self.start)
        if self.start_fn is not None:
            values.update(self.start_fn(self.arrays(), self.priors))
        return values

    def param_shape(self, name: str) -> tuple[int, ...] | None:
        """A parameter's shape: from ``prior_shapes``, else its ``start`` value; None if unknown."""
        if name in self.prior_shapes:
            return self.prior_shapes[name]
        return tuple(self.start[name].shape) if name in self.start else None

    def scalar_count(self) -> int:
        """Number of scalars in the reported parameters (those of unknown shape count 1)."""
        shapes = (self.param_shape(name) for name in self.params)
        return sum(int(np.prod(s)) if s is not None else 1 for s in shapes)

    def data_values(self) -> dict[str, np.ndarray]:
        """Every value pushed into the model's ``pm.Data`` containers: data and prior params."""
        values = dict(self.arrays())
        for key, prior in self.priors.items():
            values.update(prior.data_values(key))
        return values

    def fingerprint(self) -> str:
        """A hash of the structure and all values (used for seeds and caching of results)."""
        h = hashlib.sha256(repr(self.structure_key()[1:]).encode())
        for k, v in sorted(self.data_values().items()):
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()

    def build(self) -> pm.Model:
        """Declare the PyMC model for this spec (a new model object each call)."""
        model = self.declare(self.arrays(), _PriorTable(self.name, self.priors))
        if not isinstance(model, pm.Model):
            raise SpecError(
                f"The builder of model {self.name!r} must return a pymc.Model, "
                f"got {type(model).__name__}."
            )
        missing = [p for p in self.params if p not in model.named_vars]
        if missing:
            raise SpecError(
                f"Model {self.name!r} reports parameter(s) {missing} that its builder did not "
                f"declare. Declared variables: {sorted(model.named_vars)}."
            )
        return model

    def labels(self, name: str, shape: tuple[int, ...]) -> list[str]:
        """Flat labels of a reported parameter, e.g. ``coef[age]``, ``coef[x1,class2]``."""
        if not shape:
            return [name]
        dims = self.dims.get(name, ())
        axes = []
        for i, n in enumerate(shape):
            dim = dims[i] if i < len(dims) else None
            coord = self.coords.get(dim) if dim else None
            axes.append([str(c) for c in coord] if coord and len(coord) == n else
                        [str(j) for j in range(n)])
        grid = np.array(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).reshape(
            len(shape), -1
        ).T
        return [f"{name}[{','.join(axes[a][i] for a, i in enumerate(idx))}]" for idx in grid]

    def __repr__(self) -> str:
        priors = ", ".join(f"{k}={p!r}" for k, p in self.priors.items())
        return f"ModelSpec({self.name}, nobs={self.nobs}, params={self.params}, priors: {priors})"
