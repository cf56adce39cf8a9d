"""Mixed models from formulas: random-effects terms, the spec, its priors and its PyMC model.

Every expected value is computed here independently of the code under test: levels and codes
with pandas, designs from the DataFrame's columns, log-densities with SciPy.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesmle as bm
from bayesmle.errors import (
    DataError,
    ImproperPosteriorError,
    MLENotFoundError,
    PriorError,
    SpecError,
)
from bayesmle.models.mixed import MixedMeta, mixed_design
from bayesmle.models.mixed_design import z_matrix
from bayesmle.models.random_terms import parse_mixed_formula, random_blocks
from bayesmle.priors import lkj_log_normaliser

N = 48


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261122)
    g = rng.permutation(np.repeat(["s2", "s10", "s1", "s7", "s3", "s5"], 8))
    out = pd.DataFrame({
        "x": rng.normal(size=N),
        "z": rng.normal(size=N),
        "g": g,
        "a": rng.choice(["p", "q", "r"], N),
        "b": rng.choice(["u", "v"], N),
        "h": rng.choice([3, 1, 20, 7], N),  # numeric levels sort as numbers
    })
    effect = dict(zip(sorted(set(g)), rng.normal(scale=0.7, size=6), strict=True))
    eta = 0.3 + 0.8 * out["x"] + out["g"].map(effect)
    out["y"] = eta + rng.normal(size=N)
    out["n"] = rng.integers(1, 6, size=N)
    out["k"] = rng.binomial(out["n"], 1 / (1 + np.exp(-eta)))
    out["yes"] = (rng.uniform(size=N) < 1 / (1 + np.exp(-eta))).astype(int)
    out["exposure"] = rng.uniform(0.5, 2.0, size=N)
    out["count"] = rng.poisson(out["exposure"] * np.exp(0.2 * eta))
    return out


def _levels_codes(frame: pd.DataFrame, factors: list[str]) -> tuple[list[str], np.ndarray]:
    """Levels (labels 'a:b', first factor slowest) and codes by pandas' groupby."""
    grouped = frame.groupby(factors if len(factors) > 1 else factors[0], sort=True)
    keys = list(grouped.groups)
    labels = [":".join(str(v) for v in (k if isinstance(k, tuple) else (k,))) for k in keys]
    return labels, grouped.ngroup().to_numpy()


# ---------------------------------------------------------------------------------------------
# Parsing and blocks
# ---------------------------------------------------------------------------------------------
CASES = [
    ("y ~ x + (1 | g)", "x", [("g", ["Intercept"])]),
    ("y ~ x + (1 + x | g)", "x", [("g", ["Intercept", "x"])]),
    ("y ~ x + (x | g)", "x", [("g", ["Intercept", "x"])]),  # implicit intercept, as lme4
    ("y ~ x + (0 + x | g)", "x", [("g", ["x"])]),
    ("y ~ x + (-1 + x | g)", "x", [("g", ["x"])]),
    ("y ~ x + (1 | a/b)", "x", [("a", ["Intercept"]), ("a:b", ["Intercept"])]),
    ("y ~ x + (1 | a:b)", "x", [("a:b", ["Intercept"])]),
    ("y ~ x + (1 + x || g)", "x", [("g", ["Intercept"]), ("g", ["x"])]),
    ("y ~ (1 | g) + z + (0 + x + z | h)", "z", [("g", ["Intercept"]), ("h", ["x", "z"])]),
    ("y ~ (1 | g)", "1", [("g", ["Intercept"])]),
    ("y ~ 0 + x + (1 + x + z | g) + (1 | h)", "0 + x",
     [("g", ["Intercept", "x", "z"]), ("h", ["Intercept"])]),
]


