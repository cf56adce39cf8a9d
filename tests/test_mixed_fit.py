"""Mixed models end to end (issue 14): ``bm.fit(bm.models.glm("y ~ x + (1 + x | g)", ...))``.

References: statsmodels ``MixedLM`` on the pig-growth data it ships (``dietox``: lme4/statsmodels
example) for ML and REML, converged tightly; closed forms for the balanced one-way layout (the
boundary case and flat-prior MAP = MLE); the singular fit reported as a boundary estimate with a
profile interval reaching 0.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import bayesmle as bm
from bayesmle.errors import BoundaryWarning, SpecError

DIETOX = Path(__file__).parents[1] / "models" / "data" / "dietox.csv"


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def statsmodels_fit(formula, data, groups, re_formula, reml):
    """statsmodels' MixedLM, run to a tight optimum: the best llf over several optimisers."""
    model = smf.mixedlm(formula, data, groups=data[groups], re_formula=re_formula)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("bfgs", "lbfgs", "cg"):
            try:
                res = model.fit(reml=reml, method=method, gtol=1e-10, maxiter=5000)
            except Exception:  # noqa: BLE001 - some optimisers fail on some data
                continue
            if best is None or res.llf > best.llf:
                best = res
    return best


@pytest.fixture(scope="module")
def dietox():
    return pd.read_csv(DIETOX)


@pytest.fixture(scope="module")
def slopes_spec(dietox):
    return bm.models.glm("Weight ~ Time + (1 + Time | Pig)", dietox)


@pytest.mark.parametrize("reml", [False, True])
def test_random_slopes_with_correlation_equal_statsmodels(dietox, slopes_spec, reml):
    ref = statsmodels_fit("Weight ~ Time", dietox, "Pig", "~Time", reml)
    res = bm.fit(slopes_spec, "reml" if reml else "mle")
    assert res.converged
    p = res.params
    assert rel([p["intercept"], *p["coef"]], ref.fe_params.to_numpy()) < 1e-5
    cov_re = ref.cov_re.to_numpy() * 1.0
    sd = np.sqrt(np.diag(cov_re))
    assert rel(p["sd"], sd) < 1e-5
    assert rel(p["corr"], [cov_re[0, 1] / (sd[0] * sd[1])]) < 1e-5
    assert rel(p["sigma"], np.sqrt(ref.scale)) < 1e-5
    assert rel(res.loglik, ref.llf) < 1e-7
    assert res.labels == ["intercept", "coef[Time]", "sd[Pig]", "sd[Pig:Time]", "corr[Pig]",
                          "sigma"]
    if not reml:  # statsmodels' ML fixed-effect standard errors
        assert rel([res.stderr["intercept"], *res.stderr["coef"]],
                   ref.bse_fe.to_numpy()) < 1e-4


def test_random_intercept_blups_equal_statsmodels(dietox):
    spec = bm.models.glm("Weight ~ Time + (1 | Pig)", dietox)
    ref = statsmodels_fit("Weight ~ Time", dietox, "Pig", None, True)
    res = bm.fit(spec, "reml")
    ours = res.random_effects()
    assert list(ours.index.names) == ["group", "level", "term"]
    theirs = pd.Series({str(k): float(v.iloc[0]) for k, v in ref.random_effects.items()})
    mine = pd.Series(ours["estimate"].to_numpy(),
                     index=[lev for _, lev, _ in ours.index])
    assert rel(mine[theirs.index], theirs) < 1e-4


