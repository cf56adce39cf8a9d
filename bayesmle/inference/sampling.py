"""NUTS: nutpie when installed (compiled once per structure), PyMC's sampler otherwise.

nutpie's two C callbacks (log-density with gradient, expansion) are generated here and cached
on disk by Numba next to PyTensor's kernels (:func:`compile_nutpie_model`), so a fresh process
with warm caches loads them instead of compiling them again.

Interruption is honest: nutpie and PyMC both stop early on Ctrl-C and *return* the draws they
have; here a KeyboardInterrupt always propagates, and a run that comes back with fewer draws
than requested raises one -- a partial posterior is never returned as a result.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time

import numpy as np
import pymc as pm
import xarray as xr

from bayesmle._validation import MAX_CHAINS, MAX_DRAWS, check_int, check_memory, check_seed
from bayesmle.errors import SpecError
from bayesmle.inference.bound import BoundModel, bind
from bayesmle.inference.posterior import PosteriorResult
from bayesmle.models.spec import ModelSpec

__all__ = ["default_sampler", "sample_nuts"]

log = logging.getLogger("bayesmle")

_SAMPLERS = ("auto", "nutpie", "pymc")
#: The NUTS DataTree carries a pointwise ``log_likelihood`` group up to this many values.
LOGLIK_MAX_VALUES = 50_000_000


def default_sampler() -> str:
    """``"nutpie"`` when installed, else ``"pymc"``."""
    return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"


#: NUTS's target acceptance rate for mixed models unless told otherwise (non-centred, yet the
#: posterior of a small group scale keeps a neck where a 0.8 step size diverges now and then;
#: Stan's and brms' advice for hierarchical models). Other models: 0.8.
MIXED_TARGET_ACCEPT = 0.95


def nuts_defaults(spec) -> dict[str, float]:
    """NUTS options a model needs unless told otherwise: mixed models and some priors.

    Mixed models sample at ``MIXED_TARGET_ACCEPT``; a prior's ``nuts_defaults`` (the
    horseshoes': ``target_accept`` 0.99, ``tune`` 2000) apply to every model that uses it; the
    largest value of each setting wins.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> X, y = np.eye(4, 2), np.arange(4.0)
    >>> nuts_defaults(bm.models.linear_regression(X, y, prior=bm.Normal(1.0)))
    {}
    >>> nuts_defaults(bm.models.linear_regression(X, y, prior=bm.Horseshoe(0.1)))
    {'target_accept': 0.99, 'tune': 2000}
    """
    out: dict[str, float] = {}
    if spec.solver == "mixed":
        out["target_accept"] = MIXED_TARGET_ACCEPT
    for prior in spec.priors.values():
        for key, value in prior.nuts_defaults.items():
            out[key] = max(out.get(key, value), value)
    return out


def _check_target_accept(value) -> float:
    try:
        ok = not isinstance(value, bool) and 0.0 < float(value) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise SpecError(f"`target_accept` must be a number in (0, 1), got {value!r}.")
    return float(value)


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
    draws = check_int("draws", draws, 1, MAX_DRAWS)
    tune = check_int("tune", tune, 0, MAX_DRAWS)
    chains = check_int("chains", chains, 1, MAX_CHAINS)
    if draws * chains > 50_000_000:
        raise SpecError(f"`draws` x `chains` = {draws * chains:,} draws would not fit in "
                        "memory; at most 50,000,000 are allowed.")
    if not isinstance(sampler, str) or sampler not in _SAMPLERS:
        raise SpecError(f"Unknown sampler {sampler!r}; valid samplers: {list(_SAMPLERS)}.")
    target_accept = _check_target_accept(target_accept)
    seed = check_seed(random_seed)
    check_memory(f"{chains} chain(s) x {draws:,} draws", chains * draws,
                 8 * 3 * spec.scalar_count(), "Ask for fewer `draws` (or `chains`).")
    for check in spec.posterior_checks:
        check(spec)
    chosen = default_sampler() if sampler == "auto" else sampler
    t0 = time.perf_counter()
    bound = bind(spec)
    cm = bound.compiled
    compile_before = cm.compile_seconds
    if chosen == "nutpie":
        dt = _sample_nutpie(bound, draws=draws, tune=tune, chains=chains, seed=seed,
                            progressbar=progressbar, target_accept=target_accept)
    else:
        dt = _sample_pymc(bound, draws=draws, tune=tune, chains=chains, seed=seed,
                          progressbar=progressbar, target_accept=target_accept)
    got = int(dt["posterior"].sizes.get("draw", 0))
    if got < draws:
        raise KeyboardInterrupt(f"NUTS was interrupted after {got} of {draws} draws.")
    dt = _with_log_likelihood(spec, _relabel(dt, spec))
    return PosteriorResult(spec=spec, method="nuts", datatree=dt,
                           seconds=time.perf_counter() - t0, sampler=chosen,
                           compile_seconds=cm.compile_seconds - compile_before,
                           requested_draws=draws, random_seed=seed)


def _free_start(bound: BoundModel) -> dict[str, np.ndarray]:
    """The builder's natural-scale starting values of the free variables."""
    model = bound.compiled.model
    return {k: np.asarray(v) for k, v in bound.spec.start_values().items()
            if k in model.named_vars and model[k] in model.free_RVs}


