"""Seeded synthetic data: simulate from a bundled model at known ("true") parameters.

The generator of a spec's ``[data]`` with ``source = "synthetic"`` is the spec's own model:
``truth`` gives its parameters under the model's names (``p``, ``mu``, ``sigma``, ``intercept``,
``coef``...), so the same values serve as the true parameters of the simulation studies. Data
come back as a DataFrame -- ``y`` (plus ``trials`` for the binomial) and predictor columns
``x1..xd`` drawn i.i.d. standard normal -- which the spec maps to the builder's arguments like
any other data set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bayesmle.errors import SpecError

__all__ = ["GENERATORS", "Generator", "generate"]


def _linear_predictor(rng: np.random.Generator, n: int, truth: Mapping[str, Any]
                      ) -> tuple[pd.DataFrame, np.ndarray]:
    coef = np.asarray(truth["coef"], dtype=float)
    d = coef.shape[0]
    X = rng.standard_normal((n, d))
    frame = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(d)])
    eta = X @ coef + np.asarray(truth.get("intercept", 0.0), dtype=float)
    return frame, eta


def _gaussian(rng, n, truth, options):
    return pd.DataFrame({"y": rng.normal(truth["mu"], truth["sigma"], size=n)})


def _bernoulli(rng, n, truth, options):
    return pd.DataFrame({"y": (rng.random(n) < truth["p"]).astype(np.int64)})


def _binomial(rng, n, truth, options):
    trials = np.full(n, int(options.get("trials", 10)))
    return pd.DataFrame({"successes": rng.binomial(trials, truth["p"]), "trials": trials})


def _poisson(rng, n, truth, options):
    return pd.DataFrame({"y": rng.poisson(truth["rate"], size=n)})


def _exponential(rng, n, truth, options):
    return pd.DataFrame({"y": rng.exponential(1.0 / truth["rate"], size=n)})


def _student_t(rng, n, truth, options):
    y = truth["mu"] + truth["sigma"] * rng.standard_t(truth["nu"], size=n)
    return pd.DataFrame({"y": y})


def _linear(rng, n, truth, options):
    frame, eta = _linear_predictor(rng, n, truth)
    frame["y"] = eta + truth["sigma"] * rng.standard_normal(n)
    return frame


def _robust(rng, n, truth, options):
    frame, eta = _linear_predictor(rng, n, truth)
    noise = options.get("noise", "student_t")
    if noise == "laplace":
        eps = rng.laplace(0.0, 1.0, size=n)
    elif noise == "cauchy":
        eps = rng.standard_cauchy(n)
    else:
        eps = rng.standard_t(truth["nu"], size=n)
    frame["y"] = eta + truth["sigma"] * eps
    return frame


def _logistic(rng, n, truth, options):
    frame, eta = _linear_predictor(rng, n, truth)
    frame["y"] = (rng.random(n) < special.expit(eta)).astype(np.int64)
    return frame


def _poisson_regression(rng, n, truth, options):
    frame, eta = _linear_predictor(rng, n, truth)
    frame["y"] = rng.poisson(np.exp(eta))
    return frame


def _negative_binomial(rng, n, truth, options):
    frame, eta = _linear_predictor(rng, n, truth)
    mu = np.exp(eta)
    alpha = float(truth["alpha"])
    # NB2 as a gamma-Poisson mixture: rate ~ Gamma(shape 1/alpha, mean mu).
    frame["y"] = rng.poisson(rng.gamma(1.0 / alpha, alpha * mu))
    return frame


def _softmax(rng, n, truth, options):
    coef = np.asarray(truth["coef"], dtype=float)
    d, k = coef.shape
    X = rng.standard_normal((n, d))
    frame = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(d)])
    eta = X @ coef + np.asarray(truth.get("intercept", np.zeros(k)), dtype=float)
    logits = np.concatenate([np.zeros((n, 1)), eta], axis=1)
    prob = special.softmax(logits, axis=1)
    u = rng.random((n, 1))
    frame["y"] = (u > np.cumsum(prob, axis=1)).sum(axis=1)
    return frame


@dataclass(frozen=True)
class Generator:
    """How to simulate one builder's data: its true parameters and the simulating function."""

    func: Callable[[np.random.Generator, int, Mapping[str, Any], Mapping[str, Any]],
                   pd.DataFrame]
    #: Parameters that ``truth`` must give, and those it may give.
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    #: Generator options read from ``[data]`` (besides n, seed, truth).
    options: tuple[str, ...] = ()
    #: Kinds of parameters that differ from the usual ones ("real", "positive", "unit",
    #: "vector", "matrix").
    kinds: Mapping[str, str] | None = None


_SCALAR = {"mu": "real", "sigma": "positive", "p": "unit", "rate": "positive",
           "nu": "positive", "alpha": "positive", "intercept": "real", "coef": "vector"}

#: One generator per model builder (the builder's name).
GENERATORS: dict[str, Generator] = {
    "gaussian": Generator(_gaussian, ("mu", "sigma")),
    "bernoulli": Generator(_bernoulli, ("p",)),
    "binomial": Generator(_binomial, ("p",), options=("trials",)),
    "poisson": Generator(_poisson, ("rate",)),
    "exponential": Generator(_exponential, ("rate",)),
    "student_t": Generator(_student_t, ("mu", "sigma", "nu")),
    "linear_regression": Generator(_linear, ("coef", "sigma"), ("intercept",)),
    "logistic_regression": Generator(_logistic, ("coef",), ("intercept",)),
    "poisson_regression": Generator(_poisson_regression, ("coef",), ("intercept",)),
    "negative_binomial_regression": Generator(_negative_binomial, ("coef", "alpha"),
                                              ("intercept",)),
    "robust_regression": Generator(_robust, ("coef", "sigma"), ("intercept", "nu")),
    "softmax_regression": Generator(_softmax, ("coef",), ("intercept",),
                                    kinds={"coef": "matrix", "intercept": "vector"}),
}


def kind_of(builder: str, param: str) -> str:
    """The kind of a true parameter: real, positive, unit, vector or matrix."""
    gen = GENERATORS[builder]
    return (gen.kinds or {}).get(param, _SCALAR.get(param, "real"))


def generate(builder: str, n: int, seed: int | np.random.SeedSequence | np.random.Generator,
             truth: Mapping[str, Any], options: Mapping[str, Any] | None = None
             ) -> pd.DataFrame:
    """Simulate ``n`` observations of ``builder``'s model at ``truth`` (already validated).

    Raises
    ------
    SpecError
        Unknown builder, or ``n`` not a positive integer.
    """
    if builder not in GENERATORS:
        raise SpecError(f"No synthetic generator for builder {builder!r}. Valid: "
                        f"{', '.join(GENERATORS)}.")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise SpecError(f"`n` must be a positive integer, got {n!r}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return GENERATORS[builder].func(rng, int(n), truth, dict(options or {}))
