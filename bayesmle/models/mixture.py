r"""Finite mixtures: latent-class models whose labels are marginalised.

Three builders -- :func:`gaussian_mixture` (univariate, or multivariate with diagonal or,
``covariance="full"``, full covariance matrices), :func:`poisson_mixture` and
:func:`mixture_regression` (a mixture of linear regressions) -- declare the *marginal*
likelihood :math:`\prod_i \sum_j w_j f(y_i \mid \theta_j)` with PyMC's mixture distributions,
so every method of the engine applies unchanged. The components are identified by ordering:
``mu`` (Gaussian), ``rate`` (Poisson) or ``intercept`` (regression) is strictly increasing,
by PyMC's ordered transform, in every method; results of different methods and runs are
therefore comparable component by component, and NUTS chains cannot switch labels.

What a mixture likelihood does *not* have:

* a global maximum, for Gaussian components with free variances: a component centred on one
  observation with ``sigma -> 0`` sends the likelihood to infinity. Every optimum reported is a
  *local* maximum; a fit that runs into such a spike is reported as degenerate
  (:func:`degenerate_components`), never returned as an estimate.
* a MAP, when the prior on ``sigma`` does not vanish fast enough at 0: the posterior density is
  then unbounded too (``map_checks``). A prior with density ~ ``sigma**(a - 1)`` at 0 (``Gamma(a,
  b)``) keeps it bounded when ``a >= m + 1``, ``m`` the largest number of tied observations
  (1 for continuous data); half-normal, half-Cauchy, exponential and flat priors (``a = 1``) do not.
  With full covariances the likelihood is also unbounded along a line: a component on the
  line through ``m`` observations (2 in general position) with its correlation ``r -> +-1``
  and its sds *fixed* grows like ``(1 - r^2)^(-m/2)``, which no prior on ``sigma`` can stop;
  ``LKJ(eta)`` (density ``(1 - r^2)^(eta - 1)``) keeps the posterior bounded when
  ``eta >= 1 + m/2`` (``LKJ(2)`` for continuous data), together with the ``Gamma`` condition.
  For ``d >= 3`` coordinates (a collapse onto a hyperplane) the condition has not been worked
  out: MAP and the posterior methods are refused there, MLE and EM are available.
* a proper posterior, with flat priors on component parameters (an empty component's
  parameters are free to run off to infinity), or, for tied data, with ``a <= m - 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.special
from pymc.distributions import transforms
from pymc.logprob.transforms import Transform

from bayesmle._validation import as_count_array, as_float_array, check_int, check_min_rows
from bayesmle.errors import (
    DataError,
    ImproperPosteriorError,
    MLENotFoundError,
    PriorError,
    SpecError,
    checklist,
)
from bayesmle.models.corr_transform import CorrCPC, corr_cholesky
from bayesmle.models.distributions import scale_prior_order
from bayesmle.models.observations import Observations
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import (
    LKJ,
    Dirichlet,
    Flat,
    HalfFlat,
    Prior,
    check_support,
    lkj_log_normaliser,
)

__all__ = ["COVARIANCES", "DEGENERATE_SIGMA", "MIN_COMPONENT_ROWS", "component_logpdf",
           "corr_matrices", "covariances", "degenerate_components",
           "gaussian_mixture", "is_full", "is_mixture", "mixture_regression", "ordering_key",
           "ordering_values", "poisson_mixture", "responsibilities_at"]

#: A component whose ``sigma`` falls below this fraction of the data's standard deviation is
#: collapsing onto its observations (the unbounded direction of the likelihood).
DEGENERATE_SIGMA = 1e-6
#: A component whose expected number of rows ``n * w_j`` is below this holds at most one
#: observation: its parameters are fitted to that point alone.
MIN_COMPONENT_ROWS = 1.5

_KINDS = ("gaussian", "poisson", "regression")
#: The covariance structures of a multivariate Gaussian mixture.
COVARIANCES = ("diag", "full")


def is_mixture(spec: ModelSpec) -> bool:
    """Whether ``spec`` comes from a mixture builder of this module.

    Examples
    --------
    >>> import bayesmle as bm
    >>> is_mixture(bm.models.gaussian([1.0, 2.0, 3.0]))
    False
    """
    return spec.options.get("mixture") in _KINDS


def ordering_key(spec: ModelSpec) -> str:
    """The parameter whose components are ordered (``mu``, ``rate`` or ``intercept``)."""
    return {"gaussian": "mu", "poisson": "rate", "regression": "intercept"}[
        spec.options["mixture"]]


def ordering_values(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The values that increase across components (a multivariate mean: its first coordinate)."""
    value = np.asarray(params[ordering_key(spec)], dtype=float)
    return value[:, 0] if value.ndim == 2 else value


class OrderedFirstColumn(Transform):
    """Rows of a ``(k, d)`` matrix ordered by their first column (the other columns free).

    The first column goes through PyMC's ordered transform; the log-Jacobian is that of the
    ordered transform on the first column.
    """

    name = "ordered_first_column"
    ndim_supp = 2

    def forward(self, value, *inputs):
        """Natural -> unconstrained."""
        return pt.set_subtensor(value[..., :, 0], transforms.ordered.forward(value[..., :, 0]))

    def backward(self, value, *inputs):
        """Unconstrained -> natural."""
        return pt.set_subtensor(value[..., :, 0], transforms.ordered.backward(value[..., :, 0]))

    def log_jac_det(self, value, *inputs):
        """Log-Jacobian of ``backward``: the log-gaps of the first column."""
        return pt.sum(value[..., 1:, 0], axis=-1)


_ORDERED_FIRST = OrderedFirstColumn()


