"""Studies of mixed models: joint_mode, reml_bias, group_growth, shrinkage.

References, all computed here independently of the code under test: the closed-form ML and REML
estimators of the balanced one-way layout from its mean squares (Searle, Casella & McCulloch
1992, ch. 3), the fixed-effects (Neyman-Scott) MLE sqrt(SSW / n) and its expectation, a direct
scipy optimisation of the joint log-density, statsmodels' MixedLM, and the closed-form BLUP of a
balanced random-intercept model.
"""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

import bayesmle as bm
from bayesmle import studies
from bayesmle.errors import BayesMLEError
from bayesmle.models.mixed_design import MixedDesign, RandomBlock


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """Thousands of tiny linear-algebra calls: OpenBLAS threads only contend on a shared
    2-core machine (measured: 10x slower replicate studies with 2 threads)."""
    with threadpool_limits(1):
        yield


def one_way(y, codes, X=None, names=("Intercept",)):
    n = len(y)
    J = int(codes.max()) + 1
    block = RandomBlock("g", ("Intercept",), tuple(f"g{j}" for j in range(J)),
                        np.asarray(codes, dtype=np.int64), np.ones((n, 1)))
    X = np.ones((n, 1)) if X is None else X
    return MixedDesign(X, tuple(names), np.asarray(y, dtype=float), (block,))


def mean_squares(y, J, m):
    """MSB, MSW, total SS of a balanced one-way layout (rows group after group)."""
    Y = y.reshape(J, m)
    means = Y.mean(axis=1)
    ssb = m * np.sum((means - y.mean()) ** 2)
    ssw = np.sum((Y - means[:, None]) ** 2)
    return ssb / (J - 1), ssw / (J * (m - 1)), ssb + ssw


