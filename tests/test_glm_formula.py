"""``glm(formula, data, family=...)`` (issue 14): formula fits against independent references.

The formula's fits equal the matrix builders' on a design expanded by hand (1e-10), and
statsmodels' formula API on the same formula and data (1e-6); priors by term name; bad input.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import bayesmle as bm
from bayesmle.errors import DataError, PriorError, SpecError
from bayesmle.models.glm import glm


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))


def named(res, ref, key="params"):
    """Our estimates in the order of a statsmodels result's (patsy orders terms by degree)."""
    values = getattr(res, key)
    ours = dict(zip(res.spec.coords["feature"], np.ravel(values["coef"]), strict=True))
    if "intercept" in values:
        ours["Intercept"] = float(values["intercept"])
    index = [str(name) for name in ref.params.index]
    return np.array([ours[name] for name in index])


def vector(res, key="params"):
    values = getattr(res, key)
    parts = [np.atleast_1d(values["intercept"])] if "intercept" in values else []
    return np.concatenate([*parts, np.ravel(values["coef"])])


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(14)
    n = 60
    out = pd.DataFrame({
        "x": rng.normal(size=n),
        "z": rng.uniform(1.0, 3.0, size=n),
        "g": rng.choice(["a", "b", "c"], size=n),
        "t": rng.uniform(0.5, 4.0, size=n),
    })
    eta = 0.5 + 1.0 * out["x"] - 0.5 * np.log(out["z"]) + 0.3 * (out["g"] == "b")
    out["y"] = eta + rng.normal(scale=0.7, size=n)
    out["k"] = rng.poisson(out["t"] * np.exp(0.2 + 0.4 * out["x"]))
    return out


def hand_design(frame):
    """``x + np.log(z) + C(g)`` expanded with pandas and numpy."""
    return pd.DataFrame({
        "x": frame["x"].to_numpy(),
        "np.log(z)": np.log(frame["z"].to_numpy()),
        "C(g)[T.b]": (frame["g"] == "b").to_numpy(float),
        "C(g)[T.c]": (frame["g"] == "c").to_numpy(float),
    })


FORMULA = "x + np.log(z) + C(g)"


# ---------------------------------------------------------------------------------------------
# Fits: matrix builders on the hand-built design, statsmodels' formula API
# ---------------------------------------------------------------------------------------------
def test_gaussian_equals_matrix_builder_and_ols(frame):
    spec = glm(f"y ~ {FORMULA}", frame)
    res = bm.fit(spec, "mle")
    assert res.labels == ["intercept", "coef[x]", "coef[np.log(z)]", "coef[C(g)[T.b]]",
                          "coef[C(g)[T.c]]", "sigma"]
    assert spec.options["formula"] == f"y ~ {FORMULA}"
    direct = bm.fit(bm.models.linear_regression(hand_design(frame), frame["y"]), "mle")
    assert rel(vector(res), vector(direct)) <= 1e-10
    assert abs(res.params["sigma"] - direct.params["sigma"]) <= 1e-10
    ref = smf.ols(f"y ~ {FORMULA}", frame).fit()
    assert rel(named(res, ref), ref.params.to_numpy()) <= 1e-6
    n, p = ref.nobs, len(ref.params)
    # our stderr: observed information at the MLE (sigma^2 = RSS / n)
    assert rel(named(res, ref, "stderr"), ref.bse.to_numpy() * np.sqrt((n - p) / n)) <= 1e-6


def test_no_intercept(frame):
    for formula in ("y ~ 0 + x + np.log(z)", "y ~ x + np.log(z) - 1"):
        spec = glm(formula, frame)
        assert spec.options["intercept"] is False
        assert "intercept" not in spec.params
        ref = smf.ols(formula, frame).fit()
        assert rel(bm.fit(spec, "mle").params["coef"], ref.params.to_numpy()) <= 1e-6


def test_poisson_exposure_column(frame):
    spec = glm("k ~ x + C(g)", frame, family="poisson", exposure="t")
    res = bm.fit(spec, "mle")
    X = hand_design(frame)[["x", "C(g)[T.b]", "C(g)[T.c]"]]
    direct = bm.fit(bm.models.poisson_regression(X, frame["k"], exposure=frame["t"]), "mle")
    assert rel(vector(res), vector(direct)) <= 1e-10
    ref = smf.glm("k ~ x + C(g)", frame, family=sm.families.Poisson(),
                  exposure=frame["t"]).fit(tol=1e-14)
    assert rel(named(res, ref), ref.params.to_numpy()) <= 1e-6
    # an array offset is the same model
    off = glm("k ~ x + C(g)", frame, family="poisson", offset=np.log(frame["t"].to_numpy()))
    assert rel(vector(bm.fit(off, "mle")), vector(res)) <= 1e-10


