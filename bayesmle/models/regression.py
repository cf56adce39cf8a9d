"""Regression builders: linear, logistic, Poisson, negative binomial (NB2), robust, softmax.

Every regression reports ``intercept`` (if any) and ``coef`` on the user's scale; ``prior``
applies to ``coef`` and ``intercept_prior`` to the intercept. Internally the model is fitted in
a well-conditioned linear reparametrisation (see :mod:`bayesmle.models.design`), which is exact
and invisible in the results.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.linalg import solve_triangular

from bayesmle._validation import as_count_array, as_float_array, check_min_rows
from bayesmle.errors import DataError, ImproperPosteriorError, MLENotFoundError, checklist
from bayesmle.models.design import (
    Design,
    GramFactor,
    as_design,
    collinear_columns,
    gaussian_sufficient_stats,
    gram_factor,
    implicit_qr_arrays,
    implicit_standardised_arrays,
    least_squares_without_q,
    qr_arrays,
    rank_check,
    residual_norm,
    standardised_arrays,
)
from bayesmle.models.separation import improper_if_separated, separation_check
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Flat, HalfFlat, Laplace, Prior, check_support

__all__ = [
    "linear_regression",
    "logistic_regression",
    "negative_binomial_regression",
    "poisson_regression",
    "robust_regression",
    "softmax_regression",
]

Family = Literal[
    "gaussian", "bernoulli", "poisson", "negative_binomial", "laplace", "student_t", "cauchy",
    "categorical",
]
_EXTRAS: dict[str, tuple[str, ...]] = {
    "gaussian": ("sigma",),
    "bernoulli": (),
    "poisson": (),
    "negative_binomial": ("alpha",),
    "laplace": ("sigma",),
    "student_t": ("sigma", "nu"),
    "cauchy": ("sigma",),
    "categorical": (),
}
_EQUATIONS = {
    "gaussian": "y_i ~ Normal(intercept + x_i·coef, sigma)",
    "bernoulli": "y_i ~ Bernoulli(logit⁻¹(intercept + x_i·coef))",
    "poisson": "y_i ~ Poisson(exp(intercept + x_i·coef + offset_i))",
    "negative_binomial": "y_i ~ NB2(mu_i = exp(intercept + x_i·coef + offset_i), "
                         "Var = mu_i + alpha·mu_i²)",
    "laplace": "y_i ~ Laplace(intercept + x_i·coef, sigma)",
    "student_t": "y_i ~ StudentT(nu, intercept + x_i·coef, sigma)",
    "cauchy": "y_i ~ Cauchy(intercept + x_i·coef, sigma)",
    "categorical": "y_i ~ Categorical(softmax(0, intercept_k + x_i·coef_k)), k = 2..K",
}


def _parametrisation(priors: Mapping[str, Prior], full_rank: bool) -> str:
    coef_l1 = isinstance(priors["coef"], Laplace)
    return "qr" if (full_rank and not coef_l1) else "standardised"


@dataclass(frozen=True)
class _RegressionModel:
    """Declares a regression model; a frozen value so equal options share compiled code."""

    family: Family
    intercept: bool
    n_out: int  # 0 for a scalar linear predictor, K - 1 for softmax
    full_rank: bool
    known_sigma: bool = False
    #: Well-conditioned design: QR parametrisation without a stored Q (see ``implicit_qr_arrays``).
    implicit: bool = False

    def extras(self) -> tuple[str, ...]:
        """Names of the family's extra (scale/shape) parameters that are estimated."""
        return tuple(e for e in _EXTRAS[self.family] if not (self.known_sigma and e == "sigma"))

    # -- prepared arrays --------------------------------------------------------------------
    def prepare(self, data: Mapping[str, np.ndarray], priors: Mapping[str, Prior],
                factor: GramFactor | None = None) -> dict:
        """The arrays the model declares, for these data and priors.

        ``factor`` is the design's :class:`GramFactor` when it is well conditioned (computed
        once by the builder for its rank check).
        """
        design = Design(data["X"], ())
        arrays = {k: v for k, v in data.items() if k != "X"}
        y = data["y"]
        gaussian = self.family == "gaussian"
        if _parametrisation(priors, self.full_rank) == "qr":
            if self.implicit and factor is not None:
                arrays["X"] = data["X"]
                arrays.update(implicit_qr_arrays(design, self.intercept, factor,
                                                 y if gaussian else None))
            else:
                arrays.update(qr_arrays(design, self.intercept, y if gaussian else None))
                if gaussian:
                    arrays.update(gaussian_sufficient_stats(arrays["Q"], y - arrays["eta_anchor"]))
        elif self.implicit and factor is not None:
            centre = priors.get("intercept") is None or priors["intercept"].is_flat
            arrays.update(implicit_standardised_arrays(design, self.intercept, factor,
                                                       centre=centre, y=y if gaussian else None))
        else:
            # Ill-conditioned or rank-deficient design: sums over rows. (An expansion of the
            # RSS in these coordinates would lose ~cond * eps of the gradient to cancellation
            # when the MAP is far from the least-squares point, as lasso solutions are.)
            centre = priors.get("intercept") is None or priors["intercept"].is_flat
            arrays.update(standardised_arrays(design, self.intercept, centre=centre))
        return arrays

    def gaussian_loglik(self, model: pm.Model):
        """The Gaussian log-likelihood by sufficient statistics (O(p^2) per evaluation).

        Equal, up to rounding, to the log-density of ``y_obs``; the optimisers use it in place
        of the sum over rows (see ``ModelSpec.fast_loglik``). None for other families.
        """
        if self.family != "gaussian" or "ss_gram" not in model.named_vars:
            return None
        sigma = model["sigma_known"] if self.known_sigma else model["sigma"]
        if "theta" in model.named_vars:
            u = model["theta"]
        else:
            parts = [model["coef_std"]]
            if self.intercept:
                a0 = model["intercept_c"] if "intercept_c" in model.named_vars else model[
                    "intercept"]
                parts.insert(0, pt.atleast_1d(a0))
            u = pt.concatenate(parts) - model["ss_w0"]
        rss = model["ss_rss0"] - 2.0 * pt.dot(model["ss_c"], u) + pt.dot(
            u, pt.dot(model["ss_gram"], u))
        n = model["y"].shape[0].astype("float64")
        return -0.5 * n * np.log(2 * np.pi) - n * pt.log(sigma) - rss / (2.0 * sigma**2)

    # -- starting values --------------------------------------------------------------------
    def _eta0(self, arrays) -> np.ndarray | float:
        y, fam = arrays["y"], self.family
        if fam == "bernoulli":
            m = np.clip(y.mean(), 0.02, 0.98)
            return np.log(m / (1 - m))
        if fam in ("poisson", "negative_binomial"):
            return np.log(max(y.mean(), 0.1)) - arrays["offset"].mean()
        if fam == "categorical":
            counts = np.bincount(y.astype(int), minlength=self.n_out + 1) + 0.5
            return np.log(counts[1:] / counts[0])
        return float(np.median(y)) if fam in ("laplace", "student_t", "cauchy") else y.mean()

    def start(self, arrays, priors) -> dict:
        eta0 = self._eta0(arrays)
        y = arrays["y"]
        start: dict[str, Any] = {}
        shape = lambda p: (p,) if self.n_out == 0 else (p, self.n_out)  # noqa: E731
        if "R" in arrays or "coef_map" in arrays:
            p = arrays["col_norm"].shape[0]
            if self.family == "gaussian":
                theta = np.zeros(p)  # the anchor is the refined least-squares solution
                resid = None
            else:
                if "Q" in arrays:
                    q_mean = arrays["Q"].mean(axis=0)
                else:  # column means of Q = ([1, X] / norms) R^-1, without Q
                    x_mean = arrays["X"].mean(axis=0)
                    a_mean = (np.concatenate(([1.0], x_mean)) if self.intercept else x_mean)
                    q_mean = a_mean @ arrays["coef_map"]
                theta = np.multiply.outer(q_mean, eta0) if self.n_out else q_mean * eta0
                resid = y - np.median(y)
            start["theta"] = np.reshape(theta, shape(p))
        else:
            d = arrays["center"].shape[0]
            start["coef_std"] = np.zeros(shape(d))
            if self.intercept:
                name = "intercept_c" if priors["intercept"].is_flat else "intercept"
                start[name] = eta0
            resid = y - (np.median(y) if self.family != "gaussian" else y.mean())
        if "sigma" in self.extras():
            if self.family == "gaussian" and resid is None:
                s = float(np.sqrt(arrays["ss_rss0"] / len(y)))
            elif self.family == "gaussian":
                s = float(np.sqrt(np.mean(resid**2)))
            else:
                s = float(np.median(np.abs(resid - np.median(resid)))) * 1.4826
            start["sigma"] = s if s > 0 else 1.0
        if self.family == "negative_binomial":
            m = max(y.mean(), 1e-3)
            start["alpha"] = max((y.var() - m) / m**2, 0.1)
        if self.family == "student_t":
            start["nu"] = 5.0
        return start

    # -- model ------------------------------------------------------------------------------
    def __call__(self, data: Mapping[str, np.ndarray], priors: Mapping[str, Prior]) -> pm.Model:
        k = self.n_out
        with pm.Model() as model:
            y = pm.Data("y", data["y"])
        if "R" in data or "coef_map" in data:
            eta, intercept, coef = self._qr_predictor(model, data, priors)
        else:
            eta, intercept, coef = self._standardised_predictor(model, data, priors)
        with model:
            if intercept is not None and "intercept" not in model.named_vars:
                pm.Deterministic("intercept", intercept)
            if "coef" not in model.named_vars:
                pm.Deterministic("coef", coef)
        extras = {name: priors[name].rv(model, name) for name in self.extras()}
        with model:
            if self.known_sigma:
                extras["sigma"] = pm.Data("sigma_known", data["sigma_known"])
            if self.family in ("poisson", "negative_binomial"):
                eta = eta + pm.Data("offset", data["offset"])
            self._likelihood(eta, y, extras, k)
            for key in ("ss_rss0", "ss_c", "ss_gram", "ss_w0"):
                if key in data:  # used by gaussian_loglik only, not by the model's logp
                    pm.Data(key, data[key])
        return model

    def _qr_predictor(self, model, data, priors):
        k = self.n_out
        stored_q = "Q" in data
        with model:
            norms = pm.Data("col_norm", data["col_norm"])
            anchor = pm.Data("anchor", data["anchor"])
            p = data["col_norm"].shape[0]
            theta = pm.Flat("theta", shape=(p,) if k == 0 else (p, k))
            if stored_q:  # ill-conditioned: solve with R (an explicit inverse would lose digits)
                beta = solve_triangular(pm.Data("R", data["R"]), theta, lower=False)
                beta = anchor + beta / norms if k == 0 else beta / norms[:, None]
                intercept = beta[0] if self.intercept else None
                coef = beta[1:] if self.intercept else beta
                q = pm.Data("Q", data["Q"])
                eta_anchor = pm.Data("eta_anchor", data["eta_anchor"])
                eta = eta_anchor + q @ theta if k == 0 else q @ theta
            else:
                # beta = anchor + coef_map @ theta, sliced on the data side so that gradients
                # are plain products; eta = [1, X] @ beta from the user's X (no Q, no copy).
                cmap = pm.Data("coef_map", data["coef_map"])
                i = int(self.intercept)
                coef = anchor[i:] + cmap[i:] @ theta if k == 0 else cmap[i:] @ theta
                eta = pm.Data("X", data["X"]) @ coef
                intercept = None
                if self.intercept:
                    intercept = anchor[0] + cmap[0] @ theta if k == 0 else cmap[0] @ theta
                    eta = eta + intercept
        with model:
            if not priors["coef"].is_flat:
                pm.Potential("coef_prior", priors["coef"].logp(model, "coef", coef))
            if self.intercept and not priors["intercept"].is_flat:
                pm.Potential(
                    "intercept_prior", priors["intercept"].logp(model, "intercept", intercept)
                )
        return eta, intercept, coef

    def _standardised_predictor(self, model, data, priors):
        k = self.n_out
        stored = "Xs" in data
        d = data["Xs" if stored else "X"].shape[1]
        with model:
            xs = pm.Data("Xs" if stored else "X", data["Xs" if stored else "X"])
            center = pm.Data("center", data["center"])
            scale = pm.Data("scale", data["scale"])
        shape = (d,) if k == 0 else (d, k)
        z = priors["coef"].rv(model, "coef_std", shape=shape, key="coef",
                              scale=scale if k == 0 else scale[:, None])
        coef = z / (scale if k == 0 else scale[:, None])
        # (X - center) / scale @ z, from the stored standardised copy or from the user's X
        eta = xs @ z if stored else xs @ coef - center @ coef
        intercept = None
        if self.intercept:
            ishape = () if k == 0 else (k,)
            if priors["intercept"].is_flat:
                with model:
                    a0 = pm.Flat("intercept_c", shape=ishape)
                intercept = a0 - center @ coef
            else:
                a0 = priors["intercept"].rv(model, "intercept", shape=ishape)
                intercept = a0
            eta = eta + a0
        return eta, intercept, coef

    def _likelihood(self, eta, y, extras, k) -> None:
        fam = self.family
        if fam == "gaussian":
            pm.Normal("y_obs", mu=eta, sigma=extras["sigma"], observed=y)
        elif fam == "bernoulli":
            pm.Bernoulli("y_obs", logit_p=eta, observed=y)
        elif fam == "poisson":
            pm.Poisson("y_obs", mu=pt.exp(eta), observed=y)
        elif fam == "negative_binomial":
            pm.NegativeBinomial("y_obs", mu=pt.exp(eta), alpha=1.0 / extras["alpha"], observed=y)
        elif fam == "laplace":
            pm.Laplace("y_obs", mu=eta, b=extras["sigma"], observed=y)
        elif fam == "student_t":
            pm.StudentT("y_obs", nu=extras["nu"], mu=eta, sigma=extras["sigma"], observed=y)
        elif fam == "cauchy":
            pm.Cauchy("y_obs", alpha=eta, beta=extras["sigma"], observed=y)
        elif fam == "categorical":
            logits = pt.concatenate([pt.zeros((eta.shape[0], 1)), eta], axis=1)
            pm.Categorical("y_obs", logit_p=logits, observed=y)
        else:  # pragma: no cover - guarded by the builders
            raise ValueError(fam)