@pytest.mark.parametrize(("formula", "fixed", "expected"), CASES)
def test_blocks_of_every_syntax(frame, formula, fixed, expected):
    parsed = parse_mixed_formula(formula, columns=list(frame.columns))
    assert parsed.response == "y"
    assert parsed.fixed == fixed
    blocks = random_blocks(parsed, frame)
    assert [(b.group, list(b.columns)) for b in blocks] == expected
    for block in blocks:
        labels, codes = _levels_codes(frame, block.group.split(":"))
        assert list(block.levels) == labels
        np.testing.assert_array_equal(block.codes, codes)
        columns = {"Intercept": np.ones(N), "x": frame["x"], "z": frame["z"]}
        want = np.column_stack([columns[c] for c in block.columns])
        np.testing.assert_array_equal(block.values, want)


def test_numeric_levels_sort_as_numbers_and_categoricals_keep_their_order(frame):
    (block,) = random_blocks(parse_mixed_formula("y ~ (1 | h)"), frame)
    assert block.levels == ("1", "3", "7", "20")
    cat = frame.assign(g=pd.Categorical(frame["g"], categories=["s7", "s1", "s10", "s2",
                                                                 "s3", "s5", "s99"]))
    (block,) = random_blocks(parse_mixed_formula("y ~ (1 | g)"), cat)
    assert block.levels == ("s7", "s1", "s10", "s2", "s3", "s5")  # unused s99 dropped
    np.testing.assert_array_equal(block.codes, cat["g"].cat.remove_unused_categories()
                                  .cat.codes.to_numpy())


def test_spec_labels_and_design(frame):
    spec = bm.models.glm("y ~ x + (1 + x + z | g) + (1 | a:b)", frame,
                         priors={"sd": bm.HalfNormal(1.0)})
    design = mixed_design(spec)
    assert spec.params == ("intercept", "coef", "sd", "corr", "sigma")
    assert spec.solver == "mixed" and spec.family == "gaussian"
    assert spec.observations is None
    assert spec.options["formula"] == "y ~ x + (1 + x + z | g) + (1 | a:b)"
    assert isinstance(spec.options["mixed"], MixedMeta)
    labels = {p: spec.labels(p, spec.prior_shapes[p]) for p in spec.params}
    assert labels["coef"] == ["coef[x]"]
    assert labels["sd"] == design.sd_labels() == ["sd[g]", "sd[g:x]", "sd[g:z]", "sd[a:b]"]
    assert labels["corr"] == design.corr_labels() == [
        "corr[g:Intercept,x]", "corr[g:Intercept,z]", "corr[g:x,z]"]
    np.testing.assert_array_equal(design.X, np.column_stack([np.ones(N), frame["x"]]))
    assert design.fixed_names == ("Intercept", "x")
    np.testing.assert_array_equal(design.y, frame["y"])
    assert design.trials is None and design.offset is None
    # Z from pandas: one column per (level, column), level-major, in re_labels' order
    columns = []
    for group, level, column in design.re_labels():
        lab, codes = _levels_codes(frame, group.split(":"))
        v = np.ones(N) if column == "Intercept" else frame[column].to_numpy()
        columns.append(np.where(codes == lab.index(level), v, 0.0))
    np.testing.assert_array_equal(z_matrix(design).toarray(), np.column_stack(columns))
    two = bm.models.glm("y ~ x + (x | g)", frame)
    assert two.labels("corr", (1,)) == mixed_design(two).corr_labels() == ["corr[g]"]


def test_every_array_is_pm_data_and_reported_names_exist(frame):
    spec = bm.models.glm("y ~ x + (1 + x | g) + (1 | h)", frame,
                         priors={"sd": bm.HalfNormal(1.0), "corr": bm.LKJ(2.0)})
    model = spec.build()
    shared = {name for name, var in model.named_vars.items()
              if type(var).__name__.endswith("SharedVariable")}
    assert shared == set(spec.data_values())
    for name in (*spec.params, "re"):
        assert name in model.named_vars


def test_subset_rebuilds_with_the_same_levels(frame):
    spec = bm.models.glm("y ~ x + (1 | g)", frame, priors={"sd": bm.HalfNormal(1.0)})
    rows = np.arange(0, N, 3)
    sub = spec.subset(rows)
    assert sub.nobs == len(rows) and sub.solver == "mixed"
    full, part = mixed_design(spec), mixed_design(sub)
    assert part.blocks[0].levels == full.blocks[0].levels
    np.testing.assert_array_equal(part.blocks[0].codes, full.blocks[0].codes[rows])
    np.testing.assert_array_equal(part.X, full.X[rows])
    assert sub.priors["sd"] == bm.HalfNormal(1.0)