# ---------------------------------------------------------------------------------------------
# Component densities (numpy): responsibilities, EM, degeneracy checks
# ---------------------------------------------------------------------------------------------
def _means(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Component means ``(..., n, k)`` of a regression mixture (params with leading axes)."""
    X = spec.data["X"]
    intercept = np.asarray(params["intercept"], dtype=float)
    coef = np.asarray(params["coef"], dtype=float)
    return intercept[..., None, :] + np.einsum("np,...kp->...nk", X, coef)


def component_logpdf(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """``log w_j + log f(y_i | theta_j)``, shape ``(..., n, k)``, for a mixture spec.

    ``params`` holds the reported parameters by name, optionally with leading (draw) axes.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.poisson_mixture([0, 1, 7, 9], 2)
    >>> lp = component_logpdf(spec, {"weights": np.array([0.5, 0.5]),
    ...                              "rate": np.array([0.5, 8.0])})
    >>> lp.shape
    (4, 2)
    """
    import scipy.stats

    kind = spec.options["mixture"]
    y = spec.data["y"]
    logw = np.log(np.asarray(params["weights"], dtype=float))[..., None, :]
    if kind == "gaussian" and y.ndim == 2 and is_full(spec):
        cov = covariances(spec, params)[..., None, :, :, :]  # (..., 1, k, d, d)
        chol = np.linalg.cholesky(cov)
        diff = y[:, None, :] - np.asarray(params["mu"], dtype=float)[..., None, :, :]
        z = np.linalg.solve(chol, diff[..., None])[..., 0]  # (..., n, k, d)
        logdet = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
        return logw - 0.5 * (z**2).sum(axis=-1) - logdet \
            - 0.5 * y.shape[1] * np.log(2 * np.pi)
    if kind == "gaussian" and y.ndim == 2:  # independent coordinates within a component
        mu = np.asarray(params["mu"], dtype=float)[..., None, :, :]
        sigma = np.asarray(params["sigma"], dtype=float)
        sigma = sigma[..., None, None, :] if spec.options["equal_variances"] \
            else sigma[..., None, :, :]
        return logw + scipy.stats.norm.logpdf(y[:, None, :], mu, sigma).sum(axis=-1)
    if kind == "gaussian":
        mu = np.asarray(params["mu"], dtype=float)[..., None, :]
        sigma = np.asarray(params["sigma"], dtype=float)
        sigma = np.broadcast_to(sigma[..., None], mu.shape[:-2] + (1, 1)) \
            if spec.options["equal_variances"] else sigma[..., None, :]
        return logw + scipy.stats.norm.logpdf(y[:, None], mu, sigma)
    if kind == "poisson":
        rate = np.asarray(params["rate"], dtype=float)[..., None, :]
        return logw + scipy.stats.poisson.logpmf(y[:, None], rate)
    sigma = np.asarray(params["sigma"], dtype=float)[..., None, :]
    return logw + scipy.stats.norm.logpdf(y[:, None], _means(spec, params), sigma)


def is_full(spec: ModelSpec) -> bool:
    """Whether ``spec`` is a multivariate Gaussian mixture with full covariance matrices."""
    return spec.options.get("covariance") == "full"


def corr_matrices(corr: Any, d: int) -> np.ndarray:
    """Correlation matrices ``(..., d, d)`` from their free correlations ``(..., d(d-1)/2)``.

    The free correlations are the upper triangle row by row (``r_12, r_13, ..., r_23, ...``),
    the order of ``corr``'s ``corr_pair`` coordinate.

    Examples
    --------
    >>> corr_matrices([0.5], 2).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    corr = np.asarray(corr, dtype=float)
    iu = np.triu_indices(d, 1)
    out = np.broadcast_to(np.eye(d), corr.shape[:-1] + (d, d)).copy()
    out[..., iu[0], iu[1]] = corr
    out[..., iu[1], iu[0]] = corr
    return out


def covariances(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Component covariance matrices ``(..., k, d, d)`` of a multivariate Gaussian mixture.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.random.default_rng(0).normal(size=(20, 2))
    >>> spec = bm.models.gaussian_mixture(y, 2, covariance="full")
    >>> covariances(spec, {"sigma": np.array([[1.0, 2.0], [1.0, 1.0]]),
    ...                    "corr": np.array([[0.5], [0.0]])})[0].tolist()
    [[1.0, 1.0], [1.0, 4.0]]
    """
    k, d = spec.options["k"], spec.options["d"]
    sigma = np.broadcast_to(np.asarray(params["sigma"], dtype=float), (k, d)) \
        if np.ndim(params["sigma"]) == 1 else np.asarray(params["sigma"], dtype=float)
    if is_full(spec):
        R = corr_matrices(params["corr"], d)
    else:
        R = np.broadcast_to(np.eye(d), sigma.shape + (d,))
    return sigma[..., :, None] * R * sigma[..., None, :]


def responsibilities_at(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Posterior class probabilities ``P(z_i = j | y_i, theta)``, shape ``(..., n, k)``.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.poisson_mixture([0, 1, 7, 9], 2)
    >>> r = responsibilities_at(spec, {"weights": np.array([0.5, 0.5]),
    ...                                "rate": np.array([0.5, 8.0])})
    >>> np.round(r[:, 1], 3).tolist()  # the counts 7 and 9 belong to the second component
    [0.001, 0.009, 1.0, 1.0]
    """
    lp = component_logpdf(spec, params)
    return np.exp(lp - scipy.special.logsumexp(lp, axis=-1, keepdims=True))


def sigma_ratio(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each component's smallest ``sigma`` relative to the data's sd (per coordinate), ``(k,)``.

    Full covariances: the square root of the smallest eigenvalue of the component's
    covariance with each coordinate divided by the data's sd (its smallest sd in any
    direction, standardised): it vanishes when the component collapses onto a line or plane.
    """
    y = spec.data["y"]
    sd = np.std(y, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    k = spec.options["k"]
    sigma = np.asarray(params["sigma"], dtype=float)
    if y.ndim == 2 and is_full(spec):  # the smallest sd in any direction, on the data's scale
        cov = covariances(spec, params) / np.outer(sd, sd)
        finite = np.all(np.isfinite(cov), axis=(-2, -1))
        low = np.linalg.eigvalsh(np.where(finite[..., None, None], cov, 0.0))[..., 0]
        return np.where(finite, np.sqrt(np.maximum(low, 0.0)), 0.0)
    if y.ndim == 2:
        sigma = np.broadcast_to(sigma, (k, y.shape[1]))
        return (sigma / sd).min(axis=1)
    return np.broadcast_to(sigma / sd, (k,))


def degenerate_components(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> list[str]:
    """Why the components at ``params`` are degenerate (empty list: none is).

    A component is degenerate when its ``sigma`` is below ``DEGENERATE_SIGMA`` times the
    data's standard deviation (it collapses onto its observations: the likelihood's unbounded
    direction) or when it holds fewer than ``MIN_COMPONENT_ROWS`` rows in expectation
    (``n * w_j``: a component fitted to a single observation). With full covariances
    (``covariance="full"``) the first test uses the component's smallest sd in any direction
    (:func:`sigma_ratio`: a covariance becoming singular, e.g. a component on a line through
    two points) and the second ``MIN_COMPONENT_ROWS + d - 1`` (at most ``d`` observations,
    whose scatter matrix is singular).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.gaussian_mixture([0.0, 0.3, 0.5, 0.9, 5.0], 2)
    >>> degenerate_components(spec, {"weights": np.array([0.8, 0.2]),
    ...                              "mu": np.array([0.4, 5.0]),
    ...                              "sigma": np.array([0.3, 1e-9])})  # doctest: +ELLIPSIS
    ['component 2: sigma = 5.4e-10 * sd(y) ...', 'component 2: n * weight = 1 ...']
    """
    out = []
    n = spec.nobs
    w = np.asarray(params["weights"], dtype=float)
    full = is_full(spec)
    if "sigma" in params:
        ratio = sigma_ratio(spec, params)
        what = "smallest sd in any direction" if full else "sigma"
        for j in np.flatnonzero(ratio < DEGENERATE_SIGMA):
            out.append(f"component {j + 1}: {what} = {ratio[j]:.3g} * sd(y) < "
                       f"{DEGENERATE_SIGMA:g} * sd(y) (collapsing onto its "
                       f"observations{' or a line/plane through them' if full else ''}: the "
                       "likelihood is unbounded there)")
    d = spec.options.get("d", 0) if full else 1
    floor = MIN_COMPONENT_ROWS + d - 1
    for j in np.flatnonzero(n * w < floor):
        held = "one observation" if d == 1 else f"{d} observations (a singular covariance)"
        out.append(f"component {j + 1}: n * weight = {n * w[j]:.3g} < {floor:g} "
                   f"(a component holding at most {held})")
    return out


# ---------------------------------------------------------------------------------------------
# Shared pieces of the builders
# ---------------------------------------------------------------------------------------------
def _check_k(k: Any, n: int, distinct: int) -> int:
    k = check_int("k", k, 2, 50)
    if distinct <= k:
        raise DataError(f"A mixture of k = {k} components needs more than {k} distinct values "
                        f"of `y`; the data have {distinct} (n = {n}). Use fewer components.")
    return k


def _component_coords(k: int) -> tuple[str, ...]:
    return tuple(str(j + 1) for j in range(k))


def _location_prior(key: str, prior: Prior | None) -> Prior:
    prior = check_support(key, prior, "real", default=Flat())
    if prior.has_l1:
        raise PriorError(f"`{key}` is ordered across components (the mixture's identification),"
                         f" and an L1 prior such as {prior!r} cannot act on one coordinate of an"
                         " ordered vector: use Flat() or Normal(...).")
    return prior


def _weights_prior(prior: Prior | None) -> Prior:
    return check_support("weights_prior", prior, "simplex", default=Dirichlet(1.0))


def _ordered_start(values: np.ndarray, scale: float) -> np.ndarray:
    """Strictly increasing starting values (ties spread by a small fraction of ``scale``)."""
    out = np.sort(np.asarray(values, dtype=float))
    step = 1e-3 * (scale or 1.0)
    for j in range(1, out.size):
        out[j] = max(out[j], out[j - 1] + step)
    return out


def _quantile_groups(v: np.ndarray, k: int) -> list[np.ndarray]:
    order = np.argsort(v, kind="stable")
    return np.array_split(order, k)


def _tie_multiplicity(y: np.ndarray) -> int:
    """The largest number of equal values (in any one column of a matrix)."""
    cols = y.T if y.ndim == 2 else [y]
    return max(int(np.unique(c, return_counts=True)[1].max()) for c in cols)


def _no_predictions(spec: ModelSpec, data: Any = None) -> dict:
    raise SpecError(
        f"Predictions, predictive draws and leave-one-out are not available for mixtures yet "
        f"({spec.name!r}): the observation engine cannot vectorise PyMC's mixture "
        "distributions over parameter draws. Use result.responsibilities() for each "
        "observation's class, and the fitted parameters for the mixture density.")


def _observations(response: tuple[str, ...]) -> Observations:
    return Observations(declare=_no_predictions, fitted=_no_predictions, rows=_no_predictions,
                        inputs=response, response=("y",))


def _improper_flat(spec: ModelSpec, keys: tuple[str, ...]) -> None:
    flat = [k for k in keys if spec.priors[k].is_flat]
    if flat:
        raise ImproperPosteriorError(checklist(
            f"The posterior of the mixture {spec.name!r} is improper: the prior(s) on "
            f"{flat} are flat, and the parameters of a component that holds no observation "
            "leave the likelihood unchanged all the way to infinity, so their flat prior's "
            "infinite mass is not cancelled.",
            ["Give every component parameter a proper prior, e.g. mu_prior=Normal(10.0), "
             "sigma_prior=Gamma(2.0, 1.0) (which also makes the MAP exist)."]))


def _sigma_checks(equal: bool, y: np.ndarray, kind: str = "component", locations: int = 1):
    """``map_checks`` and ``posterior_checks`` entries for the scale of Gaussian components.

    ``locations`` is the number of location parameters of a component (1 for a mean, p + 1
    for a regression line): a component fits that many observations exactly in general
    position, and ``m`` tied values of ``y`` exactly at a flat line.
    """
    ties = _tie_multiplicity(y)
    m = max(ties, locations)

    def no_map(spec: ModelSpec) -> None:
        if equal:
            return
        prior = spec.priors["sigma"]
        a = scale_prior_order(prior)
        if a is None or a >= m + 1:
            return
        what = ("one observation" if m == 1 else f"the {m} tied observations at the most "
                "repeated value of `y`" if ties == m else f"{m} observations")
        raise MLENotFoundError(checklist(
            f"No MAP exists: a {kind} {'through' if locations > 1 else 'centred on'} {what} "
            "with sigma -> 0 makes the likelihood "
            f"grow like sigma^-{m}, and the prior {prior!r} on `sigma` has density ~ "
            f"sigma^{a - 1:g} at 0, so the posterior density is unbounded (it needs a prior "
            f"~ sigma^(a - 1) with a >= {m + 1}). Every maximum found would be local only.",
            [f"Use sigma_prior=Gamma({m + 1}.0, b) (b chosen for the data's scale) or a "
             "larger shape; it vanishes at 0 fast enough to keep the density bounded.",
             "Or use equal_variances=True (one shared sigma: the likelihood is bounded).",
             "Or fit 'mle' (several starts) and read it as a local maximum."]))

    def proper(spec: ModelSpec) -> None:
        if equal or ties <= locations:
            return
        prior = spec.priors["sigma"]
        a = scale_prior_order(prior)
        excess = ties - locations
        if a is None or a > excess:
            return
        raise ImproperPosteriorError(checklist(
            f"The posterior is improper: {ties} observations of `y` share one value, so a "
            f"{kind} through them with sigma -> 0 gives a likelihood ~ sigma^-{ties}; "
            f"integrating its {locations} location parameter(s) leaves sigma^-{excess} and "
            f"the prior {prior!r} (~ sigma^{a - 1:g} at 0) does not make that integrable (it "
            f"needs a > {excess}).",
            [f"Use sigma_prior=Gamma({excess + 1}.0, b) or a larger shape, or "
             "equal_variances=True.",
             "Rounded data: the values are intervals; a prior keeping sigma above the "
             "rounding unit is the honest fix."]))

    return no_map, proper


# ---------------------------------------------------------------------------------------------
# Gaussian mixture
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _DeclareGaussianMixture:
    """The builder of a k-component Gaussian mixture (equal by value: one compile per k)."""

    k: int
    equal: bool
    d: int = 0  #: number of coordinates of a multivariate mixture (0: univariate)

    def __call__(self, data, priors) -> pm.Model:
        if self.d:
            return _declare_mv_gaussian_mixture(data, priors, self.k, self.equal, self.d)
        return _declare_gaussian_mixture(data, priors, self.k, self.equal)


@dataclass(frozen=True)
class _DeclareFullGaussianMixture:
    """The builder of a k-component mixture of d-variate Gaussians with full covariances."""

    k: int
    d: int

    def __call__(self, data, priors) -> pm.Model:
        return _declare_full_gaussian_mixture(data, priors, self.k, self.d)


def _declare_full_gaussian_mixture(data, priors, k: int, d: int) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    weights = priors["weights"].rv(model, "weights", shape=(k,))
    init = np.zeros((k, d))
    init[:, 0] = np.arange(k)
    mu = priors["mu"].rv(model, "mu", shape=(k, d), transform=_ORDERED_FIRST, initval=init)
    sigma = priors["sigma"].rv(model, "sigma", shape=(k, d))
    if d > 2:
        return _declare_full_gaussian_mixture_nd(model, priors, k, d, y, weights, mu, sigma)
    with model:
        # d = 2: the correlation r is uniform on (-1, 1) under LKJ(1); PyMC's interval
        # transform maps it to the real line (Jacobian for NUTS only, none in MLE/MAP).
        corr = pm.Uniform("corr", -1.0, 1.0, shape=(k, 1), initval=np.zeros((k, 1)))
    prior = priors["corr"]
    if not prior.is_flat:
        # The LKJ density of R = [[1, r], [r, 1]] is (1 - r^2)^(eta - 1) / c(eta): the prior's
        # own logp at the identity gives -log c(eta) (and registers its pm.Data ``eta``); the
        # determinant is written out, so that r -> +-1 gives -inf rather than a singular
        # matrix in the gradient. The uniform density log(1/2) already declared is removed.
        log_c = -prior.logp(model, "corr", pt.eye(d))
        eta = model["corr__prior_eta"]
        with model:
            pm.Potential("corr__prior", (eta - 1.0) * pt.sum(pt.log1p(-corr[:, 0] ** 2))
                         - k * log_c + k * np.log(2.0))
    with model:
        pm.CustomDist("y_obs", weights, mu, sigma, corr, logp=_full_mixture_logp,
                      signature="(k),(k,d),(k,d),(k,p)->(d)", observed=y)
    return model


def _declare_full_gaussian_mixture_nd(model, priors, k: int, d: int, y, weights, mu, sigma
                                      ) -> pm.Model:
    """The correlations of a full-covariance mixture with ``d >= 3`` coordinates.

    ``corr`` (the ``d(d-1)/2`` free correlations per component) has density constant in its
    values (LKJ(1): ``1 / c_d(1)`` on the correlation matrices) and reaches the unconstrained
    space through the CPC transform (:class:`CorrCPC`, Jacobian for Laplace/NUTS only, none in
    MLE/MAP); ``LKJ(eta)`` adds ``(eta - 1) log det R - log c_d(eta)`` per component.
    """
    p = d * (d - 1) // 2
    with model:
        corr = pm.Flat("corr", shape=(k, p), transform=CorrCPC(d), initval=np.zeros((k, p)))
    prior = priors["corr"]
    if prior.is_flat:
        with model:
            pm.Potential("corr__prior", pt.as_tensor(-k * lkj_log_normaliser(1.0, d)))
    else:
        log_c = -prior.logp(model, "corr", pt.eye(d))  # registers the pm.Data ``eta``
        eta = model["corr__prior_eta"]
        L = corr_cholesky(corr, d)
        logdet = 2.0 * sum(pt.log(L[i, i]) for i in range(1, d))  # (k,)
        with model:
            pm.Potential("corr__prior", (eta - 1.0) * pt.sum(logdet) - k * log_c)
    with model:
        pm.CustomDist("y_obs", weights, mu, sigma, corr, logp=_FullMixtureLogp(d),
                      signature="(k),(k,d),(k,d),(k,p)->(d)", observed=y)
    return model


@dataclass(frozen=True)
class _FullMixtureLogp:
    """Log-density of a row under a mixture of ``d``-variate Gaussians ``N(mu_j, S_j R_j S_j)``.

    ``R_j = L_j L_j'`` from the free correlations (:func:`corr_cholesky`, written out over
    ``d``); with ``x = (y - mu_j) / sigma_j`` the triangular solve ``L_j z = x`` is unrolled too,
    ``log det = 2 sum log sigma_j + 2 sum log diag(L_j)``.
    """

    d: int

    def __call__(self, value, w, mu, sigma, corr):
        d = self.d
        x = (value[..., None, :] - mu) / sigma  # (..., k, d)
        L = corr_cholesky(corr, d)  # entries of shape (k,)
        z: list = []
        for i in range(d):
            s = x[..., i]
            for m in range(i):
                s = s - L[i, m] * z[m]
            z.append(s / L[i, i] if i else s)
        quad = sum(zi**2 for zi in z)
        logdet = sum(pt.log(L[i, i]) for i in range(1, d))
        comp = -0.5 * quad - pt.sum(pt.log(sigma), axis=-1) - logdet \
            - 0.5 * d * np.log(2 * np.pi)
        return pt.logsumexp(pt.log(w) + comp, axis=-1)


def _full_mixture_logp(value, w, mu, sigma, corr):
    """Log-density of a row under a mixture of bivariate Gaussians ``N(mu_j, S_j R_j S_j)``.

    ``S_j = diag(sigma_j)``, ``R_j`` with correlation ``r_j``; written out for d = 2 (a few
    elementwise ops, cheap to compile): with ``x = (y - mu_j) / sigma_j``, the quadratic form
    is ``(x1^2 - 2 r x1 x2 + x2^2) / (1 - r^2)`` and ``log det = 2 sum log sigma_j +
    log(1 - r^2)``.
    """
    x = (value[..., None, :] - mu) / sigma  # (..., k, 2)
    r = corr[..., 0]
    one_m = 1.0 - r**2
    quad = (x[..., 0] ** 2 - 2.0 * r * x[..., 0] * x[..., 1] + x[..., 1] ** 2) / one_m
    comp = -0.5 * quad - pt.sum(pt.log(sigma), axis=-1) - 0.5 * pt.log(one_m) - np.log(2 * np.pi)
    return pt.logsumexp(pt.log(w) + comp, axis=-1)


def _declare_mv_gaussian_mixture(data, priors, k: int, equal: bool, d: int) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    weights = priors["weights"].rv(model, "weights", shape=(k,))
    init = np.zeros((k, d))
    init[:, 0] = np.arange(k)
    mu = priors["mu"].rv(model, "mu", shape=(k, d), transform=_ORDERED_FIRST, initval=init)
    sigma = priors["sigma"].rv(model, "sigma", shape=(d,) if equal else (k, d))
    with model:
        pm.CustomDist("y_obs", weights, mu, pt.broadcast_to(sigma, (k, d)),
                      logp=_diagonal_mixture_logp, signature="(k),(k,d),(k,d)->(d)",
                      observed=y)
    return model


def _diagonal_mixture_logp(value, w, mu, sigma):
    """Log-density of a row under a mixture of Gaussians with diagonal covariances."""
    z = (value[..., None, :] - mu) / sigma  # (..., k, d)
    comp = -0.5 * pt.sum(z**2, axis=-1) - pt.sum(pt.log(sigma), axis=-1) \
        - 0.5 * mu.shape[-1] * np.log(2 * np.pi)
    return pt.logsumexp(pt.log(w) + comp, axis=-1)


def _declare_gaussian_mixture(data, priors, k: int, equal: bool) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    weights = priors["weights"].rv(model, "weights", shape=(k,))
    mu = priors["mu"].rv(model, "mu", shape=(k,), transform=transforms.ordered,
                         initval=np.arange(k, dtype=float))
    sigma = priors["sigma"].rv(model, "sigma", shape=() if equal else (k,))
    with model:
        pm.NormalMixture("y_obs", w=weights, mu=mu,
                         sigma=pt.broadcast_to(sigma, (k,)) if equal else sigma, observed=y)
    return model


def _mv_gaussian_start(y: np.ndarray, k: int, equal: bool) -> dict[str, np.ndarray]:
    groups = _quantile_groups(y[:, 0], k)
    sd = np.std(y, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    mu = np.array([y[g].mean(axis=0) for g in groups])
    mu[:, 0] = _ordered_start(mu[:, 0], float(sd[0]))
    sig = np.array([np.maximum(np.std(y[g], axis=0), 0.1 * sd / k) for g in groups])
    resid = np.concatenate([y[g] - y[g].mean(axis=0) for g in groups])
    return {"mu": mu, "sigma": np.maximum(np.std(resid, axis=0), 0.1 * sd / k) if equal
            else sig}


def _full_gaussian_start(y: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Quantile split on the first coordinate: group means, sds and (shrunk) correlations."""
    start = _mv_gaussian_start(y, k, False)
    d = y.shape[1]
    iu = np.triu_indices(d, 1)
    for j, g in enumerate(_quantile_groups(y[:, 0], k)):
        R = np.corrcoef(y[g], rowvar=False) if len(g) > d else np.eye(d)
        R = 0.8 * np.nan_to_num(R) + 0.2 * np.eye(d)  # positive definite, |r| <= 0.8
        start.setdefault("corr", np.zeros((k, iu[0].size)))[j] = R[iu]
    return start


