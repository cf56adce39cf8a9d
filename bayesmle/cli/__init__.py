"""The ``bayesmle`` command: reports, fits, comparisons and studies from TOML model specs.

Every subcommand reads spec files (see ``models/README.md``); user errors (a bad spec, data
the model rejects, an MLE that does not exist, an option such as an ``--out`` folder that
cannot be written) are printed as one message without a traceback and the exit code is 2.
``report`` exits 1 when a report is partial (some of its parts failed and are error boxes in
it) or a report of a batch was not written; 130 on Ctrl-C, 143 on SIGTERM (reports in
progress are discarded, the previous ones are left intact). The package ``bayesmle.cli`` is
the only place in bayesmle that prints.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")  # reports render off-screen

__all__ = ["main"]

from bayesmle.cli._common import (  # noqa: E402 - after the backend is chosen
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    _Diagnostics,
    _dump,
    _err,
    _frame_records,
    _load,
    _parse_args_overrides,
    _print_frame,
    _spec_paths,
    _terminate,
)
from bayesmle.cli.report import cmd_report  # noqa: E402

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
  bayesmle predict models/spector_logistic.toml --data models/new_rows.csv --level 0.9
  bayesmle study map_to_mle models/coin_flip.toml --arg reps=5 --arg 'ns=[10, 100]'
  bayesmle validate                             check every spec without fitting
  bayesmle list                                 the bundled models

exit codes: 0 success; 1 a partial report (parts that failed are error boxes in it) or
a report of a batch not written; 2 invalid input (bad spec, data, option, --out folder);
130 interrupted (previous reports are left intact), 143 terminated.
"""


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------
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
    from bayesmle.inference.driver import APPROXIMATIONS, run

    spec = _load(args.spec, args)
    options = spec.fit.fit_options(args.method)
    if args.method == "nuts":
        options["progressbar"] = not args.no_progress and sys.stderr.isatty() and not args.json
    res = run(spec.model_spec(), args.method, **options)
    captured = _Diagnostics().extend(res.diagnostics)
    payload: dict[str, Any] = {"model": spec.name, "spec": str(spec.path), "method": args.method,
                               "options": {k: v for k, v in options.items()
                                           if k != "progressbar"}}
    if res.method == "nuts":
        summary = res.summary()
        payload.update(parameters=_frame_records(summary), divergences=res.divergences,
                       sampler=res.sampler, problems=res.problems(), seconds=res.seconds)
    elif res.method in APPROXIMATIONS:
        summary = res.summary()
        payload.update(parameters=_frame_records(summary), pareto_k=res.pareto_k,
                       seconds=res.seconds)
    else:
        point = res.mode if res.method == "laplace" else res
        payload.update(_point_payload(point))
        summary = point.summary()
        if res.method == "laplace":
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
        if res.method == "nuts":
            print(f"sampler {res.sampler}, {res.divergences} divergence(s), "
                  f"{res.seconds:.1f} s")
        elif res.method in APPROXIMATIONS:
            print(f"Pareto k {res.pareto_k:.2f} (above 0.7: a poor approximation), "
                  f"{res.seconds:.1f} s")
        else:
            print(f"loglik {point.loglik:.6g}, converged {point.converged} "
                  f"(grad_norm {point.grad_norm:.2g}, newton_decrement "
                  f"{point.newton_decrement:.2g})")
    captured.show()
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from bayesmle.inference.driver import run
    from bayesmle.specfile.data import read_new_csv

    spec = _load(args.spec, args)
    data = None
    if args.data is not None:  # read and checked before anything is fitted
        frame = read_new_csv(args.data, spec.path, args.data_root)
        data = spec.new_data(frame, source=f"--data {args.data!r}")
    options = spec.fit.fit_options(args.method)
    if args.method == "nuts":
        options["progressbar"] = not args.no_progress and sys.stderr.isatty() and not args.json
    res = run(spec.model_spec(), args.method, **options)
    captured = _Diagnostics().extend(res.diagnostics)
    uncertainty = None if args.uncertainty is None or args.method not in ("mle", "map") else (
        args.uncertainty)
    if args.uncertainty == "wald" and uncertainty is None:
        from bayesmle.errors import SpecError

        raise SpecError(f"--uncertainty wald applies to --method mle or map; a {args.method} "
                        f"fit predicts with its own draws.")
    table = res.predict(data, level=args.level, uncertainty=uncertainty,
                        random_seed=spec.fit.random_seed)
    seed = table.attrs.get("random_seed")
    if args.json:
        records = [{"row": _plain_label(i), **{str(c): v for c, v in row.items()}}
                   for i, row in table.iterrows()]
        _dump({"model": spec.name, "spec": str(spec.path), "method": args.method,
               "predictive": table.attrs.get("predictive"), "level": args.level,
               "uncertainty": uncertainty or "none", "seed": seed,
               "data": args.data, "predictions": records, "warnings": captured.items})
    else:
        what = f"new rows of {args.data}" if args.data else "the fitted rows"
        level = f", {args.level:g} predictive interval" if args.level is not None else ""
        print(f"{spec.title} [{spec.name}]: {args.method} predictions for {what}{level} "
              f"({table.attrs.get('predictive')} predictive, seed {seed})")
        _print_frame(table)
    captured.show()
    return EXIT_OK