def test_missing_values_raise_or_are_dropped_everywhere(frame):
    holes = frame.copy()
    holes["g"] = holes["g"].astype(object)
    holes.loc[[3, 10], "g"] = None  # a grouping factor
    holes.loc[20, "z"] = np.nan  # a random slope's column
    with pytest.raises(DataError, match=r"row\(s\) \['3', '10', '20'\].*na_action='drop'"):
        bm.models.glm("y ~ x + (1 + z | g)", holes)
    spec = bm.models.glm("y ~ x + (1 + z | g)", holes, na_action="drop")
    kept = frame.drop(index=[3, 10, 20])
    want = mixed_design(bm.models.glm("y ~ x + (1 + z | g)", kept))
    got = mixed_design(spec)
    assert got.n == N - 3
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.y, want.y)
    np.testing.assert_array_equal(got.blocks[0].codes, want.blocks[0].codes)
    np.testing.assert_array_equal(got.blocks[0].values, want.blocks[0].values)


def test_families_data_and_design(frame):
    binom = bm.models.glm("k ~ x + (1 | g)", frame, family="binomial", trials="n",
                          link="cloglog")
    d = mixed_design(binom)
    assert (d.family, d.link) == ("binomial", "cloglog")
    np.testing.assert_array_equal(d.trials, frame["n"])
    pois = bm.models.glm("count ~ x + (1 | g)", frame, family="poisson", exposure="exposure")
    np.testing.assert_allclose(mixed_design(pois).offset, np.log(frame["exposure"]),
                               rtol=1e-15)
    bern = bm.models.glm("yes ~ x + (1 | g)", frame, family="bernoulli", link="probit")
    assert mixed_design(bern).trials is None and "sigma" not in bern.params


# ---------------------------------------------------------------------------------------------
# Typed errors naming the term
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("formula", "error", "pattern"), [
    ("y ~ x + (1 + w | g)", SpecError, r"`\(1 \+ w \| g\)`.*`w` is not a column"),
    ("y ~ x + (1 | q)", SpecError, r"`\(1 \| q\)`.*grouping factor `q` is not a column"),
    ("y ~ x + (0 | g)", SpecError, r"`\(0 \| g\)` has no column"),
    ("y ~ x + 1 | g", SpecError, r"`1 \| g` holds `\|` but is not a random-effects term"),
    ("y ~ x + (1 | g) + (1 | g)", SpecError, r"`Intercept` of the grouping factor `g` is in "
                                             r"two random-effects terms"),
    ("y ~ x + (1 | a/b) + (0 + x | a) + (1 | a)", SpecError,
     r"`\(1 \| a\)` \(from `\(1 \| a/b\)`\) and `\(1 \| a\)`"),
    ("y ~ x + (1 | C(g))", SpecError, r"`\(1 \| C\(g\)\)` the grouping factor `C\(g\)`"),
    ("y ~ x - (1 | g)", SpecError, r"`\(1 \| g\)` is subtracted"),
    ("y x + (1 | g)", SpecError, "exactly one '~'"),
])
def test_formula_errors_name_the_term(frame, formula, error, pattern):
    with pytest.raises(error, match=pattern):
        bm.models.glm(formula, frame)


def test_data_errors_name_the_term(frame):
    one = frame.assign(one="only")
    with pytest.raises(DataError, match=r"`one` of the random-effects term `\(1 \| one\)` has "
                                        r"a single level"):
        bm.models.glm("y ~ x + (1 | one)", one)
    rows = frame.assign(row=np.arange(N))
    with pytest.raises(DataError, match=r"`\(1 \| row\)` has 48 random effects .* for 48 "
                                        r"rows"):
        bm.models.glm("y ~ x + (1 | row)", rows)
    # a grouping factor per row is identified without a residual scale (lme4's glmer too)
    spec = bm.models.glm("yes ~ x + (1 | row)", rows, family="bernoulli")
    assert mixed_design(spec).blocks[0].n_levels == N
    with pytest.raises(SpecError, match="not a string|must be a string"):
        bm.models.glm(3, frame)


