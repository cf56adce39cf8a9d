"""The marginal posterior mode of a mixed model, and the mode of its unconstrained density.

The random effects are integrated out by the log-likelihood callable the caller passes (the
exact Gaussian marginal likelihood, or a Laplace / quadrature approximation for the other
families); this module adds priors on the fixed effects and on the variance components -- as
R's ``blme`` does -- and finds the mode.

Coordinates
-----------
The *natural* vector is ``[beta, sd, corr, sigma]`` (``MixedDesign.fixed_names``,
``sd_labels()``, ``corr_labels()``; ``sigma`` for the Gaussian family only). The unconstrained
vector ``phi`` has the same layout: ``beta``, ``log sd``, one ``z`` per correlation and
``log sigma``. The correlations of a block with ``k`` columns come from its ``z`` through Stan's
canonical partial correlations (``tanh(z)``, ``k = 2``: the correlation itself): the partial
correlation of the pair ``(a, b)``, ``a < b``, is ``tanh(z[a, b])`` and fills ``L[b, a]`` of the
unit-diagonal Cholesky factor ``L`` of the correlation matrix, ``R = L L'``
(``L[b, a] = tanh(z[a, b]) * sqrt(1 - sum_{c < a} L[b, c]^2)``). The ``z`` of a block are in the
order of its correlation labels (row-major ``a < b``).

Two modes
---------
``fit_marginal(..., jacobian=False)`` is the MAP in the natural parametrisation, Jacobian-free
like every MAP in bayesmle: with flat priors it is the maximum (marginal) likelihood estimate. A
standard deviation whose prior density is finite and positive at 0 (``HalfFlat``,
``HalfNormal``, ``HalfCauchy``, ``Exponential``, ``Gamma`` with ``alpha = 1``) can have its mode on
the boundary ``sd = 0``: it is optimised on its natural scale with the bound ``sd >= 0`` and, when
it ends at 0, named in ``MixedFit.boundary``. A prior that vanishes at 0 (``Gamma`` with
``alpha > 1``; blme's default is ``gamma(2, 0)``) keeps the mode inside; that coordinate is
optimised on the log scale.

``fit_marginal(..., jacobian=True)`` maximises the density of ``phi``, the log posterior plus
:func:`log_jacobian`: the centre of a Laplace approximation in ``phi`` (interior whenever the
posterior is proper); ``MixedFit.hess`` is then the Hessian of ``-log density`` in ``phi``.

Numerics
--------
L-BFGS-B brings the fit near the mode, Newton steps with a finite-difference Hessian polish it.
Gradients of the log-likelihood are 5-point central differences with steps of about
``(eps |f|)^(1/5)`` posterior standard deviations (or the ``loglik_grad`` callable), the prior
part is analytic. A fit is certified converged only when the Hessian is positive definite on
the free coordinates and every gradient component times the posterior standard deviation of its
coordinate is below ``1e-6``; a component at ``sd = 0`` must not decrease the objective when
moved inside.

Boundaries (``jacobian=False``): an sd that ends below 1% of its reference scale (the RMS
least-squares residual, 1 for other families, over the RMS of its column) is tried at 0, a
2 x 2 correlation past ``|z| = 5`` under a flat prior is tried at +-1, and an sd at 0 is tried
inside again; each trial is polished and kept if its objective is no worse (at 0, +-1) or
better (inside). Under a flat correlation prior the correlations of a block with an sd at 0 are
not identified: they are held, reported as NaN, and tried at both signs when the sd is tried
inside. For blocks of three or more columns a correlation at +-1 is not handled (the fit is then
not certified).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy import special

from bayesmle.errors import ConvergenceError, PriorError, SpecError
from bayesmle.inference.mixed.fit import MixedFit
from bayesmle.models.mixed_design import INTERCEPT, MixedDesign, theta_from_components
from bayesmle.priors.families import check_support
from bayesmle.priors.numeric import logpdf, logpdf_grad

__all__ = ["fit_marginal", "log_jacobian", "natural_draws", "natural_from_phi",
           "phi_from_natural"]

PRIOR_KEYS = ("intercept", "coef", "sd", "corr", "sigma")
#: Certified when |grad_i| * posterior sd_i is below this for every free coordinate.
GRAD_TOL = 1e-6
#: An sd below this fraction of its reference scale is tried on the boundary.
NEAR_ZERO = 1e-2
_EPS = np.finfo(float).eps

LogLik = Callable[..., float]


# ---------------------------------------------------------------------------------------------
# Layout of the natural vector
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    p: int
    n_sd: int
    n_corr: int
    has_sigma: bool
    corr_blocks: tuple[tuple[int, int, int], ...]  # (k, start of its sd, start of its corr)

    @property
    def m(self) -> int:
        return self.p + self.n_sd + self.n_corr + int(self.has_sigma)

    @property
    def beta(self) -> slice:
        return slice(0, self.p)

    @property
    def sd(self) -> slice:
        return slice(self.p, self.p + self.n_sd)

    @property
    def corr(self) -> slice:
        return slice(self.p + self.n_sd, self.p + self.n_sd + self.n_corr)

    @property
    def sigma(self) -> int | None:
        return self.m - 1 if self.has_sigma else None

    def block_sd(self, block: tuple[int, int, int]) -> slice:
        k, s0, _ = block
        return slice(self.p + s0, self.p + s0 + k)

    def block_corr(self, block: tuple[int, int, int]) -> slice:
        k, _, c0 = block
        start = self.p + self.n_sd + c0
        return slice(start, start + k * (k - 1) // 2)

    def split(self, nat: np.ndarray):
        """``(beta, sd, corr, sigma)`` views of a natural vector."""
        return (nat[self.beta], nat[self.sd], nat[self.corr],
                float(nat[self.sigma]) if self.has_sigma else None)


def _layout(design: MixedDesign) -> _Layout:
    blocks, s_at, c_at = [], 0, 0
    for block in design.blocks:
        if block.k >= 2:
            blocks.append((block.k, s_at, c_at))
            c_at += block.k * (block.k - 1) // 2
        s_at += block.k
    return _Layout(p=design.p, n_sd=s_at, n_corr=c_at,
                   has_sigma=design.family == "gaussian", corr_blocks=tuple(blocks))


# ---------------------------------------------------------------------------------------------
# Correlation transforms (canonical partial correlations), vectorised over leading axes
# ---------------------------------------------------------------------------------------------
def _pairs(k: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(k) for b in range(a + 1, k)]


def _corr_from_z(z: np.ndarray, k: int) -> np.ndarray:
    """Correlations (pairs in label order) from ``z``; complex-safe for complex-step derivatives."""
    index = {pair: i for i, pair in enumerate(_pairs(k))}
    with np.errstate(over="ignore"):
        cpc = np.tanh(z)
        sech2 = 1.0 / np.cosh(z) ** 2
    L = np.zeros(z.shape[:-1] + (k, k), dtype=np.result_type(z, float))
    L[..., 0, 0] = 1.0
    for r in range(1, k):
        rem = np.ones(z.shape[:-1], dtype=L.dtype)
        for c in range(r):
            i = index[(c, r)]
            L[..., r, c] = cpc[..., i] * np.sqrt(rem)
            rem = rem * sech2[..., i]
        L[..., r, r] = np.sqrt(rem)
    R = L @ np.swapaxes(L, -1, -2)
    return np.stack([R[..., a, b] for a, b in _pairs(k)], axis=-1)


def _corr_matrix(corr: np.ndarray, k: int) -> np.ndarray:
    R = np.broadcast_to(np.eye(k), corr.shape[:-1] + (k, k)).copy()
    for i, (a, b) in enumerate(_pairs(k)):
        R[..., a, b] = R[..., b, a] = corr[..., i]
    return R


def _z_from_corr(corr: np.ndarray, k: int, what: str) -> np.ndarray:
    R = _corr_matrix(corr, k)
    try:
        L = np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise SpecError(
            f"{what}: the correlations {np.round(corr, 6).tolist()} do not form a positive "
            f"definite {k} x {k} correlation matrix; give correlations strictly inside (-1, 1) "
            "whose matrix is positive definite."
        ) from None
    z = np.zeros(corr.shape)
    for r in range(1, k):
        rem = np.ones(corr.shape[:-1])
        for c in range(r):
            cpc = L[..., r, c] / np.sqrt(rem)
            z[..., _pairs(k).index((c, r))] = np.arctanh(cpc)
            rem = rem * (1.0 - cpc * cpc)
    return z


def _log_sech2(z: np.ndarray) -> np.ndarray:
    """``log(1 - tanh(z)^2)``, stable for large ``|z|``."""
    a = np.abs(z)
    return -2.0 * (a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0))


def _corr_jac_weights(k: int) -> np.ndarray:
    """Per pair ``(a, b)``: ``log|d corr / d z|`` is ``sum weight * log(1 - tanh(z)^2)``.

    ``(k - a) / 2``: 1 for the ``tanh`` itself plus ``(k - a - 2) / 2`` for partial
    correlations -> correlations (Lewandowski, Kurowicka & Joe 2009; Stan's ``read_corr_L``).
    """
    return np.array([0.5 * (k - a) for a, _ in _pairs(k)])


# ---------------------------------------------------------------------------------------------
# Public transforms
# ---------------------------------------------------------------------------------------------
def _as_draws(design: MixedDesign, values, name: str, ndim: int) -> tuple[_Layout, np.ndarray]:
    lay = _layout(design)
    arr = np.asarray(values, dtype=float)
    if arr.ndim != ndim or arr.shape[-1] != lay.m:
        shape = f"({lay.m},)" if ndim == 1 else f"(S, {lay.m})"
        raise SpecError(
            f"`{name}` must have shape {shape} -- [beta ({lay.p}), sd ({lay.n_sd}), corr "
            f"({lay.n_corr}), sigma ({int(lay.has_sigma)})] -- got shape {arr.shape}."
        )
    return lay, arr


def natural_draws(design: MixedDesign, phi_draws) -> np.ndarray:
    """Natural vectors ``[beta, sd, corr, sigma]`` of many ``phi`` (one per row).

    Parameters
    ----------
    design : MixedDesign
    phi_draws : array_like, shape (S, m)
        Unconstrained vectors ``[beta, log sd, z, log sigma]``.

    Returns
    -------
    ndarray, shape (S, m)

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> block = RandomBlock("g", ("Intercept", "x"), ("a", "b"), np.array([0, 1]),
    ...                     np.array([[1.0, 0.5], [1.0, -0.5]]))
    >>> design = MixedDesign(np.ones((2, 1)), ("Intercept",), np.zeros(2), (block,))
    >>> natural_draws(design, [[1.0, 0.0, np.log(2.0), np.arctanh(0.5), 0.0]]).round(6)
    array([[1. , 1. , 2. , 0.5, 1. ]])
    """
    lay, phi = _as_draws(design, phi_draws, "phi_draws", 2)
    nat = phi.copy()
    with np.errstate(over="ignore"):  # a draw far in the tail overflows to inf, as exp does
        nat[:, lay.sd] = np.exp(phi[:, lay.sd])
        for block in lay.corr_blocks:
            sl = lay.block_corr(block)
            nat[:, sl] = _corr_from_z(phi[:, sl], block[0])
        if lay.has_sigma:
            nat[:, lay.sigma] = np.exp(phi[:, lay.sigma])
    return nat


def natural_from_phi(design: MixedDesign, phi) -> np.ndarray:
    """The natural vector ``[beta, sd, corr, sigma]`` of one unconstrained vector ``phi``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 1]), np.ones((2, 1)))
    >>> design = MixedDesign(np.ones((2, 1)), ("Intercept",), np.zeros(2), (block,))
    >>> natural_from_phi(design, [0.5, np.log(3.0), 0.0]).round(12).tolist()  # beta, sd, sigma
    [0.5, 3.0, 1.0]
    """
    _, arr = _as_draws(design, phi, "phi", 1)
    return natural_draws(design, arr[None, :])[0]


def phi_from_natural(design: MixedDesign, natural) -> np.ndarray:
    """The unconstrained vector ``phi`` of a natural vector (inverse of :func:`natural_from_phi`).

    Raises SpecError for a standard deviation or ``sigma`` that is not positive, or
    correlations that do not form a positive definite matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 1]), np.ones((2, 1)))
    >>> design = MixedDesign(np.ones((2, 1)), ("Intercept",), np.zeros(2), (block,))
    >>> phi_from_natural(design, [0.5, 1.0, 1.0]).tolist()
    [0.5, 0.0, 0.0]
    """
    lay, nat = _as_draws(design, natural, "natural", 1)
    labels = _labels(design, lay)
    positive = list(range(lay.sd.start, lay.sd.stop)) + ([lay.sigma] if lay.has_sigma else [])
    for i in positive:
        if not (np.isfinite(nat[i]) and nat[i] > 0):
            raise SpecError(f"`natural`: {labels[i]} = {nat[i]!r} has no log; the unconstrained "
                            "coordinates need a finite value > 0.")
    phi = nat.copy()
    phi[lay.sd] = np.log(nat[lay.sd])
    for block in lay.corr_blocks:
        sl = lay.block_corr(block)
        phi[sl] = _z_from_corr(nat[sl], block[0], "`natural`")
    if lay.has_sigma:
        phi[lay.sigma] = np.log(nat[lay.sigma])
    return phi


def log_jacobian(design: MixedDesign, phi) -> float:
    """``log |det d natural / d phi|`` at ``phi``.

    ``sum(log sd) + log sigma`` plus, for each correlation block, the log-Jacobian of ``z`` ->
    the free correlations (``sum (k - a) / 2 * log(1 - tanh(z_ab)^2)``).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b"), np.array([0, 1]), np.ones((2, 1)))
    >>> design = MixedDesign(np.ones((2, 1)), ("Intercept",), np.zeros(2), (block,))
    >>> log_jacobian(design, [0.5, 1.0, 2.0])  # log sd + log sigma
    3.0
    """
    lay, phi = _as_draws(design, phi, "phi", 1)
    return _log_jacobian(lay, phi)


def _log_jacobian(lay: _Layout, phi: np.ndarray) -> float:
    out = float(np.sum(phi[lay.sd]))
    if lay.has_sigma:
        out += float(phi[lay.sigma])
    for block in lay.corr_blocks:
        out += float(np.sum(_corr_jac_weights(block[0]) * _log_sech2(phi[lay.block_corr(block)])))
    return out


def _log_jacobian_grad(lay: _Layout, phi: np.ndarray) -> np.ndarray:
    g = np.zeros(lay.m)
    g[lay.sd] = 1.0
    if lay.has_sigma:
        g[lay.sigma] = 1.0
    for block in lay.corr_blocks:
        sl = lay.block_corr(block)
        g[sl] = -2.0 * _corr_jac_weights(block[0]) * np.tanh(phi[sl])
    return g


def _labels(design: MixedDesign, lay: _Layout) -> list[str]:
    return (list(design.fixed_names) + design.sd_labels() + design.corr_labels()
            + (["sigma"] if lay.has_sigma else []))


# ---------------------------------------------------------------------------------------------
# Priors
# ---------------------------------------------------------------------------------------------
def _is_flat(prior) -> bool:
    return prior is None or bool(getattr(prior, "is_flat", False))


@dataclass(frozen=True)
class _Priors:
    lay: _Layout
    intercept_at: int | None
    coef_at: np.ndarray
    intercept: object | None
    coef: object | None
    sd: object | None
    corr: object | None
    sigma: object | None

    @property
    def corr_flat(self) -> bool:
        return self.corr is None or float(np.asarray(self.corr.eta)) == 1.0

    def logp(self, nat: np.ndarray) -> float:
        lay = self.lay
        out = 0.0
        if self.intercept is not None and self.intercept_at is not None:
            out += logpdf(self.intercept, nat[self.intercept_at])
        if self.coef is not None and self.coef_at.size:
            out += logpdf(self.coef, nat[self.coef_at])
        if self.sd is not None:
            out += logpdf(self.sd, nat[lay.sd])
        if self.corr is not None:
            for block in lay.corr_blocks:
                out += logpdf(self.corr, _corr_matrix(nat[lay.block_corr(block)], block[0]))
        if self.sigma is not None and lay.has_sigma:
            out += logpdf(self.sigma, nat[lay.sigma])
        return float(out)

    def grad(self, nat: np.ndarray) -> np.ndarray:
        lay = self.lay
        g = np.zeros(lay.m)
        if self.intercept is not None and self.intercept_at is not None:
            g[self.intercept_at] = logpdf_grad(self.intercept, nat[self.intercept_at])
        if self.coef is not None and self.coef_at.size:
            g[self.coef_at] = logpdf_grad(self.coef, nat[self.coef_at])
        if self.sd is not None:
            g[lay.sd] = logpdf_grad(self.sd, nat[lay.sd])
        if self.corr is not None and not self.corr_flat:
            for block in lay.corr_blocks:
                k = block[0]
                G = logpdf_grad(self.corr, _corr_matrix(nat[lay.block_corr(block)], k))
                g[lay.block_corr(block)] = [G[a, b] for a, b in _pairs(k)]
        if self.sigma is not None and lay.has_sigma:
            g[lay.sigma] = logpdf_grad(self.sigma, nat[lay.sigma])
        return g


def _check_smooth(key: str, prior) -> None:
    if getattr(prior, "has_l1", False):
        raise PriorError(
            f"`{key}` has the prior {prior!r}, whose log-density has a kink (L1). The marginal "
            "MAP of a mixed model supports smooth priors only (Flat, Normal on fixed effects); "
            "use NUTS for the Bayesian lasso."
        )


def _resolve_priors(design: MixedDesign, lay: _Layout, priors: Mapping[str, object] | None,
                    jacobian: bool) -> _Priors:
    priors = dict(priors or {})
    unknown = sorted(set(priors) - set(PRIOR_KEYS))
    if unknown:
        raise PriorError(f"Unknown prior key(s) {unknown} for a mixed model; valid keys are "
                         f"{list(PRIOR_KEYS)}.")
    names = list(design.fixed_names)
    intercept_at = names.index(INTERCEPT) if INTERCEPT in names else None
    coef_at = np.array([i for i in range(lay.p) if i != intercept_at], dtype=int)

    def scalar_family(key: str, support: str, shape: tuple[int, ...]):
        prior = priors.get(key)
        if prior is None:
            return None
        prior = check_support(key, prior, support)
        _check_smooth(key, prior)
        prior.check_shape(key, shape)
        return None if prior.is_flat else prior

    intercept = scalar_family("intercept", "real", ()) if intercept_at is not None else None
    coef = scalar_family("coef", "real", (coef_at.size,))
    sd = scalar_family("sd", "positive", (lay.n_sd,))
    sigma = scalar_family("sigma", "positive", ()) if lay.has_sigma else None
    corr = priors.get("corr") if lay.corr_blocks else None
    if corr is not None:
        if type(corr).__name__ != "LKJ" or not hasattr(corr, "eta"):
            raise PriorError(f"`corr` must be an LKJ(eta) prior on correlation matrices (or "
                             f"None for a flat one), got {corr!r}.")
        eta = float(np.asarray(corr.eta))
        if not eta > 0:
            raise PriorError(f"`corr`: LKJ eta must be > 0, got {eta!r}.")
        if eta < 1 and not jacobian:
            raise PriorError(
                f"`corr` is LKJ(eta={eta:g}): with eta < 1 its density is infinite where a "
                "correlation reaches +-1, so the marginal posterior has no mode there. Use "
                "eta >= 1 (eta = 2 is a common weakly informative choice), or jacobian=True."
            )
    if sd is not None and not jacobian and type(sd).__name__ == "Gamma":
        alpha = np.broadcast_to(sd.alpha, (lay.n_sd,))
        if np.any(alpha < 1):
            raise PriorError(
                f"`sd` is {sd!r}: a Gamma density with alpha < 1 is infinite at sd = 0, so the "
                "marginal posterior has no mode. Use alpha >= 1 (blme's default is alpha = 2, "
                "which keeps the mode away from 0), or jacobian=True."
            )
    return _Priors(lay, intercept_at, coef_at, intercept, coef, sd, corr, sigma)


def _vanishes_at_zero(pri: _Priors) -> np.ndarray:
    """Per sd: True where the prior density is 0 at sd = 0 (Gamma with alpha > 1)."""
    if pri.sd is not None and type(pri.sd).__name__ == "Gamma":
        return np.broadcast_to(pri.sd.alpha, (pri.lay.n_sd,)) > 1
    return np.zeros(pri.lay.n_sd, dtype=bool)


# ---------------------------------------------------------------------------------------------
# The objective in working coordinates w
# ---------------------------------------------------------------------------------------------
class _Objective:
    """``F(w) = -(loglik + log prior [+ log Jacobian])`` in the working coordinates ``w``.

    ``w`` has the layout of ``phi`` except that a standard deviation in ``bounded`` is on its
    natural scale (bounded below by 0) instead of the log scale.
    """

    def __init__(self, design: MixedDesign, lay: _Layout, pri: _Priors, loglik: LogLik,
                 loglik_grad: Callable | None, bounded: np.ndarray, jacobian: bool):
        self.design, self.lay, self.pri = design, lay, pri
        self._loglik, self._loglik_grad = loglik, loglik_grad
        self.jacobian = jacobian
        self.bounded = np.zeros(lay.m, dtype=bool)
        self.bounded[lay.sd] = bounded
        self.log_coord = np.zeros(lay.m, dtype=bool)
        self.log_coord[lay.sd] = ~bounded
        if lay.has_sigma:
            self.log_coord[lay.sigma] = True
        self.n_eval = 0

    # -- transforms ------------------------------------------------------------------------
    def natural(self, w: np.ndarray) -> np.ndarray:
        nat = np.array(w, dtype=float, copy=True)
        with np.errstate(over="ignore"):
            nat[self.log_coord] = np.exp(w[self.log_coord])
        for block in self.lay.corr_blocks:
            sl = self.lay.block_corr(block)
            nat[sl] = _corr_from_z(w[sl], block[0])
        return nat

    def w_from_natural(self, nat: np.ndarray) -> np.ndarray:
        w = nat.copy()
        w[self.log_coord] = np.log(nat[self.log_coord])
        for block in self.lay.corr_blocks:
            sl = self.lay.block_corr(block)
            w[sl] = _z_from_corr(nat[sl], block[0], "`start`")
        return w

    def jac(self, w: np.ndarray) -> np.ndarray:
        """``d natural / d w`` (block diagonal; complex step for the correlation blocks)."""
        J = np.diag(np.where(self.log_coord, np.exp(np.where(self.log_coord, w, 0.0)), 1.0))
        for block in self.lay.corr_blocks:
            sl = self.lay.block_corr(block)
            z = w[sl]
            npair = z.size
            blockJ = np.zeros((npair, npair))
            if np.all(np.isfinite(z)):
                h = 1e-30
                for j in range(npair):
                    zc = z.astype(complex)
                    zc[j] += 1j * h
                    blockJ[:, j] = _corr_from_z(zc, block[0]).imag / h
            J[sl, sl] = blockJ
        return J

    # -- values ----------------------------------------------------------------------------
    def loglik(self, nat: np.ndarray) -> float:
        beta, sd, corr, sigma = self.lay.split(nat)
        self.n_eval += 1
        try:
            with np.errstate(all="ignore"):
                if self.lay.has_sigma:
                    value = self._loglik(self.design, beta, sd, corr, sigma)
                else:
                    value = self._loglik(self.design, beta, sd, corr)
        except (np.linalg.LinAlgError, FloatingPointError, OverflowError):
            return -np.inf
        value = float(value)
        return value if np.isfinite(value) else -np.inf

    def loglik_and_grad(self, nat: np.ndarray) -> tuple[float, np.ndarray]:
        beta, sd, corr, sigma = self.lay.split(nat)
        self.n_eval += 1
        with np.errstate(all="ignore"):
            if self.lay.has_sigma:
                value, grad = self._loglik_grad(self.design, beta, sd, corr, sigma)
            else:
                value, grad = self._loglik_grad(self.design, beta, sd, corr)
        return float(value), np.asarray(grad, dtype=float)

    def parts(self, w: np.ndarray) -> tuple[float, float, float]:
        """``(loglik, log prior, log Jacobian)`` at ``w``."""
        nat = self.natural(w)
        lj = _log_jacobian(self.lay, w) if self.jacobian else 0.0
        with np.errstate(all="ignore"):
            lp = self.pri.logp(nat)
        if not np.isfinite(lp):
            return -np.inf, lp, lj
        return self.loglik(nat), lp, lj

    def value(self, w: np.ndarray) -> float:
        ll, lp, lj = self.parts(w)
        total = ll + lp + lj
        return -total if np.isfinite(total) else np.inf

    def _smooth_grad(self, w: np.ndarray) -> np.ndarray:
        """Gradient of ``log prior + log Jacobian`` in ``w`` (analytic)."""
        nat = self.natural(w)
        with np.errstate(all="ignore"):
            g = self.jac(w).T @ np.nan_to_num(self.pri.grad(nat))
        if self.jacobian:
            g = g + _log_jacobian_grad(self.lay, w)
        return g

    # -- derivatives -------------------------------------------------------------------------
    def _near_bound(self, w: np.ndarray, h: np.ndarray, reach: float) -> np.ndarray:
        """Bounded coordinates too close to 0 for a central stencil of ``reach`` steps."""
        return self.bounded & (w < (reach + 0.5) * h)

    def grad(self, w: np.ndarray, h: np.ndarray, idx: np.ndarray, order: int = 4
             ) -> np.ndarray:
        """Gradient of ``F`` at ``w`` on the coordinates ``idx`` (others 0).

        Central differences of the log-likelihood (5-point for ``order=4``), one-sided
        (second order) for a bounded coordinate near 0; analytic prior and Jacobian parts.
        """
        g = np.zeros(self.lay.m)
        if self._loglik_grad is not None:
            _, gn = self.loglik_and_grad(self.natural(w))
            g[idx] = (self.jac(w).T @ gn)[idx]
        else:
            near = self._near_bound(w, h, 2.0 if order == 4 else 1.0)

            def f(x):
                return self.loglik(self.natural(x))

            f0 = None
            for i in idx:
                e = np.zeros(self.lay.m)
                e[i] = h[i]
                if near[i]:
                    f0 = f(w) if f0 is None else f0
                    g[i] = (-3 * f0 + 4 * f(w + e) - f(w + 2 * e)) / (2 * h[i])
                elif order == 4:
                    g[i] = (f(w - 2 * e) - 8 * f(w - e) + 8 * f(w + e) - f(w + 2 * e)) / (12 * h[i])
                else:
                    g[i] = (f(w + e) - f(w - e)) / (2 * h[i])
        g[idx] += self._smooth_grad(w)[idx]
        return -g

    def hess(self, w: np.ndarray, h: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Hessian of ``F`` on ``idx`` (a ``len(idx)`` square matrix).

        Central differences of function values for the log-likelihood (of its gradient when
        ``loglik_grad`` is given), of the analytic gradient for the prior part. A bounded
        coordinate closer to 0 than the stencil reaches is differenced about ``1.5 h`` instead.
        """
        n = idx.size
        w = w.copy()
        near = self._near_bound(w, h, 1.0)
        w[near] = 1.5 * h[near]
        H = np.zeros((n, n))
        if self._loglik_grad is not None:
            for a, i in enumerate(idx):
                e = np.zeros(self.lay.m)
                e[i] = h[i]
                gp = self.jac(w + e).T @ self.loglik_and_grad(self.natural(w + e))[1]
                gm = self.jac(w - e).T @ self.loglik_and_grad(self.natural(w - e))[1]
                H[:, a] = (gp - gm)[idx] / (2 * h[i])
            H = -0.5 * (H + H.T)
        else:
            def f(x):
                return self.loglik(self.natural(x))

            f0 = f(w)
            unit = [np.eye(self.lay.m)[i] * h[i] for i in idx]
            for a, i in enumerate(idx):
                H[a, a] = (f(w + unit[a]) - 2 * f0 + f(w - unit[a])) / h[i] ** 2
                for b in range(a):
                    j = idx[b]
                    H[a, b] = H[b, a] = (
                        f(w + unit[a] + unit[b]) - f(w + unit[a] - unit[b])
                        - f(w - unit[a] + unit[b]) + f(w - unit[a] - unit[b])
                    ) / (4 * h[i] * h[j])
            H = -H
        # prior (and Jacobian) part: differences of its analytic gradient
        hp = 1e-5 * np.maximum(np.abs(np.where(np.isfinite(w), w, 0.0)), 1.0)
        fwd = self._near_bound(w, hp, 1.0)
        P = np.zeros((n, n))
        for a, i in enumerate(idx):
            e = np.zeros(self.lay.m)
            e[i] = hp[i]
            if fwd[i]:
                P[:, a] = (self._smooth_grad(w + e) - self._smooth_grad(w))[idx] / hp[i]
            else:
                P[:, a] = (self._smooth_grad(w + e) - self._smooth_grad(w - e))[idx] / (2 * hp[i])
        return H - 0.5 * (P + P.T)


