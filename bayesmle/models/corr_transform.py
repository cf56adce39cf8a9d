"""Free correlations of a ``d x d`` correlation matrix <-> the real line (CPC transform).

A correlation matrix ``R`` is reported by its ``p = d(d-1)/2`` free correlations (the upper
triangle row by row: ``r_12, r_13, ..., r_23, ...``). :class:`CorrCPC` maps them to
``R^p`` through the canonical partial correlations (LKJ 2009; the Stan reference manual,
"Correlation matrices"): with ``L`` the Cholesky factor of ``R``, the partial correlation of
row ``i`` and column ``j < i`` is ``z_ij = L_ij / sqrt(1 - sum_{l<j} L_il^2)`` and the
unconstrained value is ``atanh(z_ij)``. Every point of ``R^p`` gives a positive definite
``R``. The log-Jacobian of ``unconstrained -> correlations`` is
``sum_{i>j} (d - j) / 2 * log(1 - z_ij^2)`` (``j`` counted from 0); the uniform density on
the correlation matrices (LKJ(1)) is constant in the correlations themselves.

The Cholesky factor is written out over the (small) dimension ``d`` with elementwise ops on
the leading (component) axes: cheap to compile, and batched.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

__all__ = ["CorrCPC", "corr_cholesky"]


def _pairs(d: int) -> dict[tuple[int, int], int]:
    """Index of the free correlation of ``(a, b)``, ``a < b``, in the upper triangle order."""
    iu = np.triu_indices(d, 1)
    return {(int(a), int(b)): q for q, (a, b) in enumerate(zip(*iu, strict=True))}


def corr_cholesky(corr, d: int):
    """Cholesky factor of the correlation matrices given by their free correlations.

    Parameters
    ----------
    corr : tensor ``(..., d(d-1)/2)``
        Free correlations, upper triangle row by row.
    d : int
        The dimension.

    Returns
    -------
    dict
        ``{(i, j): L_ij}`` for ``j <= i`` (tensors of shape ``(...)``); ``L_00 = 1``.
        Outside the positive definite set a diagonal entry is ``nan``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> L = corr_cholesky(pt.as_tensor([0.5, 0.0, 0.0]), 3)
    >>> float(L[1, 1].eval()) ** 2
    0.75
    """
    idx = _pairs(d)
    L: dict[tuple[int, int], object] = {(0, 0): pt.ones_like(corr[..., 0])}
    for i in range(1, d):
        for j in range(i):
            s = corr[..., idx[j, i]]
            for m in range(j):
                s = s - L[i, m] * L[j, m]
            L[i, j] = s / L[j, j]
        L[i, i] = pt.sqrt(1.0 - sum(L[i, m] ** 2 for m in range(i)))
    return L


def _log1m_tanh2(x):
    """``log(1 - tanh(x)^2)``, stable for large ``|x|``."""
    a = pt.abs(x)
    return 2.0 * (np.log(2.0) - a - pt.softplus(-2.0 * a))


class CorrCPC(Transform):
    """Free correlations ``(..., d(d-1)/2)`` <-> ``R^{d(d-1)/2}`` (canonical partial correlations).

    Parameters
    ----------
    d : int
        The dimension of the correlation matrices (``d >= 2``).

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor.tensor as pt
    >>> t = CorrCPC(3)
    >>> x = pt.as_tensor(np.array([0.3, -0.2, 0.5]))
    >>> np.allclose(t.backward(t.forward(x)).eval(), [0.3, -0.2, 0.5])
    True
    """

    name = "corr_cpc"
    ndim_supp = 1

    def __init__(self, d: int):
        self.d = int(d)

    def forward(self, value, *inputs):
        """Correlations -> unconstrained (``atanh`` of the partial correlations)."""
        d = self.d
        idx = _pairs(d)
        L = corr_cholesky(value, d)
        out = []
        for a, b in zip(*np.triu_indices(d, 1), strict=True):  # (j, i) = (a, b), j < i
            i, j = int(b), int(a)
            rest = 1.0 - sum((L[i, m] ** 2 for m in range(j)), pt.zeros_like(L[i, j]))
            out.append((idx[j, i], pt.arctanh(L[i, j] / pt.sqrt(rest))))
        return pt.stack([v for _, v in sorted(out, key=lambda t: t[0])], axis=-1)

    def _cholesky_from(self, value):
        """``{(i, j): L_ij}`` from the unconstrained values (the partial correlations' tanh)."""
        d = self.d
        idx = _pairs(d)
        L: dict[tuple[int, int], object] = {(0, 0): pt.ones_like(value[..., 0])}
        for i in range(1, d):
            rest = pt.ones_like(value[..., 0])  # 1 - sum_{m<j} L_im^2
            for j in range(i):
                L[i, j] = pt.tanh(value[..., idx[j, i]]) * pt.sqrt(rest)
                rest = rest - L[i, j] ** 2
            L[i, i] = pt.sqrt(rest)
        return L

    def backward(self, value, *inputs):
        """Unconstrained -> correlations ``r_ab = sum_m L_am L_bm``."""
        d = self.d
        L = self._cholesky_from(value)
        out = []
        for a, b in zip(*np.triu_indices(d, 1), strict=True):
            a, b = int(a), int(b)
            out.append(sum(L[a, m] * L[b, m] for m in range(a + 1)))
        return pt.stack(out, axis=-1)

    def log_jac_det(self, value, *inputs):
        """``sum_{i>j} (d - j) / 2 * log(1 - z_ij^2)``, ``z = tanh(value)``."""
        d = self.d
        iu = np.triu_indices(d, 1)
        w = np.array([(d - int(j)) / 2.0 for j in iu[0]])  # iu[0] holds the column j < i
        return pt.sum(pt.as_tensor(w) * _log1m_tanh2(value), axis=-1)