def test_family_and_response_errors(frame):
    with pytest.raises(SpecError, match=r"'gamma' is not a family with random effects.*"
                                        r"'gaussian', 'bernoulli', 'binomial', 'poisson'"):
        bm.models.glm("y ~ x + (1 | g)", frame, family="gamma")
    with pytest.raises(DataError, match="needs `trials`"):
        bm.models.glm("k ~ x + (1 | g)", frame, family="binomial")
    assert frame["k"].max() > 1
    with pytest.raises(DataError, match=r"column 'k'.*exceeds `trials`"):
        bm.models.glm("k ~ x + (1 | g)", frame, family="binomial", trials=np.ones(N, int))
    with pytest.raises(DataError, match="column 'y'.*binary labels"):
        bm.models.glm("y ~ x + (1 | g)", frame, family="bernoulli")
    with pytest.raises(SpecError, match=r"`exposure` was given for family 'gaussian'"):
        bm.models.glm("y ~ x + (1 | g)", frame, exposure="exposure")


# ---------------------------------------------------------------------------------------------
# Priors by name
# ---------------------------------------------------------------------------------------------
def test_priors_by_name_and_defaults(frame):
    spec = bm.models.glm("y ~ x + z + (1 + x | g) + (1 | h)", frame, priors={
        "coef": bm.Normal(2.0), "coef[z]": bm.Normal(0.5), "sd": bm.HalfNormal(1.0),
        "sd[g:x]": bm.HalfNormal(0.1), "corr": bm.LKJ(3.0)})
    assert spec.priors["coef"] == bm.Normal([2.0, 0.5], mu=[0.0, 0.0])
    assert spec.priors["sd"] == bm.HalfNormal([1.0, 0.1, 1.0])
    assert spec.priors["corr"] == bm.LKJ(3.0)
    assert spec.priors["intercept"] == bm.Flat() and spec.priors["sigma"] == bm.HalfFlat()
    default = bm.models.glm("y ~ x + (1 + x | g)", frame)
    assert default.priors["sd"] == bm.HalfFlat() and default.priors["corr"] == bm.LKJ(1.0)
    assert default.priors["coef"] == bm.Flat() and default.is_flat  # LKJ(1) is flat
    assert default.flat().priors["corr"] == bm.LKJ(1.0)


def test_prior_errors(frame):
    formula = "y ~ x + (1 + x | g)"
    with pytest.raises(PriorError, match=r"unknown name\(s\) \['sd\[h\]'\].*'sd\[g\]', "
                                         r"'sd\[g:x\]', 'corr', 'sigma'"):
        bm.models.glm(formula, frame, priors={"sd[h]": bm.HalfNormal(1.0)})
    with pytest.raises(PriorError, match=r"unknown name\(s\) \['corr'\]"):
        bm.models.glm("y ~ x + (1 | g)", frame, priors={"corr": bm.LKJ(2.0)})
    with pytest.raises(PriorError, match="`sd` is a parameter on the positive scale"):
        bm.models.glm(formula, frame, priors={"sd": bm.Normal(1.0)})
    with pytest.raises(PriorError, match="`corr` is a parameter on the correlation matrices"):
        bm.models.glm(formula, frame, priors={"corr": bm.HalfNormal(1.0)})
    with pytest.raises(PriorError, match="`coef` is a parameter on the real line.*LKJ"):
        bm.models.glm(formula, frame, priors={"coef": bm.LKJ(2.0)})
    with pytest.raises(PriorError, match=r"mix the families \['Exponential', 'HalfNormal'\]"):
        bm.models.glm(formula, frame, priors={"sd": bm.HalfNormal(1.0),
                                              "sd[g]": bm.Exponential(1.0)})
    with pytest.raises(PriorError, match=r"\['sd\[g:x\]'\] but not for the other standard "
                                         r"deviations, whose default is HalfFlat\(\)"):
        bm.models.glm(formula, frame, priors={"sd[g:x]": bm.HalfNormal(1.0)})
    spec = bm.models.glm(formula, frame)
    with pytest.raises(PriorError, match="correlation matrices"):
        spec.with_priors(corr=bm.Normal(1.0))
    with pytest.raises(PriorError, match="real line"):
        spec.with_priors(coef=bm.LKJ(2.0))
    assert spec.with_priors(sd=bm.HalfNormal([1.0, 2.0])).priors["sd"] == \
        bm.HalfNormal([1.0, 2.0])
    with pytest.raises(PriorError, match="shape"):
        spec.with_priors(sd=bm.HalfNormal([1.0, 2.0, 3.0]))
    with pytest.raises(PriorError, match="one number"):
        bm.LKJ([1.0, 2.0])