# ---------------------------------------------------------------------------------------------
# Shared construction
# ---------------------------------------------------------------------------------------------
def _check_rows(design: Design, y: np.ndarray, what: str = "y") -> None:
    if y.shape[0] != design.n:
        raise DataError(
            f"`X` has {design.n} rows but `{what}` has {y.shape[0]}; they must match "
            "(one row of X per observation)."
        )


def _improper_if_flat(family: str, full_rank: bool, intercept: bool):
    def check(spec: ModelSpec) -> None:
        if full_rank:
            return
        flat = spec.priors["coef"].is_flat or (intercept and spec.priors["intercept"].is_flat)
        if flat:
            raise ImproperPosteriorError(
                checklist(
                    "The posterior is improper: the design is rank deficient and a flat prior "
                    "leaves the collinear directions unconstrained.",
                    ["Give coef (and the intercept) proper priors, e.g. prior=Normal(1.0), "
                     "intercept_prior=Normal(10.0).",
                     "Or drop the collinear columns."],
                )
            )

    return check


def _regression_spec(
    name: str,
    family: Family,
    X: Any,
    y: np.ndarray,
    *,
    prior: Prior | None,
    intercept: bool,
    intercept_prior: Prior | None,
    extra_priors: dict[str, Prior],
    extra_data: dict[str, np.ndarray] | None = None,
    classes: tuple | None = None,
    extra_mle_checks: tuple = (),
    known_sigma: float | None = None,
) -> ModelSpec:
    design = as_design(X)
    _check_rows(design, y)
    n_out = 0 if classes is None else len(classes) - 1
    p = design.d + int(intercept)
    scale = bool(_EXTRAS[family]) and known_sigma is None
    check_min_rows("X", design.n, p + int(scale),
                   f"for {p} coefficient(s){' and a scale' if scale else ''}")
    priors: dict[str, Prior] = {"coef": check_support("prior", prior or Flat(), "real")}
    coef_shape = (design.d,) if n_out == 0 else (design.d, n_out)
    priors["coef"].check_shape("coef", coef_shape)
    if intercept:
        priors["intercept"] = check_support("intercept_prior", intercept_prior or Flat(), "real")
        priors["intercept"].check_shape("intercept", () if n_out == 0 else (n_out,))
    elif intercept_prior is not None:
        raise DataError("`intercept_prior` was given but `intercept=False`; drop one of them.")
    for key, value in extra_priors.items():
        priors[key] = check_support(f"{key}_prior", value or HalfFlat(), "positive")

    factor = gram_factor(design, intercept)
    groups = collinear_columns(design, intercept, factor)
    full_rank = not groups

    def mle_rank(spec: ModelSpec) -> None:
        rank_check(design, intercept, groups)

    if family == "gaussian" and not least_squares_without_q(design, intercept, factor):
        factor = None  # small and not very well conditioned: QR with refinement, exact
    builder = _RegressionModel(family, intercept, n_out, full_rank, known_sigma is not None,
                               implicit=factor is not None)
    dims = {"coef": ("feature",) if n_out == 0 else ("feature", "class")}
    coords: dict[str, tuple] = {"feature": design.names}
    if n_out:
        dims["intercept"] = ("class",)
        coords["class"] = tuple(str(c) for c in classes[1:])
    params = (("intercept",) if intercept else ()) + ("coef",) + builder.extras()
    data = {"X": design.X, "y": y, **(extra_data or {})}
    if known_sigma is not None:
        data["sigma_known"] = np.asarray(known_sigma, dtype=float)
    return ModelSpec(
        name=name,
        declare=builder,
        data=data,
        priors=priors,
        params=params,
        dims=dims,
        coords=coords,
        prepare=functools.partial(builder.prepare, factor=factor),
        start_fn=builder.start,
        options={"family": family, "intercept": intercept, "classes": classes},
        description=_EQUATIONS[family],
        fast_loglik=builder.gaussian_loglik if family == "gaussian" else None,
        mle_checks=(mle_rank, *extra_mle_checks),
        posterior_checks=(_improper_if_flat(family, full_rank, intercept),
                          *((improper_if_separated,) if separation_check in extra_mle_checks
                            else ())),
    )


