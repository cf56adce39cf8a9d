"""NUTS sampling (nutpie when installed, PyMC's sampler otherwise) and Laplace draws."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import time
import warnings
import weakref

import numpy as np
import pymc as pm
import xarray as xr

from bayesmle.errors import SpecError
from bayesmle.inference.compiled import compiled_model
from bayesmle.inference.point_fit import fit_point
from bayesmle.inference.posterior import PosteriorResult
from bayesmle.models.spec import ModelSpec

__all__ = ["sample_nuts", "laplace_approximation", "default_sampler"]

log = logging.getLogger("bayesmle")

_SAMPLERS = ("auto", "nutpie", "pymc")


def default_sampler() -> str:
    """``"nutpie"`` when installed, else ``"pymc"``."""
    return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpecError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def sample_nuts(
    spec: ModelSpec,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: str = "auto",
    target_accept: float = 0.8,
    progressbar: bool = False,
) -> PosteriorResult:
    """Draw from the posterior of ``spec`` with NUTS; see :func:`bayesmle.fit`."""
    draws = _check_int("draws", draws, 1)
    tune = _check_int("tune", tune, 0)
    chains = _check_int("chains", chains, 1)
    if sampler not in _SAMPLERS:
        raise SpecError(f"Unknown sampler {sampler!r}; valid samplers: {list(_SAMPLERS)}.")
    if not 0.0 < float(target_accept) < 1.0:
        raise SpecError(f"`target_accept` must be in (0, 1), got {target_accept!r}.")
    if random_seed is None:
        raise SpecError(
            "`random_seed` is required for NUTS so that results are reproducible; pass an int."
        )
    for check in spec.posterior_checks:
        check(spec)
    chosen = default_sampler() if sampler == "auto" else sampler
    t0 = time.perf_counter()
    cm = compiled_model(spec)
    with cm.fit_lock:
        cm.set_data(spec)
        # Start every chain from the builder's data-driven guess (near the bulk), so that the
        # warm-up does not have to travel from PyMC's default of zero on the user's scale.
        start = {k: np.asarray(v) for k, v in spec.start_values().items()
                 if k in cm.model.named_vars and cm.model[k] in cm.model.free_RVs}
        kwargs = {"target_accept": float(target_accept)}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*PyTensor could not link to a BLAS.*")
            if chosen == "nutpie":
                dt = _sample_nutpie(cm, spec, start, draws=draws, tune=tune, chains=chains,
                                    random_seed=random_seed, progressbar=progressbar,
                                    target_accept=float(target_accept))
            else:
                dt = pm.sample(
                    draws=draws, tune=tune, chains=chains, cores=1,
                    random_seed=random_seed, progressbar=progressbar, model=cm.model,
                    var_names=list(spec.params), initvals=start or None,
                    compute_convergence_checks=False, quiet=True, **kwargs,
                )
    dt = _relabel(dt, spec)
    result = PosteriorResult(spec=spec, method="nuts", datatree=dt,
                             seconds=time.perf_counter() - t0, sampler=chosen)
    result.warn_if_bad(stacklevel=4)
    return result


#: nutpie's compiled sampler per compiled model structure (compiled once, data swapped).
_NUTPIE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sample_nutpie(cm, spec: ModelSpec, start: dict, *, draws: int, tune: int, chains: int,
                   random_seed: int, progressbar: bool, target_accept: float) -> xr.DataTree:
    """Sample with nutpie, compiling its numba logp once per model structure.

    ``pm.sample(nuts_sampler="nutpie")`` recompiles on every call (~3-4 s); here the compiled
    model is cached with the structure and each call swaps in the spec's data with nutpie's
    ``with_data`` and its own starting point (the builder's guess, jittered per chain as PyMC
    does).
    """
    import nutpie
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock
    from pymc.backends.arviz import patch_nutpie_idata
    from pymc.initial_point import make_initial_point_fn

    model = cm.model
    free = [rv.name for rv in model.free_RVs]
    compiled = _NUTPIE.get(cm)
    if compiled is None:
        # Free variables only: the reported Deterministics (e.g. coefficients recovered from
        # the QR parametrisation by a linear map) are computed afterwards, vectorised
        # over all draws, instead of compiled into nutpie's per-draw function.
        compiled = nutpie.compile_pymc_model(model, var_names=free,
                                             initial_points=start or None)
        _NUTPIE[cm] = compiled
    names = {var.name for var in compiled.shared_var_keys}
    values = {k: v for k, v in spec.data_values().items() if k in names}
    compiled = compiled.with_data(**values)
    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    # Chains start in parallel threads; a compiled PyTensor function is not thread safe.
    point_fn = _wrap_with_lock(make_initial_point_fn(
        model=model, overrides=start or None, jitter_rvs=set(model.free_RVs),
        return_transformed=True))
    compiled = dataclasses.replace(compiled, initial_point_func=_rv_dict_to_flat_array_wrapper(
        point_fn, names=value_names, shapes=[compiled.shapes[n] for n in value_names]))
    t0 = time.time()
    dt = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains,
                       cores=min(chains, 2), seed=int(random_seed), progress_bar=progressbar,
                       target_accept=target_accept)
    patch_nutpie_idata(dt, model, sampling_time=time.time() - t0)
    return _add_derived(cm, spec, dt, free)


def _add_derived(cm, spec: ModelSpec, dt: xr.DataTree, free: list[str]) -> xr.DataTree:
    """Add the reported parameters that are not free variables to the posterior."""
    derived = tuple(p for p in spec.params if p not in free)
    if not derived:
        return dt
    post = dt["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    inputs = [np.asarray(post[name].values, dtype=cm.model[name].dtype).reshape(
        chains * draws, *post[name].shape[2:]) for name in free]
    values = cm.derived_fn(derived)(*inputs)
    for name, value in zip(derived, values, strict=True):
        value = np.asarray(value).reshape(chains, draws, *np.shape(value)[1:])
        dims = ["chain", "draw", *(f"{name}_dim_{i}" for i in range(value.ndim - 2))]
        post[name] = xr.DataArray(value, dims=dims,
                                  coords={"chain": post["chain"], "draw": post["draw"]})
    groups = {path: node.to_dataset() for path, node in dt.children.items()
              if path != "posterior"}
    return xr.DataTree.from_dict({"posterior": post, **groups})


def _relabel(dt: xr.DataTree, spec: ModelSpec) -> xr.DataTree:
    """Name the parameters' dimensions and coordinates after the spec's (user's) labels."""
    post = dt["posterior"].to_dataset()
    renamed = {}
    for name in spec.params:
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        dims = list(spec.dims.get(name, ()))[: len(extra)]
        dims += [f"{name}_dim_{i}" for i in range(len(dims), len(extra))]
        da = da.rename(dict(zip(extra, dims, strict=True)))
        da = da.drop_vars([d for d in dims if d in da.coords])
        coords = {}
        for d in dims:
            labels = spec.coords.get(d)
            if labels is not None and len(labels) == da.sizes[d]:
                coords[d] = list(labels)
        renamed[name] = da.assign_coords(coords)
    new_post = xr.Dataset(renamed, attrs=post.attrs)
    groups = {path: node.to_dataset() for path, node in dt.children.items() if path != "posterior"}
    return xr.DataTree.from_dict({"posterior": new_post, **groups})


def laplace_approximation(
    spec: ModelSpec, *, draws: int = 2000, random_seed: int | None = None, start=None,
    max_iter: int = 200,
):
    """Gaussian approximation at the posterior mode in the unconstrained space.

    See :func:`bayesmle.fit` for the parametrisation and the treatment of Jacobians.
    """
    from bayesmle.inference.laplace import LaplaceResult

    draws = _check_int("draws", draws, 1)
    if random_seed is None:
        raise SpecError("`random_seed` is required for the Laplace draws; pass an int.")
    if getattr(spec.declare, "family", None) == "laplace":
        raise SpecError(
            "The Laplace approximation is not defined for least-absolute-deviations regression "
            "(noise='laplace'): its log-likelihood has no curvature in the coefficients (the "
            "Hessian is zero almost everywhere). Use method='nuts' for the posterior, or "
            "'mle'/'map' for the exact optimum."
        )
    for check in spec.posterior_checks:
        check(spec)
    point = fit_point(spec, "laplace", jacobian=True, start=start, max_iter=max_iter)
    cm = compiled_model(spec)
    x = point.extra["x"]
    h = point.extra["hess"]
    free = ~point.zero_mask if point.zero_mask is not None else np.ones(x.size, dtype=bool)
    rng = np.random.default_rng(random_seed)
    cov_x = np.zeros((x.size, x.size))
    if point.hessian_pd:
        cov_x[np.ix_(free, free)] = np.linalg.inv(h[np.ix_(free, free)])
    else:
        cov_x[:] = np.nan
    if np.all(np.isfinite(cov_x)):
        chol = np.linalg.cholesky(cov_x[np.ix_(free, free)])
        z = rng.standard_normal((draws, int(free.sum())))
        xs = np.tile(x, (draws, 1))
        xs[:, free] += z @ chol.T
        fn = cm.point_fn()
        with cm.fit_lock:
            cm.set_data(spec)
            values = [fn(xi)[3:-1] for xi in xs]
    else:
        values = []
    post = {}
    for i, name in enumerate(spec.params):
        shape = np.shape(point.params[name])
        arr = (np.stack([v[i] for v in values]) if values
               else np.full((draws, *shape), np.nan)).reshape(1, draws, *shape)
        dims = list(spec.dims.get(name, ()))[: len(shape)]
        dims += [f"{name}_dim_{k}" for k in range(len(dims), len(shape))]
        coords = {d: list(spec.coords[d]) for d in dims
                  if d in spec.coords and len(spec.coords[d]) == arr.shape[2 + dims.index(d)]}
        post[name] = xr.DataArray(arr, dims=["chain", "draw", *dims], coords=coords)
    dt = xr.DataTree.from_dict({"posterior": xr.Dataset(post)})
    return LaplaceResult.from_point(point, dt)
