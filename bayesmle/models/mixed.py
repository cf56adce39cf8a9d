r"""Generalised linear mixed models from a formula: ``glm("y ~ x + (1 + x | g)", data)``.

:func:`mixed_glm` (reached through :func:`bayesmle.models.glm`) turns an lme4-style formula
(:mod:`bayesmle.models.random_terms`) into a :class:`~bayesmle.models.spec.ModelSpec`:

.. math::

    y_i \sim F\big(g^{-1}(\eta_i)\big), \qquad
    \eta_i = x_i^\top\beta + \sum_{\text{blocks } B} v_{B,i}^\top b_{B, c_B(i)}
             \;(+\ \text{offset}_i), \qquad b_{B,l} \sim N(0, \Sigma_B)

where block ``B`` (one random-effects term) has ``k`` columns ``v`` (its term's design), one
vector of effects per level ``l`` of its grouping factor (``c_B(i)`` is the level of row ``i``)
and covariance :math:`\Sigma_B = \mathrm{diag}(sd_B) R_B\, \mathrm{diag}(sd_B)`. The reported
parameters are ``intercept``, ``coef``, ``sd`` (``sd[g]``, ``sd[g:x]``), ``corr``
(``corr[g]``, ``corr[g:x,z]``) and ``sigma`` (Gaussian).

The spec's PyMC model (its ``declare``, for NUTS and the prior predictive) is the full joint
model in the *non-centred* parametrisation: per block ``z ~ N(0, 1)`` of shape
``(levels, k)``, ``b = sd * z`` for one column and ``b = z (diag(sd) L)'`` with ``L`` the
Cholesky factor of ``R`` (PyMC's ``LKJCorr``) for more, so that NUTS does not meet the
funnel of the centred form when a group scale is small. Point estimates (ML, REML, marginal
MAP) integrate the random effects out: the spec asks for them with ``solver = "mixed"``, and
:func:`mixed_design` gives the numerical code the :class:`~bayesmle.models.mixed_design.
MixedDesign` record.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.special

from bayesmle._validation import as_count_array, as_float_array
from bayesmle.errors import (
    DataError,
    ImproperPosteriorError,
    MLENotFoundError,
    PriorError,
    SpecError,
    checklist,
)
from bayesmle.formula_check import describe_columns, model_matrix
from bayesmle.models.design import as_design, collinear_columns, rank_check
from bayesmle.models.glm import column_arg, drop_missing, fold_prior_overrides
from bayesmle.models.mixed_design import INTERCEPT, MixedDesign, RandomBlock
from bayesmle.models.random_terms import (
    parse_mixed_formula,
    random_blocks,
    random_variables,
)
from bayesmle.models.regression_model import (
    LINKS,
    binomial_counts,
    declare_likelihood,
    offset_array,
)
from bayesmle.models.spec import ExistenceCheck, ModelSpec
from bayesmle.priors import LKJ, Flat, HalfFlat, Prior, check_support

__all__ = ["FAMILIES", "SOLVER", "BlockMeta", "MixedMeta", "MixedModel", "mixed_design",
           "mixed_glm"]

#: The families a model with random effects may have (links as ``regression_model.LINKS``).
FAMILIES: tuple[str, ...] = ("gaussian", "bernoulli", "binomial", "poisson")
#: ``ModelSpec.solver`` of a mixed model: point fits integrate the random effects out.
SOLVER = "mixed"
_NA_ACTIONS = ("raise", "drop")
_COUNTS = ("poisson",)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BlockMeta:
    """One random-effects block of a spec: its labels and the data keys of its arrays.

    Attributes
    ----------
    group : str
        Grouping factor label (``"g"``, ``"a:b"``).
    columns : tuple of str
        The block's columns (``"Intercept"`` first when present).
    levels : tuple of str
        The grouping factor's levels (those of the data the spec was built on; a subset of
        rows keeps them all).
    codes_key, values_key : str
        ``spec.data`` keys of the level codes ``(n,)`` and the design values ``(n, k)``.
    """

    group: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    codes_key: str
    values_key: str

    def block(self, codes: np.ndarray, values: np.ndarray) -> RandomBlock:
        """The :class:`RandomBlock` with these arrays."""
        return RandomBlock(self.group, self.columns, self.levels, codes, values)

    def labels(self) -> RandomBlock:
        """A block without rows: its ``sd_labels()`` and ``corr_labels()``."""
        return self.block(np.zeros(0, dtype=np.int64), np.zeros((0, len(self.columns))))


@dataclasses.dataclass(frozen=True)
class MixedMeta:
    """What a mixed model's spec holds beyond its arrays (``spec.options["mixed"]``).

    Attributes
    ----------
    family, link : str
        Likelihood family and link.
    response : str
        The response column (the formula's left side).
    intercept : bool
        Whether the fixed part has an intercept (the parameter ``intercept``).
    coef_names : tuple of str
        The other fixed-effects columns (the parameter ``coef``), formulaic's names.
    blocks : tuple of BlockMeta
    x_key : str or None
        ``spec.data`` key of the fixed-effects design without the intercept (None: no
        ``coef``).
    y_key : str
        Key of the response (successes for the binomial family).
    trials_key, offset_key : str or None
        Keys of the binomial trials and of the offset (None: absent).
    """

    family: str
    link: str
    response: str
    intercept: bool
    coef_names: tuple[str, ...]
    blocks: tuple[BlockMeta, ...]
    x_key: str | None = "X"
    y_key: str = "y"
    trials_key: str | None = None
    offset_key: str | None = None

    @property
    def fixed_names(self) -> tuple[str, ...]:
        """Names of the fixed effects, ``"Intercept"`` first when there is one."""
        return ((INTERCEPT,) if self.intercept else ()) + self.coef_names

    def sd_labels(self) -> list[str]:
        """``sd[g]``, ``sd[g:x]``... block after block."""
        return [lab for b in self.blocks for lab in b.labels().sd_labels()]

    def corr_labels(self) -> list[str]:
        """``corr[g]``, ``corr[g:x,z]``... of the blocks with two or more columns."""
        return [lab for b in self.blocks if len(b.columns) >= 2
                for lab in b.labels().corr_labels()]


def _inside(label: str, name: str) -> str:
    """``"g:x"`` from ``"sd[g:x]"``."""
    return label[len(name) + 1:-1]


# ---------------------------------------------------------------------------------------------
# The PyMC model
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MixedModel:
    """Declares a mixed model's joint PyMC model (non-centred); a frozen value so that specs
    of one structure share compiled code.

    ``blocks`` holds ``(levels, k)`` per block; data keys are those of :class:`MixedMeta`.
    """  # noqa: D205

    family: str
    link: str
    intercept: bool
    n_coef: int
    blocks: tuple[tuple[int, int], ...]
    offset: bool

    def __call__(self, data: Mapping[str, np.ndarray], priors: Mapping[str, Prior]
                 ) -> pm.Model:
        """The model for these arrays and priors (see the module docstring)."""
        with pm.Model() as model:
            y = pm.Data("y", data["y"])
            X = pm.Data("X", data["X"]) if self.n_coef else None
            codes = [pm.Data(f"re_codes_{i}", data[f"re_codes_{i}"])
                     for i in range(len(self.blocks))]
            values = [pm.Data(f"re_values_{i}", data[f"re_values_{i}"])
                      for i in range(len(self.blocks))]
            offset = pm.Data("offset", data["offset"]) if self.offset else None
            trials = pm.Data("trials", data["trials"]) if self.family == "binomial" else None
        eta: Any = 0.0
        if self.intercept:
            eta = eta + priors["intercept"].rv(model, "intercept")
        if self.n_coef:
            eta = eta + pt.dot(X, priors["coef"].rv(model, "coef", shape=(self.n_coef,)))
        m = sum(k for _, k in self.blocks)
        sd = priors["sd"].rv(model, "sd", shape=(m,))
        chols = {i: priors["corr"].rv(model, f"corr_chol_{i}", shape=(k, k), key="corr")
                 for i, (_, k) in enumerate(self.blocks) if k >= 2}
        extras = {"sigma": priors["sigma"].rv(model, "sigma")} if self.family == "gaussian" \
            else {}
        with model:
            effects, corr, at = [], [], 0
            for i, (levels, k) in enumerate(self.blocks):
                z = pm.Normal(f"re_z_{i}", 0.0, 1.0, shape=(levels, k))
                scale = sd[at:at + k]
                at += k
                if k == 1:
                    b = z * scale
                else:
                    L = chols[i]
                    b = pt.dot(z, L.T) * scale[None, :]
                    iu = np.triu_indices(k, 1)
                    corr.append(pt.dot(L, L.T)[iu])
                effects.append(b.reshape((-1,)))
                eta = eta + pt.sum(values[i] * b[codes[i]], axis=1)
            if corr:
                pm.Deterministic("corr", pt.concatenate(corr))
            pm.Deterministic("re", pt.concatenate(effects))
            if offset is not None:
                eta = eta + offset
            if self.family == "bernoulli" and self.link != "logit":  # one trial per row
                declare_likelihood("binomial", eta, y, extras, link=self.link,
                                   trials=pt.ones_like(y))
            else:
                declare_likelihood(self.family, eta, y, extras, link=self.link,
                                   trials=trials)
        return model

    def start(self, arrays: Mapping[str, np.ndarray], priors: Mapping[str, Prior]) -> dict:
        """Natural-scale starting values: a constant predictor at the mean response."""
        y = np.asarray(arrays["y"], dtype=float)
        out: dict[str, Any] = {}
        if self.family == "gaussian":
            spread = float(np.std(y)) or 1.0
            out["sigma"] = spread
            scale = 0.5 * spread
            eta0 = float(np.mean(y))
        elif self.family in ("bernoulli", "binomial"):
            trials = arrays["trials"] if self.family == "binomial" else np.ones_like(y)
            eta0 = _link(self.link, float(np.clip(y.sum() / trials.sum(), 0.02, 0.98)))
            scale = 0.5
        else:
            offset = float(np.mean(arrays["offset"])) if self.offset else 0.0
            eta0 = float(np.log(max(float(np.mean(y)), 0.1))) - offset
            scale = 0.5
        if self.intercept:
            out["intercept"] = eta0
        out["sd"] = np.full(sum(k for _, k in self.blocks), scale)
        return out


def _link(link: str, m: float) -> float:
    """``g(m)`` of a probability (starting values)."""
    if link == "probit":
        return float(scipy.special.ndtri(m))
    if link == "cloglog":
        return float(np.log(-np.log1p(-m)))
    return float(np.log(m / (1.0 - m)))


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def _extreme_response(spec: ModelSpec) -> tuple[str, str] | None:
    """Why and where the intercept runs to infinity (all 0 / all successes), or None."""
    meta: MixedMeta = spec.options["mixed"]
    y = spec.data[meta.y_key]
    if meta.family in ("bernoulli", "binomial"):
        trials = spec.data[meta.trials_key] if meta.trials_key else np.ones_like(y)
        if np.all(y == 0):
            return "every response is 0 (no successes)", "-inf"
        if np.all(y == trials):
            return "every trial is a success", "+inf"
    if meta.family == "poisson" and np.all(y == 0):
        return "every count is 0", "-inf"
    return None


def _no_mle_extreme(spec: ModelSpec) -> None:
    why = _extreme_response(spec)
    if why is not None and spec.options["mixed"].intercept:
        raise MLENotFoundError(checklist(
            f"The MLE does not exist: {why[0]}, so the likelihood grows towards its supremum "
            f"as the intercept runs to {why[1]} (the fitted probability or rate reaches the "
            f"boundary).",
            ["Give the intercept a proper prior (priors={'intercept': bm.Normal(5.0)}) and fit "
             "'map' or 'nuts'.", "Check the response column."]))


def _no_map_extreme(spec: ModelSpec) -> None:
    if spec.priors.get("intercept") is not None and spec.priors["intercept"].is_flat:
        why = _extreme_response(spec)
        if why is not None:
            raise MLENotFoundError(checklist(
                f"No MAP exists: {why[0]}, and the intercept's flat prior lets the posterior "
                f"density grow as the intercept runs to {why[1]}.",
                ["Give the intercept a proper prior, e.g. priors={'intercept': "
                 "bm.Normal(5.0)}."]))


def _improper_extreme(spec: ModelSpec) -> None:
    if spec.priors.get("intercept") is not None and spec.priors["intercept"].is_flat:
        why = _extreme_response(spec)
        if why is not None:
            raise ImproperPosteriorError(checklist(
                f"The posterior is improper: {why[0]}, so the likelihood tends to its "
                f"supremum as the intercept runs to {why[1]}, where its flat prior does not "
                f"decay.",
                ["Give the intercept a proper prior, e.g. priors={'intercept': "
                 "bm.Normal(5.0)}."]))


def _improper_flat_sd(spec: ModelSpec) -> None:
    """Laplace and NUTS need a proper prior on the random effects' standard deviations."""
    prior = spec.priors["sd"]
    if not prior.is_flat:
        return
    meta: MixedMeta = spec.options["mixed"]
    labels = meta.sd_labels()
    raise ImproperPosteriorError(checklist(
        f"`sd` ({', '.join(labels[:6])}{' ...' if len(labels) > 6 else ''}) has the flat "
        f"prior {prior!r}: the posterior is then improper for grouping factors with few "
        f"levels (with J levels the marginal likelihood of a random intercept decays only "
        f"like sd^-(J - 1) as sd -> inf, integrable against a flat prior only from J = 3, "
        f"and random slopes and non-Gaussian families do worse), so Laplace and NUTS refuse "
        f"it rather than judge each model case by case. ML and the marginal MAP (random "
        f"effects integrated out) accept it.",
        ["Give the standard deviations a proper prior on the scale of the effects, e.g. "
         "priors={'sd': bm.HalfNormal(1.0)} (or bm.Exponential(1.0); bm.Gamma(2.0, 1.0) also "
         "keeps the mode off sd = 0); per component with priors={'sd[<label>]': ...}."]))


def _rank_check(arrays: Mapping[str, np.ndarray], meta: MixedMeta):
    """MLE check: the fixed-effects design must have full column rank."""
    if not meta.coef_names:
        return None
    design = as_design(pd.DataFrame(np.asarray(arrays[meta.x_key]),
                                    columns=list(meta.coef_names)))
    groups = collinear_columns(design, meta.intercept)
    if not groups:
        return None

    def check(spec: ModelSpec) -> None:
        rank_check(design, meta.intercept, groups)

    return check


# ---------------------------------------------------------------------------------------------
# Priors by name
# ---------------------------------------------------------------------------------------------
def _priors(priors: Any, meta: MixedMeta) -> dict[str, Prior]:
    coef_names = list(meta.coef_names)
    sd_names = [_inside(lab, "sd") for lab in meta.sd_labels()]
    has_corr = bool(meta.corr_labels())
    valid = [*(["intercept"] if meta.intercept else []),
             *(["coef", *(f"coef[{n}]" for n in coef_names)] if coef_names else []),
             "sd", *(f"sd[{n}]" for n in sd_names), *(["corr"] if has_corr else []),
             *(["sigma"] if meta.family == "gaussian" else [])]
    priors = {} if priors is None else priors
    if not isinstance(priors, Mapping):
        raise PriorError(f"`priors` must be a dict of priors by name, got "
                         f"{type(priors).__name__}. Valid names for this formula: {valid}.")
    unknown = [k for k in priors if k not in valid]
    if unknown:
        raise PriorError(f"`priors` holds unknown name(s) {[str(k)[:60] for k in unknown]}. "
                         f"Valid names for this formula and family {meta.family!r}: {valid}.")
    for key, value in priors.items():
        if not isinstance(value, Prior):
            raise PriorError(f"`priors[{key!r}]` must be a prior such as bm.HalfNormal(1.0), "
                             f"got {type(value).__name__}.")
    out: dict[str, Prior] = {}
    if meta.intercept:
        out["intercept"] = check_support("intercept", priors.get("intercept"), "real",
                                         default=Flat())
        out["intercept"].check_shape("intercept", ())
    if coef_names:
        coef = fold_prior_overrides(priors, "coef", coef_names)
        out["coef"] = check_support("coef", coef, "real", default=Flat())
        out["coef"].check_shape("coef", (len(coef_names),))
    sd = fold_prior_overrides(priors, "sd", sd_names, what="standard deviations",
                              one="standard deviation", default="HalfFlat()")
    out["sd"] = check_support("sd", sd, "positive", default=HalfFlat())
    out["sd"].check_shape("sd", (len(sd_names),))
    if has_corr:
        out["corr"] = check_support("corr", priors.get("corr"), "correlation",
                                    default=LKJ(1.0))
    if meta.family == "gaussian":
        out["sigma"] = check_support("sigma", priors.get("sigma"), "positive",
                                     default=HalfFlat())
        out["sigma"].check_shape("sigma", ())
    return out


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------
def _spec(arrays: Mapping[str, np.ndarray], priors: Mapping[str, Prior], *, meta: MixedMeta,
          formula: str) -> ModelSpec:
    """The spec of a mixed model for validated arrays (also its ``rebuild``)."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    model = MixedModel(meta.family, meta.link, meta.intercept, len(meta.coef_names),
                       tuple((len(b.levels), len(b.columns)) for b in meta.blocks),
                       meta.offset_key is not None)
    sd_coords = tuple(_inside(lab, "sd") for lab in meta.sd_labels())
    corr_coords = tuple(_inside(lab, "corr") for lab in meta.corr_labels())
    params = (*(("intercept",) if meta.intercept else ()),
              *(("coef",) if meta.coef_names else ()), "sd",
              *(("corr",) if corr_coords else ()),
              *(("sigma",) if meta.family == "gaussian" else ()))
    shapes = {"intercept": (), "coef": (len(meta.coef_names),), "sd": (len(sd_coords),),
              "corr": (len(corr_coords),), "sigma": ()}
    re_coords = tuple(f"{b.group},{lev},{col}" for b in meta.blocks for lev in b.levels
                      for col in b.columns)
    rank = _rank_check(arrays, meta)
    mle_checks = [ExistenceCheck(_no_mle_extreme)]
    if rank is not None:
        mle_checks.insert(0, ExistenceCheck(rank))
    blocks = "; ".join(f"({' + '.join(b.columns)} | {b.group}): {len(b.levels)} levels"
                       for b in meta.blocks)
    return ModelSpec(
        name="mixed_model",
        declare=model,
        data=arrays,
        priors=priors,
        params=params,
        dims={"coef": ("feature",), "sd": ("sd_component",), "corr": ("corr_pair",),
              "re": ("random_effect",)},
        coords={"feature": meta.coef_names, "sd_component": sd_coords,
                "corr_pair": corr_coords, "random_effect": re_coords},
        start_fn=model.start,
        options={"formula": formula, "mixed": meta, "link": meta.link,
                 "glm_family": meta.family, "intercept": meta.intercept},
        description=(f"{formula}  ({meta.family}, {meta.link} link): a generalised linear "
                     f"mixed model, random effects b ~ N(0, diag(sd) R diag(sd)) per level; "
                     f"{blocks}"),
        mle_checks=tuple(mle_checks),
        posterior_checks=(_improper_flat_sd, _improper_extreme),
        map_checks=(_no_map_extreme,),
        family=meta.family,
        solver=SOLVER,
        prior_shapes={k: shapes[k] for k in params},
        observations=None,
        rebuild=functools.partial(_spec, meta=meta, formula=formula),
    )


def mixed_design(spec: ModelSpec) -> MixedDesign:
    """The :class:`~bayesmle.models.mixed_design.MixedDesign` of a mixed model's spec.

    ``X`` includes the intercept column (named ``"Intercept"``) when the fixed part has one;
    the blocks keep the levels of the data the spec was built on (a subset of rows may leave
    a level without rows).

    Raises
    ------
    SpecError
        ``spec`` is not a mixed model (from :func:`mixed_glm`).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import bayesmle as bm
    >>> from bayesmle.models.mixed import mixed_design
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=12), "g": np.repeat(["a", "b", "c"], 4)})
    >>> frame["y"] = frame["x"] + rng.normal(size=12)
    >>> design = mixed_design(bm.models.glm("y ~ x + (1 + x | g)", frame))
    >>> design.fixed_names, design.X.shape, design.q
    (('Intercept', 'x'), (12, 2), 6)
    >>> design.sd_labels(), design.corr_labels()
    (['sd[g]', 'sd[g:x]'], ['corr[g]'])
    """
    meta = spec.options.get("mixed") if isinstance(spec, ModelSpec) else None
    if not isinstance(meta, MixedMeta):
        raise SpecError(f"`spec` must be a mixed model's spec (bm.models.glm with random-"
                        f"effects terms such as \"y ~ x + (1 | g)\"), got "
                        f"{getattr(spec, 'name', type(spec).__name__)!r}.")
    data = spec.data
    y = np.asarray(data[meta.y_key])
    n = y.shape[0]
    parts = ([np.ones((n, 1))] if meta.intercept else []) + (
        [np.asarray(data[meta.x_key], dtype=float)] if meta.coef_names else [])
    X = np.ascontiguousarray(np.hstack(parts)) if parts else np.zeros((n, 0))
    blocks = tuple(b.block(np.asarray(data[b.codes_key]), np.asarray(data[b.values_key]))
                   for b in meta.blocks)
    return MixedDesign(
        X=X, fixed_names=meta.fixed_names, y=y, blocks=blocks, family=meta.family,
        link=meta.link,
        trials=np.asarray(data[meta.trials_key]) if meta.trials_key else None,
        offset=np.asarray(data[meta.offset_key]) if meta.offset_key else None)


# ---------------------------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------------------------
def _family_link(family: Any, link: Any) -> tuple[str, str]:
    if not isinstance(family, str) or family not in FAMILIES:
        raise SpecError(f"`family` = {family!r} is not a family with random effects. Valid "
                        f"families for a formula with random-effects terms: {list(FAMILIES)}.")
    links = tuple(LINKS[family])
    if link is None:
        return family, links[0]
    if not isinstance(link, str) or link not in links:
        raise SpecError(f"`link` = {link!r} is not a link of family {family!r}. Valid links "
                        f"for {family!r}: {list(links)}.")
    return family, link


def _response(family: str, response: np.ndarray, trials: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """The response (and trials) validated for the family (DataError naming `y`)."""
    if family == "gaussian":
        return as_float_array("y", response, ndim=1), None
    if family == "poisson":
        return as_count_array("y", response, what="counts"), None
    if family == "binomial":
        return binomial_counts(response, trials)
    y = as_float_array("y", response, ndim=1)
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise DataError(f"`y` must hold binary labels 0/1 (or booleans), but row(s) "
                        f"{', '.join(map(str, bad[:10]))} hold other values. Valid values: 0, "
                        f"1, False, True (family='binomial' with `trials` for counts).")
    return y, None


def _fixed_design(rhs: str, frame: pd.DataFrame, trusted: bool
                  ) -> tuple[pd.DataFrame, bool, Any]:
    """The fixed-effects columns (intercept removed), whether there is an intercept, spec."""
    matrix = model_matrix(rhs, frame, trusted=trusted, na_action="ignore")
    X = pd.DataFrame(matrix)
    X.columns = [str(c) for c in X.columns]
    intercept = INTERCEPT in X.columns
    X = X.drop(columns=[INTERCEPT], errors="ignore")
    X.index = frame.index
    return X.astype(float), intercept, matrix.model_spec


def mixed_glm(formula: str, data: pd.DataFrame, *, family: str = "gaussian",
              link: str | None = None, trials: Any = None, exposure: Any = None,
              offset: Any = None, priors: Mapping[str, Prior] | None = None,
              trusted: bool = False, na_action: str = "raise") -> ModelSpec:
    r"""A generalised linear mixed model from an lme4-style formula and a DataFrame.

    Reached through :func:`bayesmle.models.glm` when the formula has random-effects terms.

    Parameters
    ----------
    formula : str
        ``"y ~ x + (1 + x | g)"``: a fixed part as :func:`~bayesmle.models.glm` takes and
        random-effects terms in lme4's syntax (:mod:`bayesmle.models.random_terms`:
        ``(1 | g)``, ``(x | g)``, ``(0 + x | g)``, ``(1 | a:b)``, ``(1 | a/b)``,
        ``(1 + x || g)``). Checked against the allowlist before anything is evaluated
        unless ``trusted``.
    data : pandas.DataFrame
        The data; the formula's names are its columns.
    family : {"gaussian", "bernoulli", "binomial", "poisson"}, default "gaussian"
        The likelihood.
    link : str, optional
        ``"identity"`` (gaussian), ``"logit"`` (default), ``"probit"``, ``"cloglog"``
        (bernoulli, binomial), ``"log"`` (poisson).
    trials : str or array_like, optional
        ``"binomial"`` only (required): a column or an array of trials per row.
    exposure, offset : str or array_like, optional
        ``"poisson"`` only: a column or an array; ``offset = log(exposure)``.
    priors : dict, optional
        Priors by name: ``"intercept"``, ``"coef"`` and ``"coef[<column>]"`` (fixed effects,
        as in ``glm``), ``"sd"`` and ``"sd[<label>]"`` (the random effects' standard
        deviations, e.g. ``"sd[g]"``, ``"sd[g:x]"``; the overrides must be of the family of
        ``"sd"`` and become one array prior), ``"corr"`` (an :class:`~bayesmle.LKJ` prior
        for every block's correlation matrix) and ``"sigma"`` (gaussian). Defaults:
        ``Flat()`` on the fixed effects, ``HalfFlat()`` on ``sd`` and ``sigma``, ``LKJ(1)``
        (uniform) on ``corr``. Laplace and NUTS need a proper prior on ``sd``.
    trusted : bool, default False
        The formula is written by the program itself: skip the allowlist check.
    na_action : {"raise", "drop"}, default "raise"
        Rows with missing values in any column the model uses (fixed part, random terms'
        left sides and grouping factors, response, trials, offset): an error naming them, or
        dropped from every part alike.

    Returns
    -------
    ModelSpec
        Parameters ``intercept``, ``coef``, ``sd``, ``corr``, ``sigma`` (those the model
        has, in this order), labelled ``coef[x]``, ``sd[g]``, ``sd[g:x]``, ``corr[g]``,
        ``corr[g:x,z]``; ``solver = "mixed"``; ``spec.options["mixed"]`` is its
        :class:`MixedMeta` and :func:`mixed_design` its design. Its PyMC model is the joint
        model, non-centred, with a Deterministic ``re`` of the random effects.

    Raises
    ------
    SpecError
        A malformed formula or random term (the message names the term), a family without
        random effects, a column that does not exist, two blocks for one column of a
        grouping factor.
    DataError
        Missing values (``na_action="raise"``), a response outside the family's support, a
        grouping factor with one level, or (gaussian) as many random effects in a block as
        rows.
    PriorError
        An unknown prior name (the message lists the valid ones), a prior on the wrong
        support (e.g. ``Normal`` on ``sd``, anything but ``LKJ`` on ``corr``).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(1)
    >>> frame = pd.DataFrame({"x": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10)})
    >>> effect = dict(zip("abcdef", rng.normal(scale=0.5, size=6)))
    >>> frame["y"] = 1.0 + 0.5 * frame["x"] + frame["g"].map(effect) + rng.normal(size=60)
    >>> spec = bm.models.glm("y ~ x + (1 + x | g)", frame,
    ...                      priors={"sd": bm.HalfNormal(1.0), "corr": bm.LKJ(2.0)})
    >>> spec.params
    ('intercept', 'coef', 'sd', 'corr', 'sigma')
    >>> spec.labels("sd", (2,)), spec.labels("corr", (1,))
    (['sd[g]', 'sd[g:x]'], ['corr[g]'])
    >>> bm.models.glm("y ~ x + (1 | g)", frame, family="gamma")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `family` = 'gamma' is not a family with random effects. ...
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"`data` must be a pandas DataFrame whose columns the formula names, "
                        f"got {type(data).__name__}.")
    if not isinstance(trusted, bool):
        raise SpecError(f"`trusted` must be True or False, got {trusted!r}.")
    if not isinstance(na_action, str) or na_action not in _NA_ACTIONS:
        raise SpecError(f"`na_action` = {na_action!r} is not valid. Valid: "
                        f"{list(_NA_ACTIONS)}.")
    family, link = _family_link(family, link)
    parsed = parse_mixed_formula(formula, columns=list(data.columns), trusted=trusted)
    lhs = parsed.response
    if lhs not in data.columns:
        raise SpecError(f"`formula` = {formula[:80]!r}: the response `{lhs[:40]}` (left of "
                        f"'~') is not a column of `data`; it must be one column name. Valid: "
                        f"{describe_columns(data.columns)}.")

    given = {"trials": trials, "exposure": exposure, "offset": offset}
    allowed = ({"trials"} if family == "binomial" else set()) | (
        {"exposure", "offset"} if family in _COUNTS else set())
    for name, value in given.items():
        if value is not None and name not in allowed:
            which = "'binomial'" if name == "trials" else "'poisson'"
            raise SpecError(f"`{name}` was given for family {family!r}; with random effects "
                            f"it applies to {which} only.")
    if family == "binomial" and trials is None:
        raise DataError("family='binomial' needs `trials`: a column name of `data` or an array "
                        "of the number of trials per row (the formula's left side is the "
                        "successes). For 0/1 outcomes use family='bernoulli'.")
    args = {name: column_arg(name, value, data) for name, value in given.items()
            if value is not None}
    named = [column for _, column in args.values() if column is not None]

    frame = data.drop(columns=[c for c in dict.fromkeys([lhs, *named]) if c in data.columns])
    _, _, fixed_spec = _fixed_design(parsed.fixed, frame, trusted)
    fixed_vars = [c for c in frame.columns if c in fixed_spec.required_variables]
    used = list(dict.fromkeys([lhs, *fixed_vars, *random_variables(parsed, frame,
                                                                   trusted=trusted), *named]))
    data, frame, args, _ = drop_missing(data, frame, args, used, na_action)
    X, intercept, _ = _fixed_design(parsed.fixed, frame, trusted)
    blocks = random_blocks(parsed, frame, trusted=trusted, gaussian=family == "gaussian")

    response = data[lhs].to_numpy()
    if response.dtype == object:
        raise DataError(f"The response column {lhs!r} (the formula's left side) holds "
                        f"non-numeric values; family {family!r} needs numbers.")
    try:
        y, t = _response(family, response, args["trials"][0] if "trials" in args else None)
        off = (offset_array(len(y), args.get("exposure", (None,))[0],
                            args.get("offset", (None,))[0])
               if ("exposure" in args or "offset" in args) else None)
    except DataError as exc:
        raise DataError(f"glm({formula[:80]!r}, family={family!r}): the response `y` is the "
                        f"column {lhs!r} (the formula's left side): {exc}") from None

    coef_names = tuple(str(c) for c in X.columns)
    metas = tuple(BlockMeta(b.group, b.columns, b.levels, f"re_codes_{i}", f"re_values_{i}")
                  for i, b in enumerate(blocks))
    meta = MixedMeta(family=family, link=link, response=str(lhs), intercept=intercept,
                     coef_names=coef_names, blocks=metas,
                     x_key="X" if coef_names else None, y_key="y",
                     trials_key="trials" if t is not None else None,
                     offset_key="offset" if off is not None else None)
    arrays: dict[str, np.ndarray] = {"y": y}
    if coef_names:
        arrays["X"] = np.ascontiguousarray(X.to_numpy(dtype=float))
    for i, b in enumerate(blocks):
        arrays[f"re_codes_{i}"] = b.codes
        arrays[f"re_values_{i}"] = b.values
    if t is not None:
        arrays["trials"] = t
    if off is not None:
        arrays["offset"] = off
    return _spec(arrays, _priors(priors, meta), meta=meta, formula=formula)
