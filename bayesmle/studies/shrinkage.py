"""Shrinkage: each group's intercept with no pooling, partial pooling and complete pooling.

For a mixed model with a random intercept per level of a grouping factor ``g`` (the first
random-effects term with an intercept column, e.g. ``(1 | g)`` or ``(1 + x | g)``), three
estimates of each group's intercept (on the scale of the linear predictor):

* **no pooling** -- the group's own estimate: the fixed-effects fit with ``g`` as a factor
  (one free intercept per group, the other fixed effects shared), with no distribution over
  the groups. Gaussian: exactly the least-squares fit of the fixed part plus group dummies.
  Other families: the GLM's MLE with group dummies; a group whose own MLE does not exist (all
  its responses 0, or all successes) is NaN with a note, and is left out of that fit;
* **partial pooling** -- per method: ``intercept + b_g`` with ``b_g`` the conditional mode of
  the group's random effect (ML, REML, MAP; the BLUP for the Gaussian family), or the
  posterior mean of ``intercept + b_g`` (NUTS);
* **complete pooling** -- the fit that ignores the groups (the fixed part alone).

The shrinkage factor ``(partial - complete) / (none - complete)`` is 1 for no shrinkage and 0
for complete pooling; for a balanced Gaussian random-intercept model it is
``sd^2 / (sd^2 + sigma^2 / m)`` for every group of size ``m``: small groups are pulled hardest.
Partial pooling shrinks towards the mixed model's own fixed intercept (reported per method),
which is the complete-pooling estimate only in that balanced case: with covariates, unequal
group sizes or a non-Gaussian family a factor can leave [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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
        ``none = complete``), and ``note`` (why a no-pooling estimate is missing).
    group : str
        The grouping factor.
    methods : tuple of str
        The methods of the partial-pooling columns.
    complete_pooling : float
        The intercept of the fit without groups.
    sd : dict
        Each method's estimate (posterior mean for NUTS) of the random intercept's sd.
    intercept : dict
        Each method's fixed intercept (posterior mean for NUTS): the centre its partial
        pooling shrinks towards. It equals the complete-pooling estimate only for a balanced
        Gaussian model without covariates; elsewhere a factor may leave [0, 1].
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
    sd: dict[str, float] | None = None
    intercept: dict[str, float] | None = None
    mean_shrinkage: dict[str, float] | None = None

    def plot(self):
        """Per group (sorted by size): no, partial and complete pooling; sizes below."""
        t = self.table.sort_values("n", kind="stable").reset_index(drop=True)
        fig = Figure(figsize=(max(6.0, min(0.35 * len(t) + 3, 16.0)), 6.0),
                     layout="constrained")
        ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        x = np.arange(len(t))
        ax.axhline(self.complete_pooling, color="0.3", ls="--", lw=1.2,
                   label=f"complete pooling ({self.complete_pooling:.3g})")
        first_method = self.methods[0]
        centre = (self.intercept or {}).get(first_method, np.nan)
        if np.isfinite(centre):
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
        ax.set(ylabel="group intercept (linear predictor)",
               title=f"Shrinkage of the {self.group} intercepts (groups sorted by size)")
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
    """No pooling, partial pooling and complete pooling of each group's intercept.

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
        ``.table`` (one row per group), ``.complete_pooling``, ``.sd``, ``.mean_shrinkage``,
        ``.plot()``.

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
    X_rest = np.asarray(design.X, dtype=float)[:, [i for i, n in enumerate(names)
                                                    if n != INTERCEPT]]
    y = np.asarray(design.y, dtype=float)
    diagnostics: list[Diagnostic] = []
    notes = [""] * J
    if design.family == "gaussian":
        none, why = _gaussian_no_pooling(X_rest, y, codes, J)
        X = np.asarray(design.X, dtype=float)
        complete = float(np.linalg.lstsq(X, y, rcond=None)[0][names.index(INTERCEPT)])
    else:
        none, notes, why = _glm_no_pooling(design, X_rest, codes, J)
        if X_rest.shape[1]:
            coef, pooled = _glm_fit(design, X_rest, np.asarray(design.y),
                                    np.arange(design.n), True)
            complete = float(coef[0])
            diagnostics.extend(pooled.diagnostics)
        else:
            complete = float(_closed_form(design, np.zeros(design.n, dtype=np.int64), 1)[0])
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
        partial = float(result.params["intercept"]) + part.reindex(list(block.levels)).to_numpy()
        gap = none - complete
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(np.abs(gap) > 1e-12 * (1.0 + abs(complete)),
                              (partial - complete) / gap, np.nan)
        table[f"partial_{method}"] = partial
        table[f"shrinkage_{method}"] = factor
        sds[method] = float(np.atleast_1d(result.params["sd"])[sd_index])
        centres[method] = float(result.params["intercept"])
        finite = factor[np.isfinite(factor)]
        means[method] = float(finite.mean()) if finite.size else float("nan")
    table["note"] = notes
    return ShrinkageResult(
        table=table,
        settings={"formula": spec.options.get("formula", spec.name), "family": design.family,
                  "group": block.group, "methods": list(methods),
                  "nuts_options": {k: v for k, v in nuts.items() if k != "random_seed"}
                  if "nuts" in methods else {},
                  "random_seed": random_seed},
        diagnostics=tuple(diagnostics),
        group=block.group,
        methods=methods,
        complete_pooling=complete,
        sd=sds,
        intercept=centres,
        mean_shrinkage=means,
    )
