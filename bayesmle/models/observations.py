"""Observation models: how a spec's observations depend on its *reported* parameters.

Predictions need, for the fitted data or for new data, the distribution of each observation
given the parameters as the results report them (``intercept``, ``coef``, ``sigma``...): the
plug-in predictive of an MLE, the draws of a Laplace approximation and of NUTS all come as values
of those parameters. A fitted model is not always written in them -- a regression's free
variables are internal coordinates prepared from the fitted design (see
:mod:`bayesmle.models.coordinates`), which new rows would not match -- so a spec carries an
:class:`Observations` record:

* ``declare(arrays) -> pymc.Model`` declares the likelihood with every reported parameter a free
  random variable on its natural scale (flat: priors play no part in a conditional
  distribution) and the data as ``pm.Data``;
* ``rows(spec, data) -> Rows`` validates new data (a dict of the builder's arguments, or a
  DataFrame with the fitted column names) into the arrays ``declare`` takes, with typed errors.

Models whose reported parameters are their free variables and that prepare nothing (the
single-distribution builders, and most models written by hand) need no record:
:func:`observations_of` derives one from the spec itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pymc as pm

from bayesmle._validation import as_float_array
from bayesmle.errors import DataError, SpecError

if TYPE_CHECKING:
    from bayesmle.models.spec import ModelSpec

__all__ = ["Observations", "Rows", "observations_of", "response_of"]


@dataclass(frozen=True)
class Rows:
    """Data for an observation model: its arrays, whether they hold observed values, labels."""

    arrays: dict[str, np.ndarray]
    #: True when the arrays hold real observations (the fitted data, or new data with the
    #: response): then log-likelihoods and the ``observed_data`` group are defined.
    observed: bool
    #: Row labels for tables (a DataFrame's index), None for positions 0..n-1.
    index: pd.Index | None = None

    @property
    def n(self) -> int:
        """Number of rows."""
        for value in self.arrays.values():
            if np.ndim(value) >= 1:
                return int(np.shape(value)[0])
        return 1


@dataclass(frozen=True)
class Observations:
    """How a model's observations depend on its reported parameters (see the module doc).

    Attributes
    ----------
    declare : callable
        ``declare(arrays) -> pymc.Model`` with the reported parameters as free random variables
        (natural scale) and the observed variables. A frozen value or a module-level function:
        it keys the compiled predictive functions.
    fitted : callable
        ``fitted(spec) -> dict``: the arrays ``declare`` takes for the fitted data.
    rows : callable
        ``rows(spec, data) -> Rows``: new data validated into those arrays.
    inputs : tuple of str
        The keys new data may hold (for messages), response included.
    response : tuple of str
        Keys of the observed values (optional in new data: needed only for log scores).
    """

    declare: Callable[[Mapping[str, np.ndarray]], pm.Model]
    fitted: Callable[[ModelSpec], dict]
    rows: Callable[[ModelSpec, Any], Rows]
    inputs: tuple[str, ...]
    response: tuple[str, ...]

    def arrays(self, spec: ModelSpec, data: Any = None) -> Rows:
        """The fitted data (``data=None``) or validated new data, ready for ``declare``."""
        if data is None:
            return Rows(self.fitted(spec), observed=True)
        return self.rows(spec, data)


# ---------------------------------------------------------------------------------------------
# The default: the spec's own model with flat priors
# ---------------------------------------------------------------------------------------------
def data_name(model: pm.Model, rv) -> str | None:
    """The ``pm.Data`` container holding an observed variable's values (through casts)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    value = model.rvs_to_values[rv]
    shared = [v for v in ancestors([value]) if isinstance(v, SharedVariable) and v.name]
    return shared[0].name if len(shared) == 1 else None


def response_of(model: pm.Model) -> tuple[str, ...]:
    """Names of the ``pm.Data`` containers holding the observed values of ``model``."""
    names = (data_name(model, rv) for rv in model.observed_RVs)
    return tuple(name for name in names if name)


@dataclass(frozen=True)
class _OwnModel:
    """``declare`` of a spec whose free variables are its reported parameters."""

    declare: Callable
    flat_priors: tuple

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> pm.Model:
        return self.declare(arrays, dict(self.flat_priors))


def _with_constants(spec: ModelSpec, arrays: dict) -> dict:
    """``arrays`` with the spec's non-row data and the flat priors' parameters added."""
    for key, value in spec.data.items():
        arrays.setdefault(key, value)
    for key, prior in spec.priors.items():
        for name, value in prior.flat().data_values(key).items():
            arrays.setdefault(name, value)
    return arrays


