"""The conditional mode of the random effects (PIRLS) and the Laplace deviance with its gradient.

With ``eta = X beta + offset + Z Lambda(theta) u`` and ``u ~ N(0, I)`` (lme4's spherical random
effects, Bates et al. 2015), the conditional mode ``u-hat`` minimises
``F(u) = -log p(y | eta(u)) + |u|^2 / 2`` -- found here by Newton's method with step halving
(penalised iteratively reweighted least squares with the *observed* information ``W = -l''``
as weights; for the canonical links logit and log it is the expected one that lme4 uses, for
probit and cloglog lme4 weights by the expected information and its Laplace value differs by
that). The Laplace deviance is

    D(theta, beta) = -2 log p(y | eta(u-hat)) + |u-hat|^2 + log det(Lambda' Z' W Z Lambda + I),

``-2`` times the Laplace approximation of the marginal log-likelihood (all normalising
constants included). Its gradient in ``(theta, beta)`` is exact: the envelope theorem for the
first two terms, the implicit derivative ``du-hat/dpsi = -H^{-1} d(grad F)/dpsi`` and the third
derivatives of the log-likelihood for the log-determinant.

Storage. Each row of ``Z Lambda`` has at most ``K = sum_b k_b`` non-zeros, at columns ``idx``
(``n x K``) with values ``val``: block ``b``'s slot ``c`` holds ``(L_b' v_i)[c]``. With a single
grouping factor the Hessian ``H`` is block diagonal (one ``k x k`` block per level, independent
Newton steps per level, vectorised); with several factors it is a dense ``q x q`` matrix,
limited to :data:`MAX_DENSE_Q` random effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from bayesmle.errors import ConvergenceError, SpecError
from bayesmle.inference.mixed.glmm_family import RowLik
from bayesmle.models.mixed_design import MixedDesign, lambda_factors

__all__ = ["MAX_DENSE_Q", "Mode", "Structure", "laplace_value", "mode_at", "structure"]

#: Most random effects of a model with several grouping factors (a dense ``q x q`` Hessian:
#: 3,000 effects take 72 MB and about a second per Cholesky factorisation).
MAX_DENSE_Q = 3000
_U_TOL = 1e-10        # Newton step (in units of the spherical u) below which PIRLS stops
_PIRLS_MAX = 200
_HALVINGS = 60


@dataclass(eq=False)
class Structure:
    """The fixed layout of one design: rows' random-effect columns and the theta entries.

    Attributes
    ----------
    design : MixedDesign
    rl : RowLik
    idx : ndarray (n, K) of int
        Columns of ``u`` each row touches (one slot per block column).
    slot_values : list of ndarray (n, k_b)
        Each block's term design ``v`` (its slots are ``slot_start[b] + c``).
    slot_start : list of int
    theta_pos : list of (block, row, col)
        Position of each ``theta`` entry in its block's ``L_b``.
    single : bool
        One grouping factor: block-diagonal Hessian, levels independent.
    unit_of_row, unit_of_u : ndarray of int
        The independent units of the conditional-mode problem (levels when ``single``, else a
        single unit) of each row and each random effect.
    group_sum : scipy.sparse.csr_matrix (units x n)
        Sums rows into units.
    """

    design: MixedDesign
    rl: RowLik
    idx: np.ndarray
    slot_values: list[np.ndarray]
    slot_start: list[int]
    theta_pos: list[tuple[int, int, int]]
    single: bool
    unit_of_row: np.ndarray
    unit_of_u: np.ndarray
    group_sum: sp.csr_matrix
    X: np.ndarray = field(repr=False, default=None)

    @property
    def q(self) -> int:
        """Number of random effects."""
        return self.design.q

    @property
    def n_units(self) -> int:
        """Number of independent units (levels of the single factor, else 1)."""
        return self.group_sum.shape[0]

    def values(self, theta: np.ndarray) -> np.ndarray:
        """``val`` (n x K): the non-zeros of ``Z Lambda(theta)`` row by row."""
        val = np.empty(self.idx.shape)
        for b, L in enumerate(lambda_factors(self.design, theta)):
            k = L.shape[0]
            val[:, self.slot_start[b]:self.slot_start[b] + k] = self.slot_values[b] @ L
        return val

    def a_u(self, val: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``Z Lambda u`` (n,)."""
        return np.einsum("ik,ik->i", val, u[self.idx])

    def a_t(self, val: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``(Z Lambda)' r`` (q,)."""
        return np.bincount(self.idx.ravel(), weights=(val * r[:, None]).ravel(),
                           minlength=self.q)


def structure(design: MixedDesign, rl: RowLik) -> Structure:
    """The :class:`Structure` of ``design`` (raises SpecError beyond :data:`MAX_DENSE_Q`).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> from bayesmle.inference.mixed.glmm_family import row_lik
    >>> blk = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 0, 1]), np.ones((3, 1)))
    >>> d = MixedDesign(np.ones((3, 1)), ("Intercept",), np.array([0.0, 1.0, 1.0]), (blk,),
    ...                 family="bernoulli", link="logit")
    >>> s = structure(d, row_lik(d))
    >>> s.idx.ravel().tolist(), s.single
    ([0, 0, 1], True)
    """
    n = design.n
    idx_cols, slot_values, slot_start, theta_pos = [], [], [], []
    offset = slot = 0
    for b, block in enumerate(design.blocks):
        codes = np.asarray(block.codes, dtype=np.int64)
        values = np.asarray(block.values, dtype=float).reshape(n, block.k)
        slot_start.append(slot)
        slot_values.append(values)
        for c in range(block.k):
            idx_cols.append(offset + codes * block.k + c)
        for j in range(block.k):
            for i in range(j, block.k):
                theta_pos.append((b, i, j))
        offset += block.k * block.n_levels
        slot += block.k
    idx = np.stack(idx_cols, axis=1) if idx_cols else np.zeros((n, 0), dtype=np.int64)
    single = len(design.blocks) == 1
    if single:
        block = design.blocks[0]
        unit_of_row = np.asarray(block.codes, dtype=np.int64)
        unit_of_u = np.repeat(np.arange(block.n_levels), block.k)
        units = block.n_levels
    else:
        if design.q > MAX_DENSE_Q:
            raise SpecError(
                f"the design has q = {design.q} random effects over {len(design.blocks)} "
                f"grouping factors; the dense Laplace code handles at most {MAX_DENSE_Q} when "
                "there are several factors (a single factor has no limit). Use fewer levels "
                "or a single grouping factor.")
        unit_of_row = np.zeros(n, dtype=np.int64)
        unit_of_u = np.zeros(design.q, dtype=np.int64)
        units = 1
    group_sum = sp.csr_matrix((np.ones(n), (unit_of_row, np.arange(n))), shape=(units, n))
    return Structure(design=design, rl=rl, idx=idx, slot_values=slot_values,
                     slot_start=slot_start, theta_pos=theta_pos, single=single,
                     unit_of_row=unit_of_row, unit_of_u=unit_of_u, group_sum=group_sum,
                     X=np.asarray(design.X, dtype=float))


# ---------------------------------------------------------------------------------------------
# The Hessian H = (Z Lambda)' W (Z Lambda) + I: block diagonal or dense
# ---------------------------------------------------------------------------------------------
class _System:
    """``H`` at given weights: factorisation, solves, log-determinant and inverse entries."""

    def __init__(self, st: Structure, val: np.ndarray, w: np.ndarray):
        self.st = st
        K = val.shape[1]
        if st.single:
            k = K
            G = st.design.blocks[0].n_levels
            H = np.zeros((G, k, k))
            codes = st.unit_of_row
            for s in range(k):
                for t in range(s, k):
                    e = np.bincount(codes, weights=w * val[:, s] * val[:, t], minlength=G)
                    H[:, s, t] = e
                    H[:, t, s] = e
            H[:, np.arange(k), np.arange(k)] += 1.0
            self.H = H
            self.chol = np.linalg.cholesky(H)
        else:
            q = st.q
            rows = np.repeat(st.idx, K, axis=1).ravel()
            cols = np.tile(st.idx, (1, K)).ravel()
            data = (w[:, None, None] * val[:, :, None] * val[:, None, :]).ravel()
            H = sp.coo_matrix((data, (rows, cols)), shape=(q, q)).toarray()
            H[np.diag_indices(q)] += 1.0
            self.H = H
            self.chol = (np.linalg.cholesky(H), True)  # numpy's is the faster factorisation
        self._inv = None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``H^{-1} rhs`` for a vector of length q."""
        if self.st.single:
            G, k, _ = self.H.shape
            x = np.linalg.solve(self.H, rhs.reshape(G, k, 1))
            return x.reshape(-1)
        return scipy.linalg.cho_solve(self.chol, rhs, check_finite=False)

    def logdet(self) -> float:
        """``log det H``."""
        if self.st.single:
            return float(2.0 * np.sum(np.log(np.diagonal(self.chol, axis1=1, axis2=2))))
        return float(2.0 * np.sum(np.log(np.diag(self.chol[0]))))

    def inverse(self) -> np.ndarray:
        """``H^{-1}``: (G, k, k) blocks or (q, q)."""
        if self._inv is None:
            if self.st.single:
                self._inv = np.linalg.inv(self.H)
            else:
                self._inv = scipy.linalg.cho_solve(self.chol, np.eye(self.st.q),
                                                   check_finite=False)
        return self._inv

    def inv_entries(self, s: int, t: int) -> np.ndarray:
        """``H^{-1}[idx[i, s], idx[i, t]]`` for every row ``i``."""
        inv = self.inverse()
        if self.st.single:
            return inv[self.st.unit_of_row, s, t]
        return inv[self.st.idx[:, s], self.st.idx[:, t]]

    def projected(self, val: np.ndarray) -> np.ndarray:
        """``P[i, s] = (H^{-1} a_i)[idx[i, s]]`` (n x K), ``a_i`` row ``i`` of ``Z Lambda``."""
        K = val.shape[1]
        P = np.zeros_like(val)
        for s in range(K):
            for t in range(K):
                P[:, s] += self.inv_entries(s, t) * val[:, t]
        return P


# ---------------------------------------------------------------------------------------------
# PIRLS
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Mode:
    """The conditional mode at ``(theta, beta)`` and what the deviance and gradient need."""

    theta: np.ndarray
    beta: np.ndarray
    val: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    d: tuple[np.ndarray, ...]  # l, l', l'', l''' per row at the mode
    system: _System
    n_iter: int


def _unit_objective(st: Structure, eta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``F`` per independent unit: ``-sum l_i + |u|^2 / 2`` over its rows and effects."""
    ll = st.rl.logpmf(eta)
    F = -(st.group_sum @ ll)
    F += np.bincount(st.unit_of_u, weights=u * u, minlength=st.n_units) / 2
    return np.where(np.isfinite(F), F, np.inf)


def mode_at(st: Structure, theta: np.ndarray, beta: np.ndarray,
            u0: np.ndarray | None = None) -> Mode:
    """The conditional mode ``u-hat`` at ``(theta, beta)`` by Newton's method (PIRLS).

    ``u0`` warm-starts it (e.g. the previous mode of an optimiser's sequence).

    Raises
    ------
    ConvergenceError
        The Newton iteration did not reach a step below ``1e-10`` in ``u`` (it always should:
        ``F`` is strictly convex for these log-concave likelihoods).
    """
    theta = np.asarray(theta, dtype=float)
    beta = np.asarray(beta, dtype=float)
    val = st.values(theta)
    eta0 = st.X @ beta + st.rl.offset
    u = np.zeros(st.q) if u0 is None or u0.shape != (st.q,) else np.array(u0, dtype=float)
    if not np.all(np.isfinite(u)):
        u = np.zeros(st.q)
    eta = eta0 + st.a_u(val, u)
    F = _unit_objective(st, eta, u)
    if not np.all(np.isfinite(F)):
        u = np.zeros(st.q)
        eta = eta0.copy()
        F = _unit_objective(st, eta, u)
    done = False
    it = 0
    while it < _PIRLS_MAX:
        it += 1
        _, l1, l2 = st.rl.derivs(eta, 2)
        system = _System(st, val, -l2)
        delta = -system.solve(u - st.a_t(val, l1))
        if not np.all(np.isfinite(delta)):
            break
        small = np.max(np.abs(delta), initial=0.0) < _U_TOL
        step = np.ones(st.n_units)
        for _ in range(_HALVINGS):
            u_try = u + step[st.unit_of_u] * delta
            eta_try = eta0 + st.a_u(val, u_try)
            F_try = _unit_objective(st, eta_try, u_try)
            ok = F_try <= F + 1e-13 * np.maximum(1.0, np.abs(F))
            if ok.all() or small:
                break
            step = np.where(ok, step, step / 2)
        keep = ok[st.unit_of_u] | small
        u = np.where(keep, u_try, u)
        eta = eta0 + st.a_u(val, u)
        F = np.where(ok | small, F_try, F)
        if small:
            done = True
            break
    if not done:
        raise ConvergenceError(
            f"PIRLS did not find the conditional mode of the random effects at theta = "
            f"{theta.tolist()}, beta = {beta.tolist()} within {_PIRLS_MAX} Newton steps; the "
            "linear predictor may be overflowing (|eta| > 700). Rescale the predictors.")
    d = st.rl.derivs(eta, 3)
    return Mode(theta=theta, beta=beta, val=val, u=u, eta=eta, d=d,
                system=_System(st, val, -d[2]), n_iter=it)


# ---------------------------------------------------------------------------------------------
# Laplace deviance and its gradient
# ---------------------------------------------------------------------------------------------
def laplace_value(mode: Mode) -> float:
    """``-2 l(u-hat) + |u-hat|^2 + log det H`` at the mode."""
    return float(-2.0 * np.sum(mode.d[0]) + mode.u @ mode.u + mode.system.logdet())


def laplace_gradient(st: Structure, mode: Mode) -> np.ndarray:
    """Exact gradient of the Laplace deviance in ``(theta, beta)`` (theta first)."""
    _, l1, l2, l3 = mode.d
    w = -l2
    val, u, system = mode.val, mode.u, mode.system
    P = system.projected(val)
    h = np.einsum("ik,ik->i", val, P)                 # a_i' H^{-1} a_i
    g_u = st.a_t(val, -l3 * h)                         # d log det H / du at fixed W's eta
    v = system.solve(g_u)
    Av = st.a_u(val, v)
    grad_beta = st.X.T @ (-2.0 * l1 - l3 * h - w * Av)
    grad_theta = np.empty(len(st.theta_pos))
    for j, (b, r, c) in enumerate(st.theta_pos):
        s = st.slot_start[b] + c
        zeta = st.slot_values[b][:, r]
        e = zeta * u[st.idx[:, s]]                     # d eta / d theta_j at fixed u
        grad_theta[j] = np.sum(-2.0 * l1 * e + 2.0 * w * zeta * P[:, s] - l3 * e * h
                               + l1 * zeta * v[st.idx[:, s]] - Av * w * e)
    return np.concatenate([grad_theta, grad_beta])


def conditional_sd(st: Structure, mode: Mode) -> np.ndarray:
    """``sqrt(diag(Lambda H^{-1} Lambda'))`` in the order of ``b``."""
    inv = mode.system.inverse()
    factors = lambda_factors(st.design, mode.theta)
    if st.single:
        L = factors[0]
        cov = L @ inv @ L.T                                   # (G, k, k)
        return np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2).reshape(-1), 0.0, None))
    lam = sp.block_diag([sp.kron(sp.identity(b.n_levels), sp.csr_matrix(L))
                         for b, L in zip(st.design.blocks, factors, strict=True)]).tocsr()
    li = lam @ inv
    return np.sqrt(np.clip(np.asarray(lam.multiply(li).sum(axis=1)).ravel(), 0.0, None))


def conditional_b(st: Structure, mode: Mode) -> np.ndarray:
    """``b-hat = Lambda u-hat`` in the order of ``b``."""
    out, at = [], 0
    for block, L in zip(st.design.blocks, lambda_factors(st.design, mode.theta), strict=True):
        size = block.k * block.n_levels
        out.append((mode.u[at:at + size].reshape(block.n_levels, block.k) @ L.T).reshape(-1))
        at += size
    return np.concatenate(out) if out else np.zeros(0)
