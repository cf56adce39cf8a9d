"""Case 2: MLE linear regression (n=1e5, d=50), bayesmle vs statsmodels ``OLS``.

Warm bayesmle fit (structure compiled on other data of the same shape) vs
``OLS(y, add_constant(X)).fit()``, both from the raw arrays, timed alternately. The MLE of sigma
divides by n: it is compared with ``sqrt(ssr / n)``.
"""

from __future__ import annotations

import numpy as np

from benchmarks import _data
from benchmarks._harness import (
    CaseResult,
    Check,
    Config,
    Target,
    measure_pair,
    profile_breakdown,
    quiet,
    timed,
    top_shares,
)

NAME = "mle_linear"
TITLE = "2. MLE linear regression vs statsmodels OLS"


def run(cfg: Config) -> CaseResult:
    import statsmodels.api as sm

    import bayesmle as bm
    from bayesmle import models

    res = CaseResult(NAME, TITLE)
    n, d = (20_000, 50) if cfg.quick else (100_000, 50)
    X0, y0 = _data.linear(n, d, seed=0)
    X1, y1 = _data.linear(n, d, seed=1)
    res.notes.append(f"n={n}, d={d}; X standard normal, y = 1 + X beta + N(0, 1).")
    with quiet():
        bm.clear_cache()
        dt, first = timed(lambda: bm.fit(models.linear_regression(X0, y0), "mle"))
        res.row("cold fit, first in process", "bayesmle", dt,
                note=f"of which compiling {first.compile_seconds:.2f} s")
        ours = lambda: bm.fit(models.linear_regression(X1, y1), "mle")  # noqa: E731
        peer = lambda: sm.OLS(y1, sm.add_constant(X1)).fit()  # noqa: E731
        t_ours, r_ours, t_peer, r_peer = measure_pair(ours, peer, cfg.r(7, 2))
        prof = profile_breakdown(ours) if cfg.profile else []
    res.row("warm fit (compiled structure, new data)", "bayesmle", t_ours,
            note=f"{r_ours.n_iter} Newton iterations, converged={r_ours.converged}")
    res.row("fit", "statsmodels OLS (pinv)", t_peer)
    ratio = t_ours.median / t_peer.median
    res.targets.append(Target(
        NAME, "warm MLE time / statsmodels OLS", ratio, 1.5, "le",
        f"{t_ours.median:.3g} s", f"{t_peer.median:.3g} s",
        why=f"Profile of a warm fit: {top_shares(prof)}. See benchmarks/README.md."))
    ours_params = np.r_[r_ours.params["intercept"], r_ours.params["coef"]]
    res.checks.append(Check(NAME, "max |params − statsmodels params|",
                            float(np.max(np.abs(ours_params - r_peer.params))), 1e-6))
    sigma = float(np.sqrt(r_peer.ssr / n))
    res.checks.append(Check(NAME, "|sigma − sqrt(ssr/n)| / sigma",
                            abs(float(r_ours.params["sigma"]) - sigma) / sigma, 1e-6))
    res.add_profile("one warm bayesmle fit", prof)
    return res
