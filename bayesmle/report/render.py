"""Rendering with jinja2: the HTML page, the Markdown report and the index of all reports.

Templates live in ``bayesmle/report/templates`` (package data). HTML is autoescaped; the pages
load nothing from the network (styles inline, figures as data URIs).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from bayesmle.report import tables
from bayesmle.report.atomic import atomic_write_text

__all__ = ["environment", "header", "render_html", "render_markdown", "write_index"]


@functools.cache
def environment() -> jinja2.Environment:
    """The jinja2 environment (HTML templates autoescaped, Markdown not)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bayesmle.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = tables.fmt
    env.filters["header"] = header
    env.globals["column_chunks"] = tables.column_chunks
    env.filters["md_table"] = tables.markdown_table
    env.globals["fmt"] = tables.fmt
    return env


def header(name: Any) -> markupsafe.Markup:
    """A column name for a table header, breakable after each ``_`` and ``:``.

    Examples
    --------
    >>> from bayesmle.report.render import header
    >>> str(header("nuts_ess_bulk")), str(header("map:coef[age]")), str(header("<b>"))
    ('nuts_<wbr>ess_<wbr>bulk', 'map:<wbr>coef[age]', '&lt;b&gt;')
    """
    text = markupsafe.escape(str(name))
    for mark in ("_", ":"):
        text = text.replace(mark, markupsafe.Markup(f"{mark}<wbr>"))
    return text


def render_html(context: dict[str, Any]) -> str:
    """The report page ``index.html``."""
    return environment().get_template("report.html").render(**context)


def render_markdown(context: dict[str, Any]) -> str:
    """The Markdown report ``report.md``."""
    return environment().get_template("report.md").render(**context)


def _entries(out: Path) -> list[dict[str, Any]]:
    entries = []
    for manifest in sorted(out.glob("*/manifest.json")):
        if manifest.parent.name.startswith("."):
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        warnings = data.get("warnings", [])
        entries.append({
            "name": manifest.parent.name,
            "title": data.get("title", manifest.parent.name),
            "created": data.get("created", ""),
            "builder": data.get("spec", {}).get("builder", ""),
            "data": data.get("data", {}).get("description", ""),
            "errors": sum(w.get("severity") == "error" for w in warnings),
            "partial": bool(data.get("partial")),
            "failed": [f.get("part", "?") for f in data.get("failed", [])
                       if isinstance(f, dict)],
            "warnings": sum(w.get("severity") == "warning" for w in warnings),
            "seconds": data.get("timings_seconds", {}).get("total"),
        })
    return entries


def write_index(out: str | Path = "reports") -> Path:
    """Write ``out/index.html`` linking every report found in ``out`` (atomically).

    Returns
    -------
    pathlib.Path
        The index page.

    Examples
    --------
    The index lists every folder of ``out`` that holds a report's ``manifest.json``:

    >>> import json
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle.report import write_index
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (Path(tmp) / "coin").mkdir()
    ...     manifest = {"title": "Coin flips"}
    ...     _ = (Path(tmp) / "coin" / "manifest.json").write_text(json.dumps(manifest))
    ...     page = write_index(tmp)
    ...     page.name, "Coin flips" in page.read_text()
    ('index.html', True)
    """
    out = Path(out)
    entries = _entries(out)
    html = environment().get_template("index.html").render(
        entries=entries, partial=[e for e in entries if e["partial"]])
    path = out / "index.html"
    atomic_write_text(path, html)
    return path
