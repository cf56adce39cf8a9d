"""compare(..., predictive=True): leave-one-out accuracy of every method side by side.

The table's assembly is checked against numpy on the methods' own ``loo().pointwise``; a
method whose LOO fails is listed with its error, the others are tabulated; the predictive
checks are figures in each method's colour. (Until ``result.loo()`` lands, tests/conftest.py
gives the results a stand-in with the same contract; the tests then run on the real one.)
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import bayesmle as bm
from bayesmle.compare import METHOD_COLOURS, PREDICTIVE_COLUMNS, compare
from bayesmle.errors import ConvergenceError, SpecError
from bayesmle.inference.point import PointResult

COLUMNS = ["elpd", "se", "p", "kind", "elpd_diff", "diff_se", "warning", "aic_elpd"]
KINDS = {"exact", "kfold", "psis", "psis+refit", "psis-approximate"}


def regression_spec():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(25, 2))
    y = 0.5 + X @ np.array([1.0, -0.5]) + rng.normal(scale=0.8, size=25)
    return bm.models.linear_regression(X, y, prior=bm.Normal(1.0),
                                       sigma_prior=bm.HalfNormal(3.0))


@pytest.fixture(scope="module")
def comparison():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small NUTS run: sampling diagnostics are not tested
        return compare(regression_spec(), draws=200, tune=300, chains=2, random_seed=11,
                       warn=False, predictive=True)


def test_one_row_per_method_with_the_columns(comparison):
    table = comparison.predictive
    assert list(table.index) == ["mle", "map", "laplace", "nuts"]
    assert list(table.columns) == COLUMNS == list(PREDICTIVE_COLUMNS)
    assert comparison.predictive_errors == {}
    assert set(table["kind"]) <= KINDS
    assert np.isfinite(table[["elpd", "se", "p", "elpd_diff", "diff_se"]].to_numpy()).all()
    assert (table["se"] > 0).all()
    # -AIC/2 for the MLE only: loglik - k with k = 4 free parameters
    mle = comparison.results["mle"]
    assert table.loc["mle", "aic_elpd"] == pytest.approx(-mle.aic / 2, rel=1e-12)
    assert table.loc["mle", "aic_elpd"] == pytest.approx(mle.loglik - 4, rel=1e-12)
    assert table.drop(index="mle")["aic_elpd"].isna().all()
    for method, loo in comparison.loo.items():
        assert table.loc[method, "elpd"] == pytest.approx(loo.elpd, rel=1e-12)


def test_differences_against_numpy(comparison):
    """elpd_diff and diff_se recomputed from each method's own loo().pointwise."""
    pointwise = {m: res.loo(random_seed=comparison.random_seed).pointwise["elpd"]
                 .to_numpy(dtype=float) for m, res in comparison.results.items()}
    elpd = {m: pw.sum() for m, pw in pointwise.items()}
    best = max(elpd, key=elpd.get)
    table = comparison.predictive
    assert table.loc[best, "elpd_diff"] == 0.0 and table.loc[best, "diff_se"] == 0.0
    assert (table["elpd_diff"] >= 0).all()
    for method, pw in pointwise.items():
        assert pw.shape == (25,)
        d = pointwise[best] - pw
        np.testing.assert_allclose(table.loc[method, "elpd_diff"], elpd[best] - elpd[method],
                                   rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(table.loc[method, "diff_se"],
                                   np.sqrt(d.size * np.var(d)), rtol=1e-9, atol=1e-12)


def test_predictive_off_by_default():
    spec = bm.models.gaussian(np.array([0.3, -1.2, 0.8, 2.0, 0.1]))
    comp = compare(spec, methods=("mle",), random_seed=1)
    assert comp.predictive is None
    assert comp.loo == {} and comp.predictive_errors == {}


def test_a_failing_loo_is_listed_not_fatal(monkeypatch):
    real = PointResult.loo

    def loo(self, **kwargs):
        if self.method == "map":
            raise ConvergenceError("refit 3 of the MAP did not converge")
        return real(self, **kwargs)

    monkeypatch.setattr(PointResult, "loo", loo)
    comp = compare(regression_spec(), methods=("mle", "map"), random_seed=2,
                   predictive=True)
    assert comp.predictive_errors == {
        "map": "ConvergenceError: refit 3 of the MAP did not converge"}
    assert list(comp.predictive.index) == ["mle"]
    assert comp.predictive.loc["mle", "elpd_diff"] == 0.0
    assert set(comp.results) == {"mle", "map"}  # the fit itself is untouched


def test_ppc_figure_in_the_method_colour(comparison):
    from matplotlib.colors import to_hex

    for method in comparison.results:
        fig = comparison.plot_ppc(method, num_samples=20)
        assert isinstance(fig, Figure)
        colours = {to_hex(line.get_color()) for ax in fig.axes for line in ax.get_lines()}
        assert METHOD_COLOURS[method].lower() in colours, (method, colours)
        plt.close(fig)
    fig = comparison.plot_ppc()  # the first method
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_ppc_of_a_binary_response_is_a_calibration_plot():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 1))
    y = (rng.random(40) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    comp = compare(bm.models.logistic_regression(X, y), methods=("mle",), random_seed=0)
    fig = comp.plot_ppc("mle")
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_bad_arguments(comparison):
    spec = bm.models.gaussian(np.array([0.3, -1.2, 0.8]))
    with pytest.raises(SpecError, match="predictive"):
        compare(spec, methods=("mle",), predictive="yes")
    with pytest.raises(SpecError, match="method with a result"):
        comparison.plot_ppc("bogus")
    with pytest.raises(SpecError, match="num_samples"):
        comparison.plot_ppc("mle", num_samples=0)
    with pytest.raises(SpecError, match="random_seed|seed"):
        comparison.plot_ppc("mle", random_seed=-1)
    assert isinstance(comparison.predictive, pd.DataFrame)


# -- the report's Prediction section --------------------------------------------------------------
REGRESSION = """
name = "{name}"
title = "Small regression"
[model]
builder = "linear_regression"
formula = "y ~ x1 + x2"
[data]
source = "csv"
path = "reg.csv"
[priors]
coef = "Normal(1)"
sigma = "HalfNormal(3)"
[fit]
methods = ["mle", "map", "laplace"]
draws = 200
chains = 2
random_seed = 4
{extra}
"""


def regression_report(folder, name="reg", extra=""):
    from bayesmle.report import build_report
    from bayesmle.specfile import load

    rng = np.random.default_rng(21)
    x1, x2 = rng.normal(size=(2, 30)).round(4)
    y = (1.0 + 0.8 * x1 - 0.3 * x2 + rng.normal(scale=0.7, size=30)).round(4)
    pd.DataFrame({"y": y, "x1": x1, "x2": x2}).to_csv(folder / "reg.csv", index=False)
    (folder / f"{name}.toml").write_text(REGRESSION.format(name=name, extra=extra))
    spec = load(folder / f"{name}.toml")
    return spec, build_report(spec, folder / "reports")


def section(html: str, name: str) -> str:
    import re

    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, name
    return match.group(1)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return regression_report(tmp_path_factory.mktemp("prediction"))


def test_report_has_the_prediction_section(report):
    import base64
    import re

    from bayesmle.report.tables import fmt

    spec, result = report
    assert not result.partial
    html = (result.path / "index.html").read_text()
    assert '<a href="#prediction">Prediction</a>' in html
    part = section(html, "prediction")
    assert '<table id="predictive-table">' in part
    # the table is the API's: compare() with the same settings
    comp = compare(spec.model_spec(), methods=spec.fit.methods, random_seed=4, warn=False,
                   predictive=True, **spec.fit.compare_options())
    csv = pd.read_csv(result.path / "tables" / "predictive.csv", index_col="method")
    assert list(csv.index) == ["mle", "map", "laplace"]
    assert list(csv.columns) == COLUMNS
    np.testing.assert_allclose(csv[["elpd", "se", "elpd_diff", "diff_se"]],
                               comp.predictive[["elpd", "se", "elpd_diff", "diff_se"]],
                               rtol=1e-9, atol=1e-12)
    for method in ("mle", "map", "laplace"):
        assert f"<td class=\"\">{fmt(comp.predictive.loc[method, 'elpd'])}</td>" in part
    assert f"<td class=\"\">{fmt(comp.predictive.loc['mle', 'aic_elpd'])}</td>" in part
    # a predictive check per method, and observed against predicted (a regression)
    ids = re.findall(r'<figure id="fig-([^"]+)">', part)
    assert ids == ["ppc_mle", "ppc_map", "ppc_laplace", "observed_predicted"]
    for src in re.findall(r'<img src="data:image/png;base64,([^"]+)"', part):
        assert base64.b64decode(src)[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ids:
        assert (result.path / "figures" / f"{name}.png").is_file()
    md = (result.path / "report.md").read_text()
    assert "## Prediction" in md and "(figures/observed_predicted.png)" in md
    manifest = (result.path / "manifest.json").read_text()
    assert '"predictive": true' in manifest and "tables/predictive.csv" in manifest


def test_observed_predicted_figure_in_method_colours(report):
    from test_report_figures import colours_in

    _, result = report
    png = (result.path / "figures" / "observed_predicted.png").read_bytes()
    assert colours_in(png) == {"mle", "map", "laplace"}


def test_a_failing_prediction_part_is_an_error_box(tmp_path, monkeypatch):
    from bayesmle.report import figures as figs

    real = PointResult.loo

    def loo(self, **kwargs):
        if self.method == "map":
            raise ConvergenceError("refit 3 of the MAP did not converge")
        return real(self, **kwargs)

    def broken(*args, **kwargs):
        raise RuntimeError("no scatter today")

    real_ppc = figs.ppc_figure

    def ppc(comparison, method):
        if method == "laplace":  # a SpecError here means "does not apply", not a bad spec
            raise SpecError("no predictive check for this one")
        return real_ppc(comparison, method)

    monkeypatch.setattr(PointResult, "loo", loo)
    monkeypatch.setattr(figs, "observed_predicted_figure", broken)
    monkeypatch.setattr(figs, "ppc_figure", ppc)
    _, result = regression_report(tmp_path, "broken")
    assert [(f.part, f.section, f.error) for f in result.failures] == [
        ("LOO map", "prediction", "ConvergenceError"),
        ("predictive check laplace", "prediction", "SpecError"),
        ("observed against predicted", "prediction", "RuntimeError")]
    html = (result.path / "index.html").read_text()
    part = section(html, "prediction")
    assert 'id="failed-LOO-map"' in part and "refit 3 of the MAP did not converge" in part
    assert 'id="failed-observed-against-predicted"' in part and "no scatter today" in part
    # the rest of the section is there: the other methods' rows and the predictive checks
    assert '<table id="predictive-table">' in part and '<td class="label">mle</td>' in part
    assert '<td class="label">map</td>' not in part
    assert 'id="fig-ppc_map"' in part and 'id="fig-observed_predicted"' not in part
    assert 'id="failed-predictive-check-laplace"' in part and 'id="fig-ppc_laplace"' not in part
    assert '<table id="comparison-table">' in section(html, "comparison")


def test_prediction_can_be_turned_off(tmp_path):
    _, result = regression_report(tmp_path, "off", "predictive = false")
    html = (result.path / "index.html").read_text()
    assert "Not requested" in section(html, "prediction")
    assert not list(result.path.glob("figures/ppc_*.png"))
    assert not (result.path / "tables" / "predictive.csv").exists()
