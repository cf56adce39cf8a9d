"""Regression builders: linear, logistic, binomial, Poisson, NB2, gamma, robust, softmax.

Every regression reports ``intercept`` (if any) and ``coef`` on the user's scale; ``prior``
applies to ``coef`` and ``intercept_prior`` to the intercept. Internally the model is fitted in
well-conditioned internal coordinates chosen from all the priors (see
:mod:`bayesmle.models.coordinates`), an exact linear reparametrisation invisible in the results.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from bayesmle._validation import as_count_array, as_float_array
from bayesmle.errors import DataError, ImproperPosteriorError, MLENotFoundError, checklist
from bayesmle.models.dask_data import dask_regression_spec, is_dask_input
from bayesmle.models.design import Design
from bayesmle.models.distributions import (
    _exact_fit_hints,
    _labels_01,
    _student_t_posterior_proper,
)
from bayesmle.models.regression_model import (
    binomial_counts,
    check_link,
    exactly_fitted,
    fits_exactly,
    offset_array,
    positive_response,
    regression_spec,
)
from bayesmle.models.separation import SEPARATION
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Prior

__all__ = [
    "binomial_regression",
    "gamma_regression",
    "linear_regression",
    "logistic_regression",
    "negative_binomial_regression",
    "poisson_regression",
    "robust_regression",
    "softmax_regression",
]


def _all_zero_counts(spec: ModelSpec) -> None:
    if spec.data["y"].sum() == 0:
        raise MLENotFoundError(
            checklist(
                "The MLE does not exist: every count of `y` is zero, so the log-link intercept "
                "runs to -inf (the rate's MLE is 0, on the boundary).",
                ["Give the intercept a proper prior (intercept_prior=Normal(5.0)) and fit 'map'.",
                 "Check the response column."],
            )
        )


def _nrows(X: Any) -> int:
    return int(np.shape(X)[0]) if np.ndim(X) else 0


# ---------------------------------------------------------------------------------------------
# Public builders
# ---------------------------------------------------------------------------------------------
def linear_regression(
    X: Any, y: Any, *, prior: Prior | None = None, intercept: bool = True,
    intercept_prior: Prior | None = None, sigma_prior: Prior | None = None,
    sigma: float | None = None,
) -> ModelSpec:
    r"""Gaussian linear regression: :math:`y_i \sim N(\alpha + x_i^\top\beta, \sigma)`.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, d)
        Predictors (column names label the coefficients).
    y : array_like, shape (n,)
        Response.
    prior : Prior, default Flat()
        Prior on the slopes ``coef``. ``Normal(tau)`` is ridge regression
        (``alpha = sigma^2 / tau^2`` in scikit-learn's ``Ridge``); ``Laplace(b)`` is the lasso
        (``alpha = sigma^2 / (b n)`` in ``Lasso``), with exact zeros in the MAP.
    intercept : bool, default True
        Include an intercept.
    intercept_prior : Prior, default Flat()
        Prior on the intercept.
    sigma_prior : Prior, default HalfFlat()
        Prior on the noise standard deviation.
    sigma : float, optional
        A known noise standard deviation: ``sigma`` is then fixed, not estimated (the
        conjugate textbook case, and the only MLE when the fit is exact).

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef`` (d,), ``sigma`` (unless known). The MLE of
        ``sigma`` divides the residual sum of squares by n.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.normal(size=30), "dose": rng.normal(size=30)})
    >>> y = 1.0 + 2.0 * X["age"] - 1.0 * X["dose"] + rng.normal(size=30)
    >>> mle = bm.fit(bm.models.linear_regression(X, y), "mle")
    >>> mle.labels  # the DataFrame's columns label the coefficients
    ['intercept', 'coef[age]', 'coef[dose]', 'sigma']
    >>> np.round(mle.params["coef"], 4).tolist()
    [2.2264, -0.7854]

    The MLE of ``sigma`` is the root mean squared residual (divided by n, not n - p):

    >>> resid = y - mle.params["intercept"] - X.to_numpy() @ mle.params["coef"]
    >>> round(float(np.sqrt(np.mean(resid**2))), 4), round(float(mle.params["sigma"]), 4)
    (1.0582, 1.0582)

    A ``Normal(0.1)`` prior on the slopes is ridge regression: the MAP shrinks them towards 0.

    >>> ridge = bm.fit(bm.models.linear_regression(X, y, prior=bm.Normal(0.1)), "map")
    >>> bool(np.all(np.abs(ridge.params["coef"]) < np.abs(mle.params["coef"])))
    True

    A known noise level is not a parameter:

    >>> bm.models.linear_regression(X, y, sigma=1.0).params
    ('intercept', 'coef')
    """
    if is_dask_input(X, y):  # out of core: mle/map by blockwise Newton (dask_data.py)
        return dask_regression_spec("linear_regression", "gaussian", X, y, prior=prior,
                                    intercept=intercept, intercept_prior=intercept_prior,
                                    sigma_prior=sigma_prior, sigma=sigma)
    y = as_float_array("y", y, ndim=1)
    if sigma is not None:
        if sigma_prior is not None:
            raise DataError("Give either a known `sigma` or a `sigma_prior`, not both.")
        try:
            ok = np.ndim(sigma) == 0 and np.isfinite(float(sigma)) and float(sigma) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DataError(f"`sigma` must be a finite positive number, got {sigma!r}.")
    return regression_spec(
        "linear_regression", "gaussian", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior,
        extra_priors={} if sigma is not None else {"sigma": sigma_prior},
        extra_mle_checks=() if sigma is not None else (_perfect_fit_check,),
        known_sigma=sigma,
    )


def _perfect_fit_check(spec: ModelSpec) -> None:
    y = spec.data["y"]
    if exactly_fitted(spec):
        raise MLENotFoundError(
            checklist(
                "The MLE of sigma does not exist: the predictors fit y exactly (zero residuals), "
                "so the likelihood grows without bound as sigma -> 0.",
                ["Check for a column that duplicates the response.",
                 *_exact_fit_hints(len(y), "sigma")],
            )
        )


def logistic_regression(
    X: Any, y: Any, *, prior: Prior | None = None, intercept: bool = True,
    intercept_prior: Prior | None = None,
) -> ModelSpec:
    r"""Logistic regression, :math:`P(y_i = 1) = \mathrm{logit}^{-1}(\alpha + x_i^\top\beta)`.

    ``prior=Normal(tau)`` matches scikit-learn's ``LogisticRegression(C=tau**2)`` (l2) and
    ``prior=Laplace(b)`` its l1 penalty with ``C=b``; the intercept is unpenalised by default.
    Complete and quasi-complete separation are detected before an MLE fit.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, d)
        Predictors.
    y : array_like of {0, 1} or bool, shape (n,)
        Binary response.
    prior, intercept, intercept_prior
        As in :func:`linear_regression`.

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``.

    Examples
    --------
    Perfectly separated classes have no MLE (the slope runs to infinity); a Gaussian prior on
    the slope gives a finite MAP.

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> x = np.array([[-2.0], [-1.5], [-1.0], [-0.5], [0.5], [1.0], [1.5], [2.0]])
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> bm.fit(bm.models.logistic_regression(x, y), "mle")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.MLENotFoundError: The MLE does not exist: the data show ...separation...
    >>> map_ = bm.fit(bm.models.logistic_regression(x, y, prior=bm.Normal(1.0)), "map")
    >>> map_.labels
    ['intercept', 'coef[x0]']
    >>> round(float(map_.params["coef"][0]), 4)
    1.3503
    """
    if is_dask_input(X, y):  # out of core: mle/map by blockwise Newton (dask_data.py)
        return dask_regression_spec("logistic_regression", "bernoulli", X, y, prior=prior,
                                    intercept=intercept, intercept_prior=intercept_prior)
    y = _labels_01("y", y)
    return regression_spec(
        "logistic_regression", "bernoulli", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors={},
        extra_mle_checks=(SEPARATION,),
    )


def binomial_regression(
    X: Any, successes: Any, trials: Any = 1, *, link: str = "logit",
    prior: Prior | None = None, intercept: bool = True, intercept_prior: Prior | None = None,
) -> ModelSpec:
    r"""Binomial regression: :math:`k_i \sim \mathrm{Bin}(n_i, g^{-1}(\alpha + x_i^\top\beta))`.

    ``trials=1`` is binary data (with ``link="logit"`` the model of
    :func:`logistic_regression`). The log-likelihood is evaluated in log space in both tails
    (probit: :math:`\log\Phi(\pm\eta)`; cloglog: :math:`\log(1 - e^{-e^\eta})` and
    :math:`-e^\eta`), so fits far in the tails keep their digits. Separation is detected
    before an MLE fit on the 0/1 pattern of the counts: a row with ``k = 0`` acts like
    ``y = 0``, one with ``k = n`` like ``y = 1``, one in between constrains both ways.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, d)
        Predictors.
    successes : array_like of int, shape (n,)
        Successes per row, whole numbers from 0 to the row's trials.
    trials : int or array_like of int, shape (n,), default 1
        Trials per row (positive whole numbers), or one number for every row.
    link : {"logit", "probit", "cloglog"}, default "logit"
        Link function ``g`` of the success probability.
    prior, intercept, intercept_prior
        As in :func:`linear_regression`.

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``; data ``y`` (the successes) and ``trials``.

    Examples
    --------
    Dose groups of 20 animals each, a probit dose-response curve:

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> dose = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    >>> dead = np.array([1, 4, 9, 15, 19])
    >>> spec = bm.models.binomial_regression(dose, dead, 20, link="probit")
    >>> mle = bm.fit(spec, "mle")
    >>> mle.labels
    ['intercept', 'coef[x0]']
    >>> round(float(mle.params["intercept"]), 4), round(float(mle.params["coef"][0]), 4)
    (-1.6793, 0.8003)

    New rows need their number of trials (here 10 each); the mean is the expected count:

    >>> pred = mle.predict({"X": np.array([[2.0]]), "trials": 10})
    >>> round(float(pred["mean"].iloc[0]), 4)
    4.6866
    """
    link = check_link("binomial", link)
    if is_dask_input(X, successes, trials):  # out of core: mle/map (dask_data.py)
        return dask_regression_spec("binomial_regression", "binomial", X, successes,
                                    prior=prior, intercept=intercept,
                                    intercept_prior=intercept_prior, trials=trials, link=link)
    k, t = binomial_counts(successes, trials)
    return regression_spec(
        "binomial_regression", "binomial", X, k, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors={}, extra_data={"trials": t},
        extra_mle_checks=(SEPARATION,), link=link,
    )


def gamma_regression(
    X: Any, y: Any, *, link: str = "log", prior: Prior | None = None, intercept: bool = True,
    intercept_prior: Prior | None = None, shape_prior: Prior | None = None,
) -> ModelSpec:
    r"""Gamma regression with log link: mean :math:`\mu_i = e^{\alpha + x_i^\top\beta}`,
    variance :math:`\mu_i^2 / \mathrm{shape}`.

    :math:`y_i \sim \mathrm{Gamma}(\mathrm{shape}, \mathrm{rate} = \mathrm{shape}/\mu_i)`.
    The coefficients' MLE is statsmodels' ``GLM(family=Gamma(link=Log()))`` (the score for
    ``coef`` does not involve the shape); ``shape`` is its maximum-likelihood estimate (not
    the Pearson moment estimate ``1 / scale`` of a GLM). The inverse and identity links are
    refused: with them a positive mean is a constraint on the coefficients.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, d)
        Predictors.
    y : array_like, shape (n,)
        Positive response.
    link : {"log"}, default "log"
        Link function of the mean.
    prior, intercept, intercept_prior
        As in :func:`linear_regression`.
    shape_prior : Prior, default HalfFlat()
        Prior on the shape.

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``, ``shape``. When every ``y`` is equal the shape's
        MLE is infinite and an MLE fit raises ``MLENotFoundError``.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(5)
    >>> x = rng.normal(size=(60, 1))
    >>> mu = np.exp(0.5 + 0.3 * x[:, 0])
    >>> y = rng.gamma(4.0, mu / 4.0)
    >>> mle = bm.fit(bm.models.gamma_regression(x, y), "mle")
    >>> mle.labels
    ['intercept', 'coef[x0]', 'shape']
    >>> round(float(mle.params["coef"][0]), 4), round(float(mle.params["shape"]), 4)
    (0.2644, 5.4559)
    """  # noqa: D205
    check_link("gamma", link)
    y = positive_response("y", y)
    return regression_spec(
        "gamma_regression", "gamma", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors={"shape": shape_prior},
        extra_mle_checks=(_gamma_shape_mle,),
        extra_posterior_checks=(_gamma_posterior_proper,), link=link,
    )


def _gamma_exact_fit(spec: ModelSpec) -> str | None:
    """Why the gamma likelihood is unbounded in ``shape`` (None when it is bounded).

    The coefficients' MLE does not depend on the shape, and the shape's profile equation
    ``log(shape) - digamma(shape) = mean(y/mu - log(y/mu) - 1)`` has a finite root iff the
    right side is positive, i.e. iff some ``y_i != mu_i``: the shape's MLE is infinite exactly
    when ``log y`` lies in the span of ``[1, X]`` (every mean fits its row).
    """
    y = spec.data["y"]
    if np.ptp(y) == 0:
        return f"every value of `y` equals {y[0]!r}"
    design = Design(spec.data["X"], tuple(spec.coords["feature"]))
    if fits_exactly(design, spec.options["intercept"], np.log(y)):
        return "the predictors fit log(y) exactly (every fitted mean equals its y)"
    return None


def _gamma_shape_mle(spec: ModelSpec) -> None:
    why = _gamma_exact_fit(spec)
    if why is not None:
        raise MLENotFoundError(
            checklist(
                f"The MLE of shape does not exist: {why}, so the likelihood grows without "
                "bound as shape -> inf (a gamma with no spread around its means).",
                ["Check the response column (and for a column that duplicates it).",
                 "Give the shape a proper prior (shape_prior=Gamma(2.0, 0.1)) and fit 'map'."],
            )
        )


def _gamma_posterior_proper(spec: ModelSpec) -> None:
    if not spec.priors["shape"].is_flat:
        return
    why = _gamma_exact_fit(spec)
    if why is not None:
        raise ImproperPosteriorError(
            checklist(
                f"The posterior is improper: {why}, so the likelihood grows without bound as "
                "shape -> inf and the flat prior on `shape` does not decay there.",
                ["Give the shape a proper prior with a light tail (shape_prior=Gamma(2.0, "
                 "0.1))."],
            )
        )


def poisson_regression(
    X: Any, y: Any, *, prior: Prior | None = None, intercept: bool = True,
    intercept_prior: Prior | None = None, exposure: Any = None, offset: Any = None,
) -> ModelSpec:
    r"""Poisson regression with log link and optional offset (log exposure).

    Parameters
    ----------
    X, y
        Design and non-negative whole-number counts.
    prior, intercept, intercept_prior
        As in :func:`linear_regression`.
    exposure : array_like, optional
        Positive exposure per row; enters as ``offset = log(exposure)``.
    offset : array_like, optional
        Known offset on the log scale.

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``.

    Examples
    --------
    Counts observed over different exposure times; the coefficients are on the log-rate scale.

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(40, 1))
    >>> exposure = rng.uniform(1.0, 5.0, size=40)
    >>> y = rng.poisson(exposure * np.exp(0.5 + 0.8 * x[:, 0]))
    >>> mle = bm.fit(bm.models.poisson_regression(x, y, exposure=exposure), "mle")
    >>> round(float(mle.params["intercept"]), 4), round(float(mle.params["coef"][0]), 4)
    (0.5088, 0.7905)
    """
    if is_dask_input(X, y):  # out of core: mle/map by blockwise Newton (dask_data.py)
        return dask_regression_spec("poisson_regression", "poisson", X, y, prior=prior,
                                    intercept=intercept, intercept_prior=intercept_prior,
                                    exposure=exposure, offset=offset)
    y = as_count_array("y", y)
    off = offset_array(_nrows(X), exposure, offset)
    return regression_spec(
        "poisson_regression", "poisson", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors={}, extra_data={"offset": off},
        extra_mle_checks=(_all_zero_counts, SEPARATION),
    )


def negative_binomial_regression(
    X: Any, y: Any, *, prior: Prior | None = None, intercept: bool = True,
    intercept_prior: Prior | None = None, alpha_prior: Prior | None = None,
    exposure: Any = None, offset: Any = None,
) -> ModelSpec:
    r"""Negative binomial (NB2) regression: mean :math:`\mu_i = e^{\alpha + x_i^\top\beta + o_i}`,
    variance :math:`\mu_i + \alpha\mu_i^2`.

    ``alpha`` is the NB2 dispersion as in statsmodels' ``NegativeBinomial`` and R's ``glm.nb``
    (``theta = 1 / alpha``). When the counts are not overdispersed the MLE of ``alpha`` is 0, on
    the boundary; the fit then reports that the MLE does not exist (use Poisson).

    Parameters
    ----------
    X, y, prior, intercept, intercept_prior, exposure, offset
        As in :func:`poisson_regression`.
    alpha_prior : Prior, default HalfFlat()
        Prior on the dispersion.

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``, ``alpha``.

    Examples
    --------
    Counts simulated with ``alpha = 0.5``: the NB2 model finds the extra variance, and its
    log-likelihood beats the Poisson's by far more than its one extra parameter costs.

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=(50, 1))
    >>> mu = np.exp(1.0 + 0.5 * x[:, 0])
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    >>> nb = bm.fit(bm.models.negative_binomial_regression(x, y), "mle")
    >>> nb.labels, round(float(nb.params["alpha"]), 4)
    (['intercept', 'coef[x0]', 'alpha'], 0.5013)
    >>> pois = bm.fit(bm.models.poisson_regression(x, y), "mle")
    >>> bool(nb.aic < pois.aic)
    True
    """  # noqa: D205
    y = as_count_array("y", y)
    off = offset_array(_nrows(X), exposure, offset)
    return regression_spec(
        "negative_binomial_regression", "negative_binomial", X, y, prior=prior,
        intercept=intercept, intercept_prior=intercept_prior,
        extra_priors={"alpha": alpha_prior}, extra_data={"offset": off},
        extra_mle_checks=(_all_zero_counts, SEPARATION),
    )


def robust_regression(
    X: Any, y: Any, *, noise: Literal["laplace", "student_t", "cauchy"] = "student_t",
    prior: Prior | None = None, intercept: bool = True, intercept_prior: Prior | None = None,
    sigma_prior: Prior | None = None, nu_prior: Prior | None = None,
) -> ModelSpec:
    r"""Linear regression with heavy-tailed noise.

    Parameters
    ----------
    X, y, prior, intercept, intercept_prior
        As in :func:`linear_regression`.
    noise : {"laplace", "student_t", "cauchy"}
        Noise distribution. ``"laplace"`` is least-absolute-deviations regression (``sigma``
        is the Laplace scale, the MLE is the mean absolute residual).
    sigma_prior : Prior, default HalfFlat()
        Prior on the noise scale.
    nu_prior : Prior, default HalfFlat()
        Prior on the Student-t degrees of freedom (``noise="student_t"`` only).

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``, ``sigma`` (and ``nu``).

    Examples
    --------
    One gross outlier: least absolute deviations (``noise="laplace"``) keeps the slope near
    its true value 2, least squares does not.

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(3)
    >>> x = np.linspace(0.0, 1.0, 20)[:, None]
    >>> y = 1.0 + 2.0 * x[:, 0] + 0.1 * rng.normal(size=20)
    >>> y[-1] += 20.0
    >>> lad = bm.fit(bm.models.robust_regression(x, y, noise="laplace"), "mle")
    >>> ols = bm.fit(bm.models.linear_regression(x, y), "mle")
    >>> round(float(lad.params["coef"][0]), 2), round(float(ols.params["coef"][0]), 2)
    (2.04, 7.46)
    >>> lad.optimum.solver  # an exact linear programme, not Newton
    'least_absolute_deviations'
    """
    valid = ("laplace", "student_t", "cauchy")
    if not isinstance(noise, str) or noise not in valid:
        raise DataError(f"`noise` must be one of {valid}, got {noise!r}.")
    if nu_prior is not None and noise != "student_t":
        raise DataError(f"`nu_prior` applies only to noise='student_t', not {noise!r}.")
    y = as_float_array("y", y, ndim=1)
    extras: dict[str, Prior | None] = {"sigma": sigma_prior}
    if noise == "student_t":
        extras["nu"] = nu_prior
    return regression_spec(
        f"robust_regression_{noise}", noise, X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors=extras,
        extra_mle_checks=(_perfect_fit_check,),
        extra_posterior_checks=(_student_t_posterior_proper,) if noise == "student_t" else (),
    )


def softmax_regression(
    X: Any, y: Any, *, prior: Prior | None = None, intercept: bool = True,
    intercept_prior: Prior | None = None,
) -> ModelSpec:
    r"""Multinomial logistic (softmax) regression; the first class is the reference.

    The reference class (the first in sorted order of the labels) has its intercept and
    coefficients fixed at zero, as in statsmodels' ``MNLogit``, so the MLE is identified.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, d)
        Predictors.
    y : array_like, shape (n,)
        Class labels (numbers or strings), at least two distinct classes.
    prior, intercept, intercept_prior
        As in :func:`linear_regression`; ``prior`` applies to every non-reference class.

    Returns
    -------
    ModelSpec
        Parameters ``intercept`` (K-1,) and ``coef`` (d, K-1).

    Examples
    --------
    Three string classes; the first in sorted order (``"a"``) is the reference.

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(4)
    >>> x = rng.normal(size=(45, 1))
    >>> codes = np.clip(np.round(x[:, 0] + rng.normal(size=45)).astype(int) + 1, 0, 2)
    >>> y = np.array(["a", "b", "c"])[codes]
    >>> mle = bm.fit(bm.models.softmax_regression(x, y), "mle")
    >>> mle.labels
    ['intercept[b]', 'intercept[c]', 'coef[x0,b]', 'coef[x0,c]']
    >>> mle.params["intercept"].shape, mle.params["coef"].shape  # (K-1,) and (d, K-1)
    ((2,), (1, 2))
    >>> np.round(mle.params["coef"][0], 4).tolist()
    [1.1386, 1.9571]
    """
    try:
        labels = np.asarray(y)
    except ValueError:
        raise DataError("`y` must be a 1-D array of class labels; got a ragged sequence."
                        ) from None
    if labels.ndim != 1 or labels.size == 0:
        raise DataError(f"`y` must be a non-empty 1-D array of labels, got shape {labels.shape}.")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError("`y` contains NaN or infinite labels; drop those rows.")
    if labels.dtype == object and any(v is None for v in labels):
        raise DataError("`y` contains missing labels (None); drop those rows.")
    if labels.dtype.kind == "c":
        raise DataError("`y` holds complex numbers; class labels must be numbers or strings.")
    if labels.dtype == object:
        kinds = {type(v).__name__ for v in labels if not isinstance(v, str)}
        if kinds and len(kinds) < labels.size and any(isinstance(v, str) for v in labels):
            raise DataError(
                f"`y` mixes strings with labels of type(s) {sorted(kinds)}; class labels must "
                f"be all numbers or all strings (e.g. `y.astype(str)`).")
    try:
        classes, codes = np.unique(labels, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in labels})
        raise DataError(f"`y` holds labels of types {kinds} that cannot be ordered; class "
                        f"labels must be all numbers or all strings.") from None
    if classes.size < 2:
        raise DataError(
            f"`y` holds a single class ({classes[0]!r}); softmax regression needs at least two."
        )
    return regression_spec(
        "softmax_regression", "categorical", X, codes.astype(np.int64), prior=prior,
        intercept=intercept, intercept_prior=intercept_prior, extra_priors={},
        classes=tuple(classes.tolist()), extra_mle_checks=(SEPARATION,),
    )
