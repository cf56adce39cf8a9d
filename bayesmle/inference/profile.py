"""Profile-likelihood confidence intervals of point results (MLE and MAP).

For a scalar parameter ``psi`` (one label, e.g. ``coef[age]`` or ``sigma``) the profile
log-likelihood is ``l_p(c) = max { l(x) : psi(x) = c }``, the maximum over every other
parameter with ``psi`` held at ``c``. The profile interval at level ``1 - a`` is the set
``{c : 2 (l_hat - l_p(c)) <= chi2_1(1 - a)}`` -- the inverted likelihood-ratio test, invariant
under reparametrisation and usually far more accurate than Wald's interval at small n.

What is computed, exactly
-------------------------
Everything runs on the compiled model of the fit (the same objective, gradient and Hessian
over the unconstrained vector ``x`` that the optimiser used; nothing is recompiled).
Every reported scalar of the built-in models is, in ``x``, either

* an *affine* function ``psi = a·x + b`` (locations, regression coefficients in the QR or
  standardised coordinates, intercepts), or
* a monotone function ``psi = h(x_k)`` of *one* coordinate (``sigma = exp(x_k)``,
  ``p = logit^-1(x_k)``, ``rate``, ``alpha``, ``nu``).

The two cases are told apart numerically (the Jacobian of the reported values at the optimum
and at a second point). Either way the constraint ``psi = c`` is a linear constraint
``a·x = t`` in ``x`` (``a = e_k`` and ``t = h^-1(c)`` in the second case). It is eliminated
exactly by solving it for one pivot coordinate, and the remaining coordinates are optimised
with the same certified proximal-Newton optimiser as the fit, with the exact gradient and
Hessian of the reduced objective (``P' g``, ``P' H P`` for the constant elimination matrix
``P``) -- no penalty, no approximation. The endpoints are the roots of the signed root deviance
``sqrt(2 (l_hat - l_p(t))) - sqrt(chi2_1(level))`` on each side of the optimum, bracketed
by stepping out from the Wald endpoint and solved by Brent's method to ~1e-12 in ``t``.
Parameters of user-written models that are nonlinear functions of several coordinates are
refused with a :class:`~bayesmle.errors.SpecError`.

MAP results and Laplace priors
------------------------------
For a MAP result the *log-posterior* (Jacobian-free, the MAP's objective) is profiled instead
of the log-likelihood: the interval is ``{c : 2 (lp_hat - lp_p(c)) <= chi2_1(level)}``, a
profile-posterior interval. With Laplace (L1) priors the profiled objective is the penalised
one, kink included; a coefficient whose MAP is exactly zero gets a finite interval around zero
(no NaN): the L1 term of the fixed coordinate is a constant of the inner problem and L1 terms
of the other coordinates stay exact (zeros remain zeros in the inner fits).

Unbounded sides
---------------
If the profile stays above the threshold as the parameter runs to the edge of its support
(e.g. a logistic coefficient under quasi-separation-like data), that endpoint is the edge:
``-inf``/``+inf`` for a parameter on the real line, ``0`` for a scale, ``0``/``1`` for a
probability.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from bayesmle._validation import check_level
from bayesmle.errors import ConvergenceWarning, SpecError, external_stacklevel
from bayesmle.inference.bound import bind
from bayesmle.inference.profiler import Profiler as _Profiler
from bayesmle.inference.result import FitResult

__all__ = ["parameter_range", "profile_curve", "profile_interval", "profile_table"]


def _check_result(result: FitResult) -> None:
    if not isinstance(result, FitResult) or getattr(result, "optimum", None) is None:
        raise SpecError(f"`result` must be a PointResult from fit(spec, 'mle' | 'map'), got "
                        f"{type(result).__name__}.")
    if result.method not in ("mle", "map"):
        raise SpecError(
            f"Profile intervals are defined for 'mle' and 'map' results, not {result.method!r}"
            " (for the Laplace approximation use result.interval(level=...) on its draws).")
    if result.optimum.solver != "proximal_newton":
        raise SpecError(
            "Profile intervals are not available for least-absolute-deviations regression "
            "(noise='laplace'): its log-likelihood is piecewise linear in the coefficients. "
            "Use method='wald' or fit 'nuts' for posterior intervals.")


def _check_labels(result: FitResult, labels: Sequence[str] | None) -> list[str]:
    if labels is None:
        return list(result.labels)
    if isinstance(labels, str):
        labels = [labels]
    bad = [lab for lab in labels if lab not in result.labels]
    if bad:
        raise SpecError(f"Unknown parameter label(s) {bad}. Valid labels: {result.labels}.")
    return list(labels)


def profile_interval(result: FitResult, *, level: float = 0.95,
                     labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Profile-likelihood confidence intervals, one row per scalar parameter.

    Parameters
    ----------
    result : PointResult
        An MLE or MAP from :func:`bayesmle.fit` (for a MAP the log-posterior is profiled;
        see the module docstring for L1 priors).
    level : float, default 0.95
        Confidence level in [0.5, 1), keyword-only; the endpoints are where the profile drops by
        ``chi2_1(level) / 2`` below its maximum.
    labels : sequence of str, optional
        Parameters to profile (default: all, in ``result.labels`` order).

    Returns
    -------
    pandas.DataFrame
        Columns ``lower`` and ``upper``, index the labels. An unbounded side is reported as
        the edge of the parameter's support (``-inf``/``inf``, or ``0``/``1``).

    Raises
    ------
    SpecError
        For Laplace-approximation or LAD results, unknown labels, or parameters that are
        nonlinear functions of several internal coordinates.

    Warns
    -----
    ConvergenceWarning
        If some constrained re-optimisation could not be certified.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([0, 1, 1, 0, 1, 1, 1, 0], dtype=float)
    >>> mle = bm.fit(bm.models.bernoulli(y), "mle")
    >>> ci = profile_interval(mle, level=0.95)
    >>> bool(0.0 < ci.loc["p", "lower"] < 0.625 < ci.loc["p", "upper"] < 1.0)
    True
    """
    if getattr(result, "mixed", None) is not None:  # marginal likelihood of a mixed model
        from bayesmle.inference.mixed.profile import mixed_profile_interval

        return mixed_profile_interval(result, level=check_level(level), labels=labels)
    frame, unconverged = profile_table(result, level=level, labels=labels)
    _warn_unconverged(unconverged)
    return frame