def replicate_data(seed, n_tasks, task, truth, J, m):
    """The data of one task, drawn as the studies document: b then e from the task's stream."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(n_tasks)[task])
    b = rng.normal(0.0, truth["sd"], size=J)
    e = rng.normal(0.0, truth["sigma"], size=J * m)
    return truth.get("mu", 0.0) + np.repeat(b, m) + e


# ---------------------------------------------------------------------------------------------
# joint_mode
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jm_data():
    rng = np.random.default_rng(7)
    J, m = 6, 5
    codes = np.repeat(np.arange(J), m)
    x = rng.normal(size=J * m)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.8, J)[codes] + rng.normal(0, 0.6, J * m)
    design = one_way(y, codes, np.column_stack([np.ones(J * m), x]), ("Intercept", "x"))
    return design, pd.DataFrame({"y": y, "x": x, "g": codes})


@pytest.fixture(scope="module")
def jm(jm_data):
    return studies.joint_mode(jm_data[0], sd_grid=np.geomspace(1e-4, 4.0, 36))


def _joint_by_scipy(design, sd):
    """max over (beta, b, sigma) of log N(y; X beta + b[g], sigma) + log N(b; 0, sd): the inner
    (beta, b) by least squares on the augmented system, sigma by scipy (brute, then polish)."""
    X, y = design.X, design.y
    codes = design.blocks[0].codes
    J = design.blocks[0].n_levels
    Z = np.eye(J)[codes]

    def best(log_sigma):
        sigma = np.exp(log_sigma)
        A = np.block([[X, Z], [np.zeros((J, X.shape[1])), sigma / sd * np.eye(J)]])
        theta = np.linalg.lstsq(A, np.concatenate([y, np.zeros(J)]), rcond=None)[0]
        beta, b = theta[:X.shape[1]], theta[X.shape[1]:]
        return (stats.norm.logpdf(y, X @ beta + b[codes], sigma).sum()
                + stats.norm.logpdf(b, 0.0, sd).sum())

    s0 = np.log(np.std(y))
    x0 = optimize.brute(lambda t: -best(t[0]), [(s0 - 8, s0 + 2)], Ns=400, finish=None)
    res = optimize.minimize_scalar(lambda t: -best(t), bracket=(x0 - 0.05, x0, x0 + 0.05),
                                   tol=1e-12)
    return -res.fun


def test_joint_mode_joint_density_matches_scipy(jm_data, jm):
    design = jm_data[0]
    t = jm.table
    for i in (0, 12, 24, 35):
        sd = t["sd"].iloc[i]
        assert t["joint"].iloc[i] == pytest.approx(_joint_by_scipy(design, sd), abs=1e-6)


def test_joint_density_is_unbounded_as_sd_goes_to_zero(jm):
    t = jm.table
    small = t[t["sd"] < 0.02]
    assert len(small) >= 5
    assert np.all(np.diff(small["joint"].to_numpy()) < 0)  # sd ascending: density falls
    assert jm.joint_slope == pytest.approx(-jm.n_groups, abs=1e-3)
    assert jm.n_groups == 6
    assert t["b_norm"].iloc[0] < 1e-5  # the spike: b -> 0 with sd
    assert t["joint"].iloc[0] > t["joint"].iloc[1:].max()


def test_marginal_profile_is_maximised_at_the_mle(jm_data, jm):
    frame = jm_data[1]
    sm = pytest.importorskip("statsmodels.formula.api")
    ml = sm.mixedlm("y ~ x", frame, groups="g").fit(reml=False)
    assert not jm.boundary
    assert jm.sd_hat == pytest.approx(np.sqrt(ml.cov_re.iloc[0, 0]), rel=1e-4)
    assert jm.marginal_max == pytest.approx(ml.llf, abs=1e-6)
    assert np.isfinite(jm.table["marginal"]).all()
    assert jm.table["marginal"].max() <= jm.marginal_max + 1e-9
    # sd -> 0: the fit without random effects, sigma^2 = RSS / n
    X, y = jm_data[0].X, jm_data[0].y
    rss = np.sum((y - X @ np.linalg.lstsq(X, y, rcond=None)[0]) ** 2)
    n = y.size
    assert jm.marginal_at_zero == pytest.approx(-n / 2 * (np.log(2 * np.pi * rss / n) + 1),
                                                abs=1e-8)
    assert isinstance(jm.plot(), Figure)


def test_joint_mode_marginal_maximiser_equals_fit_lmm(jm_data, jm):
    from bayesmle.inference.mixed.lmm import fit_lmm

    fit = fit_lmm(jm_data[0], "mle")
    assert jm.sd_hat == pytest.approx(float(fit.sd[0]), rel=1e-6)
    assert jm.marginal_max == pytest.approx(fit.loglik, abs=1e-8)


def test_joint_mode_boundary_fit():
    # identical group means: no between-group variation, the MLE of sd is 0
    rng = np.random.default_rng(3)
    J, m = 5, 4
    e = rng.normal(size=(J, m))
    y = (e - e.mean(axis=1, keepdims=True) + 2.0).ravel()
    res = studies.joint_mode(one_way(y, np.repeat(np.arange(J), m)),
                             sd_grid=np.geomspace(1e-3, 2.0, 12))
    n = y.size
    rss = np.sum((y - y.mean()) ** 2)
    assert res.boundary and res.sd_hat == 0.0
    assert res.marginal_max == pytest.approx(-n / 2 * (np.log(2 * np.pi * rss / n) + 1),
                                             abs=1e-8)
    assert res.joint_slope == pytest.approx(-J, abs=1e-3)


def test_joint_mode_validates_arguments(jm_data):
    design = jm_data[0]
    with pytest.raises(bm.SpecError, match="sd_grid"):
        studies.joint_mode(design, sd_grid=[0.1, -1.0, 2.0])
    with pytest.raises(bm.SpecError, match="sd_grid"):
        studies.joint_mode(design, sd_grid=[0.1, 0.2])
    with pytest.raises(bm.SpecError, match="model"):
        studies.joint_mode(42)
    two = MixedDesign(design.X, design.fixed_names, design.y,
                      (design.blocks[0], design.blocks[0]))
    with pytest.raises(bm.SpecError, match="one scalar random-effects term"):
        studies.joint_mode(two)
    with pytest.raises(bm.SpecError, match="data"):
        studies.joint_mode("y ~ x + (1 | g)", data={"y": [1.0]})


# ---------------------------------------------------------------------------------------------
# reml_bias
# ---------------------------------------------------------------------------------------------
RB_SEED, RB_REPS = 11, 40
RB_TRUTH = {"mu": 1.0, "sd": 0.3, "sigma": 1.0}


@pytest.fixture(scope="module")
def rb():
    return studies.reml_bias(RB_TRUTH, groups=6, group_size=4, reps=RB_REPS,
                             random_seed=RB_SEED)


def test_reml_bias_estimates_equal_the_closed_forms(rb):
    J, m = 6, 4
    n = J * m
    est = rb.estimates.set_index(["replicate", "method"])
    n_boundary = 0
    for r in range(RB_REPS):
        y = replicate_data(RB_SEED, RB_REPS, r, RB_TRUTH, J, m)
        msb, msw, sst = mean_squares(y, J, m)
        reml_sd2 = (msb - msw) / m
        ml_sd2 = ((J - 1) / J * msb - msw) / m
        expect = {"reml": (reml_sd2, msw) if reml_sd2 > 0 else (0.0, sst / (n - 1)),
                  "mle": (ml_sd2, msw) if ml_sd2 > 0 else (0.0, sst / n)}
        for method, (sd2, s2) in expect.items():
            row = est.loc[(r, method)]
            assert row["status"] == "ok"
            assert row["sd2"] == pytest.approx(sd2, abs=1e-6), (r, method)
            assert row["sigma2"] == pytest.approx(s2, abs=1e-6), (r, method)
            assert bool(row["boundary"]) == (sd2 == 0.0), (r, method)
            n_boundary += sd2 == 0.0
    assert 0 < n_boundary < 2 * RB_REPS  # both cases exercised
    assert rb.boundary_share_mle >= rb.boundary_share_reml  # ML's sd^2 <= REML's always
    assert isinstance(rb.plot(), Figure)


def test_reml_is_less_biased_than_ml_for_the_group_variance():
    # J = 3 groups of 20 with sd = 1, sigma = 0.3: P(ML boundary) = P(F(2, 57) < 3/2 / 223)
    # < 0.01 (scipy), and a boundary fit moves sd^2 from a negative value of order sigma^2 / m
    # to 0, so truncation shifts the means by < 1e-3, far below their MCSE (~0.07): the
    # expectations are those of the untruncated formulas. E[MSB] = m sd^2 + sigma^2, E[MSW] =
    # sigma^2, hence E[ML sd^2] = sd^2 - (sd^2 + sigma^2 / m) / J and E[REML sd^2] = sd^2.
    J, m, sd, sigma = 3, 20, 1.0, 0.3
    assert stats.f.cdf(J / (J - 1) / (1 + m * sd**2 / sigma**2), J - 1, J * (m - 1)) < 0.01
    res = studies.reml_bias({"sd": sd, "sigma": sigma}, groups=J, group_size=m, reps=100,
                            random_seed=5)
    t = res.table.set_index(["method", "parameter"])
    assert max(res.boundary_share_mle, res.boundary_share_reml) <= 0.03
    ml, reml = t.loc[("mle", "sd2")], t.loc[("reml", "sd2")]
    assert abs(ml["mean"] - (sd**2 - (sd**2 + sigma**2 / m) / J)) < 4 * ml["bias_mcse"]
    assert abs(reml["bias"]) < 4 * reml["bias_mcse"]
    assert ml["bias"] + 3 * ml["bias_mcse"] < 0  # ML biased down, significantly
    assert abs(reml["bias"]) < abs(ml["bias"])
    assert res.bias_sd2_mle == ml["bias"] and res.bias_sd2_reml == reml["bias"]
    for method in ("mle", "reml"):  # sigma^2 = MSW, unbiased, for both
        s = t.loc[(method, "sigma2")]
        assert abs(s["bias"]) < 4 * s["bias_mcse"]


def test_reml_bias_validates_arguments():
    with pytest.raises(bm.SpecError, match="truth"):
        studies.reml_bias({"sd": 1.0}, groups=3, group_size=3)
    with pytest.raises(bm.SpecError, match=r"truth\['sigma'\]"):
        studies.reml_bias({"sd": 1.0, "sigma": 0.0}, groups=3, group_size=3)
    with pytest.raises(bm.SpecError, match="groups"):
        studies.reml_bias({"sd": 1.0, "sigma": 1.0}, groups=1, group_size=3)
    with pytest.raises(bm.SpecError, match="group_size"):
        studies.reml_bias({"sd": 1.0, "sigma": 1.0}, groups=3, group_size=2.5)
    with pytest.raises(bm.SpecError, match="reps"):
        studies.reml_bias({"sd": 1.0, "sigma": 1.0}, groups=3, group_size=3, reps=1)


# ---------------------------------------------------------------------------------------------
# group_growth
# ---------------------------------------------------------------------------------------------
GG_SEED, GG_REPS, GG_SIZES = 1, 14, [10, 20, 40]
GG_TRUTH = {"mu": 0.5, "sd": 1.0, "sigma": 1.0}
GG_J, GG_M = 10, 4  # fixed J while m grows, fixed m while J grows


@pytest.fixture(scope="module")
def gg():
    return studies.group_growth(GG_TRUTH, sizes=GG_SIZES, base_groups=GG_J, base_size=GG_M,
                                reps=GG_REPS, random_seed=GG_SEED)


def test_group_growth_fixed_effects_sigma_is_the_closed_form(gg):
    t = gg.table
    n_tasks = 2 * len(GG_SIZES) * GG_REPS
    layouts = [(s, GG_M) for s in GG_SIZES] + [(GG_J, s) for s in GG_SIZES]
    for i, (J, m) in enumerate(layouts):
        for r in (0, GG_REPS - 1):
            y = replicate_data(GG_SEED, n_tasks, i * GG_REPS + r, GG_TRUTH, J, m)
            Y = y.reshape(J, m)
            ssw = np.sum((Y - Y.mean(axis=1, keepdims=True)) ** 2)
            rows = t[(t["groups"] == J) & (t["group_size"] == m) & (t["replicate"] == r)
                     & (t["regime"] == ("groups" if i < len(GG_SIZES) else "group_size"))]
            rows = rows.set_index("parameter")
            assert rows.loc["sigma", "fixed_effects"] == pytest.approx(np.sqrt(ssw / (J * m)),
                                                                       rel=1e-12)
            assert rows.loc["mu", "mle"] == pytest.approx(y.mean(), abs=1e-7)  # balanced: ybar
    assert (t["status"] == "ok").all()


def test_group_growth_neyman_scott(gg):
    ns = gg.neyman_scott
    # E[SSW / n] = sigma^2 (m - 1) / m exactly (SSW ~ sigma^2 chi2 with J (m - 1) df)
    z = (ns["fixed_var_ratio"] - ns["group_size"].map(lambda m: (m - 1) / m)) \
        / ns["fixed_var_ratio_mcse"]
    assert (z.abs() < 4).all(), z
    assert gg.ns_theory == pytest.approx(np.sqrt((GG_M - 1) / GG_M))
    big = ns[ns["regime"] == "groups"].iloc[-1]  # J = 40, m = 4: far below sigma
    assert 1 - big["fixed_var_ratio"] > 5 * big["fixed_var_ratio_mcse"]
    # the marginal MLE of sigma^2 (MSW in the interior) is unbiased
    t = gg.table
    sig = t[(t["parameter"] == "sigma") & (t["regime"] == "groups") & (t["groups"] == 40)]
    v = sig["mle"].to_numpy() ** 2
    assert abs(v.mean() - 1.0) < 4 * v.std(ddof=1) / np.sqrt(v.size)


def test_group_growth_slopes(gg):
    s, se = gg.slopes, gg.slopes_mcse
    for p in ("mu", "sd", "sigma"):  # J grows: everything at rate 1/J
        assert abs(s.loc[p, "groups"] + 1) < 0.25 + 3 * se.loc[p, "groups"], (p, s, se)
        assert s.loc[p, "groups"] + 3 * se.loc[p, "groups"] < 0
    for p in ("mu", "sd"):  # m grows at fixed J: no gain (information from J group means)
        assert abs(s.loc[p, "group_size"]) < 0.15 + 3 * se.loc[p, "group_size"], (p, s, se)
    assert abs(s.loc["sigma", "group_size"] + 1) < 0.1 + 3 * se.loc["sigma", "group_size"]
    assert isinstance(gg.plot(), Figure)
    assert set(gg.summary()["parameter"]) == {"mu", "sd", "sigma"}


def test_group_growth_validates_arguments():
    truth = {"sd": 1.0, "sigma": 1.0}
    with pytest.raises(bm.SpecError, match="grow"):
        studies.group_growth(truth, grow="levels")
    with pytest.raises(bm.SpecError, match="sizes"):
        studies.group_growth(truth, sizes=[1, 4])
    with pytest.raises(bm.SpecError, match="prior"):
        studies.group_growth(truth, prior={"slope": bm.Normal(1.0)})
    with pytest.raises(bm.SpecError, match="base_size"):
        studies.group_growth(truth, base_size=1)


# ---------------------------------------------------------------------------------------------
# shrinkage
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def balanced_frame():
    rng = np.random.default_rng(21)
    J, m = 6, 5
    levels = [f"s{j}" for j in range(J)]
    y = 2.0 + np.repeat(rng.normal(0, 0.8, J), m) + rng.normal(0, 1.0, J * m)
    return pd.DataFrame({"y": y, "g": np.repeat(levels, m)}), m


def test_shrinkage_balanced_reml_is_the_closed_form_blup(balanced_frame):
    frame, m = balanced_frame
    res = studies.shrinkage("y ~ 1 + (1 | g)", frame, methods=("reml",))
    fit = bm.inference.run(bm.models.glm("y ~ 1 + (1 | g)", frame), "reml")
    sd, sigma = float(np.atleast_1d(fit.params["sd"])[0]), float(fit.params["sigma"])
    sm = pytest.importorskip("statsmodels.formula.api")
    ref = sm.mixedlm("y ~ 1", frame, groups="g").fit(reml=True)
    assert sd == pytest.approx(np.sqrt(ref.cov_re.iloc[0, 0]), rel=1e-4)
    assert sigma == pytest.approx(np.sqrt(ref.scale), rel=1e-4)
    means = frame.groupby("g")["y"].mean()
    mu_hat = frame["y"].mean()  # balanced: the GLS mean is the grand mean
    lam = sd**2 / (sd**2 + sigma**2 / m)
    t = res.table.set_index("level")
    np.testing.assert_allclose(t["no_pooling"], means[t.index], rtol=0, atol=1e-12)
    assert res.complete_pooling == pytest.approx(mu_hat, abs=1e-12)
    np.testing.assert_allclose(t["partial_reml"], mu_hat + lam * (means[t.index] - mu_hat),
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(t["shrinkage_reml"], lam, rtol=0, atol=1e-8)
    assert (t["n"] == m).all() and res.sd["reml"] == pytest.approx(sd, rel=1e-12)
    assert res.group == "g" and res.diagnostics == ()
    assert isinstance(res.plot(), Figure)


def test_shrinkage_no_and_complete_pooling_with_a_covariate():
    rng = np.random.default_rng(5)
    sizes = [2, 3, 5, 8, 13]
    g = np.repeat([f"c{j}" for j in range(5)], sizes)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.7 * x + np.repeat(rng.normal(0, 1.0, 5), sizes) + rng.normal(0, 0.5, g.size)
    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    res = studies.shrinkage("y ~ x + (1 | g)", frame, methods=("mle",))
    sm = pytest.importorskip("statsmodels.formula.api")
    own = sm.ols("y ~ 0 + C(g) + x", frame).fit().params
    pooled = sm.ols("y ~ x", frame).fit().params
    t = res.table.set_index("level")
    np.testing.assert_allclose(t["no_pooling"], [own[f"C(g)[{lev}]"] for lev in t.index],
                               rtol=0, atol=1e-10)
    assert res.complete_pooling == pytest.approx(pooled["Intercept"], abs=1e-10)
    assert t["n"].tolist() == sizes


def test_shrinkage_compares_group_levels_with_a_group_level_covariate():
    rng = np.random.default_rng(17)
    sizes = [2, 3, 4, 6, 9, 12]
    J = len(sizes)
    g = np.repeat([f"c{j}" for j in range(J)], sizes)
    z_group = rng.normal(size=J)  # group-level: constant within each group
    z = np.repeat(z_group, sizes)
    x = rng.normal(size=g.size)  # within-group
    y = (0.5 + 0.8 * x - 1.2 * z + np.repeat(rng.normal(0, 0.7, J), sizes)
         + rng.normal(0, 0.5, g.size))
    frame = pd.DataFrame({"y": y, "x": x, "z": z, "g": g})
    spec = bm.models.glm("y ~ x + z + (1 | g)", frame)
    res = studies.shrinkage(spec, methods=("reml",))
    assert res.group_level == ("z",) and np.isnan(res.complete_pooling)
    t = res.table.set_index("level")
    assert (t["note"] == "").all() and t["n"].tolist() == sizes
    sm = pytest.importorskip("statsmodels.formula.api")
    own = sm.ols("y ~ x + C(g) - 1", frame).fit().params  # alpha_j at x = 0
    np.testing.assert_allclose(t["no_pooling"], [own[f"C(g)[{lev}]"] for lev in t.index],
                               rtol=0, atol=1e-10)
    pooled = sm.ols("y ~ x + z", frame).fit().params
    z_of = frame.groupby("g")["z"].first()[t.index]
    np.testing.assert_allclose(t["complete_pooling"], pooled["Intercept"] + pooled["z"] * z_of,
                               rtol=0, atol=1e-10)
    fit = bm.fit(spec, "reml")
    beta = dict(zip(["x", "z"], np.atleast_1d(fit.params["coef"]), strict=True))
    blup = fit.random_effects().xs(("g", "Intercept"), level=("group", "term"))["estimate"]
    partial = float(fit.params["intercept"]) + beta["z"] * z_of + blup[t.index]
    np.testing.assert_allclose(t["partial_reml"], partial, rtol=0, atol=1e-10)
    none, complete = t["no_pooling"], t["complete_pooling"]
    np.testing.assert_allclose(t["shrinkage_reml"], (partial - complete) / (none - complete),
                               rtol=1e-10)
    fig = res.plot()  # complete pooling drawn per group, not as one line
    assert isinstance(fig, Figure)
    assert any(line.get_label().startswith("complete pooling (at")
               for line in fig.axes[0].get_lines())


def test_shrinkage_epilepsy_glmm_has_a_no_pooling_level_per_subject():
    from pathlib import Path

    frame = pd.read_csv(Path(__file__).resolve().parents[1] / "models" / "data" / "epil.csv")
    spec = bm.models.glm("y ~ lbase + trt + lage + V4 + (1 | subject)", frame,
                         family="poisson", priors={"intercept": bm.Normal(5),
                                                   "coef": bm.Normal(2.5),
                                                   "sd": bm.HalfNormal(1)})
    res = studies.shrinkage(spec, methods=["mle"])
    assert res.group_level == ("lbase", "trt[T.progabide]", "lage")
    t = res.table.set_index(res.table["level"].astype(str))
    frame["subject"] = frame["subject"].astype(str)
    total = frame.groupby("subject")["y"].sum()[t.index]
    counted = total.index[total > 0]
    assert len(counted) == 58 and np.isfinite(t.loc[counted, "no_pooling"]).all()
    assert t.loc[total.index[total == 0], "no_pooling"].isna().all()
    assert np.isfinite(t["partial_mle"]).all()
    sm = pytest.importorskip("statsmodels.api")
    smf = pytest.importorskip("statsmodels.formula.api")
    own = smf.glm("y ~ V4 + C(subject) - 1", frame[frame["subject"].isin(counted)],
                  family=sm.families.Poisson()).fit(tol=1e-12).params
    np.testing.assert_allclose(t.loc[counted, "no_pooling"],
                               [own[f"C(subject)[{s}]"] for s in counted], rtol=0, atol=1e-6)
    pooled = smf.glm("y ~ lbase + trt + lage + V4", frame,
                     family=sm.families.Poisson()).fit(tol=1e-12).params
    first = frame.groupby("subject").first().loc[t.index]
    np.testing.assert_allclose(
        t["complete_pooling"],
        pooled["Intercept"] + pooled["lbase"] * first["lbase"] + pooled["lage"] * first["lage"]
        + pooled["trt[T.progabide]"] * (first["trt"] == "progabide"), rtol=0, atol=1e-6)


def test_shrinkage_poisson_no_pooling_and_a_group_without_an_mle():
    rng = np.random.default_rng(3)
    J, m = 6, 6
    g = np.repeat([f"s{j}" for j in range(J)], m)
    x = rng.normal(size=J * m)
    y = rng.poisson(np.exp(0.3 + 0.4 * x + np.repeat(rng.normal(0, 0.6, J), m)))
    y[g == "s2"] = 0  # its own MLE is -inf
    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    res = studies.shrinkage("y ~ x + (1 | g)", frame, family="poisson", methods=("mle",))
    t = res.table.set_index("level")
    assert np.isnan(t.loc["s2", "no_pooling"]) and "infinite" in t.loc["s2", "note"]
    assert np.isfinite(t.loc["s2", "partial_mle"])  # partial pooling exists for it
    sm = pytest.importorskip("statsmodels.api")
    smf = pytest.importorskip("statsmodels.formula.api")
    keep = frame[frame["g"] != "s2"]
    own = smf.glm("y ~ 0 + C(g) + x", keep, family=sm.families.Poisson()).fit(tol=1e-12).params
    pooled = smf.glm("y ~ x", frame, family=sm.families.Poisson()).fit(tol=1e-12).params
    others = [lev for lev in t.index if lev != "s2"]
    np.testing.assert_allclose(t.loc[others, "no_pooling"],
                               [own[f"C(g)[{lev}]"] for lev in others], rtol=0, atol=1e-6)
    assert res.complete_pooling == pytest.approx(pooled["Intercept"], abs=1e-6)
    # without covariates: each group's own MLE is log of its mean count
    plain = studies.shrinkage("y ~ 1 + (1 | g)", frame, family="poisson", methods=("mle",))
    t0 = plain.table.set_index("level")
    means = frame.groupby("g")["y"].mean()
    np.testing.assert_allclose(t0.loc[others, "no_pooling"], np.log(means[others]), atol=1e-12)
    assert plain.complete_pooling == pytest.approx(np.log(frame["y"].mean()), abs=1e-12)


def test_shrinkage_bernoulli_without_covariates_is_the_logit_of_each_group_mean():
    rng = np.random.default_rng(8)
    g = np.repeat([f"s{j}" for j in range(6)], 8)
    y = (rng.random(g.size) < np.repeat([0.2, 0.4, 0.5, 0.6, 0.7, 0.5], 8)).astype(int)
    y[g == "s4"] = 1  # all successes: no MLE of its own
    frame = pd.DataFrame({"y": y, "g": g})
    res = studies.shrinkage("y ~ 1 + (1 | g)", frame, family="bernoulli", methods=("mle",))
    t = res.table.set_index("level")
    means = frame.groupby("g")["y"].mean()[t.index]
    edge = (means == 0) | (means == 1)  # s4, and any group all 0 or all 1 by chance
    assert edge["s4"] and edge.sum() < len(edge)
    np.testing.assert_allclose(t.loc[~edge, "no_pooling"], stats.logistic.ppf(means[~edge]),
                               atol=1e-12)
    assert t.loc[edge, "no_pooling"].isna().all()
    assert t.loc[edge, "note"].str.contains("infinite").all()
    assert res.complete_pooling == pytest.approx(stats.logistic.ppf(y.mean()), abs=1e-12)


def test_shrinkage_nuts_partial_pooling_is_the_posterior_mean(balanced_frame):
    frame, _ = balanced_frame
    priors = {"sd": bm.HalfNormal(2.0), "sigma": bm.HalfNormal(2.0)}
    res = studies.shrinkage("y ~ 1 + (1 | g)", frame, priors=priors, methods=("nuts",),
                            nuts_options={"draws": 100, "tune": 150}, random_seed=3)
    post = bm.inference.run(bm.models.glm("y ~ 1 + (1 | g)", frame, priors=priors), "nuts",
                            draws=100, tune=150, chains=2, progressbar=False, random_seed=3)
    # the draws of the non-centred model: b_j = sd * z_j, so intercept + b_j per draw
    draws = post.datatree["posterior"]
    intercept = draws["intercept"].values.reshape(-1)
    sd = draws["sd"].values.reshape(intercept.size)
    z = draws["re_z_0"].values.reshape(intercept.size, -1)
    t = res.table  # levels in the order of the grouping factor (sorted: s0, ..., s5)
    assert t["level"].tolist() == sorted(frame["g"].unique())
    np.testing.assert_allclose(t["partial_nuts"], (intercept[:, None] + sd[:, None] * z).mean(0),
                               atol=1e-10)
    assert res.settings["random_seed"] == 3


def test_shrinkage_validates_arguments(balanced_frame):
    frame, _ = balanced_frame
    with pytest.raises(bm.SpecError, match="reml"):
        studies.shrinkage("y ~ 1 + (1 | g)", frame.assign(y=(frame["y"] > 2).astype(int)),
                          family="bernoulli", methods=("reml",))
    with pytest.raises(bm.SpecError, match="random intercept"):
        studies.shrinkage("y ~ 1 + (0 + z | g)", frame.assign(z=1.0), methods=("reml",))
    with pytest.raises(bm.SpecError, match="intercept"):
        studies.shrinkage("y ~ 0 + (1 | g)", frame, methods=("reml",))
    with pytest.raises(bm.SpecError, match="data"):
        studies.shrinkage("y ~ 1 + (1 | g)", {"y": [1.0]})
    with pytest.raises(bm.SpecError, match="methods"):
        studies.shrinkage("y ~ 1 + (1 | g)", frame, methods=("lasso",))
    with pytest.raises(bm.SpecError, match="family"):
        studies.shrinkage(bm.models.glm("y ~ 1 + (1 | g)", frame), family="poisson")


# ---------------------------------------------------------------------------------------------
# spec files
# ---------------------------------------------------------------------------------------------
SPEC = """
[model]
builder = "gaussian"
y = "y"
[data]
source = "synthetic"
n = 20
seed = 3
truth = { mu = 1.0, sigma = 2.0 }
[fit]
random_seed = 4
"""


def test_spec_files_request_the_mixed_studies(tmp_path):
    from bayesmle import specfile

    text = SPEC + """
