"""Detection of (quasi-)complete separation by linear programming, at any number of rows.

For logistic regression the MLE exists iff no non-zero direction ``b`` satisfies
``x_i·b >= 0`` for every success and ``x_i·b <= 0`` for every failure (Albert & Anderson 1984).
Following Konis (2007), we maximise the total margin ``sum_i s_i x_i·b`` over that cone with
``b`` in a box: a positive optimum means separation -- complete when every margin can be made
positive, quasi-complete otherwise. statsmodels detects only complete separation (perfect
prediction).

The same idea covers the other families with unbounded likelihood directions:

* Poisson / negative binomial with log link (Santos Silva & Tenreyro 2010): a direction with
  ``x_i·b = 0`` on every positive count and ``x_i·b <= 0`` on every zero count, not all zero;
* multinomial logit: a direction in which every observation's own class gains on every other.

**Any number of rows.** Up to ``FULL_LP_ROWS`` constraints the LP is solved at once. Beyond,
by constraint generation: the LP on a subset of the rows (a seeded sample and each column's
extreme rows per outcome), whose optimum is checked against *every* row in O(n d); the most
violated rows join the subset until the subset's optimum violates no row -- it is then the
optimum of the full LP (a relaxation whose solution is feasible is optimal), so the verdict is
the same as the full LP's, with a certificate checked on all rows.

**A set the user can act on.** A separating direction found by the LP usually involves every
column. :func:`find_separation` shrinks it: a separating direction of least L1 norm (few
non-zero coefficients), then columns dropped one at a time while the rest still separate (as
completely as the full design does). The result is *minimal*: no column of it can be dropped
(a subset of columns that separates would have let one of them go). The messages name that
set, the side of the boundary each outcome lies on, and a reference level without events when
that is what the direction says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from bayesmle.errors import ImproperPosteriorError, MLENotFoundError, checklist
from bayesmle.models.spec import ExistenceCheck

__all__ = [
    "SEPARATION",
    "Separation",
    "binary_directions",
    "find_separation",
    "improper_if_separated",
    "no_map_if_separated",
    "separating_direction",
    "separation_check",
]

#: Separation LPs with at most this many constraints (rows x outcome levels) are solved at
#: once; larger ones by constraint generation over all the rows (see the module docstring).
FULL_LP_ROWS = 20_000
#: Rows added to the subset per round of constraint generation (at least), and the most rounds.
_BATCH = 2_000
_MAX_ROUNDS = 200
#: The most LPs spent shrinking a separating set of columns to a minimal one.
_MAX_REDUCTION_LPS = 60
#: A margin this negative is a violated constraint (HiGHS's primal feasibility tolerance).
_FEAS = 1e-7
_INTERCEPT = "(intercept)"
#: Separating sets of at most this many columns are described by their linear combination.
_SHOW_COMBINATION = 4


# ---------------------------------------------------------------------------------------------
# The cone of non-decreasing likelihood directions, over a subset of the design's columns
# ---------------------------------------------------------------------------------------------
def _column_scale(X: np.ndarray, intercept: bool) -> np.ndarray:
    """Largest absolute value of each column of ``[1, X]`` (1 for a zero column), no copy."""
    scale = np.maximum(X.max(axis=0), -X.min(axis=0)) if X.shape[0] else np.ones(X.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    return np.concatenate(([1.0], scale)) if intercept else scale


def _null_basis(a: np.ndarray) -> np.ndarray:
    """Orthonormal basis (columns) of the null space of ``a`` (rank by numpy's tolerance)."""
    m = a.shape[1]
    if a.shape[0] == 0:
        return np.eye(m)
    r = a
    if a.shape[0] > m:  # R of a blockwise QR: same null space, small SVD
        r = np.zeros((0, m))
        for start in range(0, a.shape[0], 65_536):
            stacked = np.vstack([r, a[start:start + 65_536]])
            r = scipy.linalg.qr(stacked, mode="r", check_finite=False)[0][:m]
    _, s, vt = np.linalg.svd(r)
    tol = (s.max() if s.size else 0.0) * max(a.shape) * np.finfo(float).eps
    rank = int(np.sum(s > tol))
    return vt[rank:].T


class _Cone:
    """Directions along which a GLM's log-likelihood never decreases, on columns ``cols``.

    The columns of the full design ``A = [1, X] / scale`` (scaled so every entry is in
    [-1, 1]) are indexed with the intercept first. A direction is ``b = basis @ c`` over the
    chosen columns; the constraints are ``rows(i) @ c >= 0`` for every ``i < size``.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, family: str, intercept: bool,
                 n_classes: int, cols: np.ndarray, scale: np.ndarray):
        self.family = family
        self.cols = np.asarray(cols, dtype=int)
        self.has_int = bool(intercept and 0 in self.cols)
        xcols = self.cols[self.cols >= int(intercept)] - int(intercept)
        self._scale = scale[self.cols]
        self._xs = X if np.array_equal(xcols, np.arange(X.shape[1])) else X[:, xcols]
        self.m = self.cols.size
        n = X.shape[0]
        if family == "bernoulli":
            self._sign = 2.0 * y - 1.0
            self._rows_of = np.arange(n)
            self.basis = np.eye(self.m)
            self.size = n
            self.total = self._at(self._sign)
        elif family in ("poisson", "negative_binomial"):
            pos = np.flatnonzero(y > 0)
            self._rows_of = np.flatnonzero(y == 0)
            self.basis = _null_basis(self._a(pos))
            self.size = self._rows_of.size
            self.total = -(self._at(np.ones(self.size), self._rows_of) @ self.basis)
        elif family == "categorical":
            k1 = n_classes - 1
            self.k1 = k1
            self._codes = y.astype(int)
            others = np.array([[o for o in range(n_classes) if o != k]
                               for k in range(n_classes)])
            self._other = others[self._codes]  # (n, K - 1): the classes each row competes with
            self.basis = np.eye(self.m * k1)
            self.size = n * k1
            onehot = (self._codes[:, None] == np.arange(1, n_classes)[None, :])
            self.total = (self._at(n_classes * onehot - 1.0)).ravel()
        else:  # pragma: no cover - guarded by separating_direction
            raise ValueError(family)
        self.nc = self.basis.shape[1]

    # -- the scaled sub-design, without a copy of it ------------------------------------------
    def _a(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of the scaled sub-design."""
        parts = ([np.ones((idx.size, 1))] if self.has_int else []) + [self._xs[idx]]
        return np.hstack(parts) / self._scale

    def _mul(self, b: np.ndarray) -> np.ndarray:
        """``A_sub @ b`` over every row (``b`` of shape (m,) or (m, k))."""
        b = b / (self._scale if b.ndim == 1 else self._scale[:, None])
        i = int(self.has_int)
        out = self._xs @ b[i:]
        return out + b[0] if self.has_int else out

    def _at(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """``A_sub[idx]' w`` (all rows when ``idx`` is None), ``w`` of shape (r,) or (r, k)."""
        xs = self._xs if idx is None else self._xs[idx]
        out = xs.T @ w
        if self.has_int:
            out = np.concatenate([np.sum(w, axis=0, keepdims=True), out])
        return out / (self._scale if out.ndim == 1 else self._scale[:, None])

    # -- constraints ---------------------------------------------------------------------------
    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Constraint rows ``idx`` over the variables ``c``."""
        if self.family == "bernoulli":
            return self._a(idx) * self._sign[idx, None]
        if self.family != "categorical":
            return -(self._a(self._rows_of[idx]) @ self.basis)
        i, j = np.divmod(idx, self.k1)
        own, other = self._codes[i], self._other[i, j]
        coef = np.zeros((idx.size, self.k1))
        has_own, has_other = own > 0, other > 0
        coef[np.flatnonzero(has_own), own[has_own] - 1] += 1.0
        coef[np.flatnonzero(has_other), other[has_other] - 1] -= 1.0
        return (self._a(i)[:, :, None] * coef[:, None, :]).reshape(idx.size, -1)

    def margins(self, c: np.ndarray) -> np.ndarray:
        """Every constraint's value ``rows(i) @ c``, computed in O(n d)."""
        b = self.basis @ c
        if self.family == "bernoulli":
            return self._sign * self._mul(b)
        if self.family != "categorical":
            eta = self._mul(b)
            return -eta[self._rows_of]
        eta = self._mul(b.reshape(self.m, self.k1))
        eta0 = np.hstack([np.zeros((eta.shape[0], 1)), eta])
        own = eta0[np.arange(eta.shape[0]), self._codes]
        return (own[:, None] - np.take_along_axis(eta0, self._other, axis=1)).ravel()

    def direction(self, c: np.ndarray) -> np.ndarray:
        """The direction on the user's scale over the chosen columns: (m,) or (m, K - 1)."""
        b = self.basis @ c
        if self.family == "categorical":
            return b.reshape(self.m, self.k1) / self._scale[:, None]
        return b / self._scale

    def initial(self) -> np.ndarray:
        """The first subset of constraints: all of them, or a sample and extreme rows."""
        if self.size <= FULL_LP_ROWS:
            return np.arange(self.size)
        rng = np.random.default_rng(0)
        picked = [rng.choice(self.size, size=_BATCH, replace=False)]
        per_row = 1 if self.family != "categorical" else self.k1
        rows = self._rows_of if self.family in ("poisson", "negative_binomial") else None
        xs = self._xs if rows is None else self._xs[rows]
        groups = ([self._sign > 0, self._sign < 0] if self.family == "bernoulli"
                  else [np.ones(xs.shape[0], dtype=bool)] if rows is not None
                  else [self._codes == k for k in range(self.k1 + 1)])
        for g in groups:
            idx = np.flatnonzero(g)
            if idx.size and xs.shape[1]:
                sub = xs[idx]
                ext = np.concatenate([idx[sub.argmin(axis=0)], idx[sub.argmax(axis=0)]])
                picked.append((ext[:, None] * per_row + np.arange(per_row)).ravel())
        return np.unique(np.concatenate(picked))


# ---------------------------------------------------------------------------------------------
# LPs over every constraint by constraint generation
# ---------------------------------------------------------------------------------------------
def _generated_lp(cone: _Cone, cost: np.ndarray, bounds, *, strict: bool = False,
                  extra_ub: np.ndarray | None = None, extra_b: np.ndarray | None = None):
    """``min cost @ z`` subject to every cone constraint on ``z[:nc]``, plus the extras.

    With ``strict`` the variable ``z[nc]`` is a common lower bound ``t`` of every margin
    (``rows @ c >= t``). Returns the solution vector, or None if the LP failed or the
    generation did not finish within ``_MAX_ROUNDS`` rounds (undecided).
    """
    nz = cost.size
    subset = cone.initial()
    for _ in range(_MAX_ROUNDS):
        a = np.zeros((subset.size, nz))
        a[:, :cone.nc] = -cone.rows(subset)
        if strict:
            a[:, cone.nc] = 1.0
        b = np.zeros(subset.size)
        if extra_ub is not None:
            a, b = np.vstack([a, extra_ub]), np.concatenate([b, extra_b])
        res = scipy.optimize.linprog(cost, A_ub=a, b_ub=b, bounds=bounds, method="highs")
        if res.status != 0:
            return None
        margins = cone.margins(res.x[:cone.nc]) - (res.x[cone.nc] if strict else 0.0)
        margins[subset] = np.inf  # the LP has them already
        violated = np.flatnonzero(margins < -_FEAS)
        if violated.size == 0:
            return res.x
        batch = max(_BATCH, 4 * nz)
        if violated.size > batch:
            violated = violated[np.argpartition(margins[violated], batch)[:batch]]
        subset = np.union1d(subset, violated)
    return None


def _max_margin(cone: _Cone, n: int) -> tuple[np.ndarray, float] | None:
    """A direction of largest total margin in the box, if the total is positive."""
    if cone.nc == 0:
        return None
    x = _generated_lp(cone, -cone.total, [(-1.0, 1.0)] * cone.nc)
    if x is None:
        return None
    total = float(cone.total @ x)
    return (x, total) if total > 1e-7 * n else None


def _strict_direction(cone: _Cone) -> np.ndarray | None:
    """A direction making *every* margin positive (complete separation), or None.

    The LP ``max t`` subject to ``rows @ c >= t``, ``|c|_inf <= 1``, ``0 <= t <= 1``: the
    total-margin LP may stop at a vertex where some margins are 0 even when others could all
    be made positive.
    """
    if cone.nc == 0:
        return None
    cost = np.zeros(cone.nc + 1)
    cost[-1] = -1.0
    x = _generated_lp(cone, cost, [(-1.0, 1.0)] * cone.nc + [(0.0, 1.0)], strict=True)
    return x[:cone.nc] if x is not None and x[-1] > 1e-9 else None


def _sparse_direction(cone: _Cone, total: float, weight: np.ndarray) -> np.ndarray | None:
    """A separating direction of least weighted L1 norm with total margin at least ``total``.

    Variables ``z = (c, u)``: ``|basis @ c| <= u`` elementwise, ``total_margin(c) >= total``,
    minimise ``weight @ u`` (a few non-zero coefficients, as in the lasso).
    """
    nb = cone.basis.shape[0]
    nc = cone.nc
    eye = np.eye(nb)
    extra = np.vstack([np.hstack([cone.basis, -eye]), np.hstack([-cone.basis, -eye]),
                       np.concatenate([-cone.total, np.zeros(nb)])[None, :]])
    extra_b = np.concatenate([np.zeros(2 * nb), [-0.999 * total]])
    cost = np.concatenate([np.zeros(nc), weight])
    bounds = [(None, None)] * nc + [(0.0, None)] * nb
    x = _generated_lp(cone, cost, bounds, extra_ub=extra, extra_b=extra_b)
    return None if x is None else x[:nc]


# ---------------------------------------------------------------------------------------------
# A minimal separating set of columns
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Separation:
    """A certificate that a GLM's likelihood increases without bound along a direction.

    Attributes
    ----------
    columns : tuple of int
        Columns of the full design ``[1, X]`` (intercept first, if any) the direction uses:
        a minimal set when ``minimal``.
    direction : numpy.ndarray
        Coefficients of the direction on the user's scale over ``columns``: shape (m,), or
        (m, K - 1) for softmax regression.
    eta : numpy.ndarray
        The direction's linear predictor on every row (per non-reference class for softmax).
    complete : bool
        Every margin can be made positive (the full design separates completely).
    minimal : bool
        No column of ``columns`` can be dropped (the reduction finished within its budget).
    """

    columns: tuple[int, ...]
    direction: np.ndarray
    eta: np.ndarray
    complete: bool
    minimal: bool


def _column_weight(cone: _Cone, c: np.ndarray) -> np.ndarray:
    """Size of each chosen column's part of the direction ``basis @ c`` (scaled units)."""
    b = cone.basis @ c
    return np.abs(b) if cone.family != "categorical" else np.abs(
        b.reshape(cone.m, cone.k1)).max(axis=1)


def _separates(cone: _Cone, n: int, complete: bool) -> np.ndarray | None:
    """The separating ``c`` of ``cone`` (completely, if asked), or None."""
    found = _max_margin(cone, n)
    if found is None:
        return None
    if not complete:
        return found[0]
    if bool((cone.margins(found[0]) > 1e-9).all()):
        return found[0]
    return _strict_direction(cone)


def find_separation(X: np.ndarray, y: np.ndarray, family: str, intercept: bool,
                    n_classes: int = 2, columns: np.ndarray | None = None,
                    minimal: bool = True) -> Separation | None:
    """A (minimal) set of columns along which the likelihood increases without bound, or None.

    Parameters
    ----------
    X, y
        Design (without the intercept column) and response (0/1, counts or class codes).
    family : {"bernoulli", "poisson", "negative_binomial", "categorical"}
        The likelihood.
    intercept : bool
        Whether the model has an intercept (column 0 of the full design).
    n_classes : int
        Number of classes (softmax regression).
    columns : array of int, optional
        Only directions on these columns of the full design (default: all).
    minimal : bool
        Shrink the set of columns to a minimal one (a few more LPs).

    Returns
    -------
    Separation or None

    Examples
    --------
    Column ``x1`` alone separates (``x1 > 0`` exactly when ``y = 1``); ``x0`` is noise.

    >>> import numpy as np
    >>> X = np.array([[0.3, -2.0], [-1.2, -1.0], [0.8, 1.0], [-0.4, 2.0], [1.1, -0.5]])
    >>> y = np.array([0, 0, 1, 1, 0])
    >>> sep = find_separation(X, y, "bernoulli", intercept=True)
    >>> sep.columns, sep.complete  # column 2 of [1, X], i.e. x1
    ((2,), True)
    """
    full_p = X.shape[1] + int(intercept)
    scale = _column_scale(X, intercept)
    cols = np.arange(full_p) if columns is None else np.asarray(columns, dtype=int)
    n = X.shape[0]
    if cols.size == 0:
        return None
    cone = _Cone(X, y, family, intercept, n_classes, cols, scale)
    found = _max_margin(cone, n)
    if found is None:
        return None
    c, total = found
    complete = bool((cone.margins(c) > 1e-9).all())
    if not complete:
        strict = _strict_direction(cone)
        if strict is not None:
            complete, c = True, strict
    done = True
    if minimal:
        # A direction of least L1 norm (the intercept nearly free), then drop what can go.
        entry_col = np.repeat(cone.cols, cone.basis.shape[0] // cone.m)
        weight = np.where((entry_col == 0) & intercept, 1e-3, 1.0)
        sparse = _sparse_direction(cone, total, weight)
        keep = cols
        if sparse is not None:
            w = _column_weight(cone, sparse)
            keep = cols[w > 1e-9 * w.max()]
            sub = _Cone(X, y, family, intercept, n_classes, keep, scale)
            sub_c = _separates(sub, n, complete)
            if sub_c is not None:
                cone, c = sub, sub_c
            else:
                keep = cols
        budget = _MAX_REDUCTION_LPS
        # Predictors first, smallest part first; the intercept last.
        order = list(keep[np.argsort(_column_weight(cone, c))])
        if intercept and 0 in order:
            order.remove(0)
            order.append(0)
        for col in order:
            if cone.m == 1:
                break
            if budget <= 0:
                done = False
                break
            budget -= 1
            trial = cone.cols[cone.cols != col]
            sub = _Cone(X, y, family, intercept, n_classes, trial, scale)
            sub_c = _separates(sub, n, complete)
            if sub_c is not None:
                cone, c = sub, sub_c
    direction = cone.direction(c)
    eta = cone._mul(direction * (cone._scale if direction.ndim == 1
                                 else cone._scale[:, None]))
    return Separation(columns=tuple(int(j) for j in cone.cols), direction=direction,
                      eta=eta, complete=complete, minimal=done and minimal)


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
    if family not in ("bernoulli", "poisson", "negative_binomial", "categorical"):
        return None
    full_p = X.shape[1] + int(intercept)
    scale = _column_scale(X, intercept)
    cone = _Cone(X, y, family, intercept, n_classes, np.arange(full_p), scale)
    found = _max_margin(cone, X.shape[0])
    if found is None:
        return None
    c, total = found
    complete = bool((cone.margins(c) > 1e-9).all())
    if family != "poisson" and family != "negative_binomial" and not complete:
        complete = _strict_direction(cone) is not None
    return cone.direction(c), total, complete


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------
def _names(spec) -> tuple[str, ...]:
    return ((_INTERCEPT,) if spec.options["intercept"] else ()) + tuple(spec.coords["feature"])


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _combination(names: list[str], coef: np.ndarray) -> str:
    coef = coef / np.abs(coef).max()
    terms = []
    for name, c in zip(names, coef, strict=True):
        body = "1" if name == _INTERCEPT else name
        mag = abs(c)
        term = body if (mag == 1.0 and body != "1") else (
            _fmt(mag) if body == "1" else f"{_fmt(mag)}*{body}")
        terms.append(("- " if c < 0 else "+ ") + term)
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def _side_text(sep: Separation, spec, outcomes: tuple[str | None, str]) -> str:
    """Which rows lie on which side of the boundary, in the columns' own terms.

    ``outcomes`` holds what the rows with a positive and with a negative value of the
    direction's linear predictor all have (None: no constraint on that side).
    """
    X = spec.data["X"]
    names = _names(spec)
    intercept = spec.options["intercept"]
    cols = list(sep.columns)
    preds = [j for j in cols if not (intercept and j == 0)]
    xs = {j: X[:, j - int(intercept)] for j in preds}
    eta = sep.eta
    tol = 1e-9 * max(float(np.abs(eta).max()), 1e-300)
    side = np.where(eta > tol, 1, np.where(eta < -tol, -1, 0))
    nzero = int(np.sum(side == 0))

    def outcome(sign: int) -> str:
        return outcomes[0] if sign > 0 else outcomes[1]

    one_sided = side != 0
    if intercept and 0 in cols and preds and all(_binary(xs[j]) for j in preds):
        base = np.all(np.column_stack([xs[j] == 0 for j in preds]), axis=1)
        signs = set(side[one_sided].tolist())
        if np.array_equal(base, one_sided) and len(signs) == 1:
            which = outcome(signs.pop())
            level = ", ".join(names[j] for j in preds)
            lacks = {"y = 0": "no events (no row with y = 1)",
                     "y = 1": "no row with y = 0",
                     "only failures": "no events (no success)",
                     "only successes": "no failures",
                     "zero counts": "no events (no positive count)"}[which]
            return (f"the reference level -- the {int(base.sum())} row(s) where {level} "
                    f"{'is' if len(preds) == 1 else 'are all'} 0 -- has {lacks}, every one of "
                    f"its rows has {which}")
    if len(preds) == 1:
        j = preds[0]
        x, name = xs[j], names[j]
        bj = sep.direction[cols.index(j)]
        cut = -sep.direction[0] / bj if len(cols) == 2 else 0.0
        parts = []
        if _binary(x):
            for v in (1, 0):
                s = int(np.sign(bj * (v - cut)))
                if s and np.any(x == v) and outcome(s) is not None:
                    parts.append(f"every row with {name} = {v} has {outcome(s)}")
        else:
            for op, s in ((">", int(np.sign(bj))), ("<", -int(np.sign(bj)))):
                rows = x > cut if op == ">" else x < cut
                if np.any(rows) and outcome(s) is not None:
                    parts.append(f"every row with {name} {op} {_fmt(cut)} has {outcome(s)}")
        text = " and ".join(parts)
        if nzero and outcomes[0] is not None:
            text += f" (the {nzero} row(s) with {name} = {_fmt(cut)} have both outcomes)"
        return text
    if len(cols) <= _SHOW_COMBINATION:
        combo = _combination([names[j] for j in cols], sep.direction)
        parts = [f"the {int(np.sum(side == s))} row(s) where {combo} {op} 0 all have "
                 f"{outcome(s)}" for s, op in ((1, ">"), (-1, "<"))
                 if np.any(side == s) and outcome(s) is not None]
        boundary = f"the boundary {combo} = 0"
    else:  # a long combination would bury the message: say it in words
        parts = [f"the {int(np.sum(side == s))} row(s) on the {where} side of a hyperplane in "
                 f"these columns all have {outcome(s)}" for s, where in ((1, "one"), (-1, "other"))
                 if np.any(side == s) and outcome(s) is not None]
        boundary = "that hyperplane"
    text = " and ".join(parts)
    if nzero:
        text += f"; {nzero} row(s) lie on {boundary}"
    return text


def _describe(spec, sep: Separation) -> tuple[str, list[str]]:
    """What the separation is, in words, and what the user can do about it."""
    family = spec.family
    names = _names(spec)
    involved = [names[j] for j in sep.columns]
    cols = "{" + ", ".join(involved) + "}"
    what = (f"a minimal set of columns {cols} (none of them can be dropped)" if sep.minimal
            else f"the columns {cols}")
    if family in ("bernoulli", "binomial"):
        kind = "complete" if sep.complete else "quasi-complete"
        sides = _side_text(sep, spec, ("y = 1", "y = 0") if family == "bernoulli"
                           else ("only successes", "only failures"))
        text = (f"{kind} separation by {what}: {sides}, so the likelihood keeps increasing "
                "along that direction")
    elif family == "categorical":
        kind = "complete" if sep.complete else "quasi-complete"
        sides = ""
        text = (f"{kind} separation of the classes by {what}, so the likelihood keeps "
                "increasing along it")
    else:
        sides = _side_text(sep, spec, (None, "zero counts"))
        text = (f"a direction in {what} that drives the mean of zero counts to 0 without "
                f"changing the fit to the positive counts ({sides}), so the likelihood keeps "
                "increasing along it (some coefficient's MLE is infinite)")
    hints = ["Give the coefficients a proper prior (prior=Normal(2.5)) and fit 'map' or "
             "'nuts' (the posterior is then proper)."]
    if sides.startswith("the reference level"):
        hints.append("Or merge the reference level with a level that has events, or drop its "
                     "rows: its effect is infinite (its log-odds or log-rate is -inf).")
    else:
        hints.append("Or drop or combine those columns (merge the levels of a factor that "
                     "separate), or report the effect as infinite: it is not estimable.")
    return text, hints


def binary_directions(X: np.ndarray, successes: np.ndarray,
                      trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binomial counts as the 0/1 pattern the separation LP reads (Bernoulli rows).

    A row with a success constrains a direction like ``y = 1``, a row with a failure like
    ``y = 0``; a row with both (``0 < k < n``) appears twice and so forces the direction's
    linear predictor to 0 there. The binomial likelihood is that of the ``n`` Bernoulli
    trials, so the MLE exists iff this pattern is not separated.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> Xe, ye = binary_directions(X, np.array([0.0, 2.0, 5.0]), np.array([3.0, 4.0, 5.0]))
    >>> Xe[:, 0].tolist(), ye.tolist()
    ([1.0, 2.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0])
    """
    some, fail = successes > 0, successes < trials
    Xe = np.concatenate([X[some], X[fail]])
    ye = np.concatenate([np.ones(int(some.sum())), np.zeros(int(fail.sum()))])
    return Xe, ye


def _lp_data(spec) -> tuple[np.ndarray, np.ndarray, str]:
    """The design, response and family the separation LP reads for a spec."""
    X, y = spec.data["X"], spec.data["y"]
    if spec.family == "binomial":
        Xe, ye = binary_directions(X, y, spec.data["trials"])
        return Xe, ye, "bernoulli"
    return X, y, spec.family


def _spec_separation(spec, columns=None) -> Separation | None:
    classes = spec.options.get("classes")
    X, y, family = _lp_data(spec)
    sep = find_separation(X, y, family, spec.options["intercept"],
                          len(classes) if classes else 2, columns=columns)
    if sep is None or spec.family != "binomial":
        return sep
    # the linear predictor on the user's rows (not the expanded pattern), for the messages
    X = spec.data["X"]
    intercept = spec.options["intercept"]
    eta = np.zeros(X.shape[0])
    for j, b in zip(sep.columns, sep.direction, strict=True):
        eta += b if intercept and j == 0 else b * X[:, j - int(intercept)]
    return Separation(sep.columns, sep.direction, eta, sep.complete, sep.minimal)


def _single_class(spec) -> bool:
    if spec.family == "binomial":
        k, t = spec.data["y"], spec.data["trials"]
        return bool(np.all(k == 0) or np.all(k == t))
    return spec.family == "bernoulli" and np.ptp(spec.data["y"]) == 0


def separation_check(spec) -> None:
    """Raise MLENotFoundError if the data of a GLM spec are (quasi-)completely separated."""
    y = spec.data["y"]
    if _single_class(spec) and spec.family == "binomial":
        none = bool(np.all(y == 0))
        raise MLENotFoundError(
            checklist(
                "The MLE does not exist: "
                + ("no row has a success (every `successes` is 0)" if none else
                   "every trial is a success (`successes` equals `trials` on every row)")
                + ", so the probability's MLE is " + ("0" if none else "1")
                + " and the intercept runs to " + ("-inf." if none else "+inf."),
                ["Check the response columns (successes and trials).",
                 "Give the intercept a proper prior (intercept_prior=Normal(2.5)) and fit 'map'."],
            )
        )
    if _single_class(spec):
        raise MLENotFoundError(
            checklist(
                f"The MLE does not exist: every value of `y` is {int(y[0])}, a single class, so "
                "the intercept runs to " + ("+inf." if y[0] == 1 else "-inf."),
                ["Check the response column.",
                 "Give the intercept a proper prior (intercept_prior=Normal(2.5)) and fit 'map'."],
            )
        )
    sep = _spec_separation(spec)
    if sep is None:
        return
    what, hints = _describe(spec, sep)
    raise MLENotFoundError(checklist(f"The MLE does not exist: the data show {what}.", hints))


#: A fitted probability (or Poisson mean of a zero count) this close to its limit is what
#: separation looks like at a numerically "converged" point: then the LP decides.
_EXTREME_LOGIT = 20.0


#: The same for the binomial links: linear predictors below / above which a fitted
#: probability is within about exp(-20) of 0 / 1.
_EXTREME_ETA = {"logit": (-_EXTREME_LOGIT, _EXTREME_LOGIT), "probit": (-6.0, 6.0),
                "cloglog": (-_EXTREME_LOGIT, 3.0)}


def _extreme_fit(spec, params) -> bool:
    """Whether estimates reach the fitted values that separation would produce."""
    family = spec.family
    X, y = spec.data["X"], spec.data["y"]
    eta = X @ np.asarray(params["coef"])
    if "intercept" in params:
        eta = eta + np.asarray(params["intercept"])
    if family == "bernoulli":
        return bool(np.any(eta * (2 * y - 1) > _EXTREME_LOGIT))
    if family == "binomial":
        low, high = _EXTREME_ETA[spec.options.get("link", "logit")]
        t = spec.data["trials"]
        return bool(np.any(eta[y == 0] < low) or np.any(eta[y == t] > high))
    if family in ("poisson", "negative_binomial"):
        eta = eta + spec.data["offset"]
        return bool(np.any(eta[y == 0] < -_EXTREME_LOGIT))
    logits = np.column_stack([np.zeros(len(y)), eta])
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return bool(np.any(-log_p[np.arange(len(y)), y.astype(int)] < np.exp(-_EXTREME_LOGIT)))


#: Separation as an existence check of the MLE; the LP may run after a fit on large data.
SEPARATION = ExistenceCheck(separation_check, suspicious=_extreme_fit)


def _flat_runaway(spec) -> tuple[Separation | None, list[str]]:
    """A separating direction on the flat-prior coefficients only, with their names."""
    intercept = spec.options["intercept"]
    p = spec.data["X"].shape[1]
    flat = ([0] if intercept and spec.priors["intercept"].is_flat else []) + (
        list(range(int(intercept), p + int(intercept))) if spec.priors["coef"].is_flat else [])
    names = _names(spec)
    if not flat:
        return None, []
    if _single_class(spec) and 0 in flat and intercept:
        return Separation((0,), np.ones(1), np.zeros(0), True, True), [names[0]]
    sep = _spec_separation(spec, columns=np.array(flat))
    return sep, ([] if sep is None else [names[j] for j in sep.columns])


def improper_if_separated(spec) -> None:
    """Raise ImproperPosteriorError if a flat prior leaves a separating direction unbounded.

    When the likelihood does not decay along a direction (separation, all-zero counts) the
    posterior is proper only if the prior decays along it; with flat priors on every
    coefficient the direction involves, it is improper and NUTS would drift off to infinity.
    """
    sep, involved = _flat_runaway(spec)
    if sep is None:
        return
    raise ImproperPosteriorError(
        checklist(
            f"The posterior is improper: the likelihood does not decay along a direction in "
            f"{involved} (separation or all-zero counts; the MLE does not exist either), "
            "and the flat prior on those coefficients does not decay either.",
            ["Give the coefficients (and the intercept) proper priors, e.g. "
             "prior=Normal(2.5), intercept_prior=Normal(10.0).",
             "Or drop or merge those columns (a level without events)."],
        )
    )


def no_map_if_separated(spec) -> None:
    """Raise MLENotFoundError if the posterior density has no mode: a flat-prior runaway.

    The MAP analogue of :func:`improper_if_separated`: along a separating direction of the
    flat-prior coefficients the log-likelihood increases and the log-prior stays constant,
    so the density's supremum is approached at infinity and never attained.
    """
    sep, involved = _flat_runaway(spec)
    if sep is None:
        return
    raise MLENotFoundError(
        checklist(
            f"The MAP does not exist: the likelihood keeps increasing along a direction in "
            f"{involved} (separation or all-zero counts), whose coefficients have flat priors, "
            "so the posterior density has no maximum.",
            ["Give those coefficients proper priors, e.g. prior=Normal(2.5), "
             "intercept_prior=Normal(10.0).",
             "Or drop or merge those columns (a level without events)."],
        )
    )
