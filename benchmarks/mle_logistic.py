"""Case 1: MLE logistic regression (n=1e5, d=20), bayesmle vs statsmodels ``Logit`` (Newton).

* warm: ``bayesmle.fit(logistic_regression(X, y), "mle")`` with the model structure already
  compiled by a fit on other data of the same shape, vs ``Logit(y, add_constant(X)).fit(disp=0)``;
  both timed from the raw arrays (spec/model construction included), alternately.
* cold, on their own lines: the first fit in a fresh process (PyTensor's and Numba's on-disk
  compile caches as they are) and a fit after ``bayesmle.clear_cache()`` (median). The first fit
  on a fresh machine (empty on-disk caches) is measured by the optional case 8 (``backends``).
"""

from __future__ import annotations

import numpy as np

from benchmarks import _data
from benchmarks._harness import (
    CaseResult,
    Check,
    Config,
    Target,
    measure,
    measure_pair,
    profile_breakdown,
    quiet,
    timed,
    top_shares,
)

NAME = "mle_logistic"
TITLE = "1. MLE logistic regression vs statsmodels Logit"


def run(cfg: Config) -> CaseResult:
    import statsmodels.api as sm

    import bayesmle as bm
    from bayesmle import models

    res = CaseResult(NAME, TITLE)
    n, d = (20_000, 20) if cfg.quick else (100_000, 20)
    X0, y0 = _data.logistic(n, d, seed=0)  # compiles the structure
    X1, y1 = _data.logistic(n, d, seed=1)  # the benchmark data
    res.notes.append(f"n={n}, d={d}; X standard normal, y simulated from a logistic model.")

    with quiet():
        bm.clear_cache()
        dt, first = timed(lambda: bm.fit(models.logistic_regression(X0, y0), "mle"))
        res.row("cold fit, first in process (on-disk cache as is)", "bayesmle", dt,
                note=f"of which compiling {first.compile_seconds:.2f} s")

        def cold():
            bm.clear_cache()
            return bm.fit(models.logistic_regression(X0, y0), "mle")

        t_cold, _ = measure(cold, cfg.r(3, 1), warmup=0)
        res.row("cold fit after clear_cache() (PyTensor/Numba caches warm)", "bayesmle", t_cold)

        ours = lambda: bm.fit(models.logistic_regression(X1, y1), "mle")  # noqa: E731
        peer = lambda: sm.Logit(y1, sm.add_constant(X1)).fit(disp=0)  # noqa: E731
        t_ours, r_ours, t_peer, r_peer = measure_pair(ours, peer, cfg.r(7, 2))
        prof = profile_breakdown(ours) if cfg.profile else []

    res.row("warm fit (compiled structure, new data)", "bayesmle", t_ours,
            note=f"{r_ours.n_iter} Newton iterations, converged={r_ours.converged}")
    res.row("fit", "statsmodels Logit (newton)", t_peer,
            note=f"{r_peer.mle_retvals['iterations']} iterations")
    ratio = t_ours.median / t_peer.median
    res.targets.append(Target(
        NAME, "warm MLE time / statsmodels Logit", ratio, 1.5, "le",
        f"{t_ours.median:.3g} s", f"{t_peer.median:.3g} s",
        why=f"Profile of a warm fit: {top_shares(prof)}. `compiled.py:evaluate` is the Newton "
            "iterations (value, gradient and PyTensor's autodiff Hessian over n rows); "
            "`separation.py:_solve`, if present, is the separation LP (on data of this size it "
            "runs only when the fit reaches separation-like fitted values). See "
            "benchmarks/README.md."))
    ours_params = np.r_[r_ours.params["intercept"], r_ours.params["coef"]]
    res.checks.append(Check(NAME, "max |params − statsmodels params|",
                            float(np.max(np.abs(ours_params - r_peer.params))), 1e-6))
    ours_se = np.r_[r_ours.stderr["intercept"], r_ours.stderr["coef"]]
    res.checks.append(Check(NAME, "max relative |stderr − statsmodels bse|",
                            float(np.max(np.abs(ours_se / r_peer.bse - 1))), 1e-6))
    res.add_profile("one warm bayesmle fit", prof)
    return res
