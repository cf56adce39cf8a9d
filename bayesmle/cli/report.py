"""``bayesmle report``: one report per spec, serially with progress bars or on worker processes.

Every spec ends as one :class:`Outcome`: a complete report, a *partial* one (some parts failed
and are error boxes in it), an *invalid* spec (rejected, nothing written) or a *failed* one
(not written: the disk, a worker that died, a bug). The exit code follows from the outcomes:
0 all complete, 2 nothing written because every failing spec was invalid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayesmle.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    _err,
    _fit_overrides,
    _spec_paths,
    _terminate,
)

if TYPE_CHECKING:
    from bayesmle.report.notes import PartFailure

__all__ = ["Outcome", "cmd_report", "output_folder"]

log = logging.getLogger("bayesmle")

#: Seconds between two checks for finished reports (signals are handled between checks).
_POLL = 0.5


@dataclass(frozen=True)
class Outcome:
    """What became of one spec's report (picklable: it comes back from worker processes).

    ``status`` is ``"complete"``, ``"partial"`` (written; ``failures`` are error boxes in it),
    ``"invalid"`` (the spec was rejected; nothing written, the previous report is kept) or
    ``"failed"`` (not written; ``message`` says why).
    """

    name: str
    status: str
    seconds: float = 0.0
    problems: int = 0
    path: str = ""
    failures: tuple[PartFailure, ...] = ()
    message: str = ""

    @property
    def written(self) -> bool:
        """Whether the report was written (completely or partially)."""
        return self.status in ("complete", "partial")


def exit_code(outcomes: list[Outcome]) -> int:
    """The command's exit code for these outcomes.

    0 when every report is complete; 2 when nothing was written and every failing spec was
    invalid (a user error); 1 otherwise (partial reports, reports not written).
    """
    bad = [o for o in outcomes if o.status != "complete"]
    if not bad:
        return EXIT_OK
    if all(o.status == "invalid" for o in bad) and not any(o.written for o in outcomes):
        return EXIT_USAGE
    return EXIT_FAILED


def output_folder(value: str) -> Path:
    """The folder of the reports (``--out``), created and checked to be writable.

    Raises
    ------
    SpecError
        It cannot be a folder of reports: the message names ``--out``, the value and why.
        Folders this call created are removed again.
    """
    from bayesmle.errors import SpecError

    out = Path(value)

    def bad(why: str) -> SpecError:
        return SpecError(f"--out {value!r}: {why}. Give a folder that can be created and "
                         "written, e.g. --out reports.")

    if out.exists() and not out.is_dir():
        raise bad("exists and is not a folder")
    missing = []
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise bad(f"{str(ancestor)!r} is a file, not a folder")
    step = "create"
    try:
        out.mkdir(parents=True, exist_ok=True)
        step = "write in"
        fd, probe = tempfile.mkstemp(prefix=".bayesmle-write-check-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        for folder in missing:  # deepest first: leave nothing behind
            if folder.is_dir():
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise bad(f"cannot {step} the folder ({exc.strerror or exc})") from None
    return out


def _build_one(spec, out: Path, progress: Callable[[str], None] | None = None) -> Outcome:
    """Build one report; every way it ends is an :class:`Outcome` (interruptions propagate)."""
    from bayesmle.errors import BayesMLEError
    from bayesmle.report import build_report

    try:
        result = build_report(spec, out, progress=progress)
    except BayesMLEError as exc:  # the spec is invalid (e.g. a study's argument)
        return Outcome(spec.name, "invalid", message=str(exc))
    except OSError as exc:
        log.debug("report %s not written", spec.name, exc_info=True)
        return Outcome(spec.name, "failed", message=f"cannot write the report: {exc}")
    except Exception as exc:  # noqa: BLE001 - one report must not sink the batch
        log.debug("report %s not written", spec.name, exc_info=True)
        return Outcome(spec.name, "failed", message=f"{type(exc).__name__}: {exc} (run with "
                                                    "-vv for the traceback)")
    return Outcome(result.name, "partial" if result.partial else "complete", result.seconds,
                   result.n_problems, str(result.path), tuple(result.failures))


def _worker_init(verbosity: int = 0) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    signal.signal(signal.SIGTERM, _terminate)  # clean up the temporary folder, then exit
    if verbosity:
        logging.basicConfig(level=logging.DEBUG if verbosity > 1 else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
    # A worker process belongs to the command: its reports record the statistical
    # diagnostics themselves, so the libraries' technical warnings are not shown.
    warnings.simplefilter("ignore")


def _report_job(job: tuple[str, dict[str, Any], bool, str, str | None]) -> Outcome:
    """Load one spec and build its report (in a worker process)."""
    from bayesmle.errors import BayesMLEError
    from bayesmle.specfile import load

    path, overrides, no_studies, out, data_root = job
    try:
        spec = load(path, data_root=data_root).with_fit(**overrides)
    except BayesMLEError as exc:
        return Outcome(Path(path).stem, "invalid", message=str(exc))
    if no_studies:
        spec = spec.without_studies()
    return _build_one(spec, Path(out))


def _report_one(job: tuple[str, dict[str, Any], bool, str, str | None]) -> Outcome:
    """What a worker process runs: :func:`_report_job`, ended by SIGTERM or Ctrl-C.

    The worker's SIGTERM handler raises ``SystemExit``; once it has unwound the report (the
    temporary folder is removed), the worker exits. The process pool would otherwise catch
    it and keep the worker waiting for more work.
    """
    try:
        return _report_job(job)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else EXIT_FAILED)
    except KeyboardInterrupt:
        os._exit(EXIT_INTERRUPTED)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _announce(outcome: Outcome, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    """One line on stdout per written report; errors on stderr."""
    if outcome.written and (not args.quiet or outcome.status == "partial"):
        problems = outcome.problems
        flag = ("PARTIAL" if outcome.status == "partial" else
                f"{problems} warning(s)" if problems else "no warnings")
        mark = "ok" if outcome.status == "complete" and not problems else "!!"
        say(f"{mark} {outcome.name:<24} {outcome.seconds:6.1f} s  {flag:<14} "
            f"{Path(outcome.path) / 'index.html'}")
    if outcome.status == "partial":
        _err(f"error: {outcome.name}: partial report: {len(outcome.failures)} part(s) failed "
             f"and are shown as error boxes; the rest is written.")
        for f in outcome.failures:
            _err(f"  {f.part}: {f.error}: {_first_line(f.message)}")
    elif not outcome.written:
        _err(f"error: {outcome.name}: report not written (the previous one, if any, is "
             f"kept): {outcome.message}")


def _expected_seconds(spec, out: Path) -> float:
    """How long a report should take: the previous run's time, else a rough guess."""
    try:
        previous = json.loads((out / spec.name / "manifest.json").read_text(encoding="utf-8"))
        return float(previous["timings_seconds"]["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return (100.0 if spec.builder.is_regression else 40.0) + 30.0 * len(spec.studies)


def _stop_workers(executor) -> None:
    """SIGTERM every worker (each discards its temporary folder, then exits) and wait.

    A worker still alive a minute later (stuck in native code) is killed.
    """
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + 60.0
    for child in children:
        child.join(timeout=max(deadline - time.monotonic(), 0.0))
        if child.is_alive():
            child.kill()
            child.join()
    executor.shutdown(wait=False, cancel_futures=True)


def _report_parallel(specs: list, args: argparse.Namespace, out: Path,
                     finished: Callable[[Outcome], None]) -> list[Outcome]:
    """Build the reports on ``args.jobs`` worker processes.

    The longest reports start first (so that no long one is left running alone at the end).
    A worker that dies (killed, out of memory) fails the reports that were not finished yet,
    instead of leaving the command waiting for them.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ordered = sorted(specs, key=lambda s: -_expected_seconds(s, out))
    executor = ProcessPoolExecutor(min(args.jobs, len(specs)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(args.verbose,))
    outcomes: list[Outcome] = []
    try:
        pending = {executor.submit(_report_one, (str(s.path), _fit_overrides(args),
                                                 args.no_studies, str(out), args.data_root)
                                   ): s.name
                   for s in ordered}
        while pending:
            # A timed wait: the main thread handles SIGTERM / Ctrl-C between two waits.
            done, _ = wait(pending, timeout=_POLL, return_when=FIRST_COMPLETED)
            for future in done:
                name = pending.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    outcome = Outcome(name, "failed", message="a worker process died (killed "
                                      "by a signal or out of memory) before it was finished")
                outcomes.append(outcome)
                finished(outcome)
        executor.shutdown()
    except BaseException:
        _stop_workers(executor)
        raise
    return outcomes


def _report_serial(specs: list, out: Path, bar, task,
                   finished: Callable[[Outcome], None]) -> list[Outcome]:
    """Build the reports one after the other, a progress step per stage."""
    from bayesmle.report import report_steps

    outcomes: list[Outcome] = []
    for spec in specs:
        steps_done = 0

        def advance(label: str, spec=spec) -> None:
            nonlocal steps_done
            if steps_done:
                bar.advance(task)
            steps_done += 1
            bar.update(task, description=f"{spec.name}: {label}")

        outcome = _build_one(spec, out, progress=advance)
        if outcome.written:
            bar.advance(task)
        else:  # skip the steps that were not reached
            bar.advance(task, len(report_steps(spec)) - max(steps_done - 1, 0))
        outcomes.append(outcome)
        finished(outcome)
    return outcomes


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
    from bayesmle.report import report_folder, report_steps, write_index
    from bayesmle.specfile import load_many

    specs = load_many(_spec_paths(args.specs, args.models),  # validate all before fitting
                      data_root=args.data_root)
    specs = [s.with_fit(**_fit_overrides(args)) for s in specs]
    if args.no_studies:
        specs = [s.without_studies() for s in specs]
    if args.jobs < 1:
        raise SpecError(f"--jobs must be >= 1, got {args.jobs}.")
    for spec in specs:  # every report's folder is safe, before anything is created
        report_folder(args.out, spec.name)
    out = output_folder(args.out)
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

        def say(line: str) -> None:
            if show:
                bar.console.print(line, highlight=False)
            else:
                print(line, flush=True)

        if parallel:
            bar.update(task, description=f"{len(specs)} reports on {args.jobs} processes")

            def finished(outcome: Outcome) -> None:
                bar.advance(task)
                _announce(outcome, args, say)

            outcomes = _report_parallel(specs, args, out, finished)
        else:
            outcomes = _report_serial(specs, out, bar, task,
                                      lambda outcome: _announce(outcome, args, say))
    code = exit_code(outcomes)
    try:
        index = write_index(out)
    except OSError as exc:
        _err(f"error: the index of the reports could not be written: {exc}")
        return EXIT_FAILED if code == EXIT_OK else code
    written = [o for o in outcomes if o.written]
    partial = [o for o in outcomes if o.status == "partial"]
    if not args.quiet or partial:
        print(f"\n{len(written)} of {len(outcomes)} report(s) written in "
              f"{time.perf_counter() - started:.0f} s"
              + (f", {len(partial)} partial (failed parts are error boxes in them)"
                 if partial else "") + ".")
        if written:
            print(f"Open {index.resolve().as_uri()}")
    return code
