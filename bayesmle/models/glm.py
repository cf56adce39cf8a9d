"""Generalised linear models from a formula: ``glm("y ~ x1 + C(g)", data, family=...)``.

One entry point for every regression family: the formula's right-hand side is expanded by
formulaic into the design (its columns label the coefficients, ``coef[C(g)[T.b]]``), its
intercept becomes the builder's ``intercept`` option, and the family picks the matrix builder
of :mod:`bayesmle.models.regression`. A formula is checked by
:func:`bayesmle.formula_check.check_formula` before anything in it is evaluated (no arbitrary
Python from a formula string) unless ``trusted=True``.

Priors are given by term name: ``"coef"`` for every slope, ``"coef[<column>]"`` for one slope
(one prior family for all slopes: the overrides become per-coefficient parameter arrays),
``"intercept"`` and the family's extra parameters (``"sigma"``, ``"alpha"``, ``"nu"``,
``"shape"``).

The returned spec keeps the formula (``spec.options["formula"]``) and predicts for new rows
given as a DataFrame of the *raw* columns: the design is built with the fitted formula's
formulaic model spec (same categories, same transforms).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.errors import DataError, PriorError, SpecError
from bayesmle.formula_check import (
    check_formula,
    describe_columns,
    evaluation_context,
    model_matrix,
)
from bayesmle.models.observations import Rows
from bayesmle.models.random_terms import has_random_terms
from bayesmle.models.regression_model import LINKS
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Prior

__all__ = ["FAMILIES", "column_arg", "fold_prior_overrides", "glm", "glm_links", "na_rows"]

#: The families ``glm`` fits (``regression_model.LINKS`` lists the links of each).
FAMILIES: tuple[str, ...] = ("gaussian", "bernoulli", "binomial", "poisson", "negative_binomial",
                             "gamma", "student_t", "categorical")
#: Each family's extra (scale / shape) parameters, named as in ``priors``.
_EXTRAS: dict[str, tuple[str, ...]] = {
    "gaussian": ("sigma",),
    "bernoulli": (),
    "binomial": (),
    "poisson": (),
    "negative_binomial": ("alpha",),
    "gamma": ("shape",),
    "student_t": ("sigma", "nu"),
    "categorical": (),
}
_COUNTS = ("poisson", "negative_binomial")
_NA_ACTIONS = ("raise", "drop")


def glm_links() -> Mapping[str, tuple[str, ...]]:
    """The valid links of each family ``glm`` fits (from ``regression_model.LINKS``).

    Examples
    --------
    >>> from bayesmle.models.glm import glm_links
    >>> glm_links()["bernoulli"]
    ('logit', 'probit', 'cloglog')
    """
    return {family: LINKS[family] for family in FAMILIES}


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
def _family_link(family: Any, link: Any) -> tuple[str, str]:
    if not isinstance(family, str) or family not in FAMILIES:
        raise SpecError(f"`family` = {family!r} is not a family glm fits. Valid families: "
                        f"{list(FAMILIES)}.")
    links = tuple(LINKS[family])
    if link is None:
        return family, links[0]
    if not isinstance(link, str) or link not in links:
        raise SpecError(f"`link` = {link!r} is not a link of family {family!r}. Valid links "
                        f"for {family!r}: {list(links)}.")
    return family, link


def _split(formula: Any, data: pd.DataFrame, trusted: bool) -> tuple[str, str]:
    """The formula's response column and right-hand side (checked unless trusted)."""
    if not isinstance(formula, str):
        raise SpecError(f"`formula` must be a string such as \"y ~ x1 + x2\", got "
                        f"{type(formula).__name__}.")
    if formula.count("~") != 1:
        raise SpecError(f"`formula` = {formula[:80]!r} is not a formula of the form "
                        f"\"response ~ predictors\" (it needs exactly one '~').")
    if not trusted:  # nothing in the formula is evaluated before this
        check_formula(formula, columns=list(data.columns))
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if lhs.startswith("`") and lhs.endswith("`") and len(lhs) > 1:
        lhs = lhs[1:-1]
    if not lhs or not rhs:
        raise SpecError(f"`formula` = {formula[:80]!r}: both sides of '~' must be given, e.g. "
                        f"\"y ~ x1 + x2\".")
    if lhs not in data.columns:
        raise SpecError(f"`formula` = {formula[:80]!r}: the response `{lhs[:40]}` (left of "
                        f"'~') is not a column of `data`; it must be one column name. Valid: "
                        f"{describe_columns(data.columns)}.")
    return lhs, rhs


