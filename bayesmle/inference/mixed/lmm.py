"""Gaussian linear mixed models: lme4's exact profiled deviance and REML criterion, and their fit.

The model is ``y | u ~ N(X beta + Z Lambda(theta) u, sigma^2 I)``, ``u ~ N(0, sigma^2 I)``
(:mod:`bayesmle.models.mixed_design` defines ``theta`` and ``Lambda``). Following Bates,
Maechler, Bolker and Walker (2015), *Fitting Linear Mixed-Effects Models Using lme4*, J. Stat.
Softw. 67(1), section 3, everything is computed from the factor of

    A(theta) = Lambda' Z' Z Lambda + I                      (q x q)

and the fixed-effects block ``F = X'X - X'Z Lambda A^-1 Lambda' Z'X = R_X' R_X``:

* the penalised residual sum of squares ``r^2(theta) = min_{u,beta} |y - X beta - Z Lambda u|^2
  + |u|^2``;
* the profiled deviance ``-2 log L = log|A| + n (1 + log(2 pi r^2 / n))`` (``sigma^2 = r^2/n``);
* the REML criterion ``log|A| + log|F| + (n - p) (1 + log(2 pi r^2 / (n - p)))``.

:func:`lmm_system` computes the cross products ``Z'Z, Z'X, Z'y, X'X, X'y, y'y`` once; every
later evaluation costs nothing proportional to ``n``. ``A`` is factorised by structure:

* one grouping factor (``"blocked"``): ``A`` is block diagonal with one ``k x k`` block per level,
  factorised by batched NumPy linear algebra (cost ``O(levels k^3)``);
* several factors (crossed or nested) whose sparse LU stays sparse (at most
  ``SPARSE_MAX_FILL`` of ``q^2`` entries at the start: nested factors, a large factor crossed
  with a small one) or with ``q > DENSE_MAX_Q`` (``"sparse"``): SuperLU of the sparse ``A`` with
  a symmetric fill-reducing ordering (SciPy has no sparse Cholesky; ``A`` is symmetric positive
  definite, so no pivoting is needed and the log-determinant is the sum of ``log U_ii``);
  gradients by central differences;
* other designs with several factors (``"dense"``, ``q <= DENSE_MAX_Q``): dense LAPACK Cholesky
  of ``A`` with analytic gradients (cost ``O(q^3)``; measured 0.07 s per evaluation with its
  gradient at ``q = 1000`` and 0.33 s at ``q = 2000`` on one core).

A factor needing more than ``MEMORY_LIMIT_BYTES`` raises :class:`~bayesmle.errors.SpecError`
instead of exhausting the machine (two large crossed factors, e.g. 5,000 x 2,000 levels, fill
~8% of ``q^2``: 3.7 million entries, 4 s per factorisation).

Gradients are analytic (``blocked`` and ``dense``): by the envelope theorem the derivative of
the profiled criterion is that of ``-2 log L(beta, Sigma, sigma)`` (or of the REML
log-likelihood) at the profiled ``beta`` and ``sigma``, which needs the level blocks of
``Z'V^-1 Z`` and ``Z'V^-1 (y - X beta)``, all available in ``q``-space from the factor of ``A``.
To limit cancellation, the cross products are taken of ``y - X beta_ols`` (``beta`` is then
estimated as a correction to the least-squares fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import minimize

from bayesmle._validation import as_float_array, check_int
from bayesmle.errors import DataError, MLENotFoundError, SpecError, checklist
from bayesmle.inference.mixed.fit import MixedFit
from bayesmle.models.mixed_design import (
    MixedDesign,
    components,
    lambda_factors,
    theta_lower_bounds,
    z_matrix,
)

__all__ = [
    "DENSE_MAX_Q",
    "MEMORY_LIMIT_BYTES",
    "SINGULAR_TOL",
    "SPARSE_MAX_FILL",
    "LmmSystem",
    "conditional_modes",
    "fit_lmm",
    "gaussian_loglik",
    "gaussian_loglik_grad",
    "lmm_system",
    "profiled_deviance",
]

#: Largest ``q`` factorised densely when the model has several grouping factors (above it: sparse
#: LU). Measured on one core: a dense factor with the analytic gradient takes 0.07 s at
#: q = 1000 and 0.33 s at q = 2000 (O(q^3)).
DENSE_MAX_Q = 2500
#: Several grouping factors: the sparse LU is used when its factors hold at most this fraction
#: of ``q^2`` entries at the starting theta. Measured on one core: nested factors (200 x 10
#: levels) and a large factor crossed with a small one (3,000 x 30) fill 0.2-0.5% and factorise
#: 13-20x faster than dense, which pays for gradients by differences; two large crossed factors
#: (800 x 200) fill 8% and the dense factor with its analytic gradient wins (0.07 s against
#: 0.19 s per value and gradient).
SPARSE_MAX_FILL = 0.01
#: Largest memory a factor of ``A`` may take (dense: a few ``q x q`` arrays; sparse: the LU).
MEMORY_LIMIT_BYTES = 2 * 2**30
#: lme4's ``isSingular`` tolerance: a bounded ``theta`` entry below it is at the boundary.
SINGULAR_TOL = 1e-4
#: A fit is converged when the Newton decrement ``g' H^-1 g`` on the free coordinates (the
#: decrease of the criterion its quadratic model still predicts) is at most this times
#: ``max(1, |criterion|)``, and the Hessian there is positive semi-definite.
DECREMENT_TOL = 1e-12
#: Relative size of a negative Hessian eigenvalue that marks a saddle point.
_NEG_CURVATURE = 1e-8
#: Restarts of L-BFGS-B after leaving a saddle point.
_MAX_RESTARTS = 5

#: Entries of the right-hand sides solved at once by the sparse factor (32 MB).
_SOLVE_ENTRIES = 4_000_000

_LOG2PI = math.log(2.0 * math.pi)
_EPS = np.finfo(float).eps


# -- the cross products -----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LmmSystem:
    """The cross products of a Gaussian mixed model, computed once per data set.

    ``y`` enters as ``y - offset - X beta0`` with ``beta0`` the least-squares fit (this removes
    most of the cancellation from ``y'y - ...``); estimates of ``beta`` are ``beta0 + delta``.

    Attributes
    ----------
    n, p, q : int
        Rows, fixed effects and random effects.
    kind : str
        ``"blocked"`` (one grouping factor), ``"dense"`` or ``"sparse"`` (how ``A`` is factorised).
    XtX, Xty, yty, beta0 : ndarray, ndarray, float, ndarray
        ``X'X``, ``X'r0``, ``r0'r0`` with ``r0 = y - offset - X beta0``, and ``beta0``.
    ZtX, Zty : ndarray
        ``Z'X`` (q, p) and ``Z'r0`` (q,).
    ZtZ : ndarray or scipy.sparse.csr_matrix
        ``(levels, k, k)`` level blocks (``"blocked"``) or the sparse ``q x q`` matrix.
    ztz_diag : tuple of ndarray
        The level blocks ``(levels, k, k)`` of ``Z'Z`` of each random-effects block.
    ks, n_levels, starts : tuple of int
        Columns, levels and first row in ``b`` of each block.
    lower : ndarray
        lme4's lower bounds of ``theta``.
    """

    n: int
    p: int
    q: int
    kind: str
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    beta0: np.ndarray
    ZtX: np.ndarray
    Zty: np.ndarray
    ZtZ: Any
    ztz_diag: tuple[np.ndarray, ...]
    ks: tuple[int, ...]
    n_levels: tuple[int, ...]
    starts: tuple[int, ...]
    lower: np.ndarray
    lam_pattern: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def n_theta(self) -> int:
        """Length of ``theta``."""
        return len(self.lower)

    def level_index(self, b: int) -> np.ndarray:
        """Rows of block ``b`` in ``b``-order, shaped ``(levels, k)``."""
        k, g = self.ks[b], self.n_levels[b]
        return self.starts[b] + np.arange(g * k).reshape(g, k)


def _check_design(design: Any) -> None:
    if not isinstance(design, MixedDesign):
        raise SpecError(f"`design` must be a MixedDesign, got {type(design).__name__}.")
    if design.family != "gaussian" or design.link != "identity":
        raise SpecError(
            f"`design` has family {design.family!r} with link {design.link!r}; the exact linear "
            "mixed model needs family 'gaussian' with link 'identity' (other families are fitted "
            "by the Laplace approximation in bayesmle.inference.mixed.glmm).")
    if not design.blocks:
        raise SpecError("`design` has no random-effects block; a model without random effects "
                        "is a linear regression (bayesmle.models.linear_regression).")


def lmm_system(design: MixedDesign) -> LmmSystem:
    """The cross products of a Gaussian mixed model, computed once per data set.

    Parameters
    ----------
    design : MixedDesign
        Family ``"gaussian"``, identity link, at least one random-effects block.

    Returns
    -------
    LmmSystem

    Raises
    ------
    SpecError
        Not a Gaussian design, no random effects, or a ``q x q`` factor beyond the memory limit.
    DataError
        Non-finite data, level codes out of range, or a rank-deficient ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = np.repeat(np.arange(4), 3)
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b", "c", "d"), g, np.ones((12, 1)))
    >>> design = MixedDesign(np.ones((12, 1)), ("Intercept",), np.arange(12.0), (block,))
    >>> s = lmm_system(design)
    >>> s.kind, s.n, s.p, s.q
    ('blocked', 12, 1, 4)
    >>> s.ztz_diag[0][:, 0, 0]
    array([3., 3., 3., 3.])
    """
    _check_design(design)
    X = as_float_array("design.X", design.X, ndim=2)
    y = as_float_array("design.y", design.y, ndim=1)
    n, p = X.shape
    if y.shape[0] != n:
        raise DataError(f"`design.y` has {y.shape[0]} rows but `design.X` has {n}; they must "
                        "have the same number of rows.")
    if design.offset is not None:
        off = as_float_array("design.offset", design.offset, ndim=1)
        if off.shape[0] != n:
            raise DataError(f"`design.offset` has {off.shape[0]} rows, `design.X` has {n}.")
        y = y - off
    for block in design.blocks:
        codes = np.asarray(block.codes)
        vals = as_float_array(f"values of block ({block.group})", block.values, ndim=2)
        if codes.shape != (n,) or vals.shape != (n, block.k):
            raise DataError(
                f"Random-effects block ({block.group}) has codes of shape {codes.shape} and "
                f"values of shape {vals.shape}; expected ({n},) and ({n}, {block.k}).")
        if n and (codes.min() < 0 or codes.max() >= block.n_levels):
            raise DataError(
                f"Random-effects block ({block.group}) has level codes in [{codes.min()}, "
                f"{codes.max()}]; valid codes are 0 to {block.n_levels - 1} (one per level).")
    beta0, _, rank, sv = np.linalg.lstsq(X, y, rcond=None)
    if rank < p or sv[-1] <= sv[0] * 1e-12:
        raise DataError(checklist(
            f"`design.X` (columns {', '.join(design.fixed_names)}) has rank {rank} < {p} "
            "columns: the fixed effects are not identified.",
            ["Drop a redundant column (e.g. a dummy of every level beside an intercept)."]))
    r0 = y - X @ beta0
    Z = z_matrix(design).tocsr()
    q = Z.shape[1]
    ZtX = np.asarray(Z.T @ X)
    Zty = np.asarray(Z.T @ r0).ravel()
    ks = tuple(b.k for b in design.blocks)
    levels = tuple(b.n_levels for b in design.blocks)
    starts = tuple(int(s) for s in np.cumsum([0] + [k * g for k, g in zip(ks, levels,
                                                                         strict=True)])[:-1])
    if len(design.blocks) == 1:
        block = design.blocks[0]
        k, g = block.k, block.n_levels
        vals = np.asarray(block.values, dtype=float)
        codes = np.asarray(block.codes)
        ztz = np.empty((g, k, k))
        for i in range(k):
            for j in range(i, k):
                ztz[:, i, j] = ztz[:, j, i] = np.bincount(
                    codes, weights=vals[:, i] * vals[:, j], minlength=g)
        kind, ZtZ, diag = "blocked", ztz, (ztz,)
    else:
        ZtZ = (Z.T @ Z).tocsr()
        kind = None
        diag_list = []
        for b, (k, g) in enumerate(zip(ks, levels, strict=True)):
            idx = starts[b] + np.arange(g * k).reshape(g, k)
            rows = np.broadcast_to(idx[:, :, None], (g, k, k)).ravel()
            cols = np.broadcast_to(idx[:, None, :], (g, k, k)).ravel()
            diag_list.append(np.asarray(ZtZ[rows, cols]).reshape(g, k, k))
        diag = tuple(diag_list)
    system = LmmSystem(n=n, p=p, q=q, kind=kind or "sparse", XtX=X.T @ X, Xty=X.T @ r0,
                       yty=float(r0 @ r0), beta0=beta0, ZtX=ZtX, Zty=Zty, ZtZ=ZtZ,
                       ztz_diag=diag, ks=ks, n_levels=levels, starts=starts,
                       lower=theta_lower_bounds(design),
                       lam_pattern=None if kind else _lambda_pattern(ks, levels, q))
    if kind is None:  # several factors: sparse LU if it stays sparse, else dense
        lower = system.lower
        trial = _SparseFactor(system, _lambda_from_theta(system, np.where(np.isfinite(lower),
                                                                          1.0, 0.0)))
        fill = trial.nnz / float(q) ** 2
        if fill > SPARSE_MAX_FILL and q <= DENSE_MAX_Q:
            _check_bytes(4 * 8 * q * q, q, "dense")
            object.__setattr__(system, "kind", "dense")
    return system


def _check_bytes(need: float, q: int, kind: str) -> None:
    if need > MEMORY_LIMIT_BYTES:
        raise SpecError(checklist(
            f"The {kind} factor of the q x q random-effects system (q = {q:,} random effects) "
            f"needs about {need / 2**30:.1f} GiB; bayesmle's limit is "
            f"{MEMORY_LIMIT_BYTES / 2**30:.0f} GiB (MEMORY_LIMIT_BYTES in "
            "bayesmle.inference.mixed.lmm).",
            ["Use fewer grouping levels or fewer crossed factors.",
             "Raise bayesmle.inference.mixed.lmm.MEMORY_LIMIT_BYTES if the machine has the "
             "memory."]))


# -- Lambda in q-space ------------------------------------------------------------------------
def _lam_t(system: LmmSystem, Ls: list[np.ndarray], M: np.ndarray) -> np.ndarray:
    """``Lambda' M`` for ``M`` of shape (q,) or (q, m)."""
    M2 = M.reshape(system.q, -1)
    out = np.empty_like(M2)
    for L, s, k, g in zip(Ls, system.starts, system.ks, system.n_levels, strict=True):
        blk = M2[s:s + k * g].reshape(g, k, -1)
        out[s:s + k * g] = np.einsum("rc,grm->gcm", L, blk).reshape(k * g, -1)
    return out.reshape(M.shape)


def _lam(system: LmmSystem, Ls: list[np.ndarray], M: np.ndarray) -> np.ndarray:
    """``Lambda M`` for ``M`` of shape (q,) or (q, m)."""
    M2 = M.reshape(system.q, -1)
    out = np.empty_like(M2)
    for L, s, k, g in zip(Ls, system.starts, system.ks, system.n_levels, strict=True):
        blk = M2[s:s + k * g].reshape(g, k, -1)
        out[s:s + k * g] = np.einsum("rc,gcm->grm", L, blk).reshape(k * g, -1)
    return out.reshape(M.shape)


def _ztz_mul(system: LmmSystem, M: np.ndarray) -> np.ndarray:
    """``Z'Z M`` for ``M`` of shape (q,) or (q, m)."""
    if system.kind == "blocked":
        g, k = system.n_levels[0], system.ks[0]
        M2 = M.reshape(g, k, -1)
        return np.matmul(system.ZtZ, M2).reshape(M.shape)
    return np.asarray(system.ZtZ @ M).reshape(M.shape)


def _lambda_pattern(ks: tuple[int, ...], n_levels: tuple[int, ...], q: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR pattern of ``Lambda``: ``(indptr, indices, theta_index)``.

    ``Lambda`` stores the lower triangle of every level's block; ``theta_index`` gives, per stored
    entry, its position in ``theta``.
    """
    rows, cols, tidx = [], [], []
    start, t_start = 0, 0
    for k, g in zip(ks, n_levels, strict=True):
        base = start + k * np.arange(g)
        offset = 0
        for c in range(k):
            for r in range(c, k):
                rows.append(base + r)
                cols.append(base + c)
                tidx.append(np.full(g, t_start + offset + r - c))
            offset += k - c
        start += k * g
        t_start += k * (k + 1) // 2
    rows, cols, tidx = (np.concatenate(a) for a in (rows, cols, tidx))
    order = np.lexsort((cols, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=q))])
    return indptr, cols[order], tidx[order]


def _lambda_sparse(system: LmmSystem, Ls: list[np.ndarray]) -> sp.csr_matrix:
    theta = np.concatenate([L.T[np.triu_indices(L.shape[0])] for L in Ls])  # column-major
    indptr, indices, tidx = system.lam_pattern
    return sp.csr_matrix((theta[tidx], indices, indptr), shape=(system.q, system.q))


def _diag_blocks(M: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Level blocks ``M[idx_g, idx_g]`` of a dense ``q x q`` matrix, shape (levels, k, k)."""
    return M[idx[:, :, None], idx[:, None, :]]


# -- factors of A -----------------------------------------------------------------------------
class _BlockedFactor:
    """``A`` block diagonal (one grouping factor): batched k x k algebra."""

    analytic = True

    def __init__(self, system: LmmSystem, Ls: list[np.ndarray]):
        L = Ls[0]
        self.system = system
        self.ztzl = np.matmul(system.ZtZ, L)  # (G, k, k): Z_g'Z_g L
        A = np.matmul(L.T, self.ztzl)
        A += np.eye(L.shape[0])
        C = np.linalg.cholesky(A)
        self.logdet = 2.0 * float(np.log(np.diagonal(C, axis1=1, axis2=2)).sum())
        self.Ainv = np.linalg.inv(A)

    def solve(self, M: np.ndarray) -> np.ndarray:
        g, k = self.Ainv.shape[:2]
        return np.matmul(self.Ainv, M.reshape(g, k, -1)).reshape(M.shape)

    def tr_inv(self) -> float:
        return float(np.trace(self.Ainv, axis1=1, axis2=2).sum())

    def inv_blocks(self) -> list[np.ndarray]:
        return [self.Ainv]

    def sas_blocks(self) -> list[np.ndarray]:
        """Level blocks of ``S A^-1 S'`` with ``S = Z'Z Lambda``."""
        return [np.matmul(np.matmul(self.ztzl, self.Ainv), np.swapaxes(self.ztzl, 1, 2))]


class _DenseFactor:
    """Several grouping factors: dense Cholesky of ``A``."""

    analytic = True

    def __init__(self, system: LmmSystem, Ls: list[np.ndarray]):
        self.system = system
        lam = _lambda_sparse(system, Ls)
        self.S = (system.ZtZ @ lam).tocsr()  # Z'Z Lambda
        A = (lam.T @ self.S).toarray()
        A[np.diag_indices_from(A)] += 1.0
        self.C = sla.cholesky(A, lower=True, check_finite=False, overwrite_a=True)
        self.logdet = 2.0 * float(np.log(np.diag(self.C)).sum())
        self._cinv: np.ndarray | None = None

    def solve(self, M: np.ndarray) -> np.ndarray:
        return sla.cho_solve((self.C, True), M, check_finite=False)

    @property
    def cinv(self) -> np.ndarray:
        if self._cinv is None:
            cinv, info = sla.lapack.dtrtri(self.C, lower=1)
            if info != 0:  # pragma: no cover - A >= I is never singular
                raise MLENotFoundError(f"The factor of A is singular (LAPACK info {info}).")
            self._cinv = cinv
        return self._cinv

    def tr_inv(self) -> float:
        return float(np.einsum("ij,ij->", self.cinv, self.cinv))

    def inv_blocks(self) -> list[np.ndarray]:
        out = []
        for b in range(len(self.system.ks)):
            cols = self.cinv[:, self.system.level_index(b)]  # (q, G, k)
            out.append(np.einsum("qgk,qgl->gkl", cols, cols))
        return out

    def sas_blocks(self) -> list[np.ndarray]:
        T = np.asarray(self.S @ self.cinv.T)  # S C^-T: (S A^-1 S')_ab = T[a] . T[b]
        out = []
        for b in range(len(self.system.ks)):
            rows = T[self.system.level_index(b)]  # (G, k, q)
            out.append(np.einsum("gkq,glq->gkl", rows, rows))
        return out


class _SparseFactor:
    """Several grouping factors, large ``q``: SuperLU of the sparse ``A`` (no pivoting)."""

    #: Gradients by differences: the level blocks of ``S A^-1 S'`` need q solves, and SuperLU's
    #: many-right-hand-side solve is slow (measured 0.6 s per gradient for a nested design with
    #: q = 2,200, against 5 factorisations of 4 ms for central differences).
    analytic = False

    def __init__(self, system: LmmSystem, Ls: list[np.ndarray]):
        self.system = system
        lam = _lambda_sparse(system, Ls)
        A = (lam.T @ (system.ZtZ @ lam) + sp.identity(system.q)).tocsc()
        try:
            self.lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                options={"SymmetricMode": True})
        except MemoryError:
            _check_bytes(float("inf"), system.q, "sparse")
            raise  # pragma: no cover
        self.nnz = self.lu.L.nnz + self.lu.U.nnz
        _check_bytes(12.0 * self.nnz, system.q, "sparse")
        u = self.lu.U.diagonal()
        if np.any(u <= 0):  # pragma: no cover - A >= I
            raise MLENotFoundError("The sparse LU of A met a non-positive pivot.")
        self.logdet = float(np.log(u).sum())

    def solve(self, M: np.ndarray) -> np.ndarray:
        return self.lu.solve(np.ascontiguousarray(M))

    def _level_blocks(self, R: sp.csr_matrix) -> list[np.ndarray]:
        """Per block, the level blocks of ``R A^-1 R'`` (``R`` sparse q x q).

        By chunks of levels: ``A^-1`` applied to the chunk's columns of ``R'`` (q solves in all).
        """
        q = self.system.q
        out = []
        for b in range(len(self.system.ks)):
            idx = self.system.level_index(b)
            g, k = idx.shape
            blocks = np.empty((g, k, k))
            per = max(1, min(512, _SOLVE_ENTRIES // q) // k)
            for start in range(0, g, per):
                sub = idx[start:start + per]
                m = sub.shape[0]
                rows = R[sub.ravel()].toarray()  # (m k, q)
                X = self.solve(rows.T)  # (q, m k)
                blocks[start:start + m] = np.einsum("irh,hic->irc", rows.reshape(m, k, q),
                                                    X.reshape(q, m, k))
            out.append(blocks)
        return out

    def inv_blocks(self) -> list[np.ndarray]:
        return self._level_blocks(sp.identity(self.system.q, format="csr"))


def _factor_class(system: LmmSystem) -> type:
    return {"blocked": _BlockedFactor, "dense": _DenseFactor}.get(system.kind, _SparseFactor)


def _factor(system: LmmSystem, Ls: list[np.ndarray]):
    return _factor_class(system)(system, Ls)


# -- one evaluation ---------------------------------------------------------------------------
@dataclass
class _Eval:
    """Everything one evaluation at ``theta`` (relative factors ``Ls``) computed."""

    value: float
    s2: float  # sigma^2 used (profiled or given)
    r2: float
    delta: np.ndarray  # beta - beta0 used
    delta_hat: np.ndarray
    mu: np.ndarray  # spherical conditional modes at delta
    F: np.ndarray
    cF: np.ndarray  # lower Cholesky factor of F
    cFi: np.ndarray  # its inverse (p x p; see _evaluate)
    W: np.ndarray
    Q: float
    fac: Any
    grad_sigma_blocks: list[np.ndarray] | None = None  # sigma^2 * d(-2 l)/d Sigma_b


def _evaluate(system: LmmSystem, Ls: list[np.ndarray], *, reml: bool,
              delta: np.ndarray | None = None, sigma: float | None = None,
              grad: bool = False) -> _Eval:
    """Profiled (``sigma`` None) or natural (``sigma`` given) -2 log-likelihood or REML crit."""
    n, p = system.n, system.p
    fac = _factor(system, Ls)
    ltztx = _lam_t(system, Ls, system.ZtX)
    ltzty = _lam_t(system, Ls, system.Zty)
    W = fac.solve(ltztx)
    wy = fac.solve(ltzty)
    F = system.XtX - ltztx.T @ W
    F = 0.5 * (F + F.T)
    Fy = system.Xty - ltztx.T @ wy
    yy = system.yty - float(ltzty @ wy)
    try:
        cF = np.linalg.cholesky(F)
    except np.linalg.LinAlgError:
        raise DataError(
            "The fixed-effects block X'V^-1 X of the mixed model is not positive definite at "
            "this theta: the random effects absorb a fixed-effect column (e.g. a fixed effect "
            "constant within every level of a grouping factor with a huge variance).") from None
    logdet_f = 2.0 * float(np.log(np.diag(cF)).sum())
    # The p x p factor is inverted explicitly: with OpenBLAS's threads on a busy machine, a
    # triangular solve (trsm) costs ~15 ms whatever its size, LAPACK's small inverse ~10 us.
    cFi = np.linalg.inv(cF)
    delta_hat = cFi.T @ (cFi @ Fy)
    r2 = yy - float(Fy @ delta_hat)
    floor = 1e-13 * max(system.yty, float(abs(system.Xty @ system.beta0)), 1e-300)
    if delta is None:
        d_use, Q = delta_hat, r2
    else:
        d_use = np.asarray(delta, dtype=float)
        diff = cF.T @ (d_use - delta_hat)
        Q = max(r2, 0.0) + float(diff @ diff)
    if sigma is None:
        if r2 <= floor:
            raise MLENotFoundError(
                f"The penalised residual sum of squares is {r2:.3g} (numerically 0): the mixed "
                "model fits y exactly, so sigma -> 0 and the likelihood is unbounded.")
        m = n - p if reml else n
        s2 = r2 / m
        value = fac.logdet + m * (1.0 + math.log(2.0 * math.pi * r2 / m))
        if reml:
            value += logdet_f
    else:
        s2 = float(sigma) ** 2
        r2 = max(r2, 0.0)
        if reml:
            value = (n - p) * (_LOG2PI + math.log(s2)) + fac.logdet + logdet_f + r2 / s2
        else:
            value = n * (_LOG2PI + math.log(s2)) + fac.logdet + Q / s2
    mu = wy - W @ d_use
    ev = _Eval(value=float(value), s2=s2, r2=r2, delta=d_use, delta_hat=delta_hat, mu=mu, F=F,
               cF=cF, cFi=cFi, W=W, Q=Q, fac=fac)
    if grad:
        ev.grad_sigma_blocks = _sigma_gradient(system, Ls, ev, reml)
    return ev


def _sigma_gradient(system: LmmSystem, Ls: list[np.ndarray], ev: _Eval, reml: bool
                    ) -> list[np.ndarray]:
    """``sigma^2 dD/dSigma_b`` per block (D = -2 log L or the REML criterion), summed over levels.

    ``sigma^2 Z'V^-1 Z = Z'Z - S A^-1 S'`` (``S = Z'Z Lambda``), ``sigma^2 Z'V^-1 e = Z'eps`` with
    ``eps = e - Z Lambda mu``; REML subtracts ``H F^-1 H'`` with ``H = sigma^2 Z'V^-1 X``.
    """
    fac = ev.fac
    zte = system.Zty - system.ZtX @ ev.delta - _ztz_mul(system, _lam(system, Ls, ev.mu))
    sas = fac.sas_blocks()
    K = None
    if reml:
        H = system.ZtX - _ztz_mul(system, _lam(system, Ls, ev.W))
        K = ev.cFi @ H.T  # (p, q)
    out = []
    for b in range(len(system.ks)):
        idx = system.level_index(b)
        e = zte[idx]  # (G, k)
        blk = system.ztz_diag[b] - sas[b]
        total = blk.sum(axis=0) - (e.T @ e) / ev.s2
        if reml:
            kb = K[:, idx]  # (p, G, k)
            total -= np.einsum("pgk,pgl->kl", kb, kb)
        out.append(0.5 * (total + total.T))
    return out


def _theta_grad_from_blocks(system: LmmSystem, Ls: list[np.ndarray],
                            blocks: list[np.ndarray]) -> np.ndarray:
    """Criterion derivative in theta: lower triangle of ``2 (sigma^2 G_b) L_b``, by column."""
    out = []
    for L, sg in zip(Ls, blocks, strict=True):
        d = 2.0 * sg @ L
        k = L.shape[0]
        out.extend(d[i, j] for j in range(k) for i in range(j, k))
    return np.asarray(out)


def _lambda_from_theta(system: LmmSystem, theta: np.ndarray) -> list[np.ndarray]:
    factors, at = [], 0
    for k in system.ks:
        L = np.zeros((k, k))
        for j in range(k):
            for i in range(j, k):
                L[i, j] = theta[at]
                at += 1
        factors.append(L)
    return factors


def _check_theta(system: LmmSystem, theta: Any, name: str = "theta") -> np.ndarray:
    th = as_float_array(name, theta, ndim=1, error=SpecError)
    if th.shape[0] != system.n_theta:
        raise SpecError(f"`{name}` has {th.shape[0]} entries; this design's theta has "
                        f"{system.n_theta} (the lower triangles of its blocks' factors).")
    return th


class _Criterion:
    """The profiled criterion in ``theta`` with its gradient; counts evaluations."""

    def __init__(self, system: LmmSystem, reml: bool):
        self.system, self.reml = system, reml
        self.n_eval = 0
        self.analytic = _factor_class(system).analytic
        #: Hessian step, and the projected gradient below which polishing stops (relative to
        #: max(1, |f|)): a differenced gradient is accurate to ~1e-10 |f| only.
        self.hess_step = 1e-5 if self.analytic else 1e-4
        self.grad_floor = 1e-12 if self.analytic else 1e-9

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        return _fd_hessian(self.grad, theta, self.hess_step * np.maximum(1.0, np.abs(theta)))

    def value(self, theta: np.ndarray) -> float:
        self.n_eval += 1
        return _evaluate(self.system, _lambda_from_theta(self.system, theta),
                         reml=self.reml).value

    def fg(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        if not self.analytic:
            f = self.value(theta)
            return f, _fd_gradient(self.value, theta,
                                   _GRAD_STEP * np.maximum(1.0, np.abs(theta)))
        self.n_eval += 1
        Ls = _lambda_from_theta(self.system, theta)
        ev = _evaluate(self.system, Ls, reml=self.reml, grad=True)
        return ev.value, _theta_grad_from_blocks(self.system, Ls, ev.grad_sigma_blocks)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.fg(theta)[1]


#: Relative step of differenced gradients (~ eps^(1/3): truncation and rounding balanced).
_GRAD_STEP = 6e-6


def _fd_gradient(f, x: np.ndarray, h: np.ndarray, lo: np.ndarray | None = None,
                 hi: np.ndarray | None = None) -> np.ndarray:
    """Differences of a value: central, or second-order one-sided next to a bound."""
    lo = np.full(x.size, -np.inf) if lo is None else lo
    hi = np.full(x.size, np.inf) if hi is None else hi
    g = np.empty_like(x)
    f0 = None
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        if x[i] - h[i] >= lo[i] and x[i] + h[i] <= hi[i]:
            g[i] = (f(x + e) - f(x - e)) / (2.0 * h[i])
            continue
        f0 = f(x) if f0 is None else f0
        if x[i] + 2 * h[i] <= hi[i]:
            g[i] = (-3.0 * f0 + 4.0 * f(x + e) - f(x + 2 * e)) / (2.0 * h[i])
        else:
            g[i] = (3.0 * f0 - 4.0 * f(x - e) + f(x - 2 * e)) / (2.0 * h[i])
    return g


def _fd_hessian(grad, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Central differences of a gradient with steps ``h``, symmetrised."""
    m = x.size
    H = np.empty((m, m))
    for i in range(m):
        xp, xm = x.copy(), x.copy()
        xp[i] += h[i]
        xm[i] -= h[i]
        H[:, i] = (grad(xp) - grad(xm)) / (2.0 * h[i])
    return 0.5 * (H + H.T)


def _natural_bounds(n_beta: int, n_sd: int, n_corr: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``[beta, sd, corr, sigma]`` (sigma > 0 is kept by relative steps)."""
    inf = np.inf
    lo = np.concatenate([np.full(n_beta, -inf), np.zeros(n_sd), -np.ones(n_corr), [0.0]])
    hi = np.concatenate([np.full(n_beta + n_sd, inf), np.ones(n_corr), [inf]])
    return lo, hi


def profiled_deviance(system: LmmSystem, theta: Any, *, reml: bool = False) -> float:
    """lme4's profiled deviance (``-2 log L`` maximised over beta and sigma) or REML criterion.

    Parameters
    ----------
    system : LmmSystem
        From :func:`lmm_system`.
    theta : array_like
        lme4's relative covariance factor entries (:mod:`bayesmle.models.mixed_design`).
    reml : bool
        False: ``log|A| + n (1 + log(2 pi r^2/n))``; True: lme4's ``REMLcrit``,
        ``log|A| + log|R_X|^2 + (n-p) (1 + log(2 pi r^2/(n-p)))``.

    Returns
    -------
    float

    Examples
    --------
    At ``theta = 0`` the model is a linear regression: the deviance is OLS's ``-2 log L``.

    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(5), 4)
    >>> y = rng.normal(size=20)
    >>> block = RandomBlock("g", ("Intercept",), tuple("abcde"), g, np.ones((20, 1)))
    >>> s = lmm_system(MixedDesign(np.ones((20, 1)), ("Intercept",), y, (block,)))
    >>> rss = float(((y - y.mean()) ** 2).sum())
    >>> ols = 20 * (1 + np.log(2 * np.pi * rss / 20))
    >>> bool(np.isclose(profiled_deviance(s, [0.0]), ols, rtol=1e-12))
    True
    """
    th = _check_theta(system, theta)
    if reml and system.n <= system.p:
        raise DataError(f"REML needs more rows than fixed effects; n = {system.n}, "
                        f"p = {system.p}.")
    return _evaluate(system, _lambda_from_theta(system, th), reml=reml).value


# -- natural parameters -----------------------------------------------------------------------
def _psd_cholesky(S: np.ndarray, label: str) -> np.ndarray:
    """Lower factor ``L L' = S`` of a positive semi-definite ``k x k`` matrix (zero columns)."""
    k = S.shape[0]
    L = np.zeros((k, k))
    scale = max(float(np.max(np.diag(S))), 1e-300)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        rest = S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]
        if d < -1e-10 * scale:
            raise SpecError(f"The covariance of block ({label}) built from `sd` and `corr` is not "
                            "positive semi-definite; correlations must form a valid correlation "
                            "matrix (values in [-1, 1], positive semi-definite).")
        if d <= 1e-14 * scale:
            if np.any(np.abs(rest) > 1e-7 * scale):
                raise SpecError(f"The covariance of block ({label}) built from `sd` and `corr` "
                                "is not positive semi-definite.")
            continue
        L[j, j] = math.sqrt(d)
        L[j + 1:, j] = rest / L[j, j]
    return L


def _natural_blocks(design: MixedDesign, sd: Any, corr: Any) -> list[np.ndarray]:
    """Per block the covariance ``Sigma_b`` from reported sd and corr (checked)."""
    n_sd = sum(b.k for b in design.blocks)
    n_corr = len(design.corr_labels())
    sd = as_float_array("sd", np.atleast_1d(sd), ndim=1, error=SpecError) if n_sd else np.zeros(0)
    corr = np.asarray(corr if corr is not None else [], dtype=float).reshape(-1)
    if sd.shape[0] != n_sd:
        raise SpecError(f"`sd` has {sd.shape[0]} entries; this design has {n_sd} "
                        f"({', '.join(design.sd_labels())}).")
    if corr.shape[0] != n_corr:
        raise SpecError(f"`corr` has {corr.shape[0]} entries; this design has {n_corr}"
                        + (f" ({', '.join(design.corr_labels())})." if n_corr else "."))
    if np.any(sd < 0):
        bad = [lab for lab, s in zip(design.sd_labels(), sd, strict=True) if s < 0]
        raise SpecError(f"`sd` must be >= 0; {', '.join(bad)} is negative "
                        f"({sd[sd < 0].tolist()}).")
    out, s_at, c_at = [], 0, 0
    for block in design.blocks:
        k = block.k
        s = sd[s_at:s_at + k]
        s_at += k
        R = np.eye(k)
        if k >= 2:
            iu = np.triu_indices(k, 1)
            m = len(iu[0])
            c = corr[c_at:c_at + m].copy()
            c_at += m
            undefined = (s[iu[0]] == 0) | (s[iu[1]] == 0)
            if np.any(np.isnan(c) & ~undefined) or np.any(np.abs(c[~np.isnan(c)]) > 1):
                raise SpecError(f"`corr` of block ({block.group}) must hold values in [-1, 1] "
                                f"(NaN only where an sd is 0), got {c.tolist()}.")
            c[np.isnan(c)] = 0.0
            R[iu] = c
            R.T[iu] = c
        out.append(np.outer(s, s) * R)
    return out


def _natural_eval(system: LmmSystem, design: MixedDesign, beta: np.ndarray | None,
                  Sigmas: list[np.ndarray], sigma: float, reml: bool, grad: bool
                  ) -> tuple[float, list[np.ndarray] | None, np.ndarray | None, float | None]:
    """-2 log L (or -2 REML log L) at natural parameters; gradients in beta, Sigma_b, sigma."""
    s2 = sigma * sigma
    Ls = [_psd_cholesky(S / s2, block.group)
          for S, block in zip(Sigmas, design.blocks, strict=True)]
    delta = None if beta is None else beta - system.beta0
    ev = _evaluate(system, Ls, reml=reml, delta=delta, sigma=sigma, grad=grad)
    if not grad:
        return ev.value, None, None, None
    g_sigma_b = [sg / s2 for sg in ev.grad_sigma_blocks]
    n, p, q = system.n, system.p, system.q
    mumu = float(ev.mu @ ev.mu)
    tr = ev.fac.tr_inv()
    if reml:
        V = ev.cFi @ ev.W.T
        trace = n - q + tr - p + float(np.einsum("ij,ij->", V, V))
        g_s = 2.0 / sigma * trace - 2.0 / sigma ** 3 * (ev.r2 - mumu)
        g_beta = None
    else:
        g_s = 2.0 / sigma * (n - q + tr) - 2.0 / sigma ** 3 * (ev.Q - mumu)
        Fy = ev.F @ ev.delta_hat
        g_beta = -2.0 / s2 * (Fy - ev.F @ ev.delta)
    return ev.value, g_sigma_b, g_beta, g_s


def _chain_sd_corr(design: MixedDesign, Sigmas: list[np.ndarray],
                   g_blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Gradient in (sd, corr) from the gradient in each Sigma_b (symmetric convention)."""
    g_sd, g_corr = [], []
    for block, S, G in zip(design.blocks, Sigmas, g_blocks, strict=True):
        s = np.sqrt(np.clip(np.diag(S), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            R = np.where(np.outer(s, s) > 0, S / np.outer(s, s), 0.0)
        np.fill_diagonal(R, 1.0)
        g_sd.append(2.0 * (G * R) @ s)
        if block.k >= 2:
            iu = np.triu_indices(block.k, 1)
            g_corr.append(2.0 * G[iu] * s[iu[0]] * s[iu[1]])
    return (np.concatenate(g_sd) if g_sd else np.zeros(0),
            np.concatenate(g_corr) if g_corr else np.zeros(0))


def _natural_args(design: MixedDesign, beta: Any, sigma: Any, system: LmmSystem | None
                  ) -> tuple[LmmSystem, np.ndarray, float]:
    system = _system_for(design, system)
    b = as_float_array("beta", np.atleast_1d(beta), ndim=1, error=SpecError)
    if b.shape[0] != system.p:
        raise SpecError(f"`beta` has {b.shape[0]} entries; this design has {system.p} fixed "
                        f"effects ({', '.join(design.fixed_names)}).")
    s = float(sigma)
    if not (math.isfinite(s) and s > 0):
        raise SpecError(f"`sigma` must be a finite number > 0, got {sigma!r}.")
    return system, b, s


def gaussian_loglik(design: MixedDesign, beta: Any, sd: Any, corr: Any, sigma: float, *,
                    system: LmmSystem | None = None) -> float:
    """Exact marginal log-likelihood of a Gaussian mixed model at natural parameters.

    Not profiled: ``log N(y; X beta + offset, sigma^2 I + Z Sigma Z')`` with ``Sigma`` block
    diagonal, level blocks ``diag(sd) R diag(sd)``. Valid on the boundary (an ``sd`` of 0, a
    correlation of +-1; a correlation whose sd is 0 may be NaN).

    Parameters
    ----------
    design : MixedDesign
    beta : array_like (p,)
    sd : array_like
        In the order of ``design.sd_labels()``.
    corr : array_like
        In the order of ``design.corr_labels()`` (empty when no block has two columns).
    sigma : float
        Residual standard deviation, > 0.
    system : LmmSystem, optional
        Precomputed cross products (saves a pass over the data).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_normal
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = np.repeat(np.arange(3), 2)
    >>> y = np.array([0.1, 0.5, -0.3, 0.2, 1.1, 0.7])
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b", "c"), g, np.ones((6, 1)))
    >>> design = MixedDesign(np.ones((6, 1)), ("Intercept",), y, (block,))
    >>> V = 0.5 ** 2 * np.eye(6) + 0.8 ** 2 * (g[:, None] == g[None, :])
    >>> ref = multivariate_normal(np.full(6, 0.2), V).logpdf(y)
    >>> bool(np.isclose(gaussian_loglik(design, [0.2], [0.8], [], 0.5), ref, rtol=1e-12))
    True
    """
    system, b, s = _natural_args(design, beta, sigma, system)
    Sigmas = _natural_blocks(design, sd, corr)
    return -0.5 * _natural_eval(system, design, b, Sigmas, s, False, False)[0]


def gaussian_loglik_grad(design: MixedDesign, beta: Any, sd: Any, corr: Any, sigma: float, *,
                         system: LmmSystem | None = None) -> tuple[float, np.ndarray]:
    """:func:`gaussian_loglik` and its gradient in ``[beta, sd, corr, sigma]``.

    Analytic for one grouping factor and for dense systems; differences of the exact value for
    sparse systems (central, second-order one-sided at ``sd = 0`` or ``corr = +-1``). At an
    ``sd`` of 0 the analytic gradient is the derivative of the formula, which is smooth in
    ``sd`` through 0; the entries of a correlation whose sd is 0 are 0.

    Returns
    -------
    tuple of (float, ndarray)
        The log-likelihood and its gradient (length ``p + n_sd + n_corr + 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = np.repeat(np.arange(3), 2)
    >>> y = np.array([0.1, 0.5, -0.3, 0.2, 1.1, 0.7])
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b", "c"), g, np.ones((6, 1)))
    >>> design = MixedDesign(np.ones((6, 1)), ("Intercept",), y, (block,))
    >>> value, grad = gaussian_loglik_grad(design, [0.2], [0.8], [], 0.5)
    >>> h = 1e-6
    >>> fd = (gaussian_loglik(design, [0.2], [0.8 + h], [], 0.5)
    ...       - gaussian_loglik(design, [0.2], [0.8 - h], [], 0.5)) / (2 * h)
    >>> bool(np.isclose(grad[1], fd, rtol=1e-6))
    True
    """
    system, b, s = _natural_args(design, beta, sigma, system)
    Sigmas = _natural_blocks(design, sd, corr)
    if system.kind == "sparse":
        x0 = np.concatenate([b, np.atleast_1d(np.asarray(sd, float)),
                             np.nan_to_num(np.asarray(corr if corr is not None else [],
                                                      float).reshape(-1)), [s]])
        p, n_sd = system.p, len(design.sd_labels())

        def f(x: np.ndarray) -> float:
            return gaussian_loglik(design, x[:p], x[p:p + n_sd], x[p + n_sd:-1], x[-1],
                                   system=system)

        lo, hi = _natural_bounds(p, n_sd, x0.size - p - n_sd - 1)
        scale = np.concatenate([np.maximum(1.0, np.abs(b)), np.maximum(x0[p:p + n_sd], s),
                                np.ones(x0.size - p - n_sd - 1), [s]])
        return f(x0), _fd_gradient(f, x0, _GRAD_STEP * scale, lo, hi)
    value, g_blocks, g_beta, g_s = _natural_eval(system, design, b, Sigmas, s, False, True)
    g_sd, g_corr = _chain_sd_corr(design, Sigmas, g_blocks)
    grad = np.concatenate([g_beta, g_sd, g_corr, [g_s]])
    return -0.5 * value, -0.5 * grad


def _reml_natural(system: LmmSystem, design: MixedDesign, x: np.ndarray
                  ) -> tuple[float, np.ndarray]:
    """-2 REML log L at ``[sd, corr, sigma]`` and its gradient (for the observed information)."""
    n_sd = len(design.sd_labels())
    sd, corr, sigma = x[:n_sd], x[n_sd:-1], float(x[-1])
    Sigmas = _natural_blocks(design, sd, corr)
    if system.kind == "sparse":
        def f(z: np.ndarray) -> float:
            return _natural_eval(system, design, None,
                                 _natural_blocks(design, z[:n_sd], z[n_sd:-1]), float(z[-1]),
                                 True, False)[0]
        lo, hi = _natural_bounds(0, n_sd, x.size - n_sd - 1)
        scale = np.concatenate([np.maximum(sd, sigma), np.ones(x.size - n_sd - 1),
                                [sigma]])
        return f(x), _fd_gradient(f, x, _GRAD_STEP * scale, lo, hi)
    value, g_blocks, _, g_s = _natural_eval(system, design, None, Sigmas, sigma, True, True)
    g_sd, g_corr = _chain_sd_corr(design, Sigmas, g_blocks)
    return value, np.concatenate([g_sd, g_corr, [g_s]])


# -- conditional modes ------------------------------------------------------------------------
def _modes(system: LmmSystem, Ls: list[np.ndarray], delta: np.ndarray, sigma: float,
           fac: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    fac = fac or _factor(system, Ls)
    ltz = _lam_t(system, Ls, system.Zty - system.ZtX @ delta)
    mu = fac.solve(ltz)
    b = _lam(system, Ls, mu)
    var = np.empty(system.q)
    for blk, (L, Ainv) in enumerate(zip(Ls, fac.inv_blocks(), strict=True)):
        idx = system.level_index(blk)
        cov = np.matmul(np.matmul(L, Ainv), L.T)  # (G, k, k)
        var[idx] = np.diagonal(cov, axis1=1, axis2=2)
    return b, sigma * np.sqrt(np.clip(var, 0.0, None))


def conditional_modes(design: MixedDesign, beta: Any, theta: Any, sigma: float, *,
                      system: LmmSystem | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Conditional modes of the random effects (BLUPs) and their conditional sds.

    ``b = Lambda A^-1 Lambda' Z'(y - offset - X beta)`` and ``sd(b | y) = sigma sqrt(diag(Lambda
    A^-1 Lambda'))`` (lme4's ``ranef(fit, condVar = TRUE)``, which holds ``beta`` fixed).

    Parameters
    ----------
    design : MixedDesign
    beta : array_like (p,)
    theta : array_like
        lme4's relative covariance factor (relative to ``sigma``).
    sigma : float
        Residual standard deviation, > 0.
    system : LmmSystem, optional

    Returns
    -------
    tuple of ndarray
        ``b`` and its conditional sds, in the order of ``design.re_labels()``.

    Examples
    --------
    A random intercept's mode is the group's mean residual shrunk by
    ``n_g s_b^2 / (n_g s_b^2 + sigma^2)``:

    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> g = np.repeat(np.arange(2), 3)
    >>> y = np.array([1.0, 2.0, 3.0, 0.0, -1.0, 1.0])
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b"), g, np.ones((6, 1)))
    >>> design = MixedDesign(np.ones((6, 1)), ("Intercept",), y, (block,))
    >>> b, b_sd = conditional_modes(design, [0.0], [1.0], 1.0)
    >>> b.round(6).tolist()   # means 2 and 0 shrunk by 3 / (3 + 1)
    [1.5, 0.0]
    """
    system, b, s = _natural_args(design, beta, sigma, system)
    th = _check_theta(system, theta)
    return _modes(system, _lambda_from_theta(system, th), b - system.beta0, s)


# -- the fit ----------------------------------------------------------------------------------
def _system_for(design: MixedDesign, system: LmmSystem | None) -> LmmSystem:
    if system is None:
        return lmm_system(design)
    if not isinstance(system, LmmSystem):
        raise SpecError(f"`system` must be an LmmSystem from lmm_system(design), got "
                        f"{type(system).__name__}.")
    shape = (design.n, design.p, design.q, tuple(b.k for b in design.blocks),
             tuple(b.n_levels for b in design.blocks))
    if (system.n, system.p, system.q, system.ks, system.n_levels) != shape:
        raise SpecError(f"`system` was computed for another design (n, p, q, block sizes "
                        f"{(system.n, system.p, system.q, system.ks, system.n_levels)} vs "
                        f"{shape}); pass lmm_system(design).")
    return system


def _projected(theta: np.ndarray, g: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The gradient with the entries of coordinates held at their lower bound removed."""
    pg = g.copy()
    pg[(theta <= lower) & (g > 0)] = 0.0
    return pg


def _polish(crit: _Criterion, theta: np.ndarray, lower: np.ndarray
            ) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Projected Newton on the free coordinates (Hessian from differences of the gradient)."""
    f, g = crit.fg(theta)
    steps = 0
    for _ in range(30 if crit.analytic else 8):
        pg = _projected(theta, g, lower)
        if np.max(np.abs(pg), initial=0.0) <= crit.grad_floor * max(1.0, abs(f)):
            break
        free = ~((theta <= lower) & (g > 0))
        H = crit.hessian(theta)[np.ix_(free, free)]
        w, V = np.linalg.eigh(H)
        floor = 1e-10 * max(1.0, float(np.max(np.abs(w))))
        step = np.zeros_like(theta)
        step[free] = -V @ ((V.T @ g[free]) / np.maximum(np.abs(w), floor))
        pg_norm = float(np.max(np.abs(pg)))
        t, accepted = 1.0, False
        for _ in range(40):
            cand = np.maximum(theta + t * step, lower)
            fc, gc = crit.fg(cand)
            pc = float(np.max(np.abs(_projected(cand, gc, lower)), initial=0.0))
            if fc < f - 1e-4 * t * abs(float(g @ step)) or (
                    fc <= f + 8 * _EPS * abs(f) and pc < pg_norm):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        steps += 1
        moved = float(np.max(np.abs(cand - theta)))
        theta, f, g = cand, fc, gc
        if moved <= 1e-14 * max(1.0, float(np.max(np.abs(theta)))):
            break
    return theta, f, g, steps


def _newton_decrement(hf: np.ndarray, gf: np.ndarray) -> tuple[bool, float]:
    """(Hessian positive semi-definite, ``g' H^+ g``) on the free coordinates."""
    if hf.size == 0:
        return True, 0.0
    w, V = np.linalg.eigh(hf)
    big = max(1.0, float(np.max(np.abs(w))))
    definite = float(w[0]) > -_NEG_CURVATURE * big
    proj = V.T @ gf
    keep = w > _NEG_CURVATURE * big
    return definite, float(np.sum(proj[keep] ** 2 / w[keep]))


def _escape_saddle(crit: _Criterion, theta: np.ndarray, f: float, H: np.ndarray,
                   free: np.ndarray, lower: np.ndarray) -> np.ndarray | None:
    """A feasible point below ``f`` along the most negative curvature, or None if none.

    A diagonal ``theta`` entry at 0 is a stationary point of the criterion (it depends on the
    sign of a factor's column only through ``L L'``), so a gradient method can stop there even
    when the criterion decreases away from 0: the Hessian tells.
    """
    hf = H[np.ix_(free, free)]
    if hf.size == 0:
        return None
    w, V = np.linalg.eigh(hf)
    if w[0] >= -_NEG_CURVATURE * max(1.0, float(np.max(np.abs(w)))):
        return None
    v = np.zeros_like(theta)
    v[free] = V[:, 0]
    scale = max(1.0, float(np.max(np.abs(theta))))
    for t in (1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3):
        for sign in (1.0, -1.0):
            cand = np.maximum(theta + sign * t * scale * v, lower)
            if crit.value(cand) < f:
                return cand
    return None


def _boundary(design: MixedDesign, system: LmmSystem, theta: np.ndarray, sigma: float,
              sd: np.ndarray, corr: np.ndarray) -> tuple[bool, list[str], np.ndarray]:
    """lme4's isSingular, the labels on the boundary, and the natural entries to leave out.

    ``sd`` is at 0 when ``sd / sigma < SINGULAR_TOL``; in a singular block whose remaining
    columns have a singular correlation matrix (+-1 for two columns), those correlations are on
    the boundary. Correlations involving an sd at 0 are undefined (left out, not labelled).
    """
    bounded = np.isfinite(system.lower)
    singular = bool(np.any(theta[bounded] < SINGULAR_TOL))
    labels: list[str] = []
    out_sd = np.zeros(sd.size, dtype=bool)
    out_corr = np.zeros(corr.size, dtype=bool)
    s_at, c_at = 0, 0
    for block, L in zip(design.blocks, lambda_factors(design, theta), strict=True):
        k = block.k
        diag = np.array([L[j, j] for j in range(k)])
        zero = sd[s_at:s_at + k] < SINGULAR_TOL * sigma
        out_sd[s_at:s_at + k] = zero
        labels += [lab for lab, z in zip(block.sd_labels(), zero, strict=True) if z]
        if k >= 2:
            iu = np.triu_indices(k, 1)
            m = len(iu[0])
            undefined = zero[iu[0]] | zero[iu[1]]
            c = corr[c_at:c_at + m]
            rank_def = bool(np.any(diag < SINGULAR_TOL))
            live = np.flatnonzero(~zero)
            on_edge = np.zeros(m, dtype=bool)
            if rank_def and live.size >= 2:
                S = L @ L.T
                sub = S[np.ix_(live, live)]
                dsub = np.sqrt(np.diag(sub))
                R = sub / np.outer(dsub, dsub)
                if np.linalg.eigvalsh(R)[0] < 1e-6:
                    in_live = np.isin(iu[0], live) & np.isin(iu[1], live)
                    on_edge = in_live & ~undefined
            labels += [lab for lab, e in zip(block.corr_labels(), on_edge, strict=True) if e]
            out_corr[c_at:c_at + m] = undefined | on_edge | np.isnan(c)
            c_at += m
        s_at += k
    return singular, labels, np.concatenate([out_sd, out_corr])


def _natural_cov(system: LmmSystem, design: MixedDesign, reml: bool, beta: np.ndarray,
                 sd: np.ndarray, corr: np.ndarray, sigma: float, beta_cov: np.ndarray,
                 leave_out: np.ndarray) -> np.ndarray:
    """Covariance of ``[beta, sd, corr, sigma]`` from the observed information (NaN: boundary)."""
    p = system.p
    n_var = sd.size + corr.size + 1
    m = p + n_var
    cov = np.full((m, m), np.nan)
    var_x = np.concatenate([sd, np.nan_to_num(corr), [sigma]])
    keep_var = np.concatenate([~leave_out, [True]])
    # Steps on each coordinate's own scale, inside its bounds (interior sd >= 1e-4 sigma).
    step = 1e-5 if system.kind != "sparse" else 1e-4
    var_h = step * np.concatenate([sd, np.minimum(1.0, 0.5 * (1.0 - np.abs(np.nan_to_num(
        corr))) / step), [sigma]])
    if reml:
        def grad(z: np.ndarray) -> np.ndarray:
            x = var_x.copy()
            x[keep_var] = z
            return _reml_natural(system, design, x)[1][keep_var]
        z0 = var_x[keep_var]
        cov[:p, :p] = beta_cov
        cov[:p, p:] = np.where(keep_var, 0.0, np.nan)[None, :]
        cov[p:, :p] = cov[:p, p:].T
        sub = _inverse_half(_fd_hessian(grad, z0, var_h[keep_var]))
        kv = np.flatnonzero(keep_var) + p
        cov[np.ix_(kv, kv)] = sub
        return cov
    full_x = np.concatenate([beta, var_x])
    keep = np.concatenate([np.ones(p, dtype=bool), keep_var])

    def grad_ml(z: np.ndarray) -> np.ndarray:
        x = full_x.copy()
        x[keep] = z
        _, g = gaussian_loglik_grad(design, x[:p], x[p:p + sd.size],
                                    x[p + sd.size:-1], x[-1], system=system)
        return -2.0 * g[keep]

    beta_h = step * np.maximum(np.abs(beta), np.sqrt(np.diag(beta_cov)))
    sub = _inverse_half(_fd_hessian(grad_ml, full_x[keep], np.concatenate([beta_h, var_h])[keep]))
    kk = np.flatnonzero(keep)
    cov[np.ix_(kk, kk)] = sub
    return cov


def _inverse_half(H: np.ndarray) -> np.ndarray:
    """Inverse of ``H / 2`` (H the Hessian of a -2 log-likelihood); NaN if not definite."""
    try:
        c = np.linalg.cholesky(0.5 * H)
    except np.linalg.LinAlgError:
        return np.full_like(H, np.nan)
    ci = np.linalg.inv(c)
    return ci.T @ ci


def fit_lmm(design: MixedDesign, method: str = "mle", *, start: Any = None, max_iter: int = 500,
            system: LmmSystem | None = None) -> MixedFit:
    """Fit a Gaussian linear mixed model by maximum likelihood or REML, as lme4's ``lmer``.

    Minimises the profiled deviance (``"mle"``) or REML criterion (``"reml"``) over lme4's
    ``theta`` within its bounds (diagonal entries >= 0): bounded L-BFGS-B with the analytic
    gradient, then projected Newton steps on the free coordinates (Hessian from central
    differences of the gradient) to a tight optimum.

    Parameters
    ----------
    design : MixedDesign
        Gaussian family.
    method : {"mle", "reml"}
    start : array_like, optional
        Starting ``theta`` (default lme4's: 1 on the diagonals, 0 elsewhere).
    max_iter : int
        Iterations of L-BFGS-B.
    system : LmmSystem, optional
        Cross products from :func:`lmm_system` (computed when not given).

    Returns
    -------
    MixedFit
        ``sigma`` divides the penalised RSS by ``n`` (ML) or ``n - p`` (REML); ``loglik`` is the
        log-likelihood (ML) or the REML log-likelihood ``-REMLcrit / 2``; ``beta_cov`` is lme4's
        ``vcov`` (``sigma^2 (R_X' R_X)^-1``); ``cov`` the inverse observed information of the
        natural vector (ML: of ``-log L`` in ``[beta, sd, corr, sigma]``; REML: ``beta_cov`` for
        beta and the REML information for ``[sd, corr, sigma]``, zero cross terms); ``hess`` the
        Hessian of the criterion in ``theta``; ``b`` and ``b_sd`` the conditional modes and sds.

    Raises
    ------
    SpecError
        Unknown method, a bad ``start`` or ``max_iter``.
    DataError, MLENotFoundError
        Invalid data, or an exact fit (``sigma`` = 0).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(8), 6)
    >>> y = 2.0 + rng.normal(size=8)[g] + 0.5 * rng.normal(size=48)
    >>> block = RandomBlock("g", ("Intercept",), tuple("abcdefgh"), g, np.ones((48, 1)))
    >>> fit = fit_lmm(MixedDesign(np.ones((48, 1)), ("Intercept",), y, (block,)), "reml")
    >>> fit.converged, fit.singular
    (True, False)
    >>> bool(np.isclose(fit.beta[0], y.mean()))  # balanced: the GLS mean is the mean
    True
    """
    if method not in ("mle", "reml"):
        raise SpecError(f"`method` must be 'mle' or 'reml', got {method!r}.")
    max_iter = check_int("max_iter", max_iter, 1)
    system = _system_for(design, system)
    reml = method == "reml"
    if system.n <= system.p:
        raise DataError(f"The mixed model needs more rows than fixed effects; n = {system.n}, "
                        f"p = {system.p}.")
    lower = system.lower
    if start is None:
        theta0 = np.where(np.isfinite(lower), 1.0, 0.0)
    else:
        theta0 = _check_theta(system, start, "start")
        if np.any(theta0 < lower):
            raise SpecError(f"`start` must respect lme4's bounds (diagonal entries >= 0), got "
                            f"{theta0.tolist()} with lower bounds {lower.tolist()}.")
    crit = _Criterion(system, reml)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    theta, nit, newton, messages = theta0, 0, 0, []
    for _ in range(_MAX_RESTARTS):
        res = minimize(crit.fg, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": max_iter, "maxfun": 20 * max_iter,
                                "ftol": 1e-15 if crit.analytic else 1e-12,
                                "gtol": 1e-10 if crit.analytic else 1e-7, "maxcor": 20})
        nit += int(res.nit)
        messages.append(f"L-BFGS-B: {res.message}")
        theta, f, g, steps = _polish(crit, np.asarray(res.x, dtype=float), lower)
        newton += steps
        H = crit.hessian(theta)
        free = ~((theta <= lower) & (g > 0))
        escaped = _escape_saddle(crit, theta, f, H, free, lower)
        if escaped is None:
            break
        messages.append("left a saddle point along negative curvature")
        theta = escaped
    pg = _projected(theta, g, lower)
    grad_norm = float(np.max(np.abs(pg), initial=0.0))
    definite, decrement = _newton_decrement(H[np.ix_(free, free)], g[free])
    converged = definite and decrement <= DECREMENT_TOL * max(1.0, abs(f))
    message = ("; ".join(messages) + f"; {newton} Newton step(s); projected gradient "
               f"{grad_norm:.2e}, Newton decrement {decrement:.2e}"
               + ("" if definite else "; Hessian not positive semi-definite on the free "
                  "coordinates (saddle point)"))

    Ls = _lambda_from_theta(system, theta)
    ev = _evaluate(system, Ls, reml=reml)
    sigma = math.sqrt(ev.s2)
    beta = system.beta0 + ev.delta_hat
    beta_cov = ev.s2 * (ev.cFi.T @ ev.cFi)
    sd, corr = components(design, theta, sigma)
    singular, labels, leave_out = _boundary(design, system, theta, sigma, sd, corr)
    cov = _natural_cov(system, design, reml, beta, sd, corr, sigma, beta_cov, leave_out)
    b, b_sd = _modes(system, Ls, ev.delta_hat, sigma, ev.fac)
    loglik = -0.5 * ev.value
    return MixedFit(
        method=method, beta=beta, theta=theta.copy(), sigma=sigma, sd=sd, corr=corr,
        loglik=loglik, criterion=ev.value, logp=loglik, beta_cov=beta_cov, cov=cov,
        x=theta.copy(), grad=g, hess=H, coords="theta", converged=bool(converged),
        grad_norm=grad_norm, n_iter=int(res.nit) + newton, n_eval=crit.n_eval, message=message,
        singular=singular, boundary=tuple(labels), b=b, b_sd=b_sd, nagq=0)
