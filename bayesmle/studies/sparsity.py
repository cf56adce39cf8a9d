"""The sparsity path: Laplace-prior MAP (the lasso, exact zeros) against the prior scale ``b``.

For each scale ``b`` the MAP under ``Laplace(0, b)`` on the coefficients is the exact
L1-penalised solution, with coefficients exactly zero; the Gaussian prior of the same variance,
``Normal(0, sqrt(2)·b)``, shrinks the same coefficients but never zeroes them; and the NUTS
posterior under the Laplace prior, where sampled, has a mean that is *not* sparse — the
posterior puts no mass on exact zeros, reported as ``P(|coef| < eps)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.priors import Laplace, Normal
from bayesmle.studies._common import build, check_builder, fit_quietly, new_figure
from bayesmle.studies._runner import StudyResult

__all__ = ["SparsityPathResult", "sparsity_path"]


def _check_scales(scales: Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray(scales, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"`scales` must be a sequence of positive numbers, got {scales!r}."
                        ) from None
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(
            values <= 0):
        raise SpecError(f"`scales` must be a non-empty 1-D sequence of positive finite numbers "
                        f"(Laplace prior scales b), got {scales!r}.")
    return np.unique(values)


@dataclass(frozen=True, eq=False, repr=False)
class SparsityPathResult(StudyResult):
    """Result of :func:`sparsity_path`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scale ``b`` (ascending): ``scale``, ``n_zero`` (exact zeros of the Laplace
        MAP), ``converged``, then ``map:<label>`` for every MAP parameter under the Laplace
        prior (``map:coef[x0]``, ``map:intercept``, ``map:sigma``...), ``gaussian:<coef
        label>`` (MAP under ``Normal(0, sqrt(2)·b)``), and where sampled ``post_mean:<coef
        label>`` and ``p_small:<coef label>`` (posterior probability that ``|coef| < eps``).
    coef_labels : list of str
        Labels of the coefficients.
    mle : pandas.Series or None
        The MLE (the limit b → ∞), if it exists.
    eps : float
        The threshold of ``p_small``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import models, studies
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> y = X @ [2.0, 0.0, 0.0] + rng.normal(size=40)
    >>> path = studies.sparsity_path(models.linear_regression, {"X": X, "y": y},
    ...                              scales=[0.01, 0.1, 1.0])
    >>> path.coef_labels
    ('coef[x0]', 'coef[x1]', 'coef[x2]')
    >>> bool((path.coefficients("gaussian") != 0.0).all().all())  # ridge never zeroes
    True
    """

    coef_labels: tuple[str, ...] = ()
    mle: pd.Series | None = None
    eps: float = float("nan")

    def coefficients(self, kind: str = "map") -> pd.DataFrame:
        """Coefficient paths, one column per coefficient: ``kind`` in map/gaussian/post_mean."""
        cols = [f"{kind}:{lab}" for lab in self.coef_labels]
        missing = [c for c in cols if c not in self.table]
        if missing:
            raise SpecError(f"No {kind!r} path in this study; available: "
                            f"{sorted({c.split(':')[0] for c in self.table if ':' in c})}.")
        out = self.table.set_index("scale")[cols]
        out.columns = list(self.coef_labels)
        return out

    def plot(self):
        """glmnet-style paths: Laplace MAP (with posterior means) and Gaussian MAP against b."""
        from matplotlib.ticker import NullLocator

        fig, (ax1, ax2) = new_figure(ncols=2, width=5.5, height=4.2)
        scales = self.table["scale"].to_numpy()
        colours = [f"C{i % 10}" for i in range(len(self.coef_labels))]
        lap = self.coefficients("map")
        for lab, col in zip(self.coef_labels, colours, strict=True):
            ax1.plot(scales, lap[lab], "-", color=col, lw=1.5, label=lab)
        if any(c.startswith("post_mean:") for c in self.table):
            sampled = self.table.dropna(subset=[f"post_mean:{self.coef_labels[0]}"])
            for lab, col in zip(self.coef_labels, colours, strict=True):
                ax1.plot(sampled["scale"], sampled[f"post_mean:{lab}"], "o", mfc="none",
                         color=col, ms=6)
            ax1.plot([], [], "ko", mfc="none", label="posterior mean (NUTS)")
        step = max(1, len(scales) // 6)
        top = ax1.secondary_xaxis("top")
        top.set_xticks(scales[::step], labels=[
            str(int(z)) for z in self.table["n_zero"].to_numpy()[::step]])
        top.xaxis.set_minor_locator(NullLocator())
        top.set_xlabel("exact zeros of the MAP")
        ax1.set(xscale="log", xlabel="Laplace prior scale b", ylabel="coefficient",
                title="Laplace prior: MAP = lasso")
        ax1.axhline(0, color="0.6", lw=0.8)
        ax1.legend(fontsize=7, ncol=2)
        if any(c.startswith("gaussian:") for c in self.table):
            gau = self.coefficients("gaussian")
            for lab, col in zip(self.coef_labels, colours, strict=True):
                ax2.plot(scales, gau[lab], "--", color=col, lw=1.5, label=lab)
        ax2.axhline(0, color="0.6", lw=0.8)
        ax2.set(xscale="log", xlabel="prior scale b (Normal sd = √2·b)",
                ylabel="coefficient", title="Gaussian prior: MAP = ridge (never zero)")
        return fig


def _nuts_columns(spec, coef_labels, eps, opts) -> dict[str, float]:
    post, _ = fit_quietly(spec, "nuts", **opts)
    draws = post.draws()
    out = {}
    for lab in coef_labels:
        out[f"post_mean:{lab}"] = float(draws[lab].mean())
        out[f"p_small:{lab}"] = float((draws[lab].abs() < eps).mean())
    return out


def sparsity_path(
    builder: Callable,
    data: Mapping[str, Any],
    scales: Sequence[float],
    random_seed: int | None = None,
    nuts_at: Sequence[float] = (),
    *,
    gaussian: bool = True,
    eps: float | None = None,
    nuts_options: Mapping[str, Any] | None = None,
) -> SparsityPathResult:
    """Coefficients of a regression's MAP over a grid of Laplace prior scales.

    Parameters
    ----------
    builder : callable
        A regression builder taking ``prior=`` for its coefficients, e.g.
        :func:`bayesmle.models.linear_regression` or
        :func:`bayesmle.models.logistic_regression`.
    data : dict
        The builder's other arguments (``{"X": X, "y": y}``, plus e.g. ``sigma_prior``).
    scales : sequence of float
        Laplace scales ``b`` (small b = strong shrinkage); sorted ascending in the table.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Seed of the NUTS runs.
    nuts_at : sequence of float, optional
        Scales (members of ``scales``) at which the NUTS posterior is also sampled.
    gaussian : bool, default True
        Also trace the MAP under the Gaussian prior ``Normal(0, sqrt(2)·b)`` (same variance).
    eps : float, optional
        Threshold of ``P(|coef| < eps)``; default 1% of the largest absolute MLE coefficient
        (or 1e-3 if the MLE does not exist).
    nuts_options : dict, optional
        NUTS options (default ``draws=1000, tune=1000, chains=2``).

    Returns
    -------
    SparsityPathResult
        ``.table``, ``.coefficients(kind)``, ``.mle``, ``.plot()``.

    Notes
    -----
    Every scale reuses one compiled model (prior scales are data, not graph structure).

    Examples
    --------
    The lasso path of a regression with one real effect among three predictors:

    >>> import numpy as np
    >>> from bayesmle import models, studies
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> y = X @ [2.0, 0.0, 0.0] + rng.normal(size=40)
    >>> path = studies.sparsity_path(models.linear_regression, {"X": X, "y": y},
    ...                              scales=[0.01, 0.1, 1.0])
    >>> path.table["n_zero"].tolist()  # exact zeros at b = 0.01, 0.1, 1
    [3, 2, 0]
    >>> path.table.columns.tolist()[:5]
    ['scale', 'n_zero', 'converged', 'map:intercept', 'map:coef[x0]']
    """
    check_builder(builder)
    if not isinstance(data, Mapping) or "prior" in data:
        raise SpecError("`data` must be a dict of the builder's data arguments (without "
                        "`prior`, which the study sets).")
    values = _check_scales(scales)
    nuts_set = _check_scales(nuts_at) if len(nuts_at) else np.array([])
    stray = [b for b in nuts_set if not np.any(np.isclose(values, b, rtol=1e-12, atol=0))]
    if stray:
        raise SpecError(f"`nuts_at` scales {stray} are not in `scales`.")
    spec0 = build(builder, data, {"prior": Laplace(float(values[0]))})
    if "coef" not in spec0.params:
        raise SpecError(f"`builder` {getattr(builder, '__name__', builder)!r} has no `coef`; "
                        "sparsity_path needs a regression builder.")
    mle = None
    try:
        mle_fit, _ = fit_quietly(spec0, "mle")
        mle = pd.Series(mle_fit.flat_params(), index=mle_fit.labels)
    except BayesMLEError:
        pass
    coef_labels = tuple(spec0.labels("coef", _coef_shape(spec0)))
    if eps is None:
        eps = 0.01 * float(np.max(np.abs(mle[list(coef_labels)]))) if mle is not None else 1e-3
    elif not (np.isfinite(eps) and eps > 0):
        raise SpecError(f"`eps` must be a positive number, got {eps!r}.")
    nuts = {"draws": 1000, "tune": 1000, "chains": 2, "progressbar": False,
            **dict(nuts_options or {})}
    random_seed = check_seed(random_seed)
    seeds = np.random.SeedSequence(int(random_seed)).spawn(len(values))
    rows = []
    for b, seed in zip(values, seeds, strict=True):
        spec = build(builder, data, {"prior": Laplace(float(b))})
        res, ok = fit_quietly(spec, "map")
        row: dict[str, Any] = {"scale": float(b), "n_zero": int(np.sum(res.params["coef"] == 0)),
                               "converged": ok}
        row.update({f"map:{lab}": v for lab, v in zip(res.labels, res.flat_params(),
                                                      strict=True)})
        if gaussian:
            gspec = build(builder, data, {"prior": Normal(float(np.sqrt(2.0) * b))})
            gres, _ = fit_quietly(gspec, "map")
            coef = dict(zip(gres.labels, gres.flat_params(), strict=True))
            row.update({f"gaussian:{lab}": coef[lab] for lab in coef_labels})
        if np.any(np.isclose(nuts_set, b, rtol=1e-12, atol=0)):
            opts = dict(nuts)
            opts.setdefault("random_seed", int(seed.generate_state(1)[0]))
            row.update(_nuts_columns(spec, coef_labels, eps, opts))
        rows.append(row)
    return SparsityPathResult(
        table=pd.DataFrame(rows),
        settings={"builder": getattr(builder, "__name__", repr(builder)),
                  "scales": values.tolist(), "nuts_at": nuts_set.tolist(),
                  "random_seed": random_seed},
        coef_labels=coef_labels, mle=mle, eps=float(eps),
    )


def _coef_shape(spec) -> tuple[int, ...]:
    dims = spec.dims.get("coef", ())
    return tuple(len(spec.coords[d]) for d in dims)
