"""``fit(spec, method, **options)``: the one entry point of the inference layer."""

from __future__ import annotations

from typing import Any

from bayesmle.errors import SpecError
from bayesmle.inference.point_fit import fit_point
from bayesmle.inference.sampling import laplace_approximation, sample_nuts
from bayesmle.models.spec import ModelSpec

__all__ = ["fit", "METHODS"]

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
          data admit no (unique, finite) MLE.
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
        flat = spec.flat()
        for check in flat.mle_checks:
            check(flat)
        return fit_point(flat, "mle", **options)
    if method == "map":
        if spec.is_flat:
            for check in spec.mle_checks:
                check(spec)
        return fit_point(spec, "map", **options)
    if method == "laplace":
        options.setdefault("random_seed", 0)
        return laplace_approximation(spec, **options)
    return sample_nuts(spec, **options)
