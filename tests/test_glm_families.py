"""Binomial regression with logit / probit / cloglog links and gamma regression (issue 14).

References are independent of this package: statsmodels' ``GLM`` (fitted by Newton's method to
a tight tolerance; standard errors from its *observed* Hessian, which is what an MLE's
standard errors are -- the expected information differs for the non-canonical probit and
cloglog links), scipy's log-densities and a direct scipy optimisation of the gamma shape.
"""

from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

import bayesmle as bm
from bayesmle.errors import DataError, MLENotFoundError, SpecError
from bayesmle.models.regression_model import LINKS, RegressionObservations

sm = pytest.importorskip("statsmodels.api")

_SM_LINKS = {"logit": "Logit", "probit": "Probit", "cloglog": "CLogLog"}


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def vector(d, intercept=True):
    return np.concatenate(([np.atleast_1d(d["intercept"])] if intercept else [])
                          + [np.ravel(d["coef"])])


def sm_binomial(X, k, n, link):
    """statsmodels' GLM fitted by Newton to convergence; SEs from the observed Hessian."""
    family = sm.families.Binomial(link=getattr(sm.families.links, _SM_LINKS[link])())
    model = sm.GLM(np.column_stack([k, n - k]), sm.add_constant(np.asarray(X, float)),
                   family=family)
    ref = model.fit(method="newton", tol=1e-13, maxiter=500)
    ref = model.fit(start_params=ref.params, method="newton", tol=1e-13, maxiter=500)
    cov = np.linalg.inv(-model.hessian(ref.params, observed=True))
    return model, ref, np.sqrt(np.diag(cov))


@pytest.fixture(scope="module")
def star98():
    data = sm.datasets.star98.load_pandas()
    k = data.endog["NABOVE"].to_numpy()
    n = (data.endog["NABOVE"] + data.endog["NBELOW"]).to_numpy()
    return data.exog, k, n


@pytest.fixture(scope="module")
def spector():
    data = sm.datasets.spector.load_pandas()
    return data.exog[["GPA", "TUCE", "PSI"]], data.endog.to_numpy()


# -- binomial: statsmodels parity ------------------------------------------------------------------
@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_star98_binomial_counts_match_statsmodels(star98, link):
    X, k, n = star98
    res = bm.fit(bm.models.binomial_regression(X, k, n, link=link), "mle")
    _, ref, se = sm_binomial(X, k, n, link)
    assert res.converged
    assert rel(vector(res.params), ref.params) <= 1e-8
    assert rel(vector(res.stderr), se) <= 1e-8
    assert res.loglik == pytest.approx(ref.llf, rel=1e-8, abs=0)
    assert res.spec.options["link"] == link
    assert res.labels[1:4] == ["coef[LOWINC]", "coef[PERASIAN]", "coef[PERBLACK]"]


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_spector_binary_links_match_statsmodels(spector, link):
    X, y = spector
    res = bm.fit(bm.models.binomial_regression(X, y, link=link), "mle")
    _, ref, se = sm_binomial(X, y, np.ones_like(y), link)
    assert rel(vector(res.params), ref.params) <= 1e-8
    assert rel(vector(res.stderr), se) <= 1e-8
    assert res.loglik == pytest.approx(ref.llf, rel=1e-8, abs=0)


def test_binary_logit_is_logistic_regression(spector):
    X, y = spector
    a = bm.fit(bm.models.binomial_regression(X, y), "mle")
    b = bm.fit(bm.models.logistic_regression(X, y), "mle")
    assert rel(vector(a.params), vector(b.params)) <= 1e-9
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)


def test_binomial_predictions_and_loglik_match_statsmodels(star98):
    X, k, n = star98
    res = bm.fit(bm.models.binomial_regression(X, k, n, link="probit"), "mle")
    model, ref, _ = sm_binomial(X, k, n, "probit")
    new = X.iloc[:7]
    trials = np.arange(1, 8) * 10
    pred = res.predict({"X": new, "trials": trials})
    p = ref.predict(sm.add_constant(new.to_numpy(), has_constant="add"))
    np.testing.assert_allclose(pred["mean"].to_numpy(), trials * p, rtol=1e-8)
    # pointwise log-likelihood of the plug-in MLE = scipy's binomial log-pmf
    ll = res.log_likelihood()["y_obs"].values.reshape(-1)
    eta = sm.add_constant(X.to_numpy()) @ vector(res.params)
    p_fit = scipy.stats.norm.cdf(eta)
    np.testing.assert_allclose(ll, scipy.stats.binom.logpmf(k, n, p_fit), rtol=1e-9)


