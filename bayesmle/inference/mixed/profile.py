"""Profile intervals of a mixed model's ML or MAP estimate, valid at the boundary.

For one reported scalar ``psi`` (a fixed effect, ``sd[g]``, ``corr[g]``, ``sigma``) the profile
is ``l_p(c) = max { l(theta) : psi = c }`` over every other natural parameter (standard
deviations kept >= 0, correlations in [-1, 1], sigma > 0), with ``l`` the marginal
log-likelihood (exact for Gaussian models, the Laplace / quadrature approximation of the fit
otherwise) -- or the log posterior (Jacobian-free) for a MAP. The interval is
``{c : 2 (l_hat - l_p(c)) <= chi2_1(level)}``: where the profile of a standard deviation stays
above the threshold all the way down to 0 -- always the case for an estimate on the boundary --
the lower end is exactly 0 (lme4's ``confint(method = "profile")`` does the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

from bayesmle.errors import DataError, SpecError

__all__ = ["mixed_profile_interval"]

_CORR_EDGE = 1.0 - 1e-9


def _objective(result):
    from bayesmle.inference.mixed.solver import _design, _loglik, _marginal_priors
    from bayesmle.priors.numeric import logpdf

    spec, mf = result.spec, result.mixed
    design = _design(spec)
    loglik = _loglik(design, max(int(mf.nagq), 1))[0]
    p, n_sd, n_corr = design.p, len(design.sd_labels()), len(design.corr_labels())
    gaussian = design.family == "gaussian"
    priors = _marginal_priors(spec) if result.method == "map" else {}
    names = list(design.fixed_names)
    slopes = [i for i, n in enumerate(names) if n != "Intercept"]

    def log_prior(beta, sd, corr, sigma) -> float:
        if not priors:
            return 0.0
        total = 0.0
        if "intercept" in priors and "Intercept" in names:
            total += logpdf(priors["intercept"], beta[names.index("Intercept")])
        if "coef" in priors and slopes:
            total += logpdf(priors["coef"], beta[slopes])
        if "sd" in priors:
            total += logpdf(priors["sd"], sd)
        if "sigma" in priors and sigma is not None:
            total += logpdf(priors["sigma"], sigma)
        if "corr" in priors and n_corr:
            at = 0
            for block in design.blocks:
                if block.k < 2:
                    continue
                m = block.k * (block.k - 1) // 2
                R = np.eye(block.k)
                iu = np.triu_indices(block.k, 1)
                R[iu] = corr[at:at + m]
                R.T[iu] = corr[at:at + m]
                total += logpdf(priors["corr"], R)
                at += m
        return total

    def value(natural: np.ndarray) -> float:
        beta = natural[:p]
        sd = natural[p:p + n_sd]
        corr = natural[p + n_sd:p + n_sd + n_corr]
        sigma = float(natural[-1]) if gaussian else None
        try:
            out = loglik(design, beta, sd, corr, sigma) + log_prior(beta, sd, corr, sigma)
        except DataError:  # e.g. a scale so large the random effects absorb the intercept
            return -np.inf
        return float(out) if np.isfinite(out) else -np.inf

    bounds = ([(None, None)] * p + [(0.0, None)] * n_sd + [(-_CORR_EDGE, _CORR_EDGE)] * n_corr
              + ([(1e-12, None)] if gaussian else []))
    return value, bounds


def _scale(est: float, se: float, lower) -> float:
    if np.isfinite(se) and se > 0:
        return float(se)
    return max(abs(est), 1.0) * 0.5 if lower is None else max(abs(est), 0.1)


def mixed_profile_interval(result, *, level: float = 0.95,
                           labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Profile intervals of a mixed model's ``"mle"`` or ``"map"`` result (see module doc).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(8), 6)
    >>> y = 1.0 + rng.normal(0, 1.0, 48)  # no group effect: sd[g] on the boundary
    >>> mle = bm.fit(bm.models.glm("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g})), "mle")
    >>> float(mle.conf_int(method="profile").loc["sd[g]", "lower"])
    0.0
    """
    from bayesmle.inference.mixed.solver import _design, _params

    if result.method not in ("mle", "map"):
        raise SpecError(
            f"Profile intervals of mixed models are available for 'mle' and 'map' fits, not "
            f"{result.method!r} (REML's criterion is not a likelihood of all the parameters: use "
            "conf_int(method='wald') or refit with 'mle').")
    wanted = list(result.labels) if labels is None else list(labels)
    unknown = [lab for lab in wanted if lab not in result.labels]
    if unknown:
        raise SpecError(f"Unknown label(s) {unknown}; valid labels: {result.labels}.")
    value, bounds = _objective(result)
    mf = result.mixed
    design = _design(result.spec)
    _, order = _params(result.spec, design, mf)
    natural = mf.natural()
    best = value(natural)
    crit = float(scipy.stats.chi2.ppf(level, 1))
    se_nat = np.sqrt(np.abs(np.diag(np.asarray(mf.cov, dtype=float))))
    rows = {}
    for lab in wanted:
        j = int(order[result.labels.index(lab)])
        others = [i for i in range(natural.size) if i != j]

        def profile(c: float, j=j, others=others) -> float:
            start = natural[others]

            def neg(z):
                full = natural.copy()
                full[j] = c
                full[others] = z
                v = value(full)
                return -v if np.isfinite(v) else 1e300

            if not others:
                return -neg(start)
            res = scipy.optimize.minimize(neg, start, method="L-BFGS-B",
                                          bounds=[bounds[i] for i in others],
                                          options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 500})
            return -float(res.fun)

        def gap(c: float, profile=profile) -> float:
            return 2.0 * (best - profile(c)) - crit

        lo_b, hi_b = bounds[j]
        est = float(natural[j])
        ends = []
        for direction, edge in ((-1, lo_b), (+1, hi_b)):
            step = _scale(est, se_nat[j], lo_b)
            if edge is not None and abs(est - edge) < 1e-10:
                ends.append(float(edge if abs(edge) != _CORR_EDGE else np.sign(edge)))
                continue
            c, inner, found = est, est, False
            for _ in range(60):
                c = est + direction * step
                if edge is not None and direction * (c - edge) >= 0:
                    c = edge
                if gap(c) > 0:
                    found = True
                    break
                if edge is not None and c == edge:
                    break
                inner, step = c, step * 2.0
            if not found:
                ends.append(float(np.sign(edge) if edge is not None and abs(edge) ==
                                  _CORR_EDGE else (edge if edge is not None else
                                                   direction * np.inf)))
                continue
            ends.append(float(scipy.optimize.brentq(gap, min(inner, c), max(inner, c),
                                                    xtol=1e-10, rtol=1e-12)))
        rows[lab] = ends
    return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])
