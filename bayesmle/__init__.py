"""bayesmle: one model, three answers -- MLE, MAP and the full posterior, side by side.

``import bayesmle`` imports what a fit needs; :mod:`bayesmle.studies` and :mod:`bayesmle.losses`
(and the heavy libraries only they use, such as matplotlib) are imported on first access
(``bayesmle.studies``, ``from bayesmle import losses``) through the module ``__getattr__``.
"""

import importlib
import logging
from typing import TYPE_CHECKING

from bayesmle import errors, models
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

if TYPE_CHECKING:
    from bayesmle import losses, studies

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

#: Subpackages imported on first access rather than with ``bayesmle`` (PEP 562).
_LAZY_SUBPACKAGES = frozenset({"losses", "studies"})


def __getattr__(name: str):
    """Import a lazy subpackage (``bayesmle.studies``, ``bayesmle.losses``) on first access."""
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
