"""Seeded simulated data sets for the benchmark cases."""

from __future__ import annotations

import numpy as np


def logistic(n: int, d: int, seed: int, scale: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal predictors, coefficients N(0, scale), intercept 0.2; y in {0, 1}."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = rng.normal(0.0, scale, d)
    eta = 0.2 + X @ beta
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    return X, y


def linear(n: int, d: int, seed: int, sparse: int | None = None, noise: float = 1.0,
           rho: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian predictors (equicorrelated with ``rho``), y = 1 + X beta + N(0, noise).

    With ``sparse=k`` only the first k coefficients are non-zero (a lasso problem).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if rho:
        X = np.sqrt(1.0 - rho) * X + np.sqrt(rho) * rng.standard_normal((n, 1))
    beta = rng.normal(0.0, 1.0, d)
    if sparse is not None:
        beta[sparse:] = 0.0
    y = 1.0 + X @ beta + rng.normal(0.0, noise, n)
    return X, y
