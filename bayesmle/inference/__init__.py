"""The inference layer: ``fit(spec, method)``, the engine behind it and its results."""

from bayesmle.inference.approximation import ApproximationResult
from bayesmle.inference.bound import bind
from bayesmle.inference.driver import METHODS, fit, run
from bayesmle.inference.engine import clear_cache
from bayesmle.inference.laplace import LaplaceResult
from bayesmle.inference.point import PointResult
from bayesmle.inference.posterior import PosteriorResult
from bayesmle.inference.result import FitResult

__all__ = ["METHODS", "ApproximationResult", "FitResult", "LaplaceResult", "PointResult",
           "PosteriorResult", "bind", "clear_cache", "fit", "run"]
