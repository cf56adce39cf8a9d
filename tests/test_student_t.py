"""Student-t MLE against scipy.stats.t.fit (issue 2, item 5)."""

import numpy as np
import scipy.stats

import bayesmle as bm


def test_student_t_loglik_at_least_scipy():
    y = scipy.stats.t.rvs(3.0, loc=2.0, scale=1.5, size=400, random_state=11)
    res = bm.fit(bm.models.student_t(y), "mle")
    assert res.converged
    df, loc, scale = scipy.stats.t.fit(y)
    ref = scipy.stats.t.logpdf(y, df, loc, scale).sum()
    ours = scipy.stats.t.logpdf(y, res.params["nu"], res.params["mu"], res.params["sigma"]).sum()
    assert np.isclose(res.loglik, ours, rtol=0, atol=1e-9)
    assert res.loglik >= ref - 1e-8
