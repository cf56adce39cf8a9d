"""Build one model's report: fit, diagnose, run the studies, write every file atomically.

Each part of a report (the fit, every figure, every study, every table and saved fit) is made
on its own: a part that fails becomes an error box in its section with the error's type and
message, the other parts are complete, and the report is marked *partial* (``partial`` and
``failed`` in ``manifest.json``, a mark in the index of all reports). Only an invalid spec
(:data:`~bayesmle.report.notes.INPUT_ERRORS`, e.g. a study's bad argument), an unusable
output folder and interruptions stop a report; the previous report is then left intact.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
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
from bayesmle.errors import SpecError
from bayesmle.report import figures as figs
from bayesmle.report import tables
from bayesmle.report.atomic import atomic_directory
from bayesmle.report.notes import STATISTICAL, Notes, PartFailure, ReportWarning
from bayesmle.report.render import render_html, render_markdown
from bayesmle.report.study_section import StudyOutput, run_study, study_numbers, study_summary
from bayesmle.specfile import SpecFile

__all__ = ["MAX_NAME", "PartFailure", "ReportResult", "ReportWarning", "build_report",
           "json_ready", "report_folder", "report_steps", "study_numbers", "study_summary"]

log = logging.getLogger("bayesmle")

#: Packages whose versions go into the manifest.
_PACKAGES = ("bayesmle", "pymc", "pytensor", "nutpie", "arviz", "arviz-base", "arviz-stats",
             "arviz-plots", "numpy", "scipy", "pandas", "xarray", "matplotlib", "jinja2",
             "formulaic", "h5netcdf", "scikit-learn", "statsmodels")
#: Builders whose response is a class label (the report counts the classes).
_CLASSIFIERS = ("bernoulli", "logistic_regression", "softmax_regression")
#: Longest report name (as the spec loader allows); the folder's temporary twin
#: ``.<name>.tmp-<pid>-<random>`` then stays well within the 255 bytes of a file name.
MAX_NAME = 64
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: Names taken in the folder of all reports (``index.html`` lists the reports).
_RESERVED = ("index.html",)


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
    failures : list of PartFailure
        The parts that could not be made (error boxes in the report); empty when complete.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayesmle.report import PartFailure, ReportResult, ReportWarning
    >>> result = ReportResult("coin", Path("reports/coin"), 3.2, [
    ...     ReportWarning("nuts", "warning", "R-hat = 1.02 for p", "SamplingWarning"),
    ...     ReportWarning("pymc", "note", "Initializing NUTS")])
    >>> result.n_problems, result.partial  # notes are not problems
    (1, False)
    >>> (result.path / "index.html").as_posix()
    'reports/coin/index.html'
    >>> failed = ReportResult("coin", Path("reports/coin"), 3.2, failures=[
    ...     PartFailure("study bias", "studies", "MLENotFoundError", "no MLE")])
    >>> failed.partial
    True
    """

    name: str
    path: Path
    seconds: float
    warnings: list[ReportWarning] = field(default_factory=list)
    failures: list[PartFailure] = field(default_factory=list)

    @property
    def n_problems(self) -> int:
        """Number of errors and warnings (notes excluded)."""
        return sum(w.severity != "note" for w in self.warnings)

    @property
    def partial(self) -> bool:
        """Whether some part of the report failed (it shows error boxes in their place)."""
        return bool(self.failures)


def report_folder(out: str | Path, name: str) -> Path:
    """The folder of report ``name`` in ``out``, checked to be one safe folder of its own.

    Raises
    ------
    SpecError
        ``name`` is not a single safe path component (letters, digits, ``_``, ``-``, ``.``,
        starting with a letter or digit, not ending with ``.``, at most :data:`MAX_NAME`
        characters), is taken by the index of all reports, or ``out/name`` exists and is not
        a folder.

    Examples
    --------
    >>> from bayesmle.report import report_folder
    >>> report_folder("reports", "coin_flip").as_posix()
    'reports/coin_flip'
    >>> report_folder("reports", "../etc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: report name '../etc' cannot name a folder: ...
    >>> report_folder("reports", "index.html")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: report name 'index.html' is taken: ...
    """
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name.endswith("."):
        raise SpecError(f"report name {name!r} cannot name a folder: use letters, digits, "
                        "'_', '-' and '.', starting with a letter or digit and not ending "
                        "with '.'.")
    if len(name) > MAX_NAME:
        raise SpecError(f"report name {name[:20]!r}... is {len(name)} characters long; "
                        f"use at most {MAX_NAME}.")
    if name.lower() in _RESERVED:
        raise SpecError(f"report name {name!r} is taken: {Path(out) / name} is the page "
                        "listing every report. Give the spec another `name`.")
    target = Path(out) / name
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise SpecError(f"{target} exists and is not a report folder; it is left as it is. "
                        "Remove it or give the spec another `name`.")
    return target


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




