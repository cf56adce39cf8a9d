"""Before a GLMM fit: existence of the MLE (separation), the GLM start, start vectors.

* The fixed effects run to infinity when the rows are (quasi-)completely separated by ``X``
  (binomial families) or when the zero counts can be pushed to ``-inf`` (Poisson): a random
  effect with finite variance cannot stop it. :func:`separation_message` asks the project's
  linear programme (:func:`bayesmle.models.separation.find_separation`) on ``X``.
* The start of ``(theta, beta)`` is lme4's: the GLM fit (Newton's method with step halving on
  the concave log-likelihood, here by :func:`glm_beta`) and ``theta`` = 1 on the diagonal of
  each ``L_b``, 0 below.
"""

from __future__ import annotations

import numpy as np

from bayesmle.errors import ConvergenceError, DataError, SpecError
from bayesmle.inference.mixed.glmm_family import RowLik
from bayesmle.models.mixed_design import MixedDesign, theta_from_components, theta_lower_bounds
from bayesmle.models.separation import binary_directions, find_separation

__all__ = ["glm_beta", "natural_to_theta", "separation_message", "start_x"]


def separation_message(design: MixedDesign, rl: RowLik) -> str | None:
    """Why the MLE of the fixed effects does not exist, or None when it does (LP certificate)."""
    X = np.asarray(design.X, dtype=float)
    if X.shape[1] == 0:
        return None
    if rl.family == "binomial":
        Xe, ye = binary_directions(X, rl.y, rl.m)
        fam = "bernoulli"
    else:
        Xe, ye, fam = X, rl.y, rl.family
    sep = find_separation(Xe, ye, fam, intercept=False)
    if sep is None:
        return None
    names = [design.fixed_names[j] for j in sep.columns]
    terms = " + ".join(f"{c:.3g}*{name}" for c, name in zip(sep.direction, names, strict=True))
    if fam == "poisson":
        what = (f"the combination {terms} is 0 on every positive count and <= 0 on every zero "
                "count, so the zero counts' mean runs to 0")
    else:
        what = (f"the combination {terms} separates the outcomes "
                f"({'completely' if sep.complete else 'quasi-completely'}): >= 0 for every "
                "success, <= 0 for every failure")
    return (f"The MLE does not exist: the fixed effect(s) {names} run to infinity -- {what}. "
            "A random effect cannot stop it. Drop or merge those columns, or give them a proper "
            "prior and fit method='map'.")


def glm_beta(design: MixedDesign, rl: RowLik, max_iter: int = 100) -> np.ndarray:
    """The GLM MLE of ``beta`` (no random effects) by Newton's method with step halving.

    Raises
    ------
    DataError
        ``X`` is rank deficient (the fixed effects are not identified).
    ConvergenceError
        Newton's method did not converge (the MLE should have been checked to exist).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign
    >>> from bayesmle.inference.mixed.glmm_family import row_lik
    >>> d = MixedDesign(np.ones((4, 1)), ("Intercept",), np.array([0.0, 2.0, 1.0, 1.0]), (),
    ...                 family="poisson", link="log")
    >>> float(glm_beta(d, row_lik(d))[0])  # log of the mean count
    0.0
    """
    X = np.asarray(design.X, dtype=float)
    p = X.shape[1]
    if p and np.linalg.matrix_rank(X) < p:
        raise DataError(f"`X` (columns {list(design.fixed_names)}) is rank deficient: rank "
                        f"{np.linalg.matrix_rank(X)} < {p} columns; drop a redundant column.")
    beta = np.zeros(p)
    if p == 0:
        return beta
    if rl.family == "poisson" and "Intercept" in design.fixed_names:
        beta[design.fixed_names.index("Intercept")] = np.log(max(np.mean(rl.y), 1e-3))
    f = -np.sum(rl.logpmf(X @ beta + rl.offset))
    for _ in range(max_iter):
        _, l1, l2 = rl.derivs(X @ beta + rl.offset, 2)
        g = -X.T @ l1
        H = X.T @ ((-l2)[:, None] * X)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if np.max(np.abs(step), initial=0.0) < 1e-12 * max(1.0, float(np.max(np.abs(beta)))):
            return beta + step
        t = 1.0
        for _ in range(60):
            f_try = -np.sum(rl.logpmf(X @ (beta + t * step) + rl.offset))
            if np.isfinite(f_try) and f_try <= f + 1e-13 * max(1.0, abs(f)):
                break
            t /= 2
        beta = beta + t * step
        f = f_try
    raise ConvergenceError("the GLM fit that starts the GLMM fit did not converge within "
                           f"{max_iter} Newton steps (beta = {beta.tolist()}); rescale the "
                           "predictors or give start=.")


def natural_to_theta(design: MixedDesign, sd: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """``theta`` from ``(sd, corr)`` checked, also at the boundary (a semi-definite factor).

    An ``sd`` of 0 or a correlation of +-1 gives the factor with a 0 on the diagonal (lme4's
    boundary); see ``mixed_design.theta_from_components``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> blk = RandomBlock("g", ("Intercept", "x"), ("a",), np.zeros(2, int), np.ones((2, 2)))
    >>> d = MixedDesign(np.ones((2, 1)), ("Intercept",), np.zeros(2), (blk,),
    ...                 family="bernoulli", link="logit")
    >>> natural_to_theta(d, [2.0, 1.0], [1.0]).tolist()  # corr = 1: L22 = 0
    [2.0, 1.0, 0.0]
    """
    sd = np.asarray(sd, dtype=float).reshape(-1)
    corr = np.asarray(corr, dtype=float).reshape(-1)
    n_sd, n_corr = len(design.sd_labels()), len(design.corr_labels())
    if sd.size != n_sd or corr.size != n_corr:
        raise SpecError(f"`sd` must have {n_sd} value(s) ({design.sd_labels()}) and `corr` "
                        f"{n_corr} ({design.corr_labels()}); got {sd.size} and {corr.size}.")
    if not np.all(np.isfinite(sd)) or np.any(sd < 0):
        raise SpecError(f"`sd` must be finite and >= 0; got {sd.tolist()}.")
    if not np.all(np.isfinite(corr)) or np.any(np.abs(corr) > 1):
        raise SpecError(f"`corr` must lie in [-1, 1]; got {corr.tolist()}.")
    return theta_from_components(design, sd, corr)


def start_x(design: MixedDesign, rl: RowLik, start: np.ndarray | None) -> np.ndarray:
    """The starting ``x = (theta, beta)``: from a natural ``[beta, sd, corr]`` or the GLM fit."""
    p, n_sd = design.p, len(design.sd_labels())
    m = p + n_sd + len(design.corr_labels())
    if start is None:
        theta = np.where(np.isfinite(theta_lower_bounds(design)), 1.0, 0.0)
        return np.concatenate([theta, glm_beta(design, rl)])
    start = np.asarray(start, dtype=float).reshape(-1)
    if start.size != m or not np.all(np.isfinite(start)):
        raise SpecError(f"`start` must be the natural vector [beta, sd, corr] of {m} finite "
                        f"values ({list(design.fixed_names)} then {design.sd_labels()} then "
                        f"{design.corr_labels()}); got {start.size} value(s).")
    theta = natural_to_theta(design, start[p:p + n_sd], start[p + n_sd:])
    return np.concatenate([theta, start[:p]])
