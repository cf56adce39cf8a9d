"""Issue 12: statistical failures labelled correctly, with messages a user can act on.

Every verdict is checked against something independent of the code under test: closed forms,
numpy / scipy.linalg.null_space, statsmodels, scikit-learn, scipy.optimize.linprog.
"""

import re

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import statsmodels.api as sm

import bayesmle as bm
from bayesmle import models
from bayesmle.models.design import as_design, collinear_columns, gram_factor
from bayesmle.models.separation import find_separation

NUTS = dict(draws=1000, tune=1000, chains=4, random_seed=20261202)


# ---------------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------------
def gaussian_posterior(X, y, tau, sigma, intercept_flat=True):
    """Exact posterior (mean, covariance) of [intercept, coef]: flat intercept, N(0, tau)."""
    A = np.column_stack([np.ones(len(y)), X])
    prior_prec = np.diag([0.0] + [1.0 / tau**2] * X.shape[1])
    prec = A.T @ A / sigma**2 + prior_prec
    cov = np.linalg.inv(prec)
    return cov @ (A.T @ y) / sigma**2, cov


def separable(A, y, *, strict=False):
    """Whether the columns A separate y (Albert & Anderson), by scipy's linprog directly."""
    A = A / np.abs(A).max(axis=0)
    m = A * (2.0 * y - 1.0)[:, None]
    n, p = m.shape
    if strict:  # max t subject to m b >= t
        res = scipy.optimize.linprog(np.r_[np.zeros(p), -1.0],
                                     A_ub=np.hstack([-m, np.ones((n, 1))]), b_ub=np.zeros(n),
                                     bounds=[(-1, 1)] * p + [(0, 1)], method="highs")
        return res.status == 0 and -res.fun > 1e-9
    res = scipy.optimize.linprog(-m.sum(axis=0), A_ub=-m, b_ub=np.zeros(n),
                                 bounds=[(-1, 1)] * p, method="highs")
    return res.status == 0 and -res.fun > 1e-7 * n


def named_set(message):
    """The columns a separation message names (between the braces)."""
    return re.search(r"\{([^}]*)\}", message).group(1).split(", ")


def check_posterior(spec):
    for check in spec.posterior_checks:
        check(spec)


def check_map(spec):
    for check in spec.map_checks:
        check(spec)


def check_nuts(post, mean, sd):
    summ = post.summary()
    assert post.divergences == 0
    assert (summ["r_hat"] < 1.01).all(), summ
    z = (summ["mean"].to_numpy() - mean) / summ["mcse_mean"].to_numpy()
    assert np.all(np.abs(z) < 4), (z, summ)
    assert np.all(np.abs(summ["sd"].to_numpy() / sd - 1) < 0.10), summ


