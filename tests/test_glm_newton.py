"""Closed-form Newton terms of canonical-link GLMs (``inference/glm_newton.py``).

Large bernoulli, logit-binomial and Poisson regressions (data of at least the Numba linker's
200,000 values) are fitted by closed-form ``X'WX`` Newton terms instead of the engine's
autodiff Hessian. Every check is against something independent of that code: statsmodels'
GLM (MLE and standard errors), the engine's autodiff objective and point function on the
Python linker (``BAYESMLE_LINKER=python`` makes the same spec take the engine path), and
log-likelihood terms written out in NumPy here. n * d = 200,000 (n = 20,000, d = 10): just
at the threshold, so the fits are fast.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import bayesmle as bm
from bayesmle.inference.bound import bind
from bayesmle.inference.glm_newton import loglik_terms

sm = pytest.importorskip("statsmodels.api")

N, D = 20_000, 10
TRIALS = 6


def _data(seed: int, kind: str):
    """Design, response and extras of one family (seeded)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    beta = rng.normal(0.0, 0.3, D)
    beta[:3] = 0.0  # predictors without effect: a Laplace prior's MAP sets some to exactly 0
    eta = 0.2 + X @ beta
    if kind == "logistic":
        return X, (rng.random(N) < 1.0 / (1.0 + np.exp(-eta))).astype(float), None
    if kind == "binomial":
        return X, rng.binomial(TRIALS, 1.0 / (1.0 + np.exp(-eta))).astype(float), None
    offset = rng.normal(0.0, 0.5, N)
    return X, rng.poisson(np.exp(eta + offset)).astype(float), offset


def _spec(kind: str, X, y, offset, **priors):
    if kind == "logistic":
        return bm.models.logistic_regression(X, y, **priors)
    if kind == "binomial":
        return bm.models.binomial_regression(X, y, TRIALS, **priors)
    return bm.models.poisson_regression(X, y, offset=offset, **priors)


def _statsmodels(kind: str, X, y, offset):
    exog = sm.add_constant(X)
    if kind == "logistic":
        model = sm.GLM(y, exog, family=sm.families.Binomial())
    elif kind == "binomial":
        model = sm.GLM(np.column_stack([y, TRIALS - y]), exog, family=sm.families.Binomial())
    else:
        model = sm.GLM(y, exog, family=sm.families.Poisson(), offset=offset)
    # IRLS to convergence, then Newton from there: statsmodels' IRLS reports the covariance
    # of its last weighted least-squares step, i.e. with the weights of the previous iterate
    # (1e-8 off after 4 iterations here); its Newton fit's is its Hessian at the estimate.
    irls = model.fit(tol=1e-14, maxiter=100)
    return model.fit(method="newton", start_params=irls.params, tol=1e-14, maxiter=100,
                     disp=False)


def _flat(result, name="params"):
    values = getattr(result, name)
    return np.r_[values["intercept"], values["coef"]]


def _rel(a, b) -> float:
    """Max-norm relative difference of ``a`` from ``b``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


KINDS = ("logistic", "binomial", "poisson")


@pytest.mark.parametrize("kind", KINDS)
def test_mle_matches_statsmodels(kind):
    X, y, offset = _data(1, kind)
    spec = _spec(kind, X, y, offset)
    bound = bind(spec)
    assert bound.uses_closed_form
    fit = bm.fit(spec, "mle")
    assert fit.converged
    ref = _statsmodels(kind, X, y, offset)
    np.testing.assert_allclose(_flat(fit), ref.params, rtol=1e-8, atol=0)
    np.testing.assert_allclose(_flat(fit, "stderr"), ref.bse, rtol=1e-8, atol=0)
    np.testing.assert_allclose(fit.loglik, ref.llf, rtol=1e-12)
    # neither the autodiff objective nor the point function was compiled (with Numba)
    assert not any(key[0] in ("objective", "point") for key in bound.compiled._fns)


PRIORS = {
    "normal": {"prior": bm.Normal(0.2), "intercept_prior": bm.Normal(2.0)},
    "laplace": {"prior": bm.Laplace(0.01)},
    "elastic_net": {"prior": bm.ElasticNet(0.02, 0.5), "intercept_prior": bm.Normal(3.0)},
}


@pytest.mark.parametrize(("kind", "prior"), [("logistic", "normal"), ("logistic", "laplace"),
                                             ("binomial", "elastic_net"),
                                             ("poisson", "normal"), ("poisson", "laplace")])
def test_map_matches_the_engine_path(kind, prior, monkeypatch):
    X, y, offset = _data(2, kind)
    spec = _spec(kind, X, y, offset, **PRIORS[prior])
    assert bind(spec).uses_closed_form
    ours = bm.fit(spec, "map")
    monkeypatch.setenv("BAYESMLE_LINKER", "python")  # the engine's autodiff objective
    assert not bind(spec).uses_closed_form
    ref = bm.fit(spec, "map")
    assert ours.converged and ref.converged
    np.testing.assert_allclose(_flat(ours), _flat(ref), rtol=1e-8, atol=1e-12)
    if prior == "laplace":  # the same coefficients exactly at zero
        assert np.array_equal(ours.params["coef"] == 0, ref.params["coef"] == 0)
        assert np.any(ref.params["coef"] == 0)
    se, se_ref = _flat(ours, "stderr"), _flat(ref, "stderr")
    assert np.array_equal(np.isnan(se), np.isnan(se_ref))
    ok = ~np.isnan(se_ref)
    np.testing.assert_allclose(se[ok], se_ref[ok], rtol=1e-8, atol=0)
    np.testing.assert_allclose(ours.logp, ref.logp, rtol=1e-12)


@pytest.mark.parametrize(("kind", "prior"), [("logistic", None), ("binomial", "normal"),
                                             ("poisson", "laplace"),
                                             ("logistic", "elastic_net")])
def test_terms_match_the_engines_autodiff(kind, prior, monkeypatch):
    """f, gradient, Hessian and the point evaluation at random x vs the engine's graphs."""
    monkeypatch.setenv("BAYESMLE_LINKER", "python")
    X, y, offset = _data(3, kind)
    bound = bind(_spec(kind, X, y, offset, **(PRIORS[prior] if prior else {})))
    rng = np.random.default_rng(4)
    closed = bound.objective(closed_form=True)
    engine = bound.objective(closed_form=False)
    for _ in range(3):
        x = bound.start_x() + rng.normal(0.0, 0.05, bound.size)
        for ours, ref in zip(closed(x), engine(x), strict=True):
            assert _rel(ours, ref) <= 1e-10
        ours_ev = bound.evaluate(x, closed_form=True)
        ref_ev = bound.evaluate(x, closed_form=False)
        for name in ("loglik", "logp", "logp_jacobian", "flat", "jacobian"):
            assert _rel(getattr(ours_ev, name), getattr(ref_ev, name)) <= 1e-10, name
    f, g = bound.objective(closed_form=True, hessian=False)(x)
    assert _rel(f, engine(x)[0]) <= 1e-10 and _rel(g, engine(x)[1]) <= 1e-10


