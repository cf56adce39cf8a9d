"""The engine: one compiled model per structure, bound to a spec's data for each use.

This is the only module that touches compiled PyTensor functions. Its contract with the rest
of the library:

* ``bind(spec) -> BoundModel`` (:mod:`bayesmle.inference.bound`) -- the one act that connects a
  spec's values to the compiled functions of its *structure* (builder, array ranks and column
  shapes, prior types; :meth:`ModelSpec.structure_key`). Functions are compiled once per
  structure and process, on first use; the data are *inputs* of every function, never state of
  the model: binding copies nothing and changes nothing shared, so fits of one structure run
  safely from many threads (each compiled function is called under its own lock; PyTensor
  functions hold their input and output storage).
* The model's free variables, raveled in ``model.value_vars`` order and unconstrained (log
  scale, log-odds...), form the vector ``x`` of every function here.
* Priors: the model's log-density contains each prior once, by either route of
  :mod:`bayesmle.priors`. A prior with an L1 part (Laplace, ElasticNet) is taken *out* of the
  smooth objective and handed to the optimiser as :class:`~bayesmle.inference.optimize.L1Terms`,
  its smooth remainder (:meth:`~bayesmle.priors.Prior.l1_remainder`: the Gaussian part of an
  elastic net, nothing for a Laplace prior) staying in the smooth objective; the
  parameter it sits on must be one coordinate of ``x`` times a constant (checked, typed error
  otherwise), which the regression builders guarantee by choosing their coordinates from all
  priors. That is the only place where priors are told apart.
* :class:`~bayesmle.inference.bound.PointEval` is the named result of evaluating the model at
  ``x``; :class:`~bayesmle.inference.bound.BoundModel` is what fits work with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.initial_point import make_initial_point_expression
from pymc.pytensorf import compile as pm_compile
from pymc.pytensorf import join_nonshared_inputs
from pytensor.compile.sharedvalue import SharedVariable

from bayesmle.errors import SpecError
from bayesmle.inference.python_linker import (
    NUMBA_MODE,
    PYTHON_MODE,
    Linker,
    linker_for,
    rewrite_pregrad,
)
from bayesmle.models.spec import ModelSpec

__all__ = ["CompiledModel", "clear_cache", "compiled_model"]

log = logging.getLogger("bayesmle")

_CACHE: OrderedDict[tuple, CompiledModel] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


class _Locked:
    """A compiled function called under its own lock (its storage is not reentrant).

    Floating-point exceptions are ignored inside the call, as in compiled code: a graph
    evaluated by the Python/NumPy linker would otherwise warn where a Numba kernel is silent
    (an infinite log-density at a rejected trial point is an ordinary value for the
    optimisers). ``np.errstate`` is context-local: other threads are not affected.
    """

    def __init__(self, fn):
        self._fn = fn
        self._lock = threading.Lock()

    def __call__(self, *args):
        with self._lock, np.errstate(all="ignore"):
            return self._fn(*args)


class CompiledModel:
    """The PyMC model of one structure and its compiled functions (data as explicit inputs).

    Never used directly by fitting code: bind it to a spec first
    (:func:`bayesmle.inference.bound.bind`).
    """

    def __init__(self, spec: ModelSpec, linker: Linker = "numba"):
        t0 = time.perf_counter()
        #: "python": evaluated by PyTensor's Python/NumPy linker (nothing compiled);
        #: "numba": compiled with Numba (see :mod:`bayesmle.inference.python_linker`)
        self.linker = linker
        if linker == "numba":
            from bayesmle.inference import _trigamma_numba  # noqa: F401 - a Numba lowering
        self.model = spec.build()
        model = self.model
        discrete = [v.name for v in model.value_vars if v not in model.continuous_value_vars]
        if discrete:
            raise SpecError(
                f"Model {spec.name!r} has discrete free variables {discrete}; bayesmle's "
                "optimisers and NUTS need continuous parameters (marginalise them out)."
            )
        if not model.value_vars:
            raise SpecError(f"Model {spec.name!r} has no free parameters.")
        self.name = spec.name
        self.params = spec.params
        self.value_vars = list(model.value_vars)
        self.shared: tuple[tuple[str, SharedVariable], ...] = tuple(
            (name, var) for name, var in sorted(model.named_vars.items())
            if isinstance(var, SharedVariable))
        self._fns: dict = {}
        self._lock = threading.RLock()
        self.compile_seconds = 0.0
        # The layout of x (names, shapes, dtypes) from an initial point of the declared model
        # (evaluated without JIT: pymc's model.initial_point() would compile one more kernel).
        template = self.initial_point_fn()(*(var.get_value(borrow=True)
                                             for _, var in self.shared))
        self._template_point = {v.name: np.asarray(t) for v, t in
                                zip(self.value_vars, template, strict=True)}
        self.point_map_info = DictToArrayBijection.map(self._template_point).point_map_info
        self.size = int(sum(np.prod(shape, dtype=int) for _, shape, _, *_ in
                            self.point_map_info))
        # Reusable for other values only if every value has a container and every container
        # gets a value (a container without one would keep this spec's value baked in).
        self.reusable = set(spec.data_values()) == {name for name, _ in self.shared}
        self._fast_loglik = spec.fast_loglik
        self._priors = dict(spec.priors)  # prior *types* are part of the structure
        self.l1_keys = tuple(k for k, p in spec.priors.items() if p.has_l1)
        self._l1_carriers = tuple(self._carrier(k) for k in self.l1_keys)
        self.build_seconds = time.perf_counter() - t0

    # -- binding -----------------------------------------------------------------------------
    def data_for(self, spec: ModelSpec) -> tuple[np.ndarray, ...]:
        """``spec``'s data and prior values, one array per shared container, in order."""
        values = spec.data_values()
        data = []
        for name, var in self.shared:
            current = var.get_value(borrow=True)
            value = values.get(name, current)
            if np.ndim(current) != np.ndim(value):
                raise SpecError(
                    f"Data `{name}` has {np.ndim(value)} dimension(s) but the compiled model "
                    f"expects {np.ndim(current)}."
                )
            # aligned: arrays unpickled by Dask may not be, and compiled kernels need it
            data.append(np.require(value, dtype=current.dtype, requirements="A"))
        return tuple(data)

    # -- layout ------------------------------------------------------------------------------
    def slices(self) -> dict[str, slice]:
        """Position of each value variable in ``x``."""
        out, i = {}, 0
        for name, shape, *_ in self.point_map_info:
            size = int(np.prod(shape, dtype=int))
            out[name] = slice(i, i + size)
            i += size
        return out

    def x_to_point(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The value-variable dict of ``x``."""
        return DictToArrayBijection.rmap(RaveledVars(np.asarray(x), self.point_map_info))

    # -- compilation helpers -----------------------------------------------------------------
    def _compile(self, key, make):
        with self._lock:
            fn = self._fns.get(key)
            if fn is None:
                t0 = time.perf_counter()
                fn = make()
                dt = time.perf_counter() - t0
                self.compile_seconds += dt
                log.debug("compiled %s for %s in %.2fs", key, self.name, dt)
                self._fns[key] = fn
        return fn

    def _function(self, inputs: Sequence, outputs: Sequence, **kwargs) -> _Locked:
        """Compile ``inputs + data -> outputs``, the shared containers replaced by inputs."""
        data = [var.type() for _, var in self.shared]
        givens = [(var, inp) for (_, var), inp in zip(self.shared, data, strict=True)]
        if "mode" not in kwargs:
            kwargs["mode"] = PYTHON_MODE if self.linker == "python" else NUMBA_MODE
        fn = pm_compile([*inputs, *data], list(outputs), givens=givens,
                        on_unused_input="ignore", **kwargs)
        return _Locked(fn)

    def _join(self, outputs):
        new_outputs, x = join_nonshared_inputs(
            point=self._template_point, outputs=outputs, inputs=self.value_vars)
        return list(new_outputs), x

    # -- the prior terms ---------------------------------------------------------------------
    def _carrier(self, key: str):
        """The model variable whose log-density holds prior ``key`` (L1 priors only)."""
        model = self.model
        potential = model.named_vars.get(f"{key}__prior")
        if potential is not None and potential in model.potentials:
            return potential
        var = model.named_vars.get(key)
        if var is not None and var in model.free_RVs:
            return var
        raise SpecError(
            f"Model {self.name!r} has a Laplace prior under the key {key!r} but no model "
            f"variable named {key!r} carrying it. Declare it with priors[{key!r}].rv(model, "
            f"{key!r}) or priors[{key!r}].attach(model, {key!r}, value).")

    def _l1_remainders(self):
        """The smooth remainders of the L1 priors' log-densities (a Laplace prior has none)."""
        model = self.model
        total = pt.constant(0.0)
        for key in self.l1_keys:
            prior = self._priors[key]
            params = {name: model[f"{key}__prior_{name}"] for name in prior.param_names}
            term = prior.l1_remainder(params, model[key])
            if term is not None:
                total = total + model.replace_rvs_by_values([term])[0]
        return total

    def _loglik(self):
        """The observed variables' log-density (the spec's ``fast_loglik`` when it has one)."""
        model = self.model
        fast = (self._fast_loglik(model, self._priors) if self._fast_loglik is not None
                else None)
        if fast is None:
            return model.logp(vars=list(model.observed_RVs), jacobian=False)
        return model.replace_rvs_by_values([fast])[0]

    def _logp(self, terms, *, jacobian: bool, loglik=None):
        """Log-density of ``terms`` (free RVs, potentials) plus the log-likelihood.

        ``loglik``: the log-likelihood graph when the caller has already built it (building
        it is a good part of the cost of a first fit).
        """
        model = self.model
        logp = model.logp(vars=terms, jacobian=jacobian) if terms else pt.constant(0.0)
        return logp + (self._loglik() if loglik is None else loglik)

    # -- compiled functions ------------------------------------------------------------------
    def objective_fn(self, jacobian: bool, hessian: bool) -> _Locked:
        """``(x, *data) -> (f, grad[, hess])`` of minus the smooth log-density."""

        def make():
            model = self.model
            terms = [v for v in [*model.free_RVs, *model.potentials]
                     if v not in self._l1_carriers]
            logp = self._logp(terms, jacobian=jacobian) + self._l1_remainders()
            [loss], x = self._join([-logp])
            loss = rewrite_pregrad(loss)
            grad = pytensor.gradient.grad(loss, x)
            outs = [loss, grad]
            if hessian:
                outs.append(pytensor.gradient.jacobian(grad, [x], vectorize=True)[0])
            return self._function([x], outs, trust_input=True)

        return self._compile(("objective", jacobian, hessian), make)

    def prior_fn(self) -> _Locked:
        """``(x, *data) -> (f, grad, hess, log_prior)``: the prior terms alone.

        ``f`` and its derivatives are minus the smooth log prior, exactly the terms of
        :meth:`objective_fn` ``(jacobian=False)`` other than the log-likelihood (L1 parts left
        out, their smooth remainders in); ``log_prior`` is the whole Jacobian-free log prior
        density (L1 parts included), the prior part of the point function's ``logp``. On the
        Python linker whatever the data size: no data-sized work is in these terms when the
        spec's likelihood is evaluated elsewhere (:mod:`bayesmle.inference.glm_newton`).
        """

        def make():
            model = self.model
            everything = [*model.free_RVs, *model.potentials]
            smooth = model.logp(vars=[v for v in everything if v not in self._l1_carriers],
                                jacobian=False) + self._l1_remainders()
            full = model.logp(vars=everything, jacobian=False)
            [loss, full], x = self._join([-smooth, full])
            loss = rewrite_pregrad(loss)
            # a flat prior, or a Gaussian one, leaves the derivatives constant in x
            grad = pytensor.gradient.grad(loss, x, disconnected_inputs="ignore")
            hess = pytensor.gradient.jacobian(grad, [x], vectorize=True,
                                              disconnected_inputs="ignore")[0]
            return self._function([x], [loss, grad, hess, full], trust_input=True,
                                  mode=PYTHON_MODE)

        return self._compile(("prior",), make)

    def point_fn(self) -> _Locked:
        """``(x, *data) -> (loglik, logp, logp_jacobian, *reported, jacobian)``."""

        def make():
            model = self.model
            priors = [*model.free_RVs, *model.potentials]
            loglik = self._loglik()
            logp = self._logp(priors, jacobian=False, loglik=loglik)
            logp_jac = self._logp(priors, jacobian=True, loglik=loglik)
            reported = model.replace_rvs_by_values([model[p] for p in self.params])
            outs, x = self._join([loglik, logp, logp_jac, *reported])
            flat = pt.concatenate([pt.atleast_1d(r).ravel() for r in outs[3:]])
            jac = pytensor.gradient.jacobian(flat, [x], vectorize=True)[0]
            return self._function([x], [*outs, jac], trust_input=True)

        return self._compile(("point",), make)

    def draws_fn(self) -> _Locked:
        """``(xs, *data) -> (logp_jacobian, *reported)`` for a batch of points (rows of xs).

        The point graph vectorised over a leading draw axis (``vectorize_graph``): one call
        evaluates the log posterior density (with the Jacobian) and the reported values at
        every draw of a Laplace or variational approximation, instead of one call per draw.
        Outputs that do not depend on ``x`` keep their unbatched shape.
        """

        def make():
            from pytensor.graph.replace import vectorize_graph

            model = self.model
            priors = [*model.free_RVs, *model.potentials]
            logp_jac = self._logp(priors, jacobian=True)
            reported = model.replace_rvs_by_values([model[p] for p in self.params])
            outs, x = self._join([logp_jac, *reported])
            xs = pt.matrix("xs", dtype=x.dtype, shape=(None, x.type.shape[0]))
            batched = vectorize_graph(outs, replace={x: xs})
            # Whole arrays of draws per call: NumPy implementations on either linker (a
            # Numba compilation of this graph would cost more than it saves).
            return self._function([xs], list(batched), trust_input=True, mode=PYTHON_MODE)

        return self._compile(("draws",), make)

    def l1_map_fn(self) -> _Locked:
        """``(x, *data) -> (flat values of the L1 parameters, Jacobian, *values)``."""

        def make():
            model = self.model
            values = model.replace_rvs_by_values([model[k] for k in self.l1_keys])
            outs, x = self._join(values)
            flat = pt.concatenate([pt.atleast_1d(v).ravel() for v in outs])
            jac = pytensor.gradient.jacobian(flat, [x], vectorize=True)[0]
            return self._function([x], [flat, jac, *outs], mode=PYTHON_MODE)

        return self._compile(("l1_map",), make)

    def derived_fn(self, names: tuple[str, ...]) -> _Locked:
        """Vectorised map from draws of the free RVs (natural scale) to named variables.

        Takes one array per free RV (``model.free_RVs`` order) with a leading draw axis, then
        the data: NUTS samples the free variables only and computes the reported
        Deterministics afterwards, for every draw at once.
        """

        def make():
            from pytensor.graph.replace import graph_replace, vectorize_graph

            model = self.model
            free = list(model.free_RVs)
            single = [rv.type() for rv in free]
            outs = graph_replace([model[n] for n in names], dict(zip(free, single, strict=True)),
                                 strict=False)
            batched = [pt.tensor(dtype=rv.dtype, shape=(None, *rv.type.shape)) for rv in free]
            outs = vectorize_graph(outs, replace=dict(zip(single, batched, strict=True)))
            # Evaluated once per NUTS run on arrays of draws: numpy implementations, no JIT.
            return self._function(batched, list(outs), mode=PYTHON_MODE)

        return self._compile(("derived", names), make)

    def natural_to_x_fn(self, names: tuple[str, ...]) -> _Locked:
        """Function mapping natural-scale values of the named free RVs to unconstrained ones."""

        def make():
            model = self.model
            inputs, outputs = [], []
            for name in names:
                rv = model[name]
                inp = rv.type()
                transform = model.rvs_to_transforms.get(rv)
                out = transform.forward(inp, *rv.owner.inputs) if transform is not None else inp
                inputs.append(inp)
                outputs.append(out)
            return self._function(inputs, outputs, mode=PYTHON_MODE)

        return self._compile(("natural_to_x", names), make)

    def initial_point_fn(self) -> _Locked:
        """``(*data) -> unconstrained initial value of each value variable`` (PyMC's rules)."""

        def make():
            model = self.model
            exprs = make_initial_point_expression(
                free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms,
                initval_strategies=model.rvs_to_initial_values, return_transformed=True)
            return self._function([], exprs, mode=PYTHON_MODE)

        return self._compile(("initial_point",), make)

    def nutpie_model(self):
        """The nutpie model of the free variables (compiled once per structure)."""

        def make():
            from bayesmle.inference.sampling import compile_nutpie_model

            # Free variables only: the reported Deterministics (e.g. coefficients recovered
            # from internal coordinates by a linear map) are computed afterwards, vectorised
            # over all draws, instead of compiled into nutpie's per-draw function. The C
            # callbacks are cached on disk by Numba (keyed by PyTensor's kernel key and the
            # data layout); the initial point is set per run by the sampler.
            free = [rv.name for rv in self.model.free_RVs]
            return compile_nutpie_model(self.model, var_names=free, small=self.linker == "python")

        return self._compile(("nutpie",), make)


def data_size(spec: ModelSpec) -> int:
    """Total number of values in the spec's data arrays (what the linker is chosen by)."""
    return int(sum(np.size(v) for v in spec.data_values().values()))


def compiled_model(spec: ModelSpec) -> CompiledModel:
    """The cached compiled model of the spec's structure (built on first use).

    Small data are evaluated by PyTensor's Python/NumPy linker, large data compiled with
    Numba (:func:`~bayesmle.inference.python_linker.linker_for`); the linker is part of the
    cache key.
    """
    linker = linker_for(data_size(spec))
    key = (spec.structure_key(), linker)
    with _CACHE_LOCK:
        cm = _CACHE.get(key)
        if cm is not None and not cm.reusable:
            cm = _CACHE.get((key, spec.fingerprint()))
        if cm is None:
            # Built under the lock (a model declaration takes ~0.1 s): two threads never
            # build and compile one structure twice. Compilation itself is lazy, per function.
            cm = CompiledModel(spec, linker)
            _CACHE[key if cm.reusable else (key, spec.fingerprint())] = cm
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key if cm.reusable else (key, spec.fingerprint()))
    return cm


def clear_cache() -> None:
    """Forget every compiled model (mainly for tests and benchmarks of cold starts).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.poisson(np.array([1.0, 2.0]))
    >>> first = compiled_model(spec)
    >>> clear_cache()
    >>> compiled_model(spec) is first
    False
    """
    with _CACHE_LOCK:
        _CACHE.clear()
