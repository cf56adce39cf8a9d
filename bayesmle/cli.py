"""The ``bayesmle`` command: reports, fits, comparisons and studies from TOML model specs.

Every subcommand reads spec files (see ``models/README.md``); user errors (a bad spec, data
the model rejects, an MLE that does not exist) are printed as one message without a traceback
and the exit code is 2 (1 when some reports of a batch failed, 130 on Ctrl-C, 143 on SIGTERM).
This module is the only place in bayesmle that prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")  # reports render off-screen

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

_DESCRIPTION = """\
One model, three answers: fit a model declared in a TOML spec by maximum likelihood (mle),
maximum a posteriori (map), the Laplace approximation (laplace) and NUTS (nuts), and see the
answers side by side.

A spec names the builder, the data, the priors, the fit settings and the studies of one model;
the bundled ones are in models/ (see models/README.md for every key).
"""

_EPILOG = """\
examples:
  bayesmle report                               every spec in models/ -> reports/<name>/
  bayesmle report models/coin_flip.toml --draws 500 --no-studies
  bayesmle fit models/gaussian_heights.toml --method mle
  bayesmle fit models/gaussian_heights.toml --method nuts --draws 500 --json
  bayesmle compare models/diabetes_lasso.toml --methods mle,map
  bayesmle study map_to_mle models/coin_flip.toml --arg reps=5 --arg 'ns=[10, 100]'
  bayesmle validate                             check every spec without fitting
  bayesmle list                                 the bundled models

exit codes: 0 success, 1 some reports failed, 2 invalid input (bad spec, data, option),
130 interrupted (previous reports are left intact), 143 terminated.
"""


# ---------------------------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------------------------
def _dump(payload: dict[str, Any]) -> None:
    from bayesmle.report.build import json_ready

    print(json.dumps(json_ready(payload), indent=2, allow_nan=False))


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _frame_records(frame) -> dict[str, dict[str, Any]]:
    return {str(k): {str(c): v for c, v in row.items()} for k, row in frame.iterrows()}


def _print_frame(frame) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:.6g}"):
        print(frame.to_string())


class _Captured:
    """Record warnings while fitting; show the statistical ones on stderr afterwards."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.items: list[dict[str, str]] = []
        self._ctx = warnings.catch_warnings(record=True)

    def __enter__(self) -> _Captured:
        self._record = self._ctx.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
        for w in self._record:
            self.add(w.category.__name__, str(w.message))

    def add(self, category: str, message: str, method: str = "") -> None:
        item = {"category": category, "message": message, **({"method": method} if method
                                                               else {})}
        if item not in self.items:
            self.items.append(item)

    def statistical(self) -> list[dict[str, str]]:
        from bayesmle.report.build import _STATISTICAL

        return [w for w in self.items if w["category"] in _STATISTICAL]

    def show(self) -> None:
        shown = self.items if self.verbose else self.statistical()
        for w in shown:
            where = f" ({w['method']})" if "method" in w else ""
            _err(f"warning{where}: {w['category']}: {w['message']}")


# ---------------------------------------------------------------------------------------------
# Spec loading and settings
# ---------------------------------------------------------------------------------------------
def _methods(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _load(path: str, args: argparse.Namespace):
    from bayesmle.specfile import load

    spec = load(path)
    return spec.with_fit(draws=args.draws, tune=args.tune, chains=args.chains,
                         random_seed=args.seed, target_accept=args.target_accept,
                         methods=_methods(getattr(args, "methods", None)))


def _spec_paths(given: Sequence[str], models: str) -> list[str]:
    from bayesmle.specfile import find_specs

    if given:
        return list(given)
    return [str(p) for p in find_specs(models)]


def _parse_args_overrides(items: Sequence[str]) -> dict[str, Any]:
    from bayesmle.errors import SpecError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--arg {item!r}: write KEY=VALUE with a TOML value, e.g. "
                            f"--arg reps=5 or --arg 'ns=[10, 100]'.")
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            try:  # a bare word is a string
                out[key] = tomllib.loads(f"v = {json.dumps(value)}")["v"]
            except tomllib.TOMLDecodeError as exc:  # pragma: no cover - json strings parse
                raise SpecError(f"--arg {item!r}: the value is not valid TOML ({exc}).") from None
    return out


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------
def _fit_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"draws": args.draws, "tune": args.tune, "chains": args.chains,
            "random_seed": args.seed, "target_accept": args.target_accept,
            "methods": _methods(getattr(args, "methods", None))}


def _worker_init() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    signal.signal(signal.SIGTERM, _terminate)  # clean up the temporary folder, then exit


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded in the report itself
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


def _cmd_report(args: argparse.Namespace) -> int:
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


