"""Figures of a report: matplotlib / arviz-plots figures rendered to PNG bytes.

Each figure is written to ``figures/<name>.png`` and embedded in ``index.html`` as a base64
data URI, so the HTML page is self-contained. Every method has one colour
(:data:`METHOD_COLOURS`) in every figure, whichever other methods gave a result; figures made
by arviz-plots are laid out by matplotlib's constrained layout, so that subplot titles never
run into the tick labels above them.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayesmle.compare import METHOD_COLOURS

__all__ = ["METHOD_COLOURS", "PREDICTION_LEVEL", "RenderedFigure", "diagnostic_figures",
           "forest_figure", "forest_figures", "laid_out", "method_colours",
           "observed_predicted_figure", "ppc_figure", "prediction_caption", "rank_figure",
           "render"]

DPI = 90
#: Coverage of the predictive intervals in the observed-against-predicted figure.
PREDICTION_LEVEL = 0.9
#: One colour per method, fixed (Okabe & Ito's colour-blind safe palette): a method keeps its
#: colour whether or not the other methods gave a result.
_OTHER_COLOURS = ("#E69F00", "#56B4E9", "#F0E442", "#000000")


@dataclass(frozen=True)
class RenderedFigure:
    """A figure as PNG bytes, with its file name, title and caption."""

    name: str
    title: str
    png: bytes
    caption: str = ""

    @property
    def data_uri(self) -> str:
        """``data:image/png;base64,...`` for embedding in HTML."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    @property
    def filename(self) -> str:
        """Path of the PNG inside the report folder."""
        return f"figures/{self.name}.png"


