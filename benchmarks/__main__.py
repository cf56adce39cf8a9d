"""``python -m benchmarks``: run the cases side by side and write ``benchmarks/RESULTS.md``.

Each case runs in a fresh child process (so in-process caches, imported backends and memory
peaks of one case do not leak into the next) and returns its measurements as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks import CASES, OPTIONAL
from benchmarks._harness import BLAS_ENV, PACKAGE_ROOT, USER_BLAS_ENV, CaseResult, Config
from benchmarks._report import machine_info, render_markdown, render_text


def _select(spec: str | None) -> list[str]:
    if not spec:
        return [name for _, name in CASES]
    chosen = []
    by_number = {str(i): name for i, name in CASES + OPTIONAL}
    names = {name for _, name in CASES + OPTIONAL}
    for item in spec.split(","):
        item = item.strip()
        name = by_number.get(item, item)
        if name not in names:
            valid = ", ".join(f"{i} ({n})" for i, n in CASES + OPTIONAL)
            raise SystemExit(f"Unknown case {item!r}. Valid cases: {valid}.")
        chosen.append(name)
    return chosen


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Side-by-side benchmarks of bayesmle against statsmodels, scikit-learn, "
                    "PyMC's samplers and a naive find_MAP loop; writes benchmarks/RESULTS.md.",
    )
    p.add_argument("--cases", help="comma-separated case numbers or names (default: 1-7): "
                   + ", ".join(f"{i}={n}" for i, n in CASES + OPTIONAL)
                   + " (8 is optional: compares PyTensor backends, ~3-5 min)")
    p.add_argument("--reps", type=int, default=5,
                   help="maximum timed repetitions per measurement (default 5; some cases use "
                        "fewer for long runs)")
    p.add_argument("--quick", action="store_true",
                   help="smaller problems and 2 repetitions: a smoke run in a few minutes; "
                        "writes benchmarks/RESULTS-quick.md unless --output is given")
    p.add_argument("--no-profile", action="store_true",
                   help="skip the pyinstrument breakdown of where bayesmle's time goes")
    p.add_argument("--output", type=Path,
                   help="Markdown file to write (default benchmarks/RESULTS.md, or "
                        "benchmarks/RESULTS-quick.md with --quick); '-' to write none")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS/OpenMP threads in every benchmark process (default 1, for both "
                        "sides alike; 0 leaves the environment as it is). On a busy 2-core "
                        "machine a 2-thread OpenBLAS can make the skinny X'WX products of these "
                        "models 30x slower")
    p.add_argument("--timeout", type=float, default=1200.0,
                   help="seconds allowed per case before it is stopped (default 1200)")
    return p


def run_case(name: str, cfg: Config, timeout: float) -> CaseResult:
    """Run one case in a child process and read back its JSON result."""
    from importlib import import_module

    title = import_module(f"benchmarks.{name}").TITLE
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks._child", name, json.dumps(asdict(cfg)),
               os.fspath(out)]
        try:
            proc = subprocess.run(cmd, cwd=PACKAGE_ROOT.parent, timeout=timeout)
        except subprocess.TimeoutExpired:
            return CaseResult(name, title, error=f"stopped after the {timeout:.0f} s timeout")
        if proc.returncode != 0 or not out.exists():
            return CaseResult(name, title, error=f"child process exited with {proc.returncode}")
        return CaseResult.from_json(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.reps < 1:
        raise SystemExit("--reps must be >= 1.")
    if args.blas_threads < 0:
        raise SystemExit("--blas-threads must be >= 0.")
    if args.blas_threads:
        # the user's own settings, for cases that also measure the default threading
        os.environ.setdefault(USER_BLAS_ENV, json.dumps({v: os.environ.get(v) for v in BLAS_ENV}))
        for var in BLAS_ENV:
            os.environ[var] = str(args.blas_threads)
    cfg = Config(reps=args.reps, quick=args.quick, profile=not args.no_profile,
                 blas_threads=args.blas_threads)
    names = _select(args.cases)
    output = args.output or (PACKAGE_ROOT / ("RESULTS-quick.md" if args.quick else "RESULTS.md"))
    machine = machine_info()
    t0 = time.perf_counter()
    results = []
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        t = time.perf_counter()
        result = run_case(name, cfg, args.timeout)
        status = "FAILED" if result.error else "done"
        print(f"[bench] {name} {status} in {time.perf_counter() - t:.0f} s", flush=True)
        if result.error:
            print(result.error, file=sys.stderr)
        results.append(result)
    total = time.perf_counter() - t0
    machine["load_after"] = os.getloadavg()
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    print(render_text(results))
    if str(output) != "-":
        output.write_text(render_markdown(results, machine, cfg, total, command.strip()))
        print(f"[bench] wrote {output} ({total / 60:.1f} min)")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