# ---------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------
@dataclass
class _State:
    """An iterate with its free set, derivatives and diagnostics."""

    w: np.ndarray
    active: np.ndarray  # bounded sd at 0
    corr_inf: np.ndarray  # z fixed at +-inf (a 2 x 2 correlation at +-1)
    F: float = np.inf
    g: np.ndarray = field(default_factory=lambda: np.zeros(0))
    H: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    free: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    n_iter: int = 0
    message: str = ""
    certified: bool = False
    H_at: np.ndarray | None = None  # where H was computed
    g_at: np.ndarray | None = None  # where g was computed


def _noise(F: float) -> float:
    return 1e-12 * (1.0 + abs(F))


class _Fitter:
    def __init__(self, obj: _Objective, typ: np.ndarray, sd_ref: np.ndarray, max_iter: int):
        self.obj, self.lay = obj, obj.lay
        self.typ = typ  # typical magnitude of each w coordinate
        self.scale = typ.copy()  # running estimate of each coordinate's posterior sd
        self.sd_ref = sd_ref  # reference scale of each sd (natural units), by w index
        self.max_iter = max_iter
        self.n_iter = 0

    # -- free coordinates --------------------------------------------------------------------
    def undefined(self, active: np.ndarray) -> np.ndarray:
        """The ``z`` of a block with an sd at 0 under a flat correlation prior (not identified)."""
        out = np.zeros(self.lay.m, dtype=bool)
        if not self.obj.pri.corr_flat:
            return out
        for block in self.lay.corr_blocks:
            if np.any(active[self.lay.block_sd(block)]):
                out[self.lay.block_corr(block)] = True
        return out

    def free(self, active: np.ndarray, corr_inf: np.ndarray) -> np.ndarray:
        return ~(active | corr_inf | self.undefined(active))

    # -- stage 1: L-BFGS-B -------------------------------------------------------------------
    def coarse(self, w0: np.ndarray) -> np.ndarray:
        obj, typ = self.obj, self.typ
        idx = np.arange(self.lay.m)
        best = {"w": w0.copy(), "F": obj.value(w0)}

        def fun(v):
            w = v * typ
            F = obj.value(w)
            if not np.isfinite(F):
                return 1e300, np.zeros_like(v)
            if F < best["F"]:
                best.update(w=w.copy(), F=F)
            h = 1e-6 * np.maximum(np.abs(w), typ)
            return F, obj.grad(w, h, idx, order=2) * typ

        bounds = [(0.0, None) if b else (None, None) for b in obj.bounded]
        F0 = best["F"]
        res = scipy.optimize.minimize(
            fun, w0 / typ, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": self.max_iter, "maxfun": 4 * self.max_iter, "ftol": 1e-14,
                     "gtol": 1e-9 * (1.0 + abs(F0)), "maxcor": 20},
        )
        self.n_iter += int(res.nit)
        return best["w"]

    # -- stage 2: Newton ---------------------------------------------------------------------
    def _hess(self, st: _State) -> None:
        """Hessian of ``F`` on the free coordinates at ``st.w`` (``st.F`` must be current).

        Steps are ``(48 eps |F|)^(1/4)`` posterior standard deviations, estimated from the
        curvature itself (a second pass the first time, or when they change a lot).
        """
        obj = self.obj
        idx = np.flatnonzero(st.free)
        eta_h = (48 * _EPS * max(1.0, abs(st.F))) ** 0.25
        for _ in range(2):
            st.H = obj.hess(st.w, eta_h * self.scale, idx)
            d = np.diag(st.H)
            ok = np.isfinite(d) & (d > 0)
            new = self.scale.copy()
            new[idx[ok]] = 1.0 / np.sqrt(d[ok])
            new = np.where(obj.log_coord | self._z_mask(), np.minimum(new, 1.0), new)
            settled = np.allclose(new[idx], self.scale[idx], rtol=0.5)
            self.scale = new
            if settled:
                break
        st.H_at = st.w.copy()

    def _grad(self, w: np.ndarray, F: float, idx: np.ndarray) -> np.ndarray:
        eta_g = (11 * _EPS * max(1.0, abs(F))) ** 0.2
        return self.obj.grad(w, eta_g * self.scale, idx, order=4)

    def _z_mask(self) -> np.ndarray:
        out = np.zeros(self.lay.m, dtype=bool)
        out[self.lay.corr] = True
        return out

    @staticmethod
    def _direction(H: np.ndarray, g: np.ndarray) -> np.ndarray:
        sym = 0.5 * (H + H.T)
        try:
            return -scipy.linalg.cho_solve(scipy.linalg.cho_factor(sym), g)
        except (np.linalg.LinAlgError, ValueError):
            pass
        evals = np.linalg.eigvalsh(sym) if sym.size else np.zeros(1)
        tau = max(0.0, -evals.min()) + 1e-6 * max(np.max(np.abs(evals)), 1.0)
        for _ in range(60):
            try:
                return -scipy.linalg.cho_solve(
                    scipy.linalg.cho_factor(sym + tau * np.eye(len(sym))), g)
            except np.linalg.LinAlgError:
                tau *= 4.0
        return -g

    def newton(self, st: _State, max_newton: int = 40) -> _State:
        """Newton steps on the free coordinates, the Hessian reused while it keeps working.

        The Hessian is recomputed when the free set changes or when the Newton decrement did
        not fall ten-fold since the previous iteration (a stale Hessian), and at the end.
        """
        obj = self.obj
        st.message = "maximum number of Newton iterations reached"
        st.H_at = st.g_at = None
        prev_dec = np.inf
        for _ in range(max_newton):
            free = self.free(st.active, st.corr_inf)
            if st.H_at is not None and not np.array_equal(free, st.free):
                st.H_at = None
            st.free = free
            idx = np.flatnonzero(free)
            if idx.size == 0:
                st.message = "no free coordinates"
                break
            st.F = obj.value(st.w)
            if st.H_at is None:
                self._hess(st)
            st.g, st.g_at = self._grad(st.w, st.F, idx), st.w.copy()
            d = np.zeros(self.lay.m)
            d[idx] = self._direction(st.H, st.g[idx])
            dec = -float(st.g[idx] @ d[idx])
            stale = not np.array_equal(st.H_at, st.w)
            if stale and not (np.isfinite(dec) and 0 < dec <= 0.1 * prev_dec):
                # the reused Hessian no longer gives Newton's convergence: refresh it
                self._hess(st)
                d[idx] = self._direction(st.H, st.g[idx])
                dec = -float(st.g[idx] @ d[idx])
            if not np.isfinite(dec) or dec <= 0:
                st.message = "converged: no further decrease possible"
                break
            prev_dec = dec
            self.n_iter += 1
            st.n_iter += 1
            # the bound sd >= 0: the largest step that keeps bounded coordinates feasible
            hit = obj.bounded & st.free & (d < 0)
            t_max = float(np.min(-st.w[hit] / d[hit])) if np.any(hit) else np.inf
            t = min(1.0, t_max)
            if dec <= _noise(st.F):
                # below the resolution of F: keep a full step only if it shrinks the gradient
                trial = self._step(st, d, t, t_max)
                if np.array_equal(self.free(trial.active, trial.corr_inf), st.free):
                    g_t = self._grad(trial.w, st.F, idx)
                    d_t = self._direction(st.H, g_t[idx])
                    if np.all(np.isfinite(g_t)) and -float(g_t[idx] @ d_t) <= 0.1 * dec:
                        st.w, st.active = trial.w, trial.active
                        continue
                st.message = "converged: at the limit of floating-point resolution"
                break
            accepted = False
            while t >= 1e-10:
                trial = self._step(st, d, t, t_max)
                Fn = obj.value(trial.w)
                if np.isfinite(Fn) and Fn <= st.F - 1e-4 * t * dec:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                st.message = "line search failed"
                break
            st.w, st.active = trial.w, trial.active
        # the reported derivatives are those at the final point
        st.free = self.free(st.active, st.corr_inf)
        idx = np.flatnonzero(st.free)
        st.F = obj.value(st.w)
        if not np.array_equal(st.g_at, st.w):
            st.g = self._grad(st.w, st.F, idx) if idx.size else np.zeros(self.lay.m)
            st.g_at = st.w.copy()
        if idx.size and not np.array_equal(st.H_at, st.w):
            self._hess(st)
        elif not idx.size:
            st.H = np.zeros((0, 0))
        st.certified = self._certified(st)
        return st

    def _step(self, st: _State, d: np.ndarray, t: float, t_max: float) -> _State:
        w = st.w + t * d
        active = st.active.copy()
        if t >= t_max:  # the bound is reached: hold that coordinate at 0
            hit = self.obj.bounded & st.free & (d < 0) & (w <= 1e-15 * self.sd_ref)
            w[hit] = 0.0
            active |= hit
        w[self.obj.bounded] = np.maximum(w[self.obj.bounded], 0.0)
        return _State(w=w, active=active, corr_inf=st.corr_inf.copy(), F=np.inf)

    def _certified(self, st: _State) -> bool:
        idx = np.flatnonzero(st.free)
        if idx.size == 0:
            return True
        try:
            c = scipy.linalg.cho_factor(0.5 * (st.H + st.H.T))
        except (np.linalg.LinAlgError, ValueError):
            st.message += "; Hessian not positive definite on the free coordinates"
            return False
        post_sd = np.sqrt(np.diag(scipy.linalg.cho_solve(c, np.eye(idx.size))))
        worst = float(np.max(np.abs(st.g[idx]) * post_sd))
        if not worst <= GRAD_TOL:
            st.message += f"; gradient {worst:.2g} posterior sd units (tolerance {GRAD_TOL:g})"
            return False
        return True

    # -- boundaries (jacobian=False) ---------------------------------------------------------
    def _held_starts(self, st: _State, i: int) -> list[np.ndarray]:
        """Values of the correlations a released sd ``i`` brings back into play.

        Under a flat correlation prior, the correlations of a block with an sd at 0 are not
        identified and are held; the first-order change of the objective when the sd moves
        inside is linear in them. For a 2 x 2 block both signs are tried (``z = +-1.5``, a
        correlation of +-0.9); for larger blocks the held values are kept.
        """
        active = st.active.copy()
        active[i] = False
        freed = self.undefined(st.active) & ~self.undefined(active)
        if not np.any(freed):
            return [st.w]
        j = np.flatnonzero(freed)
        if j.size == 1:  # a 2 x 2 block
            out = []
            for z in (1.5, -1.5):
                w = st.w.copy()
                w[j] = z
                out.append(w)
            return out
        return [st.w]

    def forward_slope(self, st: _State, i: int, w: np.ndarray | None = None) -> float:
        """``(F(w + h e_i) - F(w)) / h`` for an sd at 0, ``h = 1e-3`` of its reference scale."""
        h = 1e-3 * self.sd_ref[i]
        w = (st.w if w is None else w).copy()
        F0 = self.obj.value(w)
        w[i] = h
        return (self.obj.value(w) - F0) / h

    def _snap_sds(self, st: _State) -> tuple[_State, bool]:
        """An sd near 0: move it to the boundary if that is at least as good."""
        changed = False
        near = np.flatnonzero(self.obj.bounded & st.free & (st.w < NEAR_ZERO * self.sd_ref))
        for i in near[np.argsort(st.w[near] / self.sd_ref[near])]:
            if not st.free[i]:
                continue
            w = st.w.copy()
            w[i] = 0.0
            active = st.active.copy()
            active[i] = True
            trial = self.newton(_State(w=w, active=active, corr_inf=st.corr_inf.copy()))
            if trial.F <= st.F + _noise(st.F):
                st, changed = trial, True
        return st, changed

    def _snap_corr(self, st: _State) -> tuple[_State, bool]:
        """A 2 x 2 correlation running to +-1 under a flat prior: put it on the boundary."""
        changed = False
        if not self.obj.pri.corr_flat:
            return st, changed
        for block in self.lay.corr_blocks:
            j = self.lay.block_corr(block).start
            if block[0] != 2 or not st.free[j] or abs(st.w[j]) <= 5.0:
                continue
            w = st.w.copy()
            w[j] = np.sign(w[j]) * np.inf
            corr_inf = st.corr_inf.copy()
            corr_inf[j] = True
            trial = self.newton(_State(w=w, active=st.active.copy(), corr_inf=corr_inf))
            if trial.F <= st.F + _noise(st.F):
                st, changed = trial, True
        return st, changed

    def _release(self, st: _State) -> tuple[_State, bool]:
        """An sd at 0 that would rather be inside: start it inside and compare."""
        changed = False
        for i in np.flatnonzero(st.active):
            if not st.active[i]:
                continue
            for w in self._held_starts(st, i):
                w = w.copy()
                w[i] = NEAR_ZERO * self.sd_ref[i]
                active = st.active.copy()
                active[i] = False
                trial = self.newton(_State(w=w, active=active, corr_inf=st.corr_inf.copy()))
                if trial.F < st.F - _noise(st.F):
                    st, changed = trial, True
                    break
        return st, changed

    def settle(self, st: _State) -> _State:
        """Decide which standard deviations (and 2 x 2 correlations) sit on the boundary."""
        for _ in range(4):
            st, a = self._snap_sds(st)
            st, b = self._snap_corr(st)
            st, c = self._release(st)
            if not (a or b or c):
                break
        return st

    def boundary_ok(self, st: _State) -> tuple[bool, str]:
        """KKT at the boundary and identification of held coordinates."""
        notes = []
        for i in np.flatnonzero(st.active):
            slope = min(self.forward_slope(st, i, w) for w in self._held_starts(st, i))
            if slope * 1e-3 * self.sd_ref[i] < -_noise(st.F):
                notes.append("the objective decreases when a standard deviation at 0 moves "
                              "inside")
        held = self.undefined(st.active) & ~st.corr_inf
        if np.any(held):
            idx = np.flatnonzero(held)
            g = self.obj.grad(st.w, 1e-4 * np.ones(self.lay.m), idx, order=4)
            if np.max(np.abs(g[idx])) > GRAD_TOL:
                notes.append("a correlation block with a standard deviation at 0 depends on "
                             "its held correlations (k >= 3): give an LKJ prior with eta > 1 or "
                             "use jacobian=True")
        return not notes, "; ".join(notes)