def column_arg(name: str, value: Any, data: pd.DataFrame) -> tuple[np.ndarray | None,
                                                                     str | None]:
    """A data argument given as a column name of ``data`` or an array: (values, column).

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmle.models.glm import column_arg
    >>> column_arg("trials", "n", pd.DataFrame({"n": [3, 4]}))
    (array([3, 4]), 'n')
    """
    if value is None:
        return None, None
    if isinstance(value, str):
        if value not in data.columns:
            raise DataError(f"`{name}` = {value[:40]!r} is not a column of `data`. Valid: "
                            f"{describe_columns(data.columns)}.")
        return data[value].to_numpy(), value
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != len(data):
        raise DataError(f"`{name}` must be a column name of `data` or a 1-D array with one "
                        f"value per row ({len(data)}), got shape {arr.shape}.")
    return arr, None



def drop_missing(data: pd.DataFrame, frame: pd.DataFrame, args: dict, used: list[str],
                 na_action: str) -> tuple[pd.DataFrame, pd.DataFrame, dict, bool]:
    """Rows with a missing value in a used column or array argument: raise or drop them.

    Returns ``(data, frame, args, dropped)`` with the rows removed consistently (``args``:
    name -> ``(values, column)`` as :func:`column_arg` gives them).
    """
    bad = na_rows(data, used)
    for values, column in args.values():
        if column is None and values.dtype.kind == "f":
            bad |= np.isnan(values)
    if not bad.any():
        return data, frame, args, False
    if na_action == "raise":
        rows = [str(v) for v in data.index[bad][:10]]
        cols = [c for c in used if data[c].isna().to_numpy().any()]
        raise DataError(
            f"{int(bad.sum())} row(s) of `data` have missing values in the column(s) "
            f"{cols or list(args)} the model uses: row(s) {rows}"
            f"{' ...' if bad.sum() > 10 else ''}. Drop them, or pass na_action='drop'.")
    keep = ~bad
    args = {name: (values[keep], column) for name, (values, column) in args.items()}
    return data.loc[keep], frame.loc[keep], args, True

