"""Loss dictionary (issue 3, item 7): each common loss is a negative log-likelihood.

References: scipy.stats log-densities/pmfs for every NLL; scikit-learn's metrics
(mean_squared_error, log_loss, mean_poisson_deviance, mean_absolute_error) for every loss, and
the documented affine constants linking the two; closed forms for extreme logits; bayesmle's own
MLE (an independent optimiser) for "the MLE minimises the loss".
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, softmax

import bayesmle as bm
from bayesmle import losses, models
from bayesmle.errors import DataError

sklearn_metrics = pytest.importorskip("sklearn.metrics")

RTOL = 1e-12
N = 40
K = 4


@pytest.fixture
def gaussian_data():
    rng = np.random.default_rng(101)
    y = rng.normal(3.0, 2.0, size=N)
    mu = y + rng.normal(0.0, 1.5, size=N)
    return y, mu


@pytest.fixture
def binary_data():
    rng = np.random.default_rng(102)
    eta = rng.normal(0.0, 1.5, size=N)
    p = expit(eta)
    y = rng.binomial(1, p).astype(float)
    return y, p, eta


@pytest.fixture
def categorical_data():
    rng = np.random.default_rng(103)
    logits = rng.normal(0.0, 1.5, size=(N, K))
    P = softmax(logits, axis=1)
    y = np.array([rng.choice(K, p=row) for row in P])
    return y, P, logits


@pytest.fixture
def count_data():
    rng = np.random.default_rng(104)
    rate = rng.gamma(3.0, 1.0, size=N)
    y = rng.poisson(rate).astype(float)
    y[:3] = 0.0  # exercise the 0 log 0 = 0 convention
    return y, rate


# ---------------------------------------------------------------------------------------------
# NLLs against scipy.stats
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_gaussian_nll_matches_scipy(gaussian_data, sigma):
    y, mu = gaussian_data
    ref = -stats.norm.logpdf(y, mu, sigma).sum()
    assert losses.gaussian_nll(y, mu, sigma) == pytest.approx(ref, rel=RTOL)
    assert losses.gaussian_nll(y, 3.0, sigma) == pytest.approx(
        -stats.norm.logpdf(y, 3.0, sigma).sum(), rel=RTOL)


def test_bernoulli_nll_matches_scipy(binary_data):
    y, p, eta = binary_data
    ref = -stats.bernoulli.logpmf(y, p).sum()
    assert losses.bernoulli_nll(y, p) == pytest.approx(ref, rel=RTOL)
    assert losses.bernoulli_nll_logits(y, eta) == pytest.approx(ref, rel=RTOL)
    assert losses.bernoulli_nll(y.astype(bool), 0.4) == pytest.approx(
        -stats.bernoulli.logpmf(y, 0.4).sum(), rel=RTOL)


def test_bernoulli_boundary_probabilities():
    # 0 log 0 = 0: a certain and correct prediction costs nothing, a wrong one costs inf.
    assert losses.bernoulli_nll([1, 0], [1.0, 0.0]) == 0.0
    assert losses.bernoulli_nll([1, 0], [0.0, 0.0]) == np.inf


def test_categorical_nll_matches_scipy(categorical_data):
    y, P, logits = categorical_data
    onehot = np.eye(K)[y]
    ref = -stats.multinomial.logpmf(onehot, n=1, p=P).sum()
    assert losses.categorical_nll(y, P) == pytest.approx(ref, rel=RTOL)
    assert losses.categorical_nll(onehot, P) == pytest.approx(ref, rel=RTOL)
    assert losses.categorical_nll(y, P) == pytest.approx(-np.log(P[np.arange(N), y]).sum(),
                                                         rel=RTOL)
    assert losses.categorical_nll_logits(y, logits) == pytest.approx(ref, rel=RTOL)
    assert losses.categorical_nll_logits(onehot, logits) == pytest.approx(ref, rel=RTOL)


def test_two_class_logits_agree_with_bernoulli(binary_data):
    y, _, eta = binary_data
    logits = np.column_stack([np.zeros(N), eta])
    assert losses.categorical_nll_logits(y, logits) == pytest.approx(
        losses.bernoulli_nll_logits(y, eta), rel=RTOL)


def test_poisson_nll_matches_scipy(count_data):
    y, rate = count_data
    ref = -stats.poisson.logpmf(y, rate).sum()
    assert losses.poisson_nll(y, rate) == pytest.approx(ref, rel=RTOL)
    sat = -stats.poisson.logpmf(y[y > 0], y[y > 0]).sum()  # zero counts contribute log 0! = 0
    assert losses.poisson_saturated_nll(y) == pytest.approx(sat, rel=RTOL)


@pytest.mark.parametrize("b", [0.4, 1.0, 3.0])
def test_laplace_nll_matches_scipy(gaussian_data, b):
    y, mu = gaussian_data
    ref = -stats.laplace.logpdf(y, mu, b).sum()
    assert losses.laplace_nll(y, mu, b) == pytest.approx(ref, rel=RTOL)


# ---------------------------------------------------------------------------------------------
# Losses against scikit-learn, and the documented constants
# ---------------------------------------------------------------------------------------------
def test_losses_match_sklearn(gaussian_data, binary_data, categorical_data, count_data):
    y, mu = gaussian_data
    assert losses.mse(y, mu) == pytest.approx(sklearn_metrics.mean_squared_error(y, mu), rel=RTOL)
    assert losses.mae(y, mu) == pytest.approx(sklearn_metrics.mean_absolute_error(y, mu),
                                              rel=RTOL)
    yb, p, _ = binary_data
    assert losses.binary_cross_entropy(yb, p) == pytest.approx(
        sklearn_metrics.log_loss(yb, y_proba=p), rel=RTOL)
    yc, P, _ = categorical_data
    assert losses.categorical_cross_entropy(yc, P) == pytest.approx(
        sklearn_metrics.log_loss(yc, y_proba=P, labels=np.arange(K)), rel=RTOL)
    yp, rate = count_data
    assert losses.poisson_deviance(yp, rate) == pytest.approx(
        sklearn_metrics.mean_poisson_deviance(yp, rate), rel=RTOL)


def _cases(gaussian_data, binary_data, categorical_data, count_data):
    y, mu = gaussian_data
    yb, p, _ = binary_data
    yc, P, _ = categorical_data
    yp, rate = count_data
    return {
        "mse": (y, mu, {"sigma": 1.7}, sklearn_metrics.mean_squared_error(y, mu)),
        "binary_cross_entropy": (yb, p, {}, sklearn_metrics.log_loss(yb, y_proba=p)),
        "categorical_cross_entropy": (
            yc, P, {}, sklearn_metrics.log_loss(yc, y_proba=P, labels=np.arange(K))),
        "poisson_deviance": (yp, rate, {}, sklearn_metrics.mean_poisson_deviance(yp, rate)),
        "mae": (y, mu, {"b": 0.8}, sklearn_metrics.mean_absolute_error(y, mu)),
    }


def test_affine_relations_reproduce_sklearn(gaussian_data, binary_data, categorical_data,
                                            count_data):
    cases = _cases(gaussian_data, binary_data, categorical_data, count_data)
    assert {e.name for e in losses.LOSSES} == set(cases)
    for entry in losses.LOSSES:
        y, pred, nuisance, ref = cases[entry.name]
        nll = entry.nll(y, pred, *nuisance.values())
        assert entry.to_loss(nll, y, **nuisance) == pytest.approx(ref, rel=1e-11), entry.name
        assert entry.to_nll(ref, y, **nuisance) == pytest.approx(nll, rel=1e-11), entry.name
        assert entry.loss(y, pred) == pytest.approx(ref, rel=RTOL), entry.name
        a, _ = entry.affine(y, **nuisance)
        assert a > 0
        assert entry.sklearn_metric.startswith("sklearn.metrics.")
        metric = getattr(sklearn_metrics, entry.sklearn_metric.rsplit(".", 1)[1])
        assert callable(metric)


def test_affine_constants_closed_form(gaussian_data, count_data):
    y, _ = gaussian_data
    table = {e.name: e for e in losses.LOSSES}
    sigma, b = 1.7, 0.8
    a, c = table["mse"].affine(y, sigma=sigma)
    assert a == pytest.approx(2 * sigma**2 / N, rel=RTOL)
    assert c == pytest.approx(-sigma**2 * np.log(2 * np.pi * sigma**2), rel=RTOL)
    a, c = table["mae"].affine(y, b=b)
    assert (a, c) == pytest.approx((b / N, -b * np.log(2 * b)), rel=RTOL)
    yp, _ = count_data
    a, c = table["poisson_deviance"].affine(yp)
    sat = -stats.poisson.logpmf(yp[yp > 0], yp[yp > 0]).sum()
    assert (a, c) == pytest.approx((2 / N, -2 / N * sat), rel=RTOL)
    assert table["binary_cross_entropy"].affine(yp) == (1 / N, 0.0)


def test_loss_table():
    table = losses.loss_table()
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == [e.name for e in losses.LOSSES]
    assert table.loc["mae", "sklearn_metric"] == "sklearn.metrics.mean_absolute_error"
    assert table.loc["poisson_deviance", "nll"] == "poisson_nll"
    for name in table["nll"].tolist() + table["loss"].tolist():
        assert callable(getattr(losses, name))


# ---------------------------------------------------------------------------------------------
# Numerical stability of the logit forms
# ---------------------------------------------------------------------------------------------
def test_bernoulli_logits_extreme():
    y = np.array([1, 0, 1, 0])
    eta = np.array([800.0, 800.0, -800.0, -800.0])
    # softplus(-800) = log1p(e^-800) = 0 in double precision, softplus(800) = 800 exactly.
    assert losses.bernoulli_nll_logits(y, eta) == 1600.0
    assert losses.bernoulli_nll_logits([1], [800.0]) == 0.0
    # No cancellation: log1p(e^-30) = e^-30 - e^-60/2 + O(e^-90).
    assert losses.bernoulli_nll_logits([1], [30.0]) == pytest.approx(
        np.exp(-30) - np.exp(-60) / 2, rel=1e-15)
    assert losses.bernoulli_nll_logits([0], [-30.0]) == pytest.approx(
        np.exp(-30) - np.exp(-60) / 2, rel=1e-15)


def test_categorical_logits_extreme():
    logits = np.array([[800.0, -800.0, 0.0], [800.0, -800.0, 0.0], [800.0, 800.0, -800.0]])
    # -log softmax: class 0 -> log(1 + e^-1600 + e^-800) = 0; class 1 -> 1600; tie -> log 2.
    nll = [losses.categorical_nll_logits([k], logits[[i]]) for i, k in [(0, 0), (1, 1), (2, 0)]]
    assert nll == [0.0, 1600.0, pytest.approx(np.log(2.0), rel=1e-15)]
    assert np.isfinite(losses.categorical_nll_logits([0, 1, 1], logits))
    # A small probability of the wrong classes is kept to full relative precision.
    small = losses.categorical_nll_logits([0], [[30.0, 0.0, 0.0]])
    assert small == pytest.approx(2 * np.exp(-30) - 2 * np.exp(-60), rel=1e-15)


# ---------------------------------------------------------------------------------------------
# The MLE minimises the loss
# ---------------------------------------------------------------------------------------------
STEPS = np.array([-0.1, -1e-3, 1e-3, 0.1])


def test_gaussian_mle_minimises_mse():
    y = np.random.default_rng(201).normal(10.0, 3.0, size=31)
    res = bm.fit(models.gaussian(y), "mle")
    mu, sigma = float(res.params["mu"]), float(res.params["sigma"])
    assert res.loglik == pytest.approx(-losses.gaussian_nll(y, mu, sigma), rel=RTOL)
    assert sigma**2 == pytest.approx(losses.mse(y, mu), rel=1e-10)  # sigma_hat^2 = min MSE
    for h in STEPS:
        assert losses.mse(y, mu) < losses.mse(y, mu + h)
        assert losses.gaussian_nll(y, mu, sigma) < losses.gaussian_nll(y, mu + h, sigma)
        assert losses.gaussian_nll(y, mu, sigma) < losses.gaussian_nll(y, mu, sigma * (1 + h))


def test_bernoulli_mle_minimises_cross_entropy():
    y = np.random.default_rng(202).binomial(1, 0.3, size=50)
    res = bm.fit(models.bernoulli(y), "mle")
    p = float(res.params["p"])
    assert res.loglik == pytest.approx(-losses.bernoulli_nll(y, p), rel=RTOL)
    for h in STEPS / 10:
        assert losses.binary_cross_entropy(y, p) < losses.binary_cross_entropy(y, p + h)


def test_poisson_mle_minimises_deviance():
    y = np.random.default_rng(203).poisson(2.5, size=50)
    res = bm.fit(models.poisson(y), "mle")
    rate = float(res.params["rate"])
    assert res.loglik == pytest.approx(-losses.poisson_nll(y, rate), rel=RTOL)
    for h in STEPS:
        assert losses.poisson_deviance(y, rate) < losses.poisson_deviance(y, rate + h)
        assert losses.poisson_nll(y, rate) < losses.poisson_nll(y, rate + h)


def test_laplace_mle_minimises_mae():
    # Intercept-only least absolute deviations: a column of ones without a separate intercept.
    n = 31
    y = np.random.default_rng(204).laplace(2.0, 1.5, size=n)
    res = bm.fit(models.robust_regression(np.ones((n, 1)), y, noise="laplace", intercept=False),
                 "mle")
    mu, b = float(res.params["coef"][0]), float(res.params["sigma"])
    assert res.loglik == pytest.approx(-losses.laplace_nll(y, mu, b), rel=RTOL)
    assert b == pytest.approx(losses.mae(y, mu), rel=1e-12)  # b_hat = min MAE
    for h in STEPS:
        assert losses.mae(y, mu) < losses.mae(y, mu + h)
        assert losses.laplace_nll(y, mu, b) < losses.laplace_nll(y, mu + h, b)
        assert losses.laplace_nll(y, mu, b) < losses.laplace_nll(y, mu, b * (1 + h))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
GOOD = np.array([0.0, 1.0, 1.0])
P_GOOD = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])


@pytest.mark.parametrize(
    ("func", "args", "match"),
    [
        (losses.gaussian_nll, ([1.0, np.nan], 0.0), r"`y` contains 1 non-finite value\(s\) at row"),
        (losses.mse, ([1.0, 2.0], [1.0, np.inf]), r"`mu` contains 1 non-finite"),
        (losses.mse, ([], 0.0), r"`y` is empty"),
        (losses.mse, ([1.0, 2.0, 3.0], [1.0, 2.0]), r"`mu` has shape \(2,\) but `y` has 3"),
        (losses.gaussian_nll, (GOOD, 0.0, 0.0), r"`sigma` must be a finite number > 0, but got 0"),
        (losses.gaussian_nll, (GOOD, 0.0, [1.0, 2.0]), r"`sigma` must be a scalar"),
        (losses.laplace_nll, (GOOD, 0.0, -1.0), r"`b` must be a finite number > 0, but got -1"),
        (losses.bernoulli_nll, ([0, 2, 1], 0.5), r"`y` must be binary labels in \{0, 1\}.*row"
                                                 r"\(s\) 1 hold \[2.0\]"),
        (losses.bernoulli_nll, (GOOD, [0.1, 1.5, 0.2]), r"`p` must be a probability in \[0, 1\]"
                                                        r", but row\(s\) 1 hold \[1.5\]"),
        (losses.bernoulli_nll, (GOOD, -0.1), r"`p` must be a probability in \[0, 1\], but got "
                                             r"-0.1"),
        (losses.bernoulli_nll_logits, (GOOD, [0.0, np.nan, 1.0]), r"`eta` contains"),
        (losses.binary_cross_entropy, (GOOD, [0.5, 0.5]), r"`p` has shape \(2,\)"),
        (losses.poisson_nll, ([1.0, -2.0], 1.0), r"`y` must hold non-negative counts.*-2"),
        (losses.poisson_nll, ([1.0, 2.5], 1.0), r"`y` must hold whole-number counts.*2.5"),
        (losses.poisson_deviance, ([1.0, 2.0], [1.0, 0.0]), r"`rate` must be a rate > 0, but "
                                                            r"row\(s\) 1 hold \[0.0\]"),
        (losses.poisson_nll, ([1.0, 2.0], -1.0), r"`rate` must be a rate > 0, but got -1"),
        (losses.categorical_nll, ([0, 2, 1], P_GOOD), r"`y` must be integer class labels in "
                                                      r"\{0, ..., 1\}.*row\(s\) 1 hold \[2.0\]"),
        (losses.categorical_nll, ([0, 0.5, 1], P_GOOD), r"row\(s\) 1 hold \[0.5\]"),
        (losses.categorical_nll, ([0, 1], P_GOOD), r"`y` has 2 row\(s\) but `P` has 3"),
        (losses.categorical_nll, ([[1, 0], [1, 1], [0, 1]], P_GOOD),
         r"`y` must be one-hot rows with exactly one 1.*\[1.0, 1.0\]"),
        (losses.categorical_nll, (np.eye(3)[[0, 1, 2]], P_GOOD), r"one-hot `y` has 3 column"),
        (losses.categorical_nll, (GOOD, [[0.2, 0.9], [0.5, 0.5], [0.9, 0.1]]),
         r"each row of `P` must sum to 1.*row\(s\) 0 sum to \[1.1"),
        (losses.categorical_nll, (GOOD, [[1.2, -0.2], [0.5, 0.5], [0.9, 0.1]]),
         r"`P` must be probabilities in \[0, 1\].*\[1.2, -0.2\]"),
        (losses.categorical_cross_entropy, (GOOD, [0.2, 0.5, 0.9]), r"`P` must be 2-D"),
        (losses.categorical_nll_logits, (GOOD, [[1.0], [2.0], [3.0]]),
         r"`logits` has shape \(3, 1\); .* at least 2 classes"),
        (losses.categorical_nll_logits, (GOOD, [[1.0, np.inf], [2.0, 0], [3.0, 0]]),
         r"`logits` contains 1 non-finite value\(s\) at row\(s\) 0"),
    ],
)
def test_bad_input_raises_data_error(func, args, match):
    with pytest.raises(DataError, match=match):
        func(*args)


def test_relation_rejects_bad_nuisance(gaussian_data):
    y, _ = gaussian_data
    mse_entry = next(e for e in losses.LOSSES if e.name == "mse")
    with pytest.raises(DataError, match=r"`sigma` must be a finite number > 0, but got nan"):
        mse_entry.to_loss(1.0, y, sigma=np.nan)