def test_binomial_loo_and_subset(star98):
    X, k, n = star98
    spec = bm.models.binomial_regression(X.iloc[:, :3], k, n, link="cloglog")
    res = bm.fit(spec, "mle")
    loo = res.loo()
    assert np.isfinite(loo.elpd) and loo.pointwise["elpd"].shape == (len(k),)
    assert loo.elpd < res.loglik  # leaving rows out costs predictive accuracy
    sub = spec.subset(np.arange(50))
    np.testing.assert_array_equal(sub.data["trials"], n[:50])
    assert sub.options["link"] == "cloglog" and sub.family == "binomial"


def test_new_rows_need_trials_unless_fitted_trials_are_one(star98, spector):
    X, k, n = star98
    res = bm.fit(bm.models.binomial_regression(X.iloc[:, :2], k, n), "mle")
    with pytest.raises(DataError, match=r"data\['trials'\]` is required"):
        res.predict({"X": X.iloc[:3, :2]})
    pred = res.predict({"X": X.iloc[:3, :2], "trials": 1})  # one number for every row
    assert pred.shape[0] == 3 and (pred["mean"] < 1).all()
    with pytest.raises(DataError, match="exceeds"):
        res.log_likelihood({"X": X.iloc[:2, :2], "trials": [3, 3], "y": [1, 4]})
    Xs, y = spector
    binary = bm.fit(bm.models.binomial_regression(Xs, y, link="probit"), "mle")
    mean = binary.predict({"X": Xs.iloc[:4]})["mean"].to_numpy()  # trials default to 1
    ref_model, ref, _ = sm_binomial(Xs, y, np.ones_like(y), "probit")
    np.testing.assert_allclose(mean, ref.predict(sm.add_constant(Xs.iloc[:4].to_numpy())),
                               rtol=1e-8)


# -- numerics far in the tails ---------------------------------------------------------------------
@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_loglik_keeps_its_digits_in_both_tails(link):
    eta = np.array([-35.0, -20.0, -8.0, -1.0, 0.0, 1.0, 3.0, 8.0, 20.0, 35.0])
    eta = eta[np.abs(eta) < 20] if link == "cloglog" else eta  # exp(exp(20)) is beyond double
    trials = np.full(eta.size, 7.0)
    k = np.tile([0.0, 7.0, 3.0], eta.size)[:eta.size]
    model = RegressionObservations("binomial", True, 0, link=link)(
        {"X": eta[:, None], "y": k, "trials": trials})
    logp = model.compile_logp(vars=[model["y_obs"]], sum=False)
    ours = logp({"coef": np.array([1.0]), "intercept": np.array(0.0)})[0]
    if link == "logit":
        log_p, log_q = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
    elif link == "probit":
        log_p, log_q = scipy.special.log_ndtr(eta), scipy.special.log_ndtr(-eta)
    else:
        log_p, log_q = np.log(-np.expm1(-np.exp(eta))), -np.exp(eta)
    ref = (scipy.special.gammaln(trials + 1) - scipy.special.gammaln(k + 1)
           - scipy.special.gammaln(trials - k + 1) + k * log_p + (trials - k) * log_q)
    # rtol for the tails (a naive 1 - p underflows there); atol for the binomial constant
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-13)


def test_probit_fit_far_in_the_tail_matches_scipy():
    """Rare events: fitted probabilities near 1e-12, where p = Phi(eta) itself would round."""
    x = np.linspace(-1.0, 1.0, 9)
    n = np.full(9, 10**12)
    k = np.array([0, 1, 1, 2, 3, 5, 9, 14, 25])
    res = bm.fit(bm.models.binomial_regression(x[:, None], k, n, link="probit"), "mle")

    def nll(b):
        eta = b[0] + b[1] * x
        return -np.sum(k * scipy.special.log_ndtr(eta) + (n - k) * scipy.special.log_ndtr(-eta))

    ref = scipy.optimize.minimize(nll, np.array([-7.0, 1.0]), method="Nelder-Mead",
                                  options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000})
    assert res.converged
    assert rel(vector(res.params), ref.x) <= 1e-7
    assert float(res.params["intercept"]) == pytest.approx(-7.0, abs=0.2)  # p ~ 1e-12


# -- binomial: existence of the MLE ----------------------------------------------------------------
def test_binomial_separation_is_detected_and_map_works():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    k, n = np.array([0, 0, 3, 5]), np.array([5, 5, 5, 5])  # quasi-complete: 3/5 at x = 2
    with pytest.raises(MLENotFoundError, match="quasi-complete separation") as err:
        bm.fit(bm.models.binomial_regression(x, k, n, link="probit"), "mle")
    assert "x0" in str(err.value) and "only successes" in str(err.value)
    with pytest.raises(MLENotFoundError, match="complete separation"):
        bm.fit(bm.models.binomial_regression(x, [0, 0, 5, 5], 5), "mle")
    map_ = bm.fit(bm.models.binomial_regression(x, k, n, link="probit", prior=bm.Normal(1.0)),
                  "map")
    assert map_.converged and np.all(np.isfinite(map_.params["coef"]))
    # and a row with both outcomes on each side breaks the separation: the MLE exists
    ok = bm.fit(bm.models.binomial_regression(x, [0, 1, 3, 5], n), "mle")
    _, ref, _ = sm_binomial(x, np.array([0, 1, 3, 5]), n, "logit")
    assert rel(vector(ok.params), ref.params) <= 1e-7


