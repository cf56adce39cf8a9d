"""Build one model's report: fit, diagnose, run the studies, write every file atomically."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import inspect
import json
import logging
import math
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.compare import Comparison, compare
from bayesmle.errors import BayesMLEError, ConvergenceWarning, SamplingWarning, SpecError
from bayesmle.report import figures as figs
from bayesmle.report import tables
from bayesmle.report.atomic import atomic_directory
from bayesmle.report.render import render_html, render_markdown
from bayesmle.specfile import SpecFile, study_function

__all__ = ["ReportResult", "ReportWarning", "StudyOutput", "build_report", "json_ready",
           "report_steps", "study_numbers", "study_summary"]

log = logging.getLogger("bayesmle")

#: Packages whose versions go into the manifest.
_PACKAGES = ("bayesmle", "pymc", "pytensor", "nutpie", "arviz", "arviz-base", "arviz-stats",
             "arviz-plots", "numpy", "scipy", "pandas", "xarray", "matplotlib", "jinja2",
             "formulaic", "h5netcdf", "scikit-learn", "statsmodels")
#: Builders whose response is a class label (the report counts the classes).
_CLASSIFIERS = ("bernoulli", "logistic_regression", "softmax_regression")
#: Warning categories that are about the statistics (shown prominently); others are technical.
_STATISTICAL = (ConvergenceWarning.__name__, SamplingWarning.__name__)


@dataclass(frozen=True)
class ReportWarning:
    """Something the reader must see: a method that failed, a bad diagnostic, a warning.

    ``severity`` is ``"error"`` (a method or figure has no result), ``"warning"`` (a result
    to distrust) or ``"note"`` (technical messages from the libraries).

    Examples
    --------
    >>> from bayesmle.report import ReportWarning
    >>> w = ReportWarning("nuts", "warning", "R-hat = 1.02 for p", category="SamplingWarning")
    >>> w.severity, w.category
    ('warning', 'SamplingWarning')
    """

    source: str
    severity: str
    message: str
    category: str = ""


@dataclass(frozen=True)
class StudyOutput:
    """One study's section: figure, tables and key numbers."""

    name: str
    title: str
    description: str
    arguments: str
    seconds: float
    seed: int | None
    figure: figs.RenderedFigure | None
    summary: pd.DataFrame
    numbers: dict[str, Any]
    table_file: str


@dataclass(frozen=True)
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    name : str
        The report's name (its folder).
    path : pathlib.Path
        The report's folder; ``path / "index.html"`` is the page.
    seconds : float
        Wall time of the whole report.
    warnings : list of ReportWarning
        Everything shown in the report's warnings section.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayesmle.report import ReportResult, ReportWarning
    >>> result = ReportResult("coin", Path("reports/coin"), 3.2, [
    ...     ReportWarning("nuts", "warning", "R-hat = 1.02 for p", "SamplingWarning"),
    ...     ReportWarning("pymc", "note", "Initializing NUTS")])
    >>> result.n_problems  # notes are not problems
    1
    >>> (result.path / "index.html").as_posix()
    'reports/coin/index.html'
    """

    name: str
    path: Path
    seconds: float
    warnings: list[ReportWarning] = field(default_factory=list)

    @property
    def n_problems(self) -> int:
        """Number of errors and warnings (notes excluded)."""
        return sum(w.severity != "note" for w in self.warnings)


def report_steps(spec: SpecFile) -> list[str]:
    """Labels of the steps :func:`build_report` announces through ``progress``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import report, specfile
    >>> text = '''model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }
    ... priors = { p = "Beta(2, 2)" }
    ... fit = { methods = ["mle", "map"] }'''
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = (Path(tmp.name) / "coin.toml").write_text(text)
    >>> spec = specfile.load(Path(tmp.name) / "coin.toml")
    >>> report.report_steps(spec)
    ['fitting mle, map', 'figures', 'writing files']
    >>> tmp.cleanup()
    """
    return ([f"fitting {', '.join(spec.fit.methods)}", "figures"]
            + [f"study {name}" for name in spec.studies] + ["writing files"])


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def json_ready(value: Any) -> Any:
    """Convert numpy/pandas values for JSON; NaN and infinities become null."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring as plain text (reST markup removed)."""
    if not doc:
        return ""
    text = " ".join(doc.strip().split("\n\n", 1)[0].split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)  # :func:`x` -> x
    return text.replace("``", "")


