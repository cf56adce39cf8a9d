"""The PyMC model behind every regression builder, and the spec it is wrapped in.

:class:`RegressionModel` is a frozen value (equal options share compiled code) that declares a
regression's model from prepared arrays: internal coordinates chosen from the priors
(:mod:`bayesmle.models.coordinates`), the family's extra parameters (``sigma``, ``alpha``,
``nu``) with their priors, and the likelihood. :func:`regression_spec` validates a design and
priors and returns the :class:`~bayesmle.models.spec.ModelSpec`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.special

from bayesmle._validation import (
    as_count_array,
    as_float_array,
    as_positive_array,
    check_min_rows,
)
from bayesmle.errors import (
    DataError,
    ImproperPosteriorError,
    MLENotFoundError,
    SpecError,
    checklist,
)
from bayesmle.models.coordinates import (
    Coordinates,
    QRCoordinates,
    StandardisedCoordinates,
    choose_coordinates,
    design_data,
)
from bayesmle.models.design import (
    Design,
    GramFactor,
    as_design,
    collinear_columns,
    describe_groups,
    design_rank,
    gram_factor,
    rank_check,
    residual_norm,
)
from bayesmle.models.design_arrays import least_squares_without_q
from bayesmle.models.distributions import (
    improper_at_infinite_scale,
    improper_at_zero_scale,
    no_map_at_zero_scale,
)
from bayesmle.models.observations import Observations, Rows
from bayesmle.models.separation import SEPARATION, improper_if_separated, no_map_if_separated
from bayesmle.models.spec import CanonicalGLM, ExistenceCheck, ModelSpec
from bayesmle.priors import Flat, HalfFlat, Prior, check_support

__all__ = ["LINKS", "Family", "RegressionModel", "RegressionObservations", "check_link",
           "regression_rows", "regression_spec"]

Family = Literal[
    "gaussian", "bernoulli", "binomial", "poisson", "negative_binomial", "gamma", "laplace",
    "student_t", "cauchy", "categorical",
]
#: The link functions each regression family accepts (the first is its default).
LINKS: dict[str, tuple[str, ...]] = {
    "gaussian": ("identity",),
    "bernoulli": ("logit", "probit", "cloglog"),
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log",),
    "negative_binomial": ("log",),
    "gamma": ("log",),
    "student_t": ("identity",),
    "laplace": ("identity",),
    "cauchy": ("identity",),
    "categorical": ("logit",),
}
#: Links refused because the mean's range would become a constraint on the coefficients.
_CONSTRAINED_LINKS = {
    "gamma": {"inverse": "the mean 1/eta must stay positive, a constraint on every row",
              "identity": "the mean eta must stay positive, a constraint on every row"},
    "poisson": {"identity": "the mean eta must stay positive, a constraint on every row",
                "sqrt": "the mean eta^2 is not monotone in eta below 0"},
    "negative_binomial": {"identity": "the mean eta must stay positive, a constraint on every "
                                      "row"},
}


def check_link(family: str, link: Any) -> str:
    """``link`` validated for ``family`` (a :data:`LINKS` entry), or a SpecError.

    Examples
    --------
    >>> check_link("binomial", "probit")
    'probit'
    >>> check_link("gamma", "identity")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `link='identity'` is not available for the gamma family ...
    """
    valid = LINKS[family]
    if isinstance(link, str) and link in valid:
        return link
    why = _CONSTRAINED_LINKS.get(family, {}).get(link) if isinstance(link, str) else None
    table = "; ".join(f"{fam}: {', '.join(links)}" for fam, links in LINKS.items())
    raise SpecError(
        f"`link={link!r}` is not available for the {family} family"
        f"{f' ({why}; refused rather than fitted wrongly)' if why else ''}. "
        f"Valid links for {family}: {', '.join(repr(v) for v in valid)} "
        f"(valid links per family -- {table}).")


_EXTRAS: dict[str, tuple[str, ...]] = {
    "gaussian": ("sigma",),
    "bernoulli": (),
    "binomial": (),
    "gamma": ("shape",),
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
    "binomial": "y_i ~ Binomial(trials_i, g⁻¹(intercept + x_i·coef)), link g = {link}",
    "gamma": "y_i ~ Gamma(mean mu_i = exp(intercept + x_i·coef), Var = mu_i² / shape)",
}
#: Likelihood families with an exact optimiser in the inference layer (least absolute deviations).
_SOLVERS = {"laplace": "least_absolute_deviations"}
_STATS = ("ss_rss0", "ss_c", "ss_gram", "ss_w0")


_SQRT_HALF = np.float64(np.sqrt(0.5))


def log_ndtr(z):
    """``log Phi(z)``, the standard normal log-CDF, accurate to rounding in both tails.

    Below -1 by the scaled complementary error function (``erfcx``), above by
    ``log1p(-erfc / 2)``; each branch sees only its own range of ``z`` (so the branch not
    taken has a finite gradient), and the constants are float64 (PyMC's ``normal_lcdf``
    builds ``sqrt(2.0)`` as a float32 constant and loses about 1e-8 relative).
    """
    lo = pt.minimum(z, -1.0)
    hi = pt.maximum(z, -1.0)
    return pt.switch(pt.lt(z, -1.0),
                     pt.log(0.5 * pt.erfcx(-lo * _SQRT_HALF)) - 0.5 * pt.sqr(lo),
                     pt.log1p(-0.5 * pt.erfc(hi * _SQRT_HALF)))


def _binomial_logit(link: str, eta):
    """The log-odds ``log p - log(1 - p)`` of ``p = g^-1(eta)``, each log computed stably.

    PyMC's ``Binomial(logit_p=l)`` evaluates ``log p = -softplus(-l)`` and
    ``log(1 - p) = -softplus(l)``; with ``l`` from the two logs below (each accurate in its
    own tail) neither tail loses digits: probit ``log Phi(eta)``, ``log Phi(-eta)`` by the
    scaled complementary error function; cloglog ``log(1 - exp(-exp eta))`` by ``log1mexp``
    and ``log(1 - p) = -exp(eta)``.
    """
    if link == "logit":
        return eta
    if link == "probit":
        return log_ndtr(eta) - log_ndtr(-eta)
    if link == "cloglog":
        e = pt.exp(eta)
        return pt.log1mexp(-e) + e
    raise ValueError(link)  # pragma: no cover - guarded by check_link


def declare_likelihood(family: str, eta, y, extras: Mapping[str, Any], *, link: str = "",
                       trials=None) -> None:
    """Declare the observed variable ``y_obs`` of a regression family (inside a model).

    ``link`` is the binomial family's link (default logit); ``trials`` its trial counts.
    """
    fam = family
    if fam == "gaussian":
        pm.Normal("y_obs", mu=eta, sigma=extras["sigma"], observed=y)
    elif fam == "bernoulli":
        pm.Bernoulli("y_obs", logit_p=eta, observed=y)
    elif fam == "binomial":
        # whole-number trials as integers: numpy's binomial sampler refuses a float count
        pm.Binomial("y_obs", n=pt.cast(trials, "int64"),
                    logit_p=_binomial_logit(link or "logit", eta),
                    observed=y)
    elif fam == "gamma":
        shape = extras["shape"]
        pm.Gamma("y_obs", alpha=shape, beta=shape * pt.exp(-eta), observed=y)
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


@dataclass(frozen=True)
class RegressionModel:
    """Declares a regression model; a frozen value so equal options share compiled code."""

    family: Family
    intercept: bool
    n_out: int  # 0 for a scalar linear predictor, K - 1 for softmax
    full_rank: bool
    known_sigma: bool = False
    #: Well-conditioned design: no stored transformed copy (the model reads the user's X).
    well_conditioned: bool = False
    #: The link function when the family has a choice (binomial); "" is the canonical one.
    link: str = ""

    def extras(self) -> tuple[str, ...]:
        """Names of the family's extra (scale/shape) parameters that are estimated."""
        return tuple(e for e in _EXTRAS[self.family] if not (self.known_sigma and e == "sigma"))

    def coordinates(self, priors: Mapping[str, Prior]) -> Coordinates:
        """The internal coordinates for these priors (see :func:`choose_coordinates`)."""
        return choose_coordinates(priors, intercept=self.intercept, n_out=self.n_out,
                                  full_rank=self.full_rank,
                                  well_conditioned=self.well_conditioned)

    # -- prepared arrays --------------------------------------------------------------------
    def prepare(self, data: Mapping[str, np.ndarray], priors: Mapping[str, Prior],
                factor: GramFactor | None = None) -> dict:
        """The arrays the model declares, for these data and priors.

        ``factor`` is the design's :class:`GramFactor` when it is well conditioned (computed
        once by the builder for its rank check).
        """
        arrays = {k: v for k, v in data.items() if k != "X"}
        y = data["y"] if self.family == "gaussian" else None
        arrays.update(self.coordinates(priors).arrays(Design(data["X"], ()), y, factor))
        return arrays

    def gaussian_loglik(self, model: pm.Model, priors: Mapping[str, Prior]):
        """The Gaussian log-likelihood by sufficient statistics (O(p^2) per evaluation).

        Equal, up to rounding, to the log-density of ``y_obs``; the optimisers use it in place
        of the sum over rows (see ``ModelSpec.fast_loglik``). None where the coordinates carry
        no sufficient statistics.
        """
        coords = self.coordinates(priors)
        if self.family != "gaussian" or not coords.has_sufficient_stats():
            return None
        sigma = model["sigma_known"] if self.known_sigma else model["sigma"]
        u = coords.stats_coordinates(model)
        # Written as elementwise products and sums, not pt.dot: the (p x p) matrix-vector
        # product would be a BLAS gemv, which a threaded BLAS splits across its thread pool
        # at every evaluation (milliseconds to wake it, far more on a busy machine).
        gram_u = pt.sum(model["ss_gram"] * u[None, :], axis=1)
        rss = model["ss_rss0"] - 2.0 * pt.sum(model["ss_c"] * u) + pt.sum(u * gram_u)
        n = model["y"].shape[0].astype("float64")
        return -0.5 * n * np.log(2 * np.pi) - n * pt.log(sigma) - rss / (2.0 * sigma**2)

    def canonical_glm(self, arrays: Mapping[str, np.ndarray],
                      priors: Mapping[str, Prior]) -> CanonicalGLM | None:
        """The log-likelihood as a canonical-link GLM in the free coordinates, or None.

        Exactly one for a single-output bernoulli, logit-binomial or Poisson regression whose
        coordinates compute the linear predictor from the user's dense ``X`` (no stored
        transformed copy) and are the builder's own (not a prior's variables): then
        ``(intercept, coef)`` is an affine map of ``x`` -- ``anchor + coef_map @ theta`` (QR
        coordinates) or ``coef = coef_std / scale`` with a free or centred intercept
        (standardised coordinates). See :class:`~bayesmle.models.spec.CanonicalGLM`.
        """
        if (self.family not in ("bernoulli", "binomial", "poisson") or self.n_out
                or self.link not in ("", "logit")):
            return None
        coords = self.coordinates(priors)
        if coords.stored or getattr(coords, "own_coef", False):
            return None
        X = arrays["X"]
        if not (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2):
            return None
        d, k = X.shape[1], int(self.intercept)
        if isinstance(coords, QRCoordinates):
            a = np.array(arrays["coef_map"], dtype=float)
            c = np.array(arrays["anchor"], dtype=float)
            layout: tuple[tuple[str, int], ...] = (("theta", k + d),)
        else:
            assert isinstance(coords, StandardisedCoordinates)
            a = np.zeros((k + d, d + k))
            a[k:, :d] = np.diag(1.0 / np.asarray(arrays["scale"], dtype=float))
            layout = (("coef_std", d),)
            if k:  # intercept = a0 - center @ coef (center = 0 unless centred)
                a[0, :d] = -np.asarray(arrays["center"], dtype=float) * np.diag(a[k:, :d])
                a[0, d] = 1.0
                layout += (("intercept_c" if coords.centred else "intercept", 1),)
            c = np.zeros(k + d)
        return CanonicalGLM(
            family=self.family, X=X, y=arrays["y"],
            offset=arrays["offset"] if self.family == "poisson" else None,
            trials=arrays["trials"] if self.family == "binomial" else None,
            intercept=self.intercept, A=a, c=c, layout=layout)

    # -- starting values --------------------------------------------------------------------
    def _eta0(self, arrays) -> np.ndarray | float:
        y, fam = arrays["y"], self.family
        if fam == "bernoulli":
            m = np.clip(y.mean(), 0.02, 0.98)
            return np.log(m / (1 - m))
        if fam == "binomial":
            m = float(np.clip(y.sum() / arrays["trials"].sum(), 0.02, 0.98))
            return _link_of(self.link or "logit", m)
        if fam == "gamma":
            return float(np.log(y.mean()))
        if fam in ("poisson", "negative_binomial"):
            return np.log(max(y.mean(), 0.1)) - arrays["offset"].mean()
        if fam == "categorical":
            counts = np.bincount(y.astype(int), minlength=self.n_out + 1) + 0.5
            return np.log(counts[1:] / counts[0])
        return float(np.median(y)) if fam in ("laplace", "student_t", "cauchy") else y.mean()

    def start(self, arrays, priors) -> dict:
        """Natural-scale starting values of the free variables (a constant predictor)."""
        coords = self.coordinates(priors)
        gaussian = self.family == "gaussian"
        # at least squares: QR coordinates, or standardised ones with sufficient statistics
        # (which start at their anchor ss_w0, see StandardisedCoordinates.start)
        anchored = gaussian and (isinstance(coords, QRCoordinates) or (
            coords.has_sufficient_stats() and "ss_w0" in arrays))
        start: dict[str, Any] = coords.start(arrays, self._eta0(arrays), gaussian)
        y = arrays["y"]
        if "sigma" in self.extras():
            if anchored:
                s = float(np.sqrt(arrays["ss_rss0"] / len(y)))
            else:
                resid = y - (y.mean() if gaussian else np.median(y))
                s = (float(np.sqrt(np.mean(resid**2))) if gaussian
                     else float(np.median(np.abs(resid - np.median(resid)))) * 1.4826)
            if not s > 64 * np.finfo(float).eps * max(float(np.abs(y).max()), 1e-300):
                # exactly fitted data: the residuals give no scale (and a MAP, when one
                # exists, is far from 0); start from the spread of y instead
                s = float(np.std(y)) or 1.0
            start["sigma"] = s
        if self.family == "negative_binomial":
            m = max(y.mean(), 1e-3)
            start["alpha"] = max((y.var() - m) / m**2, 0.1)
        if self.family == "student_t":
            start["nu"] = 5.0
        if self.family == "gamma":
            # the moments of y: Var = mean^2 / shape (an underestimate of the shape when the
            # covariates explain part of the spread; the optimiser takes it from there)
            m, v = float(y.mean()), float(y.var())
            start["shape"] = float(np.clip(m * m / v, 0.1, 1e6)) if v > 0 else 1.0
        return start

    # -- model ------------------------------------------------------------------------------
    def __call__(self, data: Mapping[str, np.ndarray], priors: Mapping[str, Prior]) -> pm.Model:
        """Declare the model for prepared arrays and priors."""
        with pm.Model() as model:
            y = pm.Data("y", data["y"])
        eta, _, _ = self.coordinates(priors).declare(model, data, priors)
        extras = {name: priors[name].rv(model, name) for name in self.extras()}
        with model:
            if self.known_sigma:
                extras["sigma"] = pm.Data("sigma_known", data["sigma_known"])
            if self.family in ("poisson", "negative_binomial"):
                eta = eta + pm.Data("offset", data["offset"])
            trials = pm.Data("trials", data["trials"]) if self.family == "binomial" else None
            declare_likelihood(self.family, eta, y, extras, link=self.link, trials=trials)
            for key in _STATS:
                if key in data:  # used by gaussian_loglik only, not by the model's logp
                    pm.Data(key, data[key])
        return model