# ---------------------------------------------------------------------------------------------
# Start values and scales
# ---------------------------------------------------------------------------------------------
def _rms(x: np.ndarray) -> float:
    value = float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2)))
    return value if value > 0 and np.isfinite(value) else 1.0


def _link(design: MixedDesign, mean: float) -> float:
    match design.link:
        case "logit":
            return float(special.logit(mean))
        case "probit":
            return float(special.ndtri(mean))
        case "cloglog":
            return float(np.log(-np.log1p(-mean)))
        case "log":
            return float(np.log(mean))
    return float(mean)


def _default_start(design: MixedDesign, lay: _Layout) -> tuple[np.ndarray, float]:
    """A start ``[beta, sd, corr, sigma]`` and the reference scale of the random effects."""
    nat = np.zeros(lay.m)
    X, y = design.X, np.asarray(design.y, dtype=float)
    offset = np.zeros(design.n) if design.offset is None else np.asarray(design.offset, float)
    if design.family == "gaussian":
        beta, *_ = np.linalg.lstsq(X, y - offset, rcond=None)
        resid = y - offset - X @ beta
        ref = float(np.sqrt(np.mean(resid ** 2))) or float(np.std(y)) or 1.0
        nat[lay.beta] = beta
        nat[lay.sigma] = 0.7 * ref
    else:
        ref = 1.0
        if design.family in ("bernoulli", "binomial"):
            trials = np.ones(design.n) if design.trials is None else design.trials
            mean = float(np.clip(np.sum(y) / np.sum(trials), 0.02, 0.98))
        else:
            mean = max(float(np.mean(y)), 0.02)
        names = list(design.fixed_names)
        if INTERCEPT in names:
            nat[names.index(INTERCEPT)] = _link(design, mean) - (
                float(np.mean(offset)) if design.link == "log" else 0.0)
    sds = [0.5 * ref / _rms(b.values[:, c]) for b in design.blocks for c in range(b.k)]
    nat[lay.sd] = sds
    return nat, ref


