"""Reports: one model fitted every way, as a self-contained HTML page plus Markdown and data.

:func:`build_report` writes ``<out>/<name>/`` atomically (``index.html`` with embedded figures,
``report.md``, ``tables/*.csv``, ``fits/*.nc``, ``spec.toml``, ``manifest.json``);
:func:`write_index` writes ``<out>/index.html`` linking every report in ``out``. A part of a
report that fails is an error box in its section (a :class:`PartFailure`) and the report is
marked partial; the rest is still written.
"""

from bayesmle.report.atomic import atomic_directory, atomic_write_text
from bayesmle.report.build import (
    MAX_NAME,
    ReportResult,
    build_report,
    report_folder,
    report_steps,
)
from bayesmle.report.notes import PartFailure, ReportWarning
from bayesmle.report.render import write_index

__all__ = [
    "MAX_NAME",
    "PartFailure",
    "ReportResult",
    "ReportWarning",
    "atomic_directory",
    "atomic_write_text",
    "build_report",
    "report_folder",
    "report_steps",
    "write_index",
]
