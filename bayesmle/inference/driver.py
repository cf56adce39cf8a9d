"""``fit(spec, method, **options)``: the one entry point of the inference layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bayesmle._validation import check_int
from bayesmle.errors import SpecError
from bayesmle.inference import dask_glm, find_map, lad, mixture_fit
from bayesmle.inference.advi import advi
from bayesmle.inference.approximation import ApproximationResult
from bayesmle.inference.laplace import LaplaceResult, laplace_approximation
from bayesmle.inference.mixed import solver as mixed
from bayesmle.inference.pathfinder import pathfinder
from bayesmle.inference.point import PointResult
from bayesmle.inference.point_fit import fit_point
from bayesmle.inference.posterior import PosteriorResult
from bayesmle.inference.prior_predictive import PriorResult, sample_prior
from bayesmle.inference.sampling import nuts_defaults, sample_nuts
from bayesmle.models.spec import ModelSpec

__all__ = ["DEFER_CHECKS_ABOVE_ROWS", "FIT_METHODS", "METHODS", "OPTIONS", "fit", "run"]

#: Existence checks that may be deferred (the separation LP) run *after* the fit on data with
#: more rows than this, and only if the fit is not certified or reaches extreme fitted values:
#: the log-likelihoods concerned are concave, so a certified optimum with moderate fitted values
#: is the MLE, and separation cannot hide behind it. (The LP costs more than the fit from about
#: a thousand rows: measured on a logistic MLE, 105 of 152 ms at n=10,000, d=5, and 536 of
#: 588 ms at n=20,000, d=20.)
DEFER_CHECKS_ABOVE_ROWS = 1_000

METHODS = ("mle", "map", "laplace", "nuts")
#: Variational approximations: accepted by ``fit`` and ``compare(methods=...)``, not run by
#: default.
APPROXIMATIONS = ("advi", "fullrank_advi", "pathfinder")
#: Methods ``fit`` accepts: the comparison methods, REML (Gaussian mixed models), the prior
#: predictive, EM (mixtures) and the variational approximations.
FIT_METHODS = (*METHODS, "reml", "prior", "em", *APPROXIMATIONS)
#: The options each method accepts.
OPTIONS = {
    "mle": frozenset({"start", "max_iter", "strict", "nagq", "optimizer", "polish",
                      "starts", "random_seed"}),
    "reml": frozenset({"start", "max_iter", "strict"}),
    "map": frozenset({"start", "max_iter", "strict", "nagq", "optimizer", "polish",
                      "starts", "random_seed"}),
    "laplace": frozenset({"start", "max_iter", "strict", "draws", "random_seed", "nagq"}),
    "nuts": frozenset({"draws", "tune", "chains", "random_seed", "sampler", "target_accept",
                       "progressbar"}),
    "prior": frozenset({"draws", "random_seed"}),
    "advi": frozenset({"draws", "random_seed", "n", "learning_rate"}),
    "fullrank_advi": frozenset({"draws", "random_seed", "n", "learning_rate"}),
    "pathfinder": frozenset({"draws", "random_seed", "paths", "max_iter", "history",
                             "elbo_draws", "start"}),
    "em": frozenset({"start", "max_iter", "strict", "starts", "random_seed", "tol"}),
}

Result = PointResult | LaplaceResult | PosteriorResult | PriorResult | ApproximationResult


def fit(spec: ModelSpec, method: str = "mle", **options: Any) -> Result:
    """Fit a model by maximum likelihood, MAP, Laplace approximation or NUTS.

    Parameters
    ----------
    spec : ModelSpec
        The model, from a builder in :mod:`bayesmle.models` or your own.
    method : {"mle", "map", "laplace", "nuts", "reml", "em", "prior", "advi", \
"fullrank_advi", "pathfinder"}
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
        * ``"reml"`` -- restricted maximum likelihood of a Gaussian mixed model (random-effects
          terms in ``bm.models.glm``), lme4's REML criterion. For mixed models ``"mle"``,
          ``"map"`` and ``"laplace"`` are defined on the *marginal* likelihood (random effects
          integrated out: exact for Gaussian, Laplace approximation -- ``nagq`` > 1: adaptive
          Gauss-Hermite quadrature -- otherwise); NUTS samples the joint model.
        * ``"em"`` -- the EM algorithm of the mixture builders (``gaussian_mixture``,
          ``poisson_mixture``, ``mixture_regression``; closed-form M-steps, its
          ``loglik_trace`` and ``em_iterations``), its end point certified by the engine's
          gradient and Hessian. For mixtures ``"mle"`` and ``"map"`` (and ``"em"``) run
          ``starts`` starts (default 5, seeded by ``random_seed``) and report the best local
          maximum, the others in ``result.starts``; degenerate components are reported.
        * ``"prior"`` -- draws of the priors and of the prior predictive distribution
          (``prior`` and ``prior_predictive`` groups); refused for flat (improper) priors.
        * ``"advi"``, ``"fullrank_advi"`` -- mean-field / full-rank ADVI (``pymc.fit``);
          ``"pathfinder"`` -- multi-path Pathfinder (Zhang et al. 2022). Each returns an
          :class:`~bayesmle.inference.approximation.ApproximationResult` whose
          ``pareto_k`` (PSIS over the approximation's draws against the exact posterior
          density) flags a poor approximation (> 0.7: a ``SamplingWarning``).
    **options
        ``mle``/``map``: ``start`` (dict of natural-scale starting values), ``max_iter``
        (default 200), ``strict`` (raise ConvergenceError instead of warning), ``nagq``
        (mixed models: quadrature points, default 1 = Laplace), ``starts`` and
        ``random_seed`` (mixtures), ``optimizer``
        (``"newton"``, the certified default, or ``"find_map"``: ``pymc.find_MAP``, its
        answer checked by the same certificate -- ``converged=False`` with its gradient norm
        where it stopped early; ``polish=True`` continues with the certified optimiser; any
        other keyword goes to ``pymc.find_MAP``: ``find_map_method`` -- its ``method``, any
        ``scipy.optimize.minimize`` method --, ``maxiter``, ``tol``...).
        ``advi``/``fullrank_advi``: ``draws`` (2000), ``random_seed``, ``n`` (10000
        iterations), ``learning_rate`` (0.01). ``pathfinder``: ``draws`` (1000),
        ``random_seed``, ``paths`` (4), ``max_iter`` (1000), ``history`` (6),
        ``elbo_draws`` (50), ``start``.
        ``laplace``: ``draws`` (2000), ``random_seed``, ``start``, ``max_iter``, ``strict``.
        ``nuts``: ``draws`` (1000), ``tune`` (1000; 2000 with a horseshoe prior), ``chains``
        (4), ``random_seed``, ``sampler`` (``"auto"``, ``"nutpie"``, ``"pymc"``),
        ``target_accept`` (0.8; 0.95 for mixed models, 0.99 with a horseshoe prior -- see
        :func:`~bayesmle.inference.sampling.nuts_defaults`), ``progressbar``.
        ``prior``: ``draws`` (1000), ``random_seed``.

    Returns
    -------
    PointResult, LaplaceResult, PosteriorResult or PriorResult
        Every result has ``method``, ``params`` (estimates, the mode or posterior means by
        parameter name), ``labels``, ``summary(level=...)``, ``interval(level=...)``,
        ``to_datatree()``, ``diagnostics``, and the predictive methods ``predict(data,
        level=...)``, ``predictive(data)`` (ArviZ DataTree with ``posterior_predictive``)
        and ``log_likelihood(data)``; each diagnostic is also emitted as a
        :class:`~bayesmle.errors.ConvergenceWarning` or
        :class:`~bayesmle.errors.SamplingWarning`. A NUTS run interrupted by Ctrl-C raises
        KeyboardInterrupt (never a partial result).

        ``random_seed`` follows PyMC's rule: optional; when it is absent a seed is drawn from
        the operating system's entropy and recorded as ``result.random_seed``, so that any run
        can be repeated exactly.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2))
    >>> y = 1.0 + X @ [0.5, -0.25] + rng.normal(size=100)
    >>> spec = bm.models.linear_regression(X, y, prior=bm.Normal(0.1))
    >>> mle, map_ = bm.fit(spec, "mle"), bm.fit(spec, "map")
    >>> bool(np.all(np.abs(map_.params["coef"]) < np.abs(mle.params["coef"])))  # shrunk
    True
    """
    result = run(spec, method, **options)
    for diagnostic in result.diagnostics:
        diagnostic.emit()
    return result


def run(spec: ModelSpec, method: str = "mle", **options: Any) -> Result:
    """:func:`fit` without emitting warnings: the diagnostics stay on the result only.

    For callers that report diagnostics themselves (comparisons, studies, reports).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([0.0, 1.0, 1.0, 1.0])
    >>> res = bm.inference.run(bm.models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0)), "map")
    >>> round(float(res.params["p"]), 6), res.diagnostics  # (3 + 1) / (4 + 2)
    (0.666667, ())
    """
    if not isinstance(spec, ModelSpec):
        raise SpecError(
            f"`spec` must be a ModelSpec (from a builder such as bayesmle.models.gaussian), got "
            f"{type(spec).__name__}."
        )
    if not isinstance(method, str) or method not in FIT_METHODS:
        raise SpecError(f"Unknown method {method!r}. Valid methods: {list(FIT_METHODS)}.")
    find_map_kwargs = _find_map_kwargs(method, options)
    unknown = set(options) - OPTIONS[method]
    if unknown:
        raise SpecError(
            f"Unknown option(s) {sorted(unknown)} for method {method!r}. "
            f"Valid options: {sorted(OPTIONS[method])}."
        )
    _check_point_options(options)
    if "nagq" in options and not mixed.applies(spec):
        raise SpecError("`nagq` (quadrature points) applies to mixed models with random effects "
                        f"only; model {spec.name!r} has none.")
    if method == "reml":
        if not mixed.applies(spec):
            raise SpecError(
                f"method 'reml' is defined for Gaussian mixed models (random-effects terms such "
                f"as (1 | g) in bm.models.glm); model {spec.name!r} is not one. Use 'mle'.")
        return mixed.fit_mixed(spec.flat(), "reml", **options)
    if find_map_kwargs is not None:
        options["find_map_kwargs"] = find_map_kwargs
    if method in ("advi", "fullrank_advi"):
        return advi(spec, method=method, **options)
    if method == "pathfinder":
        return pathfinder(spec, **options)
    if method in ("mle", "em"):  # EM: mixtures only (mixture_fit refuses other models)
        return _checked_fit(spec.flat(), method, options)
    if method == "map":
        if spec.is_flat:
            return _checked_fit(spec, "map", options)
        for check in spec.map_checks:  # e.g. no MAP: exactly fitted data, sigma prior > 0 at 0
            check(spec)
        return _optimum(spec, "map", options)
    if method == "laplace":
        if mixed.applies(spec):
            return mixed.mixed_laplace(spec, **options)
        return laplace_approximation(spec, **options)
    if method == "prior":
        return sample_prior(spec, **options)
    return sample_nuts(spec, **{**nuts_defaults(spec), **options})


def _find_map_kwargs(method: str, options: dict) -> dict | None:
    """With ``optimizer="find_map"``: pop the keywords meant for ``pymc.find_MAP``."""
    if method not in ("mle", "map"):
        return None
    optimizer = options.pop("optimizer", "newton")
    if not isinstance(optimizer, str) or optimizer not in find_map.OPTIMIZERS:
        raise SpecError(f"`optimizer` must be one of {list(find_map.OPTIMIZERS)}, got "
                        f"{optimizer!r}.")
    if optimizer == "newton":
        if options.pop("polish", False) is not False:
            raise SpecError("`polish` applies to optimizer='find_map' only (the default "
                            "optimizer's answer is already certified).")
        return None
    if not isinstance(options.get("polish", False), bool):
        raise SpecError(f"`polish` must be True or False, got {options['polish']!r}.")
    extra = {k: options.pop(k) for k in list(options) if k not in OPTIONS[method]}
    if "find_map_method" in extra:
        extra["method"] = extra.pop("find_map_method")
    return extra


def _check_point_options(options: dict) -> None:
    if "max_iter" in options:
        options["max_iter"] = check_int("max_iter", options["max_iter"], 1, 100_000)
    if "strict" in options and not isinstance(options["strict"], bool):
        raise SpecError(f"`strict` must be True or False, got {options['strict']!r}.")
    start = options.get("start")
    if start is not None and not isinstance(start, Mapping):
        raise SpecError(f"`start` must be a dict of parameter name to starting value, got "
                        f"{start!r}.")


def _optimum(spec: ModelSpec, method: str, options: dict) -> PointResult:
    """The MLE/MAP of ``spec`` by its exact solver where one applies, else certified Newton."""
    if dask_glm.applies(spec):  # out-of-core (Dask) data: blockwise Newton
        if "find_map_kwargs" in options:
            raise SpecError("optimizer='find_map' needs the data in memory; model "
                            f"{spec.name!r} holds Dask arrays, fitted by blockwise Newton.")
        mixture_fit.refuse_options(spec, method, options)
        return dask_glm.fit_dask_glm(spec, method, **options)
    if "find_map_kwargs" in options:  # optimizer="find_map"
        if mixture_fit.applies(spec):
            raise SpecError("optimizer='find_map' runs pymc.find_MAP from one start; mixture "
                            f"model {spec.name!r} is fitted from several starts (option "
                            "`starts`) by the default optimiser or by method 'em'.")
        mixture_fit.refuse_options(spec, method, options)
        if "nagq" in options:
            raise SpecError("`nagq` applies to mixed models, which optimizer='find_map' does "
                            "not fit.")
        return find_map.fit_find_map(spec, method, **options)
    if lad.applies(spec):
        return lad.fit_lad(spec, method, **options)
    if mixed.applies(spec):
        return mixed.fit_mixed(spec, method, **options)
    if mixture_fit.applies(spec):
        return mixture_fit.fit_mixture(spec, method, **options)
    mixture_fit.refuse_options(spec, method, options)
    return fit_point(spec, method, **options)


def _checked_fit(spec: ModelSpec, method: str, options: dict) -> PointResult:
    """A flat-prior fit with the MLE-existence checks, the expensive ones deferred on big data."""
    deferred = [c for c in spec.mle_checks
                if c.deferrable and (spec.nobs or 0) > DEFER_CHECKS_ABOVE_ROWS]
    for check in spec.mle_checks:
        if check not in deferred:
            check(spec)
    if not deferred:
        return _optimum(spec, method, options)
    try:
        result = _optimum(spec, method, options)
    except Exception:
        for check in deferred:  # a failed fit: diagnose first
            check(spec)
        raise
    if not result.converged or any(c.suspicious(spec, result.params) for c in deferred):
        for check in deferred:
            check(spec)  # raises MLENotFoundError when the data are separated
    return result
