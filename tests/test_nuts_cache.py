"""nutpie's C callbacks as bayesmle compiles them (cached on disk by Numba, issue 16).

The callbacks are called directly (ctypes) and compared with the log-density and gradient
written out here with SciPy, also after the data (of another length) and the prior values were
swapped in; a fresh process with empty caches compiles them, a second one loads them from the
on-disk cache and draws exactly the same posterior.
"""

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pymc as pm
import pytest
import scipy.stats

import bayesmle as bm
from bayesmle import models
from bayesmle.inference.bound import bind

pytest.importorskip("nutpie")

ROOT = Path(__file__).resolve().parents[1]
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _gaussian(n, seed, mu_scale=10.0, sigma_scale=5.0):
    y = np.random.default_rng(seed).normal(1.0, 2.0, size=n)
    return models.gaussian(y, mu_prior=bm.Normal(mu_scale),
                           sigma_prior=bm.HalfNormal(sigma_scale)), y


def _with_spec_data(compiled, spec):
    names = {var.name for var in compiled.shared_var_keys}
    return compiled.with_data(**{k: v for k, v in spec.data_values().items() if k in names})


def _logp_grad(compiled, x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad, logp = np.empty_like(x), np.empty(())
    rc = compiled.compiled_logp_func.ctypes(
        x.size, x.ctypes.data_as(_DOUBLE_P), grad.ctypes.data_as(_DOUBLE_P),
        logp.ctypes.data_as(_DOUBLE_P), compiled.user_data.ctypes.data_as(ctypes.c_void_p))
    assert rc == 0
    return float(logp), grad


def _expand(compiled, x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(compiled.n_expanded)
    rc = compiled.compiled_expand_func.ctypes(
        x.size, out.size, x.ctypes.data_as(_DOUBLE_P), out.ctypes.data_as(_DOUBLE_P),
        compiled.user_data.ctypes.data_as(ctypes.c_void_p))
    assert rc == 0
    return out


def _scipy_logp_grad(y, mu, log_sigma, mu_scale, sigma_scale):
    """log p(mu, log sigma | y) up to a constant, by SciPy, with the log-Jacobian of exp."""
    s = np.exp(log_sigma)
    logp = (scipy.stats.norm.logpdf(y, mu, s).sum() + scipy.stats.norm.logpdf(mu, 0, mu_scale)
            + scipy.stats.halfnorm.logpdf(s, scale=sigma_scale) + log_sigma)
    d_mu = np.sum(y - mu) / s**2 - mu / mu_scale**2
    d_s = -y.size / s + np.sum((y - mu) ** 2) / s**3 - s / sigma_scale**2
    return logp, np.array([d_mu, d_s * s + 1.0])


@pytest.fixture(scope="module")
def compiled():
    spec, _ = _gaussian(30, seed=4)
    return bind(spec).compiled.nutpie_model()


def test_logp_and_gradient_equal_scipy_after_swapping_data_and_priors(compiled):
    spec, y = _gaussian(45, seed=5, mu_scale=3.0, sigma_scale=2.0)
    model = _with_spec_data(compiled, spec)
    for x in ([0.3, 0.1], [1.2, 0.8], [-2.0, -0.5]):
        logp, grad = _logp_grad(model, x)
        want, want_grad = _scipy_logp_grad(y, *x, mu_scale=3.0, sigma_scale=2.0)
        # nutpie's logp drops no constants here (PyMC's logp), so it equals SciPy's
        np.testing.assert_allclose(logp, want, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-10)


def test_expansion_adds_the_natural_scale_of_transformed_variables(compiled):
    # sampled: mu, log(sigma); stored besides them: sigma itself
    np.testing.assert_allclose(_expand(compiled, [0.5, np.log(3.0)]), [0.5, np.log(3.0), 3.0],
                               rtol=1e-14)


def _normal_known_sigma(data, priors):
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    mu = priors["mu"].rv(model, "mu")
    with model:
        pm.Normal("y_obs", mu, 2.0, observed=y)
    return model


def test_untransformed_model_expands_by_copying():
    y = np.random.default_rng(6).normal(size=12)
    spec = bm.ModelSpec(name="normal_known_sigma", declare=_normal_known_sigma,
                        data={"y": y}, priors={"mu": bm.Normal(4.0)}, params=("mu",))
    compiled = _with_spec_data(bind(spec).compiled.nutpie_model(), spec)
    assert compiled.n_expanded == compiled.n_dim == 1
    np.testing.assert_array_equal(_expand(compiled, [0.25]), [0.25])

    def want(mu):
        return (scipy.stats.norm.logpdf(y, mu, 2.0).sum() + scipy.stats.norm.logpdf(mu, 0, 4.0))

    # Differences: PyMC's Normal log-density carries a constant that differs from SciPy's by
    # ~2e-9 per observation (in every PyTensor mode); it cancels between two points.
    (logp, grad), (logp0, _) = _logp_grad(compiled, [0.25]), _logp_grad(compiled, [-1.0])
    np.testing.assert_allclose(logp - logp0, want(0.25) - want(-1.0), rtol=1e-12)
    np.testing.assert_allclose(grad, [np.sum(y - 0.25) / 4.0 - 0.25 / 16.0], rtol=1e-12)


_CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import bayesmle as bm
    from bayesmle import models
    from bayesmle.inference.bound import bind

    y = np.random.default_rng(4).normal(1.0, 2.0, size=30)
    spec = models.gaussian(y, mu_prior=bm.Normal(10.0), sigma_prior=bm.HalfNormal(5.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bm.fit(spec, "nuts", draws=30, tune=30, chains=2, random_seed=11)
    compiled = bind(spec).compiled.nutpie_model()
    print(json.dumps({
        "hits": [compiled.compiled_logp_func.cache_hits,
                 compiled.compiled_expand_func.cache_hits],
        "mu": post.datatree["posterior"]["mu"].values.ravel().tolist()}))
""")


@pytest.mark.slow  # two fresh processes, the first compiling everything with empty caches
def test_callbacks_persist_across_processes_and_give_the_same_draws(tmp_path):
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={tmp_path / 'pytensor'}",
               NUMBA_CACHE_DIR=os.fspath(tmp_path / "numba"),
               PYTHONPATH=os.pathsep.join([os.fspath(ROOT), os.environ.get("PYTHONPATH", "")]))
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                              text=True, cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert runs[0]["hits"] == [0, 0]  # empty caches: compiled, then saved
    assert runs[1]["hits"] == [1, 1]  # a fresh process loads both from disk
    assert runs[0]["mu"] == runs[1]["mu"]


# -- the gradients' shape assertions, compiled without their error message ----------------------
def _logistic(n=60, seed=8):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ [1.0, -0.5, 0.25]))).astype(float)
    return models.logistic_regression(X, y, prior=bm.Normal(2.0))


def test_gradient_shape_assertions_are_trusted_and_the_kernel_is_unchanged():
    from pytensor.tensor.shape import SpecifyShape

    from bayesmle.inference._small_matvec import SmallMatVec
    from bayesmle.inference._trusted_shapes import TrustedShape

    spec = _logistic()
    bound = bind(spec)
    compiled = _with_spec_data(bound.compiled.nutpie_model(), spec)
    ops = [type(node.op) for node in compiled.logp_func.maker.fgraph.apply_nodes]
    assert TrustedShape in ops and SpecifyShape not in ops
    assert SmallMatVec in ops  # small data: matrix-vector products as loops, not BLAS gemm
    # The reference: the engine's log-density with the Jacobian and its gradient, evaluated
    # by PyTensor's Python linker (every SpecifyShape checked), in the same coordinates.
    reference = bound.objective(jacobian=True, hessian=False)
    rng = np.random.default_rng(9)
    for _ in range(3):
        x = rng.normal(scale=0.5, size=bound.size)
        logp, grad = _logp_grad(compiled, x)
        f, g = reference(x)
        # equal up to the constant PyMC's Normal prior carries in each mode (cancels below)
        np.testing.assert_allclose(grad, -g, rtol=1e-10, atol=1e-10)
    x0, x1 = rng.normal(size=(2, bound.size))
    np.testing.assert_allclose(_logp_grad(compiled, x0)[0] - _logp_grad(compiled, x1)[0],
                               reference(x1)[0] - reference(x0)[0], rtol=1e-10, atol=1e-9)


def test_a_model_that_asserts_a_data_shape_keeps_the_checked_op():
    import pytensor.tensor as pt
    from pytensor.compile.sharedvalue import SharedVariable

    from bayesmle.inference._trusted_shapes import shapes_are_derived

    y = np.random.default_rng(10).normal(size=8)

    def declare(data, priors):
        with pm.Model() as model:
            obs = pm.Data("y", data["y"])
        mu = priors["mu"].rv(model, "mu")
        with model:
            pm.Normal("y_obs", mu, 1.0, observed=pt.specify_shape(obs, (8,)))
        return model

    spec = bm.ModelSpec(name="asserted", declare=declare, data={"y": y},
                        priors={"mu": bm.Normal(3.0)}, params=("mu",))
    model = bind(spec).compiled.model
    data = [v for v in model.named_vars.values() if isinstance(v, SharedVariable)]
    assert not shapes_are_derived(model.logp(), data)
    assert shapes_are_derived(_logistic_model_logp(), [])


def _logistic_model_logp():
    return bind(_logistic()).compiled.model.logp()


def test_small_matvec_equals_numpy_for_every_layout():
    import pytensor
    import pytensor.tensor as pt

    from bayesmle.inference._small_matvec import SmallMatVec

    a, v = pt.matrix("a", dtype="float64"), pt.vector("v", dtype="float64")
    fn = pytensor.function([a, v], SmallMatVec()(a, v), mode="NUMBA")
    rng = np.random.default_rng(12)
    base = rng.normal(size=(9, 14))
    vec = rng.normal(size=14)
    for matrix in (base, np.asfortranarray(base), base[::2, ::3], base[::-1, 2:9].T):
        w = vec[: matrix.shape[1]]
        np.testing.assert_allclose(fn(matrix, w), matrix @ w, rtol=1e-13, atol=1e-13)
