"""Reports: atomic writing, and a report's files checked against numbers computed here.

The report of a small Gaussian spec is built once per module; its CSV, JSON, Markdown and HTML
are compared with a direct call of the Python API (``bayesmle.fit``) and with numpy.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmle as bm
from bayesmle.errors import SpecError
from bayesmle.report import atomic_directory, atomic_write_text, build_report, write_index
from bayesmle.report.tables import fmt, markdown_table
from bayesmle.specfile import load

SPEC = """
name = "tiny"
title = "Tiny Gaussian"
description = "Twenty draws.\\n\\nA second paragraph."

[model]
builder = "gaussian"

[data]
source = "synthetic"
n = 20
seed = 5
truth = { mu = 3.0, sigma = 1.5 }

[priors]
mu = "Normal(10)"
sigma = "HalfNormal(5)"

[fit]
draws = 150
tune = 150
chains = 2
random_seed = 7

[studies.bias]
ns = [3, 10]
reps = 20
mu = 3.0
sigma = 1.5
"""

PNG = b"\x89PNG\r\n\x1a\n"


# -- atomic writing -------------------------------------------------------------------------------
def test_atomic_directory_replaces_on_success(tmp_path):
    target = tmp_path / "r"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".r.tmp-")
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()  # nothing visible changes before the end
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no leftovers


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_directory_keeps_the_previous_on_failure(tmp_path, exc):
    target = tmp_path / "r"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(type(exc)), atomic_directory(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise exc
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_leftovers_of_killed_runs_are_cleaned_or_restored(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)  # a process that has exited
    (tmp_path / f".r.tmp-{pid}-abc").mkdir()
    old = tmp_path / f".r.old-{pid}-abc"  # died between the two renames of a swap
    old.mkdir()
    (old / "index.html").write_text("previous")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".r.tmp-{other.pid}-live"  # another run, still writing
        live.mkdir()
        with atomic_directory(tmp_path / "r") as tmp:
            (tmp / "index.html").write_text("new")
    finally:
        other.kill()
        other.wait()
    assert (tmp_path / "r" / "index.html").read_text() == "new"
    assert not (tmp_path / f".r.tmp-{pid}-abc").exists() and not old.exists()
    assert live.exists()  # not ours to delete


def test_atomic_write_text(tmp_path):
    path = tmp_path / "a" / "index.html"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]


# -- formatting -----------------------------------------------------------------------------------
def test_fmt_and_markdown():
    assert fmt(np.nan) == "—" and fmt(0.0) == "0" and fmt(1234.5678) == "1235"
    assert fmt(1.23456e-7) == "1.235e-07" and fmt(True) == "yes" and fmt(20000) == "20,000"
    frame = pd.DataFrame({"a": [1.0, np.nan]}, index=pd.Index(["x|y", "z"], name="p"))
    assert markdown_table(frame) == "| p | a |\n|---|---|\n| x\\|y | 1 |\n| z | — |"


# -- one report, checked --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    (folder / "tiny.toml").write_text(SPEC)
    spec = load(folder / "tiny.toml")
    steps = []
    result = build_report(spec, folder / "reports", progress=steps.append)
    write_index(folder / "reports")
    return spec, result, steps


def test_report_files(report):
    spec, result, steps = report
    assert steps == ["fitting mle, map, laplace, nuts", "figures", "study bias",
                     "writing files"]
    files = {str(p.relative_to(result.path)) for p in result.path.rglob("*") if p.is_file()}
    expected = {"index.html", "report.md", "manifest.json", "spec.toml",
                "tables/comparison.csv", "tables/data_summary.csv", "tables/optimizer.csv",
                "tables/diagnostics.csv", "tables/study_bias.csv", "fits/mle.nc", "fits/map.nc",
                "fits/laplace.nc", "fits/nuts.nc", "figures/forest_mu.png",
                "figures/forest_sigma.png", "figures/trace.png", "figures/rank.png",
                "figures/energy.png", "figures/study_bias.png", "tables/predictive.csv",
                "figures/ppc_mle.png", "figures/ppc_map.png", "figures/ppc_laplace.png",
                "figures/ppc_nuts.png"}
    assert files == expected
    for png in result.path.glob("figures/*.png"):
        assert png.read_bytes()[:8] == PNG
    assert (result.path / "spec.toml").read_text() == SPEC
    # nothing but the report (and the index) beside it: no temporary folder left
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["index.html", "tiny"]


def test_comparison_csv_matches_the_python_api(report):
    spec, result, _ = report
    table = pd.read_csv(result.path / "tables" / "comparison.csv", index_col="parameter")
    model = spec.model_spec()
    y = model.data["y"]
    mle = bm.fit(model, "mle")
    map_ = bm.fit(model, "map")
    # the MLE of a Gaussian in closed form, and the API's numbers
    np.testing.assert_allclose(table.loc["mu", "mle_estimate"], y.mean(), rtol=1e-12)
    np.testing.assert_allclose(table.loc["sigma", "mle_estimate"], y.std(), rtol=1e-9)
    np.testing.assert_allclose(table["mle_stderr"], mle.flat_stderr(), rtol=1e-9)
    np.testing.assert_allclose(table["map_estimate"], map_.flat_params(), rtol=1e-9)
    # the NUTS columns are the saved draws' summaries
    post = xr.open_datatree(result.path / "fits" / "nuts.nc", engine="h5netcdf")
    draws = post["posterior"]["mu"].to_numpy()
    assert draws.shape == (2, 150)
    np.testing.assert_allclose(table.loc["mu", "nuts_mean"], draws.mean(), rtol=1e-12)
    np.testing.assert_allclose(table.loc["mu", "nuts_sd"], draws.std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(table.loc["mu", "nuts_eti_0.97"], np.quantile(draws, 0.97),
                               rtol=1e-12)
    fit = xr.open_datatree(result.path / "fits" / "mle.nc", engine="h5netcdf")
    np.testing.assert_allclose(fit["fit"]["mean_vector"].to_numpy(), mle.flat_params(),
                               rtol=1e-12)


def test_data_summary_matches_numpy(report):
    spec, result, _ = report
    y = spec.model_spec().data["y"]
    summary = pd.read_csv(result.path / "tables" / "data_summary.csv", index_col="variable")
    row = summary.loc["y"]
    assert row["count"] == 20
    np.testing.assert_allclose([row["mean"], row["sd"], row["median"], row["max"]],
                               [y.mean(), y.std(ddof=1), np.median(y), y.max()], rtol=1e-12)


def test_manifest(report):
    spec, result, _ = report
    text = (result.path / "manifest.json").read_text()
    manifest = json.loads(text)  # strict JSON: no NaN
    assert "NaN" not in text
    assert manifest["name"] == "tiny" and manifest["spec"]["builder"] == "gaussian"
    assert manifest["seeds"] == {"fit": 7, "data": 5, "studies": {"bias": 7}}
    assert manifest["fit"]["draws"] == 150 and manifest["fit"]["chains"] == 2
    for pkg in ("python", "bayesmle", "pymc", "arviz-plots", "numpy"):
        assert pkg in manifest["versions"]
    timings = manifest["timings_seconds"]
    assert {"fit", "figures", "study.bias", "total"} <= set(timings)
    assert timings["total"] >= timings["fit"] > 0
    assert sorted(manifest["files"]) == manifest["files"]
    for f in manifest["files"]:
        assert (result.path / f).is_file(), f
    assert manifest["warnings"] == [
        {k: getattr(w, k) for k in ("source", "severity", "message", "category")}
        for w in result.warnings]


def test_html_is_self_contained_and_shows_the_numbers(report):
    spec, result, _ = report
    html = (result.path / "index.html").read_text()
    # every image is embedded and decodes to a PNG; nothing is loaded from elsewhere
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 10
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html
    table = pd.read_csv(result.path / "tables" / "comparison.csv", index_col="parameter")
    assert f"<td class=\"\">{fmt(table.loc['mu', 'mle_estimate'])}</td>" in html
    for section in ("warnings", "model", "data", "comparison", "forest", "diagnostics",
                    "prediction", "studies", "files"):
        assert f'<section id="{section}">' in html
    assert "y_i ~ Normal(mu, sigma)" in html and "mu ~ Normal(sigma=10, mu=0)" in html
    assert "A second paragraph." in html


def test_markdown_links_existing_figures(report):
    _, result, _ = report
    md = (result.path / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 10
    for link in links:
        assert (result.path / link).is_file()
    assert md.startswith("# Tiny Gaussian")
    assert "| parameter | mle_estimate |" in md


def test_index_lists_the_report(report):
    _, result, _ = report
    html = (result.path.parent / "index.html").read_text()
    assert 'href="tiny/index.html"' in html and "Tiny Gaussian" in html


def test_failing_study_leaves_the_previous_report(report, tmp_path):
    spec, result, _ = report
    before = {p: p.read_bytes() for p in result.path.rglob("*") if p.is_file()}
    bad = tmp_path / "tiny.toml"
    bad.write_text(SPEC.replace("sigma = 1.5\n", "sigma = -1.5\n").replace(
        "draws = 150", "draws = 50"))
    with pytest.raises(SpecError, match=r"\[studies\.bias\] failed.*sigma"):
        build_report(load(bad), result.path.parent)
    after = {p: p.read_bytes() for p in result.path.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["index.html", "tiny"]


def test_warnings_are_visible(tmp_path):
    """An MLE that does not exist is an error in the warnings section, not a crash."""
    text = """
name = "all_heads"
[model]
builder = "bernoulli"
[data]
source = "csv"
path = "heads.csv"
[priors]
p = "Beta(2, 2)"
[fit]
methods = ["mle", "map"]
"""
    (tmp_path / "heads.csv").write_text("y\n1\n1\n1\n1\n")
    (tmp_path / "s.toml").write_text(text)
    result = build_report(load(tmp_path / "s.toml"), tmp_path / "out")
    assert [(w.source, w.severity) for w in result.warnings] == [("mle", "error")]
    html = (result.path / "index.html").read_text()
    assert "The MLE of p is on the boundary" in html
    assert '<span class="tag error">error</span><strong>mle</strong>' in html
    table = pd.read_csv(result.path / "tables" / "comparison.csv", index_col="parameter")
    assert list(table.columns) == ["map_estimate", "map_stderr"]
    np.testing.assert_allclose(table.loc["p", "map_estimate"], 5 / 6, rtol=1e-9)  # (k+1)/(n+2)
    assert not Path(result.path / "fits" / "nuts.nc").exists()
