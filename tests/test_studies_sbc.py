"""Simulation-based calibration (issue 15, part 3).

What is checked, and against what:

* The rank-uniformity test itself, on ranks built in the test without bayesmle: ranks of
  the truth among draws of the *exact* conjugate posterior of a normal mean (uniform) and of a
  posterior with half its standard deviation (too narrow: U-shaped); the chi-square statistic
  against ``scipy.stats.chisquare`` on the same bins; tie-breaking against a uniform
  distribution on the tied positions.
* The simulated truths against their priors (Kolmogorov-Smirnov with scipy).
* NUTS gives uniform ranks on four builders with proper priors (``gaussian``, ``bernoulli``,
  ``poisson``, ``linear_regression``): p-values above 0.001 for every parameter. For an
  exact method each p-value is (close to) uniform, so a check fails by chance with
  probability about 0.001 per parameter -- 0.008 over the 8 parameters checked here -- and
  the seeds are fixed, so a pass is reproducible.
* The test's power: the Laplace approximation (Gaussian on the logit / log scale) of a
  Beta(0.5, 0.5)-Bernoulli posterior with 5 trials and of a Gamma-Poisson posterior with 3
  counts is detected as miscalibrated (p < 0.001), in the directions the closed forms predict.
* Serial, thread-pool and process-pool runs give identical numbers.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import bayesmle as bm
from bayesmle import models, studies
from bayesmle.errors import ConvergenceError, ConvergenceWarning, DataError, PriorError, SpecError
from bayesmle.studies.sbc_ranks import chi2_uniformity, default_bins, ecdf_band, rank_of

# NUTS settings of the calibration checks: 99 ranked draws, thinned 1 in 4 from one chain.
NUTS = {"draws": 99, "fit_options": {"chains": 1, "tune": 300}}


# -- the uniformity test on ranks made without bayesmle ----------------------------------------
def _normal_mean_ranks(sims, draws, sd_factor, seed):
    """Ranks of mu among draws of N(y/2, 1/2) * sd_factor: mu ~ N(0, 1), y | mu ~ N(mu, 1)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=sims)
    y = rng.normal(mu, 1.0)
    post = rng.normal(y[:, None] / 2, np.sqrt(0.5) * sd_factor, size=(sims, draws))
    return (post < mu[:, None]).sum(axis=1)


