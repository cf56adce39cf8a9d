"""Compiled functions of one model structure, cached in-process and reused across data values.

A :class:`CompiledModel` holds the PyMC model declared by a spec and PyTensor functions of the
raveled vector ``x`` of unconstrained value variables (the space PyMC samples and optimises in):

* ``objective(jacobian)``: ``x -> (f, grad, hess)`` of ``f = -logp_smooth(x)``, where the smooth
  log-density is the model's log-density without the terms of Laplace-distributed free
  variables (their L1 penalty is handled exactly by the optimiser; see ``l1``);
* ``point``: ``x -> (loglik, logp, reported values, d reported / d x)``.

Fitting a spec of the same structure with new values only swaps the ``pm.Data`` contents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pytensor
import pytensor.tensor as pt
from pymc.blocking import DictToArrayBijection
from pymc.pytensorf import compile as pm_compile
from pymc.pytensorf import join_nonshared_inputs
from pymc.tuning.scipy_interface import rewrite_pregrad
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.tensor.random.basic import LaplaceRV

from bayesmle.errors import SpecError
from bayesmle.inference import _trigamma_numba  # noqa: F401 - registers a Numba lowering
from bayesmle.models.spec import ModelSpec

__all__ = ["CompiledModel", "L1Terms", "compiled_model", "clear_cache"]

log = logging.getLogger("bayesmle")

_CACHE: OrderedDict[tuple, CompiledModel] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


@dataclass(frozen=True)
class L1Terms:
    """Coordinates of ``x`` carrying a Laplace prior: penalty ``sum(|x[index] - center| / b)``."""

    index: np.ndarray
    center: np.ndarray
    scale: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """The L1 weights ``1 / b``."""
        return 1.0 / self.scale

    def penalty(self, x: np.ndarray) -> float:
        """The L1 penalty at ``x``."""
        if self.index.size == 0:
            return 0.0
        return float(np.sum(np.abs(x[self.index] - self.center) / self.scale))


class CompiledModel:
    """The model of one structure, with lazily compiled functions of the unconstrained vector."""

    def __init__(self, spec: ModelSpec):
        t0 = time.perf_counter()
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
        self.params = spec.params
        self.value_vars = list(model.value_vars)
        self.initial_point = model.initial_point()
        self.point_map_info = DictToArrayBijection.map(
            {v.name: self.initial_point[v.name] for v in self.value_vars}
        ).point_map_info
        self.size = int(sum(np.prod(shape, dtype=int) for _, shape, _, *_ in
                            self.point_map_info))
        self.shared = {
            name: var for name, var in model.named_vars.items() if isinstance(var, SharedVariable)
        }
        self.reusable = all(k in self.shared for k in spec.data_values())
        self._l1_rvs = [
            rv for rv in model.free_RVs
            if isinstance(rv.owner.op, LaplaceRV) and model.rvs_to_transforms.get(rv) is None
        ]
        self._fast_loglik = spec.fast_loglik
        self._fn_cache: dict = {}
        self._lock = threading.Lock()
        #: Held by the driver while it sets data and fits: one fit at a time per structure.
        self.fit_lock = threading.RLock()
        self.build_seconds = time.perf_counter() - t0
        self.compile_seconds = 0.0

    # -- layout ------------------------------------------------------------------------------
    def slices(self) -> dict[str, slice]:
        """Position of each value variable in ``x``."""
        out, i = {}, 0
        for name, shape, *_ in self.point_map_info:
            size = int(np.prod(shape, dtype=int))
            out[name] = slice(i, i + size)
            i += size
        return out

    def set_data(self, spec: ModelSpec) -> None:
        """Push the spec's data and prior parameters into the model's shared containers."""
        for name, value in spec.data_values().items():
            var = self.shared.get(name)
            if var is None:
                continue
            current = var.get_value(borrow=True)
            if np.ndim(current) != np.ndim(value):
                raise SpecError(
                    f"Data `{name}` has {np.ndim(value)} dimension(s) but the compiled model "
                    f"expects {np.ndim(current)}."
                )
            var.set_value(np.asarray(value, dtype=current.dtype), borrow=True)

    # -- compilation helpers -----------------------------------------------------------------
    def _join(self, outputs):
        new_outputs, x = join_nonshared_inputs(
            point=self.initial_point, outputs=outputs, inputs=self.value_vars
        )
        return list(new_outputs), x

    def _compile(self, key, make):
        with self._lock:
            fn = self._fn_cache.get(key)
            if fn is None:
                t0 = time.perf_counter()
                fn = make()
                dt = time.perf_counter() - t0
                self.compile_seconds += dt
                log.debug("compiled %s for %s in %.2fs", key, self.params, dt)
                self._fn_cache[key] = fn
        return fn

    # -- L1 ----------------------------------------------------------------------------------
    @cached_property
    def _l1_param_fn(self):
        outs = []
        for rv in self._l1_rvs:
            mu, b = rv.owner.op.dist_params(rv.owner)
            outs += [pt.broadcast_to(mu, rv.shape).ravel(), pt.broadcast_to(b, rv.shape).ravel()]
        return pm_compile([], outs, mode="FAST_COMPILE") if outs else None

    def l1(self) -> L1Terms:
        """Current L1 terms (centres and scales evaluated from the current data)."""
        if not self._l1_rvs:
            empty = np.zeros(0)
            return L1Terms(np.zeros(0, dtype=int), empty, empty)
        values = self._l1_param_fn()
        slices = self.slices()
        index, center, scale = [], [], []
        for i, rv in enumerate(self._l1_rvs):
            sl = slices[self.model.rvs_to_values[rv].name]
            index.append(np.arange(sl.start, sl.stop))
            center.append(values[2 * i])
            scale.append(values[2 * i + 1])
        return L1Terms(np.concatenate(index), np.concatenate(center), np.concatenate(scale))

    # -- objective ---------------------------------------------------------------------------
    def objective(self, jacobian: bool = False, hessian: bool = True):
        """``x -> (f, grad, hess)`` (or ``(f, grad)``) of minus the smooth log-density."""

        def make():
            model = self.model
            terms = [rv for rv in model.free_RVs if rv not in self._l1_rvs]
            loss = -self._logp(terms + list(model.potentials), jacobian=jacobian,
                               observed=True)
            [loss], x = self._join([loss])
            loss = rewrite_pregrad(loss)
            grad = pytensor.gradient.grad(loss, x)
            outs = [loss, grad]
            if hessian:
                outs.append(pytensor.gradient.jacobian(grad, [x], vectorize=True)[0])
            fn = pm_compile([x], outs, trust_input=True)
            n = self.size

            def evaluate(v):
                try:
                    return fn(np.asarray(v, dtype=np.float64))
                except ArithmeticError:  # e.g. 1/0 in a compiled kernel: not a finite point
                    bad = [np.inf, np.full(n, np.nan)]
                    return (*bad, np.full((n, n), np.nan)) if hessian else tuple(bad)

            return evaluate

        return self._compile(("objective", jacobian, hessian), make)

    def _loglik(self):
        """The observed variables' log-density (the spec's ``fast_loglik`` when it has one)."""
        model = self.model
        fast = self._fast_loglik(model) if self._fast_loglik is not None else None
        if fast is None:
            return model.logp(vars=list(model.observed_RVs), jacobian=False)
        return model.replace_rvs_by_values([fast])[0]

    def _logp(self, terms, *, jacobian: bool, observed: bool):
        """Log-density of ``terms`` (free RVs, potentials), plus the log-likelihood if asked."""
        model = self.model
        logp = model.logp(vars=terms, jacobian=jacobian) if terms else pt.constant(0.0)
        return logp + self._loglik() if observed else logp

    def point_fn(self):
        """``x -> [loglik, logp (jacobian-free), logp (with jacobian), *reported, jac]``."""

        def make():
            model = self.model
            loglik = self._loglik()
            priors = list(model.free_RVs) + list(model.potentials)
            logp = self._logp(priors, jacobian=False, observed=False) + loglik
            logp_jac = self._logp(priors, jacobian=True, observed=False) + loglik
            reported = model.replace_rvs_by_values([model[p] for p in self.params])
            outs, x = self._join([loglik, logp, logp_jac, *reported])
            flat = pt.concatenate([pt.atleast_1d(r).ravel() for r in outs[3:]])
            jac = pytensor.gradient.jacobian(flat, [x], vectorize=True)[0]
            fn = pm_compile([x], [*outs, jac], trust_input=True)
            return lambda v: fn(np.asarray(v, dtype=np.float64))

        return self._compile(("point",), make)

    def derived_fn(self, names: tuple[str, ...]):
        """Vectorised function of the free RVs' natural-scale draws to the named variables.

        Takes one array per free RV (``model.free_RVs`` order) with a leading draw axis and
        returns the named variables (Deterministics) for every draw at once: NUTS samples the
        free variables only and computes the reported Deterministics afterwards.
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
            return pm_compile(batched, list(outs), on_unused_input="ignore",
                              mode="FAST_COMPILE")

        return self._compile(("derived", names), make)

    def natural_to_x_fn(self, names: tuple[str, ...]):
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
            return pm_compile(inputs, outputs, mode="FAST_COMPILE", on_unused_input="ignore")

        return self._compile(("natural_to_x", names), make)

    def start_x(self, start: dict[str, np.ndarray]) -> np.ndarray:
        """The unconstrained vector for natural-scale start values (model defaults elsewhere)."""
        model = self.model
        point = dict(self.initial_point)
        names = tuple(rv.name for rv in model.free_RVs if rv.name in start)
        if names:
            values = []
            for name in names:
                value_name = model.rvs_to_values[model[name]].name
                shape = self.initial_point[value_name].shape
                values.append(np.broadcast_to(np.asarray(start[name], dtype=model[name].dtype),
                                              shape).copy())
            out = self.natural_to_x_fn(names)(*values)
            for name, value in zip(names, out, strict=True):
                point[model.rvs_to_values[model[name]].name] = np.asarray(value)
        return DictToArrayBijection.map({v.name: point[v.name] for v in self.value_vars}).data

    def x_to_point(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The value-variable dict of ``x``."""
        from pymc.blocking import RaveledVars

        return DictToArrayBijection.rmap(RaveledVars(np.asarray(x), self.point_map_info))


def compiled_model(spec: ModelSpec) -> CompiledModel:
    """The cached compiled model of the spec's structure, with the spec's values pushed in."""
    key = spec.structure_key()
    with _CACHE_LOCK:
        cm = _CACHE.get(key)
        if cm is not None and not cm.reusable:
            cm = _CACHE.get((key, spec.fingerprint()))
        if cm is not None:
            _CACHE.move_to_end(key)
    if cm is None:
        cm = CompiledModel(spec)
        with _CACHE_LOCK:
            _CACHE[key if cm.reusable else (key, spec.fingerprint())] = cm
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    cm.set_data(spec)
    return cm


def clear_cache() -> None:
    """Forget every compiled model (mainly for tests and benchmarks of cold starts)."""
    with _CACHE_LOCK:
        _CACHE.clear()