def _point_payload(res) -> dict[str, Any]:
    summary = res.summary()
    payload: dict[str, Any] = {
        "parameters": _frame_records(summary),
        "loglik": res.loglik, "logp": res.logp, "nobs": res.nobs,
        "converged": bool(res.converged), "grad_norm": res.grad_norm,
        "newton_decrement": res.newton_decrement, "hessian_pd": bool(res.hessian_pd),
        "iterations": int(res.n_iter), "seconds": res.seconds,
    }
    if res.method in ("mle", "map"):
        payload.update(aic=res.aic, bic=res.bic)
    return payload


def _cmd_fit(args: argparse.Namespace) -> int:
    import bayesmle as bm
    from bayesmle.inference.laplace import LaplaceResult
    from bayesmle.inference.posterior import PosteriorResult

    spec = _load(args.spec, args)
    options = spec.fit.fit_options(args.method)
    if args.method == "nuts":
        options["progressbar"] = not args.no_progress and sys.stderr.isatty() and not args.json
    with _Captured(args.verbose) as captured:
        res = bm.fit(spec.model_spec(), args.method, **options)
    payload: dict[str, Any] = {"model": spec.name, "spec": str(spec.path), "method": args.method,
                               "options": {k: v for k, v in options.items()
                                           if k != "progressbar"}}
    if isinstance(res, PosteriorResult):
        summary = res.summary()
        payload.update(parameters=_frame_records(summary), divergences=res.divergences,
                       sampler=res.sampler, problems=res.problems(), seconds=res.seconds)
    else:
        payload.update(_point_payload(res))
        summary = res.summary()
        if isinstance(res, LaplaceResult):
            for label, mean in res.mean().items():
                payload["parameters"][label]["mean"] = mean
            for label, sd in res.sd().items():
                payload["parameters"][label]["sd"] = sd
    payload["warnings"] = captured.items
    if args.json:
        _dump(payload)
    else:
        print(f"{spec.title} [{spec.name}]: {args.method}  ({spec.model_spec().description})")
        _print_frame(summary)
        if isinstance(res, PosteriorResult):
            print(f"sampler {res.sampler}, {res.divergences} divergence(s), "
                  f"{res.seconds:.1f} s")
        else:
            print(f"loglik {res.loglik:.6g}, converged {res.converged} "
                  f"(grad_norm {res.grad_norm:.2g}, newton_decrement "
                  f"{res.newton_decrement:.2g})")
    captured.show()
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from bayesmle.compare import compare

    spec = _load(args.spec, args)
    fit = spec.fit
    options = fit.compare_options()
    with _Captured(args.verbose) as captured:
        comparison = compare(spec.model_spec(), methods=fit.methods,
                             random_seed=fit.random_seed, **options)
    captured.items = []  # compare records each method's warnings itself
    for w in comparison.warnings:
        captured.add(w.category, w.message, w.method)
    if args.json:
        _dump({"model": spec.name, "spec": str(spec.path), "methods": list(fit.methods),
               "random_seed": fit.random_seed, "options": options,
               "table": _frame_records(comparison.table), "errors": comparison.errors,
               "warnings": captured.items})
    else:
        print(f"{spec.title} [{spec.name}]  ({spec.model_spec().description})")
        _print_frame(comparison.table.T)
        for method, reason in comparison.errors.items():
            _err(f"no {method}: {reason}")
    captured.show()
    return EXIT_OK


