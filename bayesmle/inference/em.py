"""The EM algorithm for the mixture builders: closed-form M-steps, a monotone trace.

EM maximises the same marginal likelihood as the certified Newton optimiser, by alternating
the responsibilities of the components for each observation (E-step) with weighted maximum
likelihood of each component (M-step): Gaussian means and variances, Poisson rates, weighted
least squares per regression line. Each iteration cannot decrease the likelihood (Dempster,
Laird and Rubin 1977), which the recorded ``trace`` lets a test check; EM's own stopping rule is
*not* a certificate, so :mod:`bayesmle.inference.mixture_fit` evaluates the engine's gradient and
Hessian where EM stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special

from bayesmle.models.mixture import (
    DEGENERATE_SIGMA,
    component_logpdf,
    is_full,
    ordering_values,
    sigma_ratio,
)
from bayesmle.models.spec import ModelSpec

__all__ = ["EMRun", "e_step", "m_step", "run_em"]

#: EM stops when one iteration raises the log-likelihood by less than this (absolute).
DEFAULT_TOL = 1e-12
DEFAULT_MAX_ITER = 10_000


@dataclass(frozen=True)
class EMRun:
    """Where EM stopped: parameters (components ordered), iterations, log-likelihood trace.

    ``trace[0]`` is the log-likelihood at the start, ``trace[i]`` after iteration ``i``;
    ``degenerate`` says why the run stopped early on a collapsing component (empty if not).
    """

    params: dict[str, np.ndarray]
    iterations: int
    trace: np.ndarray
    stopped: bool  #: EM's own rule (gain < tol) was met
    degenerate: str = ""


def e_step(spec: ModelSpec, params: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Responsibilities ``(n, k)`` and the log-likelihood at ``params``.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.poisson_mixture([0, 1, 2, 8, 9, 10], 2)
    >>> r, ll = e_step(spec, {"weights": np.array([0.5, 0.5]), "rate": np.array([1.0, 9.0])})
    >>> r.sum(axis=1).round(12).tolist() == [1.0] * 6
    True
    """
    lp = component_logpdf(spec, params)
    norm = scipy.special.logsumexp(lp, axis=1, keepdims=True)
    return np.exp(lp - norm), float(norm.sum())


