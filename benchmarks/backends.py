"""Optional case 8 (not in the default run): bayesmle on each PyTensor backend.

For ``mode`` in NUMBA (PyTensor's default), CVM (C) and JAX, a fresh child process with
``PYTENSOR_FLAGS=mode=...`` and *empty* on-disk compile caches runs

* the case-4 ``map_to_mle`` study cold (first compilation of its two structures) and warm;
* the case-1 warm logistic MLE (n=1e5, d=20; median of 3 after a fit on other data);
* one evaluation of that model's objective (value, gradient, Hessian) at the optimum.

bayesmle compiles with PyTensor's default mode, so the flag switches every compiled function.
Run with ``python -m benchmarks --cases backends``; about 3-5 minutes.
"""

from __future__ import annotations

import json
import statistics
import sys

from benchmarks import _data
from benchmarks._harness import CaseResult, Config, quiet, run_child, timed

NAME = "backends"
TITLE = "8. PyTensor backends: cold compilation vs warm speed (optional)"

MODES = ("NUMBA", "CVM", "JAX")


def child(argv: list[str]) -> None:
    """``python -m benchmarks.backends quick|full``: measurements on the current backend."""
    from benchmarks.study_map_to_mle import _ns, _study

    quick = argv[0] == "quick"
    ns = _ns(quick)
    n = 20_000 if quick else 100_000
    with quiet():
        import bayesmle as bm
        from bayesmle.inference.engine import bind

        cold, _ = timed(lambda: _study(ns))
        warm, _ = timed(lambda: _study(ns))
        X0, y0 = _data.logistic(n, 20, seed=0)
        X1, y1 = _data.logistic(n, 20, seed=1)
        first, _ = timed(lambda: bm.fit(bm.models.logistic_regression(X0, y0), "mle"))
        fits = [timed(lambda: bm.fit(bm.models.logistic_regression(X1, y1), "mle"))
                for _ in range(3)]
        spec = bm.models.logistic_regression(X1, y1).flat()
        fn = bind(spec).objective()
        x = fits[-1][1].optimum.x
        fn(x)
        evals = [timed(lambda: fn(x))[0] for _ in range(5)]
    print(json.dumps({"cold_study": cold, "warm_study": warm, "first_mle": first,
                      "warm_mle": statistics.median(t for t, _ in fits),
                      "objective_eval": statistics.median(evals)}))


def run(cfg: Config) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    mode = "quick" if cfg.quick else "full"
    res.notes.append("Each line: one fresh child process with empty PyTensor/Numba on-disk "
                     "caches and PYTENSOR_FLAGS=mode=<backend>.")
    for backend in MODES:
        try:
            out = run_child(NAME, mode, empty_cache=True,
                            env={"PYTENSOR_FLAGS": f"mode={backend}"})
        except RuntimeError as exc:
            res.notes.append(f"{backend}: failed ({str(exc).strip().splitlines()[-1]}).")
            continue
        res.row("map_to_mle study (case 4), cold, empty caches", backend, out["cold_study"])
        res.row("map_to_mle study (case 4), warm", backend, out["warm_study"])
        res.row("logistic MLE n=1e5, d=20: first fit (compiles)", backend, out["first_mle"])
        res.row("logistic MLE n=1e5, d=20: warm fit (median of 3)", backend, out["warm_mle"],
                reps=3)
        res.row("one objective evaluation (f, grad, Hessian) at n=1e5", backend,
                out["objective_eval"], reps=5)
    return res


if __name__ == "__main__":
    child(sys.argv[1:])
