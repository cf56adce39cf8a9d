"""Spec files: loading, validation messages, data sources, formulas, priors, study binding.

No model is fitted here (fast); the numbers checked come from the data's own source
(scikit-learn, statsmodels, numpy) or from the constructors the spec claims to call.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmle as bm
from bayesmle.errors import DataError, PriorError, SpecError
from bayesmle.specfile import find_specs, load, load_many, parse_prior
from bayesmle.specfile._schema import Where
from bayesmle.specfile.synthetic import generate

MODELS = Path(__file__).resolve().parents[1] / "models"

BASE = """
[model]
builder = "gaussian"

[data]
source = "synthetic"
n = 20
seed = 3
truth = { mu = 1.0, sigma = 2.0 }
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, kind=SpecError) -> str:
    with pytest.raises(kind) as info:
        load(write(tmp_path, text))
    return str(info.value)


# -- the bundled models -------------------------------------------------------------------------
def test_every_bundled_model_loads_and_names_are_unique():
    paths = find_specs(MODELS)
    assert len(paths) >= 10
    specs = load_many(paths)
    builders = {s.builder.name for s in specs}
    assert {"bernoulli", "gaussian", "poisson", "exponential", "student_t", "linear_regression",
            "logistic_regression", "negative_binomial_regression",
            "softmax_regression"} <= builders
    for spec in specs:
        for name in spec.studies:  # every study's arguments can be bound
            assert isinstance(spec.study_arguments(name), dict)


def test_bundled_diabetes_is_scikit_learns_data():
    from sklearn.datasets import load_diabetes

    ref = load_diabetes()
    for name in ("diabetes_ridge.toml", "diabetes_lasso.toml"):
        spec = load(MODELS / name)
        data = spec.data_kwargs()
        np.testing.assert_array_equal(data["X"].to_numpy(), ref.data)
        np.testing.assert_array_equal(data["y"], ref.target)
        assert list(data["X"].columns) == list(ref.feature_names)
        assert spec.model_spec().options == {} or spec.options.get("intercept", True)


def test_bundled_spector_formula_matches_statsmodels_data():
    import statsmodels.api as sm

    ref = sm.datasets.spector.load_pandas().data
    spec = load(MODELS / "spector_logistic.toml")
    data = spec.data_kwargs()
    np.testing.assert_array_equal(data["X"].to_numpy(), ref[["GPA", "TUCE", "PSI"]].to_numpy())
    np.testing.assert_array_equal(data["y"], ref["GRADE"].to_numpy())
    assert spec.options == {"intercept": True}


def test_iris_predictors_exclude_the_target_columns():
    spec = load(MODELS / "iris_softmax.toml")
    X = spec.data_kwargs()["X"]
    assert "target" not in X.columns and "target_name" not in X.columns
    assert X.shape == (150, 4)
    assert spec.model_spec().coords["class"] == ("versicolor", "virginica")


# -- priors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("Normal(10, mu=165)", bm.Normal(10.0, mu=165.0)),
    ("Normal(sigma=2)", bm.Normal(2.0)),
    ("Laplace(0.5)", bm.Laplace(0.5)),
    ("HalfNormal(20)", bm.HalfNormal(20.0)),
    ("Gamma(2, 0.5)", bm.Gamma(2.0, 0.5)),
    ("Beta(2, 2)", bm.Beta(2.0, 2.0)),
    ("Flat()", bm.Flat()),
    ("HalfFlat", bm.HalfFlat()),
    ("Normal([1, 2, 3])", bm.Normal(np.array([1.0, 2.0, 3.0]))),
    ({"dist": "Exponential", "lam": 0.1}, bm.Exponential(0.1)),
    ({"dist": "HalfCauchy", "beta": 2}, bm.HalfCauchy(2.0)),
])
def test_prior_forms_call_the_constructor(text, expected):
    assert parse_prior(text, Where("f.toml"), "priors.x") == expected