@dataclass(frozen=True)
class RegressionObservations:
    """A regression's likelihood in its reported parameters (``intercept``, ``coef``, extras).

    The observation model of :mod:`bayesmle.models.observations`: the linear predictor is
    computed from the user's ``X`` (new rows need no preparation), every reported parameter is
    a flat free variable on its natural scale.
    """

    family: Family
    intercept: bool
    n_out: int
    known_sigma: bool = False
    link: str = ""

    def extras(self) -> tuple[str, ...]:
        """The family's estimated extra parameters."""
        return tuple(e for e in _EXTRAS[self.family] if not (self.known_sigma and e == "sigma"))

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> pm.Model:
        """Declare the likelihood for ``arrays`` (``X``, ``y``, ``offset``, ``trials``, ...)."""
        d = arrays["X"].shape[1]
        with pm.Model() as model:
            y = pm.Data("y", arrays["y"])
            X = design_data("X", arrays["X"])
            coef = pm.Flat("coef", shape=(d,) if self.n_out == 0 else (d, self.n_out))
            eta = X @ coef
            if self.intercept:
                eta = eta + pm.Flat("intercept", shape=() if self.n_out == 0 else (self.n_out,))
            extras: dict[str, Any] = {name: pm.HalfFlat(name) for name in self.extras()}
            if self.known_sigma:
                extras["sigma"] = pm.Data("sigma_known", arrays["sigma_known"])
            if self.family in ("poisson", "negative_binomial"):
                eta = eta + pm.Data("offset", arrays["offset"])
            trials = (pm.Data("trials", arrays["trials"]) if self.family == "binomial"
                      else None)
            declare_likelihood(self.family, eta, y, extras, link=self.link, trials=trials)
        return model