def _fit(spec: SpecFile, notes: Notes) -> Comparison | None:
    t0 = time.perf_counter()
    fit = spec.fit
    comparison = notes.attempt(
        "fit", "comparison", lambda: compare(spec.model_spec(), methods=fit.methods,
                                             random_seed=fit.random_seed, warn=False,
                                             predictive=fit.predictive,
                                             **fit.compare_options()))
    notes.timings["fit"] = time.perf_counter() - t0
    if comparison is None:
        return None
    for w in comparison.warnings:
        notes.add(w.method, "warning" if w.category in STATISTICAL else "note", w.message,
                  w.category)
    for method, reason in comparison.errors.items():
        notes.add(method, "error", reason, "no result")
    for method, res in comparison.results.items():
        notes.timings[f"fit.{method}"] = float(res.seconds)
    for method, reason in comparison.predictive_errors.items():
        error, _, message = reason.partition(": ")
        notes.record(PartFailure(f"LOO {method}", "prediction", error, message or reason))
    return comparison


@dataclass(frozen=True)
class _Prediction:
    """The Prediction section: the LOO table and the predictive figures."""

    table: pd.DataFrame | None
    figures: list[figs.RenderedFigure]


def _prediction(spec: SpecFile, comparison: Comparison | None, notes: Notes
                ) -> _Prediction | None:
    """Predictive checks per method and, for regressions, observed against predicted."""
    if comparison is None or not spec.fit.predictive:
        return None
    t0 = time.perf_counter()
    rendered = [notes.attempt_any(f"predictive check {method}", "prediction",
                                  figs.ppc_figure, comparison, method)
                for method in comparison.results]
    model = spec.model_spec()
    if "X" in model.data and "y" in model.data:
        def observed_predicted() -> figs.RenderedFigure | None:
            fig = figs.observed_predicted_figure(comparison.results, model.data["y"],
                                                 random_seed=comparison.random_seed)
            return None if fig is None else figs.render(
                fig, "observed_predicted", "Observed against predicted",
                figs.prediction_caption())

        rendered.append(notes.attempt_any("observed against predicted", "prediction",
                                          observed_predicted))
    notes.timings["prediction"] = time.perf_counter() - t0
    return _Prediction(comparison.predictive, [f for f in rendered if f is not None])


def _figures(spec: SpecFile, comparison: Comparison | None, notes: Notes
             ) -> tuple[list[figs.RenderedFigure], list[figs.RenderedFigure]]:
    t0 = time.perf_counter()
    params = list(spec.model_spec().params)
    forest: list[figs.RenderedFigure] = []
    diagnostics: list[figs.RenderedFigure] = []
    if comparison is not None:
        forest = notes.attempt("forest plot", "forest", figs.forest_figures,
                               comparison.datatrees, params) or []
        post = comparison.results.get("nuts")
        if post is not None:
            diagnostics = notes.attempt("NUTS diagnostic plots", "diagnostics",
                                        figs.diagnostic_figures, post.datatree, params) or []
    notes.timings["figures"] = time.perf_counter() - t0
    return forest, diagnostics


@dataclass(frozen=True)
class _Tables:
    """The report's own tables (None: not applicable, or failed)."""

    summary: pd.DataFrame | None
    counts: pd.DataFrame | None
    optimizer: pd.DataFrame | None
    diag: pd.DataFrame | None


def _tables(spec: SpecFile, comparison: Comparison | None, notes: Notes) -> _Tables:
    columns = spec.mapping.columns_of()
    summary = notes.attempt("data summary", "data",
                            lambda: tables.data_summary(spec.data_kwargs(), columns))
    counts = None
    if spec.builder.name in _CLASSIFIERS:
        counts = notes.attempt("response classes", "data",
                               lambda: tables.class_counts(spec.data_kwargs(), columns))
    optimizer = diag = None
    if comparison is not None:
        optimizer = notes.attempt("optimum certificates", "comparison",
                                  tables.optimizer_table, comparison.results)
        post = comparison.results.get("nuts")
        if post is not None:
            diag = notes.attempt("NUTS summary", "diagnostics", post.summary)
    return _Tables(summary, counts, optimizer, diag)


def _save_fit(res: Any, folder: Path, method: str) -> str:
    res.to_datatree().to_netcdf(folder / f"{method}.nc", engine="h5netcdf")
    return f"fits/{method}.nc"


def _write_fits(comparison: Comparison | None, folder: Path, notes: Notes) -> list[str]:
    folder.mkdir()
    results = comparison.results if comparison is not None else {}
    written = [notes.attempt(f"fits/{method}.nc", "files", _save_fit, res, folder, method)
               for method, res in results.items()]
    return [name for name in written if name is not None]