def render(fig: Figure, name: str, title: str, caption: str = "") -> RenderedFigure:
    """Render ``fig`` to PNG and release it (closing it if pyplot created it)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)  # arviz-plots creates figures through pyplot; a no-op for the others
    return RenderedFigure(name, title, buf.getvalue(), caption)


def laid_out(fig: Figure) -> Figure:
    """``fig`` with matplotlib's constrained layout (unless it already has a layout engine).

    Room is then made for every subplot's title, tick labels and axis labels, so that a
    two-line title (``coef`` over ``age``) does not overlap the tick labels of the row above.
    """
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    return fig


def _figure(pc) -> Figure:
    return pc.viz["figure"].item()


def method_colours(methods: Sequence[str]) -> list[str]:
    """The fixed colour of each method, in order (other names get the remaining colours).

    Examples
    --------
    >>> from bayesmle.report.figures import method_colours
    >>> method_colours(["map", "nuts"]) == method_colours(["mle", "map", "laplace", "nuts"])[1::2]
    True
    """
    spare = iter(_OTHER_COLOURS * (1 + len(methods) // len(_OTHER_COLOURS)))
    return [METHOD_COLOURS.get(m) or next(spare) for m in methods]


def _aligned(datatrees: Mapping[str, xr.DataTree]) -> dict[str, xr.DataTree]:
    """The trees cut to their common number of chains and draws (a forest plot needs it).

    ``compare`` gives the point methods' Wald draws NUTS's shape even when NUTS is not run,
    so that Laplace's draws may be fewer; the first draws of each chain are kept.
    """
    trees = dict(datatrees)
    shapes = [t["posterior"].sizes for t in trees.values() if "posterior" in t.children]
    cut = {dim: min(s.get(dim, 0) for s in shapes) for dim in ("chain", "draw")}
    if any(len({s.get(dim) for s in shapes}) > 1 for dim in cut):
        trees = {m: t.isel({d: slice(0, n) for d, n in cut.items()}, missing_dims="ignore")
                 for m, t in trees.items()}
    return trees


def forest_figure(datatrees: Mapping[str, xr.DataTree], name: str) -> Figure:
    """The forest plot of parameter ``name``: every method, each in its own fixed colour."""
    import arviz_plots as azp

    trees = _aligned(datatrees)
    pc = azp.plot_forest(trees, var_names=[name], combined=True, ci_probs=(0.5, 0.94),
                         backend="matplotlib", color=method_colours(list(trees)))
    pc.add_legend("model", title="method")
    return _figure(pc)


def forest_figures(datatrees: Mapping[str, xr.DataTree], params: Sequence[str]
                   ) -> list[RenderedFigure]:
    """One forest plot per parameter (its own axis scale), every method on it."""
    out = []
    for name in params:
        out.append(render(forest_figure(datatrees, name), f"forest_{name}",
                          f"Forest plot: {name}",
                          "Point estimate (circle), 50% (thick) and 94% (thin) intervals per "
                          "method. MLE and MAP: Wald intervals (estimate ± z · standard "
                          "error, drawn from their normal approximation); Laplace: the "
                          "Gaussian approximation at the mode; NUTS: posterior draws."))
    return out


def rank_figure(datatree: xr.DataTree, params: Sequence[str]) -> Figure:
    """Rank plots of a NUTS DataTree, one panel per scalar parameter, laid out."""
    import arviz_plots as azp

    return laid_out(_figure(azp.plot_rank(datatree, var_names=list(params),
                                          backend="matplotlib")))


def diagnostic_figures(datatree: xr.DataTree, params: Sequence[str]) -> list[RenderedFigure]:
    """Trace, rank and energy plots of a NUTS DataTree (arviz-plots)."""
    import arviz_plots as azp

    names = list(params)
    out = [
        render(laid_out(_figure(azp.plot_trace_dist(datatree, var_names=names,
                                                    backend="matplotlib"))),
               "trace", "Trace plots",
               "Left: marginal posterior per chain; right: the chains' draws. Chains should "
               "overlap and look like stationary noise."),
        render(rank_figure(datatree, names), "rank", "Rank plots",
               "Fractional ranks of each chain's draws among all draws, as ECDF differences "
               "with a simultaneous envelope: chains that mix stay inside it."),
    ]
    if "sample_stats" in datatree.children and "energy" in datatree["sample_stats"]:
        out.append(render(laid_out(_figure(azp.plot_energy(datatree, backend="matplotlib"))),
                          "energy",
                          "Energy", "Marginal energy against energy transitions, and the "
                          "Bayesian fraction of missing information (BFMI; below 0.3 is a "
                          "warning sign)."))
    return out


_PPC_CAPTIONS = {
    "mle": "the plug-in predictive distribution at the MLE",
    "map": "the plug-in predictive distribution at the MAP",
    "laplace": "the predictive distribution averaged over the Laplace approximation's draws",
    "nuts": "the posterior predictive distribution (averaged over the NUTS draws)",
    "advi": "the predictive distribution averaged over mean-field ADVI's draws",
    "fullrank_advi": "the predictive distribution averaged over full-rank ADVI's draws",
    "pathfinder": "the predictive distribution averaged over Pathfinder's draws",
    "find_map_mle": "the plug-in predictive distribution at pymc.find_MAP's MLE",
    "find_map_map": "the plug-in predictive distribution at pymc.find_MAP's MAP",
}


def ppc_figure(comparison: Any, method: str) -> RenderedFigure:
    """The predictive check of ``method`` (``Comparison.plot_ppc``), rendered."""
    fig = laid_out(comparison.plot_ppc(method))
    what = _PPC_CAPTIONS.get(method, f"the predictive distribution of {method}")
    y = np.asarray(comparison.spec.data.get("y", []))
    if y.size and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all():
        caption = (f"Calibration of {what} (a binary response): the observed event rate "
                   "(PAV-adjusted) against the predicted probability, with the band expected "
                   "under a calibrated model; the diagonal is perfect calibration.")
    else:
        caption = (f"Draws of {what} of the fitted data (coloured) against the observed data "
                   "(black): densities, or ECDFs for counts and classes.")
    return render(fig, f"ppc_{method}", f"Predictive check: {method}", caption)


def observed_predicted_figure(results: Mapping[str, Any], observed: Any,
                              random_seed: int | None = None,
                              level: float = PREDICTION_LEVEL) -> Figure | None:
    """Observed against predicted values, one panel per method, with predictive intervals.

    Each observation is a point at (observed, predicted mean) with the central ``level``
    predictive interval of a new observation as a vertical bar, in the method's colour; the
    diagonal is a perfect prediction and a bar that misses it marks an observation outside
    its interval. Each panel's title gives the share of observations inside their interval.
    None when the response is categorical (class probabilities have no such interval) or
    binary (every interval is [0, 1]: the predictive check's calibration plot shows it).
    """
    import matplotlib.pyplot as plt

    y = np.asarray(observed, dtype=float).ravel()
    if np.isin(y, (0.0, 1.0)).all():
        return None
    if not results or "mean" not in next(iter(results.values())).predict().columns:
        return None  # class probabilities
    tables = {m: res.predict(level=level, random_seed=random_seed) for m, res in results.items()}
    colours = dict(zip(tables, method_colours(list(tables)), strict=True))
    fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables) + 0.6, 3.8),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    low = min(y.min(), *(t["lower"].min() for t in tables.values()))
    high = max(y.max(), *(t["upper"].max() for t in tables.values()))
    for ax, (method, table) in zip(axes[0], tables.items(), strict=True):
        mean = table["mean"].to_numpy(dtype=float)
        lower = table["lower"].to_numpy(dtype=float)
        upper = table["upper"].to_numpy(dtype=float)
        inside = float(np.mean((y >= lower) & (y <= upper)))
        ax.plot([low, high], [low, high], color="0.5", linestyle="--", linewidth=1)
        ax.errorbar(y, mean, yerr=[np.clip(mean - lower, 0, None), np.clip(upper - mean, 0, None)],
                    fmt="o", markersize=3, color=colours[method], ecolor=colours[method],
                    elinewidth=0.8, capsize=0)
        ax.set_title(f"{method}: {inside:.0%} inside", fontsize=10)
        ax.set_xlabel("observed")
    axes[0][0].set_ylabel(f"predicted mean, {level:.0%} interval")
    return fig


def prediction_caption(level: float = PREDICTION_LEVEL) -> str:
    """Caption of :func:`observed_predicted_figure`."""
    return (f"Each observation at (observed, predicted mean) with the central {level:.0%} "
            "predictive interval of a new observation (MLE and MAP: exact quantiles of the "
            "plug-in distribution; Laplace and NUTS: quantiles of the predictive draws). The "
            "dashed diagonal is a perfect prediction; a bar that misses it marks an "
            f"observation outside its interval. About {level:.0%} should be inside.")
