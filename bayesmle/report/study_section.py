"""One study's section of a report: run the study, keep its figure, table and key numbers.

A study that fails (its MLE does not exist on some data set, a numerical error...) becomes an
error box in its section; a study whose arguments are invalid (:data:`~.notes.INPUT_ERRORS`)
makes the whole spec invalid and is raised.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.report import figures as figs
from bayesmle.report.notes import INPUT_ERRORS, Notes, PartFailure
from bayesmle.specfile import SpecFile, study_function

__all__ = ["StudyOutput", "run_study", "study_numbers", "study_summary"]


@dataclass(frozen=True)
class StudyOutput:
    """One study's section: figure, tables and key numbers, or why they are missing.

    ``failures`` holds the study's failed parts (the study itself, or only its figure or
    table); ``table`` is the study's full table (None when the study failed).
    """

    name: str
    title: str
    description: str
    arguments: str
    seconds: float
    seed: int | None
    figure: figs.RenderedFigure | None
    summary: pd.DataFrame | None
    numbers: dict[str, Any]
    table: pd.DataFrame | None
    failures: tuple[PartFailure, ...] = ()

    @property
    def table_file(self) -> str:
        """Path of the full table's CSV inside the report folder ("" without a table)."""
        return f"tables/study_{self.name}.csv" if self.table is not None else ""


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


def _full_table(result: Any) -> pd.DataFrame:
    table = getattr(result, "table", None)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"the study's result has no table (got {type(table).__name__}).")
    return table


def run_study(spec: SpecFile, name: str, notes: Notes) -> StudyOutput:
    """Run the study ``name`` of ``spec``; failures are recorded in ``notes``.

    Raises
    ------
    SpecError, PriorError
        The study is unknown or its arguments are invalid (the spec is invalid).
    """
    t0 = time.perf_counter()
    func = study_function(name, spec.where)
    args = spec.study_arguments(name)
    module = inspect.getmodule(func)
    description = _first_paragraph(module.__doc__ if module else func.__doc__)
    head, _, rest = description.partition(": ")
    title = head if rest else name.replace("_", " ").capitalize()
    part = f"study {name}"
    before = len(notes.failures)
    figure = summary = table = None
    numbers: dict[str, Any] = {}
    try:
        result = func(**args)
    except INPUT_ERRORS as exc:
        raise type(exc)(f"{spec.path}: [studies.{name}] failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a failed study is an error box, not a lost report
        notes.fail(part, "studies", exc)
    else:
        notes.recorded(part, getattr(result, "diagnostics", ()))
        table = notes.attempt(f"{part}: table", "studies", _full_table, result)
        summary = notes.attempt(f"{part}: summary table", "studies", study_summary, result)
        numbers = notes.attempt(f"{part}: key numbers", "studies", study_numbers, result) or {}
        figure = notes.attempt(f"{part}: figure", "studies",
                               lambda: figs.render(result.plot(), f"study_{name}", title))
    seconds = time.perf_counter() - t0
    notes.timings[f"study.{name}"] = seconds
    return StudyOutput(
        name=name, title=title, description=rest.strip() if rest else description,
        arguments=spec.studies[name].describe(), seconds=seconds,
        seed=args.get("random_seed"), figure=figure, summary=summary, numbers=numbers,
        table=table, failures=tuple(notes.failures[before:]))