def test_lkj_density_is_the_published_one():
    import pymc as pm

    r = 0.37
    for eta in (0.7, 1.0, 2.5):  # k = 2: (r + 1) / 2 ~ Beta(eta, eta)
        with pm.Model() as model:
            pass
        value = np.array([[1.0, r], [r, 1.0]])
        logp = bm.LKJ(eta).logp(model, "corr", pm.math.constant(value)).eval()
        assert logp == pytest.approx(st.beta.logpdf((r + 1) / 2, eta, eta) - np.log(2.0),
                                     rel=1e-12)
    # k = 3, eta = 1: uniform on the 3 x 3 correlation matrices, whose volume is pi^2 / 2
    assert lkj_log_normaliser(1.0, 3) == pytest.approx(np.log(np.pi ** 2 / 2), rel=1e-14)


def test_flat_sd_prior_is_refused_by_nuts_and_extreme_responses_by_the_mle(frame):
    spec = bm.models.glm("y ~ x + (1 | g)", frame)
    with pytest.raises(ImproperPosteriorError, match=r"(?s)`sd` \(sd\[g\]\) has the flat "
                                                     r"prior HalfFlat\(\).*HalfNormal"):
        bm.fit(spec, "nuts", draws=10, tune=10, chains=1, random_seed=1)
    zeros = frame.assign(yes=0)
    bern = bm.models.glm("yes ~ x + (1 | g)", zeros, family="bernoulli",
                         priors={"sd": bm.HalfNormal(1.0)})
    with pytest.raises(MLENotFoundError, match="every response is 0"):
        for check in bern.mle_checks:
            check(bern)
    with pytest.raises(ImproperPosteriorError, match="intercept"):
        for check in bern.posterior_checks:
            check(bern)
    proper = bern.with_priors(intercept=bm.Normal(5.0))
    for check in proper.posterior_checks:
        check(proper)  # a proper intercept prior makes it proper
    collinear = frame.assign(x2=2 * frame["x"])
    spec = bm.models.glm("y ~ x + x2 + (1 | g)", collinear)
    with pytest.raises(MLENotFoundError, match="x2"):
        for check in spec.mle_checks:
            check(spec)


# ---------------------------------------------------------------------------------------------
# The PyMC model against SciPy
# ---------------------------------------------------------------------------------------------
def _value_point(model, values):
    """Model value-variable point from natural values (log for the positive ones)."""
    point = {}
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        v = np.asarray(values[rv.name], dtype=float)
        point[value_var.name] = np.log(v) if value_var.name.endswith("_log__") else v
    return point


def _evaluate(model, names, point):
    """Model variables at a point of its value variables."""
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    return [np.asarray(o) for o in fn(point)]