def _link_of(link: str, m: float) -> float:
    """The link function ``g(m)`` of a probability ``m`` in (0, 1) (starting values)."""
    if link == "probit":
        return float(scipy.special.ndtri(m))
    if link == "cloglog":
        return float(np.log(-np.log1p(-m)))
    return float(np.log(m / (1 - m)))


def offset_array(design_rows: int, exposure: Any, offset: Any) -> np.ndarray:
    """The log-scale offset of a count regression from ``exposure`` or ``offset`` (default 0)."""
    if exposure is not None and offset is not None:
        raise DataError("Give either `exposure` or `offset`, not both (offset = log(exposure)).")
    if exposure is not None:
        e = as_positive_array("exposure", exposure, what="a log offset",
                              valid="positive exposure times or population sizes")
        off = np.log(e)
    elif offset is not None:
        off = as_float_array("offset", offset, ndim=1)
    else:
        off = np.zeros(design_rows)
    if off.shape[0] != design_rows:
        raise DataError(f"`X` has {design_rows} rows but the offset/exposure has {off.shape[0]}.")
    return off


def binomial_counts(successes: Any, trials: Any, *, prefix: str = "") -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Successes and trials of a binomial regression as float row arrays (typed errors).

    ``successes`` are whole numbers in ``0..trials``; ``trials`` positive whole numbers, one
    per row or a scalar shared by every row. ``prefix`` names the arguments in messages
    (``"data"`` for new data: ``data['y']``, ``data['trials']``).
    """
    k_name = f"{prefix}['y']" if prefix else "successes"
    t_name = f"{prefix}['trials']" if prefix else "trials"
    k = as_count_array(k_name, successes, what="success counts")
    t_arr = as_float_array(t_name, trials, ndim=(0, 1)).reshape(-1)
    if t_arr.size == 1 and np.ndim(trials) == 0:
        t_arr = np.repeat(t_arr, k.size)
    t = as_count_array(t_name, t_arr, what="trial counts")
    zero = np.flatnonzero(t == 0)
    if zero.size:
        raise DataError(
            f"`{t_name}` must hold positive whole numbers (at least one trial per row), but "
            f"row(s) {', '.join(map(str, zero[:10]))} hold 0. Drop rows without trials.")
    if t.shape != k.shape:
        raise DataError(f"`{k_name}` has {k.size} rows but `{t_name}` has {t.size}; give one "
                        "trial count per row or a single number for every row.")
    over = np.flatnonzero(k > t)
    if over.size:
        i = over[0]
        raise DataError(
            f"`{k_name}` exceeds `{t_name}` at row(s) {', '.join(map(str, over[:10]))} (e.g. "
            f"row {i}: {k[i]:g} successes out of {t[i]:g} trials). Valid values: whole "
            "numbers from 0 to the row's number of trials.")
    return k, np.ascontiguousarray(t)


def positive_response(name: str, y: Any) -> np.ndarray:
    """A response that must be > 0 (gamma regression), rows at or below 0 named."""
    return as_positive_array(name, y, what="gamma regression",
                             valid="positive numbers (a zero has density 0 or infinity "
                                   "under a gamma)")


def _fitted_regression_arrays(spec: ModelSpec) -> dict:
    return dict(spec.data)


def _new_design(spec: ModelSpec, X: Any) -> tuple[np.ndarray, pd.Index | None]:
    """New predictors as the fitted design's columns, in its order (typed errors)."""
    names = tuple(spec.coords["feature"])
    design = as_design(X, name="data['X']")
    if getattr(X, "columns", None) is not None:
        unknown = [c for c in design.names if c not in names]
        missing = [c for c in names if c not in design.names]
        if unknown or missing:
            raise DataError(
                f"The columns of the new data do not match the fitted design: "
                f"{f'unknown column(s) {unknown}' if unknown else ''}"
                f"{'; ' if unknown and missing else ''}"
                f"{f'missing column(s) {missing}' if missing else ''}. "
                f"The model was fitted on columns {list(names)}.")
        order = [design.names.index(c) for c in names]
        return design.X[:, order], X.index
    if design.d != len(names):
        raise DataError(f"`data['X']` has {design.d} column(s) but the model was fitted on "
                        f"{len(names)} ({list(names)}); give one column per fitted predictor.")
    return design.X, None


