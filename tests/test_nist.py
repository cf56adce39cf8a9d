"""NIST StRD linear regressions: log relative error of the coefficients (issue 2, item 2).

Target: at least what a double-precision Householder QR solve reaches on each problem. On
Filip the data as double-precision numbers (the raw powers x**k rounded to float64) have an
exact least-squares solution whose LRE against NIST's certified values is itself only about
7.6 (checked in 80-digit arithmetic with mpmath in ``test_filip_ceiling``); QR's 8.1 there is
rounding luck, so Filip's target is that ceiling.
"""

import numpy as np
import pytest
import scipy.linalg
from conftest import lre

import bayesmle as bm

PROBLEMS = ["Norris", "Pontius", "NoInt1", "NoInt2", "Filip", "Longley",
            "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5"]


def design(d):
    data = np.array(d["data"], dtype=float)
    y, x = data[:, -1], data[:, :-1]
    p = len(d["certified"]["params"])
    if x.shape[1] == 1 and p - int(d["intercept"]) > 1:
        x = np.column_stack([x[:, 0] ** k for k in range(1, p)])
    return x, y


def qr_lre(x, y, intercept, cert):
    full = np.column_stack([np.ones(len(y)), x]) if intercept else x
    q, r = np.linalg.qr(full)
    return lre(scipy.linalg.solve_triangular(r, q.T @ y), cert).min()


def exact_lre_of_float64_data(x, y, intercept, cert):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 80
    full = np.column_stack([np.ones(len(y)), x]) if intercept else x
    a = mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in full])
    b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
    sol = mpmath.lu_solve(a.T * a, a.T * b)
    return lre(np.array([float(v) for v in sol]), cert).min()


@pytest.mark.parametrize("name", PROBLEMS)
def test_nist_coefficients(nist, name):
    d = nist(name)
    x, y = design(d)
    cert = np.array(d["certified"]["params"])
    exact_fit = d["certified"]["resid_sd"] == 0
    # An exact fit has no MLE of sigma (tested elsewhere); fix sigma there.
    spec = bm.models.linear_regression(x, y, intercept=d["intercept"],
                                       sigma=1.0 if exact_fit else None)
    res = bm.fit(spec, "mle")
    assert res.converged
    est = np.r_[np.atleast_1d(res.params["intercept"]) if d["intercept"] else [],
                res.params["coef"]]
    ours = lre(est, cert).min()
    target = qr_lre(x, y, d["intercept"], cert)
    if name == "Filip":
        target = exact_lre_of_float64_data(x, y, d["intercept"], cert) - 0.2
    print(f"{name}: LRE {ours:.2f} (QR {qr_lre(x, y, d['intercept'], cert):.2f})")
    assert ours >= target
    if not exact_fit:
        n, p = len(y), len(cert)
        # NIST's param_sd use s^2 = RSS/(n-p); ours are the observed-information (MLE) ones.
        sd = res.flat_stderr()[:p] * np.sqrt(n / (n - p))
        assert lre(sd, d["certified"]["param_sd"]).min() >= 7.0
        assert lre(res.params["sigma"] * np.sqrt(n / (n - p)), d["certified"]["resid_sd"]) >= 7.0


def test_filip_ceiling(nist):
    d = nist("Filip")
    x, y = design(d)
    cert = np.array(d["certified"]["params"])
    assert 7.0 < exact_lre_of_float64_data(x, y, True, cert) < 8.0


def test_exact_fit_has_no_sigma_mle(nist):
    x, y = design(nist("Wampler1"))
    with pytest.raises(bm.MLENotFoundError, match="sigma"):
        bm.fit(bm.models.linear_regression(x, y), "mle")
