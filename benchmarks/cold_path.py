"""Case 11: the cold path -- what a new user and every CI run feel.

Each measurement is a fresh Python process with *empty* PyTensor and Numba on-disk caches (a
fresh machine), the default BLAS threading (the parent's ``--blas-threads`` is removed from the
child's environment), on a small logistic regression (n=200, d=5, prior Normal(0, 1) on the
slopes for MAP and NUTS):

* bayesmle: ``import bayesmle``; the first ``fit(logistic_regression(X, y), "mle")`` (spec built
  inside the timer); in another process the first ``compare(spec)`` -- MLE, MAP, Laplace and
  NUTS with 4 chains x (1000 tuning + 1000 draws) -- straight after the import;
* statsmodels: ``import statsmodels.api``; ``Logit(y, add_constant(X)).fit(disp=0)``;
* (the children run without ``PYTHONDONTWRITEBYTECODE``, so Python's bytecode caches are
  used as on a user's machine; only PyTensor's and Numba's caches are empty);
* plain PyMC: ``import pymc``; the model (flat priors) and ``pm.find_MAP()``; in another
  process ``find_MAP`` on the flat model and on the Normal-prior model, then ``pm.sample`` (4
  chains x 1000 + 1000, PyMC's NUTS) on the Normal-prior model -- the nearest PyMC equivalent
  of ``compare`` (PyMC has no Laplace approximation of its own).

Targets (issue 16): import + first MLE <= 3 s; first ``compare()`` <= 15 s.
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks._harness import BLAS_ENV, CaseResult, Config, Target, Timing, run_child

NAME = "cold_path"
TITLE = "11. Cold path: fresh process, empty compile caches"

N, D, SEED = 200, 5, 31
WHY_COMPARE = ("What remains is NUTS: Numba compiling PyTensor's log-density kernel for nutpie "
               "from an empty cache (~88% of a cold NUTS call in the profile of case 5); with "
               "the kernel in the on-disk cache (any later process) nutpie's callbacks load in "
               "~0.7 s. MLE, MAP and Laplace are evaluated by the Python linker and compile "
               "nothing.")
KINDS = ("ours_fit", "ours_compare", "sm_fit", "pymc_map", "pymc_compare")


def _data():
    from benchmarks import _data

    return _data.logistic(N, D, seed=SEED, scale=0.5)


def _quiet_warnings():
    import warnings

    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)


def _plain_pymc(X, y, prior_sd):
    import pymc as pm

    with pm.Model() as model:
        a = pm.Flat("intercept")
        b = (pm.Flat("coef", shape=X.shape[1]) if prior_sd is None
             else pm.Normal("coef", 0.0, prior_sd, shape=X.shape[1]))
        pm.Bernoulli("y", logit_p=a + pm.math.dot(X, b), observed=y)
    return model


def child(kind: str) -> None:
    """``python -m benchmarks.cold_path KIND``: one cold measurement, JSON on stdout."""
    _quiet_warnings()
    X, y = _data()
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    if kind.startswith("ours"):
        import bayesmle as bm

        out["import"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        if kind == "ours_fit":
            bm.fit(bm.models.logistic_regression(X, y), "mle")
        else:
            bm.compare(bm.models.logistic_regression(X, y, prior=bm.Normal(1.0)),
                       random_seed=1, warn=False, draws=1000, tune=1000, chains=4)
        out["work"] = time.perf_counter() - t1
    elif kind == "sm_fit":
        import statsmodels.api as sm

        out["import"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        sm.Logit(y, sm.add_constant(X)).fit(disp=0)
        out["work"] = time.perf_counter() - t1
    else:
        import pymc as pm

        out["import"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        with _plain_pymc(X, y, None):
            pm.find_MAP(progressbar=False, return_inferencedata=True, jitter=False)
        if kind == "pymc_compare":
            with _plain_pymc(X, y, 1.0):
                pm.find_MAP(progressbar=False, return_inferencedata=True, jitter=False)
                pm.sample(draws=1000, tune=1000, chains=4, cores=2, random_seed=1,
                          progressbar=False, compute_convergence_checks=False)
        out["work"] = time.perf_counter() - t1
    out["total"] = time.perf_counter() - t0
    print(json.dumps(out))


def run(cfg: Config) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    reps = max(cfg.r(3, 1), 3) if not cfg.quick else 1
    # The user's threading: what the parent pinned is taken out of the children's environment;
    # so is PYTHONDONTWRITEBYTECODE (set on these machines; users have .pyc files).
    env_default = dict.fromkeys((*BLAS_ENV, "PYTHONDONTWRITEBYTECODE"))
    res.notes.append(f"Logistic regression n={N}, d={D}; every run a fresh process with empty "
                     f"PyTensor/Numba caches and default BLAS threading; {reps} runs each, "
                     f"interleaved (ours, peers, ours, ...).")
    runs: dict[str, list[dict]] = {k: [] for k in KINDS}
    for _ in range(reps):
        for kind in KINDS:
            runs[kind].append(run_child(NAME, kind, empty_cache=True, env=env_default))

    def timing(kind, field):
        return Timing([r[field] for r in runs[kind]])

    labels = {"ours_fit": "bayesmle", "ours_compare": "bayesmle", "sm_fit": "statsmodels",
              "pymc_map": "PyMC", "pymc_compare": "PyMC"}
    what = {"ours_fit": "first MLE (spec built in the timer)",
            "ours_compare": "first compare(): MLE, MAP, Laplace, NUTS 4×1000",
            "sm_fit": "first Logit(...).fit()",
            "pymc_map": "first model + find_MAP()",
            "pymc_compare": "find_MAP flat + find_MAP prior + pm.sample 4×1000"}
    for kind in KINDS:
        res.row(f"import ({kind})", labels[kind], timing(kind, "import"))
        res.row(what[kind], labels[kind], timing(kind, "work"))
        res.row(f"import + {what[kind]}", labels[kind], timing(kind, "total"))
    first = timing("ours_fit", "total").median
    cmp_ = timing("ours_compare", "work").median
    res.targets.append(Target(NAME, "import + first MLE, empty caches / 3 s", first / 3.0, 1.0,
                              "le", f"{first:.2f} s", "3 s (issue 16)"))
    res.targets.append(Target(NAME, "first compare() (MLE, MAP, Laplace, NUTS 4×1000), empty "
                              "caches / 15 s", cmp_ / 15.0, 1.0, "le", f"{cmp_:.1f} s",
                              "15 s (issue 16)", why=WHY_COMPARE))
    sm_total = timing("sm_fit", "total").median
    pymc_total = timing("pymc_map", "total").median
    pymc_cmp = timing("pymc_compare", "work").median
    res.notes.append(
        f"Ratios in this run: import + first MLE {first:.2f} s = {first / sm_total:.2f}× "
        f"statsmodels ({sm_total:.2f} s), {first / pymc_total:.2f}× plain PyMC find_MAP "
        f"({pymc_total:.2f} s); first compare() {cmp_:.1f} s = {cmp_ / pymc_cmp:.2f}× PyMC's "
        f"find_MAP ×2 + pm.sample ({pymc_cmp:.1f} s).")
    return res


if __name__ == "__main__":
    child(sys.argv[1])