def _new_response(spec: ModelSpec, y: Any) -> np.ndarray:
    """A new response validated as the builder validates the fitted one."""
    fam = spec.family
    if fam == "bernoulli":
        from bayesmle.models.distributions import _labels_01

        return _labels_01("data['y']", y)
    if fam in ("poisson", "negative_binomial"):
        return as_count_array("data['y']", y)
    if fam == "gamma":
        return positive_response("data['y']", y)
    if fam == "categorical":
        classes = list(spec.options["classes"])
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise DataError(f"`data['y']` must be a 1-D array of class labels, got shape "
                            f"{labels.shape}.")
        lookup = {c: i for i, c in enumerate(classes)}
        try:
            return np.array([lookup[v.item() if isinstance(v, np.generic) else v]
                             for v in labels], dtype=np.int64)
        except (KeyError, TypeError):
            bad = sorted({repr(v) for v in labels.tolist() if v not in lookup})[:10]
            raise DataError(f"`data['y']` holds label(s) {bad} that the model was not fitted "
                            f"on; fitted classes: {classes}.") from None
    return as_float_array("data['y']", y, ndim=1)


def regression_rows(spec: ModelSpec, data: Any) -> Rows:
    """New regression data: ``{"X": ..., "exposure"/"offset": ..., "y": ...}`` or a DataFrame.

    A DataFrame is the design (the fitted column names, any order); a dict gives ``X`` and,
    for count models, ``exposure`` or ``offset`` (default: none), for binomial models
    ``trials`` (required unless every fitted row had one trial; then 1 by default), and
    optionally ``y`` (needed for log scores only; the successes for binomial models).
    """
    counts = spec.family in ("poisson", "negative_binomial")
    binomial = spec.family == "binomial"
    valid = ["X", *(["exposure", "offset"] if counts else []),
             *(["trials"] if binomial else []), "y"]
    if isinstance(data, pd.DataFrame):
        data = {"X": data}
    if not isinstance(data, Mapping):
        raise DataError(f"`data` must be a DataFrame with the fitted columns "
                        f"{list(spec.coords['feature'])} or a dict with keys from {valid}, "
                        f"got {type(data).__name__}.")
    unknown = sorted(set(map(str, data)) - set(valid))
    if unknown:
        raise DataError(f"`data` holds unknown key(s) {unknown}; valid keys for "
                        f"{spec.name!r}: {valid}.")
    if "X" not in data:
        raise DataError(f"`data` must give the predictors as data['X'] (valid keys: {valid}).")
    X, index = _new_design(spec, data["X"])
    n = X.shape[0]
    arrays: dict[str, np.ndarray] = {"X": X}
    if counts:
        arrays["offset"] = offset_array(n, data.get("exposure"), data.get("offset"))
    observed = data.get("y") is not None
    if binomial:
        binary = bool(np.all(spec.data["trials"] == 1))
        trials = data.get("trials")
        if trials is None and not binary:
            raise DataError(
                "`data['trials']` is required: the model was fitted on rows with more than one "
                "trial, so new rows must say how many trials each has (a number per row, or "
                "one number for every row). It defaults to 1 only when every fitted row had "
                "one trial.")
        if trials is None:
            trials = 1.0
        placeholder = np.zeros(n)
        k, t = binomial_counts(data["y"] if observed else placeholder, trials, prefix="data")
        if t.shape[0] != n:
            raise DataError(f"`data['X']` has {n} rows but `data['trials']` has {t.shape[0]}.")
        if k.shape[0] != n:
            raise DataError(f"`data['X']` has {n} rows but `data['y']` has {k.shape[0]}.")
        arrays["trials"] = t
        arrays["y"] = k
        return Rows(arrays, observed=observed, index=index)
    if observed:
        y = _new_response(spec, data["y"])
        if y.shape[0] != n:
            raise DataError(f"`data['X']` has {n} rows but `data['y']` has {y.shape[0]}.")
    else:  # a placeholder in the support: draws and means do not depend on it
        y = np.repeat(spec.data["y"][:1], n)
    arrays["y"] = y
    if "sigma_known" in spec.data:
        arrays["sigma_known"] = spec.data["sigma_known"]
    return Rows(arrays, observed=observed, index=index)


