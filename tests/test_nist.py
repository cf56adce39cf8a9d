"""NIST StRD linear regressions: log relative error of the coefficients (issue 2, item 2).

Target: at least what a double-precision Householder QR solve reaches on each problem, in two
senses. (1) Against the exact least-squares solution of the data *as given* (the float64
numbers, solved in 80-digit arithmetic with mpmath): this is the accuracy a solver controls,
and the one QR is compared on without luck. (2) Against NIST's certified values, which are the
exact solution of the *decimal* data: rounding the data to float64 moves that solution, so the
certified LRE of the float64 data's exact solution is a ceiling no solver of those numbers can
beat except by rounding luck. Where QR's certified LRE exceeds that ceiling (Filip: 8.6 against
7.6; Wampler2 with some BLAS kernels: 13.22 against 13.20, the y values rounded by <= 1e-16
alone move the 1e-3 coefficient by 6.3e-17), the target is the ceiling. On Filip even the
estimate is ~1e-10 from the exact solution (the design's condition), so there it is the ceiling
less 0.2; the ceiling itself is checked in ``test_filip_ceiling``.
"""

import functools
import json

import numpy as np
import pytest
import scipy.linalg
from conftest import DATA, lre

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


def qr_solution(x, y, intercept):
    full = np.column_stack([np.ones(len(y)), x]) if intercept else x
    q, r = np.linalg.qr(full)
    return scipy.linalg.solve_triangular(r, q.T @ y)


@functools.cache
def _exact_solution(name):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 80
    d = json.loads((DATA / "nist" / f"{name}.json").read_text())
    x, y = design(d)
    full = np.column_stack([np.ones(len(y)), x]) if d["intercept"] else x
    a = mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in full])
    b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
    sol = mpmath.lu_solve(a.T * a, a.T * b)
    return tuple(float(v) for v in sol)


def exact_solution_of_float64_data(name):
    """The exact least-squares solution of the float64 data (80 digits), rounded to float64."""
    return np.array(_exact_solution(name))


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
    exact = exact_solution_of_float64_data(name)
    qr = qr_solution(x, y, d["intercept"])
    ceiling = lre(exact, cert).min()
    target = min(lre(qr, cert).min(), ceiling)
    if name == "Filip":
        target = ceiling - 0.2
    print(f"{name}: LRE {ours:.2f} (QR {lre(qr, cert).min():.2f}, ceiling {ceiling:.2f}); "
          f"against the exact solution of the float64 data {lre(est, exact).min():.2f} "
          f"(QR {lre(qr, exact).min():.2f})")
    assert lre(est, exact).min() >= lre(qr, exact).min()
    assert ours >= target
    if not exact_fit:
        n, p = len(y), len(cert)
        # NIST's param_sd use s^2 = RSS/(n-p); ours are the observed-information (MLE) ones.
        sd = res.flat_stderr()[:p] * np.sqrt(n / (n - p))
        assert lre(sd, d["certified"]["param_sd"]).min() >= 7.0
        assert lre(res.params["sigma"] * np.sqrt(n / (n - p)), d["certified"]["resid_sd"]) >= 7.0


def test_filip_ceiling(nist):
    cert = np.array(nist("Filip")["certified"]["params"])
    assert 7.0 < lre(exact_solution_of_float64_data("Filip"), cert).min() < 8.0


def test_exact_fit_has_no_sigma_mle(nist):
    x, y = design(nist("Wampler1"))
    with pytest.raises(bm.MLENotFoundError, match="sigma"):
        bm.fit(bm.models.linear_regression(x, y), "mle")