def _numpy_terms(X, y, beta, offset=None):
    """Logistic log-likelihood, gradient and Hessian written out directly (with intercept)."""
    A = np.column_stack([np.ones(len(X)), X])
    eta = A @ beta + (0.0 if offset is None else offset)
    p = 1.0 / (1.0 + np.exp(-eta))
    ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return ll, A.T @ (y - p), -(A * (p * (1 - p))[:, None]).T @ A


def test_memory_layouts_and_offset_against_numpy():
    rng = np.random.default_rng(5)
    wide = rng.standard_normal((3000, 14))
    X = np.ascontiguousarray(wide[:, ::2])  # 3000 x 7
    y = (rng.random(3000) < 0.4).astype(float)
    offset = rng.normal(0.0, 0.3, 3000)
    beta = rng.normal(0.0, 0.4, 8)
    ref = _numpy_terms(X, y, beta, offset)
    layouts = {"C": X, "F": np.asfortranarray(X), "strided columns": wide[:, ::2],
               "strided rows": np.repeat(X, 2, axis=0)[::2]}
    results = {}
    for name, design in layouts.items():
        assert np.array_equal(design, X)
        results[name] = loglik_terms("bernoulli", design, y, beta, intercept=True,
                                     offset=offset)
        for ours, want in zip(results[name], ref, strict=True):
            assert _rel(ours, want) <= 1e-12, name
    for name in layouts:  # the same values read in the same order: the same bits
        for a, b in zip(results[name], results["C"], strict=True):
            assert np.array_equal(a, b), name


def test_small_data_keep_the_engine_path():
    X, y, _ = _data(6, "logistic")
    spec = bm.models.logistic_regression(X[:2000], y[:2000])
    bound = bind(spec)
    assert bound.canonical_glm() is not None and not bound.uses_closed_form


def test_threads_give_the_serial_answers():
    datasets = [_data(10 + i, "logistic") for i in range(3)]
    specs = [_spec("logistic", X, y, None, prior=bm.Normal(0.5)) for X, y, _ in datasets]
    serial = [bm.fit(s, "map") for s in specs]
    barrier = threading.Barrier(3)

    def run(spec):
        barrier.wait()
        return bm.fit(spec, "map")

    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(run, specs))
    for a, b in zip(serial, threaded, strict=True):
        assert np.array_equal(a.optimum.x, b.optimum.x)
        assert np.array_equal(_flat(a), _flat(b))
        assert np.array_equal(_flat(a, "stderr"), _flat(b, "stderr"))
        assert a.logp == b.logp


def test_the_contract_only_where_it_is_exact():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 3))
    y = (rng.random(200) < 0.5).astype(float)
    assert bm.models.logistic_regression(X, y).glm is not None
    probit = bm.models.binomial_regression(X, y, link="probit")
    assert probit.glm(probit.arrays(), probit.priors) is None
    horseshoe = bm.models.logistic_regression(X, y, prior=bm.Horseshoe(0.5))
    assert bind(horseshoe).canonical_glm() is None
    ill = X.copy()
    ill[:, 1] = ill[:, 0] + 1e-9 * rng.standard_normal(200)  # kept as a stored copy (Q)
    spec = bm.models.logistic_regression(ill, y)
    assert spec.declare.coordinates(spec.priors).stored
    assert bind(spec).canonical_glm() is None
    assert bm.models.linear_regression(X, y).glm is None  # Gaussian: its own exact paths
    softmax = bm.models.softmax_regression(X, (y + (X[:, 2] > 0)).astype(int))
    assert softmax.glm is None