# ---------------------------------------------------------------------------------------------
# Shared construction
# ---------------------------------------------------------------------------------------------
def _check_rows(design: Design, y: np.ndarray) -> None:
    if y.shape[0] != design.n:
        raise DataError(
            f"`X` has {design.n} rows but `y` has {y.shape[0]}; they must match "
            "(one row of X per observation)."
        )


def fits_exactly(design: Design, intercept: bool, y: np.ndarray) -> bool:
    """Whether ``y`` lies in the span of ``[1, X]`` to rounding (zero residuals; any rank)."""
    scale = max(float(np.abs(y).max()), 1e-300)
    rms = residual_norm(design, intercept, y) / np.sqrt(len(y))
    return bool(rms <= 64 * np.finfo(float).eps * scale)


def exactly_fitted(spec: ModelSpec) -> bool:
    """Whether a regression spec's predictors fit its response exactly (zero residuals).

    A Gaussian model's prepared sufficient statistics hold the least-squares RSS: when it is
    far from zero (accurate to ~cond * eps * |y|), no residual computation is needed.
    """
    y = spec.data["y"]
    scale = max(float(np.abs(y).max()), 1e-300)
    if spec.family == "gaussian":
        rss0 = spec.arrays().get("ss_rss0")
        if rss0 is not None and np.sqrt(float(rss0) / len(y)) > 1e-6 * scale:
            return False
    design = Design(spec.data["X"], tuple(spec.coords["feature"]))
    return fits_exactly(design, spec.options["intercept"], y)


