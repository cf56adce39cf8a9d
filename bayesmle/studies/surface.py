"""The log-likelihood surface over two parameters, with one-parameter profiles.

The surface is the log-likelihood on a grid of two scalar parameters (natural scale, e.g.
``mu`` and ``sigma``) with every *other* reported parameter held at its MLE -- for a
two-parameter model such as the Gaussian it is the whole likelihood. Each grid point is mapped to
the model's internal coordinates by Newton's method on the reported values (exact in one step
for coefficients, a few steps for a log-scale parameter) and evaluated with the compiled
model's point function: no graph is rebuilt or recompiled.

The one-parameter profiles maximise the log-likelihood over all other parameters
(:func:`bayesmle.inference.profile.profile_curve`); they are shown next to the slice through
the MLE and the Wald (quadratic) approximation, whose differences are exactly why profile and
Wald intervals differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import SpecError
from bayesmle.inference.bound import bind
from bayesmle.inference.driver import run
from bayesmle.inference.point import PointResult
from bayesmle.inference.profile import parameter_range, profile_curve
from bayesmle.models.spec import ModelSpec
from bayesmle.studies._common import new_figure
from bayesmle.studies._runner import StudyResult, task_rngs

__all__ = ["SurfaceResult", "likelihood_surface"]


@dataclass(frozen=True, eq=False, repr=False)
class SurfaceResult(StudyResult):
    """Result of :func:`likelihood_surface`.

    Attributes
    ----------
    table : pandas.DataFrame
        Long format, one row per grid point: a column per parameter (named by its label)
        and ``loglik`` (other parameters at their MLE).
    params : tuple of str
        The two labels.
    profiles : pandas.DataFrame
        ``parameter``, ``value`` (the grid values of that axis), ``profile_loglik`` (maximised
        over every other parameter), ``slice_loglik`` (others at the MLE) and ``wald_loglik``
        (``loglik_hat − (value − estimate)² / (2 stderr²)``).
    mle, map : PointResult
        The MLE and the MAP of ``spec`` (with its declared priors; equal to the MLE when
        they are flat).
    max_loglik : float
        The log-likelihood at the MLE.
    grid_argmax : dict of str to float
        The grid point with the largest log-likelihood.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import models, studies
    >>> spec = models.gaussian(np.random.default_rng(5).normal(1.0, 1.0, size=20))
    >>> surf = studies.likelihood_surface(spec, grid=5)
    >>> surf.params, round(surf.max_loglik, 4)
    (('mu', 'sigma'), -27.0157)
    >>> surf.mle.method, surf.map.method
    ('mle', 'map')
    """

    params: tuple[str, str] = ("", "")
    profiles: pd.DataFrame | None = None
    mle: PointResult | None = None
    map: PointResult | None = None
    max_loglik: float = float("nan")
    grid_argmax: dict[str, float] | None = None

    def _estimate(self, result: PointResult, label: str) -> float:
        return float(result.flat_params()[result.labels.index(label)])

    def plot(self):
        """Contours of the surface with the MLE and MAP, and the two profiles."""
        import scipy.stats

        p1, p2 = self.params
        fig, axes = new_figure(ncols=3, width=4.3, height=3.8)
        ax = axes[0]
        wide = self.table.pivot(index=p2, columns=p1, values="loglik")
        rel = wide.to_numpy() - self.max_loglik
        probs = (0.5, 0.8, 0.95, 0.99)
        levels = sorted(-scipy.stats.chi2.ppf(probs, 2) / 2)
        fill = ax.contourf(wide.columns, wide.index, np.maximum(rel, 2 * levels[0]), levels=20,
                           cmap="viridis")
        lines = ax.contour(wide.columns, wide.index, rel, levels=levels, colors="w",
                           linewidths=1)
        ax.clabel(lines, fmt={lv: f"{p:.0%}" for lv, p in zip(levels, probs[::-1],
                                                              strict=True)}, fontsize=7)
        fig.colorbar(fill, ax=ax, label="loglik − max")
        for res, marker, name in ((self.mle, "x", "MLE"), (self.map, "o", "MAP")):
            ax.plot(self._estimate(res, p1), self._estimate(res, p2), marker, color="r",
                    mfc="none", ms=9, mew=2, label=name)
        ax.set(xlabel=p1, ylabel=p2, title="log-likelihood (LR regions)")
        ax.legend(fontsize=7)
        threshold = -scipy.stats.chi2.ppf(0.95, 1) / 2
        for ax, label in zip(axes[1:], self.params, strict=True):
            sub = self.profiles[self.profiles["parameter"] == label]
            for col, style, name in (("profile_loglik", "k-", "profile"),
                                     ("slice_loglik", "b--", "slice (others at MLE)"),
                                     ("wald_loglik", "g:", "Wald (quadratic)")):
                ax.plot(sub["value"], sub[col] - self.max_loglik, style, label=name)
            ax.axhline(threshold, color="0.5", lw=1, label="95% threshold")
            ax.axvline(self._estimate(self.mle, label), color="r", lw=1)
            ax.axvline(self._estimate(self.map, label), color="r", ls=":", lw=1)
            ax.set(xlabel=label, ylabel="loglik − max", title=f"profile of {label}",
                   ylim=(4 * threshold, 0.5))
            ax.legend(fontsize=7)
        return fig


def _axis(mle: PointResult, label: str, grid: int, span: float) -> np.ndarray:
    j = mle.labels.index(label)
    est, se = float(mle.flat_params()[j]), float(mle.flat_stderr()[j])
    if not (np.isfinite(se) and se > 0):
        raise SpecError(f"Parameter {label!r} has no finite standard error at the MLE "
                        f"(stderr = {se!r}); the grid is scaled by it.")
    lo, hi = est - span * se, est + span * se
    edge_lo, edge_hi = parameter_range(mle, label)
    # Stay inside the support: a side that would leave it -- or reach it up to rounding, as
    # sigma_hat - 4 se(sigma_hat) = 0 at n = 8 -- is cut at 1/(1 + span) of the way from the
    # edge to the estimate.
    tol = 1e-9 * span * se
    if lo <= edge_lo + tol:
        lo = edge_lo + (est - edge_lo) / (1.0 + span)
    if hi >= edge_hi - tol:
        hi = edge_hi - (edge_hi - est) / (1.0 + span)
    return np.linspace(lo, hi, grid)


def likelihood_surface(spec: ModelSpec, params: Sequence[str] | None = None, grid: int = 60,
                       span: float = 4.0, random_seed: int | None = None) -> SurfaceResult:
    """The log-likelihood over a grid of two parameters, with profiles, MLE and MAP.

    Parameters
    ----------
    spec : ModelSpec
        The model and data (its priors give the MAP; the surface is the likelihood).
    params : sequence of two str, optional
        Labels of the two parameters (default: the first two, e.g. ``mu`` and ``sigma``).
    grid : int, default 60
        Grid points per axis (>= 3). An odd number puts the MLE on a grid node.
    span : float, default 4.0
        Half-width of each axis in MLE standard errors (cut at the edge of the support, e.g.
        sigma > 0).
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Accepted for the common study interface; the surface is deterministic.

    Returns
    -------
    SurfaceResult
        ``.table``, ``.profiles``, ``.mle``, ``.map``, ``.plot()``.

    Raises
    ------
    SpecError
        Bad ``params``, ``grid`` or ``span``, or a model whose reported parameters are not a
        one-to-one function of its internal coordinates.
    MLENotFoundError
        When the data admit no MLE.

    Examples
    --------
    A 5 x 5 grid over a Gaussian's ``mu`` and ``sigma`` (use the default 60 for a figure):

    >>> import numpy as np
    >>> from bayesmle import models, studies
    >>> spec = models.gaussian(np.random.default_rng(5).normal(1.0, 1.0, size=20))
    >>> surf = studies.likelihood_surface(spec, grid=5)
    >>> surf.table.shape, surf.table.columns.tolist()
    ((25, 3), ['mu', 'sigma', 'loglik'])
    >>> surf.profiles.columns.tolist()
    ['parameter', 'value', 'profile_loglik', 'slice_loglik', 'wald_loglik']
    """
    random_seed = check_seed(random_seed)
    task_rngs(random_seed, 1)  # validates the seed (the study is deterministic)
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"`spec` must be a ModelSpec, got {type(spec).__name__}.")
    if isinstance(grid, bool) or not isinstance(grid, int | np.integer) or grid < 3:
        raise SpecError(f"`grid` must be an integer >= 3, got {grid!r}.")
    try:
        span_f = float(span)
    except (TypeError, ValueError):
        span_f = np.nan
    if not (np.isfinite(span_f) and span_f > 0):
        raise SpecError(f"`span` must be a finite number > 0 (standard errors), got {span!r}.")
    mle = run(spec, "mle")
    map_ = run(spec, "map")
    if params is None:
        if len(mle.labels) < 2:
            raise SpecError(f"Model {spec.name!r} has a single parameter {mle.labels}; a "
                            "surface needs two.")
        params = mle.labels[:2]
    params = [params] if isinstance(params, str) else list(params)
    bad = [p for p in params if p not in mle.labels]
    if len(params) != 2 or len(set(params)) != 2 or bad:
        raise SpecError(f"`params` must be two distinct labels of {mle.labels}, got {params!r}.")
    p1, p2 = params
    j1, j2 = mle.labels.index(p1), mle.labels.index(p2)
    ax1, ax2 = _axis(mle, p1, int(grid), span_f), _axis(mle, p2, int(grid), span_f)
    est = mle.flat_params()
    bound = bind(mle.spec)
    x_hat = np.asarray(mle.optimum.x, dtype=float)
    jac = bound.evaluate(x_hat).jacobian
    if jac.shape[0] != jac.shape[1] or np.linalg.matrix_rank(jac) < jac.shape[0]:
        raise SpecError(
            f"The reported parameters of {spec.name!r} ({len(mle.labels)}) are not a "
            f"one-to-one function of its {jac.shape[1]} internal coordinates, so 'the "
            "others held at the MLE' is not defined; likelihood_surface needs such a model.")

    def loglik_at(values: dict[int, float], x0: np.ndarray) -> tuple[float, np.ndarray]:
        target = est.copy()
        for j, v in values.items():
            target[j] = v
        x = bound.x_for(target, x0)
        if x is None:
            return np.nan, x0
        return bound.evaluate(x).loglik, x

    surface = np.full((grid, grid), np.nan)
    x_row = x_hat
    for i, v1 in enumerate(ax1):
        x = x_row
        cols = range(grid) if i % 2 == 0 else range(grid - 1, -1, -1)  # serpentine
        for k in cols:
            surface[i, k], x = loglik_at({j1: v1, j2: ax2[k]}, x)
        x_row = x
    slices = {}
    for j, axis in ((j1, ax1), (j2, ax2)):
        vals, x = [], x_hat
        for v in axis:
            value, x = loglik_at({j: v}, x)
            vals.append(value)
        slices[j] = np.array(vals)
    v1, v2 = np.meshgrid(ax1, ax2, indexing="ij")
    table = pd.DataFrame({p1: v1.ravel(), p2: v2.ravel(), "loglik": surface.ravel()})
    se = mle.flat_stderr()
    frames = []
    for label, j, axis in ((p1, j1, ax1), (p2, j2, ax2)):
        frames.append(pd.DataFrame({
            "parameter": label, "value": axis,
            "profile_loglik": profile_curve(mle, label, axis),
            "slice_loglik": slices[j],
            "wald_loglik": mle.loglik - (axis - est[j]) ** 2 / (2 * se[j] ** 2),
        }))
    best = table.loc[table["loglik"].idxmax()]
    return SurfaceResult(
        table=table,
        settings={"model": spec.name, "params": (p1, p2), "grid": int(grid), "span": span_f,
                  "random_seed": random_seed},
        params=(p1, p2), profiles=pd.concat(frames, ignore_index=True), mle=mle, map=map_,
        max_loglik=float(mle.loglik),
        grid_argmax={p1: float(best[p1]), p2: float(best[p2])},
        diagnostics=(*mle.diagnostics, *map_.diagnostics),
    )