@pytest.mark.parametrize(("value", "fragment"), [
    ("Norml(1)", "unknown prior 'Norml'"),
    ("Normal(1, 2, 3)", "at most 2 positional"),
    ("Normal(1, scale=2)", "has no argument 'scale'"),
    ("Normal(__import__('os'))", "cannot read this prior"),
    ("Gamma(2)", "needs argument(s) ['beta']"),
    ({"sigma": 1}, "needs `dist"),
    (3.0, "a prior must be a string"),
])
def test_bad_priors_name_the_key_and_the_valid_choices(value, fragment):
    with pytest.raises(SpecError) as info:
        parse_prior(value, Where("f.toml"), "priors.mu")
    message = str(info.value)
    assert message.startswith("f.toml: `priors.mu`")
    assert fragment in message
    assert "Valid:" in message or "needs `dist" in message or "twice" in message


def test_invalid_prior_values_are_prior_errors_with_file_and_key(tmp_path):
    message = error_of(tmp_path, BASE + '[priors]\nsigma = "HalfNormal(-1)"\n', PriorError)
    assert "spec.toml: `priors.sigma`" in message and "> 0" in message


def test_prior_on_the_wrong_support_is_rejected(tmp_path):
    message = error_of(tmp_path, BASE + '[priors]\nsigma = "Normal(1)"\n', PriorError)
    assert "spec.toml" in message and "HalfNormal" in message


# -- validation messages ------------------------------------------------------------------------
@pytest.mark.parametrize(("edit", "key", "fragment"), [
    (lambda t: 'colour = "blue"\n' + t, "`colour`", "unknown key"),
    (lambda t: t.replace('builder = "gaussian"', 'builder = "gausian"'), "`model.builder`",
     "Valid: \"bernoulli\""),
    (lambda t: t.replace('source = "synthetic"', 'source = "excel"'), "`data.source`",
     "Valid: \"synthetic\", \"csv\""),
    (lambda t: t.replace("n = 20", 'n = "twenty"'), "`data.n`", "must be an integer"),
    (lambda t: t.replace("n = 20", "n = 0"), "`data.n`", "must be >= 1"),
    (lambda t: t.replace("{ mu = 1.0, sigma = 2.0 }", "{ mu = 1.0 }"), "`data.truth.sigma`",
     "required"),
    (lambda t: t.replace("sigma = 2.0", "sigma = -2.0"), "`data.truth.sigma`", "> 0"),
    (lambda t: t.replace("sigma = 2.0", "sigma = 2.0, nu = 3"), "`data.truth.nu`",
     "unknown key"),
    (lambda t: t + '[priors]\nnu = "Gamma(2, 0.1)"\n', "`priors.nu`", "Valid: mu, sigma"),
    (lambda t: t + '[fit]\nmethods = ["mle", "bayes"]\n', "`fit.methods`", "Valid: mle, map"),
    (lambda t: t + "[fit]\ndraws = 0\n", "`fit.draws`", ">= 1"),
    (lambda t: t + "[fit]\ntarget_accept = 1.5\n", "`fit.target_accept`", "(0, 1)"),
    (lambda t: t + "[studies.magic]\n", "`studies.magic`", "Valid: map_to_mle"),
    (lambda t: t + "[studies.map_to_mle]\nns = [10]\nreps = 2\nwobble = 1\n",
     "`studies.map_to_mle.wobble`", "unknown key"),
    (lambda t: t.replace('builder = "gaussian"', 'builder = "gaussian"\ny = "height"'),
     "`model.y`", "no such column"),
    (lambda t: 'name = "bad name!"\n' + t, "`name`", "letters"),
])
def test_bad_specs_name_file_key_and_what_is_valid(tmp_path, edit, key, fragment):
    message = error_of(tmp_path, edit(BASE))
    assert message.startswith(f"{tmp_path / 'spec.toml'}: {key}"), message
    assert fragment in message, message


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    message = error_of(tmp_path, BASE + "[fit\n")
    assert "spec.toml: not valid TOML" in message and "line" in message


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="holds no"):
        find_specs(tmp_path)
    with pytest.raises(SpecError, match="no such folder"):
        find_specs(tmp_path / "missing")


def test_duplicate_names_are_rejected(tmp_path):
    a = write(tmp_path, 'name = "same"\n' + BASE, "a.toml")
    b = write(tmp_path, 'name = "same"\n' + BASE, "b.toml")
    with pytest.raises(SpecError, match="also the name of"):
        load_many([a, b])


