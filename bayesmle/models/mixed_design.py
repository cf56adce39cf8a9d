"""The design of a mixed model: fixed effects, random-effect blocks and their parametrisation.

One typed record (:class:`MixedDesign`) shared by the formula parser that builds it, the
numerical marginal-likelihood code that fits it (``inference/mixed``) and the PyMC model that
samples it. The parametrisation is lme4's (Bates et al. 2015, *J. Stat. Softw.* 67(1)):

* block ``b`` has ``k`` columns (its term's design, e.g. ``1 + x``) and one row of random
  effects per level of its grouping factor;
* the random effects of the whole model are ``b = Lambda(theta) u`` with ``u ~ N(0, s^2 I)``,
  where ``s = sigma`` for the Gaussian family (theta is *relative* to the residual scale) and
  ``s = 1`` otherwise; ``Lambda`` is block diagonal, for block ``b`` the Kronecker product of the
  identity over its levels with a lower-triangular ``k x k`` factor ``L_b``;
* ``theta`` stacks, block after block, the lower triangle of each ``L_b`` in column-major order
  (for ``k = 2``: ``L11, L21, L22``); the diagonal entries are bounded below by 0, the others are
  free;
* the random-effect vector is ordered block after block, and within a block level after level
  with the ``k`` columns of one level consecutive (as lme4's ``getME(fit, "b")``);
* the covariance of one level's random effects in block ``b`` is ``s^2 L_b L_b'``; its square
  root diagonal are the reported standard deviations ``sd[...]``, its correlations ``corr[...]``.

Reported labels follow the project's convention: ``sd[g]`` for the intercept of grouping factor
``g``, ``sd[g:x]`` for the slope of ``x``; ``corr[g]`` for a 2 x 2 block, ``corr[g:x,z]`` for a
pair of columns of a larger block (the intercept is the column ``Intercept``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bayesmle.errors import SpecError

__all__ = ["INTERCEPT", "MixedDesign", "RandomBlock", "components", "lambda_factors",
           "theta_from_components", "theta_lower_bounds", "z_matrix"]

#: The name of an intercept column in a random-effect block (``(1 + x | g)``).
INTERCEPT = "Intercept"


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effects term ``(columns | group)``.

    Attributes
    ----------
    group : str
        The grouping factor's label (``"g"``; ``"a:b"`` for the inner factor of ``(1 | a/b)``).
    columns : tuple of str
        The term's columns, ``"Intercept"`` first when present (``("Intercept", "x")``).
    levels : tuple of str
        The grouping factor's levels, in the order of ``codes``.
    codes : ndarray of int64, shape (n,)
        Level of each row, in ``range(len(levels))``.
    values : ndarray of float64, shape (n, k)
        The term's design at each row (a column of ones for the intercept).
    """

    group: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    values: np.ndarray

    @property
    def k(self) -> int:
        """Number of columns (random effects per level)."""
        return len(self.columns)

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def n_theta(self) -> int:
        """Number of entries of the lower-triangular factor ``L_b``."""
        return self.k * (self.k + 1) // 2

    def sd_labels(self) -> list[str]:
        """``sd[g]`` for the intercept, ``sd[g:x]`` for a column ``x``."""
        return [f"sd[{self.group}]" if c == INTERCEPT else f"sd[{self.group}:{c}]"
                for c in self.columns]

    def corr_labels(self) -> list[str]:
        """``corr[g]`` for a 2 x 2 block, ``corr[g:x,z]`` per pair (row-major, i < j) else."""
        if self.k == 2:
            return [f"corr[{self.group}]"]
        return [f"corr[{self.group}:{self.columns[i]},{self.columns[j]}]"
                for i in range(self.k) for j in range(i + 1, self.k)]


@dataclass(frozen=True, eq=False)
class MixedDesign:
    """Everything the marginal likelihood of a (generalised) linear mixed model needs.

    Attributes
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects design, *including* the intercept column when there is one.
    fixed_names : tuple of str
        Column names of ``X`` (``"Intercept"``, ``"x"``, ``"C(g)[T.b]"``...).
    y : ndarray, shape (n,)
        Response (successes for the binomial family).
    blocks : tuple of RandomBlock
    family : str
        ``"gaussian"``, ``"bernoulli"``, ``"binomial"`` or ``"poisson"``.
    link : str
        ``"identity"`` (gaussian), ``"logit"``/``"probit"``/``"cloglog"`` (binomial), ``"log"``.
    trials : ndarray or None
        Binomial trials per row.
    offset : ndarray or None
        Added to the linear predictor.
    """

    X: np.ndarray
    fixed_names: tuple[str, ...]
    y: np.ndarray
    blocks: tuple[RandomBlock, ...]
    family: str = "gaussian"
    link: str = "identity"
    trials: np.ndarray | None = None
    offset: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return int(self.X.shape[1])

    @property
    def q(self) -> int:
        """Number of random effects."""
        return sum(b.k * b.n_levels for b in self.blocks)

    @property
    def n_theta(self) -> int:
        """Length of ``theta``."""
        return sum(b.n_theta for b in self.blocks)

    def sd_labels(self) -> list[str]:
        """Labels of the reported standard deviations, block after block."""
        return [lab for b in self.blocks for lab in b.sd_labels()]

    def corr_labels(self) -> list[str]:
        """Labels of the reported correlations (blocks with ``k >= 2``), block after block."""
        return [lab for b in self.blocks if b.k >= 2 for lab in b.corr_labels()]

    def re_labels(self) -> list[tuple[str, str, str]]:
        """``(group, level, column)`` of each random effect, in the order of ``b``."""
        return [(b.group, lev, col) for b in self.blocks for lev in b.levels for col in b.columns]


