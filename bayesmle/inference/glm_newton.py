"""Closed-form Newton terms of canonical-link GLMs: log-likelihood, gradient, ``X'WX``.

Two users share these per-block formulas:

* the out-of-core fits (:mod:`bayesmle.inference.dask_glm`): :func:`block_terms`, one task per
  Dask chunk;
* in-memory fits of large regressions whose spec declares its log-likelihood a canonical GLM
  (:class:`~bayesmle.models.spec.CanonicalGLM`): :class:`GLMObjective` evaluates the MLE/MAP
  objective over the model's coordinates ``x`` as ``f = -(loglik + smooth log prior)`` with
  ``loglik`` by :func:`loglik_terms` at ``(intercept, coef) = A x + c`` and the gradient and
  Hessian mapped exactly (``A' g``, ``A' H A``: the map is affine). The prior's smooth part
  comes from the engine (a function of ``x`` only, no data-sized work).

:func:`loglik_terms` is one compiled pass over the rows of the user's dense design (C- or
F-ordered or any strided view; never copied): per row ``eta = x_i coef + intercept +
offset``, the family's weight ``w`` and residual ``r``, the gradient ``[1, X]' r``, and the
Hessian as the symmetric product ``B'B`` of the weighted block ``B = sqrt(w) [1, X_b]`` of
:data:`BLOCK_ROWS` rows, which stays in cache. No BLAS thread pool is involved, and one
compiled order of operations gives the same bits from any thread.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.special

from bayesmle.errors import SpecError
from bayesmle.models.dask_data import aligned
from bayesmle.models.design import small_matmul
from bayesmle.models.spec import CanonicalGLM

__all__ = ["BLOCK_ROWS", "FAMILIES", "GLMObjective", "block_terms", "loglik_constant",
           "loglik_terms"]

#: The families with a canonical link handled here (binomial: logit link, with trials).
FAMILIES = ("bernoulli", "binomial", "poisson")
_EXTREME = 20.0  # |eta| beyond which a fitted value is within exp(-20) of its limit
_LOG_2PI = math.log(2.0 * math.pi)

#: ``x -> (f, grad, hess)`` of minus the smooth log prior (the engine's prior function).
PriorTerms = Callable[[np.ndarray], tuple]


# ---------------------------------------------------------------------------------------------
# Out of core: one Dask chunk
# ---------------------------------------------------------------------------------------------
def block_terms(xb: np.ndarray, yb: np.ndarray, ob: np.ndarray | None,
                 tb: np.ndarray | None, theta: np.ndarray, family: str, intercept: bool,
                 sigma_known: float) -> np.ndarray:
    """Log-likelihood, gradient, Hessian (flattened), extreme-row count of one row chunk.

    The out-of-core fits' per-chunk closed forms (:mod:`bayesmle.inference.dask_glm`), every
    array a reduction reads copied to a 64-byte boundary (the same bits wherever the chunk
    lives). ``theta`` = ``(intercept, coef[, log sigma])``; the Hessian is of the
    log-likelihood (negative semi-definite), over ``(intercept, coef)`` and ``log sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> out = block_terms(X, np.array([0.0, 1.0, 1.0]), None, None, np.zeros(2),
    ...                   "bernoulli", True, 0.0)
    >>> round(float(out[0]), 6), out[1:3].tolist()  # 3 log(1/2); X'(y - 1/2)
    (-2.079442, [0.5, 1.5])
    """
    k = int(intercept)
    nb, d = xb.shape
    x = aligned(xb.shape, xb)  # every array a reduction reads starts on 64 bytes
    yb = aligned(nb, yb)
    eta = aligned(nb)
    np.matmul(x, theta[k:k + d], out=eta)
    if intercept:
        eta += theta[0]
    if ob is not None:
        eta += ob
    extreme = 0.0
    resid, w, terms = aligned(nb), aligned(nb), aligned(nb)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if family == "bernoulli":
            np.subtract(yb * eta, np.logaddexp(0.0, eta), out=terms)
            np.subtract(yb, scipy.special.expit(eta), out=resid)
            np.multiply(scipy.special.expit(eta), scipy.special.expit(-eta), out=w)
            ll = float(terms.sum())
            extreme = float(np.count_nonzero(eta * (2.0 * yb - 1.0) > _EXTREME))
        elif family == "binomial":
            terms[...] = (yb * eta - tb * np.logaddexp(0.0, eta) + scipy.special.gammaln(
                tb + 1.0) - scipy.special.gammaln(yb + 1.0)
                - scipy.special.gammaln(tb - yb + 1.0))
            np.subtract(yb, tb * scipy.special.expit(eta), out=resid)
            np.multiply(tb * scipy.special.expit(eta), scipy.special.expit(-eta), out=w)
            ll = float(terms.sum())
            extreme = float(np.count_nonzero(((yb == 0) & (eta < -_EXTREME))
                                             | ((yb == tb) & (eta > _EXTREME))))
        elif family == "poisson":
            np.exp(eta, out=w)
            terms[...] = yb * eta - w - scipy.special.gammaln(yb + 1.0)
            np.subtract(yb, w, out=resid)
            ll = float(terms.sum())
            extreme = float(np.count_nonzero((yb == 0) & (eta < -_EXTREME)))
        else:  # gaussian
            np.subtract(yb, eta, out=resid)
            rr = float(resid @ resid)
            if sigma_known > 0:
                s2 = sigma_known**2
                ll = -0.5 * nb * _LOG_2PI - nb * math.log(sigma_known) - rr / (2.0 * s2)
            else:
                s = float(theta[-1])
                s2 = math.exp(2.0 * s)
                ll = -0.5 * nb * _LOG_2PI - nb * s - rr / (2.0 * s2)
            resid /= s2
            w[...] = 1.0 / s2
    q = theta.size
    p = k + d
    g = np.zeros(q)
    h = np.zeros((q, q))
    xw = aligned(xb.shape)
    np.multiply(x, w[:, None], out=xw)
    g[k:p] = x.T @ resid
    h[k:p, k:p] = -(x.T @ xw)
    if intercept:
        g[0] = resid.sum()
        h[0, 0] = -w.sum()
        h[0, 1:p] = h[1:p, 0] = -(w @ x)
    if family == "gaussian" and sigma_known <= 0:  # log sigma
        g[q - 1] = -float(nb) + rr / s2
        h[:p, q - 1] = h[q - 1, :p] = -2.0 * g[:p]
        h[q - 1, q - 1] = -2.0 * rr / s2
    return np.concatenate(([ll], g, h.ravel(), [extreme]))


# ---------------------------------------------------------------------------------------------
# In memory: row blocks of the user's design
# ---------------------------------------------------------------------------------------------
def loglik_constant(family: str, y: np.ndarray, trials: np.ndarray | None = None) -> float:
    """The part of the log-likelihood free of the parameters (log factorials), summed.

    Examples
    --------
    >>> import numpy as np
    >>> round(loglik_constant("poisson", np.array([0.0, 2.0, 3.0])), 6)  # -log 2 - log 6
    -2.484907
    """
    if family == "bernoulli":
        return 0.0
    if family == "poisson":
        return -float(np.sum(scipy.special.gammaln(y + 1.0)))
    if family == "binomial":
        if trials is None:
            raise SpecError("The binomial family needs `trials`.")
        return float(np.sum(scipy.special.gammaln(trials + 1.0) - scipy.special.gammaln(y + 1.0)
                            - scipy.special.gammaln(trials - y + 1.0)))
    raise SpecError(f"No closed-form GLM terms for family {family!r}; valid: {FAMILIES}.")


_CODES = {"bernoulli": 0, "binomial": 1, "poisson": 2}


#: Rows per block of the compiled pass: the block, transposed (``p x 256``), stays in the
#: first-level caches while its ``p (p + 1) / 2`` weighted column products are formed.
BLOCK_ROWS = 256


_KERNEL_LOCK = threading.Lock()


def _kernel():
    """The compiled pass over the rows (Numba, compiled on first use, cached on disk).

    One pass, block by block (:data:`BLOCK_ROWS` rows): the block transposed (contiguous
    columns, a row of ones for the intercept), then loops the compiler vectorises over its
    rows: ``eta = [1, X_b] beta + offset``; the family's log-likelihood terms, residuals
    ``r = y - mean`` and weights ``w``; the gradient ``[1, X_b]' r``; the upper triangle of
    ``[1, X_b]' W [1, X_b]`` (four columns per pass over the block). Logit families by
    ``e = exp(-|eta|)``: ``softplus(eta) = max(eta, 0) + log(1 + e)``, ``p = 1 / (1 + e)``
    (``eta >= 0``) or ``e / (1 + e)``, ``w = e / (1 + e)^2`` -- probabilities and weights
    accurate in both tails; ``y * eta`` is 0 for ``y = 0`` (also at ``eta = -inf``). No BLAS
    call: BLAS's thread pool, on a busy machine, costs more than these products; one
    compiled order of operations gives the same bits from every thread.
    """
    with _KERNEL_LOCK:  # one compilation (or cache load) when threads start together
        return _compile_kernel()


@functools.cache
def _compile_kernel():
    import numba

    @numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
    def terms(code, x, y, off, t, beta, k, hessian, rows):  # pragma: no cover - Numba
        n, d = x.shape
        p = k + d
        g = np.zeros(p)
        h = np.zeros((p, p))
        # the block transposed, row 0 the intercept's ones; rows padded off a power of two
        # (columns 2^k * 8 bytes apart would share cache sets)
        xt = np.ones((p, rows + 8))
        eta = np.empty(rows)
        r = np.empty(rows)
        w = np.empty(rows)
        wa = np.empty(rows)
        has_off = off.shape[0] > 0
        has_t = t.shape[0] > 0
        ll = 0.0
        for start in range(0, n, rows):
            m = min(rows, n - start)
            for i in range(m):
                xi = x[start + i]
                for j in range(d):
                    xt[k + j, i] = xi[j]
            for i in range(m):
                eta[i] = off[start + i] if has_off else 0.0
            for j in range(p):
                bj = beta[j]
                col = xt[j]
                for i in range(m):
                    eta[i] += bj * col[i]
            for i in range(m):
                e = eta[i]
                y_i = y[start + i]
                linear = y_i * e if y_i != 0.0 else 0.0
                if code == 2:  # Poisson, log link
                    mu = math.exp(e)
                    w[i] = mu
                    r[i] = y_i - mu
                    ll += linear - mu
                else:  # logit link
                    a = math.exp(-abs(e))
                    inv = 1.0 / (1.0 + a)
                    q = a * inv
                    prob = inv if e >= 0.0 else q
                    wi = q * inv
                    # log(1 + a), not log1p(a): ~2x faster, and off by at most eps / 2
                    # absolute, the size of the sum's own rounding per row
                    sp = (e if e > 0.0 else 0.0) + math.log(1.0 + a)
                    if has_t:
                        t_i = t[start + i]
                        wi *= t_i
                        prob *= t_i
                        sp *= t_i
                    w[i] = wi
                    r[i] = y_i - prob
                    ll += linear - sp
            for a in range(p):
                col = xt[a]
                acc = 0.0
                for i in range(m):
                    acc += col[i] * r[i]
                g[a] += acc
            if hessian:
                for a in range(p):
                    col = xt[a]
                    for i in range(m):
                        wa[i] = w[i] * col[i]
                    b = a
                    while b + 4 <= p:  # four columns per pass: wa loaded once for 4 sums
                        c0, c1, c2, c3 = xt[b], xt[b + 1], xt[b + 2], xt[b + 3]
                        s0 = s1 = s2 = s3 = 0.0
                        for i in range(m):
                            v = wa[i]
                            s0 += v * c0[i]
                            s1 += v * c1[i]
                            s2 += v * c2[i]
                            s3 += v * c3[i]
                        h[a, b] -= s0
                        h[a, b + 1] -= s1
                        h[a, b + 2] -= s2
                        h[a, b + 3] -= s3
                        b += 4
                    for c in range(b, p):
                        cb = xt[c]
                        acc = 0.0
                        for i in range(m):
                            acc += wa[i] * cb[i]
                        h[a, c] -= acc
        for a in range(p):
            for b in range(a):
                h[a, b] = h[b, a]
        return ll, g, h

    return terms


def loglik_terms(family: str, X: np.ndarray, y: np.ndarray, beta: np.ndarray, *,
                 intercept: bool, offset: np.ndarray | None = None,
                 trials: np.ndarray | None = None, hessian: bool = True,
                 constant: float | None = None) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Log-likelihood of a canonical-link GLM, its gradient and Hessian in ``beta``.

    One compiled pass over blocks of rows of ``X`` (see :func:`_kernel`): the gradient
    ``[1, X]' r`` and the Hessian ``-[1, X]' W [1, X]`` as the symmetric product of the
    weighted block ``sqrt(w) [1, X_b]``, which stays in cache.

    Parameters
    ----------
    family : {"bernoulli", "binomial", "poisson"}
        Logit link (binomial: with ``trials``), log link (Poisson, with ``offset``).
    X : ndarray, shape (n, d)
        Dense float64 design, in any memory layout (read row by row, never copied).
    y : ndarray, shape (n,)
        Responses (0/1, successes, counts) as float64.
    beta : ndarray, shape (intercept + d,)
        ``(intercept, coef)`` or ``coef``.
    intercept : bool
        Whether ``beta[0]`` is an intercept.
    offset, trials : ndarray, optional
        Known offset of ``eta``; the binomial trials.
    hessian : bool, default True
        Also the Hessian.
    constant : float, optional
        :func:`loglik_constant` when already known (computed otherwise).

    Returns
    -------
    loglik : float
    grad : ndarray, shape (p,)
    hess : ndarray, shape (p, p), or None
        Of the log-likelihood (negative semi-definite).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> ll, g, h = loglik_terms("bernoulli", X, np.array([0.0, 1.0, 1.0]), np.zeros(2),
    ...                         intercept=True)
    >>> round(ll, 6), g.tolist(), h.tolist()  # 3 log(1/2); X'(y - 1/2); -X'X / 4
    (-2.079442, [0.5, 1.5], [[-0.75, -0.75], [-0.75, -1.25]])
    """
    if family not in _CODES:
        raise SpecError(f"No closed-form GLM terms for family {family!r}; valid: {FAMILIES}.")
    if not (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2):
        raise SpecError("The design must be a 2-D float64 ndarray.")
    k = int(intercept)
    beta = np.asarray(beta, dtype=np.float64)
    empty = np.empty(0)
    ll, g, h = _kernel()(_CODES[family], X, np.asarray(y, dtype=np.float64),
                         empty if offset is None else np.asarray(offset, dtype=np.float64),
                         empty if trials is None else np.asarray(trials, dtype=np.float64),
                         np.ascontiguousarray(beta), k, hessian, BLOCK_ROWS)
    const = loglik_constant(family, y, trials) if constant is None else float(constant)
    return float(ll) + const, g, h if hessian else None


