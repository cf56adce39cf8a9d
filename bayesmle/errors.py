"""Typed errors and warnings raised by bayesmle.

Every message names what was wrong (the argument, the bad value or the offending rows/columns)
and ends with a short checklist of what to try, so that a user can act on it without reading
the source.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BayesMLEError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
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


class SamplingWarning(UserWarning):
    """NUTS diagnostics are bad: divergences, R-hat above the threshold, or too small an ESS."""