[studies.reml_bias]
truth = { sd = 1.0, sigma = 0.5 }
groups = 4
group_size = 3
reps = 3
[studies.group_growth]
truth = { mu = 0.0, sd = 1.0, sigma = 1.0 }
sizes = [4, 8]
reps = 2
prior = { sd = "HalfNormal(2)", intercept = "Normal(1)" }
[studies.shrinkage]
methods = ["reml"]
"""
    path = tmp_path / "mixed.toml"
    path.write_text(text)
    spec = specfile.load(path)
    args = spec.study_arguments("reml_bias")
    assert args == {"truth": {"sd": 1.0, "sigma": 0.5}, "groups": 4, "group_size": 3,
                    "reps": 3, "random_seed": 4}
    gg = spec.study_arguments("group_growth")
    assert gg["prior"] == {"sd": bm.HalfNormal(2.0), "intercept": bm.Normal(1.0)}
    assert gg["sizes"] == [4, 8] and gg["random_seed"] == 4
    assert studies.reml_bias(**args).table["n_ok"].tolist() == [3, 3, 3, 3]
    sh = spec.study_arguments("shrinkage")  # the model is the spec's own
    assert sh["formula"] is spec.model_spec() and "data" not in sh
    with pytest.raises(bm.SpecError, match="no random effects"):
        studies.shrinkage(**sh)


@pytest.mark.parametrize("table,match", [
    ("[studies.shrinkage]\nformula = 'y ~ (1 | g)'\n", "studies.shrinkage.formula"),
    ("[studies.joint_mode]\nmodel = 'y ~ (1 | g)'\n", "studies.joint_mode.model"),
    ("[studies.group_growth]\ntruth = { sd = 1.0, sigma = 1.0 }\nprior = { coef = 'Normal(1)' }\n",
     "studies.group_growth.prior.coef"),
    ("[studies.group_growth]\ntruth = { sd = 1.0, sigma = 1.0 }\nsizes = [1, 4]\n", "sizes"),
])
def test_spec_file_mixed_study_errors(tmp_path, table, match):
    from bayesmle import specfile

    path = tmp_path / "bad.toml"
    path.write_text(SPEC + table)
    with pytest.raises(bm.SpecError, match=match):
        specfile.load(path)


# ---------------------------------------------------------------------------------------------
# every argument, garbage in: a typed error (or a valid run), never a raw exception
# ---------------------------------------------------------------------------------------------
GARBAGE = [None, "x", -1, 0, 1.5, np.nan, np.inf, 1e308, 2**70, [1, 2], {"a": 1}, (), True,
           1j, np.ones((2, 2, 2)), np.array([]), object()]


def _small_design():
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(3), 3)
    return one_way(rng.normal(size=9) + np.repeat([0.0, 1.0, 2.0], 3), codes)


ENTRY = {
    "reml_bias": (studies.reml_bias, {"truth": {"sd": 1.0, "sigma": 1.0}, "groups": 3,
                                      "group_size": 2, "reps": 2, "random_seed": 0}),
    "group_growth": (studies.group_growth, {"truth": {"sd": 1.0, "sigma": 1.0},
                                            "grow": "groups", "sizes": [3], "base_groups": 3,
                                            "base_size": 2, "reps": 2, "random_seed": 0}),
    "joint_mode": (studies.joint_mode, {"model": _small_design(),
                                        "sd_grid": [0.01, 0.1, 1.0]}),
    "shrinkage": (studies.shrinkage, {
        "formula": "y ~ 1 + (1 | g)",
        "data": pd.DataFrame({"y": _small_design().y, "g": np.repeat(list("abc"), 3)}),
        "family": "gaussian", "priors": {"sigma": bm.HalfNormal(1.0)}, "methods": ("reml",),
        "nuts_options": {"draws": 10}, "random_seed": 0}),
}


def test_replicate_studies_on_a_process_pool_equal_serial():
    from concurrent.futures import ProcessPoolExecutor

    args = {"truth": {"mu": 1.0, "sd": 0.5, "sigma": 1.0}, "sizes": [4, 8], "base_groups": 4,
            "base_size": 3, "reps": 3, "random_seed": 8, "prior": {"sd": bm.Gamma(2.0, 1.0)}}
    rb_args = {"truth": {"sd": 0.5, "sigma": 1.0}, "groups": 4, "group_size": 3, "reps": 4,
               "random_seed": 8}
    serial, rb_serial = studies.group_growth(**args), studies.reml_bias(**rb_args)
    with ProcessPoolExecutor(2) as pool:
        parallel = studies.group_growth(**args, executor=pool)
        rb_parallel = studies.reml_bias(**rb_args, executor=pool)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    pd.testing.assert_frame_equal(rb_serial.estimates, rb_parallel.estimates)


@pytest.mark.parametrize("name", sorted(ENTRY))
def test_every_argument_fails_typed(name):
    import warnings

    func, valid = ENTRY[name]
    raw = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        func(**valid)
        for arg in valid:
            for junk in GARBAGE:
                try:
                    func(**{**valid, arg: junk})
                except BayesMLEError:
                    pass
                except Exception as exc:  # noqa: BLE001 - the point of the test
                    raw.append((arg, repr(junk)[:30], type(exc).__name__, str(exc)[:80]))
    assert not raw, raw
