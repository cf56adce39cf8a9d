"""Shrinkage: each group's level with no pooling, partial pooling and complete pooling.

For a mixed model with a random intercept per level of a grouping factor ``g`` (the first
random-effects term with an intercept column, e.g. ``(1 | g)`` or ``(1 + x | g)``), the study
compares, per group ``j``, three estimates of the group's *level* on the scale of the linear
predictor (Gelman & Hill 2007, ch. 12):

``alpha_j = intercept + z_j . beta_z + b_j``

where ``z_j`` are the group's values of its *group-level* fixed columns -- those constant
within every group (detected numerically: no spread within any group, e.g. a patient's
treatment arm or baseline in a longitudinal study) -- and ``b_j`` its random intercept. The
other fixed columns (varying within groups) are held at 0. Without group-level columns
``alpha_j`` is simply the group's intercept ``intercept + b_j``.

Why the level and not the intercept: a group-level column is collinear with the group
dummies, so with the group as a factor the group's intercept is not identified apart from
``beta_z``; its level at its own covariates is.

* **no pooling** -- the group's own estimate: the fixed-effects fit *without* the group-level
  columns, with ``g`` as a factor (one free level per group, the within-group effects
  shared), with no distribution over the groups; ``alpha_j`` is the group's dummy
  coefficient. Gaussian: exactly the least-squares fit of ``y ~ x_within + C(g) - 1``. Other
  families: the GLM's MLE with group dummies; a group whose own MLE does not exist (all its
  responses 0, or all successes) is NaN with a note, and is left out of that fit;
* **partial pooling** -- per method: ``intercept + z_j . beta_z + b_j`` with the method's
  fixed effects and ``b_j`` the conditional mode of the group's random effect (ML, REML, MAP;
  the BLUP for the Gaussian family), or the posterior mean of that sum (NUTS);
* **complete pooling** -- the fit that ignores the groups (the whole fixed part alone),
  evaluated at each group's ``z_j``: ``intercept + z_j . beta_z``. Without group-level
  columns this is one value for every group (the fit's intercept).

The shrinkage factor ``(partial - complete) / (none - complete)`` is 1 for no shrinkage and 0
for complete pooling; for a balanced Gaussian random-intercept model it is
``sd^2 / (sd^2 + sigma^2 / m)`` for every group of size ``m``: small groups are pulled hardest.
Partial pooling shrinks towards the mixed model's own fixed part ``intercept + z_j . beta_z``
(its intercept reported per method), which is the complete-pooling estimate only in that
balanced case: with covariates, unequal group sizes or a non-Gaussian family a factor can
leave [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import Diagnostic, MLENotFoundError, SpecError
from bayesmle.models.mixed_design import INTERCEPT
from bayesmle.models.spec import ModelSpec
from bayesmle.studies._common import fit_quietly
from bayesmle.studies._runner import StudyResult
from bayesmle.studies.joint_mode import design_from

__all__ = ["ShrinkageResult", "shrinkage"]

#: Methods whose partial-pooling estimates the study reports.
METHODS = ("mle", "reml", "map", "nuts")
_NUTS_DEFAULTS = {"draws": 1000, "tune": 1000, "chains": 2, "progressbar": False}


def _intercept_block(design) -> int:
    for i, block in enumerate(design.blocks):
        if INTERCEPT in block.columns:
            return i
    terms = [f"({' + '.join(b.columns)} | {b.group})" for b in design.blocks]
    raise SpecError(f"`formula` must have a random intercept such as (1 | g) or (1 + x | g); "
                    f"its random-effects terms {terms} have none.")


def _group_level(X: np.ndarray, codes: np.ndarray, J: int) -> np.ndarray:
    """Which columns of ``X`` are constant within every group (no spread in any group).

    Exact up to rounding: a column's range within a group must not exceed ``1e-12`` of its
    largest magnitude. Groups without rows are ignored.
    """
    if X.shape[1] == 0 or X.shape[0] == 0:
        return np.zeros(X.shape[1], dtype=bool)
    lo = np.full((J, X.shape[1]), np.inf)
    hi = np.full((J, X.shape[1]), -np.inf)
    np.minimum.at(lo, codes, X)
    np.maximum.at(hi, codes, X)
    present = np.bincount(codes, minlength=J) > 0
    spread = (hi - lo)[present].max(axis=0)
    return spread <= 1e-12 * np.abs(X).max(axis=0)


def _group_values(X: np.ndarray, codes: np.ndarray, J: int) -> np.ndarray:
    """``(J, k)`` value of each (group-level) column per group; NaN for a group without rows."""
    sizes = np.bincount(codes, minlength=J).astype(float)
    sums = np.stack([np.bincount(codes, weights=col, minlength=J) for col in X.T], axis=1) \
        if X.shape[1] else np.zeros((J, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums / sizes[:, None]


def _gaussian_no_pooling(X: np.ndarray, y: np.ndarray, codes: np.ndarray, J: int
                         ) -> tuple[np.ndarray, str]:
    """Group intercepts of the least-squares fit of ``y`` on the dummies and ``X``."""
    D = np.zeros((y.size, J))
    D[np.arange(y.size), codes] = 1.0
    A = np.hstack([D, X])
    coef, _, rank, _ = np.linalg.lstsq(A, y, rcond=None)
    if rank < A.shape[1]:
        return np.full(J, np.nan), ("a fixed effect is constant within the groups (or "
                                    "collinear with them): the groups' own intercepts are not "
                                    "identified")
    return coef[:J], ""


def _gaussian_complete(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of ``y`` on the fixed design (intercept first)."""
    return np.linalg.lstsq(X, y, rcond=None)[0]


