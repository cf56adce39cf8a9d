"""bayesmle: one model, three answers -- MLE, MAP and the full posterior, side by side."""

import logging

from bayesmle import errors, losses, models, studies
from bayesmle.compare import Comparison, compare
from bayesmle.errors import (
    ConvergenceError,
    ConvergenceWarning,
    DataError,
    ImproperPosteriorError,
    MLENotFoundError,
    PriorError,
    SamplingWarning,
    SpecError,
)
from bayesmle.inference import (
    METHODS,
    LaplaceResult,
    PointResult,
    PosteriorResult,
    clear_cache,
    fit,
)
from bayesmle.models import ModelSpec
from bayesmle.priors import (
    LKJ,
    Beta,
    Dirichlet,
    Exponential,
    Flat,
    Gamma,
    HalfCauchy,
    HalfFlat,
    HalfNormal,
    Laplace,
    Normal,
    Prior,
)
from bayesmle.priors.shrinkage import Cauchy, ElasticNet, Horseshoe, RegularizedHorseshoe, StudentT

logging.getLogger("bayesmle").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "Beta",
    "Cauchy",
    "Comparison",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "ElasticNet",
    "Dirichlet",
    "Exponential",
    "Flat",
    "Gamma",
    "HalfCauchy",
    "HalfFlat",
    "HalfNormal",
    "Horseshoe",
    "ImproperPosteriorError",
    "LKJ",
    "Laplace",
    "LaplaceResult",
    "MLENotFoundError",
    "ModelSpec",
    "Normal",
    "PointResult",
    "PosteriorResult",
    "Prior",
    "PriorError",
    "RegularizedHorseshoe",
    "SamplingWarning",
    "SpecError",
    "StudentT",
    "clear_cache",
    "compare",
    "errors",
    "fit",
    "losses",
    "models",
    "studies",
]
