"""Reports that degrade gracefully: a part that fails (a study, the fit, a figure) is an error
box in its section, the rest of the report is complete (checked against the Python API), the
manifest and the index say the report is partial. Interruptions and invalid specs still stop a
report and leave the previous one intact; unsafe report names never touch the index of all
reports and never leave a temporary file behind.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmle as bm
import bayesmle.studies
from bayesmle.errors import ConvergenceError, MLENotFoundError, SpecError
from bayesmle.report import (
    MAX_NAME,
    atomic_directory,
    atomic_write_text,
    build_report,
    write_index,
)
from bayesmle.report import build as build_module
from bayesmle.report import figures as figs
from bayesmle.report.tables import fmt
from bayesmle.specfile import load

SPEC = """
name = "wobbly"
title = "Gaussian with failing parts"

[model]
builder = "gaussian"

[data]
source = "synthetic"
n = 25
seed = 3
truth = { mu = 2.0, sigma = 1.5 }

[priors]
mu = "Normal(10)"
sigma = "HalfNormal(5)"

[fit]
methods = ["mle", "map"]
random_seed = 4

[studies.bias]
ns = [3, 10]
reps = 5
mu = 2.0
sigma = 1.5

[studies.likelihood_surface]
grid = 7

[studies.map_to_mle]
ns = [10, 30]
reps = 3
"""

BIAS_MESSAGE = "the bias study did not converge: <b>sigma</b> & co"
SURFACE_MESSAGE = "surface broke: <script>alert(1)</script>"


def leftovers(folder: Path) -> list[str]:
    """Temporary files and folders of the atomic writers."""
    return sorted(p.name for p in folder.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


def section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, name
    return match.group(1)


def study_block(html: str, name: str) -> str:
    """The part of the studies section that belongs to study ``name``."""
    studies = section(html, "studies")
    start = studies.index(f'<h3 id="study-{name}">')
    end = studies.find("<h3 ", start + 1)
    return studies[start:end if end > 0 else None]


# -- studies, figures: error boxes in a complete report --------------------------------------
def broken_bias(ns, reps, mu=0.0, sigma=1.0, random_seed=0, executor=None):
    """Stand-in for bayesmle.studies.bias that fails as a study can (a typed error)."""
    raise ConvergenceError(BIAS_MESSAGE)


def broken_surface(spec, params=None, grid=60, span=4.0, random_seed=0):
    """Stand-in for bayesmle.studies.likelihood_surface with a bug (an untyped error)."""
    raise RuntimeError(SURFACE_MESSAGE)


def broken_forest(*args, **kwargs):
    raise ValueError("no forest today")


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partial")
    (folder / "wobbly.toml").write_text(SPEC)
    spec = load(folder / "wobbly.toml")
    out = folder / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bayesmle.studies, "bias", broken_bias)
        mp.setattr(bayesmle.studies, "likelihood_surface", broken_surface)
        mp.setattr(figs, "forest_figures", broken_forest)
        logger = logging.getLogger("bayesmle")
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = records.append
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            result = build_report(spec, out)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
    write_index(out)
    return spec, result, records


def test_partial_report_records_every_failed_part(partial):
    _, result, _ = partial
    assert result.partial
    assert [(f.part, f.section, f.error, f.message) for f in result.failures] == [
        ("forest plot", "forest", "ValueError", "no forest today"),
        ("study bias", "studies", "ConvergenceError", BIAS_MESSAGE),
        ("study likelihood_surface", "studies", "RuntimeError", SURFACE_MESSAGE)]
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["partial"] is True
    assert manifest["failed"] == [f.as_dict() for f in result.failures]
    assert manifest["seeds"]["studies"] == {"bias": 4, "likelihood_surface": 4, "map_to_mle": 4}
    assert "tables/study_bias.csv" not in manifest["files"]
    assert "tables/study_map_to_mle.csv" in manifest["files"]
    for f in manifest["files"]:
        assert (result.path / f).is_file(), f
    assert leftovers(result.path.parent) == []


def test_error_boxes_sit_in_their_sections_escaped_without_traceback(partial):
    _, result, records = partial
    html = (result.path / "index.html").read_text()
    assert "Traceback" not in html
    assert "<script>alert(1)" not in html and "<b>sigma</b>" not in html
    bias = study_block(html, "bias")
    assert 'class="box error failed" id="failed-study-bias"' in bias
    assert "ConvergenceError" in bias and html_lib.escape(BIAS_MESSAGE, quote=False) in bias
    surface = study_block(html, "likelihood_surface")
    assert "RuntimeError" in surface
    assert html_lib.escape(SURFACE_MESSAGE, quote=False) in surface
    good = study_block(html, "map_to_mle")
    assert "box error" not in good and "<img" in good
    forest = section(html, "forest")
    assert 'id="failed-forest-plot"' in forest and "no forest today" in forest
    # the banner at the top links to each box, and the title says partial
    banner = re.search(r'<div class="box error" id="partial">(.*?)</div>', html, re.S).group(1)
    for anchor in ("failed-forest-plot", "failed-study-bias", "failed-study-likelihood_surface"):
        assert f'href="#{anchor}"' in banner
    assert '<span class="tag error">partial</span></h1>' in html
    md = (result.path / "report.md").read_text()
    assert "**Partial report:** 3 part(s)" in md
    assert f"> **FAILED: study bias** (ConvergenceError): {BIAS_MESSAGE}" in md
    # the traceback went to the DEBUG log, once per failed part
    logged = {r.getMessage(): r.exc_info for r in records if r.levelno == logging.DEBUG}
    for part in ("forest plot", "study bias", "study likelihood_surface"):
        exc_info = logged[f"report part {part!r} failed"]
        assert exc_info is not None and exc_info[2] is not None


def test_other_sections_of_a_partial_report_are_complete(partial):
    spec, result, _ = partial
    model = spec.model_spec()
    y = model.data["y"]
    table = pd.read_csv(result.path / "tables" / "comparison.csv", index_col="parameter")
    np.testing.assert_allclose(table.loc["mu", "mle_estimate"], y.mean(), rtol=1e-12)
    np.testing.assert_allclose(table.loc["sigma", "mle_estimate"], y.std(), rtol=1e-9)
    np.testing.assert_allclose(table["map_estimate"], bm.fit(model, "map").flat_params(),
                               rtol=1e-9)
    # the study that worked: its CSV is the API's table
    args = spec.study_arguments("map_to_mle")
    ref = bayesmle.studies.map_to_mle(**args)
    got = pd.read_csv(result.path / "tables" / "study_map_to_mle.csv")
    np.testing.assert_allclose(got["map"].to_numpy(float), ref.table["map"].to_numpy(float),
                               rtol=1e-12)
    html = (result.path / "index.html").read_text()
    for name in ("warnings", "model", "data", "comparison", "forest", "diagnostics",
                 "studies", "files"):
        assert f'<section id="{name}">' in html
    assert f"<td class=\"\">{fmt(y.mean())}</td>" in html


def test_index_marks_the_partial_report(partial):
    _, result, _ = partial
    index = (result.path.parent / "index.html").read_text()
    assert '<tr class="partial">' in index
    banner = re.search(r'<div class="box error" id="partial">(.*?)</div>', index, re.S)
    assert banner and 'href="wobbly/index.html"' in banner.group(1)
    assert "forest plot, study bias, study likelihood_surface" in banner.group(1)


# -- the fit itself fails ----------------------------------------------------------------------
HEADS = """
name = "all_heads_mle"
[model]
builder = "bernoulli"
[data]
source = "csv"
path = "heads.csv"
[priors]
p = "Beta(2, 2)"
[fit]
methods = ["mle"]
"""


def test_no_method_at_all_is_an_error_box_in_the_comparison(tmp_path):
    (tmp_path / "heads.csv").write_text("y\n1\n1\n1\n1\n1\n")
    (tmp_path / "s.toml").write_text(HEADS)
    spec = load(tmp_path / "s.toml")
    with pytest.raises(MLENotFoundError) as api:
        bm.fit(spec.model_spec(), "mle")
    result = build_report(spec, tmp_path / "out")
    assert [(f.part, f.section, f.error) for f in result.failures] == [
        ("fit", "comparison", "MLENotFoundError")]
    assert result.failures[0].message == str(api.value)
    html = (result.path / "index.html").read_text()
    comparison = section(html, "comparison")
    assert 'id="failed-fit"' in comparison and "comparison-table" not in comparison
    assert html_lib.escape(str(api.value).splitlines()[0], quote=False) in comparison
    # the data section is complete: numbers from numpy
    summary = pd.read_csv(result.path / "tables" / "data_summary.csv", index_col="variable")
    assert summary.loc["y", "count"] == 5 and summary.loc["y", "mean"] == 1.0
    counts = pd.read_csv(result.path / "tables" / "class_counts.csv", index_col=0)
    assert counts["count"].tolist() == [5]
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["partial"] is True and [f["part"] for f in manifest["failed"]] == ["fit"]
    assert not (result.path / "tables" / "comparison.csv").exists()
    assert not any((result.path / "fits").iterdir())


# -- what still stops a report -------------------------------------------------------------------
def interrupting_bias(ns, reps, mu=0.0, sigma=1.0, random_seed=0, executor=None):
    raise KeyboardInterrupt


def test_ctrl_c_in_a_study_is_not_an_error_box(tmp_path, monkeypatch):
    (tmp_path / "wobbly.toml").write_text(SPEC)
    spec = load(tmp_path / "wobbly.toml").with_fit(methods=["mle"])
    out = tmp_path / "reports"
    (out / "wobbly").mkdir(parents=True)
    (out / "wobbly" / "index.html").write_text("previous report")
    monkeypatch.setattr(bayesmle.studies, "bias", interrupting_bias)
    with pytest.raises(KeyboardInterrupt):
        build_report(spec, out)
    assert [p.name for p in (out / "wobbly").iterdir()] == ["index.html"]
    assert (out / "wobbly" / "index.html").read_text() == "previous report"
    assert sorted(p.name for p in out.iterdir()) == ["wobbly"]


# -- names that cannot be a report folder ----------------------------------------------------
@pytest.mark.parametrize("name", ["index.html", "INDEX.HTML", "../escape", "a/b", ".hidden",
                                  "", "x" * 300, "x" * (MAX_NAME + 1), "sp ace", "trailing."])
def test_unsafe_names_are_rejected_before_anything_is_written(tmp_path, name):
    (tmp_path / "wobbly.toml").write_text(SPEC)
    spec = dataclasses.replace(load(tmp_path / "wobbly.toml"), name=name)
    out = tmp_path / "reports"
    out.mkdir()
    (out / "index.html").write_text("the index of all reports")
    with pytest.raises(SpecError, match="report name"):
        build_report(spec, out)
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert (out / "index.html").read_text() == "the index of all reports"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports", "wobbly.toml"]


def test_the_longest_name_is_a_report(tmp_path):
    (tmp_path / "wobbly.toml").write_text(SPEC)
    name = "n" * MAX_NAME
    spec = dataclasses.replace(load(tmp_path / "wobbly.toml"), name=name).without_studies()
    result = build_report(spec.with_fit(methods=["mle"]), tmp_path / "out")
    assert result.path == tmp_path / "out" / name and (result.path / "index.html").is_file()
    assert leftovers(tmp_path / "out") == []


def test_a_file_in_the_way_is_left_alone(tmp_path):
    (tmp_path / "wobbly.toml").write_text(SPEC)
    spec = load(tmp_path / "wobbly.toml")
    out = tmp_path / "reports"
    out.mkdir()
    (out / "wobbly").write_text("not a report")
    with pytest.raises(SpecError, match="exists and is not a report folder"):
        build_report(spec, out)
    assert (out / "wobbly").read_text() == "not a report"
    assert sorted(p.name for p in out.iterdir()) == ["wobbly"]


def test_a_failure_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    (tmp_path / "wobbly.toml").write_text(SPEC)
    spec = load(tmp_path / "wobbly.toml").with_fit(methods=["mle"]).without_studies()
    out = tmp_path / "reports"
    build_report(spec, out)
    before = {p: p.read_bytes() for p in (out / "wobbly").rglob("*") if p.is_file()}

    def broken_render(context):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build_module, "render_html", broken_render)
    with pytest.raises(OSError, match="No space left"):
        build_report(spec, out)
    assert {p: p.read_bytes() for p in (out / "wobbly").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == ["wobbly"]


# -- the atomic writers on odd targets ----------------------------------------------------------
def test_atomic_directory_refuses_a_file_and_replaces_a_link(tmp_path):
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(NotADirectoryError), atomic_directory(tmp_path / "file"):
        pytest.fail("the block must not run")  # pragma: no cover
    assert (tmp_path / "file").read_text() == "keep me"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("not ours")
    (tmp_path / "link").symlink_to(elsewhere)
    with atomic_directory(tmp_path / "link") as work:
        (work / "index.html").write_text("new")
    assert not (tmp_path / "link").is_symlink()
    assert (tmp_path / "link" / "index.html").read_text() == "new"
    assert (elsewhere / "index.html").read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "file", "link"]


def test_atomic_write_text_onto_a_folder_leaves_no_temporary_file(tmp_path):
    (tmp_path / "index.html").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write_text(tmp_path / "index.html", "the index")
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
    assert list((tmp_path / "index.html").iterdir()) == []