def _cmd_study(args: argparse.Namespace) -> int:
    from bayesmle.specfile import study_function

    spec = _load(args.spec, args)
    study_function(args.name)  # unknown study -> SpecError listing the valid ones
    spec = spec.with_study(args.name, _parse_args_overrides(args.arg))
    func = study_function(args.name)
    kwargs = spec.study_arguments(args.name)
    t0 = time.perf_counter()
    with _Captured(args.verbose) as captured:
        result = func(**kwargs)
    seconds = time.perf_counter() - t0
    from bayesmle.report.build import study_numbers, study_summary

    numbers = study_numbers(result)
    if args.json:
        _dump({"model": spec.name, "spec": str(spec.path), "study": args.name,
               "arguments": spec.studies[args.name].describe(), "seconds": seconds,
               "numbers": numbers, "table": result.table.to_dict(orient="records"),
               "warnings": captured.items})
    else:
        print(f"{args.name} on {spec.name}: {spec.studies[args.name].describe() or 'defaults'}")
        _print_frame(study_summary(result))
        for key, value in numbers.items():
            print(f"{key}: {value}")
        if args.plot:
            result.plot().savefig(args.plot, dpi=100, bbox_inches="tight")
            print(f"figure written to {args.plot}")
    captured.show()
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from bayesmle.errors import BayesMLEError
    from bayesmle.specfile import load

    bad = 0
    for path in _spec_paths(args.specs, args.models):
        try:
            spec = load(path)
            for name in spec.studies:
                spec.study_arguments(name)
        except BayesMLEError as exc:
            bad += 1
            _err(f"error: {exc}")
            continue
        model = spec.model_spec()
        print(f"ok {path}: {spec.name} ({spec.builder.name}, {model.nobs} rows, "
              f"methods {', '.join(spec.fit.methods)}"
              f"{', studies ' + ', '.join(spec.studies) if spec.studies else ''})")
    return EXIT_USAGE if bad else EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from bayesmle.errors import BayesMLEError
    from bayesmle.specfile import load

    bad = 0
    for path in _spec_paths([], args.models):
        try:
            spec = load(path)
        except BayesMLEError as exc:
            bad += 1
            _err(f"error: {exc}")
            continue
        print(f"{spec.name:<24} {spec.builder.name:<30} {spec.title}")
    return EXIT_USAGE if bad else EXIT_OK


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------
def _fit_options(parser: argparse.ArgumentParser, methods: bool = True) -> None:
    group = parser.add_argument_group("fit settings (override the spec's [fit] table)")
    group.add_argument("--draws", type=int, metavar="N", help="NUTS draws per chain")
    group.add_argument("--tune", type=int, metavar="N", help="NUTS tuning steps per chain")
    group.add_argument("--chains", type=int, metavar="N", help="number of NUTS chains")
    group.add_argument("--seed", type=int, metavar="N",
                       help="random seed of the Laplace/NUTS draws and the studies")
    group.add_argument("--target-accept", type=float, metavar="P",
                       help="NUTS target acceptance rate in (0, 1)")
    if methods:
        group.add_argument("--methods", metavar="LIST",
                           help="comma-separated subset of mle,map,laplace,nuts")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesmle`` command."""
    from bayesmle import __version__
    from bayesmle.inference.driver import METHODS
    from bayesmle.specfile import STUDIES

    parser = argparse.ArgumentParser(
        prog="bayesmle", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bayesmle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="log progress and show technical warnings too")

    p = sub.add_parser(
        "report", parents=[common], help="write HTML/Markdown reports (the main job)",
        description="Fit each spec by every requested method, run its studies and write "
                    "reports/<name>/ (index.html with embedded figures, report.md, tables/"
                    "*.csv, fits/*.nc, manifest.json) and reports/index.html. A report is "
                    "built in a temporary folder and swapped in at the end: a failed or "
                    "interrupted run leaves the previous one intact.")
    p.add_argument("specs", nargs="*", metavar="SPEC",
                   help="spec files (default: every *.toml in --models)")
    p.add_argument("--out", default="reports", metavar="DIR",
                   help="folder of the reports (default: reports)")
    p.add_argument("--models", default="models", metavar="DIR",
                   help="folder of specs used when no SPEC is given (default: models)")
    p.add_argument("--no-studies", action="store_true", help="skip the specs' studies")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="build up to N reports at once in worker processes (default: 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    _fit_options(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "fit", parents=[common], help="fit one spec by one method",
        description="Fit a spec by one method and print the estimates (or JSON with --json: "
                    "per-parameter numbers keyed by label, plus the optimum's certificate or "
                    "the sampler's diagnostics).")
    p.add_argument("spec", metavar="SPEC", help="spec file")
    p.add_argument("--method", "-m", required=True, choices=METHODS, help="fitting method")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no sampler progress bar")
    _fit_options(p, methods=False)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "compare", parents=[common], help="fit one spec every way, side by side",
        description="Fit a spec by MLE, MAP, Laplace and NUTS (or --methods) and print the "
                    "comparison table: one row per parameter (one column with --json's "
                    "`table`: label -> column -> value).")
    p.add_argument("spec", metavar="SPEC", help="spec file")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    _fit_options(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "study", parents=[common], help="run one study of a spec",
        description="Run a study of bayesmle.studies on a spec: the arguments of the spec's "
                    "[studies.NAME] table, updated by --arg, and what the spec provides "
                    "(builder, data, simulator, priors, true parameters).")
    p.add_argument("name", metavar="NAME", choices=STUDIES, help=f"one of {', '.join(STUDIES)}")
    p.add_argument("spec", metavar="SPEC", help="spec file")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="set a study argument (TOML value), e.g. --arg reps=5; repeatable")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("--plot", metavar="FILE.png", help="also save the study's figure")
    _fit_options(p, methods=False)
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("validate", parents=[common], help="check specs without fitting",
                       description="Load every spec (data, priors, studies' arguments) and "
                                   "report the first problem of each.")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="spec files (default: --models)")
    p.add_argument("--models", default="models", metavar="DIR",
                   help="folder of specs used when no SPEC is given (default: models)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("list", parents=[common], help="list the bundled models",
                       description="List the specs in --models.")
    p.add_argument("--models", default="models", metavar="DIR",
                   help="folder of specs (default: models)")
    p.set_defaults(func=_cmd_list)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bayesmle`` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from bayesmle.errors import BayesMLEError

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except BayesMLEError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted: reports in progress were discarded; previous reports are intact.")
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        if exc.code == EXIT_TERMINATED:
            _err("terminated: reports in progress were discarded; previous reports are intact.")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