def na_rows(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` with a missing value in ``columns``.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmle.models.glm import na_rows
    >>> na_rows(pd.DataFrame({"x": [1.0, None], "g": ["a", "b"]}), ["x", "g"]).tolist()
    [False, True]
    """
    if not columns:
        return np.zeros(len(frame), dtype=bool)
    return np.array(frame[columns].isna().any(axis=1).to_numpy(), dtype=bool)


def _design(rhs: str, frame: pd.DataFrame, trusted: bool, formula: str
            ) -> tuple[pd.DataFrame, bool, Any]:
    """The design columns (intercept removed), whether there is an intercept, the model spec."""
    matrix = model_matrix(rhs, frame, trusted=trusted, na_action="ignore")
    X = pd.DataFrame(matrix)
    intercept = "Intercept" in X.columns
    X = X.drop(columns=["Intercept"], errors="ignore")
    if X.shape[1] == 0:
        raise SpecError(f"`formula` = {formula[:80]!r}: the right-hand side has no predictor "
                        f"column (an intercept-only model is the single-distribution builder, "
                        f"e.g. bm.models.gaussian(y)).")
    X.index = frame.index
    return X.astype(float), intercept, matrix.model_spec


# ---------------------------------------------------------------------------------------------
# Priors by term name
# ---------------------------------------------------------------------------------------------
def fold_prior_overrides(priors: Mapping[str, Prior], key: str, names: list[str], *,
                         what: str = "slopes", one: str = "slope", default: str = "Flat()",
                         per_row: bool = False) -> Prior | None:
    """One prior for the array parameter ``key`` from ``key`` and its ``key[<name>]`` overrides.

    The overrides must be of the prior family of ``key`` (one prior family per parameter):
    they become per-element parameter values of one prior (``coef`` = ``Normal(1.0)`` with
    ``coef[x2]`` = ``Normal(5.0)`` is ``Normal([1.0, 5.0])``). ``what`` / ``one`` name the
    elements in messages (``"slopes"`` / ``"slope"``), ``default`` the prior an element gets
    when ``key`` is not given; ``per_row`` gives the parameters a trailing axis (the
    ``(d, K-1)`` coefficients of a categorical model). None when neither is given.

    Examples
    --------
    >>> import bayesmle as bm
    >>> from bayesmle.models.glm import fold_prior_overrides
    >>> fold_prior_overrides({"sd": bm.HalfNormal(1.0), "sd[g:x]": bm.HalfNormal(0.1)},
    ...                      "sd", ["g", "g:x"], what="standard deviations")
    HalfNormal(sigma=[1. , 0.1])
    """
    base = priors.get(key)
    overrides = {n: priors[f"{key}[{n}]"] for n in names if f"{key}[{n}]" in priors}
    if not overrides:
        return base
    kinds = {type(p).__name__ for p in overrides.values()}
    if base is None:
        if len(overrides) < len(names):
            raise PriorError(
                f"Priors were given for {sorted(f'{key}[{n}]' for n in overrides)} but not for "
                f"the other {what}, whose default is {default}; one prior family per `{key}` "
                f"is supported, so also give `{key}` (e.g. priors={{'{key}': "
                f"{next(iter(overrides.values()))!r}, ...}}) for the other {what}.")
        base = next(iter(overrides.values()))
    kinds.add(type(base).__name__)
    if len(kinds) > 1:
        raise PriorError(
            f"The {what}' priors mix the families {sorted(kinds)} (`{key}` and the "
            f"`{key}[<name>]` overrides); one prior family per `{key}` is supported (the "
            f"overrides become per-{one} parameters of one prior). Give every {one} a "
            f"prior of the same family.")
    if base.is_flat:
        return base
    d = len(names)
    values: dict[str, np.ndarray] = {}
    for name, value in base.params().items():
        arr = np.asarray(value, dtype=float)
        if arr.shape not in ((), (d,)):
            raise PriorError(f"`{key}` = {base!r} has parameters of shape {arr.shape}; with "
                             f"`{key}[<name>]` overrides give scalars or one value per {one} "
                             f"({d}).")
        values[name] = np.array(np.broadcast_to(arr, (d,)), dtype=float)
    for i, name in enumerate(names):
        if name not in overrides:
            continue
        for param, value in overrides[name].params().items():
            arr = np.asarray(value, dtype=float)
            if arr.shape != ():
                raise PriorError(f"`{key}[{name}]` = {overrides[name]!r} must have scalar "
                                 f"parameters (it is the prior of one {one}).")
            values[param][i] = float(arr)
    if per_row:
        values = {k: v[:, None] for k, v in values.items()}
    return type(base)(**values)


def _builder_priors(priors: Any, names: list[str], intercept: bool, family: str
                    ) -> dict[str, Prior]:
    """Builder keywords (``prior``, ``intercept_prior``, ``<extra>_prior``) from term names."""
    if priors is None:
        return {}
    valid = ["coef", *(f"coef[{n}]" for n in names), *(["intercept"] if intercept else []),
             *_EXTRAS[family]]
    if not isinstance(priors, Mapping):
        raise PriorError(f"`priors` must be a dict of priors by term name, got "
                         f"{type(priors).__name__}. Valid names for this formula: {valid}.")
    unknown = [k for k in priors if k not in valid]
    if unknown:
        extra = (" (the formula has no intercept: `0 +` or `- 1`)"
                 if "intercept" in unknown and not intercept else "")
        raise PriorError(f"`priors` holds unknown name(s) {[str(k)[:60] for k in unknown]}"
                         f"{extra}. Valid names for this formula and family {family!r}: "
                         f"{valid}.")
    for key, value in priors.items():
        if not isinstance(value, Prior):
            raise PriorError(f"`priors[{key!r}]` must be a prior such as bm.Normal(1.0), got "
                             f"{type(value).__name__}.")
    out: dict[str, Prior] = {}
    coef = fold_prior_overrides(priors, "coef", names, per_row=family == "categorical")
    if coef is not None:
        out["prior"] = coef
    if "intercept" in priors:
        out["intercept_prior"] = priors["intercept"]
    for extra in _EXTRAS[family]:
        if extra in priors:
            out[f"{extra}_prior"] = priors[extra]
    return out


# ---------------------------------------------------------------------------------------------
# The builders
# ---------------------------------------------------------------------------------------------
def _builder(family: str, link: str) -> tuple[Callable[..., ModelSpec], dict[str, Any]]:
    """The matrix builder of a family and link, and its fixed keyword arguments."""
    from bayesmle.models import regression

    if family == "gaussian":
        return regression.linear_regression, {}
    if family == "bernoulli":
        if link == "logit":
            return regression.logistic_regression, {}
        return regression.binomial_regression, {"trials": 1, "link": link}
    if family == "binomial":
        return regression.binomial_regression, {"link": link}
    if family == "poisson":
        return regression.poisson_regression, {}
    if family == "negative_binomial":
        return regression.negative_binomial_regression, {}
    if family == "gamma":
        return regression.gamma_regression, {"link": link}
    if family == "student_t":
        return regression.robust_regression, {"noise": "student_t"}
    return regression.softmax_regression, {}


@dataclasses.dataclass(frozen=True)
class FormulaRows:
    """New rows for a formula model: a DataFrame of the raw columns becomes the design.

    The design is built with the fitted formula's formulaic model spec (same categories,
    same transforms); a dict of the builder's arrays is passed to the builder's own rows.
    """

    base: Callable[[ModelSpec, Any], Rows]
    model_spec: Any
    response: str
    variables: tuple[str, ...]
    #: (argument, column) of the row arguments given as columns (``exposure``, ``trials``...).
    columns: tuple[tuple[str, str], ...]
    response_key: str
    trusted: bool

    def __call__(self, spec: ModelSpec, data: Any) -> Rows:
        """Validate ``data`` into the observation model's arrays (see the class doc)."""
        if not isinstance(data, pd.DataFrame):
            return self.base(spec, data)
        needed = [*self.variables, *(c for _, c in self.columns if c not in self.variables)]
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise DataError(f"The new data lack the column(s) {missing}; the formula "
                            f"{spec.options.get('formula', '')!r} needs {needed} (and "
                            f"optionally the response {self.response!r}).")
        bad = na_rows(data, needed)
        if bad.any():
            rows = [str(v) for v in data.index[bad][:10]]
            raise DataError(f"The new data have missing values in the columns {needed}, "
                            f"row(s) {rows}.")
        _check_levels(self.model_spec, data, list(self.variables))
        context = None if self.trusted else evaluation_context()
        try:
            matrix = self.model_spec.get_model_matrix(data[list(self.variables)],
                                                      context=context)
        except Exception as exc:  # noqa: BLE001 - formulaic's errors vary; never quote data
            raise DataError(f"The formula's design cannot be built on the new rows "
                            f"({type(exc).__name__}).") from None
        X = pd.DataFrame(matrix).drop(columns=["Intercept"], errors="ignore").astype(float)
        X.index = data.index
        out: dict[str, Any] = {"X": X}
        for arg, column in self.columns:
            out[arg] = data[column].to_numpy()
        if self.response in data.columns:
            out[self.response_key] = data[self.response].to_numpy()
        rows = self.base(spec, out)
        return dataclasses.replace(rows, index=data.index)


def _check_levels(model_spec: Any, frame: pd.DataFrame, columns: list[str]) -> None:
    """Refuse categories of new rows the fitted design did not see (formulaic would encode
    them as the reference level).
    """  # noqa: D205
    import re

    for factor, state in getattr(model_spec, "factor_contrasts", {}).items():
        expr = str(getattr(factor, "expr", factor))
        used = [c for c in columns if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w(])", expr)]
        if len(used) != 1:
            continue
        levels = list(getattr(state, "levels", []) or [])
        unseen = [v for v in pd.unique(frame[used[0]].dropna()) if v not in levels]
        if unseen:
            raise DataError(f"Column {used[0]!r} of the new data holds {len(unseen)} "
                            f"categor(ies) the model was not fitted on (it knows "
                            f"{len(levels)}); the formula's design cannot be built.")


def _with_formula(spec: ModelSpec, *, formula: str, link: str, glm_family: str,
                  rows: FormulaRows | None) -> ModelSpec:
    """The builder's spec with the formula recorded and raw-column predictions."""
    changes: dict[str, Any] = {
        "options": {**spec.options, "formula": formula, "link": link,
                    "glm_family": glm_family},
        "description": f"{formula}  ({glm_family}, {link} link): {spec.description}",
    }
    if rows is not None and spec.observations is not None:
        changes["observations"] = dataclasses.replace(
            spec.observations, rows=dataclasses.replace(rows, base=spec.observations.rows))
    if spec.rebuild is not None:
        changes["rebuild"] = functools.partial(
            _rebuild, base=spec.rebuild, formula=formula, link=link, glm_family=glm_family,
            rows=rows)
    return dataclasses.replace(spec, **changes)


def _rebuild(data: Mapping[str, np.ndarray], priors: Mapping[str, Prior], *, base: Callable,
             formula: str, link: str, glm_family: str, rows: FormulaRows | None) -> ModelSpec:
    return _with_formula(base(data, priors), formula=formula, link=link,
                         glm_family=glm_family, rows=rows)


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------
def glm(formula: str, data: pd.DataFrame, *, family: str = "gaussian", link: str | None = None,
        trials: Any = None, exposure: Any = None, offset: Any = None,
        priors: Mapping[str, Prior] | None = None, trusted: bool = False,
        na_action: str = "raise") -> ModelSpec:
    r"""A generalised linear (mixed) model from a formula and a DataFrame.

    Parameters
    ----------
    formula : str
        ``"response ~ predictors"`` in formulaic's syntax: ``"y ~ x1 + np.log(x2) + C(g)"``.
        The left side is one column (successes for ``"binomial"``, class labels for
        ``"categorical"``); the right side's intercept column becomes the builder's
        ``intercept`` (``0 +`` or ``- 1`` drops it). Unless ``trusted``, the formula is
        checked against an allowlist of transforms before anything in it is evaluated
        (:func:`bayesmle.formula_check.check_formula`). An ``offset(...)`` term is refused:
        give ``offset=`` or ``exposure=`` instead. Random-effects terms in lme4's syntax
        (``"y ~ x + (1 + x | g)"``, ``(1 | a/b)``, ``(x || g)``) make it a mixed model, built
        by :func:`bayesmle.models.mixed.mixed_glm` (families ``"gaussian"``,
        ``"bernoulli"``, ``"binomial"``, ``"poisson"``; see there for its priors ``"sd"``,
        ``"corr"``).
    data : pandas.DataFrame
        The data; the formula's names are its columns.
    family : str, default "gaussian"
        ``"gaussian"`` (:func:`~bayesmle.models.linear_regression`), ``"bernoulli"``
        (logistic regression, or a binomial regression with one trial for the probit and
        cloglog links), ``"binomial"`` (needs ``trials``), ``"poisson"``,
        ``"negative_binomial"``, ``"gamma"``, ``"student_t"``
        (:func:`~bayesmle.models.robust_regression`) or ``"categorical"``
        (:func:`~bayesmle.models.softmax_regression`).
    link : str, optional
        The link function; default the family's first (canonical) link, see
        :func:`glm_links`.
    trials : str or array_like, optional
        ``"binomial"`` only (required): a column of ``data`` or an array of trials per row.
    exposure, offset : str or array_like, optional
        ``"poisson"`` / ``"negative_binomial"`` only: a column name or an array;
        ``offset = log(exposure)``.
    priors : dict, optional
        Priors by term name: ``"coef"`` (every slope), ``"coef[<column>]"`` (one slope, a
        column of the design such as ``"coef[GPA]"`` or ``"coef[C(g)[T.b]]"``; one prior
        family for all slopes), ``"intercept"`` and the family's extra parameters
        (``"sigma"``, ``"alpha"``, ``"nu"``, ``"shape"``). Default: flat priors.
    trusted : bool, default False
        The formula is written by the program itself: skip the allowlist check and evaluate
        it with formulaic's full namespace. Never set it for formulas from files or users.
    na_action : {"raise", "drop"}, default "raise"
        Rows with missing values in the columns the model uses: an error naming them (as
        statsmodels' ``missing="raise"``), or dropped.

    Returns
    -------
    ModelSpec
        The matrix builder's spec, its coefficients labelled by the design's columns
        (``coef[GPA]``, ``coef[C(g)[T.b]]``); ``spec.options["formula"]`` holds the formula.
        Predictions accept a DataFrame of the raw columns (``result.predict(new_frame)``).

    Raises
    ------
    SpecError
        Not a formula, a formula term that is not allowed or not a column, unknown family or
        link, a data argument the family does not take.
    DataError
        ``data`` is not a DataFrame, missing values, a response outside the family's support
        (the message names the response column), ``trials`` missing for ``"binomial"``.
    PriorError
        An unknown prior name (the message lists the valid ones), or slopes' priors of
        different families.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import bayesmle as bm
    >>> from bayesmle.models.glm import glm
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=40), "g": rng.choice(["a", "b"], 40)})
    >>> frame["y"] = 1.0 + 2.0 * frame["x"] + (frame["g"] == "b") + rng.normal(size=40)
    >>> spec = glm("y ~ x + C(g)", frame, priors={"coef": bm.Normal(5.0),
    ...                                           "sigma": bm.HalfNormal(2.0)})
    >>> mle = bm.fit(spec, "mle")
    >>> mle.labels
    ['intercept', 'coef[x]', 'coef[C(g)[T.b]]', 'sigma']
    >>> spec.options["formula"]
    'y ~ x + C(g)'

    Predictions for new rows from the raw columns:

    >>> new = pd.DataFrame({"x": [0.0, 1.0], "g": ["a", "b"]})
    >>> np.round(mle.predict(new)["mean"].to_numpy(), 2).tolist()
    [1.11, 4.04]

    Counts with an exposure column, and a formula that is not allowed:

    >>> frame["n"] = rng.poisson(np.exp(0.3 + 0.5 * frame["x"]))
    >>> glm("n ~ x", frame, family="poisson").name
    'poisson_regression'
    >>> glm("y ~ x + __import__('os').getcwd()", frame)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `formula` = "y ~ x + __import__('os').getcwd()": the term ...

    A random intercept per level of ``g`` (a mixed model; its standard deviation is ``sd[g]``):

    >>> mixed = glm("y ~ x + (1 | g)", frame, priors={"sd": bm.HalfNormal(1.0)})
    >>> mixed.params, mixed.solver
    (('intercept', 'coef', 'sd', 'sigma'), 'mixed')
    >>> mixed.labels("sd", (1,))
    ['sd[g]']
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"`data` must be a pandas DataFrame whose columns the formula names, "
                        f"got {type(data).__name__}.")
    if not isinstance(trusted, bool):
        raise SpecError(f"`trusted` must be True or False, got {trusted!r}.")
    if not isinstance(na_action, str) or na_action not in _NA_ACTIONS:
        raise SpecError(f"`na_action` = {na_action!r} is not valid. Valid: "
                        f"{list(_NA_ACTIONS)}.")
    if has_random_terms(formula):  # lme4's (terms | group): a mixed model
        from bayesmle.models.mixed import mixed_glm

        return mixed_glm(formula, data, family=family, link=link, trials=trials,
                         exposure=exposure, offset=offset, priors=priors, trusted=trusted,
                         na_action=na_action)
    family, link = _family_link(family, link)
    lhs, rhs = _split(formula, data, trusted)

    given = {"trials": trials, "exposure": exposure, "offset": offset}
    allowed = ({"trials"} if family == "binomial" else set()) | (
        {"exposure", "offset"} if family in _COUNTS else set())
    for name, value in given.items():
        if value is not None and name not in allowed:
            which = ("'binomial'" if name == "trials" else "'poisson' and 'negative_binomial'")
            raise SpecError(f"`{name}` was given for family {family!r}; it applies to "
                            f"{which} only.")
    if family == "binomial" and trials is None:
        raise DataError("family='binomial' needs `trials`: a column name of `data` or an array "
                        "of the number of trials per row (the formula's left side is the "
                        "successes). For 0/1 outcomes use family='bernoulli'.")
    args = {name: column_arg(name, value, data) for name, value in given.items()
            if value is not None}
    named = [column for _, column in args.values() if column is not None]

    frame = data.drop(columns=[c for c in dict.fromkeys([lhs, *named]) if c in data.columns])
    X, intercept, model_spec = _design(rhs, frame, trusted, formula)
    variables = [c for c in frame.columns if c in model_spec.required_variables]
    used = list(dict.fromkeys([lhs, *variables, *named]))
    data, frame, args, dropped = drop_missing(data, frame, args, used, na_action)
    if dropped:
        X, intercept, model_spec = _design(rhs, frame, trusted, formula)

    names = [str(c) for c in X.columns]
    kwargs = _builder_priors(priors, names, intercept, family)
    func, fixed = _builder(family, link)
    response = data[lhs].to_numpy()
    if family != "categorical" and response.dtype == object:
        raise DataError(f"The response column {lhs!r} (the formula's left side) holds "
                        f"non-numeric values; family {family!r} needs numbers.")
    row_args: dict[str, Any] = {name: values for name, (values, _) in args.items()}
    try:
        spec = func(X, response, intercept=intercept, **fixed, **row_args, **kwargs)
    except DataError as exc:
        raise DataError(f"glm({formula[:80]!r}, family={family!r}): the response `y` is the "
                        f"column {lhs!r} (the formula's left side): {exc}") from None

    rows = None
    if spec.observations is not None:
        obs = spec.observations
        response_key = obs.response[0] if obs.response else "y"
        columns = tuple((name, column) for name, (_, column) in args.items()
                        if column is not None and name in obs.inputs)
        rows = FormulaRows(base=obs.rows, model_spec=model_spec, response=lhs,
                           variables=tuple(variables), columns=columns,
                           response_key=response_key, trusted=trusted)
    return _with_formula(spec, formula=formula, link=link, glm_family=family, rows=rows)
