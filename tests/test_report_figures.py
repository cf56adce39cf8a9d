"""Report figures: each method keeps its colour whichever methods gave a result (checked on the
rendered pixels), and the rank plots' two-line subplot titles never overlap tick labels
(checked on matplotlib's drawn bounding boxes).
"""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pytest
import xarray as xr

import bayesmle as bm
from bayesmle.compare import compare, point_datatree
from bayesmle.report import figures as figs


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def colours_in(png: bytes) -> set[str]:
    """The methods whose colour appears exactly (as pixels) in a PNG."""
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    pixels = np.rint(pixels * 255).astype(int).reshape(-1, 3)
    present = {tuple(p) for p in np.unique(pixels, axis=0)}
    return {m for m, c in figs.METHOD_COLOURS.items() if rgb(c) in present}


@pytest.fixture(scope="module")
def datatrees():
    y = np.random.default_rng(12).normal(1.0, 2.0, size=30)
    spec = bm.models.gaussian(y, mu_prior=bm.Normal(1.0), sigma_prior=bm.HalfNormal(5.0))
    comparison = compare(spec, methods=("mle", "map", "laplace"), random_seed=3, warn=False)
    return comparison.datatrees


def test_a_method_keeps_its_colour_when_others_fail(datatrees):
    every = figs.render(figs.forest_figure(datatrees, "mu"), "all", "all").png
    assert colours_in(every) == {"mle", "map", "laplace"}
    # the MLE failed: MAP and Laplace are drawn in their own colours, not in the MLE's
    without_mle = {m: datatrees[m] for m in ("map", "laplace")}
    png = figs.render(figs.forest_figure(without_mle, "mu"), "some", "some").png
    assert colours_in(png) == {"map", "laplace"}
    only_laplace = figs.render(figs.forest_figure({"laplace": datatrees["laplace"]}, "mu"),
                               "one", "one").png
    assert colours_in(only_laplace) == {"laplace"}


def test_forest_plot_of_methods_with_different_numbers_of_draws():
    y = np.random.default_rng(5).normal(size=20)
    spec = bm.models.gaussian(y, mu_prior=bm.Normal(1.0))
    comp = compare(spec, methods=("mle", "laplace"), random_seed=1, draws=50, warn=False)
    # compare() aligns its trees; a user's own trees need not be aligned
    trees = {**comp.datatrees, "mle": point_datatree(comp.results["mle"], draws=1000)}
    shapes = {m: dict(t["posterior"].sizes) for m, t in trees.items()}
    assert shapes["mle"]["draw"] != shapes["laplace"]["draw"]
    png = figs.render(figs.forest_figure(trees, "mu"), "mixed", "mixed").png
    assert colours_in(png) == {"mle", "laplace"}


def test_method_colours_are_fixed_and_distinct():
    colours = figs.method_colours(["mle", "map", "laplace", "nuts", "advi"])
    assert colours[:4] == [figs.METHOD_COLOURS[m] for m in ("mle", "map", "laplace", "nuts")]
    assert len(set(colours)) == 5
    assert figs.method_colours(["nuts"]) == [figs.METHOD_COLOURS["nuts"]]


def posterior(seed: int = 0) -> xr.DataTree:
    """Four chains of independent draws of an intercept, ten labelled coefficients, sigma."""
    rng = np.random.default_rng(seed)
    features = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    post = xr.Dataset({
        "intercept": (("chain", "draw"), rng.normal(size=(4, 300))),
        "coef": (("chain", "draw", "feature"), rng.normal(size=(4, 300, 10))),
        "sigma": (("chain", "draw"), rng.gamma(5.0, size=(4, 300))),
    }, coords={"chain": np.arange(4), "draw": np.arange(300), "feature": features})
    return xr.DataTree.from_dict({"posterior": post})


def test_rank_plot_titles_do_not_overlap_tick_labels():
    fig = figs.rank_figure(posterior(), ["intercept", "coef", "sigma"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 12
    titles = [ax.title.get_window_extent(renderer) for ax in axes if ax.get_title()]
    assert len(titles) == 12
    ticks = [t.get_window_extent(renderer) for ax in axes for t in ax.get_xticklabels()
             if t.get_visible() and t.get_text()]
    labels = [ax.xaxis.label.get_window_extent(renderer) for ax in axes
              if ax.xaxis.label.get_text()]
    assert ticks
    overlaps = [(i, j) for i, title in enumerate(titles)
                for j, box in enumerate(ticks + labels) if title.overlaps(box)]
    assert overlaps == []
    import matplotlib.pyplot as plt

    plt.close(fig)
