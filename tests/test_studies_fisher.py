"""Fisher information and the Cramér–Rao bound (issue 3, item 3), and the variance bias (item 4).

References are closed forms: the Fisher information per observation of each family, the exact
probability that a Bernoulli sample is all zeros or all ones, and E[σ̂²] = (n − 1)/n σ².
Monte Carlo checks are scaled by their Monte Carlo standard errors.
"""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

from bayesmle import SpecError, models, studies

# reps = 2000: the ratio's Monte Carlo sd is about sqrt(2 / reps) = 0.032, so the 10% band
# is 3.2 MC sd wide. n = 500 is the smallest n of the claim "within 10% at n >= 500"; the slow
# test adds larger n.
FAMILIES = [
    (models.gaussian, {"mu": 1.0, "sigma": 2.0}, {"mu": 1 / 4.0, "sigma": 2 / 4.0}),
    (models.bernoulli, {"p": 0.3}, {"p": 1 / (0.3 * 0.7)}),
    (models.poisson, {"rate": 2.5}, {"rate": 1 / 2.5}),
    (models.exponential, {"rate": 1.5}, {"rate": 1 / 1.5**2}),
]


@pytest.mark.parametrize(("builder", "true", "info"), FAMILIES,
                         ids=[f[0].__name__ for f in FAMILIES])
def test_variance_of_the_mle_reaches_the_cramer_rao_bound(builder, true, info):
    check_efficiency(builder, true, info, ns=[500], reps=2000)


@pytest.mark.slow
@pytest.mark.parametrize(("builder", "true", "info"), FAMILIES,
                         ids=[f[0].__name__ for f in FAMILIES])
def test_cramer_rao_ratio_at_larger_n(builder, true, info):
    check_efficiency(builder, true, info, ns=[1000, 5000], reps=2500)


def check_efficiency(builder, true, info, ns, reps):
    res = studies.fisher(builder, true, ns=ns, reps=reps, random_seed=11)
    table = res.table
    assert res.n_failed == 0
    assert set(table["parameter"]) == set(true)
    for _, row in table.iterrows():
        assert row["fisher_info"] == pytest.approx(info[row["parameter"]], rel=1e-12)
        assert row["crlb"] == pytest.approx(1 / (row["n"] * info[row["parameter"]]), rel=1e-12)
        assert abs(row["ratio"] - 1) <= 0.10, row
        # the MLE is consistent: its mean is within 4 MC se of the truth (its bias is O(1/n))
        mc_se = np.sqrt(row["var_mle"] / row["n_ok"])
        assert abs(row["mean_mle"] - row["true_value"]) <= 4 * mc_se, row
    assert list(res.ratios.columns) == list(true)
    # asymptotic normality: sqrt(n)(θ̂ − θ) has variance ≈ 1/I at the largest n
    z = res.estimates[res.estimates["n"] == ns[-1]]
    for name, group in z.groupby("parameter"):
        assert np.var(group["scaled_error"]) * info[name] == pytest.approx(1, abs=0.1)
    fig = res.plot()
    assert len(fig.axes) == 1 + len(true)


def test_failed_replicates_are_counted_and_excluded():
    # Bernoulli(p = 0.2), n = 8: the MLE does not exist when all 8 are 0 or all are 1.
    reps = 1000
    res = studies.fisher(models.bernoulli, {"p": 0.2}, ns=[8], reps=reps, random_seed=2)
    prob = 0.8**8 + 0.2**8
    se = np.sqrt(prob * (1 - prob) / reps)
    row = res.table.iloc[0]
    assert abs(row["n_failed"] / reps - prob) <= 4 * se
    assert row["n_ok"] + row["n_failed"] == reps
    assert (res.failures["status"] == "no_mle").all()
    assert len(res.estimates) == row["n_ok"]
    assert ((res.estimates["estimate"] > 0) & (res.estimates["estimate"] < 1)).all()


def test_binomial_with_trials_uses_m_over_p_q():
    res = studies.fisher(models.binomial, {"p": 0.2, "trials": 5}, ns=[400], reps=800,
                         random_seed=3)
    row = res.table.iloc[0]
    assert row["fisher_info"] == pytest.approx(5 / (0.2 * 0.8))
    assert abs(row["ratio"] - 1) <= 4 * np.sqrt(2 / 800)


def test_process_pool_gives_the_serial_numbers():
    kwargs = {"ns": [20, 50], "reps": 12, "random_seed": 5}
    serial = studies.fisher(models.poisson, {"rate": 3.0}, **kwargs)
    with ProcessPoolExecutor(2) as pool:
        parallel = studies.fisher(models.poisson, {"rate": 3.0}, executor=pool, **kwargs)
    pd.testing.assert_frame_equal(serial.table, parallel.table, check_exact=True)
    pd.testing.assert_frame_equal(serial.estimates, parallel.estimates, check_exact=True)
    b1 = studies.bias(ns=[3, 10], reps=10, random_seed=4)
    with ProcessPoolExecutor(2) as pool:
        b2 = studies.bias(ns=[3, 10], reps=10, random_seed=4, executor=pool)
    pd.testing.assert_frame_equal(b1.table, b2.table, check_exact=True)


def test_fisher_rejects_bad_inputs():
    with pytest.raises(SpecError, match="distribution builders"):
        studies.fisher(models.student_t, {"mu": 0.0}, ns=[10], reps=5)
    with pytest.raises(SpecError, match=r"must give \['mu', 'sigma'\]"):
        studies.fisher(models.gaussian, {"mu": 0.0}, ns=[10], reps=5)
    with pytest.raises(SpecError, match=r"true_params\['p'\] must be a number in \(0, 1\)"):
        studies.fisher(models.bernoulli, {"p": 1.5}, ns=[10], reps=5)
    with pytest.raises(SpecError, match="reps"):
        studies.fisher(models.poisson, {"rate": 1.0}, ns=[10], reps=1)
    with pytest.raises(SpecError, match="ns"):
        studies.fisher(models.poisson, {"rate": 1.0}, ns=[1], reps=5)


def test_variance_mle_bias_matches_theory():
    res = studies.bias(ns=[2, 5, 20], reps=1000, mu=3.0, sigma=2.0, random_seed=1)
    table = res.table.set_index("n")
    theory = np.array([(n - 1) / n * 4.0 for n in table.index])
    np.testing.assert_allclose(table["theory"], theory, rtol=1e-15)
    assert (np.abs(table["mean_var_mle"] - theory) <= 4 * table["mc_se"]).all()
    assert res.max_abs_z <= 4
    # at n = 5 the MLE is biased by (n-1)/n = 0.8: clearly below 1, consistent with 0.8
    row = table.loc[5]
    assert abs(row["ratio"] - 0.8) <= 4 * row["ratio_mc_se"]
    assert 1 - row["ratio"] > 6 * row["ratio_mc_se"]
    fig = res.plot()
    assert len(fig.axes) == 1
    with pytest.raises(SpecError, match="sigma"):
        studies.bias(ns=[5], reps=10, sigma=0.0)
