"""``fit(spec, method, **options)``: the one entry point of the inference layer."""

from __future__ import annotations

import warnings
from typing import Any

from bayesmle.errors import SpecError
from bayesmle.inference.point_fit import fit_point
from bayesmle.inference.sampling import laplace_approximation, sample_nuts
from bayesmle.models.spec import ModelSpec

__all__ = ["fit", "METHODS"]

#: Existence checks marked ``deferrable`` (the separation LP) run *after* the fit on data with
#: more rows than this, and only if the fit is not certified or reaches extreme fitted values:
#: the log-likelihoods concerned are concave, so a certified optimum with moderate fitted values
#: is the MLE, and separation cannot hide behind it.
DEFER_CHECKS_ABOVE_ROWS = 20_000

METHODS = ("mle", "map", "laplace", "nuts")
_OPTIONS = {
    "mle": {"start", "max_iter", "strict"},
    "map": {"start", "max_iter", "strict"},
    "laplace": {"start", "max_iter", "draws", "random_seed"},
    "nuts": {"draws", "tune", "chains", "random_seed", "sampler", "target_accept",
             "progressbar"},
}


def fit(spec: ModelSpec, method: str = "mle", **options: Any):
    """Fit a model by maximum likelihood, MAP, Laplace approximation or NUTS.

    Parameters
    ----------
    spec : ModelSpec
        The model, from a builder in :mod:`bayesmle.models` or your own.
    method : {"mle", "map", "laplace", "nuts"}
        * ``"mle"`` -- every prior replaced by the flat prior on its support; the mode of the
          Jacobian-free log-density (what ``pymc.find_MAP`` optimises) is then the MLE in the
          natural parametrisation. Raises :class:`~bayesmle.errors.MLENotFoundError` when the
          data admit no (unique, finite) MLE. (Separation is screened by linear programming
          before the fit; above ``DEFER_CHECKS_ABOVE_ROWS`` rows the LP runs after it, only
          when the fit is not certified or reaches separation-like fitted values.)
        * ``"map"`` -- the same with the declared priors. Laplace priors give exact zeros.
        * ``"laplace"`` -- Gaussian approximation at the mode of the posterior density of the
          *unconstrained* parameters (log-scale, log-odds...; this density includes the
          log-Jacobian of the transforms, so its mode differs from the MAP of a scale parameter),
          with covariance the inverse negative Hessian there; draws are mapped back.
        * ``"nuts"`` -- NUTS draws from the posterior (nutpie when installed).
    **options
        ``mle``/``map``: ``start`` (dict of natural-scale starting values), ``max_iter``
        (default 200), ``strict`` (raise ConvergenceError instead of warning).
        ``laplace``: ``draws`` (2000), ``random_seed`` (required), ``start``, ``max_iter``.
        ``nuts``: ``draws`` (1000), ``tune`` (1000), ``chains`` (4), ``random_seed``
        (required), ``sampler`` (``"auto"``, ``"nutpie"``, ``"pymc"``), ``target_accept``
        (0.8), ``progressbar``.

    Returns
    -------
    PointResult, LaplaceResult or PosteriorResult
    """
    if not isinstance(spec, ModelSpec):
        raise SpecError(
            f"`spec` must be a ModelSpec (from a builder such as bayesmle.models.gaussian), got "
            f"{type(spec).__name__}."
        )
    if method not in METHODS:
        raise SpecError(f"Unknown method {method!r}. Valid methods: {list(METHODS)}.")
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise SpecError(
            f"Unknown option(s) {sorted(unknown)} for method {method!r}. "
            f"Valid options: {sorted(_OPTIONS[method])}."
        )
    if method == "mle":
        return _checked_fit(spec.flat(), "mle", options)
    if method == "map":
        if spec.is_flat:
            return _checked_fit(spec, "map", options)
        return fit_point(spec, "map", **options)
    if method == "laplace":
        options.setdefault("random_seed", 0)
        return laplace_approximation(spec, **options)
    return sample_nuts(spec, **options)


def _checked_fit(spec: ModelSpec, method: str, options: dict):
    """A flat-prior fit with the MLE-existence checks, the expensive ones deferred on big data."""
    deferred = [c for c in spec.mle_checks
                if getattr(c, "deferrable", None) is not None
                and (spec.nobs or 0) > DEFER_CHECKS_ABOVE_ROWS]
    for check in spec.mle_checks:
        if check not in deferred:
            check(spec)
    if not deferred:
        return fit_point(spec, method, **options)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            result = fit_point(spec, method, **options)
        except Exception:
            for check in deferred:  # a failed fit: diagnose first
                check(spec)
            raise
    if not result.converged or any(check.deferrable(spec, result) for check in deferred):
        for check in deferred:
            check(spec)  # raises MLENotFoundError when the data are separated
    for w in record:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result