def _glm_builder(design):
    """``(builder, data kwargs)`` of the family's GLM without random effects."""
    from bayesmle.models import regression

    if design.family == "poisson":
        extra = {"offset": design.offset} if design.offset is not None else {}
        return regression.poisson_regression, "y", extra
    trials = design.trials if design.trials is not None else np.ones(design.n, dtype=np.int64)
    return regression.binomial_regression, "successes", {"trials": trials,
                                                          "link": design.link}


def _glm_fit(design, X: np.ndarray, y: np.ndarray, rows: np.ndarray, intercept: bool):
    """MLE coefficients of the family's GLM on the rows ``rows`` (intercept first)."""
    builder, response, extra = _glm_builder(design)
    kwargs = {k: (np.asarray(v)[rows] if isinstance(v, np.ndarray) else v)
              for k, v in extra.items()}
    spec = builder(X[rows], **{response: y[rows]}, intercept=intercept, **kwargs)
    result, _ = fit_quietly(spec, "mle")
    parts = ([np.atleast_1d(result.params["intercept"])] if intercept else []) + \
        [np.atleast_1d(result.params["coef"])]
    return np.concatenate(parts), result


def _link(design, mean: np.ndarray) -> np.ndarray:
    """The family's link of a mean (a probability, or a Poisson rate)."""
    from scipy import special

    with np.errstate(divide="ignore", invalid="ignore"):
        if design.family == "poisson":
            return np.log(mean)
        if design.link == "probit":
            return special.ndtri(mean)
        if design.link == "cloglog":
            return np.log(-np.log1p(-mean))
        return special.logit(mean)


def _closed_form(design, codes: np.ndarray, J: int) -> np.ndarray:
    """Per-group MLE of the linear predictor without covariates (closed form).

    The link of the group's pooled mean: successes / trials, or counts / sum of exp(offset).
    """
    y = np.asarray(design.y, dtype=float)
    if design.family == "poisson":
        weight = (np.exp(np.asarray(design.offset, dtype=float)) if design.offset is not None
                  else np.ones(design.n))
    else:
        weight = (np.asarray(design.trials, dtype=float) if design.trials is not None
                  else np.ones(design.n))
    return _link(design, np.bincount(codes, weights=y, minlength=J)
                 / np.bincount(codes, weights=weight, minlength=J))


def _extreme_groups(design, codes: np.ndarray, J: int) -> np.ndarray:
    """Groups whose own MLE is infinite: all responses 0 (or all successes, binomial)."""
    y = np.asarray(design.y, dtype=float)
    low = np.bincount(codes, weights=(y > 0).astype(float), minlength=J) == 0
    if design.family == "poisson":
        return low
    trials = (np.asarray(design.trials, dtype=float) if design.trials is not None
              else np.ones(design.n))
    high = np.bincount(codes, weights=(y < trials).astype(float), minlength=J) == 0
    return low | high