def _check_start(design: MixedDesign, lay: _Layout, start, log_sd: np.ndarray) -> np.ndarray:
    _, nat = _as_draws(design, start, "start", 1)
    labels = _labels(design, lay)
    bad = np.flatnonzero(~np.isfinite(nat))
    if bad.size:
        raise SpecError(f"`start` is not finite at {[labels[i] for i in bad]}; give finite "
                        "values.")
    for j, i in enumerate(range(lay.sd.start, lay.sd.stop)):
        low_ok = nat[i] > 0 if log_sd[j] else nat[i] >= 0
        if not low_ok:
            raise SpecError(f"`start`: {labels[i]} = {nat[i]!r}; a standard deviation must be "
                            f"{'> 0' if log_sd[j] else '>= 0'} here.")
    if lay.has_sigma and not nat[lay.sigma] > 0:
        raise SpecError(f"`start`: sigma = {nat[lay.sigma]!r}; it must be > 0.")
    return nat


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def _theta(design: MixedDesign, sd: np.ndarray, corr_values: np.ndarray, scale: float,
           exact: bool) -> np.ndarray:
    """lme4's theta (relative to ``scale``), on the boundary too (semi-definite factor)."""
    return theta_from_components(design, sd, corr_values, scale)


def _singular(design: MixedDesign, theta: np.ndarray) -> bool:
    at, diag = 0, []
    for block in design.blocks:
        for j in range(block.k):
            for i in range(j, block.k):
                if i == j:
                    diag.append(theta[at])
                at += 1
    return bool(np.any(np.asarray(diag) < 1e-4))