def _max_collinear(y: np.ndarray) -> int:
    """The largest number of rows of a 2-column ``y`` on one oblique straight line.

    Lines parallel to an axis are left out: a component collapses onto them through a
    ``sigma -> 0`` (the tie check of ``sigma``), not through its correlation. Duplicated rows
    count on every line.
    """
    n = y.shape[0]
    best = min(n, 2)
    for i in range(n - 1):
        diff = y[i + 1:] - y[i]
        dup = np.all(diff == 0.0, axis=1)
        diff = diff[~dup]
        counts = 0
        if diff.size:
            u = diff / np.hypot(diff[:, :1], diff[:, 1:])  # unit directions, sign-normalised
            u = np.where((u[:, :1] < 0) | ((u[:, :1] == 0) & (u[:, 1:] < 0)), -u, u)
            u = u[np.all(u != 0.0, axis=1)]  # axis-parallel lines: the sigma check's ties
            if u.size:
                counts = int(np.unique(np.round(u, 9), axis=0, return_counts=True)[1].max())
        best = max(best, 1 + int(dup.sum()) + int(counts))
    return best


def _corr_checks(y: np.ndarray):
    """``map_checks`` and ``posterior_checks`` entries of a full-covariance mixture (LKJ shape).

    A component on the oblique line through ``m`` collinear observations (``m = 2`` in general
    position) with its correlation ``r -> +-1`` and its sds fixed has a likelihood growing
    like ``eps^(-m/2)``, ``eps = 1 - r^2``; the prior ``LKJ(eta)`` has density
    ``eps^(eta - 1)``. The posterior *density* stays bounded only if ``eta >= 1 + m/2``
    (no prior on the sds prevents this collapse: they stay fixed on the way). Integrating the
    line's offset and slope (each within ``~ sqrt(eps)`` of the points' line) leaves
    ``eps^(eta - m/2)``, so the posterior is *proper* only if ``eta > m/2 - 1`` (any ``eta``
    for data in general position). ``m`` is computed on first use (``O(n^2)``).
    """
    state: dict[str, int] = {}

    def collinear() -> int:
        if "m" not in state:
            state["m"] = _max_collinear(y)
        return state["m"]

    def no_map(spec: ModelSpec) -> None:
        prior = spec.priors["corr"]
        eta = float(prior.eta)
        m = collinear()
        need = 1.0 + m / 2.0
        if eta >= need:
            return
        raise MLENotFoundError(checklist(
            f"No MAP exists: a component on the line through {m} collinear observations of "
            "`y`, with its correlation r -> +-1 (its sds fixed), makes the likelihood grow like "
            f"(1 - r^2)^-{m / 2:g}, and the prior {prior!r} on `corr` has density "
            f"(1 - r^2)^{eta - 1:g}, so the posterior density is unbounded (it needs "
            f"LKJ(eta) with eta >= {need:g}). A prior on `sigma` cannot prevent this.",
            [f"Use corr_prior=LKJ({need:g}) or a larger eta, together with a sigma prior that "
             "keeps the density bounded when a component collapses onto a point "
             "(sigma_prior=Gamma(2.0, b) or larger shape).",
             "Or fit 'mle' (several starts) and read it as a local maximum."]))

    def proper(spec: ModelSpec) -> None:
        prior = spec.priors["corr"]
        eta = float(prior.eta)
        m = collinear()
        if eta > m / 2.0 - 1.0:
            return
        raise ImproperPosteriorError(checklist(
            f"The posterior is improper: {m} observations of `y` lie on one line, so a "
            "component on it with its correlation r -> +-1 has a likelihood ~ (1 - r^2)^"
            f"-{m / 2:g}; integrating the line's offset and slope leaves (1 - r^2)^"
            f"{1 - m / 2:g}, and the prior {prior!r} on `corr` (~ (1 - r^2)^{eta - 1:g}) does "
            f"not make that integrable (it needs eta > {m / 2 - 1:g}).",
            [f"Use corr_prior=LKJ({m / 2:g}) or a larger eta.",
             "Rounded data: the values are intervals; collinear rows are an artefact of the "
             "rounding, and a prior keeping the correlations away from +-1 is the honest fix."]))

    return no_map, proper


