"""Detection of (quasi-)complete separation by linear programming.

For logistic regression the MLE exists iff no non-zero direction ``b`` satisfies
``x_i·b >= 0`` for every success and ``x_i·b <= 0`` for every failure (Albert & Anderson 1984).
Following Konis (2007), we maximise the total margin ``sum_i s_i x_i·b`` over that cone with
``b`` in a box: a positive optimum means separation -- complete when every margin is positive,
quasi-complete otherwise. statsmodels detects only complete separation (perfect prediction).

The same idea covers the other families with unbounded likelihood directions:

* Poisson / negative binomial with log link (Santos Silva & Tenreyro 2010): a direction with
  ``x_i·b = 0`` on every positive count and ``x_i·b <= 0`` on every zero count, not all zero;
* multinomial logit: a direction in which every observation's own class gains on every other.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse

from bayesmle.errors import ImproperPosteriorError, MLENotFoundError, checklist
from bayesmle.models.spec import ExistenceCheck

__all__ = ["SEPARATION", "improper_if_separated", "separation_check", "separating_direction"]

#: Problems larger than this (rows x outcome levels) are not screened by LP before fitting;
#: a non-convergent fit is still reported, with separation named as a possible cause.
MAX_LP_ROWS = 200_000


def _scaled_full(X: np.ndarray, intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    full = np.hstack([np.ones((X.shape[0], 1)), X]) if intercept else X
    scale = np.abs(full).max(axis=0)
    scale[scale == 0] = 1.0
    return full / scale, scale


def _solve(c, a_ub, b_ub, a_eq, b_eq, nvar):
    res = scipy.optimize.linprog(
        c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=[(-1.0, 1.0)] * nvar,
        method="highs",
    )
    return res


def _strictly_separable(margin_rows, nvar: int) -> bool:
    """Whether some direction makes *every* margin strictly positive (complete separation).

    The LP ``max t`` subject to ``margin_rows @ b >= t``, ``|b|_inf <= 1``, ``0 <= t <= 1``:
    the sum-of-margins LP of :func:`separating_direction` may stop at a vertex where some
    margins are 0 even when others could all be made positive.
    """
    rows = scipy.sparse.csr_matrix(margin_rows)
    a_ub = scipy.sparse.hstack([-rows, np.ones((rows.shape[0], 1))], format="csr")
    c = np.zeros(nvar + 1)
    c[-1] = -1.0
    res = scipy.optimize.linprog(c, A_ub=a_ub, b_ub=np.zeros(rows.shape[0]),
                                 bounds=[(-1.0, 1.0)] * nvar + [(0.0, 1.0)], method="highs")
    return bool(res.status == 0 and -res.fun > 1e-9)


def separating_direction(
    X: np.ndarray, y: np.ndarray, family: str, intercept: bool, n_classes: int = 2
) -> tuple[np.ndarray, float, bool] | None:
    """A direction along which the likelihood increases without bound, or None.

    Returns
    -------
    (direction, total_margin, complete) or None
        ``direction`` has one entry per column of the full design (intercept first, if any),
        per non-reference class for the multinomial case (shape ``(p, K-1)``).
    """
    full, scale = _scaled_full(X, intercept)
    n, p = full.shape
    tol = 1e-7 * n
    if family == "bernoulli":
        s = 2.0 * y - 1.0
        m = full * s[:, None]
        # maximise sum(m b) subject to m b >= 0
        res = _solve(-m.sum(axis=0), -m, np.zeros(n), None, None, p)
        if res.status != 0 or -res.fun <= tol:
            return None
        b = res.x
        complete = bool((m @ b > 1e-9).all()) or _strictly_separable(m, p)
        return b / scale, -res.fun, complete
    if family in ("poisson", "negative_binomial"):
        pos = y > 0
        zero = ~pos
        if not zero.any():
            return None
        a_eq = full[pos] if pos.any() else None
        b_eq = np.zeros(int(pos.sum())) if pos.any() else None
        res = _solve(full[zero].sum(axis=0), full[zero], np.zeros(int(zero.sum())), a_eq, b_eq, p)
        if res.status != 0 or -res.fun <= tol:
            return None
        return res.x / scale, -res.fun, False
    if family == "categorical":
        k1 = n_classes - 1
        codes = y.astype(int)
        # variables: B (p, K-1) raveled row-major; class 0's column is fixed at zero.
        rows, cols, vals = [], [], []
        r = 0
        for k in range(n_classes):
            mask = codes == k
            idx = np.flatnonzero(mask)
            for other in range(n_classes):
                if other == k:
                    continue
                # constraint: x_i (b_k - b_other) >= 0   ->   -x_i b_k + x_i b_other <= 0
                for i in idx:
                    for j in range(p):
                        if k > 0:
                            rows.append(r)
                            cols.append(j * k1 + (k - 1))
                            vals.append(-full[i, j])
                        if other > 0:
                            rows.append(r)
                            cols.append(j * k1 + (other - 1))
                            vals.append(full[i, j])
                    r += 1
        a = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(r, p * k1))
        c = np.asarray(a.sum(axis=0)).ravel()  # minimise sum(a b) = -(total margin)
        res = _solve(c, a, np.zeros(r), None, None, p * k1)
        if res.status != 0 or -res.fun <= tol:
            return None
        b = res.x.reshape(p, k1) / scale[:, None]
        complete = bool(((-(a @ res.x)) > 1e-9).all()) or _strictly_separable(-a, p * k1)
        return b, -res.fun, complete
    return None


def separation_check(spec) -> None:
    """Raise MLENotFoundError if the data of a GLM spec are (quasi-)completely separated."""
    family = spec.family
    intercept = spec.options["intercept"]
    X, y = spec.data["X"], spec.data["y"]
    classes = spec.options.get("classes")
    names = (("(intercept)",) if intercept else ()) + tuple(spec.coords["feature"])
    if family == "bernoulli" and np.ptp(y) == 0:
        raise MLENotFoundError(
            checklist(
                f"The MLE does not exist: every value of `y` is {int(y[0])}, a single class, so "
                "the intercept runs to " + ("+inf." if y[0] == 1 else "-inf."),
                ["Check the response column.",
                 "Give the intercept a proper prior (intercept_prior=Normal(2.5)) and fit 'map'."],
            )
        )
    levels = 1 if classes is None else len(classes) - 1
    if X.shape[0] * levels > MAX_LP_ROWS:
        return
    found = separating_direction(X, y, family, intercept, len(classes) if classes else 2)
    if found is None:
        return
    direction, _, complete = found
    weight = np.abs(direction) if direction.ndim == 1 else np.abs(direction).max(axis=1)
    involved = [names[j] for j in np.flatnonzero(weight > 1e-6 * weight.max())]
    if family == "bernoulli":
        kind = "complete" if complete else "quasi-complete"
        what = (f"{kind} separation: a linear combination of {involved} predicts every "
                f"{'' if complete else 'observation on one side of the boundary '}outcome "
                "perfectly, so the likelihood keeps increasing along it")
    elif family == "categorical":
        kind = "complete" if complete else "quasi-complete"
        what = (f"{kind} separation of the classes by a linear combination of {involved}, so "
                "the likelihood keeps increasing along it")
    else:
        what = (f"a direction in {involved} drives the mean of every zero count to 0 without "
                "changing the fit to the positive counts, so the likelihood keeps increasing "
                "along it (some coefficient's MLE is infinite)")
    raise MLENotFoundError(
        checklist(
            f"The MLE does not exist: the data show {what}.",
            ["Give the coefficients a proper prior (prior=Normal(2.5)) and fit 'map' or 'nuts' "
             "(the posterior is then proper).",
             f"Inspect the columns {involved}: a dummy that is always 0 or 1 within one outcome "
             "is the usual cause.",
             "Or drop or merge the offending predictor levels."],
        )
    )


#: A fitted probability (or Poisson mean of a zero count) this close to its limit is what
#: separation looks like at a numerically "converged" point: then the LP decides.
_EXTREME_LOGIT = 20.0


def _extreme_fit(spec, params) -> bool:
    """Whether estimates reach the fitted values that separation would produce."""
    family = spec.family
    X, y = spec.data["X"], spec.data["y"]
    eta = X @ np.asarray(params["coef"])
    if "intercept" in params:
        eta = eta + np.asarray(params["intercept"])
    if family == "bernoulli":
        return bool(np.any(eta * (2 * y - 1) > _EXTREME_LOGIT))
    if family in ("poisson", "negative_binomial"):
        eta = eta + spec.data["offset"]
        return bool(np.any(eta[y == 0] < -_EXTREME_LOGIT))
    logits = np.column_stack([np.zeros(len(y)), eta])
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return bool(np.any(-log_p[np.arange(len(y)), y.astype(int)] < np.exp(-_EXTREME_LOGIT)))


#: Separation as an existence check of the MLE; the LP may run after a fit on large data.
SEPARATION = ExistenceCheck(separation_check, suspicious=_extreme_fit)


def improper_if_separated(spec) -> None:
    """Raise ImproperPosteriorError if a flat prior leaves a separating direction unbounded.

    When the likelihood does not decay along a direction (separation, all-zero counts) the
    posterior is proper only if the prior decays along it; with flat priors on every
    coefficient the direction involves, it is improper and NUTS would drift off to infinity.
    """
    family = spec.family
    intercept = spec.options["intercept"]
    X, y = spec.data["X"], spec.data["y"]
    flat = np.array(([spec.priors["intercept"].is_flat] if intercept else [])
                    + [spec.priors["coef"].is_flat] * X.shape[1])
    if not flat.any():
        return
    classes = spec.options.get("classes")
    # Look for a runaway direction among the flat-prior coordinates only.
    flat_intercept = bool(intercept and flat[0])
    flat_coef = bool(spec.priors["coef"].is_flat)
    if family == "bernoulli" and np.ptp(y) == 0 and flat_intercept:
        support = np.zeros(flat.size, dtype=bool)
        support[0] = True
    else:
        levels = 1 if classes is None else len(classes) - 1
        if X.shape[0] * levels > MAX_LP_ROWS:
            return
        sub_X = X if flat_coef else np.zeros((X.shape[0], 0))
        if sub_X.shape[1] == 0 and not flat_intercept:
            return
        found = separating_direction(sub_X, y, family, flat_intercept,
                                     len(classes) if classes else 2)
        if found is None:
            return
        direction = found[0]
        weight = np.abs(direction) if direction.ndim == 1 else np.abs(direction).max(axis=1)
        sub_support = weight > 1e-6 * weight.max()
        support = np.zeros(flat.size, dtype=bool)
        cols = ([0] if flat_intercept else []) + (
            list(range(int(intercept), flat.size)) if flat_coef else [])
        support[np.array(cols, dtype=int)[sub_support]] = True
    if support.any():
        names = (("(intercept)",) if intercept else ()) + tuple(spec.coords["feature"])
        involved = [names[j] for j in np.flatnonzero(support)]
        raise ImproperPosteriorError(
            checklist(
                f"The posterior is improper: the likelihood does not decay along a direction in "
                f"{involved} (separation or all-zero counts; the MLE does not exist either), "
                "and the flat prior on those coefficients does not decay either.",
                ["Give the coefficients (and the intercept) proper priors, e.g. "
                 "prior=Normal(2.5), intercept_prior=Normal(10.0).",
                 f"Inspect the columns {involved}."],
            )
        )