def _glm_no_pooling(design, X: np.ndarray, codes: np.ndarray, J: int
                    ) -> tuple[np.ndarray, list[str], str]:
    extreme = _extreme_groups(design, codes, J)
    notes = ["all responses at the edge of the support (all 0, or all successes): the "
             "group's own MLE is infinite" if e else "" for e in extreme]
    keep_groups = np.flatnonzero(~extreme)
    out = np.full(J, np.nan)
    if keep_groups.size == 0:
        return out, notes, "no group has an MLE of its own"
    if X.shape[1] == 0:  # no covariates: each group's own MLE in closed form
        out[keep_groups] = _closed_form(design, codes, J)[keep_groups]
        return out, notes, ""
    rows = np.flatnonzero(~extreme[codes])
    remap = -np.ones(J, dtype=np.int64)
    remap[keep_groups] = np.arange(keep_groups.size)
    D = np.zeros((design.n, keep_groups.size))
    D[rows, remap[codes[rows]]] = 1.0
    try:
        coef, _ = _glm_fit(design, np.hstack([D, X]), np.asarray(design.y), rows, False)
    except MLENotFoundError as exc:
        return out, notes, f"the no-pooling fit has no MLE: {exc}"
    out[keep_groups] = coef[:keep_groups.size]
    return out, notes, ""


@dataclass(frozen=True, eq=False, repr=False)
class ShrinkageResult(StudyResult):
    """Result of :func:`shrinkage`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per level of the grouping factor (in the order of its levels): ``level``,
        ``n`` (rows), ``no_pooling``, ``complete_pooling``, then per method ``partial_<method>``
        and ``shrinkage_<method>`` (``(partial - complete) / (none - complete)``; NaN where
        ``none = complete``), and ``note`` (why a no-pooling estimate is missing). Every
        estimate is the group's level ``alpha_j`` on the linear-predictor scale at its own
        group-level covariates (the module docstring).
    group : str
        The grouping factor.
    methods : tuple of str
        The methods of the partial-pooling columns.
    complete_pooling : float
        The complete-pooling value shared by every group: the intercept of the fit without
        groups. NaN when the model has group-level columns (then each group has its own, in
        ``table["complete_pooling"]``).
    group_level : tuple of str
        The fixed columns constant within every group (``z_j``), left out of the no-pooling
        fit; empty when there are none.
    sd : dict
        Each method's estimate (posterior mean for NUTS) of the random intercept's sd.
    intercept : dict
        Each method's fixed intercept (posterior mean for NUTS). Without group-level columns it
        is the centre the method's partial pooling shrinks towards (group ``j``'s centre is
        ``intercept + z_j . beta_z`` otherwise). It equals the complete-pooling estimate only
        for a balanced Gaussian model without covariates; elsewhere a factor may leave [0, 1].
    mean_shrinkage : dict
        Each method's mean shrinkage factor over the groups with one.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from bayesmle import studies
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"g": np.repeat(list("abcdef"), 5)})
    >>> frame["y"] = np.repeat(rng.normal(0, 1, 6), 5) + rng.normal(0, 1, 30)
    >>> res = studies.shrinkage("y ~ 1 + (1 | g)", frame, methods=("reml",))
    >>> res.table.columns.tolist()
    ['level', 'n', 'no_pooling', 'complete_pooling', 'partial_reml', 'shrinkage_reml', 'note']
    >>> type(res.plot()).__name__
    'Figure'
    """

    group: str = ""
    methods: tuple[str, ...] = ()
    complete_pooling: float = float("nan")
    group_level: tuple[str, ...] = ()
    sd: dict[str, float] | None = None
    intercept: dict[str, float] | None = None
    mean_shrinkage: dict[str, float] | None = None

    def plot(self):
        """Per group (sorted by size): no, partial and complete pooling; sizes below.

        Complete pooling is a horizontal line when it is one value for every group, else a
        marker per group (its value at the group's own group-level covariates).
        """
        from matplotlib.figure import Figure

        t = self.table.sort_values("n", kind="stable").reset_index(drop=True)
        fig = Figure(figsize=(max(6.0, min(0.35 * len(t) + 3, 16.0)), 6.0),
                     layout="constrained")
        ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        x = np.arange(len(t))
        complete = t["complete_pooling"].to_numpy(dtype=float)
        shared = complete[np.isfinite(complete)]
        constant = shared.size > 0 and bool(np.ptp(shared) <= 1e-12 * (1 + np.abs(shared).max()))
        if constant:
            ax.axhline(shared[0], color="0.3", ls="--", lw=1.2,
                       label=f"complete pooling ({shared[0]:.3g})")
        else:
            ax.plot(x, complete, "_", color="0.3", ms=12, mew=1.5,
                    label="complete pooling (at the group's covariates)")
        first_method = self.methods[0]
        centre = (self.intercept or {}).get(first_method, np.nan)
        if np.isfinite(centre) and not self.group_level:
            ax.axhline(centre, color="tab:blue", ls=":", lw=1,
                       label=f"fixed intercept, {first_method.upper()} ({centre:.3g})")
        ax.plot(x, t["no_pooling"], "o", mfc="white", color="tab:gray", ms=6,
                label="no pooling (own estimate)")
        colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
        k = len(self.methods)
        for i, (method, colour) in enumerate(zip(self.methods, colours, strict=False)):
            partial = t[f"partial_{method}"].to_numpy()
            ax.plot(x + 0.12 * (i - (k - 1) / 2), partial, "o", color=colour, ms=5,
                    label=f"partial pooling ({method.upper()})")
        first = t[f"partial_{first_method}"].to_numpy()
        none = t["no_pooling"].to_numpy()
        for xi, a, b in zip(x, none, first, strict=True):
            if np.isfinite(a) and np.isfinite(b) and a != b:
                ax.annotate("", xy=(xi, b), xytext=(xi, a),
                            arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.8})
        what = "level" if self.group_level else "intercept"
        ax.set(ylabel=f"group {what} (linear predictor)",
               title=f"Shrinkage of the {self.group} {what}s (groups sorted by size)")
        ax.legend(fontsize=7)
        ax_n.bar(x, t["n"], color="0.6")
        ax_n.set(ylabel="rows", xlabel=f"level of {self.group}")
        if len(t) <= 40:
            ax_n.set_xticks(x, [str(v) for v in t["level"]], rotation=90, fontsize=7)
        return fig


