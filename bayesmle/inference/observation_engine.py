"""Compiled functions of an observation model: draws, means, log-densities, quantiles.

The predictive twin of :mod:`bayesmle.inference.engine`. An observation model
(:mod:`bayesmle.models.observations`) declares the likelihood with the reported parameters as
free variables; here its observed variables become functions of *arrays of parameter draws*
(one leading draw axis, vectorised with PyTensor's ``vectorize_graph``) and of the data, which
are inputs: one compilation per model structure serves every result, every draw count and new
data of any length. Random draws take the generator as an input (no shared state), so calls
from several threads with the same seed give the same draws. The functions use PyTensor's
Python/NumPy linker (``FAST_COMPILE``): they run once per call on whole arrays, and a C or
Numba compile would cost more than it saves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.distributions.moments.means import mean as rv_mean
from pymc.exceptions import UndefinedMomentException
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.type import RandomGeneratorType
from pytensor.tensor.type_other import NoneTypeT

from bayesmle.errors import DataError, SpecError
from bayesmle.inference.python_linker import PYTHON_MODE
from bayesmle.models.observations import Observations, data_name

__all__ = ["CompiledObservations", "compiled_observations"]

_CACHE: OrderedDict[tuple, CompiledObservations] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


def _unsized(rv):
    """The same random variable with its ``size`` folded into broadcast parameters.

    An observed variable takes its size from the data (``size=(n,)``), which
    ``vectorize_graph`` cannot extend by a draw axis; broadcasting the parameters to that size
    and dropping it gives the same distribution, vectorisable.
    """
    op = rv.owner.op
    rng, size, *params = rv.owner.inputs
    if isinstance(size.type, NoneTypeT):
        return rv
    dims = [size[i] for i in range(size.type.shape[0])]
    broadcast = [pt.broadcast_to(p, (*dims, *[p.shape[p.ndim - nd + j] for j in range(nd)]))
                 for p, nd in zip(params, op.ndims_params, strict=True)]
    return op.make_node(rng, None, *broadcast).outputs[1]


class _Locked:
    def __init__(self, fn):
        self._fn, self._lock = fn, threading.Lock()

    def __call__(self, *args):
        with self._lock:
            return self._fn(*args)


class CompiledObservations:
    """An observation model's observed variables as vectorised functions of parameter draws."""

    def __init__(self, observations: Observations, arrays: Mapping[str, np.ndarray],
                 params: tuple[str, ...]):
        self.model = model = observations.declare(arrays)
        self.free = [rv.name for rv in model.free_RVs]
        other = [name for name in self.free if name not in params]
        if other:
            raise SpecError(f"The observation model declares free variables {other} that are "
                            f"not reported parameters ({list(params)}).")
        self.observed = [rv.name for rv in model.observed_RVs]
        if not self.observed:
            raise SpecError("The observation model has no observed variable.")
        #: The data container of each observed variable's values.
        self.response = {rv.name: data_name(model, rv) for rv in model.observed_RVs}
        self.shared = tuple((name, var) for name, var in sorted(model.named_vars.items())
                            if isinstance(var, SharedVariable))
        self._fns: dict = {}
        self._lock = threading.RLock()

    # -- inputs ------------------------------------------------------------------------------
    def data_for(self, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """One array per data container, in order (typed error for a missing one)."""
        out = []
        for name, var in self.shared:
            if name not in arrays:
                raise SpecError(f"The observation model needs data {name!r}, which is missing.")
            value = np.asarray(arrays[name])
            whole = np.dtype(var.type.dtype).kind in "iu" or any(
                data == name and self.kind(obs) == "discrete"
                for obs, data in self.response.items())
            if (whole and value.dtype.kind == "f"
                    and not np.array_equal(value, np.round(value))):
                # the model holds whole numbers (counts, labels): never truncate 2.5 to 2
                bad = np.flatnonzero(value.ravel() != np.round(value.ravel()))
                raise DataError(f"`data[{name!r}]` must hold whole numbers (counts or "
                                f"labels), but position(s) {bad[:10].tolist()} hold "
                                f"{value.ravel()[bad[0]]!r}.")
            out.append(np.require(value, dtype=var.type.dtype, requirements="A"))
        return tuple(out)

    def params_for(self, draws: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One array per free variable (draws first), in the model's order."""
        model = self.model
        out = []
        for name in self.free:
            rv = model[name]
            value = np.asarray(draws[name], dtype=rv.dtype)
            if value.ndim != rv.ndim + 1:
                raise SpecError(f"Draws of {name!r} have shape {value.shape}; expected a draw "
                                f"axis then {rv.ndim} parameter axes.")
            out.append(value)
        return out

    def kind(self, name: str) -> str:
        """``"discrete"`` or ``"continuous"`` for an observed variable."""
        return "discrete" if self.model[name].dtype.startswith(("int", "uint")) else "continuous"

    # -- compilation -------------------------------------------------------------------------
    def _compile(self, key, make):
        with self._lock:
            fn = self._fns.get(key)
            if fn is None:
                fn = self._fns[key] = make()
        return fn

    def _vectorised(self, outputs, extra_inputs=()):
        """Compile ``(*param draws, *extra, *data, *rngs) -> outputs`` over a draw axis."""
        model = self.model
        free = [model[name] for name in self.free]
        single = [rv.type() for rv in free]
        outs = graph_replace(outputs, dict(zip(free, single, strict=True)), strict=False)
        batched = [pt.tensor(dtype=rv.dtype, shape=(None, *rv.type.shape)) for rv in free]
        outs = vectorize_graph(outs, replace=dict(zip(single, batched, strict=True)))
        data = [var.type() for _, var in self.shared]
        rngs = [v for v in ancestors(outs) if isinstance(v.type, RandomGeneratorType)
                and isinstance(v, SharedVariable)]
        rng_inputs = [r.type() for r in rngs]
        givens = [(var, inp) for (_, var), inp in zip(self.shared, data, strict=True)]
        givens += list(zip(rngs, rng_inputs, strict=True))
        fn = pytensor.function([*batched, *extra_inputs, *data, *rng_inputs], list(outs),
                               givens=givens, mode=PYTHON_MODE, on_unused_input="ignore")
        return _Locked(fn), len(rng_inputs)

    def _observed(self, name: str):
        return _unsized(self.model[name])

    def loglik_fn(self):
        """``(*draws, *data) -> [pointwise log-likelihood per observed variable]``."""
        def make():
            model = self.model
            outs = [pm.logp(self._observed(n), model.rvs_to_values[model[n]])
                    for n in self.observed]
            return self._vectorised(outs)[0]
        return self._compile("loglik", make)

    def draw_fn(self):
        """``(*draws, *data, *rngs) -> [one draw of each observed variable per draw]``."""
        def make():
            return self._vectorised([self._observed(n) for n in self.observed])
        return self._compile("draw", make)

    def mean_fn(self, name: str):
        """``(*draws, *data) -> E[y | parameters]`` (class probabilities for categorical).

        None when the mean does not exist (Cauchy) or PyMC does not know it.
        """
        def make():
            rv = self._observed(name)
            if rv.owner.op.__class__.__name__ == "CategoricalRV":
                out = rv.owner.inputs[-1]  # p: (n, K)
            else:
                try:
                    out = rv_mean(rv)
                except (UndefinedMomentException, NotImplementedError):
                    return None
                if rv.owner.op.__class__.__name__ == "StudentTRV":
                    # PyMC returns mu whatever nu; the mean exists only for nu > 1
                    nu = rv.owner.inputs[2]
                    out = pt.switch(pt.gt(nu, 1.0), out, np.nan)
            return self._vectorised([out])[0]
        return self._compile(("mean", name), make)

    def cdf_fn(self, name: str):
        """``(*draws, q, *data) -> log CDF at q`` (None when PyMC has no CDF for it)."""
        def make():
            rv = self._observed(name)
            q = pt.tensor(dtype=rv.dtype,
                          shape=(None,) * rv.ndim, name="q")
            try:
                out = pm.logcdf(rv, q)
            except NotImplementedError:
                return None
            return self._vectorised([out], extra_inputs=[q])[0]
        return self._compile(("cdf", name), make)


    def icdf_fn(self, name: str):
        """``(*draws, p, *data) -> quantile at p`` (None when PyMC has no inverse CDF)."""
        def make():
            rv = self._observed(name)
            p = pt.tensor(dtype="float64", shape=(None,) * rv.ndim, name="p")
            try:
                out = pm.icdf(rv, p)
            except NotImplementedError:
                return None
            return self._vectorised([out], extra_inputs=[p])[0]
        return self._compile(("icdf", name), make)


def compiled_observations(observations: Observations, arrays: Mapping[str, np.ndarray],
                          params: tuple[str, ...]) -> CompiledObservations:
    """The cached compiled observation model for this structure (built on first use)."""
    shapes = tuple(sorted((k, np.ndim(v), np.asarray(v).dtype.kind, np.shape(v)[1:])
                          for k, v in arrays.items()))
    key = (observations.declare, shapes, params)
    with _CACHE_LOCK:
        cm = _CACHE.get(key)
        if cm is None:
            cm = _CACHE[key] = CompiledObservations(observations, arrays, params)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
    return cm