def _corr_checks_nd(d: int):
    """``map_checks`` and ``posterior_checks`` for ``d >= 3``: MAP, Laplace and NUTS refused.

    A component collapsing onto an affine hyperplane through ``m`` observations (``m >= d``)
    with its sds fixed makes the likelihood grow like ``eps^(-m/2)`` (``eps`` the vanishing
    eigenvalue of ``R``) against ``det(R)^(eta - 1) ~ eps^(eta - 1)`` under ``LKJ(eta)``, which
    suggests ``eta >= 1 + m/2`` for a bounded posterior density; but ``m`` (the largest number
    of rows on one oblique hyperplane) and the collapse onto lower-dimensional flats have not
    been worked out and checked for ``d >= 3``, nor the properness of the posterior. Rather
    than return a MAP or posterior that may not exist, these methods are refused.
    """
    def no_map(spec: ModelSpec) -> None:
        raise MLENotFoundError(checklist(
            f"MAP of a full-covariance mixture is available for d = 2 coordinates only; `y` "
            f"has d = {d}. A component collapsing onto a hyperplane through d or more "
            "observations (its correlation matrix singular, its sds fixed) makes the "
            "likelihood unbounded, and the LKJ eta that keeps the posterior density bounded "
            "has not been established for d >= 3.",
            ["Fit 'mle' or 'em' (several starts) and read the result as a local maximum.",
             "Or use covariance='diag', or two columns of `y`."]))

    def proper(spec: ModelSpec) -> None:
        raise SpecError(
            f"Posterior methods (Laplace, NUTS, ...) of a full-covariance mixture are available "
            f"for d = 2 coordinates only; `y` has d = {d}: whether the posterior is proper "
            "(a component collapsing onto a hyperplane through the observations) has not been "
            "established for d >= 3. Use 'mle' or 'em', covariance='diag', or two columns.")

    return no_map, proper