@dataclass(eq=False)
class _Identification:
    """What a design identifies, computed once per spec and only when a check asks.

    The posterior is improper -- and the MAP not unique -- iff some direction ``v != 0`` of
    the coefficients leaves the likelihood unchanged (``[1, X] v = 0``) while every
    coefficient it moves has a flat prior: the null space of the design restricted to the
    flat-prior columns is non-trivial. Proper priors (Normal, Laplace, ...) on any of the
    coordinates a null direction needs make it decay.
    """

    design: Design
    intercept: bool
    groups: list[list[str]]  # collinear groups of the full design
    y: np.ndarray
    _cache: dict = field(default_factory=dict)

    def flat_groups(self, flat_intercept: bool, flat_coef: bool) -> list[list[str]]:
        """Collinear groups of the flat-prior columns (the intercept is a column of ones)."""
        if not flat_coef:
            return []  # the intercept alone: a column of ones, never a null direction
        if flat_intercept == self.intercept:
            return self.groups
        key = ("groups", flat_intercept)
        if key not in self._cache:
            self._cache[key] = collinear_columns(self.design, flat_intercept)
        return self._cache[key]

    def rank(self) -> int:
        """Rank of ``[1, X]`` (judged on the column-equilibrated design)."""
        p = self.design.d + int(self.intercept)
        if not self.groups:
            return p
        if "rank" not in self._cache:
            self._cache["rank"] = design_rank(self.design, self.intercept)
        return self._cache["rank"]

    def exact(self, spec: ModelSpec) -> bool:
        """Whether the data are fitted exactly (zero least-squares residuals)."""
        if "exact" not in self._cache:
            self._cache["exact"] = exactly_fitted(spec)
        return self._cache["exact"]


