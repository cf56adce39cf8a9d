"""predictive_gap: held-out log predictive density of plug-in and posterior predictives.

References: the conjugate known-sigma linear regression, whose posterior is exactly the
Laplace approximation, N(m, S) with S = sigma^2 (Z'Z + Lambda)^-1, m = S Z'y / sigma^2, and
whose posterior predictive of a new row z is N(z'm, z'Sz + sigma^2) -- computed here with
numpy/scipy, independently of the library.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from matplotlib.figure import Figure

import bayesmle as bm
from bayesmle import specfile, studies
from bayesmle.studies._runner import task_rngs

BETA = np.array([0.8, -0.5])
PRIORS = {"prior": bm.Normal(1.0), "intercept_prior": bm.Normal(3.0)}


def simulate(n, rng):
    X = rng.normal(size=(n, 2))
    return {"X": X, "y": 0.5 + X @ BETA + rng.normal(size=n)}


def known_sigma(X, y, **priors):
    return bm.models.linear_regression(X, y, sigma=1.0, **priors)


def simulate_gaussian(n, rng):
    return {"y": rng.normal(1.0, 2.0, size=n)}


@pytest.fixture(scope="module")
def conjugate():
    return studies.predictive_gap(known_sigma, simulate, [10, 100], prior=PRIORS, reps=40,
                                  n_test=200, methods=("map", "laplace"), laplace_draws=300,
                                  random_seed=2)


def test_table_and_summary_columns(conjugate):
    assert conjugate.table.columns.tolist() == ["n", "replicate", "method", "log_score",
                                                "status"]
    assert len(conjugate.table) == 2 * 40 * 2
    assert (conjugate.table["status"] == "ok").all() and conjugate.n_failed == 0
    assert conjugate.reference == "laplace"
    summary = conjugate.summary()
    assert summary.columns.tolist() == ["mean", "se", "reps", "gap_to_best",
                                        "gap_to_posterior", "gap_se"]
    assert summary.index.tolist() == [(10, "map"), (10, "laplace"), (100, "map"),
                                      (100, "laplace")]
    assert summary.loc[(10, "laplace"), "gap_to_posterior"] == 0.0
    assert isinstance(conjugate.plot(), Figure)
    assert isinstance(conjugate.plot(gap=True), Figure)


def test_posterior_predictive_beats_the_plug_in_at_small_n(conjugate):
    summary = conjugate.summary()
    small, large = summary.loc[(10, "map")], summary.loc[(100, "map")]
    # score(MAP) - score(posterior) < 0 by more than 2 paired standard errors at n = 10
    assert small["gap_to_posterior"] < -2 * small["gap_se"], small
    assert abs(large["gap_to_posterior"]) < abs(small["gap_to_posterior"]) / 5
    # the paired SE is the SE of the mean of the per-replicate differences
    wide = conjugate.table.pivot_table(index=["n", "replicate"], columns="method",
                                       values="log_score").loc[10]
    diff = wide["map"] - wide["laplace"]
    assert small["gap_to_posterior"] == pytest.approx(diff.mean(), rel=1e-12)
    assert small["gap_se"] == pytest.approx(diff.std(ddof=1) / np.sqrt(40), rel=1e-12)


def _closed_form(train, test):
    """MAP and posterior predictive mean log densities of the conjugate model."""
    Z = np.column_stack([np.ones(len(train["y"])), train["X"]])
    Zt = np.column_stack([np.ones(len(test["y"])), test["X"]])
    precision = Z.T @ Z + np.diag([1 / 3.0**2, 1.0, 1.0])
    S = np.linalg.inv(precision)
    m = np.linalg.solve(precision, Z.T @ train["y"])
    plug_in = scipy.stats.norm.logpdf(test["y"], Zt @ m, 1.0).mean()
    var = np.einsum("ij,jk,ik->i", Zt, S, Zt) + 1.0
    posterior = scipy.stats.norm.logpdf(test["y"], Zt @ m, np.sqrt(var)).mean()
    return plug_in, posterior


def test_scores_match_the_closed_form_of_the_conjugate_model():
    res = studies.predictive_gap(known_sigma, simulate, [10, 30], prior=PRIORS, reps=2,
                                 n_test=50, laplace_draws=20_000, random_seed=7)
    seeds = task_rngs(7, 4)
    for k, (n, rep) in enumerate([(10, 0), (10, 1), (30, 0), (30, 1)]):
        rng = np.random.default_rng(seeds[k])  # the documented streams: train, then test
        train, test = simulate(n, rng), simulate(50, rng)
        plug_in, posterior = _closed_form(train, test)
        rows = res.table[(res.table["n"] == n) & (res.table["replicate"] == rep)]
        score = rows.set_index("method")["log_score"]
        assert score["map"] == pytest.approx(plug_in, abs=1e-10)
        assert score["laplace"] == pytest.approx(posterior, abs=5e-3)
        # the MLE plug-in: least squares
        coef = np.linalg.lstsq(np.column_stack([np.ones(n), train["X"]]), train["y"],
                               rcond=None)[0]
        Zt = np.column_stack([np.ones(50), test["X"]])
        expect = scipy.stats.norm.logpdf(test["y"], Zt @ coef, 1.0).mean()
        assert score["mle"] == pytest.approx(expect, abs=1e-10)


def test_a_thread_pool_gives_the_serial_table():
    args = (bm.models.gaussian, simulate_gaussian, [8, 32])
    kwargs = {"prior": {"mu_prior": bm.Normal(1.0)}, "reps": 3, "n_test": 40,
              "laplace_draws": 200, "random_seed": 5}
    serial = studies.predictive_gap(*args, **kwargs)
    with ThreadPoolExecutor(2) as pool:
        parallel = studies.predictive_gap(*args, executor=pool, **kwargs)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    assert serial.settings["random_seed"] == 5


def test_a_failed_fit_is_a_row_with_its_error():
    def separable(n, rng):
        X = rng.normal(size=(n, 1))
        return {"X": X, "y": (X[:, 0] > 0).astype(int)}

    res = studies.predictive_gap(bm.models.logistic_regression, separable, [6], reps=1,
                                 n_test=10, methods=("mle",), random_seed=0)
    assert res.table["status"].tolist() == ["MLENotFoundError"]
    assert np.isnan(res.table["log_score"]).all() and res.n_failed == 1


@pytest.mark.parametrize("kwargs,name", [
    ({"ns": [1, 10]}, "ns"),
    ({"ns": "10"}, "ns"),
    ({"reps": 0}, "reps"),
    ({"reps": 10**9}, "reps"),
    ({"n_test": 0}, "n_test"),
    ({"n_test": 2.5}, "n_test"),
    ({"n_test": 10**12}, "n_test"),
    ({"methods": ("mle", "advi")}, "methods"),
    ({"methods": ()}, "methods"),
    ({"methods": "mle"}, "methods"),
    ({"methods": ("mle", "mle")}, "methods"),
    ({"prior": 1.0}, "prior"),
    ({"random_seed": "1"}, "random_seed"),
    ({"laplace_draws": 0}, "laplace_draws"),
    ({"nuts_options": 3}, "nuts_options"),
    ({"simulate": 3}, "simulate"),
    ({"builder": "linear"}, "builder"),
])
def test_bad_arguments_are_refused_with_their_name(kwargs, name):
    args = {"builder": bm.models.gaussian, "simulate": simulate_gaussian, "ns": [10],
            "reps": 1, **kwargs}
    with pytest.raises(bm.SpecError, match=f"`{name}`"):
        studies.predictive_gap(**args)


def test_simulate_must_return_a_dict():
    with pytest.raises(bm.SpecError, match="simulate"):
        studies.predictive_gap(bm.models.gaussian, lambda n, rng: rng.normal(size=n), [5],
                               reps=1, random_seed=0)


SPEC = """\
model = {{ builder = "gaussian", y = "y" }}
data = {{ source = "synthetic", n = 30, seed = 1, truth = {{ mu = 1.0, sigma = 2.0 }} }}
priors = {{ mu = "Normal(3.0)" }}
[studies.predictive_gap]
{body}
"""


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "g.toml"
    path.write_text(SPEC.format(body=body))
    return path


def test_a_spec_file_runs_the_study(tmp_path):
    spec = specfile.load(_spec(tmp_path, "ns = [10, 20]\nreps = 2\nn_test = 30\n"
                                         "laplace_draws = 100\nrandom_seed = 3"))
    kwargs = spec.study_arguments("predictive_gap")
    assert sorted(kwargs) == ["builder", "laplace_draws", "n_test", "ns", "prior",
                              "random_seed", "reps", "simulate"]
    res = studies.predictive_gap(**kwargs)
    assert len(res.table) == 2 * 2 * 3 and res.n_failed == 0


@pytest.mark.parametrize("body,name", [
    ("ns = [10]\nn_test = 0", "n_test"),
    ("ns = [10]\nreps = 1000000\nn_test = 10000000", "reps"),
    ("ns = [10]\nmethods = [\"mle\", \"vi\"]", "methods"),
])
def test_a_spec_file_with_bad_sizes_is_refused_when_read(tmp_path, body, name):
    with pytest.raises(bm.SpecError, match=f"`{name}`"):
        specfile.load(_spec(tmp_path, body))