# ---------------------------------------------------------------------------------------------
# The fit
# ---------------------------------------------------------------------------------------------
def fit_marginal(
    design: MixedDesign,
    priors: Mapping[str, object] | None,
    loglik: LogLik,
    *,
    jacobian: bool = False,
    start=None,
    max_iter: int = 500,
    loglik_grad: Callable | None = None,
    conditional_modes: Callable | None = None,
    nagq: int | None = None,
) -> MixedFit:
    """Marginal posterior mode (``jacobian=False``) or mode of the density of ``phi``.

    Parameters
    ----------
    design : MixedDesign
    priors : mapping or None
        ``"intercept"`` (prior of the column ``Intercept`` of ``design.X``), ``"coef"`` (the
        other columns; parameters broadcast per column), ``"sd"`` (parameters broadcast over
        ``design.sd_labels()``), ``"corr"`` (an ``LKJ(eta)``, applied to every block with two or
        more columns) and ``"sigma"`` (Gaussian). A missing key or None is flat (``Flat`` /
        ``HalfFlat`` / uniform correlations); with every prior flat the MAP is the MLE. Keys that
        do not apply to the design (``"sigma"`` for a GLMM...) are ignored.
    loglik : callable
        The marginal log-likelihood: ``loglik(design, beta, sd, corr, sigma)`` for the Gaussian
        family, ``loglik(design, beta, sd, corr)`` otherwise (the signatures of
        ``lmm.gaussian_loglik`` and ``glmm.glmm_loglik``). Must accept ``sd = 0`` when a
        standard deviation can reach the boundary, and correlations of +-1.
    jacobian : bool
        False: the MAP in natural coordinates (``method="map"``, ``coords="natural"``, ``x`` the
        natural vector, ``hess`` the Hessian of ``-log posterior`` there). True: the mode of
        the density of ``phi`` (``method="laplace_mode"``, ``coords="phi"``, ``hess`` the
        Hessian of ``-log density`` in ``phi``, for Laplace draws).
    start : array_like, optional
        A natural vector to start from (default: least squares or the link of the mean response
        for ``beta``, half the residual scale for the standard deviations, no correlation).
    max_iter : int
        Maximum number of L-BFGS-B iterations before the Newton polish.
    loglik_grad : callable, optional
        Same arguments as ``loglik``; returns ``(value, gradient)`` with the gradient with
        respect to the natural vector. Replaces finite differences of ``loglik``.
    conditional_modes : callable, optional
        ``(design, beta, theta, sigma) -> (b, b_sd)``; fills ``MixedFit.b`` and ``b_sd``
        (zero-length otherwise).
    nagq : int, optional
        Recorded on the result (default 0 for the Gaussian family, 1 otherwise).

    Returns
    -------
    MixedFit
        ``criterion`` is ``-2`` times the maximised log density (log posterior, plus the log
        Jacobian when ``jacobian=True``); ``logp`` is ``loglik`` plus the log priors
        (Jacobian-free); ``cov`` the covariance of the natural vector (inverse Hessian of
        ``-log posterior`` for the MAP; the delta method through ``phi`` for the Laplace
        mode), NaN for components on the boundary.

    Raises
    ------
    PriorError
        A prior on the wrong support, a Laplace (L1) prior, an unknown key, or a prior whose
        density is infinite at the boundary (Gamma ``alpha < 1`` on an sd, LKJ ``eta < 1``)
        when ``jacobian=False``.
    ConvergenceError
        The log posterior is not finite at the start.

    Examples
    --------
    A random intercept for two groups whose means coincide: under a half-normal prior the
    standard deviation of the intercepts sits on the boundary.

    >>> import numpy as np
    >>> from scipy import stats
    >>> from bayesmle import HalfNormal
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> y = np.array([0.0, 2.0, 2.0, 0.0])
    >>> codes = np.array([0, 0, 1, 1])
    >>> block = RandomBlock("g", ("Intercept",), ("a", "b"), codes, np.ones((4, 1)))
    >>> design = MixedDesign(np.ones((4, 1)), ("Intercept",), y, (block,))
    >>> def loglik(design, beta, sd, corr, sigma):
    ...     same = codes[:, None] == codes[None, :]
    ...     V = sigma ** 2 * np.eye(4) + sd[0] ** 2 * same
    ...     return stats.multivariate_normal.logpdf(y, np.full(4, beta[0]), V)
    >>> fit = fit_marginal(design, {"sd": HalfNormal(1.0)}, loglik)
    >>> fit.boundary, float(fit.sd[0]), round(float(fit.beta[0]), 6), round(fit.sigma, 6)
    (('sd[g]',), 0.0, 1.0, 1.0)
    """
    if not isinstance(design, MixedDesign):
        raise SpecError(f"`design` must be a MixedDesign, got {type(design).__name__}.")
    if not callable(loglik):
        raise SpecError(f"`loglik` must be callable, got {loglik!r}.")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise SpecError(f"`max_iter` must be an integer >= 1, got {max_iter!r}.")
    lay = _layout(design)
    pri = _resolve_priors(design, lay, priors, jacobian)
    bounded = np.zeros(lay.n_sd, dtype=bool) if jacobian else ~_vanishes_at_zero(pri)
    obj = _Objective(design, lay, pri, loglik, loglik_grad, bounded, jacobian)
    default, ref = _default_start(design, lay)
    nat0 = default if start is None else _check_start(design, lay, start, ~bounded)
    w0 = obj.w_from_natural(nat0)
    F0 = obj.value(w0)
    if not np.isfinite(F0):
        raise ConvergenceError(
            f"The log posterior is not finite at the start {np.round(nat0, 6).tolist()} "
            f"({_labels(design, lay)}). Give a `start` where `loglik` and the priors are finite."
        )
    # typical magnitudes of the working coordinates
    typ = np.ones(lay.m)
    sd_ref = np.ones(lay.m)
    col_rms = np.array([_rms(design.X[:, j]) for j in range(lay.p)])
    typ[lay.beta] = ref / col_rms
    sd_ref[lay.sd] = [ref / _rms(b.values[:, c]) for b in design.blocks for c in range(b.k)]
    typ[obj.bounded] = sd_ref[obj.bounded]

    fitter = _Fitter(obj, typ, sd_ref, max_iter)
    w = fitter.coarse(w0)
    active = obj.bounded & (w <= 0.0)
    st = fitter.newton(_State(w=w, active=active, corr_inf=np.zeros(lay.m, dtype=bool)))
    if not jacobian:
        st = fitter.settle(st)
    ok_boundary, note = fitter.boundary_ok(st) if not jacobian else (True, "")
    converged = bool(st.certified and ok_boundary)
    message = st.message + (f"; {note}" if note else "")
    return _assemble(design, lay, obj, fitter, st, converged, message, jacobian,
                     conditional_modes, nagq)


