"""The inference layer: ``fit(spec, method)`` and its results."""

from bayesmle.inference.compiled import clear_cache
from bayesmle.inference.driver import METHODS, fit
from bayesmle.inference.laplace import LaplaceResult
from bayesmle.inference.point import PointResult
from bayesmle.inference.posterior import PosteriorResult

__all__ = ["METHODS", "LaplaceResult", "PointResult", "PosteriorResult", "clear_cache", "fit"]