def _gaussian_start(y: np.ndarray, k: int, equal: bool) -> dict[str, np.ndarray]:
    if y.ndim == 2:
        return _mv_gaussian_start(y, k, equal)
    groups = _quantile_groups(y, k)
    sd = float(np.std(y)) or 1.0
    mu = _ordered_start([y[g].mean() for g in groups], sd)
    sig = np.array([max(float(np.std(y[g])), 0.1 * sd / k) for g in groups])
    resid = np.concatenate([y[g] - y[g].mean() for g in groups])
    return {"mu": mu, "sigma": np.array(max(float(np.std(resid)), 0.1 * sd / k)) if equal else sig}


def _full_gaussian_mixture(y: np.ndarray, k: int, d: int, columns, weights_prior, mu_prior,
                           sigma_prior, equal_variances: bool, corr_prior) -> ModelSpec:
    """:func:`gaussian_mixture` with ``covariance="full"`` (``y`` validated, ``k`` checked)."""
    if d < 2:
        raise SpecError(
            f"covariance='full' needs d >= 2 coordinates; `y` has "
            f"{'one column' if d == 0 else f'{d} columns'}. Pass a 2-D `y` (one row per "
            "observation) or use covariance='diag'.")
    if equal_variances:
        raise SpecError("equal_variances=True (one shared covariance) is not available with "
                        "covariance='full'; use covariance='diag' or equal_variances=False.")
    priors = {"weights": _weights_prior(weights_prior), "mu": _location_prior("mu_prior", mu_prior),
              "sigma": check_support("sigma_prior", sigma_prior, "positive", default=HalfFlat()),
              "corr": check_support("corr_prior", corr_prior, "correlation", default=LKJ(1.0))}
    no_map, proper = _sigma_checks(False, y)
    corr_no_map, corr_proper = _corr_checks(y) if d == 2 else _corr_checks_nd(d)
    names = columns or tuple(f"y{i + 1}" for i in range(d))
    iu = np.triu_indices(d, 1)
    pairs = tuple(f"{names[a]}:{names[b]}" for a, b in zip(*iu, strict=True))

    def rebuild(data, new_priors):
        return gaussian_mixture(pd.DataFrame(data["y"], columns=list(names)), k,
                                weights_prior=new_priors["weights"], mu_prior=new_priors["mu"],
                                sigma_prior=new_priors["sigma"], covariance="full",
                                corr_prior=new_priors["corr"])

    return ModelSpec(
        name="gaussian_mixture",
        declare=_DeclareFullGaussianMixture(k, d),
        data={"y": y},
        priors=priors,
        params=("weights", "mu", "sigma", "corr"),
        dims={"weights": ("component",), "mu": ("component", "coordinate"),
              "sigma": ("component", "coordinate"), "corr": ("component", "corr_pair")},
        coords={"component": _component_coords(k), "coordinate": names, "corr_pair": pairs},
        start=_full_gaussian_start(y, k),
        row_data=frozenset({"y"}), nobs=y.shape[0],
        options={"mixture": "gaussian", "k": k, "equal_variances": False, "d": d,
                 "covariance": "full"},
        description=(f"y_i (d = {d}) ~ sum_j w_j MvNormal(mu_j, diag(sigma_j) R_j "
                     f"diag(sigma_j)), j = 1..{k}, mu[:, 0] increasing; labels marginalised"),
        family="gaussian_mixture",
        observations=_observations(("y",)),
        prior_shapes={"weights": (k,), "mu": (k, d), "sigma": (k, d), "corr": (k, iu[0].size)},
        posterior_checks=(lambda spec: _improper_flat(spec, ("mu", "sigma")), proper,
                          corr_proper),
        map_checks=(no_map, corr_no_map),
        rebuild=rebuild,
    )