def _write_tables(tmp: Path, comparison: Comparison | None, t: _Tables,
                  studies: list[StudyOutput]) -> list[str]:
    (tmp / "tables").mkdir()
    frames = {"comparison": comparison.table if comparison is not None else None,
              "predictive": comparison.predictive if comparison is not None else None,
              "data_summary": t.summary, "class_counts": t.counts,
              "optimizer": None if t.optimizer is None or t.optimizer.empty else t.optimizer,
              "diagnostics": t.diag}
    files = []
    for name, frame in frames.items():
        if frame is not None:
            frame.to_csv(tmp / "tables" / f"{name}.csv")
            files.append(f"tables/{name}.csv")
    for s in studies:
        if s.table is not None:
            s.table.to_csv(tmp / s.table_file, index=False)
            files.append(s.table_file)
    return files


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
    SpecError, PriorError
        The spec is invalid: its ``name`` cannot name a folder of ``out`` (see
        :func:`report_folder`), or a study's arguments are rejected. Nothing is written and
        the previous report (if any) is left untouched.
    OSError
        The report cannot be written (the previous one is left untouched).

    Notes
    -----
    A part that fails (no method can be fitted, a study's MLE does not exist, a figure cannot
    be drawn...) does not stop the report: it is an error box in its section (type and
    message; the traceback is logged at DEBUG level), listed in the manifest's ``failed``,
    and the result is ``partial``.

    With ``[fit] predictive = true`` (the default) the report has a *Prediction* section:
    each method's leave-one-out predictive accuracy (``compare(..., predictive=True)``;
    ``tables/predictive.csv``), a predictive check per method and, for regressions, observed
    against predicted values with 90% predictive intervals. Exact LOO refits MLE and MAP once
    per observation; set ``predictive = false`` to skip the section on large data.

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
    ['figures/forest_p.png', 'figures/ppc_map.png', 'figures/ppc_mle.png', 'fits/map.nc',
     'fits/mle.nc', 'index.html', 'manifest.json', 'report.md', 'spec.toml',
     'tables/class_counts.csv', 'tables/comparison.csv', 'tables/data_summary.csv',
     'tables/optimizer.csv', 'tables/predictive.csv']
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
    target = report_folder(out, spec.name)
    notes = Notes()
    with atomic_directory(target) as tmp:
        log.info("report %s: fitting", spec.name)
        step(f"fitting {', '.join(spec.fit.methods)}")
        comparison = _fit(spec, notes)
        step("figures")
        forest, diagnostics = _figures(spec, comparison, notes)
        prediction = _prediction(spec, comparison, notes)
        studies: list[StudyOutput] = []
        for name in spec.studies:
            step(f"study {name}")
            studies.append(run_study(spec, name, notes))

        step("writing files")
        t = _tables(spec, comparison, notes)
        files = ["index.html", "report.md", "manifest.json", "spec.toml",
                 *_write_tables(tmp, comparison, t, studies)]
        (tmp / "figures").mkdir()
        predictive_figures = prediction.figures if prediction is not None else []
        for fig in [*forest, *diagnostics, *predictive_figures,
                    *(s.figure for s in studies if s.figure)]:
            (tmp / fig.filename).write_bytes(fig.png)
            files.append(fig.filename)
        files += _write_fits(comparison, tmp / "fits", notes)
        (tmp / "spec.toml").write_text(spec.text, encoding="utf-8")

        seconds = time.perf_counter() - started
        notes.timings["total"] = seconds
        ordered = notes.ordered()
        failures = list(notes.failures)
        post = comparison.results.get("nuts") if comparison is not None else None
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
                    "predictive": spec.fit.predictive,
                    "sampler": getattr(post, "sampler", None)},
            "timings_seconds": {k: round(v, 3) for k, v in notes.timings.items()},
            "partial": bool(failures),
            "failed": [f.as_dict() for f in failures],
            "errors": dict(comparison.errors) if comparison is not None else {},
            "predictive_errors": (dict(comparison.predictive_errors)
                                  if comparison is not None else {}),
            "warnings": [dataclasses.asdict(w) for w in ordered],
            "files": sorted(files),
        }
        groups = tables.comparison_groups(comparison.table) if comparison is not None else []
        context = {
            "spec": spec, "model": spec.model_spec(), "created": created,
            "comparison": comparison, "groups": groups,
            "table_columns": [c for _, cols in groups for c, _ in cols],
            "forest": forest, "diagnostics": diagnostics, "diag": t.diag, "post": post,
            "optimizer": t.optimizer, "summary": t.summary, "counts": t.counts,
            "prediction": prediction, "predictive_headers": tables.PREDICTIVE_HEADERS,
            "studies": studies, "warnings": ordered, "failures": failures,
            "manifest": manifest, "files": sorted(files), "fmt": tables.fmt,
        }
        (tmp / "index.html").write_text(render_html(context), encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(context), encoding="utf-8")
        (tmp / "manifest.json").write_text(
            json.dumps(json_ready(manifest), indent=2, allow_nan=False) + "\n",
            encoding="utf-8")
    if failures:
        log.info("report %s: partial, %d part(s) failed: %s", spec.name, len(failures),
                 ", ".join(f.part for f in failures))
    return ReportResult(spec.name, target, time.perf_counter() - started, ordered, failures)
