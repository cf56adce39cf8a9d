"""map_to_mle and sparsity_path (issue 3, items 1-2).

References: the O(1/n) theory of |MAP - MLE| (slope -1 on a log-log plot) and scikit-learn's
Lasso / l1 LogisticRegression at the mapped penalties (DESIGN.md conventions).
"""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import bayesmle as bm
from bayesmle import models, studies

NS = [40, 160, 640, 2560, 10240]


def simulate_linear(n, rng):
    X = rng.normal(size=(n, 3))
    return {"X": X, "y": 1.0 + X @ np.array([1.0, -0.5, 0.8]) + rng.normal(size=n)}


def simulate_logistic(n, rng):
    X = rng.normal(size=(n, 3))
    eta = 0.3 + X @ np.array([1.0, -0.5, 0.8])
    return {"X": X, "y": (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)}


def simulate_gaussian(n, rng):
    return {"y": rng.normal(2.0, 1.5, size=n)}


@pytest.mark.slow
@pytest.mark.parametrize("prior", [bm.Normal(1.0), bm.Laplace(1.0)], ids=["gaussian", "laplace"])
@pytest.mark.parametrize("builder,simulate", [
    (models.linear_regression, simulate_linear),
    (models.logistic_regression, simulate_logistic),
], ids=["linear", "logistic"])
def test_map_approaches_mle_at_rate_one_over_n(builder, simulate, prior):
    res = studies.map_to_mle(builder, simulate, prior, NS, reps=4, random_seed=3)
    assert res.n_failed == 0
    assert -1.25 <= res.slope <= -0.75, res.slope
    coef = res.slopes[[f"coef[x{i}]" for i in range(3)]]
    assert ((coef >= -1.25) & (coef <= -0.75)).all(), coef
    assert isinstance(res.plot(), Figure)


def test_map_to_mle_on_a_process_pool_equals_serial():
    args = (models.gaussian, simulate_gaussian, {"mu_prior": bm.Normal(0.5)}, [20, 200])
    serial = studies.map_to_mle(*args, reps=3, random_seed=11)
    with ProcessPoolExecutor(2) as pool:
        parallel = studies.map_to_mle(*args, reps=3, random_seed=11, executor=pool)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    # Gaussian mean with a Normal(0, tau) prior and flat sigma: MAP mu = n ybar / (n + s2/tau2)
    # at the joint mode; check the first replicate against that fixed point.
    row = serial.table[(serial.table["parameter"] == "mu")].iloc[0]
    sigma = serial.table[(serial.table["parameter"] == "sigma")].iloc[0]["map"]
    n = row["n"]
    assert row["map"] == pytest.approx(row["mle"] * n / (n + sigma**2 / 0.25), rel=1e-8)


def test_map_to_mle_validates_arguments():
    with pytest.raises(bm.SpecError, match="prior"):
        studies.map_to_mle(models.gaussian, simulate_gaussian, None, [10, 20])
    with pytest.raises(bm.SpecError, match="ns"):
        studies.map_to_mle(models.gaussian, simulate_gaussian, {"mu_prior": bm.Normal(1.0)},
                           [1])
    with pytest.raises(bm.SpecError, match="random_seed"):
        studies.map_to_mle(models.gaussian, simulate_gaussian, {"mu_prior": bm.Normal(1.0)},
                           [10], random_seed="1")  # None draws a seed (PyMC's rule)


@pytest.fixture(scope="module")
def diabetes_subset():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    data = sklearn_datasets.load_diabetes()
    X = data.data[:, :6] * 10.0
    return X, data.target / 50.0


def test_sparsity_path_zero_counts_match_sklearn_lasso(diabetes_subset):
    lm = pytest.importorskip("sklearn.linear_model")
    X, y = diabetes_subset
    n = len(y)
    scales = np.geomspace(0.002, 2.0, 7)
    res = studies.sparsity_path(models.linear_regression, {"X": X, "y": y}, scales,
                                nuts_at=[scales[3]], random_seed=2)
    table = res.table
    assert table["converged"].all()
    assert table["n_zero"].iloc[0] > table["n_zero"].iloc[-1]  # stronger prior, more zeros
    for _, row in table.iterrows():
        alpha = row["map:sigma"] ** 2 / (row["scale"] * n)
        ref = lm.Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
        assert row["n_zero"] == int(np.sum(ref.coef_ == 0.0)), row["scale"]
        gauss = res.coefficients("gaussian").loc[row["scale"]]
        assert np.all(gauss != 0.0)
    sampled = table.dropna(subset=["post_mean:coef[x0]"])
    assert len(sampled) == 1
    post = sampled[[f"post_mean:coef[x{i}]" for i in range(6)]].to_numpy()
    assert np.all(post != 0.0)  # the posterior mean is not sparse
    p_small = sampled[[f"p_small:coef[x{i}]" for i in range(6)]].to_numpy()
    assert np.all((p_small >= 0) & (p_small < 1))
    assert isinstance(res.plot(), Figure)


def test_sparsity_path_logistic_matches_sklearn_l1():
    lm = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5))
    eta = 0.2 + X @ np.array([1.2, -0.8, 0.0, 0.3, 0.0])
    y = (rng.random(300) < 1 / (1 + np.exp(-eta))).astype(int)
    scales = [0.005, 0.02, 0.08, 0.3]
    res = studies.sparsity_path(models.logistic_regression, {"X": X, "y": y}, scales,
                                gaussian=False)
    for _, row in res.table.iterrows():
        ref = lm.LogisticRegression(l1_ratio=1.0, C=row["scale"], solver="saga", tol=1e-12,
                                    max_iter=200_000).fit(X, y)
        assert row["n_zero"] == int(np.sum(np.abs(ref.coef_) < 1e-8)), row["scale"]
        ours = res.coefficients("map").loc[row["scale"]].to_numpy()
        np.testing.assert_allclose(ours, ref.coef_[0], atol=2e-5)


def test_sparsity_path_validates_arguments(diabetes_subset):
    X, y = diabetes_subset
    with pytest.raises(bm.SpecError, match="scales"):
        studies.sparsity_path(models.linear_regression, {"X": X, "y": y}, [0.1, -1.0])
    with pytest.raises(bm.SpecError, match="nuts_at"):
        studies.sparsity_path(models.linear_regression, {"X": X, "y": y}, [0.1], nuts_at=[0.2])
