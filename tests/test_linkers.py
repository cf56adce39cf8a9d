"""Small problems are evaluated by PyTensor's Python/NumPy linker, large ones compiled by Numba.

The vectorised NumPy implementations the Python linker is given for scalar ops PyTensor would
evaluate element by element are checked against mpmath; the linker choice against its rule;
fits on both linkers against statsmodels.
"""

import mpmath
import numpy as np
import pytest
from pytensor.tensor.elemwise import Elemwise

import bayesmle as bm
from bayesmle.errors import SpecError
from bayesmle.inference import engine, python_linker

sm = pytest.importorskip("statsmodels.api")


def test_softplus_matches_mpmath():
    x = np.concatenate([-np.geomspace(1e-300, 800, 200), [0.0], np.geomspace(1e-300, 800, 200)])
    ours = python_linker.softplus(x)
    ref = np.array([float(mpmath.log1p(mpmath.exp(mpmath.mpf(v)))) for v in x])
    np.testing.assert_allclose(ours, ref, rtol=4e-16, atol=0)


def test_log1mexp_matches_mpmath():
    x = -np.geomspace(1e-300, 700, 300)
    ours = python_linker.log1mexp(x)
    with mpmath.workdps(400):  # 1 - exp(-1e-300) needs 300+ digits
        ref = np.array([float(mpmath.log(1 - mpmath.exp(mpmath.mpf(v)))) for v in x])
    np.testing.assert_allclose(ours, ref, rtol=1e-15, atol=0)
    assert python_linker.log1mexp(0.0) == -np.inf


def test_trigamma_matches_mpmath():
    x = np.geomspace(1e-6, 1e6, 100)
    ref = np.array([float(mpmath.psi(1, mpmath.mpf(v))) for v in x])
    np.testing.assert_allclose(python_linker.trigamma(x), ref, rtol=1e-13)


def test_linker_rule_and_override(monkeypatch):
    monkeypatch.delenv("BAYESMLE_LINKER", raising=False)
    assert python_linker.linker_for(python_linker.NUMBA_MIN_VALUES - 1) == "python"
    assert python_linker.linker_for(python_linker.NUMBA_MIN_VALUES) == "numba"
    monkeypatch.setenv("BAYESMLE_LINKER", "numba")
    assert python_linker.linker_for(10) == "numba"
    monkeypatch.setenv("BAYESMLE_LINKER", "turbo")
    with pytest.raises(SpecError, match="BAYESMLE_LINKER.*'turbo'.*auto, python, numba"):
        python_linker.linker_for(10)


def _elementwise_loops(fn) -> list[str]:
    """Elementwise nodes the Python linker would evaluate one element at a time."""
    fgraph = fn._fn.maker.fgraph
    return [str(node.op.scalar_op) for node in fgraph.apply_nodes
            if isinstance(node.op, Elemwise) and node.op.nfunc_spec is None
            and type(node.op.scalar_op).__name__ not in ("Add", "Mul", "Cast", "Composite")]


@pytest.mark.parametrize("builder", ["logistic_regression", "negative_binomial_regression"])
def test_small_glm_objective_has_no_scalar_loops(builder, monkeypatch):
    monkeypatch.delenv("BAYESMLE_LINKER", raising=False)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    y = rng.poisson(2.0, size=50).astype(float)
    if builder == "logistic_regression":
        y = (y > 2).astype(float)
    spec = getattr(bm.models, builder)(X, y)
    cm = engine.compiled_model(spec)
    assert cm.linker == "python"
    assert _elementwise_loops(cm.objective_fn(jacobian=False, hessian=True)) == []
    assert _elementwise_loops(cm.point_fn()) == []


def _nb_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    mu = np.exp(0.5 + X @ np.array([0.4, -0.3]))
    alpha = 0.7  # NB2: var = mu + alpha mu²
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    return X, y.astype(float)


@pytest.mark.parametrize("linker", ["python", "numba"])
def test_negative_binomial_on_both_linkers_matches_statsmodels(linker, monkeypatch):
    """The Hessian of NB2 needs trigamma: vectorised SciPy (Python) or the Numba lowering."""
    monkeypatch.setenv("BAYESMLE_LINKER", linker)
    X, y = _nb_data(400, seed=3)
    ref = sm.NegativeBinomial(y, sm.add_constant(X), loglike_method="nb2").fit(
        method="newton", tol=1e-14, maxiter=200, disp=0)
    res = bm.fit(bm.models.negative_binomial_regression(X, y), "mle")
    assert engine.compiled_model(res.spec).linker == linker
    ours = np.concatenate([[res.params["intercept"]], res.params["coef"], [res.params["alpha"]]])
    np.testing.assert_allclose(ours, ref.params, rtol=1e-6)
    se = np.concatenate([[res.stderr["intercept"]], res.stderr["coef"], [res.stderr["alpha"]]])
    np.testing.assert_allclose(se, ref.bse, rtol=1e-4)
    assert abs(res.loglik - ref.llf) <= 1e-6
