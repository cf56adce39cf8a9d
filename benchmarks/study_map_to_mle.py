"""Case 4: a ``map_to_mle`` study over 10 sample sizes vs a naive ``find_MAP`` loop.

Logistic regression with d=5 predictors, prior Normal(0, 1) on the slopes, one data set per
sample size (n = 100 ... 10,000, log-spaced). At every n both sides compute the MLE and the MAP:

* bayesmle: ``studies.map_to_mle(models.logistic_regression, simulate, Normal(1.0), ns,
  reps=1, random_seed=0)`` -- two model structures (flat and Normal prior), each compiled once
  and refitted with new data;
* naive: per n, build a plain PyMC model from the data (flat priors, then the Normal prior) and
  call ``pymc.find_MAP`` on each -- a new graph, hence a new compilation, every call.

The target compares the naive loop with a *cold* study: run in a fresh child process (empty
in-process cache, so bayesmle compiles both structures; PyTensor's and Numba's on-disk caches as
they are on this machine -- the normal situation after a first use, and the naive loop enjoys the
same caches). Also reported: the study after ``clear_cache()`` in process, and warm. Import
time is excluded everywhere. The study on a fresh machine (empty on-disk caches: the first-ever
compilation) is measured by the optional case 8 (``backends``), with the naive loop's time for
comparison in this case. The naive loop runs on the very same data sets (the study's documented
seeding: one ``SeedSequence(random_seed).spawn`` stream per task), so the estimates are compared.
The data seed is drawn anew for every run: the naive models embed the data as constants, and a
data set seen in an earlier run would hit PyTensor's/Numba's on-disk caches and skip compiling.
"""

from __future__ import annotations

import json
import secrets
import sys

import numpy as np

from benchmarks._harness import (
    CaseResult,
    Check,
    Config,
    Target,
    Timing,
    measure,
    profile_breakdown,
    quiet,
    run_child,
    timed,
)

NAME = "study_map_to_mle"
TITLE = "4. map_to_mle study (10 sample sizes) vs a naive find_MAP loop"

D = 5
PRIOR_SD = 1.0


