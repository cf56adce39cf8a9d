"""Parity with statsmodels on real data it ships (issue 2, item 3).

params <= 1e-6 relative, stderr <= 1e-4 relative, loglik <= 1e-6 absolute. statsmodels'
references are fitted with Newton's method and their gradient checked, since its default
optimiser can stop early (NegativeBinomial's BFGS on randhie).
"""

import numpy as np
import pytest

import bayesmle as bm

sm = pytest.importorskip("statsmodels.api")


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))


def ours_vector(res, intercept=True):
    parts = [np.atleast_1d(res.params["intercept"])] if intercept else []
    parts.append(np.ravel(res.params["coef"]))
    parts += [np.atleast_1d(res.params[k]) for k in ("alpha",) if k in res.params]
    return np.concatenate(parts)


def stderr_vector(res, intercept=True):
    parts = [np.atleast_1d(res.stderr["intercept"])] if intercept else []
    parts.append(np.ravel(res.stderr["coef"]))
    parts += [np.atleast_1d(res.stderr[k]) for k in ("alpha",) if k in res.stderr]
    return np.concatenate(parts)


def check(res, ref, ours, se):
    assert res.converged
    assert rel(ours, ref.params) <= 1e-6
    assert rel(se, ref.bse) <= 1e-4
    assert abs(res.loglik - ref.llf) <= 1e-6


def test_spector_logit():
    data = sm.datasets.spector.load_pandas()
    X, y = data.exog, data.endog
    ref = sm.Logit(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, disp=0)
    assert np.max(np.abs(ref.model.score(ref.params))) < 1e-8
    res = bm.fit(bm.models.logistic_regression(X, y), "mle")
    check(res, ref, ours_vector(res), stderr_vector(res))
    assert list(res.spec.coords["feature"]) == list(X.columns)


@pytest.fixture(scope="module")
def randhie():
    data = sm.datasets.randhie.load_pandas()
    return data.exog, data.endog


def test_randhie_poisson(randhie):
    X, y = randhie
    ref = sm.Poisson(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    assert np.max(np.abs(ref.model.score(ref.params))) < 1e-6
    res = bm.fit(bm.models.poisson_regression(X, y), "mle")
    check(res, ref, ours_vector(res), stderr_vector(res))


def test_randhie_negative_binomial_nb2(randhie):
    X, y = randhie
    # numpy inputs: statsmodels' NB indexes params positionally, which pandas 3 rejects
    ref = sm.NegativeBinomial(np.asarray(y), np.asarray(sm.add_constant(X)),
                              loglike_method="nb2").fit(
        method="newton", tol=1e-14, maxiter=200, disp=0)
    assert np.max(np.abs(ref.model.score(ref.params))) < 1e-5
    res = bm.fit(bm.models.negative_binomial_regression(X, y), "mle")
    check(res, ref, ours_vector(res), stderr_vector(res))


def test_anes96_mnlogit():
    data = sm.datasets.anes96.load_pandas()
    y = data.endog
    X = data.exog[["logpopul", "selfLR", "age", "educ", "income"]]
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    res = bm.fit(bm.models.softmax_regression(X, y), "mle")
    # statsmodels params: (p, K-1) with the constant first; ours: intercept (K-1,), coef (d, K-1)
    ours = np.vstack([res.params["intercept"][None, :], res.params["coef"]])
    se = np.vstack([res.stderr["intercept"][None, :], res.stderr["coef"]])
    assert res.converged
    assert rel(ours, ref.params) <= 1e-6
    assert rel(se, ref.bse) <= 1e-4
    assert abs(res.loglik - ref.llf) <= 1e-6
