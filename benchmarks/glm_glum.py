"""Case 12: logistic and Poisson MLE (d=20) vs glum, at n=1e5 (target) and n=1e6 (reported).

glum (QuantCo) is the fastest well-kept GLM fitter for Python: IRLS with a Cholesky of X'WX
in compiled code. Both sides fit the unpenalised GLM with an intercept from the raw arrays
(spec / estimator construction included), timed alternately in one process after one untimed
warm-up each; bayesmle's structure is compiled by the warm-up (a *warm* fit, as in case 1):

* ``bayesmle.fit(logistic_regression(X, y) | poisson_regression(X, y), "mle")``;
* ``glum.GeneralizedLinearRegressor(family="binomial" | "poisson", alpha=0).fit(X, y)``,
  glum's defaults otherwise (IRLS; ``gradient_tol=1e-4`` on its objective, the *mean*
  deviance, i.e. a gradient n times looser than bayesmle's stop).

The agreement check uses a separate, untimed glum fit with ``gradient_tol=1e-12``.
"""

from __future__ import annotations

import numpy as np

from benchmarks import _data
from benchmarks._harness import CaseResult, Check, Config, Target, measure_pair, quiet

NAME = "glm_glum"
TITLE = "12. Logistic and Poisson MLE vs glum (n=1e5 target, n=1e6 reported)"

D = 20
WHY = ("bayesmle's Newton Hessian is PyTensor's automatic Jacobian of the gradient (d+1 "
       "vectorised passes over the n rows, compiled by Numba) and each fit validates the"
       " data and certifies the optimum; glum forms X'WX once per IRLS step with its "
       "compiled sandwich product and stops at gradient 1e-4 on the mean deviance. A "
       "closed-form X'WX for the GLM families is the next step.")


def _poisson(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal predictors, coefficients N(0, 0.1), intercept 0.5; y ~ Poisson."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = rng.normal(0.0, 0.1, d)
    y = rng.poisson(np.exp(0.5 + X @ beta)).astype(np.float64)
    return X, y


def run(cfg: Config) -> CaseResult:
    from glum import GeneralizedLinearRegressor

    import bayesmle as bm
    from bayesmle import models

    res = CaseResult(NAME, TITLE)
    sizes = (20_000,) if cfg.quick else (100_000, 1_000_000)
    res.notes.append(f"d={D}; sizes {sizes}; glum {__import__('glum').__version__} with its "
                     "default tolerances for the timed fits.")
    families = {
        "logistic": (models.logistic_regression, "binomial",
                     lambda n, s: _data.logistic(n, D, seed=s)),
        "poisson": (models.poisson_regression, "poisson", lambda n, s: _poisson(n, D, s)),
    }
    for kind, (builder, family, simulate) in families.items():
        for n in sizes:
            X, y = simulate(n, 40 + n % 7)
            ours = lambda b=builder, X=X, y=y: bm.fit(b(X, y), "mle")  # noqa: E731
            peer = lambda f=family, X=X, y=y: GeneralizedLinearRegressor(  # noqa: E731
                family=f, alpha=0).fit(X, y)
            reps = cfg.r(7, 2) if n <= 100_000 else cfg.r(3, 1)
            with quiet():
                t_ours, r_ours, t_peer, _ = measure_pair(ours, peer, reps)
                tight = GeneralizedLinearRegressor(family=family, alpha=0,
                                                   gradient_tol=1e-12).fit(X, y)
            res.row(f"{kind} n={n:.0e}: warm MLE", "bayesmle", t_ours,
                    note=f"{r_ours.n_iter} Newton iterations, converged={r_ours.converged}")
            res.row(f"{kind} n={n:.0e}: fit", "glum (IRLS, defaults)", t_peer)
            ratio = t_ours.median / t_peer.median
            if n == 100_000 or cfg.quick:
                res.targets.append(Target(NAME, f"{kind} n={n:.0e}, d={D}: warm MLE / glum",
                                          ratio, 1.0, "le", f"{t_ours.median:.3g} s",
                                          f"{t_peer.median:.3g} s", why=WHY))
            else:
                res.notes.append(f"{kind} n={n:.0e}: bayesmle / glum = {ratio:.2f}× "
                                 f"({t_ours.median:.3g} s vs {t_peer.median:.3g} s).")
            ours_params = np.r_[r_ours.params["intercept"], r_ours.params["coef"]]
            ref = np.r_[tight.intercept_, tight.coef_]
            res.checks.append(Check(NAME, f"{kind} n={n:.0e}: max |params − glum (tol 1e-12)|",
                                    float(np.max(np.abs(ours_params - ref))), 1e-6))
    return res