def test_spector_logit_and_categorical_labels():
    data = sm.datasets.spector.load_pandas().data
    res = bm.fit(glm("GRADE ~ GPA + TUCE + PSI", data, family="bernoulli"), "mle")
    ref = smf.logit("GRADE ~ GPA + TUCE + PSI", data).fit(method="newton", tol=1e-14, disp=0)
    assert rel(vector(res), ref.params.to_numpy()) <= 1e-6
    assert rel(vector(res, "stderr"), ref.bse.to_numpy()) <= 1e-4
    cat = bm.fit(glm("GRADE ~ GPA + TUCE + C(PSI)", data, family="bernoulli"), "mle")
    assert cat.labels == ["intercept", "coef[GPA]", "coef[TUCE]", "coef[C(PSI)[T.1.0]]"]
    assert rel(vector(cat), vector(res)) <= 1e-8
    direct = bm.fit(bm.models.logistic_regression(data[["GPA", "TUCE", "PSI"]],
                                                  data["GRADE"]), "mle")
    assert rel(vector(res), vector(direct)) <= 1e-10


def test_categorical_family(frame):
    labels = np.where(frame["y"] < 0.0, "low", np.where(frame["y"] < 1.0, "mid", "high"))
    data = frame.assign(level=labels)
    res = bm.fit(glm("level ~ x", data, family="categorical"), "mle")
    direct = bm.fit(bm.models.softmax_regression(frame[["x"]], labels), "mle")
    assert res.labels == direct.labels
    assert rel(vector(res), vector(direct)) <= 1e-10


def test_star98_binomial_trials():
    data = sm.datasets.star98.load_pandas().data
    data = data.assign(TOTAL=data["NABOVE"] + data["NBELOW"])
    predictors = ["LOWINC", "PERASIAN", "PERBLACK", "PERHISP", "PCTCHRT"]
    formula = "NABOVE ~ " + " + ".join(predictors)
    res = bm.fit(glm(formula, data, family="binomial", trials="TOTAL"), "mle")
    endog = data[["NABOVE", "NBELOW"]].to_numpy()
    ref = sm.GLM(endog, sm.add_constant(data[predictors]),
                 family=sm.families.Binomial()).fit(tol=1e-14)
    assert rel(vector(res), ref.params.to_numpy()) <= 1e-8
    # the trials as an array are the same model
    arr = glm(formula, data, family="binomial", trials=data["TOTAL"].to_numpy())
    assert rel(vector(bm.fit(arr, "mle")), vector(res)) <= 1e-10


def test_bernoulli_probit():
    data = sm.datasets.spector.load_pandas().data
    res = bm.fit(glm("GRADE ~ GPA + TUCE + PSI", data, family="bernoulli", link="probit"),
                 "mle")
    ref = smf.probit("GRADE ~ GPA + TUCE + PSI", data).fit(method="newton", tol=1e-14,
                                                            disp=0)
    assert rel(vector(res), ref.params.to_numpy()) <= 1e-6


def test_predict_from_raw_columns(frame):
    res = bm.fit(glm(f"y ~ {FORMULA}", frame), "mle")
    new = frame[["x", "z", "g"]].iloc[:5].reset_index(drop=True)
    mean = res.predict(new)["mean"].to_numpy()
    expected = res.params["intercept"] + hand_design(new).to_numpy() @ res.params["coef"]
    assert np.max(np.abs(mean - expected)) <= 1e-10
    with pytest.raises(DataError, match=r"lack the column\(s\) \['z'\]"):
        res.predict(new.drop(columns="z"))
    with pytest.raises(DataError, match="categor"):
        res.predict(new.assign(g=["a", "b", "zz", "a", "a"]))


