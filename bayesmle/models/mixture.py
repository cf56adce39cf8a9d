r"""Finite mixtures: latent-class models whose labels are marginalised.

Three builders -- :func:`gaussian_mixture` (univariate), :func:`poisson_mixture` and
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
import scipy.stats
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
from bayesmle.models.distributions import scale_prior_order
from bayesmle.models.observations import Observations
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Dirichlet, Flat, HalfFlat, Prior, check_support

__all__ = ["DEGENERATE_SIGMA", "MIN_COMPONENT_ROWS", "component_logpdf",
           "degenerate_components", "gaussian_mixture", "is_mixture", "mixture_regression",
           "ordering_key", "ordering_values", "poisson_mixture", "responsibilities_at"]

#: A component whose ``sigma`` falls below this fraction of the data's standard deviation is
#: collapsing onto its observations (the unbounded direction of the likelihood).
DEGENERATE_SIGMA = 1e-6
#: A component whose expected number of rows ``n * w_j`` is below this holds at most one
#: observation: its parameters are fitted to that point alone.
MIN_COMPONENT_ROWS = 1.5

_KINDS = ("gaussian", "poisson", "regression")


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
    kind = spec.options["mixture"]
    y = spec.data["y"]
    logw = np.log(np.asarray(params["weights"], dtype=float))[..., None, :]
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
    """Each component's smallest ``sigma`` relative to the data's sd (per coordinate), ``(k,)``."""
    y = spec.data["y"]
    sd = np.std(y, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    k = spec.options["k"]
    sigma = np.asarray(params["sigma"], dtype=float)
    if y.ndim == 2:
        sigma = np.broadcast_to(sigma, (k, y.shape[1]))
        return (sigma / sd).min(axis=1)
    return np.broadcast_to(sigma / sd, (k,))


def degenerate_components(spec: ModelSpec, params: Mapping[str, np.ndarray]) -> list[str]:
    """Why the components at ``params`` are degenerate (empty list: none is).

    A component is degenerate when its ``sigma`` is below ``DEGENERATE_SIGMA`` times the
    data's standard deviation (it collapses onto its observations: the likelihood's unbounded
    direction) or when it holds fewer than ``MIN_COMPONENT_ROWS`` rows in expectation
    (``n * w_j``: a component fitted to a single observation).

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
    if "sigma" in params:
        ratio = sigma_ratio(spec, params)
        for j in np.flatnonzero(ratio < DEGENERATE_SIGMA):
            out.append(f"component {j + 1}: sigma = {ratio[j]:.3g} * sd(y) < "
                       f"{DEGENERATE_SIGMA:g} * sd(y) (collapsing onto its "
                       "observations: the likelihood is unbounded there)")
    for j in np.flatnonzero(n * w < MIN_COMPONENT_ROWS):
        out.append(f"component {j + 1}: n * weight = {n * w[j]:.3g} < {MIN_COMPONENT_ROWS:g} "
                   "(a component holding at most one observation)")
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


def _gaussian_start(y: np.ndarray, k: int, equal: bool) -> dict[str, np.ndarray]:
    if y.ndim == 2:
        return _mv_gaussian_start(y, k, equal)
    groups = _quantile_groups(y, k)
    sd = float(np.std(y)) or 1.0
    mu = _ordered_start([y[g].mean() for g in groups], sd)
    sig = np.array([max(float(np.std(y[g])), 0.1 * sd / k) for g in groups])
    resid = np.concatenate([y[g] - y[g].mean() for g in groups])
    return {"mu": mu, "sigma": np.array(max(float(np.std(resid)), 0.1 * sd / k)) if equal else sig}


def gaussian_mixture(y: Any, k: int = 2, *, weights_prior: Prior | None = None,
                     mu_prior: Prior | None = None, sigma_prior: Prior | None = None,
                     equal_variances: bool = False) -> ModelSpec:
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

    Returns
    -------
    ModelSpec
        Parameters ``weights`` (k), ``mu`` (k, increasing), ``sigma`` (k, or a scalar);
        multivariate: ``mu`` (k, d), ``sigma`` (k, d) or (d,).
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