def z_matrix(design: MixedDesign) -> sp.csc_matrix:
    """The sparse ``n x q`` random-effects design ``Z`` (columns in the order of ``b``)."""
    n = design.n
    rows, cols, vals = [], [], []
    offset = 0
    for block in design.blocks:
        for c in range(block.k):
            rows.append(np.arange(n))
            cols.append(offset + block.codes * block.k + c)
            vals.append(block.values[:, c])
        offset += block.k * block.n_levels
    return sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, design.q),
    )


def theta_lower_bounds(design: MixedDesign) -> np.ndarray:
    """0 for the diagonal entries of each ``L_b``, ``-inf`` for the others (lme4's ``lower``)."""
    out = []
    for block in design.blocks:
        for j in range(block.k):  # column-major lower triangle
            for i in range(j, block.k):
                out.append(0.0 if i == j else -np.inf)
    return np.asarray(out)


def lambda_factors(design: MixedDesign, theta: np.ndarray) -> list[np.ndarray]:
    """The lower-triangular factor ``L_b`` of each block from ``theta``."""
    theta = np.asarray(theta, dtype=float)
    factors, at = [], 0
    for block in design.blocks:
        L = np.zeros((block.k, block.k))
        for j in range(block.k):
            for i in range(j, block.k):
                L[i, j] = theta[at]
                at += 1
        factors.append(L)
    return factors


def components(design: MixedDesign, theta: np.ndarray, scale: float = 1.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Reported ``(sd, corr)`` from ``theta`` (``scale`` = sigma for the Gaussian family).

    A correlation whose standard deviations are 0 is NaN (undefined at the boundary).
    """
    sds, corrs = [], []
    for block, L in zip(design.blocks, lambda_factors(design, theta), strict=True):
        cov = scale ** 2 * (L @ L.T)
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        sds.append(sd)
        if block.k >= 2:
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = cov / np.outer(sd, sd)
            iu = np.triu_indices(block.k, 1)
            corrs.append(np.clip(corr[iu], -1.0, 1.0))
    return (np.concatenate(sds) if sds else np.zeros(0),
            np.concatenate(corrs) if corrs else np.zeros(0))


def theta_from_components(design: MixedDesign, sd: np.ndarray, corr: np.ndarray,
                          scale: float = 1.0) -> np.ndarray:
    """Inverse of :func:`components`: ``L_b`` the Cholesky factor of the block's covariance.

    Valid on the boundary too (the factor of a positive *semi*-definite matrix): a standard
    deviation of 0 or a correlation of +-1 gives a zero pivot.
    """
    sd, corr = np.asarray(sd, dtype=float), np.asarray(corr, dtype=float)
    theta, s_at, c_at = [], 0, 0
    for block in design.blocks:
        k = block.k
        s = sd[s_at:s_at + k] / scale
        s_at += k
        R = np.eye(k)
        if k >= 2:
            iu = np.triu_indices(k, 1)
            m = len(iu[0])
            R[iu] = corr[c_at:c_at + m]
            R.T[iu] = corr[c_at:c_at + m]
            c_at += m
        L = _semidefinite_cholesky(np.outer(s, s) * R, block.group)
        for j in range(k):
            for i in range(j, k):
                theta.append(L[i, j])
    return np.asarray(theta)


def _semidefinite_cholesky(S: np.ndarray, group: str) -> np.ndarray:
    """Lower-triangular ``L`` with ``L L' = S`` for a positive semi-definite ``S``.

    Zero pivots (a standard deviation of 0, a correlation of +-1) give a zero column below them
    instead of failing; correlations that are inconsistent with each other raise SpecError.
    """
    k = S.shape[0]
    L = np.zeros((k, k))
    scale = max(float(np.max(np.diag(S))), 1e-300)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-10 * scale:
            raise SpecError(f"the sd and corr of grouping factor {group!r} do not form a "
                            "positive semi-definite covariance matrix; give correlations "
                            "that are consistent with each other.")
        L[j, j] = np.sqrt(max(d, 0.0))
        if L[j, j] > 0:
            L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L
