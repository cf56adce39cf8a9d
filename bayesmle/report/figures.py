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

import xarray as xr
from matplotlib.figure import Figure

from bayesmle.compare import METHOD_COLOURS

__all__ = ["METHOD_COLOURS", "RenderedFigure", "diagnostic_figures", "forest_figure",
           "forest_figures", "laid_out", "method_colours", "rank_figure", "render"]

DPI = 90
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