def test_data_the_builder_rejects_is_a_data_error_naming_the_file(tmp_path):
    (tmp_path / "d.csv").write_text("y\n1.0\nnan\n3.0\n")
    text = BASE.replace(
        'source = "synthetic"\nn = 20\nseed = 3\ntruth = { mu = 1.0, sigma = 2.0 }',
        'source = "csv"\npath = "d.csv"')
    message = error_of(tmp_path, text, DataError)
    assert "spec.toml" in message and "gaussian" in message and "row(s) 1" in message


# -- data sources ---------------------------------------------------------------------------------
def test_csv_path_is_relative_to_the_spec_and_columns_map(tmp_path):
    sub = tmp_path / "data"
    sub.mkdir()
    frame = pd.DataFrame({"height": [170.0, 165.5, 180.25, 172.0], "other": [1, 2, 3, 4]})
    frame.to_csv(sub / "h.csv", index=False)
    text = BASE.replace('[model]\nbuilder = "gaussian"',
                        '[model]\nbuilder = "gaussian"\ny = "height"').replace(
        'source = "synthetic"\nn = 20\nseed = 3\ntruth = { mu = 1.0, sigma = 2.0 }',
        'source = "csv"\npath = "data/h.csv"')
    spec = load(write(tmp_path, text))
    np.testing.assert_array_equal(spec.model_spec().data["y"], frame["height"].to_numpy())
    assert spec.data.truth is None


def test_csv_missing_file_names_the_key(tmp_path):
    text = BASE.replace(
        'source = "synthetic"\nn = 20\nseed = 3\ntruth = { mu = 1.0, sigma = 2.0 }',
        'source = "csv"\npath = "nope.csv"')
    message = error_of(tmp_path, text)
    assert "`data.path` = \"nope.csv\": no such file" in message


def test_synthetic_data_are_seeded_and_match_numpy(tmp_path):
    spec = load(write(tmp_path, BASE))
    expected = np.random.default_rng(3).normal(1.0, 2.0, size=20)
    np.testing.assert_array_equal(spec.model_spec().data["y"], expected)
    again = load(write(tmp_path, BASE, "again.toml"))
    np.testing.assert_array_equal(again.model_spec().data["y"], expected)


def test_subsample_rows_is_seeded(tmp_path):
    text = """
[model]
builder = "linear_regression"
formula = "target ~ bmi + bp"
[data]
source = "sklearn"
dataset = "diabetes"
rows = 50
seed = 4
"""
    from sklearn.datasets import load_diabetes

    spec = load(write(tmp_path, text))
    keep = np.sort(np.random.default_rng(4).choice(442, 50, replace=False))
    np.testing.assert_array_equal(spec.data_kwargs()["y"], load_diabetes().target[keep])
    message = error_of(tmp_path, text.replace("seed = 4\n", ""))
    assert "`data.seed`" in message