def profile_table(result: FitResult, *, level: float = 0.95,
                  labels: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """:func:`profile_interval` without warnings: the frame and the uncertified labels."""
    _check_result(result)
    level = check_level(level)
    labels = _check_labels(result, labels)
    q = float(scipy.stats.chi2.ppf(level, 1))
    prof = _Profiler(result, bind(result.spec))
    rows = {}
    for label in labels:
        con = prof.constraint(label)
        ends = [prof.endpoint(con, d, q) for d in (-1, 1)]
        rows[label] = (min(ends), max(ends))
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])
    return frame, sorted(prof.unconverged)


def profile_curve(result: FitResult, label: str, values: Sequence[float]) -> np.ndarray:
    """The profile log-likelihood (log-posterior for a MAP) of one parameter at given values.

    Parameters
    ----------
    result : PointResult
        An MLE or MAP from :func:`bayesmle.fit`.
    label : str
        The parameter (one of ``result.labels``).
    values : sequence of float
        Natural-scale values at which to profile.

    Returns
    -------
    ndarray
        ``max`` of the objective over all other parameters with ``label`` fixed at each value;
        for an MLE the objective is the log-likelihood, for a MAP the Jacobian-free
        log-posterior (L1 terms included). NaN outside the parameter's support.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> mle = bm.fit(bm.models.gaussian(np.array([1.0, 2.0, 4.0, 7.0])), "mle")
    >>> curve = profile_curve(mle, "mu", [3.5, 4.0])
    >>> bool(curve[0] > curve[1]) and bool(np.isclose(curve[0], mle.loglik))
    True
    """
    _check_result(result)
    [label] = _check_labels(result, [label])
    vals = np.asarray(values, dtype=float).ravel()
    out = np.full(vals.size, np.nan)
    prof = _Profiler(result, bind(result.spec))
    con = prof.constraint(label)
    ts = np.array([prof.t_of(con, c) if np.isfinite(c) else np.nan for c in vals])
    # Sweep outwards from the optimum on each side, warm-starting from the neighbour.
    order = np.argsort(ts)
    right = [i for i in order if ts[i] >= con.t_hat]
    left = [i for i in order[::-1] if ts[i] < con.t_hat]
    for side in (right, left):
        x = prof.x_hat
        for i in side:
            value, x_new, _ = prof.solve(con, float(ts[i]), x)
            if x_new is not None:
                out[i] = -value
                x = x_new
    _warn_unconverged(sorted(prof.unconverged))
    return out


def parameter_range(result: FitResult, label: str) -> tuple[float, float]:
    """The range of values a parameter can take: its support as the model declares it.

    ``(-inf, inf)`` for a parameter affine in the internal coordinates (locations,
    coefficients), the limits of the transform otherwise (``(0, inf)`` for a scale,
    ``(0, 1)`` for a probability).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> mle = bm.fit(bm.models.gaussian(np.array([1.0, 2.0, 4.0, 7.0])), "mle")
    >>> parameter_range(mle, "sigma")
    (0.0, inf)
    """
    _check_result(result)
    [label] = _check_labels(result, [label])
    prof = _Profiler(result, bind(result.spec))
    con = prof.constraint(label)
    ends = [prof._limit(con, d) for d in (-1, 1)]
    return min(ends), max(ends)


def _warn_unconverged(labels: list[str]) -> None:
    if labels:
        warnings.warn(
            f"Some constrained re-optimisations of the profile of {labels} could not be "
            "certified; those profile values may be inaccurate.",
            ConvergenceWarning, stacklevel=external_stacklevel())
