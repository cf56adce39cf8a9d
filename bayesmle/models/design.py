"""Design matrices: validation, labels, rank and conditioning checks, blockwise helpers.

Regression builders never hand the raw design to the sampler or the optimiser: they fit in
internal coordinates (:mod:`bayesmle.models.coordinates`) whose arrays are computed in
:mod:`bayesmle.models.design_arrays`. This module validates a design (:func:`as_design`),
certifies its rank -- from the Cholesky factor of its column-scaled Gram matrix when it is well
conditioned (:func:`gram_factor`), from a blockwise QR otherwise (:func:`collinear_columns`) --
and holds the blockwise helpers that never copy a large design whole.

The (p x p) matrices of a regression -- Gram factors, their inverses and products -- are small:
:func:`small_cholesky`, :func:`triangular_inverse` and :func:`triangular_gram` handle them with
compiled loops instead of BLAS/LAPACK calls, whose thread pools cost more to wake (and, on a
busy machine, to wait for) than these products take; :func:`matvec` does the same for
matrix-vector products, with the design itself too (bound by memory, not arithmetic).
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
    "column_norms",
    "cond_bound",
    "describe_groups",
    "design_rank",
    "gram",
    "gram_factor",
    "matvec",
    "null_space",
    "rank_check",
    "residual_norm",
    "small_cholesky",
    "small_matmul",
    "triangular_gram",
    "triangular_inverse",
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


def column_max(design: Design, intercept: bool) -> np.ndarray:
    """Largest absolute value of each column of ``[1, X]`` (no copy of X)."""
    X = design.X
    amax = (np.maximum(X.max(axis=0), -X.min(axis=0)) if design.n
            else np.zeros(design.d))
    return np.concatenate(([1.0], amax)) if intercept else amax


def pow2_floor(values: np.ndarray) -> np.ndarray:
    """The largest power of two at most each value (1 for zeros): an exact, safe divisor.

    Unlike :func:`pow2` it never overflows (2**1024 does not exist), so dividing a column by
    it puts every entry in [-2, 2] without rounding.
    """
    values = np.where(values > 0, values, 1.0)
    return np.ldexp(1.0, np.frexp(values)[1] - 1)


def column_norms(design: Design, intercept: bool) -> np.ndarray:
    """Euclidean norms of the columns of ``[1, X]``, computed blockwise.

    Each column is divided by a power of two near its largest entry before squaring, so a
    column of order 1e-170 (whose squares underflow to zero) or 1e200 (whose squares
    overflow) gets its true norm: rank and scaling decisions are scale-invariant. Only an
    all-zero column has norm 0.
    """
    pre = pow2_floor(column_max(design, intercept))
    sq = sum(np.einsum("ij,ij->j", fb, fb) for fb in blocks(design, intercept, pre))
    return pre * np.sqrt(sq)


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
    """Norm of the least-squares residual of ``y`` on ``[1, X]`` (any rank, any n).

    From R of ``[1, X, y]`` (column-scaled), computed blockwise: no copy of the design and no
    separate least-squares solve. For a full-rank design it is the last diagonal entry of R;
    for a rank-deficient one (collinear columns, fewer rows than columns) the residual of the
    last column of R on the others, with numpy's rank tolerance.
    """
    norms = pow2(np.append(column_norms(design, intercept), _vector_norm(y)))
    r = tsqr_r(design, intercept, norms, response=y)
    ra, z = r[:, :-1], r[:, -1]
    sv = np.linalg.svd(ra, compute_uv=False)
    tol = (sv.max() if sv.size else 0.0) * max(design.n, ra.shape[1]) * np.finfo(float).eps
    if r.shape[0] == ra.shape[1] + 1 and sv.size == ra.shape[1] and sv.min() > tol:
        return float(abs(r[-1, -1]) * norms[-1])
    coef = np.linalg.lstsq(ra, z, rcond=max(design.n, ra.shape[1]) * np.finfo(float).eps)[0]
    return float(np.linalg.norm(z - ra @ coef) * norms[-1])


def _vector_norm(v: np.ndarray) -> float:
    """Euclidean norm without overflow or underflow."""
    top = float(np.max(np.abs(v))) if v.size else 0.0
    return top * float(np.linalg.norm(v / top)) if top > 0 else 0.0


# -- small dense kernels -----------------------------------------------------------------------
#: Matrices up to this order go through compiled loops (:mod:`bayesmle.models._kernels`);
#: larger ones through LAPACK, where the work is large enough to pay for BLAS threads.
SMALL_MAX = 192
#: OpenBLAS's thresholds for running a product on several threads (``GEMM_MULTITHREAD_THRESHOLD``
#: x 65,536 multiply-adds for a matrix product, x 2,304 for a matrix-vector product). Below them
#: BLAS runs on the calling thread, as fast as a compiled loop and without importing Numba or
#: compiling anything: the compiled kernels are used only from these sizes on.
THREADED_GEMM_WORK = 262_144
THREADED_GEMV_WORK = 9_216


def _kernels():
    from bayesmle.models import _kernels

    return _kernels


def _blas_gram(a: np.ndarray) -> np.ndarray:
    """``a.T @ a`` by BLAS, made exactly symmetric."""
    g = a.T @ a
    return 0.5 * (g + g.T)








def small_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for small matrices by a compiled loop (BLAS above ``SMALL_MAX``).

    Examples
    --------
    >>> import numpy as np
    >>> small_matmul(np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]])).tolist()
    [[11.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if (max(a.shape + b.shape) > SMALL_MAX
            or a.shape[0] * a.shape[1] * b.shape[-1] < THREADED_GEMM_WORK):
        return a @ b
    return _kernels().matmul_kernel(np.ascontiguousarray(a), np.ascontiguousarray(b))




def gram(x: np.ndarray) -> np.ndarray:
    """``x.T @ x`` (exactly symmetric): compiled loops over row blocks for narrow designs.

    Up to ``SMALL_MAX`` columns the product is accumulated over blocks of 256 rows by a
    compiled loop, within ~1.5x of a one-thread BLAS ``syrk`` and without BLAS's thread pool,
    whose synchronisation can cost 10-100x the product on a busy machine; wider designs
    use BLAS, where the work per call pays for its threads.

    Examples
    --------
    >>> import numpy as np
    >>> gram(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [[10.0, 14.0], [14.0, 20.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] > SMALL_MAX or x.shape[0] * x.shape[1] ** 2 < THREADED_GEMM_WORK:
        return _blas_gram(x)
    return _kernels().gram_kernel(np.ascontiguousarray(x), 256)


def small_cholesky(a: np.ndarray) -> np.ndarray:
    """Upper-triangular ``r`` with ``r.T @ r == a`` for a symmetric positive definite ``a``.

    Reads the lower triangle. Raises ``numpy.linalg.LinAlgError`` when ``a`` is not
    (numerically) positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> r = small_cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]))
    >>> r.tolist()
    [[2.0, 1.0], [0.0, 2.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    if a.shape[0] > SMALL_MAX or a.shape[0] ** 3 < THREADED_GEMM_WORK:
        try:
            r = scipy.linalg.cholesky(a, lower=True, check_finite=False).T
        except scipy.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError("matrix is not positive definite") from exc
        if not np.isfinite(r).all():  # OpenBLAS's potrf does not stop at a NaN
            raise np.linalg.LinAlgError("matrix is not positive definite")
        return r
    r, ok = _kernels().cholesky_kernel(np.ascontiguousarray(a))
    if not ok:
        raise np.linalg.LinAlgError("matrix is not positive definite")
    return r


def triangular_inverse(r: np.ndarray) -> np.ndarray:
    """Inverse of a nonsingular upper-triangular matrix (upper triangular).

    Examples
    --------
    >>> import numpy as np
    >>> triangular_inverse(np.array([[2.0, 1.0], [0.0, 4.0]])).tolist()
    [[0.5, -0.125], [0.0, 0.25]]
    """
    r = np.asarray(r, dtype=np.float64)
    if r.shape[0] > SMALL_MAX or r.shape[0] ** 3 < THREADED_GEMM_WORK:
        return np.triu(scipy.linalg.solve_triangular(r, np.eye(r.shape[0]), lower=False,
                                                     check_finite=False))
    return _kernels().tri_inv_kernel(np.ascontiguousarray(r))


def triangular_gram(r: np.ndarray) -> np.ndarray:
    """``r.T @ r`` of an upper-triangular ``r`` (exactly symmetric).

    Examples
    --------
    >>> import numpy as np
    >>> triangular_gram(np.array([[2.0, 1.0], [0.0, 3.0]])).tolist()
    [[4.0, 2.0], [2.0, 10.0]]
    """
    r = np.asarray(r, dtype=np.float64)
    if r.shape[0] > SMALL_MAX or r.shape[0] ** 3 < THREADED_GEMM_WORK:
        return _blas_gram(r)
    return _kernels().tri_gram_kernel(np.ascontiguousarray(r))


def matvec(a: np.ndarray, v: np.ndarray, *, transpose: bool = False) -> np.ndarray:
    """``a @ v`` (or ``a.T @ v``) by a compiled loop, for any size.

    A matrix-vector product is bound by memory, not arithmetic: one pass over ``a`` is as fast
    in a compiled loop as in BLAS, without waking (or, on a busy machine, waiting for) BLAS's
    thread pool.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> matvec(a, np.array([1.0, 1.0])).tolist(), matvec(
    ...     a, np.array([1.0, 1.0]), transpose=True).tolist()
    ([3.0, 7.0], [4.0, 6.0])
    """
    a = np.asarray(a, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if a.size < THREADED_GEMV_WORK:
        return a.T @ v if transpose else a @ v
    return _kernels().matvec_kernel(np.ascontiguousarray(a), np.ascontiguousarray(v), transpose)


def cond_bound(r: np.ndarray, r_inv: np.ndarray) -> float:
    """An upper bound on the 2-norm condition number of ``r`` from ``r`` and its inverse.

    ``||r||_2 <= sqrt(||r||_1 ||r||_inf)``, and the same for the inverse: a certificate
    without a singular value decomposition, at most ``p`` times the exact value (for
    well-conditioned designs typically within a factor of 2).

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[2.0, 1.0], [0.0, 4.0]])
    >>> bool(np.linalg.cond(r) <= cond_bound(r, triangular_inverse(r)) <= 2 * np.linalg.cond(r))
    True
    """
    def norm_bound(m):
        a = np.abs(m)
        return np.sqrt(float(a.sum(axis=0).max()) * float(a.sum(axis=1).max()))

    return float(norm_bound(r) * norm_bound(r_inv))


#: A design whose column-scaled R has a condition number at most this is *well conditioned*:
#: its rank is certified from the Gram matrix, and it is parametrised without a stored Q.
IMPLICIT_MAX_COND = 1e4
#: Columns whose largest entry is a power of two outside this range are scaled before their
#: Gram matrix is formed (their squares, summed over rows, would underflow or overflow).
_SAFE_LOW, _SAFE_HIGH = 2.0**-450, 2.0**450


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
    #: An upper bound on the 2-norm condition number of ``r`` (:func:`cond_bound`).
    cond: float
    #: The inverse of ``r`` (computed once for the bound; reused by the parametrisations).
    r_inv: np.ndarray


def gram_factor(design: Design, intercept: bool) -> GramFactor | None:
    """The :class:`GramFactor` of ``[1, X]``, or None if the design is not well conditioned.

    None means an upper bound on the condition number of the scaled design (from the
    Cholesky factor and its inverse, :func:`cond_bound`; no SVD) exceeds ``IMPLICIT_MAX_COND``
    (or a column is zero, or the Gram matrix is not numerically positive definite); the
    caller then falls back to Householder QR. A factor returned certifies full column rank:
    its smallest singular value is at least ``1 / IMPLICIT_MAX_COND`` of the largest, far
    above the ``max(n, p) * eps`` rank tolerance and the rounding error of the Gram matrix.
    """
    X = design.X
    amax = column_max(design, False)
    if design.n < design.d + int(intercept) or not np.all(amax > 0):
        return None  # fewer rows than columns, or a zero column: rank deficient
    pre = pow2_floor(amax)
    # Columns whose squares would underflow or overflow are scaled exactly first (a copy,
    # only then): a column of order 1e-170 is as well conditioned as any other.
    extreme = bool(np.any((pre < _SAFE_LOW) | (pre > _SAFE_HIGH)))
    if extreme:
        X = X / pre
    xtx = gram(X)
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
    scaled = pow2(np.sqrt(diag))
    scaled_gram = full / np.outer(scaled, scaled)
    norms = scaled * (np.concatenate(([1.0], pre)) if intercept else pre) if extreme else scaled
    try:
        r = small_cholesky(scaled_gram)
    except np.linalg.LinAlgError:
        return None
    # No SVD: the Cholesky factor and its inverse bound the condition number from above, so
    # a design accepted here is certified well conditioned (a rejected one takes the QR path).
    r_inv = triangular_inverse(r)
    cond = cond_bound(r, r_inv) if np.all(np.isfinite(r_inv)) else np.inf
    if not cond <= IMPLICIT_MAX_COND:
        return None
    return GramFactor(norms=norms, gram=scaled_gram, r=r, cond=cond, r_inv=r_inv)


def _scaled_r(design: Design, intercept: bool) -> np.ndarray:
    """R of the column-equilibrated ``[1, X]`` (min(n, p) rows), computed blockwise."""
    return tsqr_r(design, intercept, pow2(column_norms(design, intercept)))


def _rank_tol(sv: np.ndarray, design: Design, p: int) -> float:
    """The ``matrix_rank`` tolerance of numpy: ``s_max * max(n, p) * eps``."""
    return (sv.max() if sv.size else 0.0) * max(design.n, p) * np.finfo(float).eps


def design_rank(design: Design, intercept: bool) -> int:
    """Rank of ``[1, X]``, judged on the column-equilibrated design (see :func:`null_space`).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.arange(5.0), 1e-170 * np.arange(5.0) ** 2])
    >>> design_rank(as_design(X), intercept=True)  # the tiny column counts
    3
    """
    r = _scaled_r(design, intercept)
    sv = np.linalg.svd(r, compute_uv=False)
    return int(np.sum(sv > _rank_tol(sv, design, r.shape[1])))


#: A null-space basis is computed for designs of at most this many columns (its SVD holds a
#: p x p matrix); wider designs with fewer rows than columns are reported as a whole.
NULL_SPACE_MAX_COLUMNS = 2_000


def null_space(design: Design, intercept: bool) -> np.ndarray:
    """A sparse-ish basis (rows) of the null space of the column-equilibrated ``[1, X]``.

    Rank is judged scale-invariantly: each column is divided by its norm (a power of two,
    exact) and the singular values of the result (from its R factor, computed blockwise)
    are compared with numpy's ``matrix_rank`` tolerance ``s_max * max(n, p) * eps``. An
    all-zero column is a null direction of its own; fewer rows than columns leave at least
    ``p - n`` null directions. Each basis vector is 1 on a pivot column and 0 on the other
    pivots (reduced echelon form), so that independent collinearities show up separately.
    Entries are on the equilibrated scale (their supports are what matters).
    """
    r = _scaled_r(design, intercept)
    p = r.shape[1]
    _, sv, vt = np.linalg.svd(r)
    rank = int(np.sum(sv > _rank_tol(sv, design, p)))
    basis = vt[rank:]
    k = basis.shape[0]
    if k == 0:
        return basis
    _, _, piv = scipy.linalg.qr(basis, pivoting=True, mode="economic")
    basis = np.linalg.solve(basis[:, piv[:k]], basis)
    basis[np.abs(basis) < 1e-12 * np.abs(basis).max(axis=1, keepdims=True)] = 0.0
    return basis


def collinear_columns(design: Design, intercept: bool,
                      factor: GramFactor | None = None) -> list[list[str]]:
    """Groups of columns (intercept included) that are exactly or numerically collinear.

    Each group is the support of a null-space direction of the column-equilibrated design
    (see :func:`null_space`): a zero column alone, a duplicated column with its twin, ...
    A :class:`GramFactor` of the design (``factor``) already certifies full rank: then there
    are no groups and nothing is factorised.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6.0)
    >>> X = np.column_stack([x, x**2, 3.0 * x])  # x2 duplicates x0 up to scale
    >>> collinear_columns(as_design(X), intercept=True)
    [['x0', 'x2']]
    """
    if factor is not None:
        return []  # certified full rank by the Gram factor
    names = (("(intercept)",) if intercept else ()) + design.names
    if design.n < len(names) and len(names) > NULL_SPACE_MAX_COLUMNS:
        return [list(names)]  # fewer rows than columns: all of them, as one group
    groups = []
    for v in null_space(design, intercept):
        a = np.abs(v)
        members = [names[j] for j in np.flatnonzero(a > 1e-6 * a.max())]
        if members not in groups:
            groups.append(members)
    return groups


def describe_groups(groups: list[list[str]], limit: int = 5, width: int = 10) -> str:
    """``{a, b}; {c, d, e}`` for at most ``limit`` groups of at most ``width`` names."""
    parts = []
    for g in groups[:limit]:
        shown = ", ".join(g[:width]) + (f", ... ({len(g)} columns)" if len(g) > width else "")
        parts.append("{" + shown + "}")
    more = f"; and {len(groups) - limit} more group(s)" if len(groups) > limit else ""
    return "; ".join(parts) + more


def rank_check(design: Design, intercept: bool, groups: list[list[str]] | None = None) -> None:
    """Raise MLENotFoundError naming collinear columns if the design is rank deficient.

    ``groups`` may pass a result of :func:`collinear_columns` computed earlier. With fewer
    rows than coefficients the message says so: no data of that size identify the MLE.
    """
    groups = collinear_columns(design, intercept) if groups is None else groups
    p = design.d + int(intercept)
    hints = ["Drop one column of each collinear group (or a dummy level per factor).",
             "Or give the coefficients (and the intercept) proper priors (e.g. "
             "prior=Normal(1.0)): then MAP, Laplace and NUTS are defined."]
    if design.n < p:
        raise MLENotFoundError(
            checklist(
                f"The MLE is not unique: `X` has {design.n} row(s) for {p} coefficient(s)"
                f"{' (the intercept included)' if intercept else ''}, and fewer rows than "
                "coefficients cannot identify them (the design is rank deficient: any "
                "direction in its null space fits the data equally well).",
                ["Give every coefficient a proper prior (e.g. prior=Normal(1.0), "
                 "intercept_prior=Normal(10.0)): then MAP, Laplace and NUTS are defined "
                 "with n < p.",
                 "Or use fewer predictors."],
            )
        )
    if groups:
        raise MLENotFoundError(
            checklist(
                f"The design matrix is rank deficient, so the MLE is not unique: these columns "
                f"are (numerically) collinear: {describe_groups(groups)}. A constant column is "
                f"collinear with the intercept.",
                hints,
            )
        )
