"""Arrays of the internal coordinates of a regression: QR factors, anchors, statistics.

The coordinate systems themselves are described in :mod:`bayesmle.models.coordinates`; this
module computes their arrays from a validated :class:`~bayesmle.models.design.Design`:

* QR coordinates -- ``Q`` and ``R`` of the column-scaled ``[1, X]`` (Householder, blockwise on
  large designs), or for well-conditioned designs only ``R^-1`` from the Gram matrix's Cholesky
  factor, no ``Q`` (:func:`qr_arrays`, :func:`implicit_qr_arrays`);
* for a Gaussian response, the least-squares *anchor* the coordinates are centred at, refined
  in extended precision where the design needs it, and the sufficient statistics of the
  residual sum of squares in the coordinates (:func:`gaussian_sufficient_stats`);
* standardised coordinates -- centres and scales, with or without a stored standardised copy
  (:func:`standardised_arrays`, :func:`implicit_standardised_arrays`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from bayesmle.models.design import (
    Design,
    GramFactor,
    blocks,
    column_norms,
    full_design,
    matvec,
    pow2,
    small_matmul,
    triangular_gram,
    tsqr_r,
)

__all__ = [
    "gaussian_sufficient_stats",
    "implicit_qr_arrays",
    "implicit_standardised_arrays",
    "least_squares_without_q",
    "qr_arrays",
    "refined_least_squares",
    "standardised_arrays",
]


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
        norms = pow2(column_norms(design, intercept))
        r = tsqr_r(design, intercept, norms)
        if np.linalg.cond(r) <= REFINE_MIN_COND:
            return _large_qr_arrays(design, intercept, y, norms, r)
    full, _ = full_design(design, intercept)
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
        xtv = matvec(design.X, v, transpose=True)
    else:  # extended precision: numpy casts X in buffered chunks, never as a whole copy
        xtv = np.einsum("ij,i->j", design.X, v)
    out = (np.concatenate(([v.sum()], xtv)) if intercept else xtv) / norms
    return out.astype(np.float64)


def _residual(design: Design, intercept: bool, y: np.ndarray, coef: np.ndarray,
              extended: bool) -> np.ndarray:
    """``y - [1, X] @ coef``; in extended precision (``numpy.longdouble``) if asked."""
    if not extended:
        eta = matvec(design.X, coef[int(intercept):])
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
    r_inv = factor.r_inv * c  # the inverse of r / c
    out = {"coef_map": r_inv / norms[:, None], "col_norm": norms}
    if y is None:
        out["anchor"] = np.zeros(p)
        return out
    extended = design.n * p <= EXTENDED_MAX_SIZE or factor.cond > EXTENDED_MIN_COND
    b, res = _least_squares_csne(design, intercept, y, r, _Scaling(1.0 / norms), extended)
    # Q'Q = R^-T gram R^-1
    g_theta = small_matmul(r_inv.T, small_matmul(factor.gram, r_inv))
    out.update(
        anchor=b / norms,
        ss_rss0=np.asarray(float(np.dot(res, res))),
        ss_c=matvec(r_inv, _at(design, intercept, norms, res), transpose=True),
        ss_gram=0.5 * (g_theta + g_theta.T),
    )
    return out


class _Scaling:
    """The change of coordinates ``t = D + e_0 t0'`` (column scales, centring in row 0).

    ``t @ w`` and ``t.T @ v`` in O(p), without forming or multiplying ``t``.
    """

    def __init__(self, diag: np.ndarray, row0: np.ndarray | None = None):
        self.diag = diag
        self.row0 = row0  # t[0, :] - diag[0] * e_0 (zero without centring)

    @property
    def size(self) -> int:
        return self.diag.size

    def __matmul__(self, w: np.ndarray) -> np.ndarray:
        out = self.diag * w
        if self.row0 is not None:
            out[0] += float(self.row0 @ w)
        return out

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """``t.T @ v``."""
        out = self.diag * v
        if self.row0 is not None:
            out += v[0] * self.row0
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
                        t: _Scaling, extended: bool) -> tuple[np.ndarray, np.ndarray]:
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
        return t.rmatvec(_at(ident, intercept, np.ones(t.size), v))

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
    # a power of two: coef = z / scale and back are exact, so that a coefficient held at a
    # Laplace prior's (non-zero) centre in z is reported exactly at that centre
    scale = pow2(scale)
    out = {"X": design.X, "center": center, "scale": scale}
    if y is None:
        return out
    p = d + int(intercept)
    diag = np.concatenate(([1.0], 1.0 / scale)) if intercept else 1.0 / scale
    row0 = np.concatenate(([0.0], -center / scale)) if intercept else None
    t = _Scaling(diag, row0)
    # r_raw @ t: column j of t has entries only in rows 0 and j, so the product is a column
    # scaling plus a multiple of r_raw's first column (which is zero below its first row).
    r_w = r_raw * diag[None, :]
    if intercept:
        r_w[:, 1:] += np.outer(r_raw[:, 0], row0[1:])
    r_w = np.triu(r_w)
    extended = n * p <= EXTENDED_MAX_SIZE or factor.cond > EXTENDED_MIN_COND
    w0, res = _least_squares_csne(design, intercept, y, r_w, t, extended)
    out.update(ss_w0=w0, ss_rss0=np.asarray(float(np.dot(res, res))),
               ss_c=t.rmatvec(_at(Design(design.X, ()), intercept, np.ones(p), res)),
               ss_gram=triangular_gram(r_w))
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
    for fb in blocks(design, intercept, norms):
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
    scale = pow2(np.sqrt(np.einsum("ij,ij->j", xc, xc) / design.n))  # exact (see above)
    xc /= scale
    return {"Xs": xc, "center": center, "scale": scale}