def _sample_nutpie(bound: BoundModel, *, draws: int, tune: int, chains: int, seed: int,
                   progressbar: bool, target_accept: float) -> xr.DataTree:
    """Sample with nutpie's model compiled once per structure, with this spec's data.

    ``pm.sample(nuts_sampler="nutpie")`` recompiles on every call (~3-8 s); here the compiled
    model is cached with the structure (and its callbacks on disk, across processes), each
    call swaps in the spec's data with nutpie's
    ``with_data`` (which copies, so calls never share state), and chains start from the
    builder's guess jittered by U(-1, 1) in the unconstrained space, as PyMC does.
    """
    import dataclasses

    import nutpie

    cm = bound.compiled
    compiled = cm.nutpie_model()
    names = {var.name for var in compiled.shared_var_keys}
    values = {k: v for k, v in bound.spec.data_values().items() if k in names}
    x0 = bound.start_x()

    def initial_point(chain_seed) -> np.ndarray:
        rng = np.random.default_rng(chain_seed)
        return x0 + rng.uniform(-1.0, 1.0, size=x0.size)

    compiled = dataclasses.replace(compiled.with_data(**values),
                                   initial_point_func=initial_point)
    t0 = time.time()
    background = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains,
                               cores=min(chains, 2), seed=seed, progress_bar=progressbar,
                               target_accept=target_accept, blocking=False)
    try:
        dt = background.wait()
    except BaseException:  # Ctrl-C included: stop the chains, never keep a partial result
        background.cancel()
        raise
    dt = _add_derived(bound, dt)
    return _with_data_groups(bound, dt, sampling_time=time.time() - t0)


def _sample_pymc(bound: BoundModel, *, draws: int, tune: int, chains: int, seed: int,
                 progressbar: bool, target_accept: float) -> xr.DataTree:
    """PyMC's NUTS on a model built for this call (``pm.sample`` compiles per call anyway)."""
    model = bound.spec.build()
    return pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                     progressbar=progressbar, model=model,
                     var_names=list(dict.fromkeys([*bound.spec.params,
                                                   *(rv.name for rv in model.free_RVs)])),
                     initvals=_free_start(bound) or None, compute_convergence_checks=False,
                     quiet=True, target_accept=target_accept)


def _add_derived(bound: BoundModel, dt: xr.DataTree) -> xr.DataTree:
    """Add the reported parameters that are not free variables to the posterior."""
    model = bound.compiled.model
    free = [rv.name for rv in model.free_RVs]
    derived = tuple(p for p in bound.spec.params if p not in free)
    if not derived:
        return dt
    post = dt["posterior"].to_dataset()
    chains, n = post.sizes["chain"], post.sizes["draw"]
    inputs = [np.asarray(post[name].values, dtype=model[name].dtype).reshape(
        chains * n, *post[name].shape[2:]) for name in free]
    for name, value in zip(derived, bound.derived(derived, inputs), strict=True):
        value = np.asarray(value).reshape(chains, n, *np.shape(value)[1:])
        dims = ["chain", "draw", *(f"{name}_dim_{i}" for i in range(value.ndim - 2))]
        post[name] = xr.DataArray(value, dims=dims,
                                  coords={"chain": post["chain"], "draw": post["draw"]})
    groups = {path: node.to_dataset() for path, node in dt.children.items()
              if path != "posterior"}
    return xr.DataTree.from_dict({"posterior": post, **groups})


