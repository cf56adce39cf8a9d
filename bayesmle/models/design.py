"""Design matrices: validation, labels, rank checks and the internal reparametrisations.

Regression builders never hand the raw design to the sampler or the optimiser. Two exact linear
reparametrisations keep both well conditioned on the data users actually bring (an uncentred
predictor such as calendar years, raw polynomial powers as in NIST's Filip problem):

* ``"qr"`` -- the thin QR decomposition of the column-scaled design ``[1, X] / norms = Q R``; the
  free parameter is ``theta`` with linear predictor ``sqrt(n) Q theta`` and the coefficients are
  recovered by a triangular solve, ``beta = solve(R / sqrt(n), theta) / norms``. Used when the
  coefficient prior is flat or Gaussian (the prior is then placed on ``beta`` as a potential).
* ``"standardised"`` -- centred and scaled columns ``(X - center) / scale``; the free parameter is
  ``scale * beta`` so that a Laplace prior stays separable (the exact L1 solver needs that).
  Used for Laplace priors and for rank-deficient designs under proper priors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from bayesmle._validation import as_float_array
from bayesmle.errors import DataError, MLENotFoundError, checklist

__all__ = [
    "Design",
    "GramFactor",
    "as_design",
    "collinear_columns",
    "gaussian_sufficient_stats",
    "gram_factor",
    "implicit_qr_arrays",
    "implicit_standardised_arrays",
    "least_squares_without_q",
    "qr_arrays",
    "standardised_arrays",
]


@dataclass(frozen=True)
class Design:
    """A validated design matrix and its column labels."""

    X: np.ndarray
    names: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Number of columns."""
        return self.X.shape[1]


def as_design(X: Any, *, name: str = "X") -> Design:
    """Validate a design (numpy array or pandas DataFrame); column names label coefficients."""
    names: tuple[str, ...] | None = None
    columns = getattr(X, "columns", None)
    if columns is not None:
        names = tuple(str(c) for c in columns)
        bad = [c for c in columns if not np.issubdtype(np.asarray(X[c]).dtype, np.number)
               and np.asarray(X[c]).dtype != bool]
        if bad:
            raise DataError(
                checklist(
                    f"`{name}` has non-numeric column(s) {[str(c) for c in bad]}.",
                    ["Encode categories as dummy columns (pandas.get_dummies(..., "
                     "drop_first=True)) or use a formula."],
                )
            )
        X = X.to_numpy(dtype=np.float64)
    arr = as_float_array(name, X, ndim=(1, 2))
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[1] == 0:
        raise DataError(f"`{name}` has no columns; give at least one predictor.")
    if names is None:
        names = tuple(f"x{j}" for j in range(arr.shape[1]))
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise DataError(f"`{name}` has duplicate column names {dup}; rename them.")
    return Design(np.ascontiguousarray(arr), names)


