"""A compiled model bound to one spec's values (:func:`bayesmle.inference.engine.bind`).

Everything a fit needs, in the model's unconstrained coordinates ``x``: the objective and its
derivatives, the named point evaluation, the L1 terms of the priors, starting points and the
map back from reported values to ``x``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pymc.blocking import DictToArrayBijection

from bayesmle.errors import SpecError
from bayesmle.inference.engine import CompiledModel, compiled_model
from bayesmle.inference.glm_newton import GLMObjective, loglik_constant
from bayesmle.inference.optimize import L1Terms
from bayesmle.models.spec import CanonicalGLM, ModelSpec

__all__ = ["BoundModel", "PointEval", "bind"]

#: Draws x data values evaluated per call of the vectorised point function (bounds memory).
_DRAWS_CHUNK_VALUES = 10_000_000


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
    def objective(self, *, jacobian: bool = False, hessian: bool = True,
                  closed_form: bool | None = None) -> Callable[[np.ndarray], tuple]:
        """``x -> (f, grad, hess)`` (or ``(f, grad)``) of minus the smooth log-density.

        The smooth log-density leaves out the L1 parts of the priors (see :meth:`l1_terms`);
        with ``jacobian`` it is the density of ``x`` (Laplace approximation), without it the
        MLE/MAP objective in the natural parametrisation. A point where a compiled kernel
        raises an arithmetic error evaluates to ``inf`` (outside the numerical support).

        Without ``jacobian``, a spec whose log-likelihood is a canonical GLM
        (:attr:`uses_closed_form`: large data, see :meth:`canonical_glm`) is evaluated by
        closed-form Newton terms (:class:`~bayesmle.inference.glm_newton.GLMObjective`) plus
        the engine's prior terms; ``closed_form`` forces the choice (True: SpecError where
        the spec has no such likelihood; False: the engine's autodiff objective).
        """
        use = self.uses_closed_form if closed_form is None else closed_form
        if use and not jacobian:
            glm = self.canonical_glm()
            if glm is None:
                raise SpecError(f"Model {self.spec.name!r} declares no canonical-GLM "
                                "log-likelihood for closed-form Newton terms.")
            return GLMObjective(glm, self._prior_terms, hessian=hessian,
                                constant=self._loglik_constant, last=self._last_loglik)
        fn = self.compiled.objective_fn(jacobian, hessian)
        data, n = self.data, self.size

        def evaluate(x):
            try:
                return fn(np.asarray(x, dtype=np.float64), *data)
            except ArithmeticError:  # e.g. 1/0 in a compiled kernel: not a finite point
                bad = [np.inf, np.full(n, np.nan)]
                return (*bad, np.full((n, n), np.nan)) if hessian else tuple(bad)

        return evaluate

    # -- closed-form GLM terms ---------------------------------------------------------------
    def canonical_glm(self) -> CanonicalGLM | None:
        """The spec's log-likelihood as a canonical GLM in ``x`` (``ModelSpec.glm``), or None.

        None unless the spec declares one for its priors and it matches the compiled model:
        the layout of ``x`` (names and sizes of the value variables, in order), free
        variables without transforms, and reported parameters ``intercept`` (when it has
        one) and ``coef`` exactly.
        """
        return self._glm

    @cached_property
    def _glm(self) -> CanonicalGLM | None:
        spec, cm = self.spec, self.compiled
        if spec.glm is None:
            return None
        glm = spec.glm(spec.arrays(), spec.priors)
        if glm is None:
            return None
        layout = tuple((name, int(np.prod(shape, dtype=int)))
                       for name, shape, *_ in cm.point_map_info)
        params = ("intercept", "coef") if glm.intercept else ("coef",)
        model = cm.model
        n, d = glm.X.shape
        if (layout != tuple(glm.layout) or spec.params != params
                or any(model.rvs_to_transforms.get(rv) is not None for rv in model.free_RVs)
                or glm.A.shape != (d + int(glm.intercept), self.size)
                or glm.y.shape != (n,)):
            return None
        return glm

    @property
    def uses_closed_form(self) -> bool:
        """Whether the MLE/MAP objective is evaluated by closed-form GLM terms.

        By data size only, the rule of the linker: where the engine would compile the model
        with Numba (:func:`~bayesmle.inference.python_linker.linker_for`), for a spec whose
        log-likelihood is a canonical GLM (:meth:`canonical_glm`). Smaller data keep the
        engine's autodiff objective on the Python linker.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> spec = bm.models.logistic_regression(np.eye(3)[:, :1], np.array([0, 1, 1]))
        >>> bind(spec).uses_closed_form, bind(spec).canonical_glm().family
        (False, 'bernoulli')
        """
        return self.compiled.linker == "numba" and self._glm is not None

    @cached_property
    def _last_loglik(self) -> list:
        """``[(x bytes, loglik)]`` of the closed-form objective's last call (or ``[None]``)."""
        return [None]

    @cached_property
    def _loglik_constant(self) -> float:
        glm = self._glm
        assert glm is not None
        return loglik_constant(glm.family, glm.y, glm.trials)

    def _prior_call(self, x: np.ndarray) -> tuple:
        fn = self.compiled.prior_fn()
        try:
            return fn(np.asarray(x, dtype=np.float64), *self.data)
        except ArithmeticError:
            n = self.size
            return np.inf, np.full(n, np.nan), np.full((n, n), np.nan), -np.inf

    def _prior_terms(self, x: np.ndarray) -> tuple:
        return self._prior_call(x)[:3]

    def _closed_form_eval(self, x: np.ndarray) -> PointEval:
        glm = self._glm
        if glm is None:
            raise SpecError(f"Model {self.spec.name!r} declares no canonical-GLM "
                            "log-likelihood for closed-form evaluation.")
        last = self._last_loglik[0]
        if last is not None and last[0] == x.tobytes():  # the optimiser's final point
            ll = float(last[1])
        else:
            objective = GLMObjective(glm, self._prior_terms, hessian=False,
                                     constant=self._loglik_constant)
            ll = float(objective.loglik(x, hessian=False)[0])
        logp = ll + float(self._prior_call(x)[3])
        beta = glm.A @ x + glm.c
        k = int(glm.intercept)
        values = {"intercept": np.asarray(beta[0])} if k else {}
        values["coef"] = beta[k:]
        # free variables without transforms: the density of x is the Jacobian-free one
        return PointEval(loglik=ll, logp=logp, logp_jacobian=logp, values=values,
                         jacobian=glm.A.copy())

    def evaluate(self, x: np.ndarray, *, closed_form: bool | None = None) -> PointEval:
        """Log-likelihood, log-densities, reported values and their Jacobian at ``x``.

        By the closed-form GLM terms where the objective uses them (:attr:`uses_closed_form`;
        ``closed_form`` forces the choice, as in :meth:`objective`), else by the engine's
        point function.
        """
        if self.uses_closed_form if closed_form is None else closed_form:
            return self._closed_form_eval(np.asarray(x, dtype=np.float64))
        out = self.compiled.point_fn()(np.asarray(x, dtype=np.float64), *self.data)
        values = {name: np.asarray(v) for name, v in zip(self.spec.params, out[3:-1],
                                                         strict=True)}
        return PointEval(loglik=float(out[0]), logp=float(out[1]),
                         logp_jacobian=float(out[2]), values=values,
                         jacobian=np.asarray(out[-1]))

    def evaluate_draws(self, xs: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Reported values ``(draws, *shape)`` by name and log p (with Jacobian) at rows of xs.

        Vectorised over the draws, in chunks of at most ~1e7 values of the data times the
        draws (memory stays bounded on large data); a chunk whose evaluation raises an
        arithmetic error is evaluated draw by draw.
        """
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        draws = xs.shape[0]
        size = max(1, sum(int(np.size(v)) for v in self.data))
        chunk = int(min(max(draws, 1), max(1, _DRAWS_CHUNK_VALUES // size)))
        names = self.spec.params
        if draws == 0:
            return {}, np.empty(0)
        shapes = [np.shape(v) for v in self.evaluate(xs[0]).values.values()]
        fn = self.compiled.draws_fn()
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        log_p = []
        for start in range(0, draws, chunk):
            block = np.ascontiguousarray(xs[start:start + chunk])
            m = block.shape[0]
            try:
                out = fn(block, *self.data)
            except ArithmeticError:
                evals = [self.evaluate(x) for x in block]
                out = [np.array([e.logp_jacobian for e in evals]),
                       *(np.stack([np.asarray(e.values[n]) for e in evals]) for n in names)]
            log_p.append(np.broadcast_to(np.asarray(out[0], dtype=float), (m,)))
            for name, value, ref in zip(names, out[1:], shapes, strict=True):
                value = np.asarray(value)
                if value.shape != (m, *ref):  # does not depend on x: same at every draw
                    value = np.broadcast_to(value, (m, *ref))
                parts[name].append(value)
        return ({name: np.concatenate(parts[name]) for name in names},
                np.concatenate(log_p))

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
                raw = values[name]
                try:
                    if np.iscomplexobj(raw):
                        raise TypeError
                    value = np.asarray(raw, dtype=model[name].dtype)
                    arrays.append(np.broadcast_to(value, shape).copy())
                except (TypeError, ValueError):
                    raise SpecError(f"`start[{name!r}]` must be a real number (or array) "
                                    f"broadcasting to shape {shape}, got {raw!r}.") from None
                if not np.all(np.isfinite(arrays[-1])):
                    raise SpecError(f"`start[{name!r}]` must be finite, got {raw!r}.")
            out = self.compiled.natural_to_x_fn(names)(*arrays, *self.data)
            for name, raw, value in zip(names, (values[n] for n in names), out, strict=True):
                if not np.all(np.isfinite(value)):
                    raise SpecError(f"`start[{name!r}]` = {raw!r} is outside the support of "
                                    f"{name!r} (e.g. a scale must be > 0, a probability in "
                                    f"(0, 1)).")
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
    def l1_terms(self, x0: np.ndarray | None = None) -> L1Terms:
        """The L1 parts of the priors as terms in ``x``: index, centre and weight.

        Each parameter under a prior with an L1 part must be an affine function of *one*
        coordinate of ``x`` per element (``value = a * x_k + c``, distinct ``k``): then
        ``|value - mu| / b = (|a| / b) |x_k - (mu - c) / a|``. Checked at two points: ``x0``
        (default: the start, :meth:`start_x`; a fit passes its own to avoid computing it twice)
        and a point beside it.
        """
        cm = self.compiled
        if not cm.l1_keys:
            return L1Terms()
        fn = cm.l1_map_fn()
        x0 = self.start_x() if x0 is None else np.asarray(x0, dtype=float)
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


def bind(spec: ModelSpec) -> BoundModel:
    """The compiled model of ``spec``'s structure, bound to its values.

    The one act that connects a spec to compiled code: cheap (no copy, no compilation after
    the first use of a structure), and the result is immutable and thread-safe.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> a = bind(bm.models.poisson(np.array([1.0, 2.0])))
    >>> b = bind(bm.models.poisson(np.array([5.0, 7.0, 9.0])))
    >>> a.compiled is b.compiled  # one structure, compiled once, two data sets
    True
    """
    cm = compiled_model(spec)
    return BoundModel(cm, spec, cm.data_for(spec))