def _with_data_groups(bound: BoundModel, dt: xr.DataTree, *, sampling_time: float
                      ) -> xr.DataTree:
    """Add ``observed_data`` and ``constant_data`` from *this* spec's data (as PyMC does).

    (PyMC's ``patch_nutpie_idata`` would read them from the cached model, which holds the data
    of whichever spec first compiled the structure.)
    """
    model = bound.compiled.model
    from bayesmle.models.observations import data_name

    names = {rv.name: data_name(model, rv) for rv in model.observed_RVs}
    observed = {rv: np.asarray(bound.spec.data[name], dtype=model[rv].dtype)
                for rv, name in names.items() if name in bound.spec.data}
    used = set(names.values())
    constant = {k: np.asarray(v) for k, v in bound.spec.data.items() if k not in used}

    def dataset(values):
        return xr.Dataset({k: xr.DataArray(v, dims=[f"{k}_dim_{i}" for i in range(v.ndim)])
                           for k, v in values.items()})

    groups = {path: node.to_dataset() for path, node in dt.children.items()}
    groups["posterior"] = groups["posterior"].assign_attrs(sampling_time=sampling_time)
    groups["observed_data"] = dataset(observed)
    groups["constant_data"] = dataset(constant)
    return xr.DataTree.from_dict(groups)


def _with_log_likelihood(spec: ModelSpec, dt: xr.DataTree) -> xr.DataTree:
    """Add the pointwise ``log_likelihood`` group (what ``arviz_stats.loo`` reads).

    Left out, with a log message, when it would exceed ``LOGLIK_MAX_VALUES`` values or the
    model has no observation model (``result.loo()`` and ``result.log_likelihood()`` then
    compute it, or say why they cannot).
    """
    from bayesmle.inference.predictive import ParameterDraws, loglik_dataset, setup_for

    post = dt["posterior"]
    total = int(post.sizes["chain"] * post.sizes["draw"] * (spec.nobs or 1))
    if total > LOGLIK_MAX_VALUES:
        log.info("log_likelihood group left out: %d values (> %d)", total, LOGLIK_MAX_VALUES)
        return dt
    try:
        setup = setup_for(spec, None)
    except SpecError as exc:
        log.info("log_likelihood group left out: %s", exc)
        return dt
    ds = post.to_dataset()
    draws = ParameterDraws({name: ds[name].transpose("chain", "draw", ...).to_numpy()
                            for name in spec.params}, "posterior")
    groups = {path: node.to_dataset() for path, node in dt.children.items()}
    groups["log_likelihood"] = loglik_dataset(setup, draws)
    return xr.DataTree.from_dict(groups)


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
    for name in post.data_vars:  # the free variables: what pm.sample_posterior_predictive
        if name not in renamed:  # needs to replay spec.build() (e.g. internal coordinates)
            renamed[name] = post[name]
    new_post = xr.Dataset(renamed, attrs=post.attrs)
    groups = {path: node.to_dataset() for path, node in dt.children.items() if path != "posterior"}
    return xr.DataTree.from_dict({"posterior": new_post, **groups})


# -- nutpie's model, compiled so that Numba can cache it on disk ---------------------------------
#
# ``nutpie.compile_pymc_model`` wraps PyTensor's logp/gradient kernel in a Numba ``cfunc`` that
# holds the data layout as large global arrays, so Numba can never cache it: every process
# re-types, re-inlines and re-optimises it (~6-8 s for a logistic regression, most of a first
# NUTS call). Here the two C callbacks nutpie calls are generated as source whose only globals
# are constants (sizes, offsets into nutpie's ``user_data`` record, dtypes) and PyTensor's
# cached kernel, and cached on disk under a key made of that kernel's own PyTensor cache key and
# the layout: a persistent cache across processes, keyed by structure.

_CFUNC_VERSION = "bayesmle-nutpie-cfunc-5-exact"

_LOGP_SRC = """
def nutpie_logp(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        words = numba.carray(user_data_, ({n_words},), np.uint64)
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, (1,))
{extract}
        logp_arr, grad = inner(x{args})
        logp_val = logp_arr.item()  # (a 0-d setitem would compile Numba's np.take)
        logp[0] = logp_val
        finite = True
        for i in range({n_dim}):
            out[i] = grad[i]
            finite = finite and np.isfinite(grad[i])
        if not finite:
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:  # noqa: BLE001
        return 1
    return 0
"""