@pytest.mark.parametrize(("k", "what"), [([0, 0, 0], "no row has a success"),
                                         ([4, 2, 3], "every trial is a success")])
def test_all_zero_or_all_full_successes_have_no_mle(k, what):
    x = np.array([[0.0], [1.0], [2.0]])
    with pytest.raises(MLENotFoundError, match=what):
        bm.fit(bm.models.binomial_regression(x, k, [4, 2, 3]), "mle")


def test_binomial_improper_posterior_with_flat_priors_is_refused():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    with pytest.raises(bm.errors.ImproperPosteriorError):
        bm.fit(bm.models.binomial_regression(x, [0, 0, 3, 5], 5), "laplace")


# -- gamma -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scotland():
    data = sm.datasets.scotland.load_pandas()
    return data.exog, data.endog.to_numpy()


def test_gamma_regression_matches_statsmodels_and_scipy(scotland):
    X, y = scotland
    res = bm.fit(bm.models.gamma_regression(X, y), "mle")
    model = sm.GLM(y, sm.add_constant(X.to_numpy()),
                   family=sm.families.Gamma(link=sm.families.links.Log()))
    ref = model.fit(method="newton", tol=1e-13, maxiter=500)
    assert res.converged
    assert rel(vector(res.params), ref.params) <= 1e-8
    mu = ref.predict()

    def nll(shape):
        return -np.sum(scipy.stats.gamma.logpdf(y, a=shape, scale=mu / shape))

    opt = scipy.optimize.minimize_scalar(nll, bounds=(1e-3, 1e6), method="bounded",
                                         options={"xatol": 1e-12})
    assert float(res.params["shape"]) == pytest.approx(opt.x, rel=1e-6)
    assert res.loglik == pytest.approx(-opt.fun, rel=1e-10)
    assert res.labels[-1] == "shape"
    new = X.iloc[::4]
    pred = res.predict(new)
    np.testing.assert_allclose(pred["mean"].to_numpy(),
                               ref.predict(sm.add_constant(new.to_numpy(), has_constant="add")),
                               rtol=1e-8)
    loo = res.loo()
    assert np.isfinite(loo.elpd) and loo.elpd < res.loglik


def test_gamma_pointwise_loglik_is_scipys(scotland):
    X, y = scotland
    res = bm.fit(bm.models.gamma_regression(X, y), "mle")
    mu = np.exp(sm.add_constant(X.to_numpy()) @ vector(res.params))
    shape = float(res.params["shape"])
    ll = res.log_likelihood({"X": X, "y": y})["y_obs"].values.reshape(-1)
    np.testing.assert_allclose(ll, scipy.stats.gamma.logpdf(y, a=shape, scale=mu / shape),
                               rtol=1e-10)


def test_gamma_equal_responses_have_no_mle_and_map_works():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    with pytest.raises(MLENotFoundError, match="shape -> inf"):
        bm.fit(bm.models.gamma_regression(x, [2.0, 2.0, 2.0, 2.0]), "mle")
    spec = bm.models.gamma_regression(x, [2.0, 2.0, 2.0, 2.0], shape_prior=bm.Gamma(2.0, 0.1))
    res = bm.fit(spec, "map")
    assert res.converged and float(res.params["shape"]) > 0
    # not only equal values: any y whose log the predictors fit exactly
    exact = np.exp(0.3 + 0.7 * x[:, 0])
    with pytest.raises(MLENotFoundError, match="fit log"):
        bm.fit(bm.models.gamma_regression(x, exact), "mle")
    with pytest.raises(bm.errors.ImproperPosteriorError, match="shape -> inf"):
        bm.fit(bm.models.gamma_regression(x, exact, prior=bm.Normal(1.0)), "laplace")


# -- bad inputs ------------------------------------------------------------------------------------
X4 = np.array([[0.0], [1.0], [2.0], [3.0]])


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"successes": [1, 6, 2, 0], "trials": 5}, r"`successes` exceeds `trials` at row\(s\) 1 .*6 "),
    ({"successes": [1, 1, 2, 0], "trials": [3, -2, 3, 3]}, r"`trials` must hold non-negative"),
    ({"successes": [1, 0, 2, 0], "trials": [3, 0, 3, 3]}, r"`trials` must hold positive.*row"),
    ({"successes": [1, 1.5, 2, 0], "trials": 3}, r"whole-number success counts.*1\.5"),
    ({"successes": [1, 1, 2, 0], "trials": 2.5}, r"whole-number trial counts.*2\.5"),
    ({"successes": [1, 1, 2], "trials": 3}, "4 rows but `y` has 3"),
    ({"successes": [1, 1, 2, 0], "trials": [3, 3]}, "`successes` has 4 rows but `trials` has 2"),
])
def test_binomial_bad_data_are_data_errors(kwargs, pattern):
    with pytest.raises(DataError, match=pattern):
        bm.models.binomial_regression(X4, **kwargs)