# -- formulas -----------------------------------------------------------------------------------
def formula_spec(tmp_path, formula: str, extra: str = "") -> str:
    frame = pd.DataFrame({"y": [1.0, 2.5, 2.0, 4.5, 5.0, 7.5, 6.0, 9.0],
                          "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                          "g": ["a", "b", "a", "c", "b", "c", "a", "b"]})
    frame.to_csv(tmp_path / "f.csv", index=False)
    return (f'[model]\nbuilder = "linear_regression"\nformula = "{formula}"\n{extra}'
            '[data]\nsource = "csv"\npath = "f.csv"\n')


def test_formula_expands_categories_and_sets_the_intercept(tmp_path):
    spec = load(write(tmp_path, formula_spec(tmp_path, "y ~ x + C(g)")))
    X = spec.data_kwargs()["X"]
    assert list(X.columns) == ["x", "C(g)[T.b]", "C(g)[T.c]"]
    np.testing.assert_array_equal(X["C(g)[T.b]"], [0, 1, 0, 0, 1, 0, 0, 1])
    assert spec.options == {"intercept": True}
    assert "intercept" in spec.model_spec().params

    no_int = load(write(tmp_path, formula_spec(tmp_path, "y ~ 0 + x"), "b.toml"))
    assert no_int.options == {"intercept": False}
    assert "intercept" not in no_int.model_spec().params
    np.testing.assert_array_equal(no_int.data_kwargs()["X"]["x"], np.arange(1.0, 9.0))


def test_formula_errors_name_the_key_and_columns(tmp_path):
    message = error_of(tmp_path, formula_spec(tmp_path, "y ~ x + zz"))
    assert "`model.formula`" in message and "zz" in message and "Valid: x, g" in message
    message = error_of(tmp_path, formula_spec(tmp_path, "y x"))
    assert "exactly one '~'" in message
    message = error_of(tmp_path, formula_spec(tmp_path, "y ~ x", "intercept = false\n"))
    assert "`model.intercept`" in message


# -- simulators and study arguments -------------------------------------------------------------
def test_simulator_is_picklable_and_reproduces_the_generator():
    spec = load(MODELS / "overdispersed_counts.toml")
    sim = pickle.loads(pickle.dumps(spec.simulator()))
    data = sim(50, np.random.default_rng(7))
    frame = generate("negative_binomial_regression", 50, np.random.default_rng(7),
                     spec.data.truth)
    np.testing.assert_array_equal(data["y"], frame["y"].to_numpy())
    np.testing.assert_array_equal(data["X"].to_numpy(), frame[["x1", "x2", "x3"]].to_numpy())
    bm.models.negative_binomial_regression(**data)  # the builder accepts what it returns


def test_bootstrap_simulator_resamples_rows():
    spec = load(MODELS / "spector_logistic.toml")
    sim = pickle.loads(pickle.dumps(spec.simulator()))
    data = sim(100, np.random.default_rng(1))
    rows = np.random.default_rng(1).integers(0, 32, size=100)
    np.testing.assert_array_equal(data["y"], spec.data.frame["GRADE"].to_numpy()[rows])
    assert data["X"].shape == (100, 3)


def test_study_arguments_come_from_the_file_and_the_spec():
    spec = load(MODELS / "coin_flip.toml")
    args = spec.study_arguments("map_to_mle")
    assert args["builder"] is bm.models.bernoulli
    assert args["prior"] == {"p_prior": bm.Beta(2.0, 2.0)}
    assert args["ns"] == [10, 30, 100, 300, 1000, 3000] and args["reps"] == 20
    assert args["random_seed"] == spec.fit.random_seed
    data = args["simulate"](1000, np.random.default_rng(0))
    assert abs(data["y"].mean() - 0.7) < 0.05

    lasso = load(MODELS / "diabetes_lasso.toml").study_arguments("sparsity_path")
    assert set(lasso["data"]) == {"X", "y", "sigma_prior"}
    assert lasso["scales"][0] == 1 and lasso["nuts_at"] == [20]


def test_true_parameters_are_keyed_by_the_specs_labels(tmp_path):
    text = """
[model]
builder = "logistic_regression"
[data]
source = "synthetic"
n = 100
seed = 1
truth = { intercept = -0.5, coef = [1.0, -2.0] }
[studies.coverage]
ns = [50]
reps = 2
"""
    spec = load(write(tmp_path, text))
    assert spec.study_arguments("coverage")["true_params"] == {
        "intercept": -0.5, "coef[x1]": 1.0, "coef[x2]": -2.0}


def test_grids_and_study_priors(tmp_path):
    text = BASE + """
[studies.map_to_mle]
ns = [10, 100]
reps = 3
prior = { mu = "Normal(1)" }
"""
    spec = load(write(tmp_path, text))
    assert spec.study_arguments("map_to_mle")["prior"] == {"mu_prior": bm.Normal(1.0)}
    lasso = load(MODELS / "diabetes_lasso.toml").with_study(
        "sparsity_path", {"scales": {"geomspace": [1, 1000, 4]}, "nuts_at": []})
    np.testing.assert_allclose(lasso.study_arguments("sparsity_path")["scales"],
                               [1, 10, 100, 1000])


def test_studies_needing_truth_fail_clearly_on_real_data():
    spec = load(MODELS / "spector_logistic.toml").with_study("coverage", {"ns": [20],
                                                                          "reps": 2})
    with pytest.raises(SpecError, match="needs true parameters"):
        spec.study_arguments("coverage")
