"""Figures of a report: matplotlib / arviz-plots figures rendered to PNG bytes.

Each figure is written to ``figures/<name>.png`` and embedded in ``index.html`` as a base64
data URI, so the HTML page is self-contained.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import xarray as xr
from matplotlib.figure import Figure

__all__ = ["RenderedFigure", "diagnostic_figures", "forest_figures", "render"]

DPI = 90


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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    import matplotlib.pyplot as plt

    plt.close(fig)  # arviz-plots creates figures through pyplot; a no-op for other figures
    return RenderedFigure(name, title, buf.getvalue(), caption)


def _figure(pc) -> Figure:
    return pc.viz["figure"].item()


def forest_figures(datatrees: Mapping[str, xr.DataTree], params: Sequence[str]
                   ) -> list[RenderedFigure]:
    """One forest plot per parameter (its own axis scale), every method on it."""
    import arviz_plots as azp

    out = []
    for name in params:
        pc = azp.plot_forest(dict(datatrees), var_names=[name], combined=True,
                             ci_probs=(0.5, 0.94), backend="matplotlib")
        pc.add_legend("model", title="method")
        out.append(render(_figure(pc), f"forest_{name}", f"Forest plot: {name}",
                          "Point estimate (circle), 50% (thick) and 94% (thin) intervals per "
                          "method. MLE and MAP: Wald intervals (estimate ± z · standard "
                          "error, drawn from their normal approximation); Laplace: the "
                          "Gaussian approximation at the mode; NUTS: posterior draws."))
    return out


def diagnostic_figures(datatree: xr.DataTree, params: Sequence[str]) -> list[RenderedFigure]:
    """Trace, rank and energy plots of a NUTS DataTree (arviz-plots)."""
    import arviz_plots as azp

    names = list(params)
    out = [
        render(_figure(azp.plot_trace_dist(datatree, var_names=names, backend="matplotlib")),
               "trace", "Trace plots",
               "Left: marginal posterior per chain; right: the chains' draws. Chains should "
               "overlap and look like stationary noise."),
        render(_figure(azp.plot_rank(datatree, var_names=names, backend="matplotlib")),
               "rank", "Rank plots",
               "Fractional ranks of each chain's draws among all draws, as ECDF differences "
               "with a simultaneous envelope: chains that mix stay inside it."),
    ]
    if "sample_stats" in datatree.children and "energy" in datatree["sample_stats"]:
        out.append(render(_figure(azp.plot_energy(datatree, backend="matplotlib")), "energy",
                          "Energy", "Marginal energy against energy transitions, and the "
                          "Bayesian fraction of missing information (BFMI; below 0.3 is a "
                          "warning sign)."))
    return out
