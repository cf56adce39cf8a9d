"""Out-of-core GLM fits on Dask (``models/dask_data.py``, ``inference/dask_glm.py``).

References independent of the blockwise solver: the in-memory fit of the same model (another
code path: PyTensor graphs, internal coordinates, the separation LP), the score equations and
the observed information written out with numpy in the tests, statsmodels' GLM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.special

import bayesmle as bm
from bayesmle.errors import DataError, MLENotFoundError, SpecError
from bayesmle.inference import dask_glm

da = pytest.importorskip("dask.array")

REL = 1e-10  # the agreement with the in-memory fit


def rel_diff(a, b) -> float:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def assert_same_fit(lazy, eager, rel=REL):
    assert lazy.labels == eager.labels
    assert lazy.converged and eager.converged
    for key in eager.params:
        assert rel_diff(lazy.params[key], eager.params[key]) <= rel, key
        assert rel_diff(lazy.stderr[key], eager.stderr[key]) <= rel, key
    assert rel_diff(lazy.loglik, eager.loglik) <= rel
    assert rel_diff(lazy.logp, eager.logp) <= rel


# -- data --------------------------------------------------------------------------------------
def logistic_data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    beta = np.linspace(-0.8, 0.8, d)
    y = (rng.random(n) < scipy.special.expit(0.3 + X @ beta)).astype(float)
    return X, y


@pytest.fixture(scope="module")
def big_logistic():
    X, y = logistic_data(1_000_000, 3, seed=0)  # d = 3 throughout: one compiled structure
    lazy = bm.fit(bm.models.logistic_regression(da.from_array(X, chunks=(100_000, 3)),
                                                da.from_array(y, chunks=100_000)), "mle")
    return X, y, lazy


@pytest.fixture(scope="module")
def small_logistic():
    X, y = logistic_data(20_000, 3, seed=1)
    return X, y, bm.fit(bm.models.logistic_regression(X, y), "mle")


def lazy_logistic(X, y, chunks=5_000, **kw):
    return bm.models.logistic_regression(da.from_array(X, chunks=(chunks, X.shape[1])),
                                         da.from_array(y, chunks=chunks), **kw)


# -- agreement ---------------------------------------------------------------------------------
def test_logistic_1e6_rows_equals_in_memory_fit(big_logistic):
    X, y, lazy = big_logistic
    eager = bm.fit(bm.models.logistic_regression(X, y), "mle")
    assert_same_fit(lazy, eager)
    assert lazy.optimum.solver == "dask-newton"


def test_logistic_1e6_rows_solves_the_score_equations(big_logistic):
    X, y, lazy = big_logistic
    eta = lazy.params["intercept"] + X @ lazy.params["coef"]
    p = scipy.special.expit(eta)
    A = np.column_stack([np.ones(len(y)), X])
    score = A.T @ (y - p)
    info = A.T @ (A * (p * (1 - p))[:, None])
    # The score in standard-error units: Newton's residual step, zero at the optimum.
    step = np.linalg.solve(info, score) / np.sqrt(np.diag(np.linalg.inv(info)))
    assert np.max(np.abs(step)) < 1e-8
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    assert rel_diff(lazy.flat_stderr(), se) < 1e-10


def test_poisson_with_exposure_equals_in_memory_and_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(2)
    n = 30_000
    X = rng.normal(size=(n, 3))
    exposure = rng.uniform(0.5, 3.0, size=n)
    y = rng.poisson(exposure * np.exp(0.2 + X @ [0.3, -0.2, 0.1])).astype(float)
    lazy = bm.fit(bm.models.poisson_regression(
        da.from_array(X, chunks=(7_000, 3)), da.from_array(y, chunks=7_000),
        exposure=da.from_array(exposure, chunks=7_000)), "mle")
    eager = bm.fit(bm.models.poisson_regression(X, y, exposure=exposure), "mle")
    assert_same_fit(lazy, eager)
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(),
                 exposure=exposure).fit(tol=1e-14)
    assert rel_diff(lazy.flat_params(), ref.params) < 1e-9
    assert rel_diff(lazy.loglik, ref.llf) < 1e-12


def test_binomial_with_trials_equals_in_memory_and_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(12)
    n = 20_000
    X = rng.normal(size=(n, 3))
    t = rng.integers(1, 8, size=n).astype(float)
    k = rng.binomial(t.astype(int), scipy.special.expit(0.2 + X @ [0.4, -0.3, 0.1]))
    lazy = bm.fit(bm.models.binomial_regression(
        da.from_array(X, chunks=(6_000, 3)), da.from_array(k.astype(float), chunks=6_000),
        da.from_array(t, chunks=6_000)), "mle")
    eager = bm.fit(bm.models.binomial_regression(X, k, t), "mle")
    assert_same_fit(lazy, eager)
    ref = sm.GLM(np.column_stack([k, t - k]), sm.add_constant(X),
                 family=sm.families.Binomial()).fit(tol=1e-14)
    assert rel_diff(lazy.flat_params(), ref.params) < 1e-9
    with pytest.raises(SpecError, match="logit link only"):
        bm.models.binomial_regression(da.from_array(X, chunks=(6_000, 3)),
                                      da.from_array(k, chunks=6_000), 7, link="probit")


@pytest.mark.parametrize("sigma", [None, 1.5], ids=["sigma-estimated", "sigma-known"])
def test_linear_regression_equals_in_memory_and_least_squares(sigma):
    rng = np.random.default_rng(3)
    n = 25_000
    X = rng.normal(size=(n, 4)) * [1.0, 10.0, 0.1, 3.0]
    y = 1.0 + X @ [0.5, -0.05, 3.0, 0.2] + rng.normal(size=n)
    lazy = bm.fit(bm.models.linear_regression(da.from_array(X, chunks=(6_000, 4)),
                                              da.from_array(y, chunks=6_000), sigma=sigma),
                  "mle")
    eager = bm.fit(bm.models.linear_regression(X, y, sigma=sigma), "mle")
    assert_same_fit(lazy, eager)
    A = np.column_stack([np.ones(n), X])
    coef, rss = np.linalg.lstsq(A, y, rcond=None)[:2]
    assert rel_diff(lazy.params["coef"], coef[1:]) < 1e-12
    if sigma is None:
        assert rel_diff(lazy.params["sigma"], np.sqrt(rss[0] / n)) < 1e-12


def test_ridge_map_equals_in_memory(small_logistic):
    X, y, _ = small_logistic
    prior = bm.Normal(0.05)
    lazy = bm.fit(lazy_logistic(X, y, prior=prior), "map")
    eager = bm.fit(bm.models.logistic_regression(X, y, prior=prior), "map")
    assert_same_fit(lazy, eager)


def test_lasso_map_has_exact_zeros_and_solves_the_kkt_conditions(small_logistic):
    # Reference: the optimality conditions written out here. (The in-memory lasso MAP has
    # the same zeros and log posterior, but stops with a KKT residual of ~5e-7 on these
    # data, about 5e-10 relative in the coefficients, so it is not the reference at 1e-10.)
    X, y, _ = small_logistic
    b_scale = 0.0005
    lazy = bm.fit(lazy_logistic(X, y, prior=bm.Laplace(b_scale)), "map")
    eager = bm.fit(bm.models.logistic_regression(X, y, prior=bm.Laplace(b_scale)), "map")
    assert lazy.converged and lazy.labels == eager.labels
    zero = lazy.params["coef"] == 0
    assert zero.any() and not zero.all()
    np.testing.assert_array_equal(zero, eager.params["coef"] == 0)
    assert rel_diff(lazy.logp, eager.logp) <= REL
    b = np.concatenate([[lazy.params["intercept"]], lazy.params["coef"]])
    A = np.column_stack([np.ones(len(y)), X])
    p = scipy.special.expit(A @ b)
    score = A.T @ (y - p)
    weight = np.r_[0.0, np.full(X.shape[1], 1.0 / b_scale)]
    free = np.r_[True, ~zero]
    assert np.all(np.abs(score[~free]) < weight[~free])  # zeros: the subgradient holds 0
    info = A.T @ (A * (p * (1 - p))[:, None])
    hff = info[np.ix_(free, free)]
    step = np.linalg.solve(hff, (score - weight * np.sign(b))[free])
    se = np.sqrt(np.diag(np.linalg.inv(hff)))
    assert np.max(np.abs(step) / se) < 1e-10  # one more Newton step moves nothing


def test_elastic_net_map_solves_the_kkt_conditions(small_logistic):
    # Reference: the elastic net's optimality conditions written out here; the intercept flat.
    X, y, _ = small_logistic
    b_scale, sd = 0.0005, 0.05
    lazy = bm.fit(lazy_logistic(X, y, prior=bm.ElasticNet(b_scale, sd)), "map")
    eager = bm.fit(bm.models.logistic_regression(X, y, prior=bm.ElasticNet(b_scale, sd)), "map")
    assert lazy.converged
    zero = lazy.params["coef"] == 0
    assert zero.any() and not zero.all()
    np.testing.assert_array_equal(zero, eager.params["coef"] == 0)
    assert rel_diff(lazy.logp, eager.logp) <= REL
    b = np.concatenate([[lazy.params["intercept"]], lazy.params["coef"]])
    A = np.column_stack([np.ones(len(y)), X])
    p = scipy.special.expit(A @ b)
    l1 = np.r_[0.0, np.full(X.shape[1], 1.0 / b_scale)]
    l2 = np.r_[0.0, np.full(X.shape[1], 1.0 / sd**2)]
    score = A.T @ (y - p) - l2 * b  # gradient of the smooth part
    free = np.r_[True, ~zero]
    assert np.all(np.abs(score[~free]) < l1[~free])  # zeros: the subgradient holds 0
    hff = (A.T @ (A * (p * (1 - p))[:, None]) + np.diag(l2))[np.ix_(free, free)]
    step = np.linalg.solve(hff, (score - l1 * np.sign(b))[free])
    se = np.sqrt(np.diag(np.linalg.inv(hff)))
    assert np.max(np.abs(step) / se) < 1e-10  # one more Newton step moves nothing


def test_ridge_map_equals_scikit_learn(small_logistic):
    import sklearn.linear_model as sk
    X, y, _ = small_logistic
    tau = 0.05
    lazy = bm.fit(lazy_logistic(X, y, prior=bm.Normal(tau)), "map")
    ref = sk.LogisticRegression(C=tau**2, solver="newton-cholesky", tol=1e-12,
                                max_iter=200).fit(X, y)
    assert rel_diff(lazy.params["coef"], ref.coef_[0]) < 1e-8


def test_dask_dataframe_with_named_columns():
    import dask.dataframe as dd  # a dev dependency: never skipped
    X, y = logistic_data(12_000, 3, seed=4)
    frame = pd.DataFrame(X, columns=["age", "dose", "weight"])
    ddf = dd.from_pandas(frame, npartitions=4)
    dy = dd.from_pandas(pd.Series(y, name="y"), npartitions=4)
    lazy = bm.fit(bm.models.logistic_regression(ddf, dy), "mle")
    eager = bm.fit(bm.models.logistic_regression(frame, y), "mle")
    assert lazy.labels == ["intercept", "coef[age]", "coef[dose]", "coef[weight]"]
    assert_same_fit(lazy, eager)
    frame = dd.from_pandas(pd.DataFrame({"a": X[:100, 0], "b": ["u"] * 100}), npartitions=2)
    with pytest.raises(DataError, match=r"non-numeric column\(s\) \['b'\]"):
        bm.models.logistic_regression(frame, da.from_array(y[:100], chunks=50))


@pytest.mark.parametrize("processes", [
    False,
    pytest.param(True, marks=pytest.mark.slow),  # ~20-40 s: two workers import bayesmle
], ids=["in-process-workers", "worker-processes"])
def test_distributed_run_is_bit_identical_to_the_threaded_scheduler(processes):
    distributed = pytest.importorskip("distributed")
    import dask

    X, y = logistic_data(40_000, 3, seed=5)
    spec = lazy_logistic(X, y, chunks=8_000)
    with dask.config.set(scheduler="threads"):
        threaded = bm.fit(spec, "mle")
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                   dashboard_address=":0") as cluster,
          distributed.Client(cluster)):
        dist = bm.fit(lazy_logistic(X, y, chunks=8_000), "mle")
    assert dist.converged
    np.testing.assert_array_equal(dist.flat_params(), threaded.flat_params())
    np.testing.assert_array_equal(dist.flat_stderr(), threaded.flat_stderr())
    assert dist.loglik == threaded.loglik


# -- refusals and existence --------------------------------------------------------------------
def test_nuts_laplace_and_prior_draws_are_refused(small_logistic):
    X, y, _ = small_logistic
    spec = lazy_logistic(X, y, prior=bm.Normal(1.0), intercept_prior=bm.Normal(5.0))
    for method in ("nuts", "laplace", "prior"):
        with pytest.raises(SpecError, match=r"(?s)'mle' and 'map' only.*\.compute\(\)"):
            bm.fit(spec, method)


def test_sigma_priors_other_than_flat_are_refused(small_logistic):
    X, y, _ = small_logistic
    yl = X @ [1.0, 2.0, 3.0] + np.random.default_rng(11).normal(size=len(y))
    spec = bm.models.linear_regression(da.from_array(X, chunks=(5_000, 3)),
                                       da.from_array(yl, chunks=5_000),
                                       sigma_prior=bm.HalfNormal(1.0))
    with pytest.raises(SpecError, match="flat prior on `sigma` only"):
        bm.fit(spec, "map")


def test_bad_values_are_reported_with_their_row():
    X, y = logistic_data(1_000, 2, seed=6)
    X[637, 1] = np.nan
    with pytest.raises(DataError, match="first at row 637"):
        bm.fit(lazy_logistic(X, y, chunks=300), "mle")
    X[637, 1] = 0.0
    y[420] = 2.0
    with pytest.raises(DataError, match="row 420"):
        bm.fit(lazy_logistic(X, y, chunks=300), "mle")
    counts = np.ones(1_000)
    counts[5] = 1.5
    with pytest.raises(DataError, match="whole-number counts, but row 5"):
        bm.fit(bm.models.poisson_regression(da.from_array(X, chunks=(300, 2)),
                                            da.from_array(counts, chunks=300)), "mle")


def test_shapes_and_types_are_checked_without_computing():
    X, y = logistic_data(100, 2, seed=7)
    with pytest.raises(DataError, match="`X` has 100 rows but `y` has 99"):
        lazy_logistic(X, y[:99], chunks=50)
    with pytest.raises(DataError, match="complex"):
        bm.models.logistic_regression(da.from_array(X + 1j, chunks=50),
                                      da.from_array(y, chunks=50))
    unknown = da.from_array(X, chunks=(50, 2))
    unknown = unknown[unknown[:, 0] > -10]  # unknown chunk sizes
    with pytest.raises(DataError, match="compute_chunk_sizes"):
        bm.models.logistic_regression(unknown, da.from_array(y, chunks=50))


def test_rank_deficient_design_gives_the_in_memory_error():
    X, y = logistic_data(2_000, 3, seed=8)
    X[:, 2] = 2.0 * X[:, 0]
    with pytest.raises(MLENotFoundError) as eager:
        bm.fit(bm.models.logistic_regression(X, y), "mle")
    with pytest.raises(MLENotFoundError) as lazy:
        bm.fit(lazy_logistic(X, y, chunks=500), "mle")
    assert "{x0, x2}" in str(eager.value) and "{x0, x2}" in str(lazy.value)
    # a proper prior identifies the coefficients: the MAP exists
    res = bm.fit(lazy_logistic(X, y, chunks=500, prior=bm.Normal(1.0)), "map")
    assert res.converged


def test_single_class_and_all_zero_counts():
    X, _ = logistic_data(1_000, 2, seed=9)
    with pytest.raises(MLENotFoundError, match="single class"):
        bm.fit(lazy_logistic(X, np.ones(1_000), chunks=400), "mle")
    with pytest.raises(MLENotFoundError, match="every count of `y` is zero"):
        bm.fit(bm.models.poisson_regression(da.from_array(X, chunks=(400, 2)),
                                            da.from_array(np.zeros(1_000), chunks=400)), "mle")


def separated_data():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(3_000, 3))
    y = (X[:, 0] > 0).astype(float)  # complete separation by x0
    return X, y


def test_separation_is_confirmed_by_the_lp_when_small():
    X, y = separated_data()
    with pytest.raises(MLENotFoundError, match="separation"):
        bm.fit(lazy_logistic(X, y, chunks=1_000), "mle")
    res = bm.fit(lazy_logistic(X, y, chunks=1_000, prior=bm.Normal(1.0)), "map")
    eager = bm.fit(bm.models.logistic_regression(X, y, prior=bm.Normal(1.0)), "map")
    assert rel_diff(res.params["coef"], eager.params["coef"]) <= REL


def test_separation_above_the_size_limit_is_reported_as_indicated(monkeypatch):
    X, y = separated_data()
    monkeypatch.setattr(dask_glm, "CONFIRM_MAX_BYTES", 0)
    with pytest.raises(MLENotFoundError, match="appears not to exist.*not proven"):
        bm.fit(lazy_logistic(X, y, chunks=1_000), "mle")