def _full(design: Design, intercept: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    if intercept:
        return (np.hstack([np.ones((design.n, 1)), design.X]),
                ("(intercept)",) + design.names)
    return design.X, design.names


#: Rows per block in the blockwise computations on large designs.
BLOCK_ROWS = 65_536


def _blocks(design: Design, intercept: bool, norms: np.ndarray | None = None,
            response: np.ndarray | None = None):
    """Row blocks of ``[1, X]`` or ``[1, X, y]``, optionally divided by ``norms``.

    Never the whole copy.
    """
    for start in range(0, design.n, BLOCK_ROWS):
        xb = design.X[start:start + BLOCK_ROWS]
        parts = ([np.ones((xb.shape[0], 1))] if intercept else []) + [xb]
        if response is not None:
            parts.append(response[start:start + BLOCK_ROWS, None])
        fb = np.hstack(parts) if len(parts) > 1 else xb.copy()
        if norms is not None:
            fb /= norms
        yield fb


def _column_norms(design: Design, intercept: bool) -> np.ndarray:
    sq = sum(np.einsum("ij,ij->j", fb, fb) for fb in _blocks(design, intercept))
    return np.sqrt(sq)


def _tsqr_r(design: Design, intercept: bool, norms: np.ndarray,
            response: np.ndarray | None = None) -> np.ndarray:
    """R of the thin QR of ``[1, X] / norms`` (or ``[1, X, y] / norms``) in O(block) memory.

    Householder QR over stacked row blocks (TSQR), as stable as one QR of the whole matrix.
    """
    p = design.d + int(intercept) + int(response is not None)
    r = np.zeros((0, p))
    for fb in _blocks(design, intercept, norms, response):
        # Fortran order: LAPACK works in place instead of on a transposed copy (~10x faster).
        stacked = np.asfortranarray(np.vstack([r, fb]))
        (r,) = scipy.linalg.qr(stacked, mode="r", overwrite_a=True, check_finite=False)
        r = r[: min(r.shape)]
    return r


def _pow2(norms: np.ndarray) -> np.ndarray:
    """Column norms rounded to powers of two, so that scaling by them is exact."""
    norms = norms.copy()
    norms[norms == 0] = 1.0
    return 2.0 ** np.round(np.log2(norms))


def residual_norm(design: Design, intercept: bool, y: np.ndarray) -> float:
    """Norm of the least-squares residual of ``y`` on ``[1, X]`` (full-rank designs).

    The last diagonal entry of R of ``[1, X, y]``, computed blockwise: no copy of the design
    and no separate least-squares solve.
    """
    norms = _pow2(np.append(_column_norms(design, intercept), np.sqrt(np.dot(y, y))))
    r = _tsqr_r(design, intercept, norms, response=y)
    return float(abs(r[-1, -1]) * norms[-1])


#: A design whose column-scaled R has a condition number at most this is *well conditioned*:
#: its rank is certified from the Gram matrix, and it is parametrised without a stored Q.
IMPLICIT_MAX_COND = 1e4


@dataclass(frozen=True)
class GramFactor:
    """Cholesky factor of the column-scaled Gram matrix of a well-conditioned design.

    With ``A = [1, X] / norms`` (powers of two, so the scaling is exact), ``gram = A'A`` and
    ``r`` is upper triangular with ``r'r = gram``: the R of a QR decomposition of ``A`` up to
    the signs of its rows, obtained in one BLAS pass over X instead of a factorisation of it.
    """

    norms: np.ndarray
    gram: np.ndarray
    r: np.ndarray
    cond: float


def gram_factor(design: Design, intercept: bool) -> GramFactor | None:
    """The :class:`GramFactor` of ``[1, X]``, or None if the design is not well conditioned.

    None means the condition number of the scaled design exceeds ``IMPLICIT_MAX_COND`` (or a
    column is zero, or the Gram matrix is not numerically positive definite); the caller then
    falls back to Householder QR. A factor returned certifies full column rank: its smallest
    singular value is at least ``1 / IMPLICIT_MAX_COND`` of the largest, far above the
    ``max(n, p) * eps`` rank tolerance and the rounding error of the Gram matrix.
    """
    X = design.X
    xtx = X.T @ X
    if intercept:
        s = X.sum(axis=0)
        full = np.empty((design.d + 1, design.d + 1))
        full[0, 0] = design.n
        full[0, 1:] = full[1:, 0] = s
        full[1:, 1:] = xtx
    else:
        full = xtx
    diag = np.diag(full).copy()
    if not (np.all(np.isfinite(full)) and np.all(diag > 0)):
        return None
    norms = _pow2(np.sqrt(diag))
    gram = full / np.outer(norms, norms)
    try:
        r = scipy.linalg.cholesky(gram, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    sv = scipy.linalg.svdvals(r, check_finite=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else np.inf
    if not cond <= IMPLICIT_MAX_COND:
        return None
    return GramFactor(norms=norms, gram=gram, r=r, cond=cond)


def collinear_columns(design: Design, intercept: bool,
                      factor: GramFactor | None = None) -> list[list[str]]:
    """Groups of columns (intercept included) that are exactly or numerically collinear.

    Uses the singular values of the column-scaled design (from its R factor, computed
    blockwise) with numpy's ``matrix_rank`` tolerance; each group is the support of a
    null-space direction. A :class:`GramFactor` of the design (``factor``) already certifies
    full rank: then there are no groups and nothing is factorised.
    """
    if factor is not None:
        return []  # certified full rank by the Gram factor
    names = (("(intercept)",) if intercept else ()) + design.names
    raw = _column_norms(design, intercept)
    zero = np.flatnonzero(raw == 0)
    groups = [[names[j]] for j in zero]
    r = _tsqr_r(design, intercept, _pow2(raw))
    _, s, vt = np.linalg.svd(r)
    tol = s.max() * max(design.n, r.shape[1]) * np.finfo(float).eps
    for k in np.flatnonzero(s <= tol):
        v = np.abs(vt[k])
        members = [names[j] for j in np.flatnonzero(v > 1e-6 * v.max()) if j not in zero]
        if members:
            groups.append(members)
    return groups


def rank_check(design: Design, intercept: bool, groups: list[list[str]] | None = None) -> None:
    """Raise MLENotFoundError naming collinear columns if the design is rank deficient.

    ``groups`` may pass a result of :func:`collinear_columns` computed earlier.
    """
    groups = collinear_columns(design, intercept) if groups is None else groups
    if groups:
        desc = "; ".join("{" + ", ".join(g) + "}" for g in groups)
        raise MLENotFoundError(
            checklist(
                f"The design matrix is rank deficient, so the MLE is not unique: these columns "
                f"are (numerically) collinear: {desc}. A constant column is collinear with the "
                f"intercept.",
                ["Drop one column of each collinear group (or a dummy level per factor).",
                 "Or give the coefficients a proper prior (e.g. prior=Normal(1.0)) and fit "
                 "'map' or 'nuts'."],
            )
        )


def _pow2_norms(full: np.ndarray) -> np.ndarray:
    """Column norms rounded to powers of two, so that scaling by them is exact."""
    norms = np.sqrt(np.einsum("ij,ij->j", full, full))
    norms[norms == 0] = 1.0
    return 2.0 ** np.round(np.log2(norms))


def refined_least_squares(full: np.ndarray, y: np.ndarray, q: np.ndarray, r: np.ndarray,
                          norms: np.ndarray, sweeps: int = 4) -> np.ndarray:
    """Least-squares coefficients by QR plus iterative refinement in extended precision.

    Refines the augmented system ``[I A; A' 0][r; b] = [y; 0]`` (Bjorck 1967) with residuals
    accumulated in ``numpy.longdouble``; ``q``, ``r`` are the thin QR factors of
    ``A = full / norms``. Returns the coefficients of ``full``.
    """
    a = full / norms
    b = scipy.linalg.solve_triangular(r, q.T @ y)
    res = y - a @ b
    a_ext = a.astype(np.longdouble)
    y_ext = y.astype(np.longdouble)
    for _ in range(sweeps):
        f = (y_ext - res.astype(np.longdouble) - a_ext @ b.astype(np.longdouble)).astype(float)
        g = (-(a_ext.T @ res.astype(np.longdouble))).astype(float)
        h = scipy.linalg.solve_triangular(r, g, trans="T")
        db = scipy.linalg.solve_triangular(r, q.T @ f - h)
        b = b + db
        res = res + (f - a @ db)
    return b / norms


#: Extended-precision refinement of the least-squares anchor is skipped for designs with more
#: than this many entries whose scaled R has condition number below ``REFINE_MIN_COND``: there
#: the double-precision QR solution is already accurate to ~cond * 1e-16 and refinement would
#: only cost time (it runs in numpy.longdouble, without BLAS).
REFINE_MAX_SIZE = 2_000_000
REFINE_MIN_COND = 1e4


def qr_arrays(design: Design, intercept: bool, y: np.ndarray | None = None
              ) -> dict[str, np.ndarray]:
    """Arrays of the QR parametrisation.

    ``Q`` (n, p) and ``R`` (p, p, upper) with ``[1, X] / col_norm = (Q / sqrt(n)) (R sqrt(n))``,
    and an anchor: coefficients ``anchor`` (p,) with ``eta_anchor = [1, X] @ anchor``, so that
    ``beta = anchor + solve(R, theta) / col_norm`` and ``eta = eta_anchor + Q theta``. For a
    Gaussian response ``y`` the anchor is the least-squares solution refined in extended
    precision (then ``theta`` is a tiny correction and the coefficients keep the anchor's
    accuracy); otherwise it is zero.
    """
    c = np.sqrt(design.n)
    p = design.d + int(intercept)
    if design.n * p > REFINE_MAX_SIZE:
        norms = _pow2(_column_norms(design, intercept))
        r = _tsqr_r(design, intercept, norms)
        if np.linalg.cond(r) <= REFINE_MIN_COND:
            return _large_qr_arrays(design, intercept, y, norms, r)
    full, _ = _full(design, intercept)
    norms = _pow2_norms(full)
    q, r = scipy.linalg.qr(np.asfortranarray(full / norms), mode="economic",
                           overwrite_a=True, check_finite=False)
    if y is not None and (full.size <= REFINE_MAX_SIZE or np.linalg.cond(r) > REFINE_MIN_COND):
        anchor = refined_least_squares(full, y, q, r, norms)
        eta = (full.astype(np.longdouble) @ anchor.astype(np.longdouble)).astype(float)
    elif y is not None:  # large and well conditioned: double-precision QR is accurate already
        theta = q.T @ y
        anchor = scipy.linalg.solve_triangular(r, theta) / norms
        eta = q @ theta
    else:
        anchor = np.zeros(full.shape[1])
        eta = np.zeros(full.shape[0])
    del full
    q *= c
    return {"Q": q, "R": r / c, "col_norm": norms, "anchor": anchor, "eta_anchor": eta}


#: Iterative refinement of the least-squares anchor of a well-conditioned design accumulates
#: its residuals in ``numpy.longdouble`` when the design has at most this many entries (the
#: cost is then negligible) or when its condition number exceeds ``EXTENDED_MIN_COND``.
EXTENDED_MAX_SIZE = 200_000
EXTENDED_MIN_COND = 1e2


def least_squares_without_q(design: Design, intercept: bool, factor: GramFactor | None) -> bool:
    """Whether a Gaussian model of this design is anchored without Householder QR.

    Householder QR refined in extended precision on the augmented system (:func:`qr_arrays`)
    gives the least-squares solution of the double-precision data to full accuracy even with
    huge residuals (NIST's Wampler5); semi-normal equations refined in extended precision
    match it when the design is very well conditioned (``cond <= EXTENDED_MIN_COND``), and on
    large designs (``n p > REFINE_MAX_SIZE``), where QR skips the refinement for its cost, they
    are at least as accurate. Other families have no anchor: any well-conditioned design.
    """
    if factor is None:
        return False
    p = design.d + int(intercept)
    return factor.cond <= EXTENDED_MIN_COND or design.n * p > REFINE_MAX_SIZE


def _at(design: Design, intercept: bool, norms: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A' v`` for ``A = [1, X] / norms``, without forming A (accumulated in v's precision)."""
    if v.dtype == np.float64:
        xtv = design.X.T @ v
    else:  # extended precision: numpy casts X in buffered chunks, never as a whole copy
        xtv = np.einsum("ij,i->j", design.X, v)
    out = (np.concatenate(([v.sum()], xtv)) if intercept else xtv) / norms
    return out.astype(np.float64)


def _residual(design: Design, intercept: bool, y: np.ndarray, coef: np.ndarray,
              extended: bool) -> np.ndarray:
    """``y - [1, X] @ coef``; in extended precision (``numpy.longdouble``) if asked."""
    if not extended:
        eta = design.X @ coef[int(intercept):]
        return y - (eta + coef[0]) if intercept else y - eta
    c = coef.astype(np.longdouble)
    eta = np.einsum("ij,j->i", design.X, c[int(intercept):])
    if intercept:
        eta += c[0]
    return y.astype(np.longdouble) - eta


def implicit_qr_arrays(design: Design, intercept: bool, factor: GramFactor,
                       y: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Arrays of the QR parametrisation of a well-conditioned design, without Q.

    Same parametrisation as :func:`qr_arrays` (``beta = anchor + R^-1 theta / col_norm``
    with ``Q = ([1, X] / col_norm) R^-1`` orthogonal up to ``sqrt(n)``), but R is the Cholesky
    factor of the scaled Gram matrix and Q is never formed: the model computes the linear
    predictor as ``[1, X] @ beta`` from the user's X. The arrays hold ``coef_map = R^-1 /
    col_norm`` (``beta = anchor + coef_map @ theta``; the explicit inverse is accurate to
    ``cond * eps`` here), so that the model's map from ``theta`` is a product, not a triangular
    solve whose gradient the sampler would compile and evaluate at every step; the sufficient
    statistics below use the same ``R^-1``, so the parametrisation is consistent whatever its
    rounding. Every array is declared by the model (a compiled structure is reused for new data
    only if all of them are).

    For a Gaussian response the anchor is the least-squares solution by corrected semi-normal
    equations (Bjorck): a Cholesky solve refined with residuals of the design itself, which
    converges when ``cond^2 * eps < 1`` (here ``cond <= 1e4``); for small or less
    well-conditioned designs the residuals and their products are accumulated in extended
    precision (see :func:`least_squares_without_q` for when this path is taken).

    For a Gaussian response the arrays also hold the sufficient statistics of the
    log-likelihood in ``theta``: ``ss_rss0`` (residual sum of squares at the anchor),
    ``ss_c = Q' r0`` and ``ss_gram = Q'Q``, so that ``RSS(theta) = ss_rss0 - 2 ss_c' theta +
    theta' ss_gram theta`` exactly (see :func:`gaussian_sufficient_stats`).
    """
    n = design.n
    c = np.sqrt(n)
    norms, r = factor.norms, factor.r
    p = r.shape[0]
    r_inv = np.triu(scipy.linalg.solve_triangular(r / c, np.eye(p), check_finite=False))
    out = {"coef_map": r_inv / norms[:, None], "col_norm": norms}
    if y is None:
        out["anchor"] = np.zeros(p)
        return out
    extended = design.n * p <= EXTENDED_MAX_SIZE or factor.cond > EXTENDED_MIN_COND
    b, res = _least_squares_csne(design, intercept, y, r, np.diag(1.0 / norms), extended)
    g_theta = r_inv.T @ factor.gram @ r_inv
    out.update(
        anchor=b / norms,
        ss_rss0=np.asarray(float(np.dot(res, res))),
        ss_c=r_inv.T @ _at(design, intercept, norms, res),
        ss_gram=0.5 * (g_theta + g_theta.T),
    )
    return out


def gaussian_sufficient_stats(m: np.ndarray, residual: np.ndarray) -> dict[str, np.ndarray]:
    """Sufficient statistics of a Gaussian log-likelihood linear in its free coordinates.

    With linear predictor ``eta(w) = eta(w0) + m @ (w - w0)`` and ``residual = y - eta(w0)``:
    ``RSS(w) = ss_rss0 - 2 ss_c' (w - w0) + (w - w0)' ss_gram (w - w0)``, an identity. With
    ``w0`` near the least-squares solution the three terms do not cancel, so RSS keeps its
    relative accuracy at every ``w``.
    """
    gram = m.T @ m
    return {"ss_rss0": np.asarray(float(residual @ residual)), "ss_c": m.T @ residual,
            "ss_gram": 0.5 * (gram + gram.T)}


def _least_squares_csne(design: Design, intercept: bool, y: np.ndarray, r: np.ndarray,
                        t: np.ndarray, extended: bool) -> tuple[np.ndarray, np.ndarray]:
    """Least squares in coordinates ``w`` with coefficients ``t @ w`` of ``[1, X]``.

    ``r`` is the upper-triangular Cholesky factor of ``M'M`` for ``M = [1, X] t``. Corrected
    semi-normal equations: a Cholesky solve, then refinement with residuals of the design.
    With ``extended`` the residuals and ``M' r`` are accumulated in ``numpy.longdouble``, and
    the iteration converges to the least-squares solution of the double-precision data even
    when the residuals are large (where semi-normal equations in double precision, like a QR
    solution, lose ``cond^2 * eps * |r| / (|M| |w|)``). Returns ``w`` and its residual (in
    extended precision if ``extended``).
    """
    ident = Design(design.X, ())

    def mt(v):
        return t.T @ _at(ident, intercept, np.ones(t.shape[0]), v)

    cho = (r, False)
    w = scipy.linalg.cho_solve(cho, mt(y), check_finite=False)
    previous = np.inf
    for _ in range(4):
        res = _residual(design, intercept, y, t @ w, extended)
        dw = scipy.linalg.cho_solve(cho, mt(res), check_finite=False)
        w = w + dw
        size = np.max(np.abs(dw))
        # converged, or no longer contracting (the corrections are rounding noise)
        if size <= 4 * np.finfo(float).eps * np.max(np.abs(w)) or size > 0.1 * previous:
            break
        previous = size
    return w, _residual(design, intercept, y, t @ w, extended)


def implicit_standardised_arrays(design: Design, intercept: bool, factor: GramFactor,
                                 centre: bool = True, y: np.ndarray | None = None
                                 ) -> dict[str, np.ndarray]:
    """The standardised parametrisation of a well-conditioned design, without a copy of X.

    ``center`` and ``scale`` come from the Gram matrix (any values give an exact
    parametrisation; these make the free coordinates well scaled) and the model computes
    ``(X - center) / scale @ z`` as ``X @ (z / scale) - center @ (z / scale)`` from the user's
    X. For a Gaussian response the arrays also hold the sufficient statistics in
    ``w = [a0, z]`` (see :func:`gaussian_sufficient_stats`); ``M'M`` is formed from the
    triangular factor ``R T`` (``T`` the upper-triangular change of coordinates), which keeps
    the cancellation of centring to ``cond * eps``.
    """
    n, d = design.n, design.d
    norms = factor.norms
    full = factor.gram * np.outer(norms, norms)
    r_raw = factor.r * norms[None, :]
    xx = np.diag(full)[int(intercept):] / n
    center = full[0, 1:] / n if (intercept and centre) else np.zeros(d)
    var = xx - center**2
    scale = np.sqrt(np.where(var > 1e-8 * xx, var, xx))
    scale[scale == 0] = 1.0
    out = {"X": design.X, "center": center, "scale": scale}
    if y is None:
        return out
    p = d + int(intercept)
    t = np.zeros((p, p))
    if intercept:
        t[0, 0] = 1.0
        t[0, 1:] = -center / scale
    t[np.arange(int(intercept), p), np.arange(int(intercept), p)] = 1.0 / scale
    r_w = np.triu(r_raw @ t)
    extended = n * p <= EXTENDED_MAX_SIZE or factor.cond > EXTENDED_MIN_COND
    w0, res = _least_squares_csne(design, intercept, y, r_w, t, extended)
    out.update(ss_w0=w0, ss_rss0=np.asarray(float(np.dot(res, res))),
               ss_c=t.T @ _at(Design(design.X, ()), intercept, np.ones(p), res),
               ss_gram=r_w.T @ r_w)
    return out


def _large_qr_arrays(design: Design, intercept: bool, y: np.ndarray | None,
                     norms: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    """QR arrays of a large, well-conditioned design without copying it whole.

    ``Q = ([1, X] / norms) R^-1`` is formed block by block into its output array; with
    ``cond(R) <= REFINE_MIN_COND`` it is orthonormal to ~cond * 1e-16, and the parametrisation
    stays exact whatever its orthogonality (``eta = Q theta`` and ``beta = R^-1 theta / norms``
    use the same R).
    """
    n, p = design.n, r.shape[1]
    c = np.sqrt(n)
    q = np.empty((n, p))
    r_inv = scipy.linalg.solve_triangular(r, np.eye(p))
    start = 0
    for fb in _blocks(design, intercept, norms):
        q[start:start + fb.shape[0]] = fb @ r_inv
        start += fb.shape[0]
    if y is not None:
        theta = q.T @ y
        anchor = scipy.linalg.solve_triangular(r, theta) / norms
        eta = q @ theta
    else:
        anchor, eta = np.zeros(p), np.zeros(n)
    q *= c
    return {"Q": q, "R": r / c, "col_norm": norms, "anchor": anchor, "eta_anchor": eta}


def standardised_arrays(design: Design, intercept: bool, centre: bool = True
                        ) -> dict[str, np.ndarray]:
    """Arrays of the standardised parametrisation: ``Xs`` (n, d), ``center``, ``scale`` (d,)."""
    X = design.X
    center = X.mean(axis=0) if (intercept and centre) else np.zeros(design.d)
    xc = X - center
    scale = np.sqrt(np.einsum("ij,ij->j", xc, xc) / design.n)
    scale[scale == 0] = 1.0
    xc /= scale
    return {"Xs": xc, "center": center, "scale": scale}