# ---------------------------------------------------------------------------------------------
# Priors by term name
# ---------------------------------------------------------------------------------------------
def test_prior_override_by_term():
    data = sm.datasets.spector.load_pandas().data
    spec = glm("GRADE ~ GPA + TUCE + PSI", data, family="bernoulli",
               priors={"coef": bm.Normal(1.0), "coef[GPA]": bm.Normal(0.5),
                       "intercept": bm.Normal(10.0)})
    assert np.array_equal(spec.priors["coef"].params()["sigma"], [0.5, 1.0, 1.0])
    assert float(spec.priors["intercept"].params()["sigma"]) == 10.0


def test_map_per_coefficient_ridge(frame):
    scales = np.array([0.3, 1.0, 2.0, 0.1])
    spec = glm(f"y ~ {FORMULA}", frame, priors={
        "coef": bm.Normal(1.0), "coef[x]": bm.Normal(0.3), "coef[C(g)[T.b]]": bm.Normal(2.0),
        "coef[C(g)[T.c]]": bm.Normal(0.1)})
    res = bm.fit(spec, "map")
    # closed form at the mode: beta = (A'A + s^2 P)^-1 A'y with s^2 = RSS / n (HalfFlat sigma)
    A = np.column_stack([np.ones(len(frame)), hand_design(frame).to_numpy()])
    y = frame["y"].to_numpy()
    penalty = np.diag(np.concatenate([[0.0], 1.0 / scales**2]))
    s2 = 1.0
    for _ in range(500):
        beta = np.linalg.solve(A.T @ A + s2 * penalty, A.T @ y)
        s2 = float(np.sum((y - A @ beta) ** 2) / len(y))
    assert rel(vector(res), beta) <= 1e-8
    assert abs(res.params["sigma"] ** 2 - s2) <= 1e-8


def test_prior_errors(frame):
    data = sm.datasets.spector.load_pandas().data
    with pytest.raises(PriorError, match=r"\['coef', 'coef\[GPA\]', 'coef\[TUCE\]', "
                                         r"'coef\[PSI\]', 'intercept'\]"):
        glm("GRADE ~ GPA + TUCE + PSI", data, family="bernoulli",
            priors={"coef[AGE]": bm.Normal(1.0)})
    with pytest.raises(PriorError, match="one prior family per `coef`"):
        glm("GRADE ~ GPA + TUCE + PSI", data, family="bernoulli",
            priors={"coef": bm.Normal(1.0), "coef[GPA]": bm.Laplace(1.0)})
    with pytest.raises(PriorError, match="sigma"):  # gaussian's extra is valid...
        glm("GRADE ~ GPA", data, family="bernoulli", priors={"sigma": bm.HalfNormal(1.0)})
    spec = glm("y ~ x", frame, priors={"sigma": bm.HalfNormal(2.0)})
    assert float(spec.priors["sigma"].params()["sigma"]) == 2.0


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_bad_input(frame):
    with pytest.raises(SpecError, match="`nope` is not a column"):
        glm("y ~ x + nope", frame)
    with pytest.raises(SpecError, match="response `nope`"):
        glm("nope ~ x", frame)
    with pytest.raises(SpecError, match="exactly one '~'"):
        glm("x + z", frame)
    with pytest.raises(SpecError, match=r"Valid families: \['gaussian'"):
        glm("y ~ x", frame, family="weibull")
    with pytest.raises(SpecError, match=r"Valid links for 'poisson': \['log'\]"):
        glm("k ~ x", frame, family="poisson", link="identity")
    with pytest.raises(DataError, match="needs `trials`"):
        glm("k ~ x", frame, family="binomial")
    with pytest.raises(SpecError, match="`exposure` was given for family 'gaussian'"):
        glm("y ~ x", frame, exposure="t")
    with pytest.raises(DataError, match="pandas DataFrame"):
        glm("y ~ x", frame.to_dict("list"))
    with pytest.raises(DataError, match="`exposure` = 'tt' is not a column"):
        glm("k ~ x", frame, family="poisson", exposure="tt")


def test_missing_values(frame):
    data = frame.copy()
    data.loc[[3, 7], "x"] = np.nan
    data.loc[5, "g"] = None
    with pytest.raises(DataError, match=r"row\(s\) \['3', '5', '7'\]") as info:
        glm("y ~ x + C(g)", data)
    assert "'x'" in str(info.value) and "'g'" in str(info.value)
    glm("y ~ z", data)  # the missing values are in columns the model does not use
    dropped = bm.fit(glm("y ~ x + C(g)", data, na_action="drop"), "mle")
    ref = smf.ols("y ~ x + C(g)", data, missing="drop").fit()
    assert rel(named(dropped, ref), ref.params.to_numpy()) <= 1e-6