# ---------------------------------------------------------------------------------------------
# 1. Improper iff a null direction of the design moves only flat-prior coefficients
# ---------------------------------------------------------------------------------------------
def _duplicated(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X = np.column_stack([X, X[:, 0]])
    y = 1.0 + X[:, 0] - X[:, 1] + rng.normal(size=n)
    return X, y


def test_duplicated_column_with_proper_slope_priors_is_proper():
    X, y = _duplicated()
    spec = models.linear_regression(X, y, prior=bm.Normal(1.0), sigma=1.0)
    check_posterior(spec)  # no ImproperPosteriorError: the flat intercept alone is identified
    check_map(spec)  # the MAP is unique
    mean, cov = gaussian_posterior(X, y, 1.0, 1.0)
    map_ = bm.fit(spec, "map")
    assert map_.converged
    np.testing.assert_allclose(map_.flat_params(), mean, rtol=1e-9, atol=1e-12)
    # known sigma, Gaussian prior: the posterior is Gaussian, the Laplace approximation exact
    lap = bm.fit(spec, "laplace", random_seed=0)
    np.testing.assert_allclose(lap.mode.flat_params(), mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lap.mode.cov, cov, rtol=1e-8, atol=1e-12)
    # the MLE is still not unique: the duplicated pair is named
    with pytest.raises(bm.MLENotFoundError, match=r"not unique.*\{x0, x3\}"):
        bm.fit(spec, "mle")


def test_duplicated_column_nuts_matches_the_exact_posterior():
    # (tau = 0.5 keeps the prior-identified difference of the twins within a factor ~3 of the
    # data-identified sum, so that 4 x 1000 draws mix; the check is of the target, not speed.)
    X, y = _duplicated()
    spec = models.linear_regression(X, y, prior=bm.Normal(0.5), sigma=1.0)
    mean, cov = gaussian_posterior(X, y, 0.5, 1.0)
    check_nuts(bm.fit(spec, "nuts", **NUTS), mean, np.sqrt(np.diag(cov)))


def test_duplicated_column_logistic_map_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    X = np.column_stack([X, X[:, 1]])
    y = (rng.random(200) < 1 / (1 + np.exp(-(0.3 + X[:, 0] - X[:, 1])))).astype(int)
    spec = models.logistic_regression(X, y, prior=bm.Normal(1.5))
    check_posterior(spec)
    check_map(spec)
    ref = LogisticRegression(C=1.5**2, solver="newton-cholesky", tol=1e-12,
                             max_iter=1000).fit(X, y)
    map_ = bm.fit(spec, "map")
    np.testing.assert_allclose(map_.params["coef"], ref.coef_[0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(map_.params["intercept"], ref.intercept_[0], rtol=1e-6)
    with pytest.raises(bm.MLENotFoundError, match=r"\{x1, x2\}"):
        bm.fit(spec, "mle")


def _designs():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(12, 3))
    return {
        "duplicate": np.column_stack([x, x[:, 0]]),
        "constant": np.column_stack([x, np.full(12, 2.0)]),
        "full_rank": x,
        "wide": rng.normal(size=(4, 6)),
    }


@pytest.mark.parametrize("design", ["duplicate", "constant", "full_rank", "wide"])
@pytest.mark.parametrize("flat_intercept", [True, False])
@pytest.mark.parametrize("flat_coef", [True, False])
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_improper_exactly_when_flat_columns_have_a_null_space(design, flat_intercept,
                                                              flat_coef, family):
    X = _designs()[design]
    n = X.shape[0]
    rng = np.random.default_rng(5)
    priors = dict(prior=None if flat_coef else bm.Normal(1.0),
                  intercept_prior=None if flat_intercept else bm.Normal(10.0))
    if family == "gaussian":
        spec = models.linear_regression(X, rng.normal(size=n), sigma=1.0, **priors)
    else:
        spec = models.poisson_regression(X, rng.poisson(3.0, size=n) + 1, **priors)
    cols = ([np.ones(n)] if flat_intercept else []) + ([*X.T] if flat_coef else [])
    flat = np.column_stack(cols) if cols else np.zeros((n, 0))
    improper = flat.shape[1] > 0 and scipy.linalg.null_space(flat).shape[1] > 0
    if improper:
        with pytest.raises(bm.ImproperPosteriorError, match="flat prior"):
            check_posterior(spec)
        with pytest.raises(bm.MLENotFoundError, match="MAP is not unique"):
            check_map(spec)
    else:
        check_posterior(spec)
        check_map(spec)


# ---------------------------------------------------------------------------------------------
# 2. Fewer rows than coefficients
# ---------------------------------------------------------------------------------------------
def _wide(seed=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5, 10))
    return X, X[:, 0] - X[:, 1] + rng.normal(size=5)


def test_n_less_than_p_with_proper_priors_fits():
    X, y = _wide()
    spec = models.linear_regression(X, y, prior=bm.Normal(1.0), sigma=1.0)  # no DataError
    check_posterior(spec)
    check_map(spec)
    mean, cov = gaussian_posterior(X, y, 1.0, 1.0)
    np.testing.assert_allclose(bm.fit(spec, "map").flat_params(), mean, rtol=1e-9, atol=1e-12)
    lap = bm.fit(spec, "laplace", random_seed=0)
    np.testing.assert_allclose(lap.mode.cov, cov, rtol=1e-8, atol=1e-12)
    check_nuts(bm.fit(spec, "nuts", **NUTS), mean, np.sqrt(np.diag(cov)))


def test_n_less_than_p_refusals_say_why():
    X, y = _wide()
    proper = models.linear_regression(X, y, prior=bm.Normal(1.0), sigma=1.0)
    with pytest.raises(bm.MLENotFoundError,
                       match=r"not unique: `X` has 5 row\(s\) for 11 coefficient\(s\)"):
        bm.fit(proper, "mle")
    flat = models.linear_regression(X, y, sigma=1.0)
    with pytest.raises(bm.ImproperPosteriorError, match=r"5 row\(s\) for these 11 flat-prior"):
        bm.fit(flat, "laplace", random_seed=0)
    with pytest.raises(bm.MLENotFoundError, match="MAP is not unique"):
        check_map(flat)
    # sigma estimated with a flat prior and n < p: the data are fitted exactly, so no MAP
    # (density ~ sigma^-5 at 0); the posterior is proper (5 >= 1 flat coefficient + 2 rows,
    # and a = 1 > n - rank = 0).
    est = models.linear_regression(X, y, prior=bm.Normal(1.0))
    check_posterior(est)
    with pytest.raises(bm.MLENotFoundError, match="No MAP exists"):
        check_map(est)


def test_flat_sigma_needs_two_more_rows_than_flat_coefficients():
    # p(sigma) ∝ 1: the marginal posterior of sigma decays like sigma^(k - n) (k flat
    # coefficients), integrable iff n >= k + 2.
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 2))
    y = rng.normal(size=4)
    with pytest.raises(bm.ImproperPosteriorError, match=r"needs n >= 5 rows"):
        check_posterior(models.linear_regression(X, y))
    check_posterior(models.linear_regression(np.vstack([X, [[0.3, 0.1]]]), np.r_[y, 0.2]))
    check_posterior(models.linear_regression(X, y, sigma_prior=bm.HalfNormal(1.0)))