def _flat_parts(spec: ModelSpec) -> tuple[bool, bool]:
    """Whether the intercept's and the slopes' priors are flat."""
    flat_intercept = bool(spec.options["intercept"] and spec.priors["intercept"].is_flat)
    return flat_intercept, bool(spec.priors["coef"].is_flat)


def _unidentified(spec: ModelSpec, ident: _Identification) -> str | None:
    """Why flat-prior coefficients are not identified (None when they are)."""
    flat_intercept, flat_coef = _flat_parts(spec)
    groups = ident.flat_groups(flat_intercept, flat_coef)
    if not groups:
        return None
    k = int(flat_intercept) + ident.design.d
    names = (["(intercept)"] if flat_intercept else []) + ["coef"]
    rows = ident.design.n
    why = (f"`X` has {rows} row(s) for these {k} flat-prior coefficients, fewer rows than "
           "coefficients" if rows < k else
           f"these columns are collinear: {describe_groups(groups)}")
    return (f"{' and '.join(names)} ha{'ve' if len(names) > 1 else 's'} a flat prior and the "
            f"data do not identify them: {why}, so the likelihood is constant along a "
            "direction that only flat-prior coefficients move")


def _improper_if_unidentified(ident: _Identification, scale: str | None):
    """Posterior check: flat-prior null directions, and the scale's limits (0 and inf)."""

    def check(spec: ModelSpec) -> None:
        why = _unidentified(spec, ident)
        if why is not None:
            raise ImproperPosteriorError(
                checklist(
                    f"The posterior is improper: {why}.",
                    ["Give the coefficients proper priors (e.g. prior=Normal(1.0)"
                     f"{', intercept_prior=Normal(10.0)' if spec.options['intercept'] else ''}"
                     "): a proper prior on any coefficient a collinear direction moves makes "
                     "the posterior proper.",
                     "Or drop one column of each collinear group."],
                )
            )
        if scale is None:
            return
        flat_intercept, flat_coef = _flat_parts(spec)
        n_flat = int(flat_intercept) + (ident.design.d if flat_coef else 0)
        improper_at_infinite_scale(ident.design.n, n_flat, spec.priors[scale], scale=scale)
        if ident.exact(spec):
            improper_at_zero_scale(ident.design.n, ident.rank(), spec.priors[scale],
                                   scale=scale)

    return check


def _map_exists(ident: _Identification, scale: str | None, separated: bool):
    """MAP check: a unique mode needs identified flat directions and a bounded density."""

    def check(spec: ModelSpec) -> None:
        why = _unidentified(spec, ident)
        if why is not None:
            raise MLENotFoundError(
                checklist(
                    f"The MAP is not unique: {why}, and so is the posterior density.",
                    ["Give the coefficients proper priors (e.g. prior=Normal(1.0)): then the "
                     "MAP is unique even with collinear columns or fewer rows than columns.",
                     "Or drop one column of each collinear group."],
                )
            )
        if separated:
            no_map_if_separated(spec)
        if scale is not None and ident.exact(spec):
            flat_intercept, flat_coef = _flat_parts(spec)
            all_flat = flat_coef and (flat_intercept or not spec.options["intercept"])
            no_map_at_zero_scale(ident.design.n, spec.priors[scale], all_flat, scale=scale)

    return check


