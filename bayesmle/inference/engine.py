"""The engine: one compiled model per structure, bound to a spec's data for each use.

This is the only module that touches compiled PyTensor functions. Its contract with the rest
of the library:

* :func:`bind` ``(spec) -> BoundModel`` -- the one act that connects a spec's values to the
  compiled functions of its *structure* (builder, array ranks and column shapes, prior types;
  :meth:`ModelSpec.structure_key`). Functions are compiled once per structure and process, on
  first use; the data are *inputs* of every function, never state of the model: binding copies
  nothing and changes nothing shared, so fits of one structure run safely from many threads
  (each compiled function is called under its own lock; PyTensor functions hold their input
  and output storage).
* The model's free variables, raveled in ``model.value_vars`` order and unconstrained (log
  scale, log-odds...), form the vector ``x`` of every function here.
* Priors: the model's log-density contains each prior once, by either route of
  :mod:`bayesmle.priors`. A prior with an L1 part (Laplace) is taken *out* of the smooth
  objective and handed to the optimiser as :class:`~bayesmle.inference.optimize.L1Terms`; the
  parameter it sits on must be one coordinate of ``x`` times a constant (checked, typed error
  otherwise), which the regression builders guarantee by choosing their coordinates from all
  priors. That is the only place where priors are told apart.
* :class:`PointEval` is the named result of evaluating the model at ``x``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.initial_point import make_initial_point_expression
from pymc.pytensorf import compile as pm_compile
from pymc.pytensorf import join_nonshared_inputs
from pymc.tuning.scipy_interface import rewrite_pregrad
from pytensor.compile.sharedvalue import SharedVariable

from bayesmle.errors import SpecError
from bayesmle.inference import _trigamma_numba  # noqa: F401 - registers a Numba lowering
from bayesmle.inference.optimize import L1Terms
from bayesmle.models.spec import ModelSpec

__all__ = ["BoundModel", "CompiledModel", "PointEval", "bind", "clear_cache", "compiled_model"]

log = logging.getLogger("bayesmle")

_CACHE: OrderedDict[tuple, CompiledModel] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


@dataclass(frozen=True)
class PointEval:
    """The model evaluated at one point ``x`` of its unconstrained coordinates.

    Attributes
    ----------
    loglik : float
        Log-likelihood of the observed data.
    logp : float
        Jacobian-free log-density (likelihood + priors): the MLE/MAP objective.
    logp_jacobian : float
        Log-density of ``x`` itself (with the log-Jacobian of the transforms): what NUTS and
        the Laplace approximation see.
    values : dict of str to ndarray
        The reported parameters on their natural scale.
    jacobian : ndarray
        Derivative of the flattened reported values (``labels`` order) with respect to ``x``.
    """

    loglik: float
    logp: float
    logp_jacobian: float
    values: dict[str, np.ndarray]
    jacobian: np.ndarray

    @property
    def flat(self) -> np.ndarray:
        """The reported values as one vector (``labels`` order)."""
        return np.concatenate([np.atleast_1d(v).ravel() for v in self.values.values()])


class _Locked:
    """A compiled function called under its own lock (its storage is not reentrant)."""

    def __init__(self, fn):
        self._fn = fn
        self._lock = threading.Lock()

    def __call__(self, *args):
        with self._lock:
            return self._fn(*args)


class CompiledModel:
    """The PyMC model of one structure and its compiled functions (data as explicit inputs).

    Never used directly by fitting code: :meth:`bind` it to a spec first.
    """

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
        self.name = spec.name
        self.params = spec.params
        self.value_vars = list(model.value_vars)
        template = model.initial_point()
        self._template_point = {v.name: template[v.name] for v in self.value_vars}
        self.point_map_info = DictToArrayBijection.map(self._template_point).point_map_info
        self.size = int(sum(np.prod(shape, dtype=int) for _, shape, _, *_ in
                            self.point_map_info))
        self.shared: tuple[tuple[str, SharedVariable], ...] = tuple(
            (name, var) for name, var in sorted(model.named_vars.items())
            if isinstance(var, SharedVariable))
        # Reusable for other values only if every value has a container and every container
        # gets a value (a container without one would keep this spec's value baked in).
        self.reusable = set(spec.data_values()) == {name for name, _ in self.shared}
        self._fast_loglik = spec.fast_loglik
        self._priors = dict(spec.priors)  # prior *types* are part of the structure
        self.l1_keys = tuple(k for k, p in spec.priors.items() if p.has_l1)
        self._l1_carriers = tuple(self._carrier(k) for k in self.l1_keys)
        self._fns: dict = {}
        self._lock = threading.RLock()
        self.build_seconds = time.perf_counter() - t0
        self.compile_seconds = 0.0

    # -- binding -----------------------------------------------------------------------------
    def bind(self, spec: ModelSpec) -> BoundModel:
        """The compiled functions with ``spec``'s data and prior values as their inputs."""
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
        return BoundModel(self, spec, tuple(data))

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

    def _loglik(self):
        """The observed variables' log-density (the spec's ``fast_loglik`` when it has one)."""
        model = self.model
        fast = (self._fast_loglik(model, self._priors) if self._fast_loglik is not None
                else None)
        if fast is None:
            return model.logp(vars=list(model.observed_RVs), jacobian=False)
        return model.replace_rvs_by_values([fast])[0]

    def _logp(self, terms, *, jacobian: bool):
        """Log-density of ``terms`` (free RVs, potentials) plus the log-likelihood."""
        model = self.model
        logp = model.logp(vars=terms, jacobian=jacobian) if terms else pt.constant(0.0)
        return logp + self._loglik()

    # -- compiled functions ------------------------------------------------------------------
    def objective_fn(self, jacobian: bool, hessian: bool) -> _Locked:
        """``(x, *data) -> (f, grad[, hess])`` of minus the smooth log-density."""

        def make():
            model = self.model
            terms = [v for v in [*model.free_RVs, *model.potentials]
                     if v not in self._l1_carriers]
            [loss], x = self._join([-self._logp(terms, jacobian=jacobian)])
            loss = rewrite_pregrad(loss)
            grad = pytensor.gradient.grad(loss, x)
            outs = [loss, grad]
            if hessian:
                outs.append(pytensor.gradient.jacobian(grad, [x], vectorize=True)[0])
            return self._function([x], outs, trust_input=True)

        return self._compile(("objective", jacobian, hessian), make)

    def point_fn(self) -> _Locked:
        """``(x, *data) -> (loglik, logp, logp_jacobian, *reported, jacobian)``."""

        def make():
            model = self.model
            priors = [*model.free_RVs, *model.potentials]
            loglik = self._loglik()
            logp = self._logp(priors, jacobian=False)
            logp_jac = self._logp(priors, jacobian=True)
            reported = model.replace_rvs_by_values([model[p] for p in self.params])
            outs, x = self._join([loglik, logp, logp_jac, *reported])
            flat = pt.concatenate([pt.atleast_1d(r).ravel() for r in outs[3:]])
            jac = pytensor.gradient.jacobian(flat, [x], vectorize=True)[0]
            return self._function([x], [*outs, jac], trust_input=True)

        return self._compile(("point",), make)

    def l1_map_fn(self) -> _Locked:
        """``(x, *data) -> (flat values of the L1 parameters, Jacobian, *values)``."""

        def make():
            model = self.model
            values = model.replace_rvs_by_values([model[k] for k in self.l1_keys])
            outs, x = self._join(values)
            flat = pt.concatenate([pt.atleast_1d(v).ravel() for v in outs])
            jac = pytensor.gradient.jacobian(flat, [x], vectorize=True)[0]
            return self._function([x], [flat, jac, *outs], mode="FAST_COMPILE")

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
            return self._function(batched, list(outs), mode="FAST_COMPILE")

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
            return self._function(inputs, outputs, mode="FAST_COMPILE")

        return self._compile(("natural_to_x", names), make)

    def initial_point_fn(self) -> _Locked:
        """``(*data) -> unconstrained initial value of each value variable`` (PyMC's rules)."""

        def make():
            model = self.model
            exprs = make_initial_point_expression(
                free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms,
                initval_strategies=model.rvs_to_initial_values, return_transformed=True)
            return self._function([], exprs, mode="FAST_COMPILE")

        return self._compile(("initial_point",), make)

    def nutpie_model(self, start: Mapping[str, np.ndarray]):
        """The nutpie model of the free variables (compiled once per structure)."""

        def make():
            import nutpie

            # Free variables only: the reported Deterministics (e.g. coefficients recovered
            # from internal coordinates by a linear map) are computed afterwards, vectorised
            # over all draws, instead of compiled into nutpie's per-draw function.
            free = [rv.name for rv in self.model.free_RVs]
            return nutpie.compile_pymc_model(self.model, var_names=free,
                                             initial_points=dict(start) or None)

        return self._compile(("nutpie",), make)


