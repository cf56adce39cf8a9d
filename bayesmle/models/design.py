"""Design matrices: validation, labels, rank and conditioning checks, blockwise helpers.

Regression builders never hand the raw design to the sampler or the optimiser: they fit in
internal coordinates (:mod:`bayesmle.models.coordinates`) whose arrays are computed in
:mod:`bayesmle.models.design_arrays`. This module validates a design (:func:`as_design`),
certifies its rank -- from the Cholesky factor of its column-scaled Gram matrix when it is well
conditioned (:func:`gram_factor`), from a blockwise QR otherwise (:func:`collinear_columns`) --
and holds the blockwise helpers that never copy a large design whole.
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
    "gram_factor",
    "rank_check",
    "residual_norm",
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
    arr = as_float_array(name, X, ndim=(1, 2))  # a DataFrame's index labels bad rows
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


def full_design(design: Design, intercept: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    if intercept:
        return (np.hstack([np.ones((design.n, 1)), design.X]),
                ("(intercept)",) + design.names)
    return design.X, design.names


#: Rows per block in the blockwise computations on large designs.
BLOCK_ROWS = 65_536


def blocks(design: Design, intercept: bool, norms: np.ndarray | None = None,
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


def column_norms(design: Design, intercept: bool) -> np.ndarray:
    sq = sum(np.einsum("ij,ij->j", fb, fb) for fb in blocks(design, intercept))
    return np.sqrt(sq)


def tsqr_r(design: Design, intercept: bool, norms: np.ndarray,
            response: np.ndarray | None = None) -> np.ndarray:
    """R of the thin QR of ``[1, X] / norms`` (or ``[1, X, y] / norms``) in O(block) memory.

    Householder QR over stacked row blocks (TSQR), as stable as one QR of the whole matrix.
    """
    p = design.d + int(intercept) + int(response is not None)
    r = np.zeros((0, p))
    for fb in blocks(design, intercept, norms, response):
        # Fortran order: LAPACK works in place instead of on a transposed copy (~10x faster).
        stacked = np.asfortranarray(np.vstack([r, fb]))
        (r,) = scipy.linalg.qr(stacked, mode="r", overwrite_a=True, check_finite=False)
        r = r[: min(r.shape)]
    return r


def pow2(norms: np.ndarray) -> np.ndarray:
    """Column norms rounded to powers of two, so that scaling by them is exact."""
    norms = norms.copy()
    norms[norms == 0] = 1.0
    return 2.0 ** np.round(np.log2(norms))


def residual_norm(design: Design, intercept: bool, y: np.ndarray) -> float:
    """Norm of the least-squares residual of ``y`` on ``[1, X]`` (full-rank designs).

    The last diagonal entry of R of ``[1, X, y]``, computed blockwise: no copy of the design
    and no separate least-squares solve.
    """
    norms = pow2(np.append(column_norms(design, intercept), np.sqrt(np.dot(y, y))))
    r = tsqr_r(design, intercept, norms, response=y)
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
    norms = pow2(np.sqrt(diag))
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
    raw = column_norms(design, intercept)
    zero = np.flatnonzero(raw == 0)
    groups = [[names[j]] for j in zero]
    r = tsqr_r(design, intercept, pow2(raw))
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
