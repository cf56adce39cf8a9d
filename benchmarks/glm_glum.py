"""Case 12: logistic and Poisson MLE (d=20) vs glum, at n=1e5 (target) and n=1e6 (reported).

glum (QuantCo) is the fastest well-kept GLM fitter for Python: IRLS with a Cholesky of X'WX
in compiled code. Both sides fit the unpenalised GLM with an intercept from the raw arrays
(spec / estimator construction included), timed alternately in one process after one untimed
warm-up each; bayesmle's structure is compiled by the warm-up (a *warm* fit, as in case 1):

* ``bayesmle.fit(logistic_regression(X, y) | poisson_regression(X, y), "mle")``;
* ``glum.GeneralizedLinearRegressor(family="binomial" | "poisson", alpha=0).fit(X, y)``,
  glum's defaults otherwise (IRLS; ``gradient_tol=1e-4`` on its objective, the *mean*
  deviance, i.e. a gradient n times looser than bayesmle's stop).

The agreement check uses a separate, untimed glum fit with ``gradient_tol=1e-12``. Each
threading setting (the user's default BLAS/OpenMP threading, and one thread) runs in its own
fresh child process (``python -m benchmarks.glm_glum CONFIG_JSON``), as in case 3.
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
    measure_pair,
    profile_breakdown,
    quiet,
    run_child,
    top_shares,
)

NAME = "glm_glum"
TITLE = "12. Logistic and Poisson MLE vs glum (n=1e5 target, n=1e6 reported)"

D = 20
WHY = ("Profile of a warm fit: {top}. Both sides form X'WX once per Newton/IRLS step in "
       "compiled code (bayesmle: one pass over 256-row blocks for eta, the terms, the "
       "gradient and X'WX, mapped to its internal coordinates); bayesmle also validates the "
       "data, certifies rank from the Gram factor and polishes to a Newton decrement <= 1e-10 "
       "(one or two more steps than glum's gradient 1e-4 on the mean deviance).")


def _poisson(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal predictors, coefficients N(0, 0.1), intercept 0.5; y ~ Poisson."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = rng.normal(0.0, 0.1, d)
    y = rng.poisson(np.exp(0.5 + X @ beta)).astype(np.float64)
    return X, y


def measure_child(quick: bool, reps_small: int, reps_large: int, profile: bool) -> dict:
    """The timed part, in this process (run as a child with a given threading)."""
    from glum import GeneralizedLinearRegressor

    import bayesmle as bm
    from bayesmle import models

    sizes = (20_000,) if quick else (100_000, 1_000_000)
    families = {
        "logistic": (models.logistic_regression, "binomial",
                     lambda n, s: _data.logistic(n, D, seed=s)),
        "poisson": (models.poisson_regression, "poisson", lambda n, s: _poisson(n, D, s)),
    }
    out: dict = {"threads": env_threads(), "sizes": list(sizes), "entries": []}
    for kind, (builder, family, simulate) in families.items():
        for n in sizes:
            X, y = simulate(n, 40 + n % 7)
            ours = lambda b=builder, X=X, y=y: bm.fit(b(X, y), "mle")  # noqa: E731
            peer = lambda f=family, X=X, y=y: GeneralizedLinearRegressor(  # noqa: E731
                family=f, alpha=0).fit(X, y)
            reps = reps_small if n <= 100_000 else reps_large
            with quiet():
                t_ours, r_ours, t_peer, _ = measure_pair(ours, peer, reps)
                tight = GeneralizedLinearRegressor(family=family, alpha=0,
                                                   gradient_tol=1e-12).fit(X, y)
                prof = profile_breakdown(ours) if profile and n == sizes[0] else []
            ours_params = np.r_[r_ours.params["intercept"], r_ours.params["coef"]]
            ref = np.r_[tight.intercept_, tight.coef_]
            out["entries"].append({
                "kind": kind, "n": n, "ours": t_ours.times, "peer": t_peer.times,
                "n_iter": r_ours.n_iter, "converged": bool(r_ours.converged),
                "diff": float(np.max(np.abs(ours_params - ref))), "profile": prof})
    return out


def run(cfg: Config) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    res.notes.append(f"d={D}; glum {_glum_version()} with its default tolerances for the "
                     "timed fits. Each threading setting runs in its own fresh process; within "
                     "it the timed calls alternate.")
    config = json.dumps({"quick": cfg.quick, "reps_small": cfg.r(7, 2),
                         "reps_large": cfg.r(3, 1), "profile": cfg.profile})
    for label, env, unset in blas_settings():
        try:
            out = run_child(NAME, config, env=env, unset=unset, timeout=1800.0)
        except RuntimeError as exc:
            res.notes.append(f"{label}: the child process failed: {exc}")
            continue
        res.notes.append(f"{label}: {out['threads']}")
        for e in out["entries"]:
            _report(res, label, e, target=e["n"] == out["sizes"][0])
    return res


def _glum_version() -> str:
    try:
        import glum
    except ImportError:
        return "(not installed)"
    return glum.__version__


def _report(res: CaseResult, label: str, e: dict, target: bool) -> None:
    kind, n = e["kind"], e["n"]
    ours, peer = Timing(e["ours"]), Timing(e["peer"])
    res.row(f"{kind} n={n:.0e} [{label}]: warm MLE", "bayesmle", ours,
            note=f"{e['n_iter']} Newton iterations, converged={e['converged']}")
    res.row(f"{kind} n={n:.0e} [{label}]: fit", "glum (IRLS, defaults)", peer)
    ratio = ours.median / peer.median
    if target:
        res.targets.append(Target(NAME, f"{kind} n={n:.0e}, d={D} [{label}]: warm MLE / glum",
                                  ratio, 1.0, "le", f"{ours.median:.3g} s",
                                  f"{peer.median:.3g} s",
                                  why=WHY.format(top=top_shares(e["profile"]))))
        if e["profile"]:
            res.add_profile(f"one warm bayesmle {kind} MLE, n={n:.0e} [{label}]",
                            e["profile"])
    else:
        res.notes.append(f"{kind} n={n:.0e} [{label}]: bayesmle / glum = {ratio:.2f}× "
                         f"({ours.median:.3g} s vs {peer.median:.3g} s).")
    res.checks.append(Check(NAME, f"{kind} n={n:.0e} [{label}]: max |params − glum (tol "
                            "1e-12)|", e["diff"], 1e-6))


if __name__ == "__main__":  # the child: python -m benchmarks.glm_glum CONFIG_JSON
    settings = json.loads(sys.argv[1])
    print(json.dumps(measure_child(bool(settings["quick"]), int(settings["reps_small"]),
                                   int(settings["reps_large"]), bool(settings["profile"]))))