def gaussian_mixture(y: Any, k: int = 2, *, weights_prior: Prior | None = None,
                     mu_prior: Prior | None = None, sigma_prior: Prior | None = None,
                     equal_variances: bool = False, covariance: str = "diag",
                     corr_prior: Prior | None = None) -> ModelSpec:
    r"""A mixture of ``k`` Gaussians: :math:`y_i \sim \sum_j w_j N(\mu_j, \sigma_j)`.

    The component labels are marginalised; ``mu`` is strictly increasing (PyMC's ordered
    transform), which identifies the components in every method.

    Parameters
    ----------
    y : array_like or pandas.DataFrame, shape (n,) or (n, d)
        Observations; a matrix (d >= 2) gives a multivariate mixture with *diagonal*
        covariances (independent coordinates within a component), the components ordered by
        the first coordinate of their means.
    k : int, default 2
        Number of components (2..50, fewer than the number of distinct values).
    weights_prior : Prior, default Dirichlet(1)
        Prior on the mixture weights (``Dirichlet(1)``: flat on the simplex).
    mu_prior : Prior, default Flat()
        Prior on each component mean (``Flat`` or ``Normal``; applied to the ordered vector).
    sigma_prior : Prior, default HalfFlat()
        Prior on each component's standard deviation. The MAP needs one vanishing at 0
        (``Gamma(2, b)`` or a larger shape; see the module notes), NUTS a proper one.
    equal_variances : bool, default False
        One ``sigma`` (per coordinate) shared by every component (the likelihood is then
        bounded).
    covariance : {"diag", "full"}, default "diag"
        Multivariate ``y`` only. ``"full"``: each component has its own covariance matrix
        ``diag(sigma_j) R_j diag(sigma_j)``, ``R_j`` a correlation matrix (any ``d >= 2``;
        for ``d >= 3`` the free correlations reach the real line through the CPC transform,
        :class:`~bayesmle.models.corr_transform.CorrCPC`, and LKJ(1) is flat in them, so the
        MLE is that of the covariances). Its likelihood is unbounded also along a line
        (hyperplane) through ``d`` observations (``R_j`` singular with the sds fixed); a start
        ending there is reported as degenerate. MAP and posterior methods: ``d = 2`` only.
    corr_prior : Prior, default LKJ(1)
        ``covariance="full"`` only: the prior of every component's correlation matrix
        (``LKJ(eta)``; ``LKJ(1)`` is uniform). The MAP needs ``eta >= 1 + m/2``, ``m`` the
        largest number of collinear observations (2 in general position), *and* a sigma prior
        vanishing at 0 (``Gamma(2, b)``): see ``map_checks``. For ``d >= 3`` that condition
        is not established: MAP, Laplace and NUTS are refused (MLE and EM work).

    Returns
    -------
    ModelSpec
        Parameters ``weights`` (k), ``mu`` (k, increasing), ``sigma`` (k, or a scalar);
        multivariate: ``mu`` (k, d), ``sigma`` (k, d) or (d,); ``covariance="full"`` adds
        ``corr`` (k, d(d-1)/2), each component's correlations ``r_12, r_13, ..., r_23, ...``
        (:func:`covariances` turns ``sigma`` and ``corr`` into the covariance matrices).
        With free variances the likelihood is unbounded and every MLE is a local maximum.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(1)
    >>> y = np.r_[rng.normal(0.0, 1.0, 60), rng.normal(6.0, 0.5, 40)]
    >>> mle = bm.fit(bm.models.gaussian_mixture(y, 2), "mle", starts=3, random_seed=1)
    >>> np.round(mle.params["mu"], 1).tolist(), mle.converged
    ([-0.0, 6.0], True)
    >>> mle.responsibilities().shape
    (100, 2)

    Full covariances (two correlated clusters):

    >>> c = np.array([[1.0, 0.8], [0.8, 1.0]])
    >>> y2 = np.r_[rng.multivariate_normal([0, 0], c, 80), rng.multivariate_normal([5, 5], c, 80)]
    >>> full = bm.fit(bm.models.gaussian_mixture(y2, 2, covariance="full"), "em", starts=2,
    ...               random_seed=1)
    >>> np.round(full.params["corr"], 1).ravel().tolist()
    [0.8, 0.8]
    """
    columns = tuple(str(c) for c in y.columns) if isinstance(y, pd.DataFrame) else None
    y = as_float_array("y", y, ndim=(1, 2))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    d = y.shape[1] if y.ndim == 2 else 0
    n = y.shape[0]
    check_min_rows("y", n, 3, "to fit a mixture")
    k = _check_k(k, n, np.unique(y, axis=0).shape[0])
    if not isinstance(equal_variances, bool):
        raise SpecError(f"`equal_variances` must be True or False, got {equal_variances!r}.")
    if covariance not in COVARIANCES:
        raise SpecError(f"`covariance` must be one of {list(COVARIANCES)}, got {covariance!r}.")
    if covariance == "full":
        return _full_gaussian_mixture(y, k, d, columns, weights_prior, mu_prior, sigma_prior,
                                      equal_variances, corr_prior)
    if corr_prior is not None:
        raise SpecError(f"`corr_prior` applies to covariance='full' only (got {corr_prior!r} "
                        "with covariance='diag').")
    priors = {"weights": _weights_prior(weights_prior), "mu": _location_prior("mu_prior", mu_prior),
              "sigma": check_support("sigma_prior", sigma_prior, "positive", default=HalfFlat())}
    no_map, proper = _sigma_checks(equal_variances, y)
    coords = {"component": _component_coords(k)}
    dims = {"weights": ("component",), "mu": ("component",)}
    if not equal_variances:
        dims["sigma"] = ("component",)
    mu_shape: tuple[int, ...] = (k,)
    sigma_shape: tuple[int, ...] = () if equal_variances else (k,)
    if d:
        coords["coordinate"] = columns or tuple(f"y{i + 1}" for i in range(d))
        dims = {"weights": ("component",), "mu": ("component", "coordinate"),
                "sigma": ("coordinate",) if equal_variances else ("component", "coordinate")}
        mu_shape, sigma_shape = (k, d), ((d,) if equal_variances else (k, d))

    def rebuild(data, new_priors):
        return gaussian_mixture(data["y"], k, weights_prior=new_priors["weights"],
                                mu_prior=new_priors["mu"], sigma_prior=new_priors["sigma"],
                                equal_variances=equal_variances)

    return ModelSpec(
        name="gaussian_mixture",
        declare=_DeclareGaussianMixture(k, equal_variances, d),
        data={"y": y},
        priors=priors,
        params=("weights", "mu", "sigma"),
        dims=dims, coords=coords,
        start=_gaussian_start(y, k, equal_variances),
        row_data=frozenset({"y"}), nobs=n,
        options={"mixture": "gaussian", "k": k, "equal_variances": equal_variances, "d": d},
        description=(f"y_i ~ sum_j w_j Normal(mu_j, sigma{'' if equal_variances else '_j'}), "
                     f"j = 1..{k}, mu increasing; labels marginalised" if not d else
                     f"y_i (d = {d}) ~ sum_j w_j MvNormal(mu_j, diag(sigma"
                     f"{'' if equal_variances else '_j'}^2)), j = 1..{k}, mu[:, 0] increasing;"
                     " labels marginalised"),
        family="gaussian_mixture",
        observations=_observations(("y",)),
        prior_shapes={"weights": (k,), "mu": mu_shape, "sigma": sigma_shape},
        posterior_checks=(lambda spec: _improper_flat(spec, ("mu", "sigma")), proper),
        map_checks=(no_map,),
        rebuild=rebuild,
    )


