"""Case 3: MAP ridge and lasso (n=1e4, d=100) vs scikit-learn (and skglm) at the mapped alpha.

Linear regression with a flat intercept and sigma (HalfFlat) estimated jointly:

* ``prior=Normal(tau)`` on the slopes  ⇔  ``Ridge(alpha = sigma² / tau²)``;
* ``prior=Laplace(b)`` on the slopes   ⇔  ``Lasso(alpha = sigma² / (b n))`` (exact zeros).

With sigma estimated jointly the MAP is a fixed point (sigma² = RSS/n at the solution), so
bayesmle is fitted first and the peers are then timed at the alpha computed from bayesmle's
sigma. The timed peer fits use their defaults (scikit-learn ``Lasso``: ``tol=1e-4``; skglm
``Lasso``: ``tol=1e-4``); the agreement check uses a separate, untimed ``Lasso(tol=1e-12)`` fit,
and its time is reported on its own line.

The timed part runs twice, each time in a fresh child process: once with the default BLAS
threading (the environment the user started the benchmarks with: OpenBLAS picks one thread per
core) and once with one BLAS thread (``OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1``).
Users run with the default; many small BLAS calls collapse under a threaded BLAS on a busy
machine, so both lines are reported. Every timed call starts from the raw arrays (spec
construction included) and the calls alternate (ours, scikit-learn, skglm, ours, ...).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from benchmarks import _data
from benchmarks._harness import (
    CaseResult,
    Check,
    Config,
    Target,
    Timing,
    blas_settings,
    env_threads,
    profile_breakdown,
    quiet,
    run_child,
    timed,
    top_shares,
)

NAME = "map_penalized"
TITLE = "3. MAP ridge and lasso vs scikit-learn Ridge / Lasso (and skglm Lasso)"

TAU = 0.05  # Normal(0, tau) on the slopes: alpha = sigma² / tau² ≈ 1600 for sigma ≈ 2
B = 0.004   # Laplace(0, b) on the slopes: alpha = sigma² / (b n) ≈ 0.1 for n = 1e4
N, D = 10_000, 100


def _alternate(calls: dict, reps: int) -> tuple[dict, dict]:
    """One untimed call of each, then ``reps`` rounds of timed calls in turn."""
    out = {name: fn() for name, fn in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, fn in calls.items():
            dt, out[name] = timed(fn)
            times[name].append(dt)
    return times, out


def measure_child(reps: int, profile: bool) -> dict:
    """The timed part, in this process (run as a child with a given BLAS setting)."""
    from sklearn.linear_model import Lasso, Ridge

    import bayesmle as bm
    from bayesmle import models

    try:
        from skglm import Lasso as SkglmLasso
    except ImportError:  # optional peer
        SkglmLasso = None  # noqa: N806

    X0, y0 = _data.linear(N, D, seed=10, sparse=10, noise=2.0)
    X1, y1 = _data.linear(N, D, seed=11, sparse=10, noise=2.0)
    result: dict = {"threads": env_threads()}
    for kind, prior in (("ridge", bm.Normal(TAU)), ("lasso", bm.Laplace(B))):
        entry: dict = {}
        with quiet():
            bm.clear_cache()
            dt, first = timed(lambda p=prior: bm.fit(models.linear_regression(X0, y0, prior=p),
                                                      "map"))
            entry["cold"], entry["compile"] = dt, first.compile_seconds
            ours = lambda p=prior: bm.fit(models.linear_regression(X1, y1, prior=p), "map")  # noqa: E731
            sigma = float(ours().params["sigma"])
            calls = {"bayesmle": ours}
            if kind == "ridge":
                alpha = sigma**2 / TAU**2
                calls["scikit-learn"] = lambda a=alpha: Ridge(alpha=a).fit(X1, y1)
            else:
                alpha = sigma**2 / (B * N)
                calls["scikit-learn"] = lambda a=alpha: Lasso(alpha=a).fit(X1, y1)
                if SkglmLasso is not None:
                    calls["skglm"] = lambda a=alpha: SkglmLasso(alpha=a).fit(X1, y1)
            times, out = _alternate(calls, reps)
            entry["profile"] = profile_breakdown(ours) if profile else []
        fit = out["bayesmle"]
        coef = np.asarray(fit.params["coef"])
        entry.update(alpha=alpha, times=times, n_iter=fit.n_iter, converged=bool(fit.converged))
        if kind == "ridge":
            ref = out["scikit-learn"]
        else:
            dt, ref = timed(lambda a=alpha: Lasso(alpha=a, tol=1e-12, max_iter=100_000)
                            .fit(X1, y1))
            entry["tight"] = dt
            entry["zeros"] = int(np.sum(coef == 0.0))
            entry["same_zeros"] = bool(np.array_equal(coef == 0.0, ref.coef_ == 0.0))
            entry["default_coef_diff"] = float(np.max(np.abs(coef - out["scikit-learn"].coef_)))
            if "skglm" in out:
                entry["skglm_coef_diff"] = float(np.max(np.abs(coef - out["skglm"].coef_)))
        entry["coef_diff"] = float(np.max(np.abs(coef - ref.coef_)))
        entry["intercept_diff"] = abs(float(fit.params["intercept"]) - float(ref.intercept_))
        result[kind] = entry
    return result


def run(cfg: Config) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    reps = cfg.r(7, 2)
    res.notes.append(f"n={N}, d={D}; 10 non-zero slopes, noise sd 2; ridge tau={TAU}, lasso "
                     f"b={B}. Each BLAS setting runs in its own fresh process; within it the "
                     "timed calls alternate.")
    config = json.dumps({"reps": reps, "profile": cfg.profile})
    for label, env, unset in blas_settings():
        try:
            out = run_child(NAME, config, env=env, unset=unset, timeout=900.0)
        except RuntimeError as exc:
            res.notes.append(f"{label}: the child process failed: {exc}")
            continue
        res.notes.append(f"{label}: {out['threads']}")
        for kind in ("ridge", "lasso"):
            _report(res, label, kind, out[kind])
    return res


def _report(res: CaseResult, label: str, kind: str, e: dict) -> None:
    t = {name: Timing(v) for name, v in e["times"].items()}
    ours, peer = t["bayesmle"], t["scikit-learn"]
    res.row(f"{kind} [{label}]: cold fit, first in process", "bayesmle", e["cold"],
            note=f"of which compiling {e['compile']:.2f} s")
    res.row(f"{kind} [{label}]: warm MAP fit incl. spec construction", "bayesmle", ours,
            note=f"{e['n_iter']} iterations, converged={e['converged']}")
    peer_name = f"scikit-learn {kind.title()}(alpha={e['alpha']:.4g})"
    res.row(f"{kind} [{label}]: fit at the mapped alpha (defaults)", peer_name, peer)
    if "skglm" in t:
        res.row(f"{kind} [{label}]: fit at the mapped alpha (defaults)",
                f"skglm Lasso(alpha={e['alpha']:.4g})", t["skglm"])
    if kind == "lasso":
        res.row(f"lasso [{label}]: fit at tol=1e-12 (for the agreement check)",
                "scikit-learn Lasso", e["tight"])
        res.checks.append(Check(NAME, f"lasso [{label}]: zero patterns differ (0 = identical)",
                                float(not e["same_zeros"]), 0.0,
                                f"bayesmle has {e['zeros']} exact zeros of {D}"))
        res.checks.append(Check(NAME, f"lasso [{label}]: max |coef − Lasso(tol=1e-4) coef| "
                                "(info)", e["default_coef_diff"], 1e-3))
        if "skglm_coef_diff" in e:
            res.checks.append(Check(NAME, f"lasso [{label}]: max |coef − skglm coef| (info)",
                                    e["skglm_coef_diff"], 1e-3))
    res.checks.append(Check(NAME, f"{kind} [{label}]: max |coef − scikit-learn coef|",
                            e["coef_diff"], 1e-6))
    res.checks.append(Check(NAME, f"{kind} [{label}]: |intercept − scikit-learn intercept|",
                            e["intercept_diff"], 1e-6))
    why = _WHY[kind].format(top=top_shares(e["profile"]))
    res.targets.append(Target(
        NAME, f"{kind} [{label}]: warm MAP time / scikit-learn {kind.title()}",
        ours.median / peer.median, 1.0, "le", f"{ours.median:.3g} s", f"{peer.median:.3g} s",
        why=why))
    if "skglm" in t:
        res.targets.append(Target(
            NAME, f"lasso [{label}]: warm MAP time / skglm Lasso",
            ours.median / t["skglm"].median, 1.0, "le", f"{ours.median:.3g} s",
            f"{t['skglm'].median:.3g} s", why=why))
    res.add_profile(f"one warm bayesmle {kind} MAP fit [{label}]", e["profile"])


_WHY = {
    "ridge": "Profile of a warm fit: {top}. Both sides form the (d+1)×(d+1) Gram matrix in one "
             "BLAS pass; on top of scikit-learn's one Cholesky solve, bayesmle validates the "
             "data, certifies full rank from the Gram factor (Cholesky and triangular inverse "
             "by compiled loops: a norm bound on the condition number, no SVD), refines its "
             "least-squares anchor and certifies the optimum with exact Newton steps on the "
             "compiled sufficient-statistics objective.",
    "lasso": "Profile of a warm fit: {top}. scikit-learn runs compiled coordinate descent on X "
             "once, to tol=1e-4, without forming X'X; bayesmle forms the Gram matrix (one "
             "BLAS pass, threaded), starts at the least-squares anchor and runs proximal Newton "
             "to a certified optimum (exact zeros, Newton decrement <= 1e-10): each step "
             "evaluates the compiled objective and solves the L1 subproblem (exact solve on "
             "the current sign pattern, else Numba coordinate descent and feature-sign "
             "search), the small p×p algebra by compiled loops, not BLAS calls.",
}


if __name__ == "__main__":  # the child: python -m benchmarks.map_penalized CONFIG_JSON
    settings = json.loads(sys.argv[1])
    print(json.dumps(measure_child(int(settings["reps"]), bool(settings["profile"]))))