# ---------------------------------------------------------------------------------------------
# The MLE/MAP objective in the model's coordinates
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GLMObjective:
    """``x -> (f, grad[, hess])`` of minus the smooth log posterior of a canonical GLM.

    ``f = -(loglik(A x + c) + smooth log prior(x))``: the likelihood by :func:`loglik_terms`,
    mapped to ``x`` exactly (``A' g``, ``A' H A``), plus the engine's ``prior`` terms. Values
    are those of the engine's objective up to rounding; a point where the log-likelihood is
    not finite evaluates to ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.spec import CanonicalGLM
    >>> glm = CanonicalGLM("poisson", np.array([[0.0], [1.0]]), np.array([1.0, 2.0]),
    ...                    np.zeros(2), None, True, np.eye(2), np.zeros(2), (("x", 2),))
    >>> flat = GLMObjective(glm, lambda x: (0.0, np.zeros(2), np.zeros((2, 2))))
    >>> f, g, h = flat(np.zeros(2))
    >>> round(f, 6), g.tolist()  # 2 + log 2; -(y - 1) summed
    (2.693147, [-1.0, -1.0])
    """

    glm: CanonicalGLM
    prior: PriorTerms
    hessian: bool = True
    #: :func:`loglik_constant` of the data (computed when None).
    constant: float | None = None
    #: When given, a one-element list that each call sets to ``(x bytes, loglik)``: the last
    #: point's log-likelihood, which the final point evaluation then does not recompute.
    last: list | None = field(default=None, compare=False)

    def loglik(self, x: np.ndarray, *, hessian: bool | None = None):
        """``(loglik, grad, hess)`` in ``x`` (``hess`` None without ``hessian``)."""
        glm = self.glm
        want = self.hessian if hessian is None else hessian
        beta = glm.A @ x + glm.c
        ll, g, h = loglik_terms(glm.family, glm.X, glm.y, beta, intercept=glm.intercept,
                                offset=glm.offset, trials=glm.trials, hessian=want,
                                constant=self.constant)
        g_x = glm.A.T @ g
        h_x = small_matmul(glm.A.T, small_matmul(h, glm.A)) if h is not None else None
        return ll, g_x, h_x

    def __call__(self, x: np.ndarray) -> tuple:
        """``(f, grad, hess)`` (``(f, grad)`` without ``hessian``) at ``x``."""
        x = np.asarray(x, dtype=np.float64)
        ll, g, h = self.loglik(x)
        if self.last is not None:
            self.last[0] = (x.tobytes(), ll)  # one assignment: atomic for readers
        out = self.prior(x)
        f = float(out[0]) - ll
        grad = np.asarray(out[1]) - g
        if not np.isfinite(f):
            f = np.inf
        if not self.hessian:
            return f, grad
        hess = np.asarray(out[2]) - h
        return f, grad, 0.5 * (hess + hess.T)
