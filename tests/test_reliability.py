"""Issue 5: MLEs that do not exist, improper posteriors, and reproducibility."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bayesmle as bm
from bayesmle import models

X10 = np.arange(10.0)[:, None]
SEPARATED = (X10[:, 0] > 4.5).astype(int)


@pytest.mark.parametrize("make", [
    lambda: models.logistic_regression(X10, SEPARATED),
    lambda: models.logistic_regression(np.r_[X10[:, 0], 4.5][:, None], np.r_[SEPARATED, 0]),
    lambda: models.poisson_regression(X10, np.zeros(10, dtype=int)),
    lambda: models.softmax_regression(X10, np.where(SEPARATED == 1, "b", "a")),
    # a proper prior on the slope does not help when the runaway direction is the intercept
    lambda: models.poisson_regression(X10, np.zeros(10, dtype=int), prior=bm.Normal(1.0)),
], ids=["complete", "quasi-complete", "all-zero-counts", "softmax", "flat-intercept"])
def test_no_mle_and_nuts_refuses_improper_posterior(make):
    spec = make()
    with pytest.raises(bm.MLENotFoundError, match="proper prior"):
        bm.fit(spec, "mle")
    with pytest.raises(bm.ImproperPosteriorError, match="improper"):
        bm.fit(spec, "nuts", draws=20, tune=20, chains=1, random_seed=0)


def test_proper_priors_rescue_separated_data():
    spec = models.logistic_regression(X10, SEPARATED, prior=bm.Normal(2.5),
                                      intercept_prior=bm.Normal(10.0))
    res = bm.fit(spec, "map")
    assert res.converged and np.all(np.isfinite(res.flat_params()))
    # Proper priors on every coefficient: NUTS is allowed (the posterior is proper).
    for check in spec.posterior_checks:
        check(spec)


def test_slope_prior_is_enough_when_the_separating_direction_needs_the_slope():
    # Separation needs the slope (x > 4.5): a proper slope prior makes the posterior proper.
    spec = models.logistic_regression(X10, SEPARATED, prior=bm.Normal(2.5))
    for check in spec.posterior_checks:
        check(spec)


SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import bayesmle as bm
    from bayesmle import models
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 2))
    y = (rng.random(40) < 1 / (1 + np.exp(-X @ [1.0, -1.0]))).astype(int)
    spec = models.logistic_regression(X, y, prior=bm.Normal(2.0))
    post = bm.fit(spec, "nuts", draws=100, tune=100, chains=2, random_seed=42)
    lap = bm.fit(spec, "laplace", draws=200, random_seed=42)
    json.dump({"nuts": post.draws().to_numpy().tolist(),
               "laplace": lap.draws().to_numpy().tolist()}, sys.stdout)
""")


def _run_in_subprocess() -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_same_seed_same_numbers_across_processes():
    # The first process may compile the model from a cold PyTensor cache; freshly compiled and
    # cached kernels can differ in the last bits (measured: 1e-13 relative after NUTS), so the
    # bit-for-bit claim is made between processes sharing the compile cache.
    first, second, third = (_run_in_subprocess() for _ in range(3))
    assert second == third
    for key in first:
        np.testing.assert_allclose(first[key], second[key], rtol=1e-9, atol=1e-12)


def test_same_seed_same_numbers_in_process():
    rng = np.random.default_rng(6)
    y = rng.normal(3.0, 1.0, size=30)
    spec = models.gaussian(y, mu_prior=bm.Normal(5.0))
    a, b, c = (bm.fit(spec, "nuts", draws=300, tune=300, chains=2, random_seed=seed).draws()
               for seed in (9, 9, 10))
    assert a.equals(b)
    assert not a.equals(c)


def test_separation_is_found_on_large_data_where_the_lp_is_deferred():
    from bayesmle.inference.driver import DEFER_CHECKS_ABOVE_ROWS

    rng = np.random.default_rng(12)
    n = DEFER_CHECKS_ABOVE_ROWS + 5000
    X = rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    # Quasi-complete separation: the extra column is zero for every failure, positive otherwise.
    X_sep = np.column_stack([X, y * np.abs(rng.normal(size=n))])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        with pytest.raises(bm.MLENotFoundError, match="separation"):
            bm.fit(models.logistic_regression(X_sep, y), "mle")
    # Without the separating column the MLE exists and is certified (no LP needed).
    assert bm.fit(models.logistic_regression(X, y), "mle").converged
