"""Machine description and rendering of the results (console text and RESULTS.md)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from importlib import metadata

from benchmarks._harness import CaseResult, Config, cpu_count, env_threads

PACKAGES = (
    "bayesmle", "pymc", "pytensor", "numba", "numpy", "scipy", "arviz-stats", "nutpie",
    "numpyro", "jax", "statsmodels", "scikit-learn", "dask", "distributed", "pyinstrument",
)


def _cpu_model() -> str:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"model name\s*:\s*(.+)", text)
    return m.group(1).strip() if m else "unknown"


def _memory_gib() -> float:
    try:
        text = open("/proc/meminfo").read()
        return int(re.search(r"MemTotal:\s+(\d+)", text).group(1)) / 2**20
    except (OSError, AttributeError):
        return float("nan")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _library_revision() -> str:
    """The git commit of the tree, and whether bayesmle/ has uncommitted changes."""
    import subprocess

    from benchmarks._harness import PACKAGE_ROOT

    root = PACKAGE_ROOT.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "bayesmle"], cwd=root,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {head}" + (" + uncommitted changes under bayesmle/" if dirty else "")


def machine_info() -> dict:
    """CPU, cores, memory, OS, BLAS, load average and package versions."""
    import sys

    try:
        import pytensor

        backend = f"mode={pytensor.config.mode}, linker={pytensor.config.linker}"
    except Exception:  # pragma: no cover - reported, not fatal
        backend = "unknown"
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": _cpu_model(),
        "cores": cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": sys.version.split()[0],
        "blas": env_threads(),
        "pytensor": backend,
        "load_before": os.getloadavg(),
        "library": _library_revision(),
        "versions": {p: _version(p) for p in PACKAGES},
    }


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:.3g} {unit}".strip()


def _cell(text: str) -> str:
    """Escape a Markdown table cell."""
    return str(text).replace("|", "\\|")


def _targets(results: list[CaseResult]):
    return [t for r in results for t in r.targets]


def render_text(results: list[CaseResult]) -> str:
    """The console summary: every row, then the targets."""
    lines = []
    for r in results:
        lines.append(f"\n== {r.title} ({r.seconds:.0f} s)")
        if r.error:
            lines.append("  FAILED: " + r.error.strip().splitlines()[-1])
        for row in r.rows:
            spread = f", {row.spread}" if row.reps > 1 and row.spread else ""
            lines.append(f"  {row.what:<58} {row.impl:<32} {_fmt(row.value, row.unit):>12}"
                         f"  (n={row.reps}{spread})")
        for c in r.checks:
            lines.append(f"  check {c.what}: {c.value:.2g} (tol {c.tolerance:g}) "
                         f"{'ok' if c.ok else 'FAIL'}")
    lines.append("\n== Targets")
    for t in _targets(results):
        lines.append(f"  {t.case:<18} {t.what:<58} {t.ratio:8.3g}×  target {t.target_text:<7}"
                     f"  {'HIT' if t.hit else 'MISS'}")
    return "\n".join(lines)


def render_markdown(results: list[CaseResult], machine: dict, cfg: Config, total: float,
                    command: str) -> str:
    """RESULTS.md: machine, versions, targets, measurements, checks, profiles, misses."""
    out = ["# Benchmark results", ""]
    quick = " (QUICK mode: small problems, not comparable to the targets)" if cfg.quick else ""
    out.append(f"Written by `{command}` on {machine['date']} in {total / 60:.1f} min{quick}"
               f"; at most {cfg.reps} timed repetitions per measurement after a warm-up. "
               "Method and how to read this: `benchmarks/README.md`.")
    out += ["", "## Machine", ""]
    lb = ", ".join(f"{x:.2f}" for x in machine["load_before"])
    la = ", ".join(f"{x:.2f}" for x in machine.get("load_after", machine["load_before"]))
    out += [
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; "
        f"memory {machine['memory_gib']:.0f} GiB",
        f"- OS: {machine['os']}; Python {machine['python']}",
        f"- BLAS: {machine['blas']}"
        + (f"; every benchmark process runs with {cfg.blas_threads} BLAS/OpenMP thread(s) "
           "(`--blas-threads`), both sides alike" if cfg.blas_threads else ""),
        f"- PyTensor default: {machine['pytensor']}",
        f"- bayesmle measured at: {machine.get('library', 'unknown')}",
        f"- load average (1, 5, 15 min) before: {lb}; after: {la} — the machine is shared, so "
        "absolute times are noisy; ratios are measured alternately in the same process",
    ]
    out += ["", "## Versions", "",
            ", ".join(f"{k} {v}" for k, v in machine["versions"].items()), ""]

    out += ["## Targets", "",
            "| case | ratio | bayesmle | peer | measured | target | verdict |",
            "|---|---|---|---|---|---|---|"]
    for t in _targets(results):
        out.append(f"| {t.case} | {_cell(t.what)} | {t.ours} | {t.peer} | {t.ratio:.3g}× | "
                   f"{t.target_text} | {'**hit**' if t.hit else '**MISS** — ' + t.margin} |")
    failed = [r for r in results if r.error]
    for r in failed:
        out.append(f"| {r.name} | — | — | — | — | — | case failed: "
                   f"{r.error.strip().splitlines()[-1]} |")

    out += ["", "## Measurements (medians)", ""]
    for r in results:
        out += [f"### {r.title}", ""]
        if r.error:
            out += ["```", r.error.strip(), "```", ""]
            continue
        out += ["| measurement | implementation | median | runs | range | note |",
                "|---|---|---|---|---|---|"]
        for row in r.rows:
            spread = row.spread if row.reps > 1 else ""
            if spread and row.unit == "s":
                lo, hi = (float(x) for x in spread.split("–"))
                spread = f"{_fmt(lo, 's')} – {_fmt(hi, 's')}"
            out.append(f"| {_cell(row.what)} | {_cell(row.impl)} | {_fmt(row.value, row.unit)} "
                       f"| {row.reps} | {spread} | {_cell(row.note)} |")
        if r.checks:
            out += ["", "| agreement check | value | tolerance | |", "|---|---|---|---|"]
            for c in r.checks:
                out.append(f"| {_cell(c.what)} | {c.value:.2g} | {c.tolerance:g} | "
                           f"{'ok' if c.ok else '**FAIL**'} {_cell(c.detail)} |")
        if r.notes:
            out += [""] + [f"- {n}" for n in r.notes]
        out.append(f"\n_Case wall time: {r.seconds:.0f} s._\n")

    out += ["## Where the time goes (pyinstrument)", "",
            "Each table attributes the samples of one bayesmle call to the innermost "
            "`bayesmle/` function on the stack (time inside SciPy, PyTensor or Numba counts for "
            "the library function that called it).", ""]
    for r in results:
        for what, rows in r.profiles:
            out += [f"**{r.title}** — {what}", "",
                    "| function | seconds | share |", "|---|---|---|"]
            out += [f"| `{label}` | {sec:.3f} | {share:.0%} |" for label, sec, share in rows]
            out.append("")

    missed = [t for t in _targets(results) if not t.hit]
    out += ["## Missed targets", ""]
    if not missed:
        out.append("None.")
    for t in missed:
        out.append(f"- **{t.case} — {t.what}**: {t.ratio:.3g}× against {t.target_text} "
                   f"({t.margin}). {t.why}")
    out.append("")
    return "\n".join(out)