def _offset(design_rows: int, exposure: Any, offset: Any) -> np.ndarray:
    if exposure is not None and offset is not None:
        raise DataError("Give either `exposure` or `offset`, not both (offset = log(exposure)).")
    if exposure is not None:
        e = as_float_array("exposure", exposure, ndim=1)
        bad = np.flatnonzero(e <= 0)
        if bad.size:
            raise DataError(
                f"`exposure` must be > 0, but row(s) {', '.join(map(str, bad[:10]))} hold "
                f"{e[bad[0]]!r}. Valid values: positive exposure times or population sizes."
            )
        off = np.log(e)
    elif offset is not None:
        off = as_float_array("offset", offset, ndim=1)
    else:
        off = np.zeros(design_rows)
    if off.shape[0] != design_rows:
        raise DataError(f"`X` has {design_rows} rows but the offset/exposure has {off.shape[0]}.")
    return off


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
    """
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
    return _regression_spec(
        "linear_regression", "gaussian", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior,
        extra_priors={} if sigma is not None else {"sigma": sigma_prior},
        extra_mle_checks=() if sigma is not None else (_perfect_fit_check,),
        known_sigma=sigma,
    )


def _perfect_fit_check(spec: ModelSpec) -> None:
    X, y = spec.data["X"], spec.data["y"]
    scale = max(np.abs(y).max(), 1e-300)
    if spec.options["family"] == "gaussian":
        # The fit's own sufficient statistics hold the least-squares RSS: when it is far from
        # zero (accurate to ~cond * eps * |y|), no exact residual computation is needed.
        rss0 = spec.arrays().get("ss_rss0")
        if rss0 is not None and np.sqrt(float(rss0) / len(y)) > 1e-6 * scale:
            return
    design = Design(X, tuple(spec.coords["feature"]))
    rms = residual_norm(design, spec.options["intercept"], y) / np.sqrt(len(y))
    if rms <= 64 * np.finfo(float).eps * scale:
        raise MLENotFoundError(
            checklist(
                "The MLE of sigma does not exist: the predictors fit y exactly (zero residuals), "
                "so the likelihood grows without bound as sigma -> 0.",
                ["Check for a column that duplicates the response.",
                 "Give sigma a proper prior (sigma_prior=HalfNormal(1.0)) and fit 'map'."],
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
    """
    from bayesmle.models.distributions import _labels_01

    y = _labels_01("y", y)
    return _regression_spec(
        "logistic_regression", "bernoulli", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors={},
        extra_mle_checks=(separation_check,),
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
    """
    y = as_count_array("y", y)
    off = _offset(_nrows(X), exposure, offset)
    return _regression_spec(
        "poisson_regression", "poisson", X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors={}, extra_data={"offset": off},
        extra_mle_checks=(_all_zero_counts, separation_check),
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
    """  # noqa: D205
    y = as_count_array("y", y)
    off = _offset(_nrows(X), exposure, offset)
    return _regression_spec(
        "negative_binomial_regression", "negative_binomial", X, y, prior=prior,
        intercept=intercept, intercept_prior=intercept_prior,
        extra_priors={"alpha": alpha_prior}, extra_data={"offset": off},
        extra_mle_checks=(_all_zero_counts, separation_check),
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
    """
    valid = ("laplace", "student_t", "cauchy")
    if noise not in valid:
        raise DataError(f"`noise` must be one of {valid}, got {noise!r}.")
    if nu_prior is not None and noise != "student_t":
        raise DataError(f"`nu_prior` applies only to noise='student_t', not {noise!r}.")
    y = as_float_array("y", y, ndim=1)
    extras: dict[str, Prior | None] = {"sigma": sigma_prior}
    if noise == "student_t":
        extras["nu"] = nu_prior
    spec = _regression_spec(
        f"robust_regression_{noise}", noise, X, y, prior=prior, intercept=intercept,
        intercept_prior=intercept_prior, extra_priors=extras,
        extra_mle_checks=(_perfect_fit_check,),
    )
    if noise == "student_t":
        from bayesmle.models.distributions import _student_t_posterior_proper

        spec = _with_posterior_check(spec, _student_t_posterior_proper)
    return spec


def _with_posterior_check(spec: ModelSpec, check) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, posterior_checks=(*spec.posterior_checks, check))


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
    classes, codes = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        raise DataError(
            f"`y` holds a single class ({classes[0]!r}); softmax regression needs at least two."
        )
    return _regression_spec(
        "softmax_regression", "categorical", X, codes.astype(np.int64), prior=prior,
        intercept=intercept, intercept_prior=intercept_prior, extra_priors={},
        classes=tuple(classes.tolist()), extra_mle_checks=(separation_check,),
    )