def _fitted_data(spec: ModelSpec) -> dict:
    return _with_constants(spec, dict(spec.data))


def generic_rows(spec: ModelSpec, data: Any, *, response: tuple[str, ...]) -> Rows:
    """New rows for a model without predictors' structure: row arrays by data key.

    Every key must be a row array of the fitted data; arrays keep their fitted trailing shape;
    keys not given (the response, or a row array the new data leave out) are refused unless
    they are the response, which is filled with a valid placeholder (the first fitted row) so
    that draws and means can be computed; ``observed`` tells whether it was given.
    """
    if isinstance(data, pd.DataFrame):
        index = data.index
        data = {str(c): data[c].to_numpy() for c in data.columns}
    else:
        index = None
    if not isinstance(data, Mapping):
        raise DataError(f"`data` must be a dict of arrays by name (keys from "
                        f"{sorted(spec.row_data)}) or a DataFrame, got {type(data).__name__}.")
    rows = sorted(spec.row_data)
    unknown = sorted(set(map(str, data)) - set(rows))
    if unknown:
        raise DataError(f"`data` holds unknown key(s) {unknown}; valid keys for model "
                        f"{spec.name!r}: {rows}.")
    missing = [k for k in rows if k not in data and k not in response]
    if missing:
        raise DataError(f"`data` lacks {missing}, which model {spec.name!r} needs for every "
                        f"row (keys: {rows}).")
    arrays: dict[str, np.ndarray] = {}
    n = None
    for key in rows:
        if key not in data:
            continue
        fitted = spec.data[key]
        value = as_float_array(f"data[{key!r}]", data[key], ndim=fitted.ndim)
        if value.shape[1:] != fitted.shape[1:]:
            raise DataError(f"`data[{key!r}]` has shape {value.shape}; the fitted data have "
                            f"rows of shape {fitted.shape[1:]}.")
        if n is not None and value.shape[0] != n:
            raise DataError(f"The arrays of `data` have different numbers of rows ({n} and "
                            f"{value.shape[0]} for {key!r}).")
        n = value.shape[0]
        arrays[key] = value.astype(fitted.dtype) if fitted.dtype.kind in "iu" else value
    observed = all(k in arrays for k in response)
    if n is None:
        raise DataError(f"`data` gives no row array; give at least one of {rows}.")
    for key in response:
        if key not in arrays:
            arrays[key] = np.repeat(spec.data[key][:1], n, axis=0)
    return Rows(_with_constants(spec, arrays), observed=observed, index=index)


def observations_of(spec: ModelSpec) -> Observations:
    """The spec's observation model: its own record, or one derived from its model.

    Raises
    ------
    SpecError
        The spec prepares derived arrays or reports parameters that are not its free
        variables, and declares no ``observations`` record: predictions cannot be derived.
    """
    if spec.observations is not None:
        return spec.observations
    if spec.solver == "mixed":
        raise SpecError(
            f"Predictions, predictive draws and leave-one-out are not available for mixed "
            f"models yet ({spec.name!r} has random effects: a prediction must say whether it is "
            "for the fitted groups or for new ones, and that is not implemented). Use "
            "result.random_effects() for the groups' effects and result.summary() for the "
            "fixed effects and variance components.")
    if spec.prepare is not None:
        raise SpecError(
            f"Model {spec.name!r} prepares derived arrays from its data, so predictions for "
            "new data cannot be derived from its model: give the ModelSpec an `observations=` "
            "record (bayesmle.models.observations.Observations) declaring the likelihood in "
            "the reported parameters.")
    model = spec.build()
    free = [rv.name for rv in model.free_RVs]
    other = [name for name in free if name not in spec.params]
    if other:
        raise SpecError(
            f"Model {spec.name!r} has free variables {other} that are not among its reported "
            f"parameters {list(spec.params)}; predictions are computed from the reported "
            "parameters, so give the ModelSpec an `observations=` record declaring the "
            "likelihood in them (bayesmle.models.observations.Observations).")
    response = response_of(model)
    flat = tuple(sorted((k, p.flat()) for k, p in spec.priors.items()))
    return Observations(
        declare=_OwnModel(spec.declare, flat),
        fitted=_fitted_data,
        rows=lambda s, data: generic_rows(s, data, response=response),
        inputs=tuple(sorted(spec.row_data)),
        response=response,
    )
