"""Generalised linear mixed models: the Laplace / AGQ marginal likelihood of ``glmer``.

The model (Bates et al. 2015, *J. Stat. Softw.* 67(1); lme4's theory of PIRLS):
``eta = X beta + offset + Z b``, ``b = Lambda(theta) u``, ``u ~ N(0, I)``, and each row's response
Bernoulli, binomial (``trials``) or Poisson given ``eta`` (links logit / probit / cloglog, log).

* :func:`laplace_deviance` -- ``-2`` times the approximate marginal log-likelihood at
  ``(theta, beta)``: Laplace (``nagq = 1``)
  ``-2 log p(y | beta, b-hat) + |u-hat|^2 + log det(Lambda' Z' W Z Lambda + I)`` with ``u-hat``
  the conditional mode (PIRLS) and ``W`` the **observed** information ``-d^2 log p / d eta^2``
  at the mode (equal to lme4's expected-information weights for the canonical links logit and
  log; for probit and cloglog lme4 uses the expected information, so its values differ from
  these -- the exact Laplace approximation -- slightly); adaptive Gauss-Hermite quadrature
  (``nagq`` in 2..25, as ``glmer``) for one scalar random effect.
* :func:`conditional_modes` -- ``b-hat`` and its conditional standard deviations.
* :func:`glmm_loglik` -- the approximate marginal log-likelihood at natural parameters.
* :func:`fit_glmm` -- its maximum over ``(theta, beta)`` (lme4's second optimisation stage).

The log-likelihood includes every normalising constant (``log C(m, y)``, ``-log y!``), as
statsmodels' GLM ``llf`` and lme4's ``logLik``. With a single grouping factor the levels'
random effects are independent given ``(theta, beta)`` (block-diagonal Newton steps, no size
limit); with several (crossed or nested) factors the Hessian is a dense ``q x q`` matrix, at most
:data:`~bayesmle.inference.mixed.glmm_laplace.MAX_DENSE_Q` (3,000) random effects (a
SpecError beyond).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmle.errors import SpecError
from bayesmle.inference.mixed.fit import MixedFit
from bayesmle.inference.mixed.glmm_family import row_lik
from bayesmle.inference.mixed.glmm_fit import nan_fit, optimise, record
from bayesmle.inference.mixed.glmm_laplace import (
    Structure,
    conditional_b,
    conditional_sd,
    mode_at,
    structure,
)
from bayesmle.inference.mixed.glmm_objective import Objective, check_nagq
from bayesmle.inference.mixed.glmm_start import natural_to_theta, separation_message, start_x
from bayesmle.models.mixed_design import MixedDesign, theta_lower_bounds

__all__ = ["conditional_modes", "fit_glmm", "glmm_loglik", "laplace_deviance"]

_METHODS = ("mle",)


def _structure(design: MixedDesign, state: dict | None = None) -> Structure:
    if not isinstance(design, MixedDesign):
        raise SpecError(f"`design` must be a MixedDesign, got {type(design).__name__}.")
    if not design.blocks:
        raise SpecError("`design` has no random-effect blocks; a GLMM needs at least one term "
                        "such as (1 | g) (fit a model without random effects as a GLM).")
    if state is not None and state.get("design") is design:
        return state["structure"]
    st = structure(design, row_lik(design))
    if state is not None:
        state.clear()
        state.update(design=design, structure=st)
    return st


def _vector(name: str, value: Any, size: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size != size or not np.all(np.isfinite(arr)):
        raise SpecError(f"`{name}` must be {size} finite value(s) ({what}); got "
                        f"{np.asarray(value).tolist()!r}.")
    return arr


def _theta(design: MixedDesign, theta: Any) -> np.ndarray:
    theta = _vector("theta", theta, design.n_theta, "the lower triangle of each L_b, "
                    "column-major")
    if np.any(theta[_diag_mask(design)] < 0):
        raise SpecError(f"`theta` has a negative diagonal entry of some L_b: {theta.tolist()}; "
                        "the diagonal entries must be >= 0 (lme4's lower bounds).")
    return theta


def _diag_mask(design: MixedDesign) -> np.ndarray:
    return np.isfinite(theta_lower_bounds(design))


def laplace_deviance(design: MixedDesign, theta: Any, beta: Any, *, nagq: int = 1,
                     state: dict | None = None) -> float:
    """``-2`` times the Laplace (``nagq = 1``) or AGQ approximate marginal log-likelihood.

    Parameters
    ----------
    design : MixedDesign
        Family ``"bernoulli"``, ``"binomial"`` or ``"poisson"``.
    theta : array_like
        lme4's ``theta`` (lower triangles of the ``L_b``, column-major; diagonal >= 0).
    beta : array_like
        Fixed effects, in the order of ``design.fixed_names``.
    nagq : int
        1 (Laplace) to 25 quadrature points; > 1 only with one scalar random effect.
    state : dict, optional
        A mutable dict kept between calls on the same design: it caches the design's layout
        and the last conditional mode ``state["u"]``, the warm start of the next PIRLS.

    Returns
    -------
    float

    Raises
    ------
    SpecError
        Wrong lengths, a negative diagonal ``theta``, ``nagq`` out of range or not allowed.

    Examples
    --------
    With ``theta = 0`` the random effects vanish: the deviance is ``-2`` times the GLM's
    log-likelihood (here 4 Bernoulli rows at probability 1/2).

    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 0, 1, 1]), np.ones((4, 1)))
    >>> d = MixedDesign(np.ones((4, 1)), ("Intercept",), np.array([0.0, 1.0, 1.0, 0.0]), (g,),
    ...                 family="bernoulli", link="logit")
    >>> dev = laplace_deviance(d, [0.0], [0.0])
    >>> bool(np.isclose(dev, 8 * np.log(2)))
    True
    """
    st = _structure(design, state)
    nagq = check_nagq(design, nagq)
    x = np.concatenate([_theta(design, theta), _vector("beta", beta, design.p,
                                                       f"{list(design.fixed_names)}")])
    obj = Objective(st, nagq)
    if state is not None:
        obj.u = state.get("u")
    value = obj.value_grad(x, grad=False)[0]
    if state is not None:
        state["u"] = obj.u
    return float(value)


def conditional_modes(design: MixedDesign, beta: Any, theta: Any) -> tuple[np.ndarray, np.ndarray]:
    """Conditional modes ``b-hat = Lambda u-hat`` and their conditional standard deviations.

    The standard deviations are ``sqrt(diag(Lambda (L L')^{-1} Lambda'))`` with
    ``L L' = Lambda' Z' W Z Lambda + I`` at the mode (lme4's ``condVar``, observed information).

    Returns
    -------
    (b, b_sd) : tuple of ndarray (q,)
        In the order of ``design.re_labels()``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 0, 1, 1]), np.ones((4, 1)))
    >>> d = MixedDesign(np.ones((4, 1)), ("Intercept",), np.array([1.0, 1.0, 0.0, 0.0]), (g,),
    ...                 family="bernoulli", link="logit")
    >>> b, b_sd = conditional_modes(d, [0.0], [1.0])
    >>> bool(b[0] > 0 > b[1]), bool(np.allclose(b[0], -b[1]))
    (True, True)
    """
    st = _structure(design)
    theta = _theta(design, theta)
    beta = _vector("beta", beta, design.p, f"{list(design.fixed_names)}")
    mode = mode_at(st, theta, beta)
    return conditional_b(st, mode), conditional_sd(st, mode)


def glmm_loglik(design: MixedDesign, beta: Any, sd: Any, corr: Any, *, nagq: int = 1) -> float:
    """The approximate marginal log-likelihood at natural parameters ``(beta, sd, corr)``.

    ``sd`` may be 0 (those random effects vanish) and a correlation +-1 (a singular block).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 0, 1, 1]), np.ones((4, 1)))
    >>> d = MixedDesign(np.ones((4, 1)), ("Intercept",), np.array([0.0, 1.0, 3.0, 2.0]), (g,),
    ...                 family="poisson", link="log")
    >>> ll0 = glmm_loglik(d, [0.5], [0.0], [])   # the Poisson GLM's log-likelihood
    >>> from scipy.stats import poisson
    >>> bool(np.isclose(ll0, poisson.logpmf([0, 1, 3, 2], np.exp(0.5)).sum()))
    True
    >>> bool(glmm_loglik(d, [0.5], [0.3], [], nagq=9) < 0)
    True
    """
    st = _structure(design)
    nagq = check_nagq(design, nagq)
    beta = _vector("beta", beta, design.p, f"{list(design.fixed_names)}")
    theta = natural_to_theta(design, np.atleast_1d(sd), np.atleast_1d(corr))
    obj = Objective(st, nagq)
    return float(-0.5 * obj.value_grad(np.concatenate([theta, beta]), grad=False)[0])


def fit_glmm(design: MixedDesign, method: str = "mle", *, nagq: int = 1,
             start: Any = None, max_iter: int = 500) -> MixedFit:
    """Maximum (Laplace / AGQ) marginal likelihood of a GLMM over ``(theta, beta)``.

    Parameters
    ----------
    design : MixedDesign
    method : {"mle"}
    nagq : int
        1 (Laplace, the default) to 25 adaptive Gauss-Hermite points (one scalar random effect).
    start : array_like, optional
        The natural vector ``[beta, sd, corr]`` to start from; default: the GLM fit and
        ``theta`` = 1 on the diagonal (lme4's start).
    max_iter : int
        Iterations of L-BFGS-B (before the Newton polishing).

    Returns
    -------
    MixedFit
        ``coords = "theta_beta"``; ``beta_cov`` the fixed-effects block of ``2 H^{-1}``, ``H``
        the Hessian of the deviance in ``(theta, beta)`` (central differences of its exact
        gradient) on the coordinates not held at a bound -- lme4's ``vcov`` with
        ``use.hessian = TRUE``; ``converged`` False (with a message) when the projected
        gradient is not at rounding level or the Hessian on the free coordinates is not positive
        definite. When a fixed effect runs to infinity (separation) no optimum exists: every
        estimate is NaN, ``converged`` is False and ``message`` names the columns.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(8), 10)
    >>> y = rng.poisson(np.exp(0.5 + rng.normal(0, 0.7, 8)[codes])).astype(float)
    >>> g = RandomBlock("g", ("Intercept",), tuple("abcdefgh"), codes, np.ones((80, 1)))
    >>> d = MixedDesign(np.ones((80, 1)), ("Intercept",), y, (g,), family="poisson", link="log")
    >>> fit = fit_glmm(d)
    >>> fit.converged, fit.sd.shape, bool(fit.sd[0] > 0)
    (True, (1,), True)
    """
    if method not in _METHODS:
        raise SpecError(f"`method` = {method!r} is not fitted by fit_glmm; valid: "
                        f"{list(_METHODS)} (the marginal MAP is fit_marginal's).")
    ok = not isinstance(max_iter, bool) and isinstance(max_iter, int | np.integer)
    if not ok or max_iter < 1:
        raise SpecError(f"`max_iter` must be an integer >= 1, got {max_iter!r}.")
    st = _structure(design)
    nagq = check_nagq(design, nagq)
    x0 = None if start is None else start_x(design, st.rl, start)
    why = separation_message(design, st.rl)
    if why is not None:
        return nan_fit(design, method, nagq, why)
    if x0 is None:
        x0 = start_x(design, st.rl, None)
    obj = Objective(st, nagq)
    opt = optimise(obj, x0, int(max_iter))
    if not np.isfinite(opt["f"]):
        return nan_fit(design, method, nagq, "the deviance could not be evaluated along the "
                       f"optimiser's path ({opt['message']}); rescale the predictors or give "
                       "start=.")
    return record(obj, opt, method)