def _plain_label(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _cmd_compare(args: argparse.Namespace) -> int:
    from bayesmle.compare import compare

    spec = _load(args.spec, args)
    fit = spec.fit
    options = fit.compare_options()
    comparison = compare(spec.model_spec(), methods=fit.methods, random_seed=fit.random_seed,
                         warn=False, **options)
    captured = _Diagnostics()
    for w in comparison.warnings:
        captured.add(w.category, w.message, w.method)
    if args.json:
        _dump({"model": spec.name, "spec": str(spec.path), "methods": list(fit.methods),
               "random_seed": comparison.random_seed, "options": options,
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
    from bayesmle.errors import SpecError
    from bayesmle.specfile import study_function

    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        raise SpecError(f"--plot {args.plot!r}: the folder {str(Path(args.plot).parent)!r} "
                        "does not exist.")
    spec = _load(args.spec, args)
    study_function(args.name)  # unknown study -> SpecError listing the valid ones
    spec = spec.with_study(args.name, _parse_args_overrides(args.arg))
    func = study_function(args.name)
    kwargs = spec.study_arguments(args.name)
    t0 = time.perf_counter()
    result = func(**kwargs)
    captured = _Diagnostics().extend(result.diagnostics)
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
            try:
                result.plot().savefig(args.plot, dpi=100, bbox_inches="tight")
            except OSError as exc:
                raise SpecError(f"--plot {args.plot!r}: cannot write the figure "
                                f"({exc.strerror or exc}).") from None
            print(f"figure written to {args.plot}")
    captured.show()
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from bayesmle.errors import BayesMLEError
    from bayesmle.specfile import load

    bad = 0
    for path in _spec_paths(args.specs, args.models):
        try:
            spec = load(path, data_root=args.data_root)
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
            spec = load(path, data_root=args.data_root)
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
                           help="comma-separated subset of mle,map,laplace,nuts (also: "
                                "advi,fullrank_advi,pathfinder,find_map_mle,find_map_map)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesmle`` command."""
    from bayesmle import __version__
    from bayesmle.inference.driver import APPROXIMATIONS, METHODS
    from bayesmle.specfile import STUDIES

    parser = argparse.ArgumentParser(
        prog="bayesmle", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bayesmle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress and show technical warnings too; -vv also logs "
                             "the tracebacks of failed report parts")
    common.add_argument("--data-root", metavar="DIR", default=None,
                        help="a folder CSV data paths of the specs may also point into "
                             "(default: only the spec file's own folder)")

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
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "fit", parents=[common], help="fit one spec by one method",
        description="Fit a spec by one method and print the estimates (or JSON with --json: "
                    "per-parameter numbers keyed by label, plus the optimum's certificate or "
                    "the sampler's diagnostics).")
    p.add_argument("spec", metavar="SPEC", help="spec file")
    p.add_argument("--method", "-m", required=True, choices=(*METHODS, *APPROXIMATIONS),
                   help="fitting method")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no sampler progress bar")
    _fit_options(p, methods=False)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "predict", parents=[common], help="predictions of one spec's fit",
        description="Fit a spec by one method and print its predictions: the mean of each "
                    "observation and, with --level, a central predictive interval of a new "
                    "observation (plug-in for mle/map, over the draws for laplace/nuts). "
                    "--data gives new rows: a CSV file with the spec's predictor columns (or "
                    "the variables of its formula), inside the spec's folder or --data-root; "
                    "without it, the fitted rows.")
    p.add_argument("spec", metavar="SPEC", help="spec file")
    p.add_argument("--data", metavar="NEW.csv", default=None,
                   help="CSV of new rows (path from the working directory; it must lie inside "
                        "the spec's folder or --data-root)")
    p.add_argument("--method", "-m", default="mle", choices=METHODS,
                   help="fitting method (default: mle)")
    p.add_argument("--level", type=float, metavar="P", default=None,
                   help="coverage of the predictive interval in (0, 1), e.g. 0.9")
    p.add_argument("--uncertainty", choices=("none", "wald"), default=None,
                   help="mle/map: average over the Wald distribution of the estimate "
                        "(default: none, the plug-in)")
    p.add_argument("--json", action="store_true",
                   help="print JSON on stdout (records, method, level, seed)")
    p.add_argument("--no-progress", action="store_true", help="no sampler progress bar")
    _fit_options(p, methods=False)
    p.set_defaults(func=_cmd_predict)

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bayesmle`` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.verbose > 1:
        logging.getLogger("bayesmle").setLevel(logging.DEBUG)
    from bayesmle.errors import BayesMLEError

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        # The command owns its process: library warnings that are statistics reach the user
        # from the results' diagnostics; the rest (libraries' technical warnings) only with
        # --verbose. The library itself never changes warning filters.
        with warnings.catch_warnings():
            if not args.verbose:
                warnings.simplefilter("ignore")
            return args.func(args)
    except BayesMLEError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted: reports in progress were discarded; previous reports are intact.")
        return EXIT_INTERRUPTED
    except OSError as exc:  # the file system said no (disk full, permissions...)
        logging.getLogger("bayesmle").debug("OSError", exc_info=True)
        _err(f"error: {exc}")
        return EXIT_FAILED
    except SystemExit as exc:
        if exc.code == EXIT_TERMINATED:
            _err("terminated: reports in progress were discarded; previous reports are intact.")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