def test_uniformity_test_accepts_exact_and_rejects_narrow_posteriors():
    exact = _normal_mean_ranks(500, 99, 1.0, seed=10)
    narrow = _normal_mean_ranks(500, 99, 0.5, seed=11)
    _, p_exact = chi2_uniformity(exact, 99, 20)
    chi2_narrow, p_narrow = chi2_uniformity(narrow, 99, 20)
    assert p_exact > 0.001
    assert p_narrow < 1e-6
    # the statistic is Pearson's on 20 equal bins of width 5
    counts = np.bincount(narrow // 5, minlength=20)
    ref = scipy.stats.chisquare(counts)
    assert chi2_narrow == pytest.approx(ref.statistic, rel=1e-12)
    assert p_narrow == pytest.approx(ref.pvalue, rel=1e-9)
    # the simultaneous band: the exact ranks stay inside, the U-shaped ones leave it
    rng = np.random.default_rng(0)
    assert ecdf_band(exact, 99, rng).inside
    assert not ecdf_band(narrow, 99, rng).inside


def test_exactly_uniform_ranks_and_bins():
    assert chi2_uniformity(np.repeat(np.arange(100), 3), 99, 10) == (0.0, 1.0)
    assert default_bins(99, 100) == 20 and default_bins(99, 40) == 5
    assert default_bins(100, 1000) == 0  # 101 is prime
    with pytest.raises(SpecError, match="divide"):
        chi2_uniformity(np.arange(100), 99, 7)


def test_ties_are_broken_uniformly():
    rng = np.random.default_rng(5)
    draws = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # one below, three tied: ranks 1..4
    ranks = np.array([rank_of(draws, 1.0, rng) for _ in range(4000)])
    counts = np.bincount(ranks, minlength=6)
    assert counts[0] == counts[5] == 0
    assert scipy.stats.chisquare(counts[1:5]).pvalue > 0.001


# -- the Laplace approximation is miscalibrated on small samples -------------------------------
@pytest.fixture(scope="module")
def laplace_bernoulli():
    return studies.sbc(models.bernoulli, {"y": np.zeros(5)},
                       priors={"p_prior": bm.Beta(0.5, 0.5)}, sims=600, draws=99,
                       method="laplace", random_seed=2)


def test_truths_are_drawn_from_the_prior(laplace_bernoulli):
    truth = laplace_bernoulli.truth["p"].to_numpy()
    assert len(truth) == 600
    assert scipy.stats.kstest(truth, scipy.stats.beta(0.5, 0.5).cdf).pvalue > 0.001


def test_laplace_on_a_small_bernoulli_is_detected_as_miscalibrated(laplace_bernoulli):
    row = laplace_bernoulli.table.iloc[0]
    assert row["n_sims"] == 600 and row["n_failed"] == 0 and row["bins"] == 20
    assert row["p_value"] < 0.001 and not row["calibrated"] and not row["in_band"]
    # Beta(0.5, 0.5) puts the truth near 0 or 1, where the Gaussian on the logit scale has too
    # little mass: the truth falls outside the draws too often (U shape, sd of ranks > 0.289)
    assert row["sd_rank"] > 1 / np.sqrt(12)
    assert laplace_bernoulli.diagnostics == ()


def test_laplace_on_a_small_poisson_is_detected_as_miscalibrated():
    res = studies.sbc(models.poisson, {"y": np.zeros(3)},
                      priors={"rate_prior": bm.Gamma(1.0, 1.0)}, sims=400, draws=99,
                      method="laplace", random_seed=2)
    row = res.table.iloc[0]
    assert row["p_value"] < 0.001 and not row["calibrated"]
    # The Laplace draws of log(rate) are symmetric around the mode of the Gamma(1 + S, 1 + n)
    # posterior of log(rate), log((1 + S) / (1 + n)), whereas the posterior of log(rate) is
    # left-skewed: too much mass at high rates, so the truth ranks low on average.
    assert row["mean_rank"] < 0.5


# -- NUTS is calibrated on four builders -------------------------------------------------------
def _assert_calibrated(res, labels):
    table = res.table.set_index("parameter")
    assert sorted(table.index) == sorted(labels)
    assert (table["n_sims"] + table["n_failed"] == res.settings["sims"]).all()
    assert (table["n_failed"] == 0).all()
    assert (table["p_value"] > 0.001).all(), table
    assert table["calibrated"].all()


@pytest.mark.slow
def test_nuts_is_calibrated_on_a_gaussian():
    res = studies.sbc(models.gaussian, {"y": np.zeros(8)},
                      priors={"mu_prior": bm.Normal(2.0, 1.0),
                              "sigma_prior": bm.HalfNormal(1.0)},
                      sims=100, random_seed=11, **NUTS)
    _assert_calibrated(res, ["mu", "sigma"])


@pytest.mark.slow
def test_nuts_is_calibrated_on_a_bernoulli():
    res = studies.sbc(models.bernoulli, {"y": np.zeros(10)},
                      priors={"p_prior": bm.Beta(2.0, 2.0)}, sims=100, random_seed=12, **NUTS)
    _assert_calibrated(res, ["p"])


@pytest.mark.slow
def test_nuts_is_calibrated_on_a_poisson():
    res = studies.sbc(models.poisson, {"y": np.zeros(6)},
                      priors={"rate_prior": bm.Gamma(2.0, 1.0)}, sims=100, random_seed=13,
                      **NUTS)
    _assert_calibrated(res, ["rate"])


@pytest.mark.slow
def test_nuts_is_calibrated_on_a_linear_regression():
    X = np.random.default_rng(0).normal(size=(15, 2))
    res = studies.sbc(models.linear_regression, {"X": X, "y": np.zeros(15)},
                      priors={"prior": bm.Normal(1.0), "intercept_prior": bm.Normal(2.0),
                              "sigma_prior": bm.HalfNormal(1.0)},
                      sims=100, random_seed=14, **NUTS)
    _assert_calibrated(res, ["intercept", "coef[x0]", "coef[x1]", "sigma"])


# -- executors, records, validation ------------------------------------------------------------
def test_thread_pool_gives_the_serial_nuts_numbers():
    kwargs = {"priors": {"p_prior": bm.Beta(2.0, 2.0)}, "sims": 4, "draws": 19,
              "random_seed": 4, "fit_options": {"tune": 100}}
    serial = studies.sbc(models.bernoulli, {"y": np.zeros(10)}, **kwargs)
    with ThreadPoolExecutor(2) as pool:
        parallel = studies.sbc(models.bernoulli, {"y": np.zeros(10)}, executor=pool, **kwargs)
    pd.testing.assert_frame_equal(serial.ranks, parallel.ranks, check_exact=True)
    pd.testing.assert_frame_equal(serial.table, parallel.table, check_exact=True)
    pd.testing.assert_frame_equal(serial.fits, parallel.fits, check_exact=True)
    assert serial.settings["thin"] == 4 and serial.settings["draws"] == 19
    assert serial.fits["min_ess"].notna().all()


@pytest.mark.slow  # spawning two workers that import PyMC and compile costs about a minute
def test_process_pool_gives_the_serial_laplace_numbers():
    kwargs = {"priors": {"mu_prior": bm.Normal(1.0), "sigma_prior": bm.HalfNormal(1.0)},
              "sims": 10, "draws": 19, "method": "laplace", "random_seed": 5}
    serial = studies.sbc(models.gaussian, {"y": np.zeros(6)}, **kwargs)
    # spawned workers: forking a process whose NUTS threads (earlier tests) may hold locks can
    # deadlock the child
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = studies.sbc(models.gaussian, {"y": np.zeros(6)}, executor=pool, **kwargs)
    pd.testing.assert_frame_equal(serial.ranks, parallel.ranks, check_exact=True)
    pd.testing.assert_frame_equal(serial.truth, parallel.truth, check_exact=True)
    assert serial.settings["random_seed"] == 5 and serial.settings["method"] == "laplace"


def test_plot_has_an_ecdf_and_a_histogram_per_parameter(laplace_bernoulli):
    fig = laplace_bernoulli.plot()
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "ECDF − uniform"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "mle"}, SpecError, "point estimate"),
    ({"method": "prior"}, SpecError, "not the posterior"),
    ({"method": "vb"}, SpecError, "Unknown method"),
    ({"bins": 7}, SpecError, "divid"),
    ({"draws": 100, "sims": 1000}, SpecError, "draws \\+ 1"),
    ({"fit_options": {"draws": 10}}, SpecError, "may not set"),
    ({"fit_options": {"tune": 10}}, SpecError, "Unknown fit option"),
    ({"sims": 1}, SpecError, "sims"),
    ({"priors": {"p_prior": bm.Beta(1.0, 1.0)}, "sims": 0}, SpecError, "sims"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    args = {"priors": {"p_prior": bm.Beta(2.0, 2.0)}, "method": "laplace", "random_seed": 0,
            **kwargs}
    with pytest.raises(error, match=match):
        studies.sbc(models.bernoulli, {"y": np.zeros(5)}, **args)


def refuses_all_failures(y, *, p_prior=None):
    """A Bernoulli builder that refuses data without a success (as a separation check would)."""
    if not np.any(y):
        raise DataError("`y` has no success.")
    return models.bernoulli(y, p_prior=p_prior)


def test_failed_fits_are_counted_and_reported():
    res = studies.sbc(refuses_all_failures, {"y": np.ones(3)},
                      priors={"p_prior": bm.Beta(1.0, 3.0)}, sims=40, draws=19,
                      method="laplace", random_seed=3)
    failed = res.fits.index[res.fits["status"] == "failed"]
    # P(no success in 3 trials) = E[(1 - p)^3] = B(1, 6) / B(1, 3) = 3/6 under Beta(1, 3)
    assert 5 <= len(failed) <= 35
    assert (res.fits.loc[failed, "message"].str.startswith("DataError")).all()
    assert res.table["n_failed"].iloc[0] == len(failed)
    assert res.table["n_sims"].iloc[0] == 40 - len(failed)
    assert not set(failed) & set(res.ranks.index)
    (diagnostic,) = res.diagnostics
    assert diagnostic.category is ConvergenceWarning
    assert f"{len(failed)} of 40" in diagnostic.message


def test_all_fits_failing_is_an_error():
    with pytest.raises(ConvergenceError, match="None of the 10"):
        studies.sbc(refuses_all_failures, {"y": np.ones(3)},
                    priors={"p_prior": bm.Beta(0.01, 50.0)}, sims=10, draws=19,
                    method="laplace", random_seed=3)


def test_improper_priors_are_refused():
    with pytest.raises(PriorError, match=r"\['mu'\]"):
        studies.sbc(models.gaussian, {"y": np.zeros(5)},
                    priors={"sigma_prior": bm.HalfNormal(1.0)}, method="laplace",
                    random_seed=0)


# -- the variational approximations run through the same study ---------------------------------
@pytest.mark.slow
def test_sbc_runs_pathfinder_and_records_every_fit():
    # Measured with 200 simulations (seed 11): p = 0.47, sd_rank 0.305 -- multi-path
    # Pathfinder's PSIS resampling corrects most of the logit-scale Gaussian's error that
    # the Laplace approximation shows on the same model (test above).
    res = studies.sbc(models.bernoulli, {"y": np.zeros(5)},
                      priors={"p_prior": bm.Beta(0.5, 0.5)}, sims=60, draws=99,
                      method="pathfinder", random_seed=11)
    row = res.table.iloc[0]
    assert row["n_sims"] == 60 and row["n_failed"] == 0
    ranks = res.ranks["p"].to_numpy()
    assert ranks.min() >= 0 and ranks.max() <= 99
    assert 0.0 <= row["p_value"] <= 1.0
    truth = res.truth["p"].to_numpy()
    assert scipy.stats.kstest(truth, scipy.stats.beta(0.5, 0.5).cdf).pvalue > 0.001