# ---------------------------------------------------------------------------------------------
# 3. Rank is scale-invariant; extreme scales give the right answer
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1e-170, 1e-300])
def test_extreme_column_scale_is_not_rank_deficiency(factor):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 3))
    y = 1.0 + X @ [1.0, 2.0, 3.0] + rng.normal(size=50)
    Xs = X.copy()
    Xs[:, 0] *= factor
    design = as_design(Xs)
    assert collinear_columns(design, True) == []
    assert gram_factor(design, True) is not None  # well conditioned once equilibrated
    mle = bm.fit(models.linear_regression(Xs, y), "mle")
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    back = np.array([1.0, 1.0 / factor, 1.0, 1.0])  # coefficients of the scaled columns
    np.testing.assert_allclose(mle.flat_params()[:4], ref.params * back, rtol=1e-10)
    se = ref.bse * np.sqrt((50 - 4) / 50) * back  # observed information (divides by n)
    np.testing.assert_allclose(mle.flat_stderr()[:4], se, rtol=1e-8)


def test_extreme_column_scale_logistic():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-(X @ [1.0, -1.0, 0.5])))).astype(int)
    Xs = X.copy()
    Xs[:, 0] *= 1e-170
    mle = bm.fit(models.logistic_regression(Xs, y), "mle")
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-14)
    back = np.array([1.0, 1e170, 1.0, 1.0])
    np.testing.assert_allclose(mle.flat_params(), ref.params * back, rtol=1e-8)
    np.testing.assert_allclose(mle.flat_stderr(), ref.bse * back, rtol=1e-6)


def test_zero_column_is_rank_deficient():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(30, 3))
    X[:, 1] = 0.0
    with pytest.raises(bm.MLENotFoundError, match=r"\{x1\}"):
        bm.fit(models.linear_regression(X, rng.normal(size=30)), "mle")


# ---------------------------------------------------------------------------------------------
# 4. Separation at any number of rows
# ---------------------------------------------------------------------------------------------
def test_separation_above_200k_rows_is_found():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(250_000, 1))
    y = (x[:, 0] > 0.3).astype(int)
    with pytest.raises(bm.MLENotFoundError,
                       match=r"complete separation by a minimal set of columns "
                             r"\{\(intercept\), x0\} \(none of them can be dropped\): "
                             r"every row with x0 > 0\.3 has y = 1"):
        bm.fit(models.logistic_regression(x, y), "mle")