# ---------------------------------------------------------------------------------------------
# Poisson mixture
# ---------------------------------------------------------------------------------------------
# PyMC chains it after the prior's default log transform: log-rates increasing.
_LOG_ORDERED = transforms.ordered


@dataclass(frozen=True)
class _DeclarePoissonMixture:
    k: int

    def __call__(self, data, priors) -> pm.Model:
        return _declare_poisson_mixture(data, priors, self.k)


def _declare_poisson_mixture(data, priors, k: int) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    weights = priors["weights"].rv(model, "weights", shape=(k,))
    rate = priors["rate"].rv(model, "rate", shape=(k,), transform=_LOG_ORDERED,
                             initval=np.arange(1, k + 1, dtype=float))
    with model:
        pm.Mixture("y_obs", w=weights, comp_dists=pm.Poisson.dist(mu=rate), observed=y)
    return model


def poisson_mixture(y: Any, k: int = 2, *, weights_prior: Prior | None = None,
                    rate_prior: Prior | None = None) -> ModelSpec:
    r"""A mixture of ``k`` Poisson distributions: :math:`y_i \sim \sum_j w_j P(\lambda_j)`.

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Counts.
    k : int, default 2
        Number of components (fewer than the number of distinct counts).
    weights_prior : Prior, default Dirichlet(1)
        Prior on the weights.
    rate_prior : Prior, default HalfFlat()
        Prior on each rate (the rates are strictly increasing: a log-ordered transform).

    Returns
    -------
    ModelSpec
        Parameters ``weights`` (k) and ``rate`` (k, increasing). The likelihood is bounded but
        multimodal: the MLE reported is the best of several local maxima.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(2)
    >>> y = np.r_[rng.poisson(1.0, 70), rng.poisson(9.0, 30)]
    >>> mle = bm.fit(bm.models.poisson_mixture(y, 2), "mle", starts=3, random_seed=2)
    >>> np.round(mle.params["rate"], 1).tolist()
    [1.0, 8.9]
    """
    y = as_count_array("y", y)
    k = _check_k(k, y.size, np.unique(y).size)
    priors = {"weights": _weights_prior(weights_prior),
              "rate": check_support("rate_prior", rate_prior, "positive", default=HalfFlat())}
    groups = _quantile_groups(y, k)
    mean = float(y.mean()) or 1.0
    rate = _ordered_start([max(y[g].mean(), 0.05 * mean) for g in groups], mean)

    def rebuild(data, new_priors):
        return poisson_mixture(data["y"], k, weights_prior=new_priors["weights"],
                               rate_prior=new_priors["rate"])

    return ModelSpec(
        name="poisson_mixture",
        declare=_DeclarePoissonMixture(k),
        data={"y": y},
        priors=priors,
        params=("weights", "rate"),
        dims={"weights": ("component",), "rate": ("component",)},
        coords={"component": _component_coords(k)},
        start={"rate": rate},
        row_data=frozenset({"y"}), nobs=y.size,
        options={"mixture": "poisson", "k": k},
        description=f"y_i ~ sum_j w_j Poisson(rate_j), j = 1..{k}, rate increasing",
        family="poisson_mixture",
        observations=_observations(("y",)),
        prior_shapes={"weights": (k,), "rate": (k,)},
        posterior_checks=(lambda spec: _improper_flat(spec, ("rate",)),),
        rebuild=rebuild,
    )


