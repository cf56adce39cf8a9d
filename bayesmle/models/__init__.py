"""Model builders: each returns a frozen :class:`ModelSpec` (see :mod:`bayesmle.models.spec`)."""

from bayesmle.models.distributions import (
    bernoulli,
    binomial,
    exponential,
    gaussian,
    poisson,
    student_t,
)
from bayesmle.models.glm import glm
from bayesmle.models.mixture import gaussian_mixture, mixture_regression, poisson_mixture
from bayesmle.models.regression import (
    binomial_regression,
    gamma_regression,
    linear_regression,
    logistic_regression,
    negative_binomial_regression,
    poisson_regression,
    robust_regression,
    softmax_regression,
)
from bayesmle.models.spec import ModelSpec

__all__ = [
    "ModelSpec",
    "bernoulli",
    "binomial",
    "binomial_regression",
    "exponential",
    "gamma_regression",
    "gaussian",
    "gaussian_mixture",
    "glm",
    "linear_regression",
    "logistic_regression",
    "mixture_regression",
    "negative_binomial_regression",
    "poisson",
    "poisson_mixture",
    "poisson_regression",
    "robust_regression",
    "softmax_regression",
    "student_t",
]