@dataclass(frozen=True)
class BoundModel:
    """A compiled model bound to one spec's values: what every fit works with.

    Cheap to create (no copy, no compilation); immutable; safe to use from several threads.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([1.0, 2.0, 4.0])
    >>> bound = bind(bm.models.gaussian(y))
    >>> x = bound.start_x()
    >>> point = bound.evaluate(x)
    >>> sorted(point.values), bool(np.isclose(point.values["mu"], y.mean()))
    (['mu', 'sigma'], True)
    """

    compiled: CompiledModel
    spec: ModelSpec
    data: tuple[np.ndarray, ...] = field(repr=False)

    @property
    def size(self) -> int:
        """Length of ``x``."""
        return self.compiled.size

    # -- evaluation --------------------------------------------------------------------------
    def objective(self, *, jacobian: bool = False, hessian: bool = True
                  ) -> Callable[[np.ndarray], tuple]:
        """``x -> (f, grad, hess)`` (or ``(f, grad)``) of minus the smooth log-density.

        The smooth log-density leaves out the L1 parts of the priors (see :meth:`l1_terms`);
        with ``jacobian`` it is the density of ``x`` (Laplace approximation), without it the
        MLE/MAP objective in the natural parametrisation. A point where a compiled kernel
        raises an arithmetic error evaluates to ``inf`` (outside the numerical support).
        """
        fn = self.compiled.objective_fn(jacobian, hessian)
        data, n = self.data, self.size

        def evaluate(x):
            try:
                return fn(np.asarray(x, dtype=np.float64), *data)
            except ArithmeticError:  # e.g. 1/0 in a compiled kernel: not a finite point
                bad = [np.inf, np.full(n, np.nan)]
                return (*bad, np.full((n, n), np.nan)) if hessian else tuple(bad)

        return evaluate

    def evaluate(self, x: np.ndarray) -> PointEval:
        """Log-likelihood, log-densities, reported values and their Jacobian at ``x``."""
        out = self.compiled.point_fn()(np.asarray(x, dtype=np.float64), *self.data)
        values = {name: np.asarray(v) for name, v in zip(self.spec.params, out[3:-1],
                                                         strict=True)}
        return PointEval(loglik=float(out[0]), logp=float(out[1]),
                         logp_jacobian=float(out[2]), values=values,
                         jacobian=np.asarray(out[-1]))

    def values(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The reported values at ``x`` (by the point function: one compile per structure)."""
        return self.evaluate(x).values

    def derived(self, names: tuple[str, ...], draws: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Named variables for draws of the free RVs (one array per free RV, draws first)."""
        return list(self.compiled.derived_fn(names)(*draws, *self.data))

    # -- coordinates -------------------------------------------------------------------------
    def x_to_point(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The value-variable dict of ``x``."""
        return self.compiled.x_to_point(x)

    def default_x(self) -> np.ndarray:
        """PyMC's initial point (support points of the priors) for these data."""
        model = self.compiled.model
        out = self.compiled.initial_point_fn()(*self.data)
        point = {v.name: np.asarray(o) for v, o in zip(model.value_vars, out, strict=True)}
        return DictToArrayBijection.map(point).data

    def start_x(self, start: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The unconstrained vector of natural-scale start values.

        The builder's guess (``spec.start_values()``), overridden by ``start``; PyMC's initial
        point elsewhere.
        """
        model = self.compiled.model
        values = self.spec.start_values()
        if start:
            unknown = [k for k in start if k not in model.named_vars
                       or model[k] not in model.free_RVs]
            if unknown:
                raise SpecError(f"`start` names unknown variable(s) {unknown}; free variables "
                                f"are {[rv.name for rv in model.free_RVs]}.")
            values.update(start)
        point = self.x_to_point(self.default_x())
        names = tuple(rv.name for rv in model.free_RVs if rv.name in values)
        if names:
            arrays = []
            for name in names:
                shape = point[model.rvs_to_values[model[name]].name].shape
                try:
                    value = np.asarray(values[name], dtype=model[name].dtype)
                    arrays.append(np.broadcast_to(value, shape).copy())
                except (TypeError, ValueError):
                    raise SpecError(f"Start value of {name!r} must be numeric with shape "
                                    f"{shape}, got {values[name]!r}.") from None
            out = self.compiled.natural_to_x_fn(names)(*arrays, *self.data)
            for name, value in zip(names, out, strict=True):
                point[model.rvs_to_values[model[name]].name] = np.asarray(value)
        return DictToArrayBijection.map({v.name: point[v.name]
                                         for v in self.compiled.value_vars}).data

    def x_for(self, target: np.ndarray, x0: np.ndarray) -> np.ndarray | None:
        """Coordinates whose flattened reported values equal ``target`` (damped Newton).

        For models with as many reported scalars as coordinates (every built-in model):
        exact in one step for coefficients, a few for a log-scale parameter. None when it
        does not converge.
        """
        x = np.asarray(x0, dtype=float).copy()
        ev = self.evaluate(x)
        r = ev.flat - target
        scale = np.maximum(np.abs(target), 1.0)
        for _ in range(100):
            if np.all(np.abs(r) <= 4e-15 * scale):
                return x
            try:
                step = np.linalg.solve(ev.jacobian, r)
            except np.linalg.LinAlgError:
                return None
            norm = np.max(np.abs(r) / scale)
            t = 1.0
            while t > 1e-12:
                xn = x - t * step
                ev_n = self.evaluate(xn)
                rn = ev_n.flat - target
                if np.all(np.isfinite(rn)) and np.max(np.abs(rn) / scale) < norm:
                    break
                t *= 0.5
            else:
                return x if norm <= 1e-13 else None
            x, ev, r = xn, ev_n, rn
        return x if np.max(np.abs(r) / scale) <= 1e-12 else None

    # -- the L1 part of the priors -----------------------------------------------------------
    def l1_terms(self) -> L1Terms:
        """The L1 parts of the priors as terms in ``x``: index, centre and weight.

        Each parameter under a prior with an L1 part must be an affine function of *one*
        coordinate of ``x`` per element (``value = a * x_k + c``, distinct ``k``): then
        ``|value - mu| / b = (|a| / b) |x_k - (mu - c) / a|``. Checked at two points.
        """
        cm = self.compiled
        if not cm.l1_keys:
            return L1Terms()
        fn = cm.l1_map_fn()
        x0 = self.start_x()
        out0 = fn(x0, *self.data)
        v0, j0 = np.asarray(out0[0], dtype=float), np.asarray(out0[1], dtype=float)
        shapes = [np.shape(v) for v in out0[2:]]
        step = np.where(np.arange(x0.size) % 2 == 0, 0.37, -0.29) * (1.0 + np.abs(x0))
        out1 = fn(x0 + step, *self.data)
        v1, j1 = np.asarray(out1[0], dtype=float), np.asarray(out1[1], dtype=float)
        nonzero = j0 != 0
        if not (np.all(nonzero.sum(axis=1) == 1) and np.array_equal(nonzero, j1 != 0)):
            self._not_separable()
        rows = np.arange(j0.shape[0])
        index = np.argmax(nonzero, axis=1)
        slope = j0[rows, index]
        if (np.unique(index).size != index.size
                or not np.allclose(j1[rows, index], slope, rtol=1e-12, atol=0)
                or not np.allclose(v1 - v0, slope * step[index], rtol=1e-9,
                                   atol=1e-12 * (1 + np.abs(v0).max()))):
            self._not_separable()
        # The offset c, evaluated where every penalised coordinate is 0 (exactly 0 for a pure
        # scaling, so that zeros stay exact zeros).
        at_zero = x0.copy()
        at_zero[index] = 0.0
        offset = np.asarray(fn(at_zero, *self.data)[0], dtype=float)
        parts = [self.spec.priors[key].l1() for key in cm.l1_keys]
        mu = np.concatenate([np.broadcast_to(part.center, shape).ravel()
                             for part, shape in zip(parts, shapes, strict=True)])
        w = np.concatenate([np.broadcast_to(part.weight, shape).ravel()
                            for part, shape in zip(parts, shapes, strict=True)])
        return L1Terms(index=index, center=(mu - offset) / slope, weight=np.abs(slope) * w)

    def _not_separable(self):
        keys = list(self.compiled.l1_keys)
        raise SpecError(
            f"The Laplace prior(s) on {keys} of model {self.spec.name!r} need each element of "
            "the parameter to be one of the model's free coordinates times a constant (plus a "
            "constant), so that the L1 term stays separable and is optimised exactly; here a "
            "parameter is a combination of several coordinates (or not affine in them). "
            "Declare the parameter as a free variable with prior.rv(model, key).")


def compiled_model(spec: ModelSpec) -> CompiledModel:
    """The cached compiled model of the spec's structure (built on first use)."""
    key = spec.structure_key()
    with _CACHE_LOCK:
        cm = _CACHE.get(key)
        if cm is not None and not cm.reusable:
            cm = _CACHE.get((key, spec.fingerprint()))
        if cm is None:
            # Built under the lock (a model declaration takes ~0.1 s): two threads never
            # build and compile one structure twice. Compilation itself is lazy, per function.
            cm = CompiledModel(spec)
            _CACHE[key if cm.reusable else (key, spec.fingerprint())] = cm
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key if cm.reusable else (key, spec.fingerprint()))
    return cm


def bind(spec: ModelSpec) -> BoundModel:
    """The compiled model of ``spec``'s structure, bound to its values (see the module)."""
    return compiled_model(spec).bind(spec)


def clear_cache() -> None:
    """Forget every compiled model (mainly for tests and benchmarks of cold starts)."""
    with _CACHE_LOCK:
        _CACHE.clear()
