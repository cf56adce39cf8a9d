"""Bundled example models on built-in (seeded synthetic) data, fitted four ways.

``python -m bayesmle.cli`` (``make report``) prints, for each example, the MLE, the MAP, the
Laplace approximation and the NUTS posterior side by side (the main job until the HTML report
lands). This module only builds and returns; the command line lives in :mod:`bayesmle.cli`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

import bayesmle as bm
from bayesmle import models

__all__ = ["EXAMPLES", "comparison_table"]


def _coin(rng):
    y = (rng.random(30) < 0.7).astype(int)
    return models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0))


def _gaussian(rng):
    y = rng.normal(170.0, 8.0, size=25)
    return models.gaussian(y, mu_prior=bm.Normal(10.0, mu=165.0), sigma_prior=bm.HalfNormal(20.0))


def _poisson(rng):
    return models.poisson(rng.poisson(3.2, size=40), rate_prior=bm.Gamma(2.0, 0.5))


def _ridge(rng):
    X = rng.normal(size=(60, 5))
    y = 2.0 + X @ np.array([1.5, -1.0, 0.0, 0.0, 0.5]) + rng.normal(size=60)
    return models.linear_regression(X, y, prior=bm.Normal(1.0), sigma_prior=bm.HalfNormal(5.0))


def _lasso(rng):
    X = rng.normal(size=(60, 5))
    y = 2.0 + X @ np.array([1.5, -1.0, 0.0, 0.0, 0.5]) + rng.normal(size=60)
    return models.linear_regression(X, y, prior=bm.Laplace(0.1), sigma_prior=bm.HalfNormal(5.0))


def _logistic(rng):
    X = rng.normal(size=(200, 3))
    eta = -0.5 + X @ np.array([1.0, -2.0, 0.0])
    y = (rng.random(200) < 1 / (1 + np.exp(-eta))).astype(int)
    return models.logistic_regression(X, y, prior=bm.Normal(2.5))


EXAMPLES: dict[str, Callable[[np.random.Generator], models.ModelSpec]] = {
    "coin_flip": _coin,
    "gaussian_heights": _gaussian,
    "poisson_counts": _poisson,
    "ridge_regression": _ridge,
    "lasso_regression": _lasso,
    "logistic_regression": _logistic,
}


def comparison_table(spec: models.ModelSpec, *, random_seed: int = 0, draws: int = 1000
                     ) -> pd.DataFrame:
    """MLE, MAP, Laplace and NUTS estimates side by side, one row per scalar parameter."""
    mle = bm.fit(spec, "mle")
    map_ = bm.fit(spec, "map")
    lap = bm.fit(spec, "laplace", random_seed=random_seed)
    post = bm.fit(spec, "nuts", draws=draws, tune=1000, chains=4, random_seed=random_seed)
    summ = post.summary()
    return pd.DataFrame({
        "mle": mle.flat_params(), "mle_se": mle.flat_stderr(),
        "map": map_.flat_params(), "map_se": map_.flat_stderr(),
        "laplace_mean": lap.mean().to_numpy(), "laplace_sd": lap.sd().to_numpy(),
        "post_mean": summ["mean"].to_numpy(), "post_sd": summ["sd"].to_numpy(),
        "r_hat": summ["r_hat"].to_numpy(), "ess_bulk": summ["ess_bulk"].to_numpy(),
    }, index=pd.Index(mle.labels, name="parameter"))