def simulate(n: int, rng: np.random.Generator) -> dict:
    """Logistic data with D standard-normal predictors and slopes 0.5 (module level: picklable)."""
    X = rng.standard_normal((n, D))
    eta = -0.3 + X @ np.full(D, 0.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    return {"X": X, "y": y}


def naive_point(X: np.ndarray, y: np.ndarray, prior_sd: float | None) -> np.ndarray:
    """Rebuild a plain PyMC model and run ``find_MAP`` (flat prior: the MLE)."""
    import pymc as pm

    with pm.Model() as model:
        a = pm.Flat("intercept")
        b = (pm.Flat("coef", shape=X.shape[1]) if prior_sd is None
             else pm.Normal("coef", 0.0, prior_sd, shape=X.shape[1]))
        pm.Bernoulli("y", logit_p=a + X @ b, observed=y)
    dt = pm.find_MAP(model=model, progressbar=False, jitter=False, return_inferencedata=True)
    post = dt["posterior"]
    return np.r_[post["intercept"].values.ravel(), post["coef"].values.ravel()]


def naive_loop(ns, random_seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    seeds = np.random.SeedSequence(random_seed).spawn(len(ns))
    out = []
    for n, seed in zip(ns, seeds, strict=True):
        data = simulate(n, np.random.default_rng(seed))
        out.append((naive_point(data["X"], data["y"], None),
                    naive_point(data["X"], data["y"], PRIOR_SD)))
    return out


def _ns(quick: bool) -> list[int]:
    return [int(v) for v in np.geomspace(100, 10_000, 3 if quick else 10).round()]


def _study(ns, seed: int = 0):
    import bayesmle as bm
    from bayesmle import models, studies

    return studies.map_to_mle(models.logistic_regression, simulate, bm.Normal(PRIOR_SD), ns,
                              reps=1, random_seed=seed)


def child(argv: list[str]) -> None:
    """``python -m benchmarks.study_map_to_mle quick|full SEED``: a first study in a process."""
    ns, seed = _ns(argv[0] == "quick"), int(argv[1])
    with quiet():
        import bayesmle  # noqa: F401  (import time is not part of the measurement)

        cold, _ = timed(lambda: _study(ns, seed))
        warm, _ = timed(lambda: _study(ns, seed))
    print(json.dumps({"cold": cold, "warm": warm}))


def run(cfg: Config) -> CaseResult:
    import bayesmle as bm

    res = CaseResult(NAME, TITLE)
    ns = _ns(cfg.quick)
    res.notes.append(f"Logistic regression, d={D}, prior Normal(0, {PRIOR_SD}) on the slopes; "
                     f"ns = {ns}; reps=1; MLE and MAP at every n on both sides.")
    # New data every run: the naive graphs embed the data as constants, so data seen in an
    # earlier run would be found in PyTensor's/Numba's on-disk caches and skip compilation.
    seed = secrets.randbelow(2**31)
    res.notes.append(f"Data seed of this run: {seed} (new each run, see the module docstring).")
    mode = "quick" if cfg.quick else "full"
    child_reps = cfg.r(3, 1)
    fresh = [run_child(NAME, mode, str(seed)) for _ in range(child_reps)]
    t_child = Timing([f["cold"] for f in fresh])
    res.row("study, cold: fresh process, on-disk compile caches as is", "bayesmle", t_child,
            note="compiles the flat and the Normal-prior structure")
    with quiet():
        t_naive, naive = measure(lambda: naive_loop(ns, seed), 1, warmup=0)
        res.row(f"naive loop: rebuild + find_MAP ×{2 * len(ns)}", "PyMC find_MAP (L-BFGS-B)",
                t_naive, note=f"{t_naive.median / (2 * len(ns)):.2f} s per find_MAP call")

        def cold_study():
            bm.clear_cache()
            return _study(ns, seed)

        t_cold, result = measure(cold_study, cfg.r(3, 1), warmup=0)
        res.row("study after clear_cache() in process", "bayesmle", t_cold)
        t_warm, result = measure(lambda: _study(ns, seed), cfg.r(3, 1), warmup=0)
        res.row("study, warm (structures compiled)", "bayesmle", t_warm,
                note=f"{t_warm.median / (2 * len(ns)) * 1e3:.0f} ms per fit")
        prof = profile_breakdown(cold_study) if cfg.profile else []

    res.targets.append(Target(
        NAME, "naive loop time / cold study time (speed-up)", t_naive.median / t_child.median,
        10.0, "ge", f"{t_child.median:.3g} s", f"{t_naive.median:.3g} s",
        why="the study's cost is building its two structures' functions ("
            "Python linker: graph building and fast_compile rewrites, ~1 s each, no "
            "compilation) against loading them from Numba's warm on-disk cache before; with "
            "empty caches the study compiles nothing while the naive loop compiles twice per "
            "point."))
    res.notes.append(f"Speed-up with the structures already compiled (warm study): "
                     f"{t_naive.median / t_warm.median:.0f}×. Study slope of log|MAP−MLE| "
                     f"against log n: {result.slope:.2f} (theory −1).")

    table = result.table[result.table["parameter"].notna()]
    diffs_mle, diffs_map = [], []
    for n, (mle, map_) in zip(ns, naive, strict=True):
        rows = table[table["n"] == n]
        diffs_mle.append(np.max(np.abs(rows["mle"].to_numpy() - mle)))
        diffs_map.append(np.max(np.abs(rows["map"].to_numpy() - map_)))
    res.checks.append(Check(NAME, "max |MLE(study) − MLE(find_MAP)| over n (find_MAP's "
                            "default L-BFGS-B stop)", float(max(diffs_mle)), 1e-3))
    res.checks.append(Check(NAME, "max |MAP(study) − MAP(find_MAP)| over n",
                            float(max(diffs_map)), 1e-3))
    res.add_profile("one study after clear_cache() (in-process compilation included)", prof)
    return res


if __name__ == "__main__":
    child(sys.argv[1:])
