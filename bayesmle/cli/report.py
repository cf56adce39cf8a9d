"""``bayesmle report``: one report per spec, serially with progress bars or on worker processes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from bayesmle.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    _err,
    _fit_overrides,
    _spec_paths,
    _terminate,
)

__all__ = ["cmd_report"]


def _worker_init() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    signal.signal(signal.SIGTERM, _terminate)  # clean up the temporary folder, then exit
    # A worker process belongs to the command: its reports record the statistical
    # diagnostics themselves, so the libraries' technical warnings are not shown.
    warnings.simplefilter("ignore")


def _report_one(job: tuple[str, dict[str, Any], bool, str]) -> dict[str, Any]:
    """Build one report in a worker process; user errors come back as a message."""
    from bayesmle.errors import BayesMLEError
    from bayesmle.report import build_report
    from bayesmle.specfile import load

    path, overrides, no_studies, out = job
    try:
        spec = load(path).with_fit(**overrides)
        if no_studies:
            spec = spec.without_studies()
        result = build_report(spec, out)
    except BayesMLEError as exc:
        return {"name": Path(path).stem, "error": str(exc)}
    return {"name": result.name, "seconds": result.seconds, "problems": result.n_problems,
            "path": str(result.path)}


def _report_line(name: str, seconds: float, problems: int, path: Path | str) -> str:
    flag = f"{problems} warning(s)" if problems else "no warnings"
    return (f"{'ok' if not problems else '!!'} {name:<24} {seconds:6.1f} s  {flag:<14} "
            f"{Path(path) / 'index.html'}")


def _expected_seconds(spec, out: Path) -> float:
    """How long a report should take: the previous run's time, else a rough guess."""
    try:
        previous = json.loads((out / spec.name / "manifest.json").read_text(encoding="utf-8"))
        return float(previous["timings_seconds"]["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return (100.0 if spec.builder.is_regression else 40.0) + 30.0 * len(spec.studies)


def _report_parallel(specs: list, args: argparse.Namespace, out: Path, progress) -> list[str]:
    """Build the reports on ``args.jobs`` worker processes; returns the names that failed.

    The longest reports start first (so that no long one is left running alone at the end).
    """
    import multiprocessing

    ordered = sorted(specs, key=lambda s: -_expected_seconds(s, out))
    jobs = [(str(s.path), _fit_overrides(args), args.no_studies, str(out)) for s in ordered]
    failed: list[str] = []
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(min(args.jobs, len(jobs)), initializer=_worker_init)
    try:
        for done in pool.imap_unordered(_report_one, jobs):
            if "error" in done:
                failed.append(done["name"])
                _err(f"error: {done['name']}: report not written (the previous one, if any, "
                     f"is kept): {done['error']}")
            elif not args.quiet:
                progress(_report_line(done["name"], done["seconds"], done["problems"],
                                      done["path"]))
            else:
                progress(None)
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM: each worker discards its temporary folder
        raise
    finally:
        pool.join()
    return failed


def _report_serial(specs: list, args: argparse.Namespace, out: Path, bar, task, say
                   ) -> list[str]:
    """Build the reports one after the other, a progress step per stage; returns failures."""
    from bayesmle.errors import BayesMLEError
    from bayesmle.report import build_report, report_steps

    failed: list[str] = []
    for spec in specs:
        steps_done = 0

        def advance(label: str, spec=spec) -> None:
            nonlocal steps_done
            if steps_done:
                bar.advance(task)
            steps_done += 1
            bar.update(task, description=f"{spec.name}: {label}")

        try:
            result = build_report(spec, out, progress=advance)
        except BayesMLEError as exc:
            failed.append(spec.name)
            _err(f"error: {spec.name}: report not written (the previous one, if any, is "
                 f"kept): {exc}")
            bar.advance(task, len(report_steps(spec)) - max(steps_done - 1, 0))
            continue
        bar.advance(task)
        if not args.quiet:
            say(_report_line(spec.name, result.seconds, result.n_problems, result.path))
    return failed


def cmd_report(args: argparse.Namespace) -> int:
    """Write the reports of the given specs (every spec in --models by default)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from bayesmle.errors import SpecError
    from bayesmle.report import report_steps, write_index
    from bayesmle.specfile import load_many

    specs = load_many(_spec_paths(args.specs, args.models))  # validate all before fitting
    specs = [s.with_fit(**_fit_overrides(args)) for s in specs]
    if args.no_studies:
        specs = [s.without_studies() for s in specs]
    if args.jobs < 1:
        raise SpecError(f"--jobs must be >= 1, got {args.jobs}.")
    out = Path(args.out)
    parallel = args.jobs > 1 and len(specs) > 1
    total = len(specs) if parallel else sum(len(report_steps(s)) for s in specs)
    show = not args.no_progress and sys.stderr.isatty()
    started = time.perf_counter()
    if not args.quiet:
        print(f"Writing {len(specs)} report(s) to {out}/"
              f"{f' on {min(args.jobs, len(specs))} processes' if parallel else ''}", flush=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                  disable=not show) as bar:
        task = bar.add_task("starting", total=total)

        def say(line: str | None) -> None:
            if line is not None:
                if show:
                    bar.console.print(line, highlight=False)
                else:
                    print(line, flush=True)

        if parallel:
            bar.update(task, description=f"{len(specs)} reports on {args.jobs} processes")

            def finished(line: str | None) -> None:
                bar.advance(task)
                say(line)

            failed = _report_parallel(specs, args, out, finished)
        else:
            failed = _report_serial(specs, args, out, bar, task, say)
    index = write_index(out)
    if not args.quiet:
        print(f"\n{len(specs) - len(failed)} of {len(specs)} report(s) written in "
              f"{time.perf_counter() - started:.0f} s.")
        print(f"Open {index.resolve().as_uri()}")
    return EXIT_FAILED if failed else EXIT_OK