def test_gamma_nonpositive_response_names_rows_and_values():
    with pytest.raises(DataError, match=r"row\(s\) 1, 3 hold \[-1\.0, 0\.0\]"):
        bm.models.gamma_regression(X4, [1.0, -1.0, 2.0, 0.0])


@pytest.mark.parametrize(("builder", "link", "pattern"), [
    ("binomial_regression", "log", r"'log'.*binomial.*'logit', 'probit', 'cloglog'"),
    ("binomial_regression", "Probit", r"'Probit'"),
    ("gamma_regression", "identity", r"'identity'.*must stay positive.*Valid links for gamma: "
                                     r"'log'"),
    ("gamma_regression", "inverse", r"'inverse'.*1/eta must stay positive"),
    ("gamma_regression", 3, r"link=3"),
])
def test_invalid_links_are_spec_errors_listing_the_valid_ones(builder, link, pattern):
    y = [1, 0, 1, 1] if builder == "binomial_regression" else [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(SpecError, match=pattern) as err:
        getattr(bm.models, builder)(X4, y, link=link)
    assert "poisson: log" in str(err.value)  # the table of valid links per family


def test_links_table():
    assert LINKS["gaussian"] == ("identity",)
    assert LINKS["bernoulli"] == LINKS["binomial"] == ("logit", "probit", "cloglog")
    assert LINKS["poisson"] == LINKS["negative_binomial"] == LINKS["gamma"] == ("log",)
    assert LINKS["student_t"] == ("identity",) and LINKS["categorical"] == ("logit",)


# -- spec files ------------------------------------------------------------------------------------
def test_spec_file_binomial_regression_with_columns(tmp_path: Path, star98):
    from bayesmle.specfile import load

    X, k, n = star98
    frame = X.iloc[:, :3].assign(above=k, total=n)
    frame.to_csv(tmp_path / "star.csv", index=False)
    (tmp_path / "star.toml").write_text(
        'name = "star98_probit"\n'
        '[model]\nbuilder = "binomial_regression"\nX = ["LOWINC", "PERASIAN", "PERBLACK"]\n'
        'successes = "above"\ntrials = "total"\nlink = "probit"\n'
        '[data]\nsource = "csv"\npath = "star.csv"\n')
    spec = load(tmp_path / "star.toml").model_spec()
    res = bm.fit(spec, "mle")
    _, ref, se = sm_binomial(X.iloc[:, :3], k, n, "probit")
    assert rel(vector(res.params), ref.params) <= 1e-8
    assert spec.options["link"] == "probit"
    loaded = load(tmp_path / "star.toml")
    new = loaded.new_data(frame.iloc[:4].drop(columns=["above"]))
    pred = res.predict(new)
    np.testing.assert_allclose(
        pred["mean"].to_numpy(),
        n[:4] * ref.predict(sm.add_constant(X.iloc[:4, :3].to_numpy(), has_constant="add")),
        rtol=1e-8)


def test_spec_file_binomial_regression_with_a_formula(tmp_path: Path, star98):
    """The formula's left-hand side is the successes; trials are a named column."""
    from bayesmle.specfile import load

    X, k, n = star98
    frame = X.iloc[:, :2].assign(above=k, total=n)
    frame.to_csv(tmp_path / "star.csv", index=False)
    (tmp_path / "star.toml").write_text(
        'name = "star98_cloglog"\n'
        '[model]\nbuilder = "binomial_regression"\nformula = "above ~ LOWINC + PERASIAN"\n'
        'trials = "total"\nlink = "cloglog"\n'
        '[data]\nsource = "csv"\npath = "star.csv"\n')
    loaded = load(tmp_path / "star.toml")
    res = bm.fit(loaded.model_spec(), "mle")
    _, ref, _ = sm_binomial(X.iloc[:, :2], k, n, "cloglog")
    assert rel(vector(res.params), ref.params) <= 1e-8
    pred = res.predict(loaded.new_data(frame.iloc[:3].drop(columns=["above"])))
    np.testing.assert_allclose(
        pred["mean"].to_numpy(),
        n[:3] * ref.predict(sm.add_constant(X.iloc[:3, :2].to_numpy(), has_constant="add")),
        rtol=1e-8)
