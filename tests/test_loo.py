"""Leave-one-out cross-validation (``result.loo()``) against independent closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import scipy.stats

import bayesmle as bm
from bayesmle.errors import MLENotFoundError, SpecError
from bayesmle.inference import loo as loo_module
from bayesmle.inference import run
from bayesmle.models.spec import ModelSpec

N_REG = 30
SIGMA_KNOWN = 1.5
TAU = 2.0  # prior sd of mu (centred at 0)
N_CONJ = 30


# ---------------------------------------------------------------------------------------------
# Linear regression: exact LOO by the hat matrix
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(N_REG, 2))
    y = 0.5 + X @ [1.0, -2.0] + rng.normal(scale=0.8, size=N_REG)
    spec = bm.models.linear_regression(pd.DataFrame(X, columns=["a", "b"]), y)
    mle = run(spec, "mle")
    return X, y, spec, mle, mle.loo()


def test_mle_regression_loo_matches_hat_matrix(regression):
    X, y, _, mle, res = regression
    Z = np.column_stack([np.ones(N_REG), X])
    beta = np.linalg.lstsq(Z, y, rcond=None)[0]
    e = y - Z @ beta
    h = np.einsum("ij,ji->i", Z, np.linalg.solve(Z.T @ Z, Z.T))
    loo_pred = y - e / (1 - h)
    rss_minus = e @ e - e**2 / (1 - h)
    sigma_minus = np.sqrt(rss_minus / (N_REG - 1))
    elpd_i = scipy.stats.norm.logpdf(y, loo_pred, sigma_minus)
    assert res.kind == "exact" and res.method == "mle" and res.n_refits == N_REG
    assert res.warning is None
    np.testing.assert_allclose(res.pointwise["loo_mean"], loo_pred, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.pointwise["elpd"], elpd_i, rtol=0, atol=1e-8)
    assert res.elpd == pytest.approx(elpd_i.sum(), abs=1e-8)
    assert res.se == pytest.approx(np.sqrt(N_REG * np.var(elpd_i)), abs=1e-8)
    lpd = scipy.stats.norm.logpdf(y, Z @ beta, np.sqrt(e @ e / N_REG)).sum()
    assert res.p == pytest.approx(lpd - elpd_i.sum(), abs=1e-8)
    assert res.aic_elpd == -mle.aic / 2
    assert list(res.to_series().index)[:3] == ["method", "kind", "elpd"]
    assert "exact" in repr(res)


def test_kfold_beyond_exact_limit(regression, monkeypatch):
    *_, mle, exact = regression
    monkeypatch.setattr(loo_module, "EXACT_LOO_MAX_N", 10)
    res = mle.loo(random_seed=3)
    assert res.kind == "kfold" and res.n_refits == loo_module.KFOLD_K
    assert np.isfinite(res.elpd) and np.all(np.isfinite(res.pointwise["elpd"]))
    # 10 folds train on 27 of 30 rows: slightly more pessimistic than exact LOO, and close.
    assert abs(res.elpd - exact.elpd) < 2.0
    assert mle.loo(random_seed=3).elpd == res.elpd  # the split is seeded


def test_failed_refit_is_reported_not_dropped():
    y = np.array([1, 1, 1, 0, 1, 1, 0, 1], dtype=float)
    mle = run(bm.models.bernoulli(y), "mle")
    res = mle.loo()
    # Without either of rows 3 and 6 the data still hold a 0: every refit works.
    assert res.warning is None and np.isfinite(res.elpd)
    y1 = np.array([1, 1, 1, 0, 1, 1], dtype=float)
    res1 = run(bm.models.bernoulli(y1), "mle").loo()
    assert np.isnan(res1.pointwise["elpd"].iloc[3]) and np.isnan(res1.elpd)
    assert np.isfinite(res1.pointwise["elpd"].drop(3)).all()
    assert "MLENotFoundError" in res1.warning and res1.n_refits == 5
    # Each finite value is the Bernoulli log-density at the MLE without that row.
    p_minus = (y1.sum() - y1[0]) / 5
    assert res1.pointwise["elpd"].iloc[0] == pytest.approx(np.log(p_minus), abs=1e-8)


# ---------------------------------------------------------------------------------------------
# Conjugate Gaussian mean, known sigma, Normal prior
# ---------------------------------------------------------------------------------------------
def _declare_known_sigma(data, priors):
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    mu = priors["mu"].rv(model, "mu")
    with model:
        # float64: a Python float would become a float32 constant (PyTensor's autocasting),
        # and log(sigma) in float32 is off by ~1e-8
        pm.Normal("y_obs", mu, np.float64(SIGMA_KNOWN), observed=y)
    return model


def _conjugate_loo(y):
    """Closed forms: the posterior of mu from the n - 1 other points, for each row."""
    m = y.size - 1
    prec = 1 / TAU**2 + m / SIGMA_KNOWN**2
    mean = ((y.sum() - y) / SIGMA_KNOWN**2) / prec
    predictive = scipy.stats.norm.logpdf(y, mean, np.sqrt(1 / prec + SIGMA_KNOWN**2))
    plug_in = scipy.stats.norm.logpdf(y, mean, SIGMA_KNOWN)  # at the MAP without row i
    return predictive, plug_in, mean


@pytest.fixture(scope="module")
def conjugate():
    y = np.random.default_rng(7).normal(1.0, SIGMA_KNOWN, size=N_CONJ)
    spec = ModelSpec(name="known_sigma", declare=_declare_known_sigma, data={"y": y},
                     priors={"mu": bm.Normal(TAU)}, params=("mu",))
    return y, spec


@pytest.fixture(scope="module")
def nuts(conjugate):
    _, spec = conjugate
    return run(spec, "nuts", draws=500, tune=500, chains=2, random_seed=11)


def test_map_exact_loo_is_the_conjugate_refit(conjugate):
    y, spec = conjugate
    res = run(spec, "map").loo()
    _, plug_in, mean = _conjugate_loo(y)
    assert res.kind == "exact" and res.aic_elpd is None
    np.testing.assert_allclose(res.pointwise["loo_mean"], mean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.pointwise["elpd"], plug_in, rtol=0, atol=1e-8)


def test_nuts_psis_loo_near_closed_form(conjugate, nuts):
    y, _ = conjugate
    exact = _conjugate_loo(y)[0]
    res = nuts.loo(random_seed=1)
    assert res.kind == "psis" and res.n_refits == 0 and res.warning is None
    assert (res.pointwise["pareto_k"] < 0.7).all()
    # One smooth parameter, 1000 draws: each elpd_i has MC error ~ 0.005 (ratio of the
    # posterior sd to the predictive sd is small), so 30 of them sum to well under 0.5.
    assert res.elpd == pytest.approx(exact.sum(), abs=0.5)
    np.testing.assert_allclose(res.pointwise["elpd"], exact, atol=0.05)


def test_nuts_refits_large_k(conjugate, nuts):
    y, _ = conjugate
    exact = _conjugate_loo(y)[0]
    res = nuts.loo(k_threshold=0.0, max_refits=1, random_seed=2)
    assert res.kind == "psis+refit" and res.n_refits == 1
    high = int((res.pointwise["pareto_k"] > 0.0).sum())  # k may be negative
    assert high >= 1
    if high > 1:
        assert "max_refits=1" in res.warning and f"{high - 1} observation(s)" in res.warning
    else:
        assert res.warning is None
    i = int(np.flatnonzero(res.pointwise["refitted"])[0])
    assert res.pointwise["elpd"].iloc[i] == pytest.approx(exact[i], abs=0.05)


def test_laplace_psis_approximate_near_closed_form(conjugate):
    y, spec = conjugate
    exact = _conjugate_loo(y)[0]
    lap = run(spec, "laplace", draws=2000, random_seed=5)
    res = lap.loo()
    assert res.kind == "psis-approximate" and res.warning is None
    # The Laplace approximation of a conjugate Gaussian mean is exact: log p - log q is
    # constant and only Monte Carlo error (~0.005 per row) remains.
    assert res.elpd == pytest.approx(exact.sum(), abs=0.3)
    assert res.elpd == pytest.approx(exact.sum(), abs=res.se)


def test_laplace_with_l1_prior_adds_the_l1_part(conjugate):
    y, spec = conjugate
    res = run(spec.with_priors(mu=bm.Laplace(TAU)), "laplace", draws=1000,
              random_seed=5).loo()
    assert res.kind == "psis-approximate" and np.isfinite(res.elpd)


# ---------------------------------------------------------------------------------------------
# subset / rebuild
# ---------------------------------------------------------------------------------------------
def test_subset_rebuilds_and_keeps_priors(regression):
    _, _, spec, *_ = regression
    sub = spec.flat().subset(np.arange(1, N_REG))
    assert sub.nobs == N_REG - 1 and sub.is_flat and sub.coords["feature"] == ("a", "b")
    shrunk = spec.with_priors(coef=bm.Normal(1.0)).subset(np.arange(5))
    assert shrunk.priors["coef"] == bm.Normal(1.0) and shrunk.nobs == 5
    with pytest.raises(SpecError, match="rows"):
        spec.subset([N_REG])


def test_subset_categorical_keeps_classes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 1))
    y = np.array(["a", "b", "c"] * 4)
    spec = bm.models.softmax_regression(X, y, prior=bm.Normal(1.0))
    sub = spec.subset(np.flatnonzero(y != "c"))
    assert sub.options["classes"] == spec.options["classes"]
    assert sub.coords["class"] == spec.coords["class"]


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "name"), [
    ({"k_threshold": -0.1}, "k_threshold"), ({"k_threshold": "0.7"}, "k_threshold"),
    ({"k_threshold": float("nan")}, "k_threshold"), ({"k_threshold": True}, "k_threshold"),
    ({"max_refits": -1}, "max_refits"), ({"max_refits": 1.5}, "max_refits"),
    ({"random_seed": -3}, "random_seed"), ({"random_seed": "x"}, "random_seed"),
])
def test_bad_arguments(regression, kwargs, name):
    *_, mle, _ = regression
    with pytest.raises(SpecError, match=name):
        mle.loo(**kwargs)


def test_prior_result_refused(conjugate):
    _, spec = conjugate
    prior = run(spec, "prior", draws=50, random_seed=0)
    with pytest.raises(SpecError, match="prior"):
        prior.loo()


def test_mle_not_found_is_typed():
    with pytest.raises(MLENotFoundError):
        run(bm.models.bernoulli([1, 1, 1]), "mle")


def test_prepared_spec_without_rebuild_is_refused(regression):
    import dataclasses

    _, _, spec, *_ = regression
    bare = dataclasses.replace(spec, rebuild=None)
    with pytest.raises(SpecError, match="rebuild"):
        bare.subset(np.arange(3))
    with pytest.raises(SpecError, match="rebuild"):
        run(bare, "mle").loo()
