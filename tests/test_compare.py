"""compare(): the methods side by side, against independent references."""

import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure

import bayesmle as bm
from bayesmle import models
from bayesmle.compare import compare


@pytest.fixture(scope="module")
def ridge_comparison():
    rng = np.random.default_rng(31)
    X = rng.normal(size=(50, 2))
    y = 1.0 + X @ np.array([0.8, -0.4]) + rng.normal(size=50)
    spec = models.linear_regression(X, y, prior=bm.Normal(0.5), sigma_prior=bm.HalfNormal(3.0))
    return X, y, compare(spec, draws=400, tune=400, chains=2, random_seed=5)


def test_table_columns_and_mle_against_least_squares(ridge_comparison):
    X, y, comp = ridge_comparison
    table = comp.table
    assert list(table.index) == ["intercept", "coef[x0]", "coef[x1]", "sigma"]
    for col in ("mle_estimate", "mle_stderr", "map_estimate", "map_stderr", "laplace_mode",
                "laplace_mean", "laplace_sd", "nuts_mean", "nuts_sd", "nuts_eti_0.03",
                "nuts_eti_0.97", "nuts_ess_bulk", "nuts_r_hat"):
        assert col in table, col
    A = np.column_stack([np.ones(len(y)), X])
    beta, rss, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(table["mle_estimate"].to_numpy()[:3], beta, rtol=1e-10)
    assert table.loc["sigma", "mle_estimate"] == pytest.approx(np.sqrt(rss[0] / len(y)),
                                                               rel=1e-10)
    # Ridge: the MAP slopes shrink towards zero relative to the MLE.
    assert np.all(np.abs(table["map_estimate"].to_numpy()[1:3])
                  < np.abs(table["mle_estimate"].to_numpy()[1:3]))
    assert (table["nuts_r_hat"] < 1.01).all()
    assert not comp.errors


def test_datatrees_feed_a_forest_plot(ridge_comparison):
    _, _, comp = ridge_comparison
    assert set(comp.datatrees) == {"mle", "map", "laplace", "nuts"}
    sizes = {m: dict(t["posterior"].sizes) for m, t in comp.datatrees.items()}
    assert sizes["mle"]["chain"] == sizes["nuts"]["chain"] == 2
    # The MLE's draws are its Wald distribution: sd of the draws ~ stderr.
    draws = comp.datatrees["mle"]["posterior"]["coef"].values.reshape(-1, 2)
    se = comp.table["mle_stderr"].to_numpy()[1:3]
    np.testing.assert_allclose(draws.std(axis=0), se, rtol=0.15)
    fig = comp.plot()
    assert isinstance(fig, Figure)


def test_failed_method_is_reported_not_fatal():
    y = np.ones(12, dtype=int)  # all successes: the MLE p = 1 is on the boundary
    spec = models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare(spec, methods=("mle", "map"))
    assert "mle" in comp.errors and "boundary" in comp.errors["mle"]
    # Beta(2, 2) prior, 12 successes of 12: the MAP is (12 + 1) / (12 + 2).
    assert comp.table.loc["p", "map_estimate"] == pytest.approx(13 / 14, rel=1e-10)


def test_bad_arguments():
    spec = models.gaussian(np.array([1.0, 2.0, 4.0]))
    with pytest.raises(bm.SpecError, match="methods"):
        compare(spec, methods=("mle", "bogus"))
    with pytest.raises(bm.SpecError, match="Unknown option"):
        compare(spec, methods=("mle",), draws=10)
    with pytest.raises(bm.SpecError, match="ModelSpec"):
        compare("not a spec")