def test_gaussian_random_intercept_log_density_equals_scipy(frame):
    priors = {"intercept": bm.Normal(10.0, mu=1.0), "coef": bm.Normal(2.0),
              "sd": bm.HalfNormal(1.5), "sigma": bm.HalfNormal(3.0)}
    spec = bm.models.glm("y ~ x + (1 | g)", frame, priors=priors)
    model = spec.build()
    rng = np.random.default_rng(7)
    labels, codes = _levels_codes(frame, ["g"])
    values = {"intercept": 0.4, "coef": np.array([0.9]), "sd": np.array([0.6]), "sigma": 1.2,
              "re_z_0": rng.normal(size=(len(labels), 1))}
    got = model.compile_logp(jacobian=False)(_value_point(model, values))
    b = 0.6 * values["re_z_0"][:, 0]
    mu = 0.4 + 0.9 * frame["x"].to_numpy() + b[codes]
    want = (st.norm.logpdf(frame["y"], mu, 1.2).sum()
            + st.norm.logpdf(values["re_z_0"]).sum()
            + st.halfnorm.logpdf(0.6, scale=1.5) + st.halfnorm.logpdf(1.2, scale=3.0)
            + st.norm.logpdf(0.4, 1.0, 10.0) + st.norm.logpdf(0.9, 0.0, 2.0))
    assert got == pytest.approx(want, rel=1e-12)
    re = _evaluate(model, ["re"], _value_point(model, values))[0]
    np.testing.assert_allclose(re, b, rtol=1e-14)


def test_correlated_block_effects_and_lkj_cholesky(frame):
    spec = bm.models.glm("y ~ x + (1 + x | g)", frame,
                         priors={"sd": bm.HalfNormal(1.0), "corr": bm.LKJ(2.0)})
    model = spec.build()
    rng = np.random.default_rng(3)
    point = model.initial_point()
    point["re_z_0"] = rng.normal(size=point["re_z_0"].shape)
    point[model.rvs_to_values[model["corr_chol_0"]].name] = np.array([0.8])  # unconstrained
    point["sd_log__"] = np.log([0.7, 0.3])
    L, corr, re = _evaluate(model, ["corr_chol_0", "corr", "re"], point)
    R = L @ L.T
    np.testing.assert_allclose(np.diag(R), 1.0, rtol=1e-14)
    assert corr[0] == pytest.approx(R[0, 1], rel=1e-14)
    cov = np.diag([0.7, 0.3]) @ R @ np.diag([0.7, 0.3])
    b = point["re_z_0"] @ np.linalg.cholesky(cov).T  # level-major, two columns per level
    np.testing.assert_allclose(re, b.ravel(), rtol=1e-12)
    labels, codes = _levels_codes(frame, ["g"])
    mu = point["intercept"] + point["coef"][0] * frame["x"].to_numpy() + b[codes, 0] + \
        b[codes, 1] * frame["x"].to_numpy()
    loglik = model.compile_logp(vars=[model["y_obs"]], jacobian=False)(point)
    assert loglik == pytest.approx(st.norm.logpdf(frame["y"], mu, 1.0).sum(), rel=1e-12)


@pytest.mark.parametrize(("formula", "kwargs"), [
    ("yes ~ x + (1 | g)", {"family": "bernoulli", "link": "probit"}),
    ("k ~ x + (1 | g)", {"family": "binomial", "link": "cloglog", "trials": "n"}),
    ("count ~ x + (1 | g)", {"family": "poisson", "exposure": "exposure"}),
])
def test_glmm_likelihoods_equal_scipy(frame, formula, kwargs):
    spec = bm.models.glm(formula, frame, priors={"sd": bm.HalfNormal(1.0)}, **kwargs)
    model = spec.build()
    labels, codes = _levels_codes(frame, ["g"])
    z = np.linspace(-1.5, 1.5, len(labels))[:, None]
    values = {"intercept": -0.3, "coef": np.array([0.7]), "sd": np.array([0.8]), "re_z_0": z}
    got = model.compile_logp(vars=[model["y_obs"]], jacobian=False)(
        _value_point(model, values))
    eta = -0.3 + 0.7 * frame["x"].to_numpy() + 0.8 * z[codes, 0]
    family = kwargs["family"]
    if family == "bernoulli":
        want = st.bernoulli.logpmf(frame["yes"], st.norm.cdf(eta)).sum()
    elif family == "binomial":
        want = st.binom.logpmf(frame["k"], frame["n"], -np.expm1(-np.exp(eta))).sum()
    else:
        want = st.poisson.logpmf(frame["count"], frame["exposure"] * np.exp(eta)).sum()
    assert got == pytest.approx(want, rel=1e-11)