def _assemble(design, lay, obj, fitter, st, converged, message, jacobian, conditional_modes,
              nagq) -> MixedFit:
    w = st.w
    nat = obj.natural(w)
    ll, lp, lj = obj.parts(w)
    free = st.free
    idx = np.flatnonzero(free)
    m = lay.m
    J = obj.jac(w)
    Jf = J[np.ix_(idx, idx)]
    Hf = 0.5 * (st.H + st.H.T)
    try:
        Hinv = scipy.linalg.inv(Hf) if idx.size else np.zeros((0, 0))
    except (np.linalg.LinAlgError, ValueError):
        Hinv = np.full_like(Hf, np.nan)
    cov = np.full((m, m), np.nan)
    if jacobian:
        if idx.size == m:
            cov = J @ Hinv @ J.T
        x, grad, hess, coords = w.copy(), st.g.copy(), Hf, "phi"
        grad_norm = float(np.max(np.abs(grad))) if m else 0.0
    else:
        cov[np.ix_(idx, idx)] = Jf @ Hinv @ Jf.T
        Jinv = scipy.linalg.inv(Jf) if idx.size else Jf
        hess = np.full((m, m), np.nan)
        hess[np.ix_(idx, idx)] = Jinv.T @ Hf @ Jinv
        grad = np.full(m, np.nan)
        grad[idx] = Jinv.T @ st.g[idx]
        for i in np.flatnonzero(st.active):
            grad[i] = fitter.forward_slope(st, i)
        x, coords = nat.copy(), "natural"
        proj = np.concatenate([np.abs(grad[idx]), np.maximum(-grad[st.active], 0.0)])
        grad_norm = float(np.max(proj)) if proj.size else 0.0

    labels = _labels(design, lay)
    beta, sd, corr_values, sigma = lay.split(nat)
    sd = sd.copy()
    corr = corr_values.copy()
    undefined = fitter.undefined(st.active) & ~st.corr_inf
    corr[undefined[lay.corr]] = np.nan
    boundary = tuple(labels[i] for i in np.flatnonzero(st.active | st.corr_inf))
    scale = sigma if lay.has_sigma else 1.0
    exact = not (np.any(st.active) or np.any(st.corr_inf))
    theta = _theta(design, sd, corr_values, scale, exact)
    if conditional_modes is not None:
        b, b_sd = conditional_modes(design, beta.copy(), theta, sigma)
        b, b_sd = np.asarray(b, dtype=float), np.asarray(b_sd, dtype=float)
    else:
        b, b_sd = np.zeros(0), np.zeros(0)
    log_density = ll + lp + (lj if jacobian else 0.0)
    return MixedFit(
        method="laplace_mode" if jacobian else "map",
        beta=beta.copy(), theta=theta, sigma=sigma, sd=sd, corr=corr,
        loglik=float(ll), criterion=float(-2.0 * log_density), logp=float(ll + lp),
        beta_cov=cov[:lay.p, :lay.p].copy(), cov=cov, x=x, grad=grad, hess=hess, coords=coords,
        converged=converged, grad_norm=grad_norm, n_iter=int(fitter.n_iter),
        n_eval=int(obj.n_eval), message=message, singular=_singular(design, theta),
        boundary=boundary, b=b, b_sd=b_sd,
        nagq=int(nagq) if nagq is not None else (0 if lay.has_sigma else 1),
    )