def _check_methods(methods: Any, family: str, has_priors: bool) -> tuple[str, ...]:
    point = "reml" if family == "gaussian" else "mle"
    if methods is None:
        return (point, "nuts") if has_priors else (point,)
    items = (methods,) if isinstance(methods, str) else methods
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if (not items or not all(isinstance(m, str) and m in METHODS for m in items)
            or len(set(items)) != len(items)):
        raise SpecError(f"`methods` must be a non-empty sequence of distinct methods among "
                        f"{list(METHODS)}, got {methods!r}.")
    if "reml" in items and family != "gaussian":
        raise SpecError(f"`methods` holds 'reml', which is defined for the Gaussian family "
                        f"only; this model's family is {family!r}. Use 'mle' or 'map'.")
    return items


def shrinkage(formula: str | ModelSpec, data: pd.DataFrame | None = None, *,
              family: str | None = None, priors: Mapping[str, Any] | None = None,
              methods: Sequence[str] | None = None,
              nuts_options: Mapping[str, Any] | None = None,
              random_seed: int | None = None) -> ShrinkageResult:
    """No pooling, partial pooling and complete pooling of each group's level.

    The quantity compared per group ``j`` is its level on the linear-predictor scale at its
    own group-level covariates, ``alpha_j = intercept + z_j . beta_z + b_j`` (the group's
    intercept when no fixed column is constant within every group). No pooling fits the fixed
    part without those group-level columns and with the group as a factor (so ``alpha_j`` is
    identified); complete pooling is the fit ignoring the groups evaluated at ``z_j``; partial
    pooling is each method's fixed part at ``z_j`` plus the group's random intercept. See the
    module docstring for why.

    Parameters
    ----------
    formula : str or ModelSpec
        A mixed-model formula with a random intercept, e.g. ``"y ~ x + (1 | g)"`` (fitted on
        ``data`` by :func:`bayesmle.models.glm`), or a mixed-model spec from it -- the way to
        give binomial ``trials``, an ``exposure``/``offset`` or a non-default ``link``.
    data : pandas.DataFrame, optional
        The data of a formula (not used with a spec).
    family : {"gaussian", "bernoulli", "binomial", "poisson"}, optional
        The family of a formula (default ``"gaussian"``; a spec has its own).
    priors : dict, optional
        Priors of a formula's model, by name as :func:`bayesmle.models.glm` takes them
        (``{"sd": bm.HalfNormal(1.0), ...}``). NUTS needs a proper prior on ``sd``.
    methods : sequence of str, optional
        Partial-pooling methods among ``"mle"``, ``"reml"`` (Gaussian), ``"map"``,
        ``"nuts"``. Default: ``("reml", "nuts")`` (Gaussian) or ``("mle", "nuts")``, without
        ``"nuts"`` when no priors are given.
    nuts_options : dict, optional
        Options of the NUTS fit (default ``draws=1000, tune=1000, chains=2``).
    random_seed : int, optional
        Seed of the NUTS fit (drawn from the operating system's entropy when absent; recorded
        in ``settings``).

    Returns
    -------
    ShrinkageResult
        ``.table`` (one row per group), ``.complete_pooling``, ``.group_level``, ``.sd``,
        ``.mean_shrinkage``, ``.plot()``.

    Raises
    ------
    SpecError
        No random intercept in the model, unknown methods, ``reml`` for a non-Gaussian family,
        ``family``/``priors`` given with a spec, or no fixed intercept.

    Examples
    --------
    Six groups of five: REML's BLUPs pull each group mean towards the overall mean by the
    same factor ``sd^2 / (sd^2 + sigma^2 / 5)``:

    >>> import numpy as np, pandas as pd
    >>> from bayesmle import studies
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"g": np.repeat(list("abcdef"), 5)})
    >>> frame["y"] = np.repeat(rng.normal(0, 1, 6), 5) + rng.normal(0, 1, 30)
    >>> res = studies.shrinkage("y ~ 1 + (1 | g)", frame, methods=("reml",))
    >>> factors = res.table["shrinkage_reml"].to_numpy()
    >>> bool(np.ptp(factors) < 1e-8), bool(0 < factors[0] < 1)
    (True, True)

    With a group-level covariate ``z`` (constant within each group) the groups' levels are
    compared, and complete pooling differs per group:

    >>> frame["z"] = np.repeat(np.arange(6.0), 5)
    >>> frame["x"] = rng.normal(size=30)
    >>> res = studies.shrinkage("y ~ x + z + (1 | g)", frame, methods=("reml",))
    >>> res.group_level, bool(res.table["no_pooling"].notna().all())
    (('z',), True)
    >>> bool(res.table["complete_pooling"].nunique() == 6)
    True
    """
    if isinstance(formula, ModelSpec):
        if family is not None or priors is not None:
            raise SpecError("`family` and `priors` apply to a formula; a spec has its own "
                            "(build it with bm.models.glm(..., family=..., priors=...)).")
        spec = formula
    elif isinstance(formula, str):
        if not isinstance(data, pd.DataFrame):
            raise SpecError(f"`data` must be a pandas DataFrame holding the columns of the "
                            f"formula {formula[:80]!r}, got {type(data).__name__}.")
        from bayesmle.models.glm import glm

        spec = glm(formula, data, family="gaussian" if family is None else family,
                   priors=priors)
    else:
        raise SpecError(f"`formula` must be a formula such as 'y ~ x + (1 | g)' or a "
                        f"mixed-model spec from bayesmle.models.glm, got "
                        f"{type(formula).__name__}.")
    design = design_from(spec, name="formula")
    bi = _intercept_block(design)
    block = design.blocks[bi]
    names = list(design.fixed_names)
    if INTERCEPT not in names:
        raise SpecError("`formula` must keep the fixed intercept (no '0 +' or '- 1'): the "
                        "group intercepts are shrunk towards it.")
    has_priors = not all(p.is_flat for k, p in spec.priors.items() if k.startswith("sd"))
    methods = _check_methods(methods, design.family, has_priors)
    random_seed = check_seed(random_seed)
    if nuts_options is not None and not (isinstance(nuts_options, Mapping) and all(
            isinstance(k, str) for k in nuts_options)):
        raise SpecError(f"`nuts_options` must be a dict of NUTS options (e.g. {{'draws': 500, "
                        f"'chains': 2}}), got {nuts_options!r}.")
    if nuts_options and "random_seed" in nuts_options:
        raise SpecError("`nuts_options` must not hold 'random_seed': give the study's "
                        "random_seed instead.")
    nuts = {**_NUTS_DEFAULTS, **dict(nuts_options or {}), "random_seed": random_seed}

    J = block.n_levels
    codes = np.asarray(block.codes, dtype=np.int64)
    sizes = np.bincount(codes, minlength=J)
    rest = [i for i, n in enumerate(names) if n != INTERCEPT]  # the order of params["coef"]
    X_rest = np.asarray(design.X, dtype=float)[:, rest]
    level = _group_level(X_rest, codes, J)  # group-level columns, among X_rest's
    group_level = tuple(names[i] for i, gl in zip(rest, level, strict=True) if gl)
    X_within = X_rest[:, ~level]
    Z = _group_values(X_rest[:, level], codes, J)  # (J, number of group-level columns)
    y = np.asarray(design.y, dtype=float)
    diagnostics: list[Diagnostic] = []
    notes = [""] * J
    if design.family == "gaussian":
        none, why = _gaussian_no_pooling(X_within, y, codes, J)
        coef = _gaussian_complete(np.asarray(design.X, dtype=float), y)
        pooled_intercept = float(coef[names.index(INTERCEPT)])
        pooled_beta = coef[rest]
    else:
        none, notes, why = _glm_no_pooling(design, X_within, codes, J)
        if X_rest.shape[1]:
            coef, pooled = _glm_fit(design, X_rest, np.asarray(design.y),
                                    np.arange(design.n), True)
            pooled_intercept, pooled_beta = float(coef[0]), coef[1:]
            diagnostics.extend(pooled.diagnostics)
        else:
            pooled_intercept = float(_closed_form(design, np.zeros(design.n, dtype=np.int64),
                                                  1)[0])
            pooled_beta = np.zeros(0)
    if group_level:
        complete = pooled_intercept + Z @ pooled_beta[level]
    else:  # one value for every group
        complete = np.full(J, pooled_intercept)
    if why:
        notes = [why] * J
    for j in np.flatnonzero(sizes == 0):
        notes[j] = "no rows"
        none[j] = np.nan

    table = pd.DataFrame({"level": list(block.levels), "n": sizes, "no_pooling": none,
                          "complete_pooling": complete})
    sds, means, centres = {}, {}, {}
    sd_label = block.sd_labels()[block.columns.index(INTERCEPT)]
    sd_index = design.sd_labels().index(sd_label)
    for method in methods:
        options = nuts if method == "nuts" else {}
        result, _ = fit_quietly(spec, method, **options)
        diagnostics.extend(result.diagnostics)
        effects = result.random_effects()
        column = "mean" if method == "nuts" else "estimate"
        part = effects.xs((block.group, INTERCEPT), level=("group", "term"))[column]
        centre = float(result.params["intercept"])
        partial = centre + part.reindex(list(block.levels)).to_numpy()
        if group_level:  # posterior means for NUTS: the mean of the sum is the sum of means
            beta = np.atleast_1d(np.asarray(result.params["coef"], dtype=float))
            partial = partial + Z @ beta[level]
        gap = none - complete
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(np.abs(gap) > 1e-12 * (1.0 + np.abs(complete)),
                              (partial - complete) / gap, np.nan)
        table[f"partial_{method}"] = partial
        table[f"shrinkage_{method}"] = factor
        sds[method] = float(np.atleast_1d(result.params["sd"])[sd_index])
        centres[method] = centre
        finite = factor[np.isfinite(factor)]
        means[method] = float(finite.mean()) if finite.size else float("nan")
    table["note"] = notes
    return ShrinkageResult(
        table=table,
        settings={"formula": spec.options.get("formula", spec.name), "family": design.family,
                  "group": block.group, "group_level": list(group_level),
                  "methods": list(methods),
                  "nuts_options": {k: v for k, v in nuts.items() if k != "random_seed"}
                  if "nuts" in methods else {},
                  "random_seed": random_seed},
        diagnostics=tuple(diagnostics),
        group=block.group,
        methods=methods,
        complete_pooling=float("nan") if group_level else pooled_intercept,
        group_level=group_level,
        sd=sds,
        intercept=centres,
        mean_shrinkage=means,
    )
