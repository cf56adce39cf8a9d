"""Reports: one model fitted every way, as a self-contained HTML page plus Markdown and data.

:func:`build_report` writes ``<out>/<name>/`` atomically (``index.html`` with embedded figures,
``report.md``, ``tables/*.csv``, ``fits/*.nc``, ``spec.toml``, ``manifest.json``);
:func:`write_index` writes ``<out>/index.html`` linking every report in ``out``.
"""

from bayesmle.report.atomic import atomic_directory, atomic_write_text
from bayesmle.report.build import (
    ReportResult,
    ReportWarning,
    build_report,
    report_steps,
)
from bayesmle.report.render import write_index

__all__ = [
    "ReportResult",
    "ReportWarning",
    "atomic_directory",
    "atomic_write_text",
    "build_report",
    "report_steps",
    "write_index",
]
