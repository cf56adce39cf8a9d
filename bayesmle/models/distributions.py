"""Builders for single-distribution models: i.i.d. data from one family.

Each builder validates its data, and returns a frozen :class:`~bayesmle.models.spec.ModelSpec`
whose parameters default to flat priors (so the MAP equals the MLE until a prior is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmle._validation import (
    as_count_array,
    as_float_array,
    as_positive_array,
    check_min_rows,
)
from bayesmle.errors import DataError, ImproperPosteriorError, MLENotFoundError, checklist
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import (
    Beta,
    Exponential,
    Flat,
    Gamma,
    HalfCauchy,
    HalfFlat,
    HalfNormal,
    Prior,
    check_support,
)

__all__ = ["bernoulli", "binomial", "exponential", "gaussian", "poisson", "student_t"]


def _labels_01(name: str, value: Any) -> np.ndarray:
    """Binary labels as a float array of 0/1 (accepts bool, 0/1 ints/floats)."""
    arr = as_float_array(name, value, ndim=1)
    bad = np.flatnonzero((arr != 0) & (arr != 1))
    if bad.size:
        raise DataError(
            f"`{name}` must hold binary labels 0/1 (or booleans), but row(s) "
            f"{', '.join(map(str, bad[:10]))} hold {sorted(set(arr[bad[:10]].tolist()))}. "
            f"Valid values: 0, 1, False, True."
        )
    return arr


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------
def _declare_gaussian(data: Mapping[str, np.ndarray], priors: Mapping[str, Prior]) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    mu = priors["mu"].rv(model, "mu")
    sigma = priors["sigma"].rv(model, "sigma")
    with model:
        pm.Normal("y_obs", mu=mu, sigma=sigma, observed=y)
    return model


def _gaussian_mle_exists(spec: ModelSpec) -> None:
    y = spec.data["y"]
    if np.ptp(y) == 0:
        raise MLENotFoundError(
            checklist(
                f"The Gaussian MLE does not exist: all {y.size} values of `y` equal {y[0]!r}, "
                "so the likelihood grows without bound as sigma -> 0.",
                ["Check that the column is the one you meant to model.",
                 *_exact_fit_hints(y.size, "sigma")],
            )
        )


# ---------------------------------------------------------------------------------------------
# A scale parameter when the data are fitted exactly
# ---------------------------------------------------------------------------------------------
def scale_prior_order(prior: Prior) -> float | None:
    """The power ``a`` with prior density ~ ``sigma**(a - 1)`` as ``sigma -> 0``.

    1 for the flat, half-normal, half-Cauchy and exponential priors (a positive density at
    0), ``alpha`` for ``Gamma(alpha, beta)``; None for a prior whose behaviour at 0 is not
    known here (then no existence claim is made).

    Examples
    --------
    >>> import bayesmle as bm
    >>> scale_prior_order(bm.HalfNormal(1.0)), scale_prior_order(bm.Gamma(3.0, 1.0))
    (1.0, 3.0)
    """
    if isinstance(prior, HalfFlat | HalfNormal | HalfCauchy | Exponential):
        return 1.0
    if isinstance(prior, Gamma) and prior.alpha.size == 1:
        return float(prior.alpha)
    return None


def _exact_fit_hints(n: int, scale: str) -> list[str]:
    return [f"If the fit is really exact, the noise is 0: fix `{scale}` at a known value "
            "(linear_regression(..., sigma=...)) instead of estimating it.",
            f"Or give `{scale}` a prior that vanishes at 0 faster than {scale}^{n}, e.g. "
            f"{scale}_prior=Gamma({n + 2}.0, 1.0) (density ~ {scale}^{n + 1} at 0): then the "
            "MAP exists."]


def no_map_at_zero_scale(n: int, prior: Prior, flat_location: bool, *, scale: str = "sigma",
                         what: str = "the data are fitted exactly (zero residuals)") -> None:
    """Raise MLENotFoundError: on exactly fitted data the posterior density has no maximum.

    At the exact fit the likelihood is ~ ``scale**-n`` as ``scale -> 0`` and a prior with
    density ~ ``scale**(a - 1)`` there makes the density ~ ``scale**(a - 1 - n)``: unbounded
    when ``a < n + 1``, so no MAP exists. At ``a = n + 1`` the density stays bounded; with
    flat location priors its supremum is then approached as ``scale -> 0`` (the Gamma
    prior's ``exp(-beta * scale)`` decreases) and not attained either. For ``a > n + 1`` the
    density vanishes at 0 and the MAP exists.
    """
    a = scale_prior_order(prior)
    if a is None or a > n + 1 or (a == n + 1 and not flat_location):
        return
    bounded = "stays bounded but is largest as" if a == n + 1 else "grows without bound as"
    raise MLENotFoundError(
        checklist(
            f"No MAP exists: {what}, so the likelihood grows like {scale}^-{n} as {scale} -> 0, "
            f"and the prior {prior!r} on `{scale}` does not vanish at 0 fast enough to stop "
            f"it: its density is ~ {scale}^{a - 1:g} there, so the posterior density "
            f"{bounded} {scale} -> 0 (a maximum needs a density ~ {scale}^(a - 1) with "
            f"a > n + 1 = {n + 1}).",
            _exact_fit_hints(n, scale),
        )
    )


def improper_at_zero_scale(n: int, rank: int, prior: Prior, *, scale: str = "sigma",
                           what: str = "the data are fitted exactly (zero residuals)") -> None:
    """Raise ImproperPosteriorError: exactly fitted data and too little prior decay at 0.

    With ``rank`` location directions identified by the data, integrating them out of the
    likelihood at the exact fit leaves ~ ``scale**(rank - n)`` as ``scale -> 0``; times a
    prior density ~ ``scale**(a - 1)`` that is integrable at 0 iff ``a > n - rank``.
    """
    a = scale_prior_order(prior)
    if a is None or a > n - rank:
        return
    raise ImproperPosteriorError(
        checklist(
            f"The posterior is improper: {what}, so after integrating out the {rank} "
            f"identified location direction(s) the likelihood grows like {scale}^-{n - rank} "
            f"as {scale} -> 0, and the prior {prior!r} on `{scale}` (density ~ "
            f"{scale}^{a - 1:g} there) does not make that integrable (it needs a density ~ "
            f"{scale}^(a - 1) with a > n - rank = {n - rank}).",
            _exact_fit_hints(n, scale),
        )
    )


def improper_at_infinite_scale(n: int, n_flat: int, prior: Prior, *,
                               scale: str = "sigma") -> None:
    """Raise ImproperPosteriorError: a flat prior on the scale and too few rows.

    As ``scale -> inf`` the likelihood tends to ``scale**-n`` times a constant, and the
    ``n_flat`` flat-prior location directions integrate to ``scale**n_flat``: with the flat
    prior on the scale the tail is ``scale**(n_flat - n)``, integrable iff ``n >= n_flat + 2``.
    """
    if not (prior.is_flat and n < n_flat + 2):
        return
    raise ImproperPosteriorError(
        checklist(
            f"The posterior is improper: with a flat prior on `{scale}`, {n} row(s) and "
            f"{n_flat} flat-prior location coefficient(s), the posterior of `{scale}` decays "
            f"only like {scale}^-{n - n_flat} as {scale} -> inf, which is not integrable "
            f"(it needs n >= {n_flat + 2} rows).",
            [f"Give `{scale}` a proper prior, e.g. {scale}_prior=HalfNormal(10.0).",
             "Or give the coefficients proper priors, or add rows."],
        )
    )


def _gaussian_posterior_proper(spec: ModelSpec) -> None:
    y = spec.data["y"]
    improper_at_infinite_scale(y.size, int(spec.priors["mu"].is_flat), spec.priors["sigma"])
    if np.ptp(y) == 0:
        improper_at_zero_scale(y.size, 1, spec.priors["sigma"],
                               what=f"all {y.size} values of `y` are equal")


def _gaussian_map_exists(spec: ModelSpec) -> None:
    y = spec.data["y"]
    if np.ptp(y) == 0:
        no_map_at_zero_scale(y.size, spec.priors["sigma"], spec.priors["mu"].is_flat,
                             what=f"all {y.size} values of `y` are equal")


def gaussian(y: Any, *, mu_prior: Prior | None = None, sigma_prior: Prior | None = None
             ) -> ModelSpec:
    r"""I.i.d. Gaussian data: :math:`y_i \sim \mathrm{Normal}(\mu, \sigma)`.

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations (n >= 2).
    mu_prior : Prior, default Flat()
        Prior on the mean.
    sigma_prior : Prior, default HalfFlat()
        Prior on the standard deviation.

    Returns
    -------
    ModelSpec
        Parameters ``mu`` and ``sigma``. The MLE is ``mean(y)`` and ``std(y, ddof=0)``.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([0.5, 1.5, 1.0, 2.0, 0.0])
    >>> spec = bm.models.gaussian(y)
    >>> spec.params
    ('mu', 'sigma')
    >>> mle = bm.fit(spec, "mle")
    >>> round(float(mle.params["mu"]), 4), round(float(mle.params["sigma"]), 4)
    (1.0, 0.7071)

    The MLE of ``sigma`` divides by n, not n - 1:

    >>> round(float(np.std(y, ddof=0)), 4), round(float(np.std(y, ddof=1)), 4)
    (0.7071, 0.7906)

    A ``Normal(1.0)`` prior on ``mu`` (centred at 0) pulls the MAP towards 0:

    >>> map_ = bm.fit(bm.models.gaussian(y, mu_prior=bm.Normal(1.0)), "map")
    >>> round(float(map_.params["mu"]), 4)
    0.9077
    """
    y = as_float_array("y", y, ndim=1)
    check_min_rows("y", y.size, 2, "to estimate a mean and a standard deviation")
    priors = {
        "mu": check_support("mu_prior", mu_prior, "real", default=Flat()),
        "sigma": check_support("sigma_prior", sigma_prior, "positive", default=HalfFlat()),
    }
    sd = float(np.std(y))
    return ModelSpec(
        name="gaussian",
        declare=_declare_gaussian,
        data={"y": y},
        priors=priors,
        params=("mu", "sigma"),
        start={"mu": float(np.mean(y)), "sigma": sd if sd > 0 else 1.0},
        description=r"y_i ~ Normal(mu, sigma), i = 1..n",
        mle_checks=(_gaussian_mle_exists,),
        posterior_checks=(_gaussian_posterior_proper,),
        map_checks=(_gaussian_map_exists,),
        rebuild=_rebuild_gaussian,
    )


# ---------------------------------------------------------------------------------------------
# Bernoulli and binomial
# ---------------------------------------------------------------------------------------------
def _declare_bernoulli(data, priors) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    p = priors["p"].rv(model, "p")
    with model:
        pm.Bernoulli("y_obs", p=p, observed=y)
    return model


def _declare_binomial(data, priors) -> pm.Model:
    with pm.Model() as model:
        k = pm.Data("successes", data["successes"])
        n = pm.Data("trials", data["trials"])
    p = priors["p"].rv(model, "p")
    with model:
        # whole-number trials as integers: numpy's binomial sampler refuses a float count
        pm.Binomial("successes_obs", n=pt.cast(n, "int64"), p=p, observed=k)
    return model


def _boundary_p_check(k: float, n: float, what: str):
    def check(spec: ModelSpec) -> None:
        if k == 0 or k == n:
            outcome = "failures" if k == 0 else "successes"
            raise MLENotFoundError(
                checklist(
                    f"The MLE of p is on the boundary: all {n:g} {what} are {outcome} "
                    f"(k = {k:g}), so the likelihood is maximised at p = {k / n:g}, where the "
                    "log-odds are infinite and no standard error exists.",
                    ["Give p a proper prior (e.g. p_prior=Beta(1, 1) is flat but proper: fit "
                     "'map' or 'nuts'; Beta(2, 2) shrinks towards 1/2).",
                     "Collect more data."],
                )
            )

    return check


def bernoulli(y: Any, *, p_prior: Prior | None = None) -> ModelSpec:
    r"""I.i.d. binary data: :math:`y_i \sim \mathrm{Bernoulli}(p)`.

    Parameters
    ----------
    y : array_like of {0, 1} or bool, shape (n,)
        Binary outcomes.
    p_prior : Prior, default Beta(1, 1)
        Prior on the success probability (``Beta(1, 1)`` is flat).

    Returns
    -------
    ModelSpec
        Parameter ``p``; the MLE is ``k / n`` (requires 0 < k < n).

    Examples
    --------
    >>> import bayesmle as bm
    >>> y = [1, 1, 1, 0, 1, 0, 1, 1, 0, 1]
    >>> round(float(bm.fit(bm.models.bernoulli(y), "mle").params["p"]), 4)  # k / n
    0.7

    ``Beta(2, 2)`` adds one pseudo-success and one pseudo-failure: the MAP is
    ``(k + 1) / (n + 2)``.

    >>> spec = bm.models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0))
    >>> round(float(bm.fit(spec, "map").params["p"]), 4)
    0.6667

    When every trial is a success the MLE does not exist (``p = 1`` is on the boundary):

    >>> bm.fit(bm.models.bernoulli([1, 1, 1]), "mle")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.MLENotFoundError: The MLE of p is on the boundary: all 3 trials are successes...
    """
    y = _labels_01("y", y)
    k, n = float(y.sum()), float(y.size)
    return ModelSpec(
        name="bernoulli",
        declare=_declare_bernoulli,
        data={"y": y},
        priors={"p": check_support("p_prior", p_prior, "unit", default=Beta(1.0, 1.0))},
        params=("p",),
        start={"p": min(max(k / n, 0.01), 0.99)},
        description="y_i ~ Bernoulli(p), i = 1..n",
        mle_checks=(_boundary_p_check(k, n, "trials"),),
        rebuild=_rebuild_bernoulli,
    )


def binomial(successes: Any, trials: Any, *, p_prior: Prior | None = None) -> ModelSpec:
    r"""Binomial counts: :math:`k_i \sim \mathrm{Binomial}(n_i, p)`.

    Parameters
    ----------
    successes : array_like of int, shape (m,)
        Number of successes per group.
    trials : array_like of int, shape (m,) or scalar
        Number of trials per group (``successes <= trials``).
    p_prior : Prior, default Beta(1, 1)
        Prior on the success probability.

    Returns
    -------
    ModelSpec
        Parameter ``p``; the MLE is ``sum(successes) / sum(trials)``.

    Examples
    --------
    Three groups of ten trials (a scalar ``trials`` is shared by every group):

    >>> import bayesmle as bm
    >>> spec = bm.models.binomial([3, 5, 2], 10)
    >>> spec.data["trials"].tolist()
    [10.0, 10.0, 10.0]
    >>> round(float(bm.fit(spec, "mle").params["p"]), 4)  # 10 / 30
    0.3333
    """
    k = as_count_array("successes",
                       as_float_array("successes", successes, ndim=(0, 1)).reshape(-1))
    t_arr = as_float_array("trials", trials, ndim=(0, 1)).reshape(-1)
    if t_arr.size == 1 and k.size > 1:
        t_arr = np.repeat(t_arr, k.size)
    t = as_count_array("trials", t_arr, what="trial counts")
    if t.shape != k.shape:
        raise DataError(
            f"`successes` and `trials` must have the same length, got {k.size} and {t.size}."
        )
    over = np.flatnonzero(k > t)
    if over.size:
        i = over[0]
        raise DataError(
            f"`successes` exceeds `trials` at row(s) {', '.join(map(str, over[:10]))} "
            f"(e.g. row {i}: {k[i]:g} successes out of {t[i]:g} trials)."
        )
    if t.sum() == 0:
        raise DataError("`trials` sums to zero: there is no trial to learn p from.")
    ks, ts = float(k.sum()), float(t.sum())
    return ModelSpec(
        name="binomial",
        declare=_declare_binomial,
        data={"successes": k, "trials": np.ascontiguousarray(t)},
        priors={"p": check_support("p_prior", p_prior, "unit", default=Beta(1.0, 1.0))},
        params=("p",),
        start={"p": min(max(ks / ts, 0.01), 0.99)},
        description="successes_i ~ Binomial(trials_i, p)",
        mle_checks=(_boundary_p_check(ks, ts, "trials"),),
        rebuild=_rebuild_binomial,
    )


# ---------------------------------------------------------------------------------------------
# Poisson and exponential
# ---------------------------------------------------------------------------------------------
def _declare_poisson(data, priors) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    rate = priors["rate"].rv(model, "rate")
    with model:
        pm.Poisson("y_obs", mu=rate, observed=y)
    return model


def _poisson_mle_exists(spec: ModelSpec) -> None:
    if spec.data["y"].sum() == 0:
        raise MLENotFoundError(
            checklist(
                f"The Poisson MLE is on the boundary: all {spec.data['y'].size} counts are zero, "
                "so the likelihood is maximised at rate = 0 (log-rate -> -inf) and no standard "
                "error exists.",
                ["Give the rate a proper prior (e.g. rate_prior=Gamma(1.0, 1.0)) and fit 'map'.",
                 "Collect more data."],
            )
        )


def poisson(y: Any, *, rate_prior: Prior | None = None) -> ModelSpec:
    r"""I.i.d. counts: :math:`y_i \sim \mathrm{Poisson}(\lambda)`.

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Non-negative whole-number counts.
    rate_prior : Prior, default HalfFlat()
        Prior on the rate.

    Returns
    -------
    ModelSpec
        Parameter ``rate``; the MLE is ``mean(y)`` (requires some count > 0).

    Examples
    --------
    >>> import bayesmle as bm
    >>> mle = bm.fit(bm.models.poisson([2, 0, 3, 1, 4]), "mle")
    >>> round(float(mle.params["rate"]), 4), round(float(mle.stderr["rate"]), 4)  # sqrt(2 / 5)
    (2.0, 0.6325)

    All-zero counts have no MLE (the rate's would be 0, on the boundary):

    >>> bm.fit(bm.models.poisson([0, 0, 0]), "mle")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.MLENotFoundError: The Poisson MLE is on the boundary: all 3 counts are zero...
    """
    y = as_count_array("y", y)
    mean = float(y.mean())
    return ModelSpec(
        name="poisson",
        declare=_declare_poisson,
        data={"y": y},
        priors={"rate": check_support("rate_prior", rate_prior, "positive", default=HalfFlat())},
        params=("rate",),
        start={"rate": mean if mean > 0 else 1.0},
        description="y_i ~ Poisson(rate)",
        mle_checks=(_poisson_mle_exists,),
        rebuild=_rebuild_poisson,
    )


def _declare_exponential(data, priors) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    rate = priors["rate"].rv(model, "rate")
    with model:
        pm.Exponential("y_obs", lam=rate, observed=y)
    return model


def exponential(y: Any, *, rate_prior: Prior | None = None) -> ModelSpec:
    r"""I.i.d. waiting times: :math:`y_i \sim \mathrm{Exponential}(\lambda)` (rate).

    Parameters
    ----------
    y : array_like, shape (n,)
        Strictly positive observations.
    rate_prior : Prior, default HalfFlat()
        Prior on the rate.

    Returns
    -------
    ModelSpec
        Parameter ``rate``; the MLE is ``1 / mean(y)``.

    Examples
    --------
    >>> import bayesmle as bm
    >>> mle = bm.fit(bm.models.exponential([0.5, 1.5, 2.0, 1.0]), "mle")
    >>> round(float(mle.params["rate"]), 4)  # 1 / mean(y)
    0.8
    """
    y = as_positive_array("y", y, what="an exponential model", valid="positive reals")
    return ModelSpec(
        name="exponential",
        declare=_declare_exponential,
        data={"y": y},
        priors={"rate": check_support("rate_prior", rate_prior, "positive", default=HalfFlat())},
        params=("rate",),
        start={"rate": 1.0 / float(y.mean())},
        description="y_i ~ Exponential(rate)",
        rebuild=_rebuild_exponential,
    )


# ---------------------------------------------------------------------------------------------
# Student-t
# ---------------------------------------------------------------------------------------------
def _declare_student_t(data, priors) -> pm.Model:
    with pm.Model() as model:
        y = pm.Data("y", data["y"])
    mu = priors["mu"].rv(model, "mu")
    sigma = priors["sigma"].rv(model, "sigma")
    nu = priors["nu"].rv(model, "nu")
    with model:
        pm.StudentT("y_obs", nu=nu, mu=mu, sigma=sigma, observed=y)
    return model


def _student_t_posterior_proper(spec: ModelSpec) -> None:
    if spec.priors["nu"].is_flat:
        raise ImproperPosteriorError(
            checklist(
                "The posterior of a Student-t model with a flat prior on `nu` is improper: the "
                "likelihood tends to a positive constant (the Gaussian limit) as nu -> inf, so "
                "the flat prior's mass there is infinite.",
                ["Give nu a proper prior, e.g. nu_prior=Gamma(2.0, 0.1) (Juarez & Steel) or "
                 "Exponential(1/30)."],
            )
        )


def student_t(y: Any, *, mu_prior: Prior | None = None, sigma_prior: Prior | None = None,
              nu_prior: Prior | None = None) -> ModelSpec:
    r"""Heavy-tailed data: :math:`y_i \sim t_\nu(\mu, \sigma)`.

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations (n >= 3).
    mu_prior, sigma_prior, nu_prior : Prior
        Priors on location, scale and degrees of freedom (defaults Flat, HalfFlat, HalfFlat).
        NUTS needs a proper prior on ``nu``.

    Returns
    -------
    ModelSpec
        Parameters ``mu``, ``sigma``, ``nu``. If the data are close to Gaussian the MLE of
        ``nu`` is infinite; the fit then reports that the MLE does not exist.

    Examples
    --------
    Six values near 0 and one outlier: the Student-t location stays with the bulk of the data,
    where the mean is dragged away.

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([-0.3, 0.1, 0.4, -0.2, 0.0, 0.2, 15.0])
    >>> spec = bm.models.student_t(y, nu_prior=bm.Gamma(2.0, 0.1))
    >>> map_ = bm.fit(spec, "map")
    >>> round(float(map_.params["mu"]), 2), round(float(np.mean(y)), 2)
    (0.05, 2.17)

    With the default flat prior on ``nu`` the posterior is improper, so NUTS refuses it:

    >>> bm.fit(bm.models.student_t(y), "nuts", random_seed=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.ImproperPosteriorError: The posterior of a Student-t model with a flat prior...
    """
    y = as_float_array("y", y, ndim=1)
    check_min_rows("y", y.size, 3, "to estimate location, scale and degrees of freedom")
    med = float(np.median(y))
    mad = float(np.median(np.abs(y - med))) * 1.4826
    scale = mad if mad > 0 else (float(np.std(y)) or 1.0)
    return ModelSpec(
        name="student_t",
        declare=_declare_student_t,
        data={"y": y},
        priors={
            "mu": check_support("mu_prior", mu_prior, "real", default=Flat()),
            "sigma": check_support("sigma_prior", sigma_prior, "positive", default=HalfFlat()),
            "nu": check_support("nu_prior", nu_prior, "positive", default=HalfFlat()),
        },
        params=("mu", "sigma", "nu"),
        start={"mu": med, "sigma": scale, "nu": 5.0},
        description="y_i ~ StudentT(nu, mu, sigma)",
        mle_checks=(_gaussian_mle_exists,),
        posterior_checks=(_student_t_posterior_proper,),
        rebuild=_rebuild_student_t,
    )


# ---------------------------------------------------------------------------------------------
# Rebuilding a spec for other data (``ModelSpec.rebuild``: leave-one-out, K-fold)
# ---------------------------------------------------------------------------------------------
def _rebuild_gaussian(data, priors) -> ModelSpec:
    return gaussian(data["y"], mu_prior=priors["mu"], sigma_prior=priors["sigma"])


def _rebuild_bernoulli(data, priors) -> ModelSpec:
    return bernoulli(data["y"], p_prior=priors["p"])


def _rebuild_binomial(data, priors) -> ModelSpec:
    return binomial(data["successes"], data["trials"], p_prior=priors["p"])


def _rebuild_poisson(data, priors) -> ModelSpec:
    return poisson(data["y"], rate_prior=priors["rate"])


def _rebuild_exponential(data, priors) -> ModelSpec:
    return exponential(data["y"], rate_prior=priors["rate"])


def _rebuild_student_t(data, priors) -> ModelSpec:
    return student_t(data["y"], mu_prior=priors["mu"], sigma_prior=priors["sigma"],
                     nu_prior=priors["nu"])
