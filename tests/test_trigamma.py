"""The Numba trigamma used by compiled negative-binomial Hessians, against scipy."""

import numpy as np
import scipy.special

from bayesmle.inference._trigamma_numba import trigamma


def test_trigamma_matches_scipy():
    x = np.geomspace(1e-8, 1e8, 400)
    ours = np.array([trigamma(v) for v in x])
    np.testing.assert_allclose(ours, scipy.special.polygamma(1, x), rtol=5e-14)
    # Negative arguments (reflection): the function itself is ill-conditioned near its poles.
    x = -np.linspace(0.01, 30.99, 157)
    ours = np.array([trigamma(v) for v in x])
    np.testing.assert_allclose(ours, scipy.special.polygamma(1, x), rtol=1e-12)
    assert np.isinf(trigamma(0.0)) and np.isinf(trigamma(-3.0)) and np.isnan(trigamma(np.nan))