def study_numbers(result: Any) -> dict[str, Any]:
    """Scalar attributes of a study result (slope, n_failed...), for the key-numbers list."""
    out = {}
    if dataclasses.is_dataclass(result):
        for f in dataclasses.fields(result):
            if f.name in ("table", "settings"):
                continue
            value = getattr(result, f.name)
            if isinstance(value, bool | int | float | np.integer | np.floating) and not (
                    isinstance(value, float | np.floating) and math.isnan(value)):
                out[f.name] = value
    return out


def study_summary(result: Any) -> pd.DataFrame:
    """A study's summary table (its ``summary()`` if it has one, else its table), flat."""
    summary = getattr(result, "summary", None)
    frame = summary() if callable(summary) else result.table
    if not isinstance(frame, pd.DataFrame):  # pragma: no cover - defensive
        frame = result.table
    if isinstance(frame.index, pd.MultiIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    return frame


class _Collector:
    """Collects report warnings and timings."""

    def __init__(self) -> None:
        self.items: list[ReportWarning] = []
        self.timings: dict[str, float] = {}

    def add(self, source: str, severity: str, message: str, category: str = "") -> None:
        if not any(w.source == source and w.message == message for w in self.items):
            self.items.append(ReportWarning(source, severity, message, category))

    def recorded(self, source: str, diagnostics) -> None:
        for d in diagnostics:
            cat = d.category_name
            self.add(source, "warning" if cat in _STATISTICAL else "note", d.message, cat)


def _fit(spec: SpecFile, notes: _Collector) -> Comparison:
    t0 = time.perf_counter()
    fit = spec.fit
    comparison = compare(spec.model_spec(), methods=fit.methods, random_seed=fit.random_seed,
                         warn=False, **fit.compare_options())
    notes.timings["fit"] = time.perf_counter() - t0
    for w in comparison.warnings:
        notes.add(w.method, "warning" if w.category in _STATISTICAL else "note", w.message,
                  w.category)
    for method, reason in comparison.errors.items():
        notes.add(method, "error", reason, "no result")
    for method, res in comparison.results.items():
        notes.timings[f"fit.{method}"] = float(res.seconds)
    return comparison


def _figures(spec: SpecFile, comparison: Comparison, notes: _Collector
             ) -> tuple[list[figs.RenderedFigure], list[figs.RenderedFigure]]:
    t0 = time.perf_counter()
    params = list(spec.model_spec().params)
    forest: list[figs.RenderedFigure] = []
    diagnostics: list[figs.RenderedFigure] = []
    try:
        forest = figs.forest_figures(comparison.datatrees, params)
    except Exception as exc:  # noqa: BLE001 - a figure must not sink the report
        notes.add("report", "error", f"The forest plot could not be drawn: {exc!r}")
    post = comparison.results.get("nuts")
    if post is not None:
        try:
            diagnostics = figs.diagnostic_figures(post.datatree, params)
        except Exception as exc:  # noqa: BLE001
            notes.add("report", "error", f"The diagnostic plots could not be drawn: {exc!r}")
    notes.timings["figures"] = time.perf_counter() - t0
    return forest, diagnostics


def _study(spec: SpecFile, name: str, notes: _Collector) -> tuple[StudyOutput, pd.DataFrame]:
    t0 = time.perf_counter()
    func = study_function(name, spec.where)
    args = spec.study_arguments(name)
    try:
        result = func(**args)
    except BayesMLEError as exc:
        raise type(exc)(f"{spec.path}: [studies.{name}] failed: {exc}") from None
    notes.recorded(f"study {name}", result.diagnostics)
    seconds = time.perf_counter() - t0
    notes.timings[f"study.{name}"] = seconds
    module = inspect.getmodule(func)
    description = _first_paragraph(module.__doc__ if module else func.__doc__)
    head, _, rest = description.partition(": ")
    title = head if rest else name.replace("_", " ").capitalize()
    figure = None
    try:
        figure = figs.render(result.plot(), f"study_{name}", title)
    except Exception as exc:  # noqa: BLE001 - a figure must not sink the report
        notes.add(f"study {name}", "error", f"The figure could not be drawn: {exc!r}")
    output = StudyOutput(
        name=name, title=title, description=rest.strip() if rest else description,
        arguments=spec.studies[name].describe(), seconds=seconds,
        seed=args.get("random_seed"), figure=figure, summary=study_summary(result),
        numbers=study_numbers(result), table_file=f"tables/study_{name}.csv")
    return output, result.table


def _write_fits(comparison: Comparison, folder: Path, notes: _Collector) -> list[str]:
    folder.mkdir()
    written = []
    for method, res in comparison.results.items():
        tree = res.to_datatree()
        path = folder / f"{method}.nc"
        try:
            tree.to_netcdf(path, engine="h5netcdf")
        except (ImportError, ValueError, TypeError) as exc:
            notes.add("report", "error", f"The {method} fit could not be saved as netCDF: {exc}")
            continue
        written.append(f"fits/{method}.nc")
    return written


def build_report(spec: SpecFile, out: str | Path = "reports", *,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Fit ``spec`` every requested way and write its report to ``out/<spec.name>/``.

    Parameters
    ----------
    spec : SpecFile
        A loaded spec (:func:`bayesmle.specfile.load`); fit settings already overridden as
        wanted (:meth:`SpecFile.with_fit`).
    out : path, default "reports"
        The folder of all reports.
    progress : callable, optional
        Called with a label at the start of each step (see :func:`report_steps`).

    Returns
    -------
    ReportResult

    Raises
    ------
    BayesMLEError
        When no method can be fitted, or a study fails; the previous report (if any) is then
        left untouched.

    Notes
    -----
    The report folder holds ``index.html`` (self-contained: figures embedded),
    ``report.md`` (figures in ``figures/``), ``tables/*.csv``, ``fits/<method>.nc`` (ArviZ
    DataTrees), ``spec.toml`` (the spec as run) and ``manifest.json`` (versions, seeds,
    timings, warnings). It is built in a temporary folder and swapped in at the end.

    Examples
    --------
    A report of a coin-flip model fitted by MLE and MAP (no studies), written to a temporary
    folder:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import report, specfile
    >>> text = '''model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }
    ... priors = { p = "Beta(2, 2)" }
    ... fit = { methods = ["mle", "map"] }'''
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = (Path(tmp.name) / "coin.toml").write_text(text)
    >>> spec = specfile.load(Path(tmp.name) / "coin.toml")
    >>> steps = []
    >>> result = report.build_report(spec, Path(tmp.name) / "reports", progress=steps.append)
    >>> steps
    ['fitting mle, map', 'figures', 'writing files']
    >>> result.name, result.n_problems
    ('coin', 0)
    >>> sorted(p.relative_to(result.path).as_posix() for p in result.path.rglob("*.*"))
    ['figures/forest_p.png', 'fits/map.nc', 'fits/mle.nc', 'index.html', 'manifest.json',
     'report.md', 'spec.toml', 'tables/class_counts.csv', 'tables/comparison.csv',
     'tables/data_summary.csv', 'tables/optimizer.csv']
    >>> tmp.cleanup()
    """
    if not isinstance(spec, SpecFile):
        raise SpecError(f"`spec` must be a SpecFile from bayesmle.specfile.load(path), got "
                        f"{type(spec).__name__}.")
    if progress is not None and not callable(progress):
        raise SpecError(f"`progress` must be a function of one label, got {progress!r}.")
    step = progress or (lambda label: None)
    started = time.perf_counter()
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    notes = _Collector()
    target = Path(out) / spec.name
    with atomic_directory(target) as tmp:
        log.info("report %s: fitting", spec.name)
        step(f"fitting {', '.join(spec.fit.methods)}")
        comparison = _fit(spec, notes)
        step("figures")
        forest, diagnostics = _figures(spec, comparison, notes)
        studies: list[StudyOutput] = []
        study_tables: dict[str, pd.DataFrame] = {}
        for name in spec.studies:
            step(f"study {name}")
            output, table = _study(spec, name, notes)
            studies.append(output)
            study_tables[name] = table

        step("writing files")
        data = spec.data_kwargs()
        columns = spec.mapping.columns_of()
        summary = tables.data_summary(data, columns)
        counts = (tables.class_counts(data, columns) if spec.builder.name in _CLASSIFIERS
                  else None)
        optimizer = tables.optimizer_table(comparison.results)
        post = comparison.results.get("nuts")
        diag = post.summary() if post is not None else None

        (tmp / "tables").mkdir()
        (tmp / "figures").mkdir()
        comparison.table.to_csv(tmp / "tables" / "comparison.csv")
        summary.to_csv(tmp / "tables" / "data_summary.csv")
        files = ["index.html", "report.md", "manifest.json", "spec.toml",
                 "tables/comparison.csv", "tables/data_summary.csv"]
        if counts is not None:
            counts.to_csv(tmp / "tables" / "class_counts.csv")
            files.append("tables/class_counts.csv")
        if not optimizer.empty:
            optimizer.to_csv(tmp / "tables" / "optimizer.csv")
            files.append("tables/optimizer.csv")
        if diag is not None:
            diag.to_csv(tmp / "tables" / "diagnostics.csv")
            files.append("tables/diagnostics.csv")
        for name, table in study_tables.items():
            table.to_csv(tmp / "tables" / f"study_{name}.csv", index=False)
            files.append(f"tables/study_{name}.csv")
        all_figures = [*forest, *diagnostics, *(s.figure for s in studies if s.figure)]
        for fig in all_figures:
            (tmp / fig.filename).write_bytes(fig.png)
            files.append(fig.filename)
        files += _write_fits(comparison, tmp / "fits", notes)
        (tmp / "spec.toml").write_text(spec.text, encoding="utf-8")

        seconds = time.perf_counter() - started
        notes.timings["total"] = seconds
        ordered = sorted(notes.items, key=lambda w: {"error": 0, "warning": 1, "note": 2}[
            w.severity])
        manifest = {
            "name": spec.name,
            "title": spec.title,
            "created": created.isoformat(),
            "spec": {"path": str(spec.path), "sha256": spec.sha256,
                     "builder": spec.builder.name},
            "data": {"source": spec.data.source, "description": spec.data.description,
                     "rows": len(spec.data.frame)},
            "versions": _versions(),
            "seeds": {"fit": spec.fit.random_seed, "data": spec.data.settings.get("seed"),
                      "studies": {s.name: s.seed for s in studies}},
            "fit": {"methods": list(spec.fit.methods), "draws": spec.fit.draws,
                    "tune": spec.fit.tune, "chains": spec.fit.chains,
                    "target_accept": spec.fit.target_accept,
                    "sampler": getattr(post, "sampler", None)},
            "timings_seconds": {k: round(v, 3) for k, v in notes.timings.items()},
            "errors": dict(comparison.errors),
            "warnings": [dataclasses.asdict(w) for w in ordered],
            "files": sorted(files),
        }
        groups = tables.comparison_groups(comparison.table)
        context = {
            "spec": spec, "model": spec.model_spec(), "created": created,
            "comparison": comparison, "groups": groups,
            "table_columns": [c for _, cols in groups for c, _ in cols],
            "forest": forest, "diagnostics": diagnostics, "diag": diag, "post": post,
            "optimizer": optimizer, "summary": summary, "counts": counts,
            "studies": studies, "warnings": ordered, "manifest": manifest,
            "files": sorted(files), "fmt": tables.fmt,
        }
        (tmp / "index.html").write_text(render_html(context), encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(context), encoding="utf-8")
        (tmp / "manifest.json").write_text(
            json.dumps(json_ready(manifest), indent=2, allow_nan=False) + "\n",
            encoding="utf-8")
    return ReportResult(spec.name, target, time.perf_counter() - started, ordered)