# ---------------------------------------------------------------------------------------------
# Mixture of linear regressions
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _DeclareMixtureRegression:
    k: int

    def __call__(self, data, priors) -> pm.Model:
        return _declare_mixture_regression(data, priors, self.k)


def _declare_mixture_regression(data, priors, k: int) -> pm.Model:
    p = data["X"].shape[1]
    with pm.Model() as model:
        X = pm.Data("X", data["X"])
        y = pm.Data("y", data["y"])
    weights = priors["weights"].rv(model, "weights", shape=(k,))
    intercept = priors["intercept"].rv(model, "intercept", shape=(k,),
                                       transform=transforms.ordered,
                                       initval=np.arange(k, dtype=float))
    coef = priors["coef"].rv(model, "coef", shape=(k, p))
    sigma = priors["sigma"].rv(model, "sigma", shape=(k,))
    with model:
        mu = intercept[None, :] + pt.dot(X, coef.T)
        pm.NormalMixture("y_obs", w=weights, mu=mu, sigma=sigma, observed=y)
    return model


def _feature_names(X: Any, p: int) -> tuple[str, ...]:
    if isinstance(X, pd.DataFrame):
        return tuple(str(c) for c in X.columns)
    return tuple(f"x{j + 1}" for j in range(p))


def mixture_regression(X: Any, y: Any, k: int = 2, *, weights_prior: Prior | None = None,
                       intercept_prior: Prior | None = None, coef_prior: Prior | None = None,
                       sigma_prior: Prior | None = None) -> ModelSpec:
    r"""A mixture of ``k`` linear regressions (latent classes with their own line).

    :math:`y_i \sim \sum_j w_j N(\alpha_j + x_i^\top \beta_j, \sigma_j)`, components ordered
    by increasing intercept :math:`\alpha_j`.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, p)
        Predictors (no intercept column: each component has its own intercept).
    y : array_like, shape (n,)
        Responses.
    k : int, default 2
        Number of components.
    weights_prior, intercept_prior, coef_prior, sigma_prior : Prior
        Defaults Dirichlet(1), Flat, Flat, HalfFlat. As for :func:`gaussian_mixture`, the
        likelihood is unbounded (a line through two points with sigma -> 0) and the MAP needs
        a sigma prior vanishing at 0.

    Returns
    -------
    ModelSpec
        Parameters ``weights`` (k), ``intercept`` (k, increasing), ``coef`` (k, p),
        ``sigma`` (k).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(3)
    >>> x = rng.uniform(-2, 2, size=(120, 1))
    >>> z = rng.random(120) < 0.5
    >>> y = np.where(z, 1.0 + 2.0 * x[:, 0], 6.0 - 1.0 * x[:, 0]) + rng.normal(0, 0.3, 120)
    >>> mle = bm.fit(bm.models.mixture_regression(x, y, 2), "mle", starts=4, random_seed=3)
    >>> np.round(mle.params["coef"][:, 0], 1).tolist()
    [2.0, -1.0]
    """
    Xa = as_float_array("X", X, ndim=(1, 2))
    Xa = Xa[:, None] if Xa.ndim == 1 else Xa
    y = as_float_array("y", y, ndim=1)
    if Xa.shape[0] != y.size:
        raise DataError(f"`X` has {Xa.shape[0]} rows but `y` has {y.size}; they must match.")
    p = Xa.shape[1]
    check_min_rows("y", y.size, 3 * (p + 2), "to fit a mixture of regressions")
    k = _check_k(k, y.size, np.unique(y).size)
    priors = {"weights": _weights_prior(weights_prior),
              "intercept": _location_prior("intercept_prior", intercept_prior),
              "coef": check_support("coef_prior", coef_prior, "real", default=Flat()),
              "sigma": check_support("sigma_prior", sigma_prior, "positive", default=HalfFlat())}
    features = _feature_names(X, p)
    design = np.column_stack([np.ones(y.size), Xa])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    groups = _quantile_groups(resid, k)
    sd = float(np.std(resid)) or 1.0
    start = {"intercept": _ordered_start([beta[0] + resid[g].mean() for g in groups], sd),
             "coef": np.tile(beta[1:], (k, 1)),
             "sigma": np.array([max(float(np.std(resid[g])), 0.1 * sd / k) for g in groups])}
    no_map, proper = _sigma_checks(False, y, kind="component line", locations=p + 1)

    def rebuild(data, new_priors):
        return mixture_regression(pd.DataFrame(data["X"], columns=list(features)), data["y"],
                                  k, weights_prior=new_priors["weights"],
                                  intercept_prior=new_priors["intercept"],
                                  coef_prior=new_priors["coef"], sigma_prior=new_priors["sigma"])

    return ModelSpec(
        name="mixture_regression",
        declare=_DeclareMixtureRegression(k),
        data={"X": Xa, "y": y},
        priors=priors,
        params=("weights", "intercept", "coef", "sigma"),
        dims={"weights": ("component",), "intercept": ("component",),
              "coef": ("component", "feature"), "sigma": ("component",)},
        coords={"component": _component_coords(k), "feature": features},
        start=start,
        row_data=frozenset({"X", "y"}), nobs=y.size,
        options={"mixture": "regression", "k": k},
        description=(f"y_i ~ sum_j w_j Normal(intercept_j + x_i' coef_j, sigma_j), j = 1..{k}, "
                     "intercept increasing"),
        family="mixture_regression",
        observations=_observations(("X", "y")),
        prior_shapes={"weights": (k,), "intercept": (k,), "coef": (k, p), "sigma": (k,)},
        posterior_checks=(lambda spec: _improper_flat(spec, ("intercept", "coef", "sigma")),
                          proper),
        map_checks=(no_map,),
        rebuild=rebuild,
    )