def test_large_lp_verdicts_match_the_full_lp():
    # Constraint generation beyond FULL_LP_ROWS gives the full LP's verdict (scipy on all rows).
    rng = np.random.default_rng(12)
    x = rng.normal(size=(60_000, 2))
    A = np.column_stack([np.ones(60_000), x])
    overlap = (rng.random(60_000) < 1 / (1 + np.exp(-(x @ [1.0, -0.5])))).astype(int)
    quasi = (x[:, 0] > 0).astype(int)
    x_q = x.copy()
    x_q[:500, 0] = 0.0  # ties on the boundary with both outcomes
    quasi[:250], quasi[250:500] = 1, 0
    for X_, y_ in ((x, overlap), (x_q, quasi)):
        found = find_separation(X_, y_, "bernoulli", True)
        A_ = np.column_stack([np.ones(len(y_)), X_])
        assert (found is not None) == separable(A_, y_)
        if found is not None:
            assert found.complete == separable(A_, y_, strict=True)
    assert not separable(A, overlap)


# ---------------------------------------------------------------------------------------------
# 5. No MAP when the data are fitted exactly and the scale's prior does not vanish at 0
# ---------------------------------------------------------------------------------------------
def test_constant_y_and_halfnormal_sigma_has_no_map():
    spec = models.gaussian(np.full(10, 3.0), sigma_prior=bm.HalfNormal(1.0))
    with pytest.raises(bm.MLENotFoundError, match=r"No MAP exists.*does not vanish at 0"):
        check_map(spec)
    # The posterior is improper too: a = 1 <= n - rank = 9.
    with pytest.raises(bm.ImproperPosteriorError, match="improper"):
        bm.fit(spec, "nuts", **NUTS)


def test_constant_y_map_fit_raises():
    spec = models.gaussian(np.full(10, 3.0), sigma_prior=bm.HalfNormal(1.0))
    with pytest.raises(bm.MLENotFoundError, match="No MAP exists"):
        bm.fit(spec, "map")


@pytest.mark.parametrize("alpha", [5.0, 11.0, 11.5, 13.0])
def test_gamma_sigma_prior_map_exists_iff_alpha_above_n_plus_1(alpha):
    # density ~ sigma^(alpha - 1) * sigma^-n near 0 (exact fit): a maximum needs alpha > n + 1;
    # then sigma_MAP = (alpha - 1 - n) / beta (mu at the common value, flat prior).
    n, beta = 10, 2.0
    spec = models.gaussian(np.full(n, 3.0), sigma_prior=bm.Gamma(alpha, beta))
    if alpha <= n + 1:
        with pytest.raises(bm.MLENotFoundError, match="No MAP exists"):
            check_map(spec)
        return
    check_map(spec)
    res = bm.fit(spec, "map")
    assert res.converged
    np.testing.assert_allclose(res.params["sigma"], (alpha - 1 - n) / beta, rtol=1e-9)
    np.testing.assert_allclose(res.params["mu"], 3.0, rtol=1e-12)


def test_exact_regression_fit_with_gamma_sigma_prior_matches_closed_form():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(12, 2))
    y = 1.0 + X @ [2.0, -1.0]
    with pytest.raises(bm.MLENotFoundError, match="No MAP exists"):
        check_map(models.linear_regression(X, y, sigma_prior=bm.HalfNormal(1.0)))
    with pytest.raises(bm.MLENotFoundError, match="(?s)zero residuals.*Gamma"):
        bm.fit(models.linear_regression(X, y), "mle")
    spec = models.linear_regression(X, y, sigma_prior=bm.Gamma(16.0, 2.0))
    check_map(spec)
    res = bm.fit(spec, "map")
    coef = np.linalg.lstsq(np.column_stack([np.ones(12), X]), y, rcond=None)[0]
    np.testing.assert_allclose(res.params["sigma"], (16.0 - 1 - 12) / 2.0, rtol=1e-9)
    np.testing.assert_allclose(res.flat_params()[:3], coef, rtol=1e-9)