def test_response_outside_support(frame):
    with pytest.raises(DataError, match="column 'y'"):
        glm("y ~ x", frame, family="poisson")
    with pytest.raises(DataError, match="column 'y'"):
        glm("y ~ x", frame, family="bernoulli")


def test_python_in_formula_is_refused_and_not_run(frame, tmp_path):
    marker = tmp_path / "ran"
    evil = f"y ~ x + {{__import__('pathlib').Path({str(marker)!r}).touch()}}"
    with pytest.raises(SpecError, match="not allowed|not a valid expression"):
        glm(evil, frame)
    with pytest.raises(SpecError):
        glm("y ~ __import__('os').getcwd()", frame)
    with pytest.raises(SpecError):
        glm("y ~ x + open('/etc/passwd')", frame)
    assert not marker.exists()
    # a trusted formula is the program's own: formulaic's full namespace
    spec = glm("y ~ x + np.square(z)", frame, trusted=True)
    assert spec.coords["feature"] == ("x", "np.square(z)")


# ---------------------------------------------------------------------------------------------
# TOML specs: builder = "glm"
# ---------------------------------------------------------------------------------------------
def toml_spec(tmp_path, frame, model: str, name: str = "m.toml"):
    frame.to_csv(tmp_path / "d.csv", index=False)
    path = tmp_path / name
    path.write_text(f'[model]\nbuilder = "glm"\n{model}\n'
                    '[data]\nsource = "csv"\npath = "d.csv"\n')
    return path


def test_toml_glm_equals_the_function(tmp_path, frame):
    from bayesmle.specfile import load

    path = toml_spec(tmp_path, frame, 'formula = "k ~ x + C(g)"\nfamily = "poisson"\n'
                                      'exposure = "t"')
    loaded = bm.fit(load(path).model_spec(), "mle")
    direct = bm.fit(glm("k ~ x + C(g)", frame, family="poisson", exposure="t"), "mle")
    assert loaded.labels == direct.labels
    assert rel(vector(loaded), vector(direct)) <= 1e-10
    gauss = load(toml_spec(tmp_path, frame, 'formula = "y ~ x + np.log(z)"', "g.toml"))
    assert gauss.model_spec().name == "linear_regression"


def test_toml_glm_errors(tmp_path, frame):
    from bayesmle.specfile import load

    marker = tmp_path / "ran"
    evil = f"y ~ x + {{__import__('pathlib').Path('{marker}').touch()}}"
    with pytest.raises(SpecError, match="model.formula"):
        load(toml_spec(tmp_path, frame, f'formula = "{evil}"'))
    assert not marker.exists()
    with pytest.raises(SpecError, match=r"`model.family` = \"weibull\".*Valid: \"gaussian\""):
        load(toml_spec(tmp_path, frame, 'formula = "y ~ x"\nfamily = "weibull"'))
    with pytest.raises(SpecError, match=r"`model.link` = \"logit\".*Valid: \"log\""):
        load(toml_spec(tmp_path, frame, 'formula = "k ~ x"\nfamily = "poisson"\n'
                                        'link = "logit"'))
    with pytest.raises(SpecError, match="`model.formula`: is required"):
        load(toml_spec(tmp_path, frame, 'family = "poisson"'))
    with pytest.raises(SpecError, match="`model.trials`"):
        load(toml_spec(tmp_path, frame, 'formula = "k ~ x"\nfamily = "binomial"'))


def test_toml_glm_binomial_trials(tmp_path):
    from bayesmle.specfile import load

    data = sm.datasets.star98.load_pandas().data
    data = data.assign(TOTAL=data["NABOVE"] + data["NBELOW"])[
        ["NABOVE", "TOTAL", "LOWINC", "PERASIAN"]]
    path = toml_spec(tmp_path, data, 'formula = "NABOVE ~ LOWINC + PERASIAN"\n'
                                     'family = "binomial"\ntrials = "TOTAL"')
    loaded = bm.fit(load(path).model_spec(), "mle")
    direct = bm.fit(glm("NABOVE ~ LOWINC + PERASIAN", data, family="binomial",
                        trials="TOTAL"), "mle")
    assert rel(vector(loaded), vector(direct)) <= 1e-10