def regression_spec(
    name: str,
    family: Family,
    X: Any,
    y: np.ndarray,
    *,
    prior: Prior | None,
    intercept: bool,
    intercept_prior: Prior | None,
    extra_priors: dict[str, Prior | None],
    extra_data: dict[str, np.ndarray] | None = None,
    classes: tuple | None = None,
    extra_mle_checks: tuple = (),
    extra_posterior_checks: tuple = (),
    known_sigma: float | None = None,
    link: str = "",
) -> ModelSpec:
    """Validate a regression's design and priors and return its spec (see the builders).

    ``link`` is checked against :data:`LINKS` (default: the family's first, canonical link);
    only the binomial family stores a non-default choice in its model.
    """
    link = check_link(family, link) if link else ""
    if not isinstance(intercept, bool | np.bool_):
        raise DataError(f"`intercept` must be True or False, got {intercept!r}.")
    intercept = bool(intercept)
    design = as_design(X)
    _check_rows(design, y)
    n_out = 0 if classes is None else len(classes) - 1
    p = design.d + int(intercept)
    # Fewer rows than coefficients is no obstacle with proper priors: the MLE (rank check)
    # and flat-prior posteriors (identification checks) say why when it is one.
    check_min_rows("X", design.n, 1, f"for {p} coefficient(s)")
    priors: dict[str, Prior] = {"coef": check_support("prior", prior, "real", default=Flat())}
    coef_shape = (design.d,) if n_out == 0 else (design.d, n_out)
    priors["coef"].check_shape("coef", coef_shape)
    if intercept:
        priors["intercept"] = check_support("intercept_prior", intercept_prior, "real",
                                            default=Flat())
        priors["intercept"].check_shape("intercept", () if n_out == 0 else (n_out,))
    elif intercept_prior is not None:
        raise DataError("`intercept_prior` was given but `intercept=False`; drop one of them.")
    for key, value in extra_priors.items():
        priors[key] = check_support(f"{key}_prior", value, "positive", default=HalfFlat())

    factor = gram_factor(design, intercept)
    groups = collinear_columns(design, intercept, factor)
    full_rank = not groups
    ident = _Identification(design, intercept, groups, y)
    scale_key = "sigma" if "sigma" in _EXTRAS[family] and known_sigma is None else None

    def mle_rank(spec: ModelSpec) -> None:
        rank_check(design, intercept, groups)

    if family == "gaussian" and not least_squares_without_q(design, intercept, factor):
        factor = None  # small and not very well conditioned: QR with refinement, exact
    builder = RegressionModel(family, intercept, n_out, full_rank, known_sigma is not None,
                              well_conditioned=factor is not None,
                              link=link if family == "binomial" else "")
    dims = {"coef": ("feature",) if n_out == 0 else ("feature", "class")}
    coords: dict[str, tuple] = {"feature": design.names}
    if n_out:
        dims["intercept"] = ("class",)
        coords["class"] = tuple(str(c) for c in classes[1:])
    params = (("intercept",) if intercept else ()) + ("coef",) + builder.extras()
    data = {"X": design.X, "y": y, **(extra_data or {})}
    if known_sigma is not None:
        data["sigma_known"] = np.asarray(known_sigma, dtype=float)
    separated = any(c is SEPARATION for c in extra_mle_checks)
    rebuild = functools.partial(
        _rebuild_regression, name=name, family=family, names=design.names,
        intercept=intercept, extra_keys=tuple(extra_priors),
        extra_data_keys=tuple(extra_data or ()),
        classes=classes, extra_mle_checks=tuple(extra_mle_checks),
        extra_posterior_checks=tuple(extra_posterior_checks), known_sigma=known_sigma,
        link=link)
    options: dict[str, Any] = {"intercept": intercept, "classes": classes}
    if family in ("binomial", "gamma"):
        options["link"] = link or LINKS[family][0]
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
        options=options,
        description=_EQUATIONS[family].format(link=options.get("link", "")),
        fast_loglik=builder.gaussian_loglik if family == "gaussian" else None,
        glm=(builder.canonical_glm if family in ("bernoulli", "binomial", "poisson")
             else None),
        mle_checks=(ExistenceCheck(mle_rank), *extra_mle_checks),
        posterior_checks=(_improper_if_unidentified(ident, scale_key),
                          *((improper_if_separated,) if separated else ()),
                          *extra_posterior_checks),
        map_checks=(_map_exists(ident, scale_key, separated),),
        family=family,
        solver=_SOLVERS.get(family, ""),
        observations=Observations(
            declare=RegressionObservations(family, intercept, n_out, known_sigma is not None,
                                           link=builder.link),
            fitted=_fitted_regression_arrays, rows=regression_rows,
            inputs=("X", *(("exposure", "offset") if "offset" in data else ()),
                    *(("trials",) if family == "binomial" else ()), "y"),
            response=("y",)),
        prior_shapes={"coef": coef_shape, **({"intercept": () if n_out == 0 else (n_out,)}
                                             if intercept else {}),
                      **{key: () for key in extra_priors}},
        rebuild=rebuild,
    )


def _rebuild_regression(data: Mapping[str, np.ndarray], priors: Mapping[str, Prior], *,
                        name: str, family: Family, names: tuple[str, ...], intercept: bool,
                        extra_keys: tuple[str, ...], extra_data_keys: tuple[str, ...],
                        classes: tuple | None, extra_mle_checks: tuple,
                        extra_posterior_checks: tuple, known_sigma: float | None,
                        link: str = "") -> ModelSpec:
    """The regression's spec for other data (``ModelSpec.rebuild``): same options, these priors.

    The design keeps its column names (labels); a categorical response keeps its classes and
    codes, even when a subset leaves a class out.
    """
    return regression_spec(
        name, family, pd.DataFrame(np.asarray(data["X"]), columns=list(names)),
        np.asarray(data["y"]), prior=priors["coef"], intercept=intercept,
        intercept_prior=priors["intercept"] if intercept else None,
        extra_priors={key: priors[key] for key in extra_keys},
        extra_data={key: np.asarray(data[key]) for key in extra_data_keys},
        classes=classes, extra_mle_checks=extra_mle_checks,
        extra_posterior_checks=extra_posterior_checks, known_sigma=known_sigma, link=link)