def m_step(spec: ModelSpec, resp: np.ndarray) -> dict[str, np.ndarray]:
    """The weighted maximum-likelihood parameters for responsibilities ``resp`` (n, k).

    Closed forms: ``w_j = N_j / n``; Gaussian ``mu_j``, ``sigma_j`` (pooled when the spec has
    equal variances) the weighted mean and standard deviation (full covariances: the weighted
    scatter matrix ``sum_i r_ij (y_i - mu_j)(y_i - mu_j)' / N_j``, reported as its sds and
    correlations); Poisson ``rate_j`` the weighted
    mean; regression: weighted least squares per component and the weighted residual sd.
    Components are not reordered here.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> spec = bm.models.gaussian_mixture([0.0, 1.0, 2.0, 10.0, 11.0, 12.0], 2)
    >>> resp = np.repeat(np.eye(2), 3, axis=0)  # hard split into the two groups
    >>> {k: np.round(v, 4).tolist() for k, v in m_step(spec, resp).items()}
    {'weights': [0.5, 0.5], 'mu': [1.0, 11.0], 'sigma': [0.8165, 0.8165]}
    """
    kind = spec.options["mixture"]
    y = spec.data["y"]
    nk = resp.sum(axis=0)
    tiny = np.finfo(float).tiny
    out = {"weights": nk / y.shape[0]}
    if kind == "gaussian" and y.ndim == 2 and is_full(spec):  # full covariances
        mu = resp.T @ y / np.maximum(nk, tiny)[:, None]
        diff = y[None, :, :] - mu[:, None, :]  # (k, n, d)
        scatter = np.einsum("nk,kni,knj->kij", resp, diff, diff) / np.maximum(nk, tiny)[:, None,
                                                                                       None]
        sigma = np.sqrt(np.diagonal(scatter, axis1=1, axis2=2))
        iu = np.triu_indices(y.shape[1], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (scatter / (sigma[:, :, None] * sigma[:, None, :]))[:, iu[0], iu[1]]
        out.update(mu=mu, sigma=sigma, corr=corr)
    elif kind == "gaussian" and y.ndim == 2:  # diagonal covariances
        mu = resp.T @ y / np.maximum(nk, tiny)[:, None]
        sq = (resp[:, :, None] * (y[:, None, :] - mu[None, :, :]) ** 2).sum(axis=0)
        if spec.options["equal_variances"]:
            sigma = np.sqrt(sq.sum(axis=0) / y.shape[0])
        else:
            sigma = np.sqrt(sq / np.maximum(nk, tiny)[:, None])
        out.update(mu=mu, sigma=sigma)
    elif kind == "gaussian":
        mu = resp.T @ y / np.maximum(nk, tiny)
        sq = (resp * (y[:, None] - mu[None, :]) ** 2).sum(axis=0)
        if spec.options["equal_variances"]:
            sigma = np.sqrt(sq.sum() / y.shape[0])
        else:
            sigma = np.sqrt(sq / np.maximum(nk, tiny))
        out.update(mu=mu, sigma=np.asarray(sigma))
    elif kind == "poisson":
        out["rate"] = resp.T @ y / np.maximum(nk, tiny)
    else:
        X = spec.data["X"]
        design = np.column_stack([np.ones(y.size), X])
        betas, sig = [], []
        for j in range(resp.shape[1]):
            w = resp[:, j]
            sw = np.sqrt(w)
            beta, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
            betas.append(beta)
            sig.append(np.sqrt((w * (y - design @ beta) ** 2).sum() / max(nk[j], tiny)))
        betas = np.array(betas)
        out.update(intercept=betas[:, 0], coef=betas[:, 1:], sigma=np.array(sig))
    return out


def sort_components(spec: ModelSpec, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same parameters with the components ordered by the spec's ordering key."""
    order = np.argsort(ordering_values(spec, params), kind="stable")
    out = {}
    for name, value in params.items():
        value = np.asarray(value)
        per_component = spec.dims.get(name, ())[:1] == ("component",)
        out[name] = value[order] if per_component else value
    return out


def _degenerate(spec: ModelSpec, params: dict[str, np.ndarray]) -> str:
    nk = params["weights"] * spec.nobs
    if np.any(nk < 1e-8):
        j = int(np.argmin(nk))
        return f"component {j + 1} lost all its observations (n * weight = {nk[j]:.3g})"
    if "sigma" in params:
        ratio = sigma_ratio(spec, params)
        if not np.all(np.isfinite(ratio)) or np.any(ratio < DEGENERATE_SIGMA):
            j = int(np.argmin(ratio))
            return (f"component {j + 1} collapsed onto its observations (sigma = "
                    f"{ratio[j]:.3g} * sd(y) < {DEGENERATE_SIGMA:g} * sd(y)): the likelihood "
                    "is unbounded in that direction")
    return ""


def run_em(spec: ModelSpec, start: dict[str, np.ndarray], *, max_iter: int = DEFAULT_MAX_ITER,
           tol: float = DEFAULT_TOL) -> EMRun:
    """Run EM from natural-scale ``start`` values (weights included) until the gain < ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[rng.poisson(1.0, 50), rng.poisson(8.0, 50)]
    >>> run = run_em(bm.models.poisson_mixture(y, 2),
    ...              {"weights": np.array([0.5, 0.5]), "rate": np.array([2.0, 5.0])})
    >>> bool(np.all(np.diff(run.trace) >= -1e-9)), run.stopped
    (True, True)
    """
    params = {k: np.asarray(v, dtype=float) for k, v in start.items()}
    resp, ll = e_step(spec, params)
    trace = [ll]
    stopped, reason = False, ""
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        new = m_step(spec, resp)
        reason = _degenerate(spec, new)
        if reason:
            params = new
            break
        resp, ll = e_step(spec, new)
        params = new
        trace.append(ll)
        if ll - trace[-2] < tol:
            stopped = True
            break
    return EMRun(params=sort_components(spec, params), iterations=it, trace=np.array(trace),
                 stopped=stopped, degenerate=reason)
