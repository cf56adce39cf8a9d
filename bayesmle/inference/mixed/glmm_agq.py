"""Adaptive Gauss-Hermite quadrature of a GLMM with one scalar random effect (``glmer`` nAGQ > 1).

With a single grouping factor and one column (``(1 | g)`` or ``(0 + x | g)``) the marginal
likelihood factorises over the levels ``g`` into one-dimensional integrals

    I_g = int exp(phi_g(u)) du / sqrt(2 pi),   phi_g(u) = sum_{i in g} l_i(eta_i(u)) - u^2 / 2,

each approximated on Gauss-Hermite nodes ``z_k`` centred at the conditional mode ``m_g`` and
scaled by the conditional standard deviation ``s_g = H_g^{-1/2}`` (Liu & Pierce 1994; lme4):

    I_g ~ sqrt(2) s_g sum_k w_k exp(z_k^2 + phi_g(m_g + sqrt(2) s_g z_k)) / sqrt(2 pi).

One node is the Laplace approximation. The deviance is ``-2 sum_g log I_g`` and its gradient in
``(theta, beta)`` is exact, including the movement of the nodes with the mode and scale.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from bayesmle.inference.mixed.glmm_laplace import Mode, Structure

__all__ = ["agq_value_grad"]


def agq_value_grad(st: Structure, mode: Mode, nagq: int, *, grad: bool = True
                   ) -> tuple[float, np.ndarray | None]:
    """The AGQ deviance (and its gradient in ``(theta, beta)``) at a conditional mode."""
    z, w = np.polynomial.hermite.hermgauss(nagq)
    logw = np.log(w) + z ** 2
    codes = st.unit_of_row
    v = st.slot_values[0][:, 0]
    theta = float(mode.theta[0])
    a = theta * v
    m = mode.u                                              # (G,)
    _, l1, l2, l3 = mode.d
    W = -l2
    H = mode.system.H[:, 0, 0]
    s = 1.0 / np.sqrt(H)
    x = m[:, None] + np.sqrt(2.0) * s[:, None] * z[None, :]  # (G, K) nodes
    eta0 = mode.eta - a * m[codes]
    eta = eta0[:, None] + a[:, None] * x[codes]
    dk = st.rl.derivs(eta, 1 if grad else 0)
    phi = st.group_sum @ dk[0] - x ** 2 / 2                  # (G, K)
    e = logw[None, :] + phi
    lse = logsumexp(e, axis=1)
    logI = np.log(np.sqrt(2.0) * s) + lse - 0.5 * np.log(2.0 * np.pi)
    dev = float(-2.0 * np.sum(logI))
    if not grad:
        return dev, None
    pi = np.exp(e - lse[:, None])                           # (G, K) node weights
    X = st.X
    gs = st.group_sum
    # d m / d psi (G, 1 + p) from the implicit function theorem, at the mode
    dF_dbeta = gs @ ((W * a)[:, None] * X)                   # d(grad_u F)/d beta
    dF_dtheta = gs @ (-l1 * v + W * a * v * m[codes])
    dF = np.column_stack([dF_dtheta, dF_dbeta])
    dm = -dF / H[:, None]
    # d H / d psi, then d s / d psi
    dH_dbeta = gs @ ((-l3 * a ** 2)[:, None] * X)
    dH_dtheta = gs @ (2.0 * W * a * v - l3 * v * m[codes] * a ** 2)
    dH_du = gs @ (-l3 * a ** 3)
    dH = np.column_stack([dH_dtheta, dH_dbeta]) + dH_du[:, None] * dm
    ds = -0.5 * s[:, None] ** 3 * dH
    # the integrand at the nodes
    pl1 = pi[codes] * dk[1]                                  # (n, K)
    dphi_beta = gs @ (pl1.sum(axis=1)[:, None] * X)
    dphi_theta = gs @ ((pl1 * x[codes]).sum(axis=1) * v)
    dphi = np.column_stack([dphi_theta, dphi_beta])
    phi_u = gs @ (dk[1] * a[:, None]) - x                    # phi_g'(x_gk)
    E1 = np.sum(pi * phi_u, axis=1)
    E2 = np.sum(pi * phi_u * np.sqrt(2.0) * z[None, :], axis=1)
    dlogI = ds / s[:, None] + dphi + E1[:, None] * dm + E2[:, None] * ds
    return dev, -2.0 * dlogI.sum(axis=0)