# ---------------------------------------------------------------------------------------------
# Untrusted text
# ---------------------------------------------------------------------------------------------
def test_malicious_terms_are_refused_before_anything_is_evaluated(frame, monkeypatch):
    import os

    import formulaic

    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(("system", a)))
    real = formulaic.model_matrix
    monkeypatch.setattr(formulaic, "model_matrix",
                        lambda *a, **k: calls.append(("formulaic", a)) or real(*a, **k))
    for formula in ("y ~ x + (__import__('os').system('x') | g)",
                    "y ~ x + (1 | __import__('os').system('x'))",
                    "y ~ x + (1 + {__import__('os').system('x')} | g)",
                    "y ~ (1 | g) + __import__('os').system('x')"):
        with pytest.raises(SpecError, match="`formula`"):
            bm.models.glm(formula, frame)
    assert calls == []
    # trusted=True skips the allowlist (a formula the program wrote itself)
    spec = bm.models.glm("y ~ x + (1 + np.square(x) | g)", frame, trusted=True)
    assert mixed_design(spec).blocks[0].columns == ("Intercept", "np.square(x)")


# ---------------------------------------------------------------------------------------------
# Spec files
# ---------------------------------------------------------------------------------------------
def test_spec_file_with_random_terms(frame, tmp_path):
    from bayesmle import specfile

    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "mixed.toml").write_text(textwrap.dedent("""\
        [model]
        builder = "glm"
        formula = "y ~ x + (1 + x | g)"

        [data]
        source = "csv"
        path = "data.csv"

        [priors]
        sd = "HalfNormal(1.0)"
        corr = "LKJ(2)"
        coef = "Normal(5)"
        """))
    loaded = specfile.load(tmp_path / "mixed.toml")
    spec = loaded.model_spec()
    direct = bm.models.glm("y ~ x + (1 + x | g)", pd.read_csv(tmp_path / "data.csv"),
                           priors={"sd": bm.HalfNormal(1.0), "corr": bm.LKJ(2.0),
                                   "coef": bm.Normal(5.0)})
    assert spec.params == direct.params and spec.solver == "mixed"
    assert dict(spec.priors) == dict(direct.priors)
    got, want = mixed_design(spec), mixed_design(direct)
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.blocks[0].codes, want.blocks[0].codes)
    assert got.blocks[0].levels == want.blocks[0].levels
    (tmp_path / "bad.toml").write_text(textwrap.dedent("""\
        [model]
        builder = "glm"
        formula = "y ~ x + (__import__('os').system('x') | g)"

        [data]
        source = "csv"
        path = "data.csv"
        """))
    with pytest.raises(SpecError, match="bad.toml: `model.formula`"):
        specfile.load(tmp_path / "bad.toml")


# ---------------------------------------------------------------------------------------------
# NUTS on a funnel-prone data set
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nuts_non_centred_has_no_divergences_on_a_funnel(seed):
    rng = np.random.default_rng(20261122)
    groups, per_group = 8, 5  # few groups, a small group scale: the funnel
    g = np.repeat([f"s{j}" for j in range(groups)], per_group)
    u = rng.normal(scale=0.1, size=groups)
    y = 0.5 + np.repeat(u, per_group) + rng.normal(scale=1.0, size=groups * per_group)
    spec = bm.models.glm("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g}),
                         priors={"sd": bm.HalfNormal(1.0), "sigma": bm.HalfNormal(2.0),
                                 "intercept": bm.Normal(5.0)})
    # default settings (non-centred; target_accept 0.95 for mixed models); run = fit without
    # emitting diagnostics as warnings (short chains: R-hat is checked loosely below)
    post = bm.inference.run(spec, "nuts", draws=300, tune=500, chains=2, random_seed=seed)
    assert int(post.datatree["sample_stats"]["diverging"].sum()) == 0
    summary = post.summary()
    assert list(summary.index) == ["intercept", "sd[g]", "sigma"]
    assert float(summary["r_hat"].max()) < 1.05
    effects = post.random_effects()
    assert effects.shape == (groups, 4) and np.all(effects["sd"] > 0)