_EXPAND_SRC = """
def nutpie_expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        words = numba.carray(user_data_, ({n_words},), np.uint64)
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
{extract}
        (values,) = inner(x{args})
        for i in range({n_expanded}):
            out[i] = values[i]
    except Exception:  # noqa: BLE001
        return -2
    return 0
"""

#: The expansion when nutpie stores exactly the sampled coordinates: a copy, no PyTensor kernel.
_COPY_SRC = """
def nutpie_expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_dim}:
        return -1
    x = numba.carray(x_, ({n_dim},))
    out = numba.carray(out_, ({n_dim},))
    for i in range({n_dim}):
        out[i] = x[i]
    return 0
"""


def _word_offsets(user_data: np.ndarray, key: str, ndim: int) -> tuple[int, tuple[int, ...]]:
    """Positions (in 8-byte words) of a shared array's pointer and shape in nutpie's record."""
    shared = user_data.dtype["shared"]
    base = user_data.dtype.fields["shared"][1]

    def offset(part: str) -> int:
        return base + shared.fields[part][1] + shared[part].fields[key][1]

    shape = offset("shape")
    return offset("data") // 8, tuple(shape // 8 + i for i in range(ndim))


def _cfunc(template: str, name: str, jit_fn, keys, shared_data, user_data, sig, **sizes):
    """A nutpie C callback calling PyTensor's kernel ``jit_fn`` on the shared arrays ``keys``."""
    import hashlib

    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    if user_data.dtype.itemsize % 8 or any(
            user_data.dtype["shared"][part].itemsize != 8 * len(shared_data)
            for part in ("data", "size")):
        raise TypeError(f"unexpected layout of nutpie's user_data: {user_data.dtype}")
    # (``__name__``: Numba rebuilds a cached function's environment from its module)
    lines, args, env = [], "", {"__name__": __name__, "numba": numba, "np": np,
                                "inner": jit_fn, "as_pointer": address_as_void_pointer}
    for i, key in enumerate(keys):
        value = shared_data[key]
        data, shape = _word_offsets(user_data, key, value.ndim)
        dims = "".join(f"int(words[{s}]), " for s in shape)
        env[f"dtype{i}"] = value.dtype
        lines.append(f"        shared{i} = numba.carray(as_pointer(words[{data}]), ({dims}), "
                     f"dtype{i})")
        args += f", shared{i}"
    layout = {"n_words": user_data.dtype.itemsize // 8, **sizes}
    src = template.format(extract="\n".join(lines) or "        pass", args=args, **layout)
    py_func = getattr(jit_fn, "py_func", None)
    inner_key = (CACHED_SRC_FUNCTIONS.get(py_func) if py_func is not None
                 else "none" if jit_fn is None else None)
    cache_key = None
    if inner_key is not None:
        dtypes = [str(shared_data[k].dtype) for k in keys]
        cache_key = hashlib.sha256(repr((_CFUNC_VERSION, src, inner_key, dtypes,
                                         numba.__version__)).encode()).hexdigest()
    fn = compile_numba_function_src(src, name, global_env=env, cache_key=cache_key)
    return numba.cfunc(sig, cache=cache_key is not None)(fn)


def _nuts_mode(model: pm.Model, small: bool):
    """The engine's Numba mode, with the gradients' shape assertions trusted when they may be.

    See :mod:`bayesmle.inference._trusted_shapes` (it saves compiling Numba's string
    formatting for their error messages). ``small`` (data below the engine's Numba threshold):
    matrix-vector products as plain loops (:mod:`bayesmle.inference._small_matvec`).
    """
    from pytensor.compile.sharedvalue import SharedVariable

    from bayesmle.inference._trusted_shapes import TRUST_GRADIENT_SHAPES, shapes_are_derived
    from bayesmle.inference.python_linker import NUMBA_MODE

    mode = NUMBA_MODE
    data = [v for v in model.named_vars.values() if isinstance(v, SharedVariable)]
    if shapes_are_derived(model.logp(), data):
        mode = mode.register((TRUST_GRADIENT_SHAPES, 100.0))
    if small:
        from bayesmle.inference._small_matvec import SMALL_MATVEC

        mode = mode.register((SMALL_MATVEC, 100.0))
    return mode


class _NoFastMath:
    """PyTensor's ``numba__fastmath`` off, for bayesmle's NUTS kernels, one thread at a time.

    Compiled with LLVM's fast-math flags (PyTensor's default) a kernel gave other bits in the
    process that compiled it than in the processes that loaded it from the on-disk cache, so
    NUTS draws for a seed depended on the cache state. PyTensor reads the flag from its
    configuration while it builds the kernel, so the flag is set for that time only, under a
    lock (another thread compiling PyTensor functions meanwhile gets exact arithmetic too).
    """

    _lock = threading.Lock()

    def __enter__(self):
        import pytensor

        self._lock.acquire()
        try:
            self._flags = pytensor.config.change_flags(numba__fastmath=False)
            self._flags.__enter__()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self._flags.__exit__(*exc)
        finally:
            self._lock.release()


def compile_nutpie_model(model: pm.Model, var_names: list[str], *, small: bool = False):
    """The nutpie ``CompiledPyMCModel`` of ``model``, its C callbacks cached on disk by Numba.

    Compiled without fast-math (:class:`_NoFastMath`): the same draws for a seed whether the
    kernel was compiled in this process or loaded from the cache.
    """
    with _NoFastMath():
        return _compile_nutpie_model(model, var_names, small=small)


def _compile_nutpie_model(model: pm.Model, var_names: list[str], *, small: bool = False):
    """The nutpie ``CompiledPyMCModel`` of ``model``, its C callbacks cached on disk by Numba.

    The same graphs as ``nutpie.compile_pymc_model(model, var_names=var_names)`` (nutpie's own
    ``_make_functions``: logp and gradient, the expansion to ``var_names``), the same record
    of data pointers (so ``with_data`` works unchanged); only the two C callbacks differ. Its
    initial point function refuses to run: :func:`_sample_nutpie` always sets the builder's
    jittered start. ``small``: the data are below the engine's Numba threshold (see
    :func:`_nuts_mode`).
    """
    import numba
    from nutpie.compile_pymc import (
        CompiledPyMCModel,
        _make_functions,
        _prepare_dims_and_coords,
        make_user_data,
    )

    def no_initial_point(seed):
        raise RuntimeError("bayesmle sets the initial point of every nutpie run")

    n_dim, n_expanded, logp_pt, expand_pt, initial_point, shape_info, reparam = (
        _make_functions(model, mode=_nuts_mode(model, small), compute_grad=True, join_expanded=True,
                        pymc_initial_point_fn=no_initial_point, var_names=var_names))
    shared_data, shared_keys = {}, {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var not in shared_keys:
            key = f"s{len(shared_keys)}"
            shared_data[key] = np.array(var.get_value(), order="C", copy=True)
            shared_data[key].flags.writeable = False
            shared_keys[var] = key
    user_data = make_user_data(shared_keys, shared_data)
    t = numba.types
    logp = _cfunc(_LOGP_SRC, "nutpie_logp", logp_pt.vm.jit_fn,
                  [shared_keys[v] for v in logp_pt.get_shared()], shared_data, user_data,
                  t.int64(t.uint64, t.CPointer(t.double), t.CPointer(t.double),
                          t.CPointer(t.double), t.voidptr), n_dim=n_dim)
    expand_sig = t.int64(t.uint64, t.uint64, t.CPointer(t.double), t.CPointer(t.double),
                         t.voidptr)
    if n_expanded == n_dim:  # nothing beyond the sampled coordinates is stored
        expand = _cfunc(_COPY_SRC, "nutpie_expand", None, [], shared_data, user_data,
                        expand_sig, n_dim=n_dim)
    else:
        expand = _cfunc(_EXPAND_SRC, "nutpie_expand", expand_pt.vm.jit_fn,
                        [shared_keys[v] for v in expand_pt.get_shared()], shared_data,
                        user_data, expand_sig, n_dim=n_dim, n_expanded=n_expanded)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparam)
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand,
        initial_point_func=initial_point, shared_data=shared_data,
        shared_var_keys=shared_keys, user_data=user_data, n_expanded=n_expanded,
        shape_info=shape_info, logp_func=logp_pt, expand_func=expand_pt,
        reparameterized_names=reparam)
