"""``MixedFit``: the record of one fit of a mixed model's marginal likelihood or posterior."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MixedFit"]


@dataclass(frozen=True, eq=False)
class MixedFit:
    """An optimum of a mixed model's marginal likelihood, REML criterion or marginal posterior.

    The reported natural vector is ``[beta, sd, corr, sigma]`` (``sigma`` only for the Gaussian
    family), in the order of ``MixedDesign.fixed_names``, ``sd_labels()``, ``corr_labels()``.

    Attributes
    ----------
    method : str
        ``"mle"``, ``"reml"``, ``"map"`` or ``"laplace_mode"`` (mode of the unconstrained density,
        Jacobian included, for the Laplace approximation).
    beta : ndarray (p,)
        Fixed effects.
    theta : ndarray
        lme4's ``theta`` (relative to ``sigma`` for the Gaussian family).
    sigma : float or None
        Residual standard deviation (Gaussian), else None.
    sd, corr : ndarray
        Reported standard deviations and correlations of the random effects.
    loglik : float
        Marginal log-likelihood at the estimate (exact for Gaussian; Laplace / AGQ otherwise). For
        ``"reml"`` the REML log-likelihood (``-REMLcrit / 2``, statsmodels' ``llf``).
    criterion : float
        The minimised objective (``-2 loglik`` for ML/REML; ``-2 log posterior`` for MAP).
    logp : float
        ``loglik`` plus the log prior densities (Jacobian-free); equals ``loglik`` for ML/REML.
    beta_cov : ndarray (p, p)
        Covariance of the fixed effects: for REML lme4's ``vcov()`` (variance parameters held
        at their estimates); otherwise the fixed-effects block of ``cov``.
    cov : ndarray (m, m)
        Covariance of the natural vector from the observed information of the criterion (NaN rows
        and columns for components on the boundary).
    x, grad, hess : ndarray
        The optimiser's coordinates at the end (``coords`` says which), gradient and Hessian
        there: of the criterion (``-2 loglik``) in ``"theta"`` / ``"theta_beta"``
        coordinates, of the negative log density (``criterion / 2``) in ``"natural"`` /
        ``"phi"`` coordinates.
    coords : str
        ``"theta"`` (profiled Gaussian), ``"theta_beta"`` (GLMM Laplace), ``"natural"``
        (marginal MAP: beta, sd, corr, sigma) or ``"phi"`` (unconstrained natural: beta, log
        sd, correlation transform, log sigma).
    converged : bool
    grad_norm : float
        Infinity norm of the projected gradient at the end.
    n_iter, n_eval : int
    message : str
    singular : bool
        lme4's ``isSingular``: a diagonal entry of some ``L_b`` at (below 1e-4 of) zero.
    boundary : tuple of str
        Labels of the components on the boundary (``sd[...]`` at 0, ``corr[...]`` at +-1).
    b : ndarray (q,)
        Conditional modes of the random effects (BLUPs for the Gaussian family), order of
        ``MixedDesign.re_labels()``.
    b_sd : ndarray (q,)
        Their conditional standard deviations (lme4's ``condVar``).
    nagq : int
        Quadrature points (1 = Laplace; Gaussian fits are exact and record 0).
    """

    method: str
    beta: np.ndarray
    theta: np.ndarray
    sigma: float | None
    sd: np.ndarray
    corr: np.ndarray
    loglik: float
    criterion: float
    logp: float
    beta_cov: np.ndarray
    cov: np.ndarray
    x: np.ndarray
    grad: np.ndarray
    hess: np.ndarray
    coords: str
    converged: bool
    grad_norm: float
    n_iter: int
    n_eval: int
    message: str
    singular: bool
    boundary: tuple[str, ...]
    b: np.ndarray
    b_sd: np.ndarray
    nagq: int = 0

    def natural(self) -> np.ndarray:
        """The reported natural vector ``[beta, sd, corr, sigma]``."""
        parts = [self.beta, self.sd, self.corr]
        if self.sigma is not None:
            parts.append(np.array([self.sigma]))
        return np.concatenate(parts)
