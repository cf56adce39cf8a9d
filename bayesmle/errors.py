"""Typed errors and warnings raised by bayesmle.

Every message names what was wrong (the argument, the bad value or the offending rows/columns)
and ends with a short checklist of what to try, so that a user can act on it without reading
the source.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BayesMLEError",
    "BoundaryWarning",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "Diagnostic",
    "ImproperPosteriorError",
    "MLENotFoundError",
    "PriorError",
    "SamplingWarning",
    "SpecError",
    "checklist",
]


def checklist(message: str, hints: Sequence[str] = ()) -> str:
    """Format an error message followed by a bulleted list of things to try."""
    if not hints:
        return message
    return message + "\nThings to try:\n" + "\n".join(f"  - {hint}" for hint in hints)


class BayesMLEError(Exception):
    """Base class of every error bayesmle raises on purpose."""


class DataError(BayesMLEError, ValueError):
    """Data given to a model builder is invalid (NaN/inf, wrong shape, outside the support...)."""


class PriorError(BayesMLEError, ValueError):
    """A prior was given invalid parameters (e.g. ``sigma <= 0``) or does not fit its parameter."""


class SpecError(BayesMLEError, ValueError):
    """A model specification or a fitting option is invalid (unknown method, bad option value)."""


class MLENotFoundError(BayesMLEError, ArithmeticError):
    """The maximum-likelihood estimate does not exist or is not unique for this data."""


class ConvergenceError(BayesMLEError, RuntimeError):
    """The optimiser could not certify an optimum (gradient not small or Hessian not definite)."""


class ImproperPosteriorError(BayesMLEError, ValueError):
    """The posterior is improper (flat priors where the likelihood does not identify the model)."""


class ConvergenceWarning(UserWarning):
    """A point estimate could not be certified; its numbers should not be trusted as they are."""


class BoundaryWarning(UserWarning):
    """An estimate on the boundary of its parameter space: a "singular" mixed-model fit.

    A variance component at 0 or a correlation at +-1. The estimate exists; its standard error
    does not.
    """


class SamplingWarning(UserWarning):
    """NUTS diagnostics are bad: divergences, R-hat above the threshold, or too small an ESS."""


@dataclass(frozen=True)
class Diagnostic:
    """A statistical problem found by a fit, kept as data on its result.

    Fits never change warning filters or catch warnings: they record what went wrong here,
    and :func:`bayesmle.fit` (or :func:`bayesmle.compare`) emits each diagnostic as a Python
    warning of its ``category`` once the result is complete.

    Examples
    --------
    >>> d = Diagnostic(ConvergenceWarning, "not certified")
    >>> d.category_name
    'ConvergenceWarning'
    """

    category: type[Warning]
    message: str

    @property
    def category_name(self) -> str:
        """The warning class's name (``"ConvergenceWarning"``, ``"SamplingWarning"``)."""
        return self.category.__name__

    def emit(self, stacklevel: int | None = None) -> None:
        """Emit as a Python warning attributed to the user's call.

        By default the warning points at the first frame outside bayesmle (the line of the
        user's code that called ``fit``, ``compare``...); ``stacklevel`` counts frames from the
        caller of ``emit`` instead.
        """
        level = external_stacklevel() if stacklevel is None else stacklevel + 1
        warnings.warn(self.message, self.category, stacklevel=level)


def external_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` in the caller that names the user's frame.

    Counts the frames from the caller of this function up to the first one whose code lies
    outside the bayesmle package (as pandas' ``find_stack_level``), so a warning raised deep
    in the library is attributed to the line of user code that led to it.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    frame = inspect.currentframe()
    level = 0
    try:
        while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
                package + os.sep):
            frame = frame.f_back
            level += 1
    finally:
        del frame
    return max(level, 1)  # this frame excluded, the user's frame included