def test_exact_fit_posterior_proper_iff_alpha_above_n_minus_rank():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(8, 2))
    y = 0.5 + X @ [1.0, 1.0]  # exact: n - rank = 8 - 3 = 5
    with pytest.raises(bm.ImproperPosteriorError, match="a > n - rank = 5"):
        check_posterior(models.linear_regression(X, y, sigma_prior=bm.Gamma(5.0, 1.0)))
    check_posterior(models.linear_regression(X, y, sigma_prior=bm.Gamma(5.5, 1.0)))


def test_beta_prior_is_not_allowed_on_sigma():
    with pytest.raises(bm.PriorError, match="positive"):
        models.linear_regression(np.ones((3, 1)), [1.0, 2.0, 3.0], sigma_prior=bm.Beta(2.0, 2.0))


# ---------------------------------------------------------------------------------------------
# 6. Separation messages name a smallest separating set
# ---------------------------------------------------------------------------------------------
def test_breast_cancer_names_a_minimal_separating_set_once():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.to_numpy()
    with pytest.raises(bm.MLENotFoundError) as info:
        bm.fit(models.logistic_regression(X, y), "mle")
    message = str(info.value)
    names = named_set(message)
    assert "complete separation" in message
    assert len(names) < 31
    for name in names:
        assert message.count(name) == 1, name  # listed once (no second list in the hints)
    cols = {name: (np.ones(len(y)) if name == "(intercept)" else X[name].to_numpy())
            for name in names}
    A = np.column_stack(list(cols.values()))
    assert separable(A, y, strict=True)
    for j in range(A.shape[1]):  # minimal: without any one of them, no separation at all
        assert not separable(np.delete(A, j, axis=1), y), names[j]


def test_one_dummy_separates():
    rng = np.random.default_rng(1)
    n = 60
    x = rng.normal(size=n)
    dummy = (rng.random(n) < 0.3).astype(float)
    y = (rng.random(n) < 0.5).astype(int)
    y[dummy == 1] = 1
    with pytest.raises(bm.MLENotFoundError) as info:
        bm.fit(models.logistic_regression(np.column_stack([x, dummy]), y), "mle")
    message = str(info.value)
    assert named_set(message) == ["x1"]
    assert "quasi-complete" in message and "every row with x1 = 1 has y = 1" in message
    assert separable(dummy[:, None], y)


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_reference_level_without_events(family):
    import pandas as pd

    rng = np.random.default_rng(2)
    level = rng.integers(0, 3, size=90)  # level 0 is the baseline (both dummies 0)
    X = pd.DataFrame({"x": rng.normal(size=90), "levelB": (level == 1) * 1.0,
                      "levelC": (level == 2) * 1.0})
    if family == "bernoulli":
        y = (rng.random(90) < 0.5).astype(int)
        y[level == 0] = 0
        spec = models.logistic_regression(X, y)
    else:
        y = rng.poisson(3.0, size=90) + 1
        y[level == 0] = 0
        spec = models.poisson_regression(X, y)
    with pytest.raises(bm.MLENotFoundError) as info:
        bm.fit(spec, "mle")
    message = str(info.value)
    assert named_set(message) == ["(intercept)", "levelB", "levelC"]
    assert "reference level" in message and "no events" in message
    assert f"the {(level == 0).sum()} row(s) where levelB, levelC are all 0" in message
    if family == "bernoulli":
        A = np.column_stack([np.ones(90), X[["levelB", "levelC"]].to_numpy()])
        assert separable(A, y) and not separable(A[:, 1:], y)


def test_softmax_names_the_separating_column_only():
    # Class "c" exactly when x0 > 1 (by construction), x1 is noise: the classes are separated
    # by the intercept and x0 alone.
    rng = np.random.default_rng(15)
    X = rng.normal(size=(120, 2))
    labels = np.where(X[:, 0] > 1.0, "c", np.where(rng.random(120) < 0.5, "a", "b"))
    with pytest.raises(bm.MLENotFoundError, match="separation of the classes") as info:
        bm.fit(models.softmax_regression(X, labels), "mle")
    assert named_set(str(info.value)) == ["(intercept)", "x0"]
