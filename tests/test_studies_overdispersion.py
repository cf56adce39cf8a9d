"""Poisson vs negative binomial on randhie (statsmodels' copy), against statsmodels' fits."""

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from bayesmle import studies
from bayesmle.inference.profile import profile_interval

sm = pytest.importorskip("statsmodels.api")


@pytest.fixture(scope="module")
def randhie():
    data = sm.datasets.randhie.load_pandas()
    return data.exog, data.endog


@pytest.fixture(scope="module")
def study(randhie):
    X, y = randhie
    return studies.overdispersion(X, y)


def test_randhie_matches_statsmodels(randhie, study):
    X, y = randhie
    # numpy inputs: statsmodels' NB indexes params positionally, which pandas 3 rejects
    Xc, yv = np.asarray(sm.add_constant(X)), np.asarray(y)
    glm = sm.GLM(yv, Xc, family=sm.families.Poisson()).fit(tol=1e-14)
    nb = sm.NegativeBinomial(yv, Xc, loglike_method="nb2").fit(
        method="newton", tol=1e-14, maxiter=200, disp=0)
    assert np.max(np.abs(nb.model.score(nb.params))) < 1e-5
    table = study.table
    assert abs(table.loc["poisson", "loglik"] - glm.llf) <= 1e-6
    assert abs(table.loc["negative_binomial", "loglik"] - nb.llf) <= 1e-6
    assert abs(table.loc["poisson", "aic"] - glm.aic) <= 1e-6
    assert abs(table.loc["negative_binomial", "aic"] - nb.aic) <= 1e-6
    assert abs(table.loc["negative_binomial", "bic"] - nb.bic) <= 1e-6
    np.testing.assert_allclose(study.dispersion, glm.pearson_chi2 / glm.df_resid, rtol=1e-9)
    np.testing.assert_allclose(study.pearson_chi2, glm.pearson_chi2, rtol=1e-9)
    assert study.df_resid == glm.df_resid
    np.testing.assert_allclose(study.alpha, nb.params[-1], rtol=1e-6)
    lr = 2 * (nb.llf - glm.llf)
    np.testing.assert_allclose(study.lr_stat, lr, rtol=1e-9)
    assert study.lr_pvalue == 0.5 * scipy.stats.chi2.sf(lr, 1)
    assert study.dispersion > 5  # strongly overdispersed: Poisson is wrong here
    fig = study.plot()
    assert len(fig.axes) == 2


def test_alpha_profile_interval_matches_statsmodels(randhie):
    # alpha is a log-transformed internal coordinate; statsmodels' GLM at fixed alpha profiles
    # out the coefficients (its llf is the full NB2 log-likelihood). The first 600 rows keep
    # the compiled structure of the study (9 columns) and the test fast.
    X, y = randhie
    Xc, yv = np.asarray(sm.add_constant(X))[:600], np.asarray(y)[:600]
    res = studies.overdispersion(Xc[:, 1:], yv)
    ci = profile_interval(res.negative_binomial, labels=["alpha"])
    q = scipy.stats.chi2.ppf(0.95, 1)
    top = res.negative_binomial.loglik

    def f(a):
        fam = sm.families.NegativeBinomial(alpha=a)
        return 2 * (top - sm.GLM(yv, Xc, family=fam).fit(tol=1e-13).llf) - q

    a = res.alpha
    ref = [scipy.optimize.brentq(f, 0.5 * a, a, xtol=1e-13),
           scipy.optimize.brentq(f, a, 2.0 * a, xtol=1e-13)]
    np.testing.assert_allclose(ci.loc["alpha"], ref, rtol=1e-7)
    assert ci.loc["alpha", "lower"] < a < ci.loc["alpha", "upper"]


def test_underdispersed_counts_put_alpha_on_the_boundary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 9))  # randhie's width: the compiled structures are reused
    y = rng.binomial(4, 0.5, size=200)  # variance 1 < mean 2
    res = studies.overdispersion(X, y)
    glm = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit(tol=1e-14)
    assert abs(res.table.loc["poisson", "loglik"] - glm.llf) <= 1e-8
    np.testing.assert_allclose(res.dispersion, glm.pearson_chi2 / glm.df_resid, rtol=1e-9)
    assert res.dispersion < 1
    assert res.negative_binomial is None and res.alpha == 0.0
    assert res.lr_stat == 0.0 and res.lr_pvalue == 1.0
    assert np.isnan(res.table.loc["negative_binomial", "loglik"])
    res.plot()


def test_bad_inputs_are_rejected():
    from bayesmle.errors import DataError, SpecError

    with pytest.raises(DataError):
        studies.overdispersion(np.ones((3, 1)), [1, 2])
    with pytest.raises(SpecError, match="random_seed"):
        studies.overdispersion(np.ones((3, 1)), [1, 2, 3], random_seed=-1)


def test_alpha_interval_reaches_zero_when_the_lr_test_does_not_reject():
    # Mild overdispersion: the LR test of alpha = 0 does not reject at 5%, so the 95% profile
    # interval of alpha contains the boundary 0 (its lower end is the edge of the support).
    rng = np.random.default_rng(2)
    X = rng.normal(size=(150, 9))  # randhie's width: the compiled structures are reused
    mu = np.exp(1 + X @ np.full(9, 0.05))
    y = rng.negative_binomial(1 / 0.04, 1 / (1 + 0.04 * mu))
    res = studies.overdispersion(X, y)
    Xc = sm.add_constant(X)
    llf_p = sm.GLM(y, Xc, family=sm.families.Poisson()).fit(tol=1e-14).llf
    nb = sm.NegativeBinomial(y, Xc, loglike_method="nb2").fit(
        method="newton", tol=1e-14, maxiter=200, disp=0)
    q = scipy.stats.chi2.ppf(0.95, 1)
    assert 0 < 2 * (nb.llf - llf_p) < q
    np.testing.assert_allclose(res.lr_stat, 2 * (nb.llf - llf_p), rtol=1e-6)
    assert res.lr_pvalue > 0.025
    ci = profile_interval(res.negative_binomial, labels=["alpha"])
    assert ci.loc["alpha", "lower"] == 0.0

    def f(a):
        fam = sm.families.NegativeBinomial(alpha=a)
        return 2 * (nb.llf - sm.GLM(y, Xc, family=fam).fit(tol=1e-13).llf) - q

    a = res.alpha
    upper = scipy.optimize.brentq(f, a, 20 * a, xtol=1e-13)
    np.testing.assert_allclose(ci.loc["alpha", "upper"], upper, rtol=1e-7)
    # Wald's interval leaves the support
    assert res.negative_binomial.conf_int().loc["alpha", "lower"] < 0