def _one_way(seed=3, groups=8, size=6, group_sd=0.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    y = 1.0 + rng.normal(0, group_sd, groups)[g] + rng.normal(0, 1.0, groups * size)
    return pd.DataFrame({"y": y, "g": g})


def test_boundary_fit_is_reported_as_singular_with_a_profile_interval_from_zero():
    frame = _one_way(seed=1)
    msb_msw = frame.groupby("g")["y"].mean()
    m, J = 6, 8
    msb = m * np.sum((msb_msw - frame["y"].mean()) ** 2) / (J - 1)
    msw = np.sum((frame["y"] - frame["g"].map(msb_msw)) ** 2) / (J * (m - 1))
    assert msb < msw  # the data are such that the REML estimate is on the boundary
    spec = bm.models.glm("y ~ 1 + (1 | g)", frame)
    with pytest.warns(BoundaryWarning, match="singular"):
        res = bm.fit(spec, "reml")
    assert res.params["sd"][0] == 0.0 and res.mixed.singular
    assert res.mixed.boundary == ("sd[g]",)
    assert np.isnan(res.stderr["sd"][0])
    # on the boundary, sigma's REML estimate is the pooled variance with n - 1 df
    assert rel(res.params["sigma"], frame["y"].std(ddof=1)) < 1e-8
    with pytest.warns(BoundaryWarning):
        mle = bm.fit(spec, "mle")
    ci = mle.conf_int(method="profile", level=0.95)
    assert ci.loc["sd[g]", "lower"] == 0.0 and ci.loc["sd[g]", "upper"] > 0.0


def test_map_with_flat_priors_is_the_mle_and_a_gamma_prior_keeps_it_off_the_boundary():
    frame = _one_way(seed=1)
    spec = bm.models.glm("y ~ 1 + (1 | g)", frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        mle, map_flat = bm.fit(spec, "mle"), bm.fit(spec, "map")
    assert map_flat.params["sd"][0] == mle.params["sd"][0]
    assert float(map_flat.params["sigma"]) == float(mle.params["sigma"])
    proper = bm.models.glm("y ~ 1 + (1 | g)", frame, priors={"sd": bm.Gamma(2.0, 1.0)})
    res = bm.fit(proper, "map")
    assert res.converged and res.params["sd"][0] > 0.01 and not res.mixed.singular


def test_balanced_one_way_reml_is_the_anova_estimator():
    frame = _one_way(seed=11, groups=10, size=5, group_sd=1.5)
    means = frame.groupby("g")["y"].mean()
    m, J = 5, 10
    msb = m * np.sum((means - frame["y"].mean()) ** 2) / (J - 1)
    msw = np.sum((frame["y"] - frame["g"].map(means)) ** 2) / (J * (m - 1))
    assert msb > msw
    res = bm.fit(bm.models.glm("y ~ 1 + (1 | g)", frame), "reml")
    assert rel(res.params["sd"][0] ** 2, (msb - msw) / m) < 1e-7
    assert rel(res.params["sigma"] ** 2, msw) < 1e-7
    assert rel(res.params["intercept"], frame["y"].mean()) < 1e-10


def test_compare_has_reml_and_says_the_joint_mode_is_not_an_estimator():
    frame = _one_way(seed=11, groups=10, size=5, group_sd=1.5)
    spec = bm.models.glm("y ~ 1 + (1 | g)", frame, priors={"sd": bm.Gamma(2.0, 1.0)})
    comp = bm.compare(spec, methods=("mle", "reml", "map"), random_seed=0)
    assert {"mle_estimate", "reml_estimate", "map_estimate"} <= set(comp.table.columns)
    assert any(w.category == "MixedModelNote" and "joint mode" in w.message
               for w in comp.warnings)


def test_bad_methods_and_options_are_typed_errors():
    frame = _one_way(seed=11, groups=10, size=5, group_sd=1.5)
    spec = bm.models.glm("y ~ 1 + (1 | g)", frame)
    with pytest.raises(SpecError, match="nagq"):
        bm.fit(spec, "mle", nagq=5)  # Gaussian: exact, no quadrature
    with pytest.raises(SpecError, match="reml"):
        bm.fit(bm.models.gaussian(frame["y"].to_numpy()), "reml")
    with pytest.raises(SpecError, match="nagq"):
        bm.fit(bm.models.gaussian(frame["y"].to_numpy()), "mle", nagq=2)
    res = bm.fit(spec, "reml")
    # a start dict by name reaches the same optimum
    again = bm.fit(spec, "reml", start={"sd": [0.1], "sigma": 3.0, "intercept": 0.0})
    assert rel(again.flat_params(), res.flat_params()) < 1e-8
    with pytest.raises(SpecError, match="start"):
        bm.fit(spec, "reml", start={"sd": [0.1, 0.2]})
    with pytest.raises(SpecError, match="REML"):
        res.conf_int(method="profile")
    with pytest.raises(SpecError, match="mixed models"):
        bm.fit(spec, "mle").predict()
    counts = frame.assign(y=np.random.default_rng(0).poisson(3.0, len(frame)))
    with pytest.raises(SpecError, match="Gaussian"):
        bm.fit(bm.models.glm("y ~ 1 + (1 | g)", counts, family="poisson"), "reml")


def test_laplace_draws_follow_the_mode_covariance(dietox):
    spec = bm.models.glm("Weight ~ Time + (1 | Pig)", dietox,
                         priors={"sd": bm.HalfNormal(10.0), "sigma": bm.HalfNormal(10.0)})
    lap = bm.fit(spec, "laplace", draws=4000, random_seed=3)
    assert lap.converged
    # the draws of N(mode, H^-1) in phi, mapped back: their sd is the delta-method sd at the
    # mode up to Monte Carlo error (1.1% for 4000 draws) and the transforms' curvature
    delta = pd.Series(np.sqrt(np.diag(lap.mode.cov)), index=lap.labels)
    assert np.all(np.abs(lap.sd() / delta - 1.0) < 0.05)
    # and it is close to the ML standard errors here (861 rows, weak priors)
    mle = bm.fit(spec, "mle")
    assert np.all(np.abs(delta / pd.Series(mle.flat_stderr(), index=mle.labels) - 1) < 0.05)


def test_concurrent_mixed_fits_from_threads_equal_the_serial_ones():
    from concurrent.futures import ThreadPoolExecutor

    frames = [_one_way(seed=s, groups=10, size=5, group_sd=1.0) for s in range(6)]
    counts = [f.assign(y=np.random.default_rng(i).poisson(np.exp(f["y"] / 3))) for i, f in
              enumerate(frames)]
    specs = [bm.models.glm("y ~ 1 + (1 | g)", f) for f in frames] + \
        [bm.models.glm("y ~ 1 + (1 | g)", c, family="poisson") for c in counts]

    def run(spec):  # inference.run keeps diagnostics on the result (no warnings machinery)
        res = bm.inference.run(spec, "mle")
        return res.flat_params(), res.loglik

    serial = [run(s) for s in specs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(run, specs * 2))
    for (p1, l1), (p2, l2) in zip(serial * 2, threaded, strict=True):
        assert np.array_equal(p1, p2) and l1 == l2
