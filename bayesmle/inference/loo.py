"""Leave-one-out cross-validation of any result: the expected log predictive density (elpd).

Each method is judged by its own predictive distribution of a held-out observation:

* **MLE / MAP** -- *exact* leave-one-out: for each row ``i`` the spec without ``i``
  (:meth:`~bayesmle.models.spec.ModelSpec.subset`) is refitted by the same method and the
  held-out row is scored under the refit's plug-in distribution. Above ``EXACT_LOO_MAX_N`` rows,
  ``KFOLD_K``-fold cross-validation (a seeded split) takes its place. A refit that fails (e.g.
  no MLE without row ``i``) gives a NaN pointwise value and a ``warning``: never dropped.
  For an MLE, ``aic_elpd = -AIC / 2`` is AIC's estimate of the same quantity.
* **Laplace** -- PSIS-LOO on its draws corrected for the approximation
  (``arviz_stats``' approximate-posterior LOO): the importance ratios use the unnormalised
  posterior density and the Gaussian's density of each draw in the unconstrained coordinates.
* **NUTS** -- PSIS-LOO (``arviz_stats``); observations whose Pareto ``k`` exceeds
  ``k_threshold`` are refitted exactly by NUTS without them (at most ``max_refits``; the
  result's sampler, chains and draws per chain, as many tuning steps as draws but at least
  200, seeded from ``random_seed``), as ``reloo`` does; the refit's log predictive density
  of the held-out row replaces its PSIS value.

The Pareto-smoothed values are computed with the ``azstats`` accessor functions that
``arviz_stats.loo`` and ``arviz_stats.loo_approximate_posterior`` call, so that a large ``k`` is
reported in :attr:`LooResult.warning` instead of being emitted as a warning.
``elpd = sum(pointwise)``, ``se = sqrt(n * var(pointwise))``, ``p = lpd - elpd`` with ``lpd``
the in-sample log predictive density of the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import xarray as xr

from bayesmle._validation import check_int, check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.inference.observation_engine import compiled_observations
from bayesmle.inference.predictive import Setup, call_over_draws, parameter_draws
from bayesmle.models.observations import Rows, observations_of

__all__ = ["EXACT_LOO_MAX_N", "KFOLD_K", "MAX_REFITS", "LooResult", "loo"]

#: MLE/MAP: exact leave-one-out (one refit per row) up to this many rows, K-fold beyond.
EXACT_LOO_MAX_N = 1000
#: Number of folds of K-fold cross-validation.
KFOLD_K = 10
#: NUTS: default largest number of exact refits of observations with a large Pareto k.
MAX_REFITS = 10
_MAX_REFITS_LIMIT = 100_000


@dataclass(frozen=True)
class LooResult:
    """Leave-one-out estimate of the expected log predictive density of one result.

    Attributes
    ----------
    elpd : float
        Sum of the pointwise leave-one-out log predictive densities.
    se : float
        Standard error of ``elpd``: ``sqrt(n * var(pointwise))``.
    p : float
        Effective number of parameters: in-sample lpd minus ``elpd``.
    kind : str
        ``"exact"``, ``"kfold"``, ``"psis"``, ``"psis+refit"`` or ``"psis-approximate"``.
    warning : str or None
        What to be careful about (large Pareto k left unrefitted, failed refits).
    method : str
        The result's method.
    pointwise : pandas.DataFrame
        One row per observation: ``elpd``; ``pareto_k`` for PSIS kinds; ``loo_mean`` (the
        leave-one-out prediction E[y_i | y_-i]) for MLE/MAP.
    aic_elpd : float or None
        MLE: ``-AIC / 2``, AIC's estimate of ``elpd``; None otherwise.
    n_refits : int
        Number of refits done.
    """

    elpd: float
    se: float
    p: float
    kind: str
    warning: str | None
    method: str
    pointwise: pd.DataFrame
    aic_elpd: float | None = None
    n_refits: int = 0

    def to_series(self) -> pd.Series:
        """The summary as a Series (one row of a comparison table)."""
        return pd.Series({"method": self.method, "kind": self.kind, "elpd": self.elpd,
                          "se": self.se, "p": self.p, "aic_elpd": self.aic_elpd,
                          "n_refits": self.n_refits, "warning": self.warning}, name=self.method)

    def __repr__(self) -> str:
        aic = "" if self.aic_elpd is None else f", -AIC/2 {self.aic_elpd:.2f}"
        warn = "" if self.warning is None else f"; warning: {self.warning}"
        return (f"<LooResult {self.method} ({self.kind}, n={len(self.pointwise)}): "
                f"elpd {self.elpd:.2f} (se {self.se:.2f}), p {self.p:.2f}{aic}, "
                f"{self.n_refits} refit(s){warn}>")


# ---------------------------------------------------------------------------------------------
# Validation and shared plumbing
# ---------------------------------------------------------------------------------------------
def _check_threshold(value: Any) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if not ok or not (0.0 <= float(value) <= 1.5):
        raise SpecError(f"`k_threshold` must be a number in [0, 1.5] (Pareto k; 0.7 is the "
                        f"usual limit), got {value!r}.")
    return float(value)


class _Held:
    """The fitted data of a spec, split by rows, and its compiled observation model."""

    def __init__(self, spec):
        self.spec = spec
        obs = observations_of(spec)
        self.full = obs.arrays(spec, None)
        self.n = int(spec.nobs)
        self.keys = {k for k in spec.row_data
                     if k in self.full.arrays and np.ndim(self.full.arrays[k]) >= 1
                     and np.shape(self.full.arrays[k])[0] == self.n}
        if not self.keys:
            raise SpecError(f"Model {spec.name!r} has no row arrays: leave-one-out needs "
                            "observations to leave out.")
        self.cm = compiled_observations(obs, self.full.arrays, tuple(spec.params))
        if len(self.cm.observed) != 1:
            raise SpecError(f"loo() scores one observed variable per row; model {spec.name!r} "
                            f"has {self.cm.observed}.")
        self.name = self.cm.observed[0]

    def setup(self, rows: np.ndarray | None = None) -> Setup:
        arrays = dict(self.full.arrays)
        if rows is not None:
            arrays = {k: (v[rows] if k in self.keys else v) for k, v in arrays.items()}
        r = Rows(arrays, observed=True)
        return Setup(self.cm, r, self.cm.data_for(arrays))

    def loglik(self, flat: dict[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
        """``(draws, rows)`` log-likelihood of the rows under each parameter draw."""
        out = call_over_draws(self.setup(rows), self.cm.loglik_fn(), flat)[0]
        if out.ndim != 2:
            raise SpecError(f"loo() needs one log-likelihood value per row; {self.name!r} "
                            f"gives shape {out.shape[1:]} per draw.")
        return out

    def mean(self, flat: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """E[y | parameters] of the rows (NaN where undefined or not a scalar per row)."""
        fn = self.cm.mean_fn(self.name)
        categorical = self.cm.model[self.name].owner.op.__class__.__name__ == "CategoricalRV"
        if fn is None or categorical:
            return np.full(len(rows), np.nan)
        return call_over_draws(self.setup(rows), fn, flat)[0].mean(axis=0)


def _summary(pointwise: np.ndarray, lpd: float) -> tuple[float, float, float]:
    n = pointwise.size
    elpd = float(np.sum(pointwise))
    se = float(np.sqrt(n * np.var(pointwise)))
    return elpd, se, float(lpd - elpd)


def _lpd(ll: np.ndarray, log_weights: np.ndarray | None = None) -> float:
    """In-sample log predictive density from ``(draws, rows)`` log-likelihoods.

    ``log_weights`` (one per draw) weight draws of an approximation towards the posterior
    (self-normalised importance weights): the in-sample counterpart of the corrected LOO.
    """
    if log_weights is None:
        return float(np.sum(scipy.special.logsumexp(ll, axis=0) - np.log(ll.shape[0])))
    lw = log_weights - scipy.special.logsumexp(log_weights)
    return float(np.sum(scipy.special.logsumexp(ll + lw[:, None], axis=0)))


def _index(n: int) -> pd.Index:
    return pd.RangeIndex(n, name="row")


# ---------------------------------------------------------------------------------------------
# MLE / MAP: exact leave-one-out or K-fold by refitting
# ---------------------------------------------------------------------------------------------
def _point_loo(result: Any, seed: int) -> LooResult:
    from bayesmle.inference.driver import run

    spec, method = result.spec, result.method
    held = _Held(spec)
    n = held.n
    if n < 2:
        raise SpecError("Leave-one-out needs at least 2 observations.")
    if n <= EXACT_LOO_MAX_N:
        folds, kind = [np.array([i]) for i in range(n)], "exact"
    else:
        perm = np.random.default_rng(seed).permutation(n)
        folds, kind = np.array_split(perm, KFOLD_K), "kfold"
    pointwise = np.full(n, np.nan)
    loo_mean = np.full(n, np.nan)
    failed: list[str] = []
    uncertified: list[int] = []
    for k, test in enumerate(folds):
        sub = spec.subset(np.setdiff1d(np.arange(n), test))  # a SpecError is the caller's
        try:
            refit = run(sub, method)
        except BayesMLEError as exc:
            failed.append(f"{'row' if kind == 'exact' else 'fold'} {k}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        if not refit.converged:
            uncertified.append(k)
        flat = parameter_draws(refit).flat()
        pointwise[test] = held.loglik(flat, test)[0]
        loo_mean[test] = held.mean(flat, test)
    full = parameter_draws(result).flat()
    elpd, se, p = _summary(pointwise, _lpd(held.loglik(full)))
    unit = "row(s)" if kind == "exact" else "fold(s)"
    notes = []
    if failed:
        notes.append(f"{len(failed)} refit(s) failed, their pointwise elpd is NaN (so is "
                     f"elpd): " + "; ".join(failed[:5]) + (" ..." if len(failed) > 5 else ""))
    if uncertified:
        notes.append(f"the refits without {unit} {uncertified[:10]} are not certified optima")
    table = pd.DataFrame({"elpd": pointwise, "loo_mean": loo_mean}, index=_index(n))
    table.attrs.update(kind=kind, random_seed=seed if kind == "kfold" else None)
    aic = -float(result.aic) / 2.0 if method == "mle" else None
    return LooResult(elpd=elpd, se=se, p=p, kind=kind, warning="; ".join(notes) or None,
                     method=method, pointwise=table, aic_elpd=aic,
                     n_refits=len(folds) - len(failed))


# ---------------------------------------------------------------------------------------------
# Laplace: PSIS-LOO corrected for the approximation
# ---------------------------------------------------------------------------------------------
def _sample_da(values: np.ndarray, chains: int, draws: int) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=float).reshape(chains, draws),
                        dims=("chain", "draw"))


def _ll_da(ll: np.ndarray, chains: int, draws: int) -> xr.DataArray:
    return xr.DataArray(ll.reshape(chains, draws, -1), dims=("chain", "draw", "obs"))


def _laplace_densities(result: Any) -> tuple[np.ndarray, np.ndarray] | str:
    """``(log_p, log_q)`` of the draws in the unconstrained coordinates, or why not."""
    xs, log_p = result.x_draws, result.log_p_draws
    if result.method != "laplace":  # ADVI, Pathfinder: their own log q (None: resampled)
        log_q = getattr(result, "log_q_draws", None)
        if log_q is None or log_p is None or not np.all(np.isfinite(log_p)):
            return "the draws were importance-resampled (multi-path Pathfinder)"
        return log_p, log_q
    if xs is None or log_p is None or not np.all(np.isfinite(xs)):
        return "the approximation has no draws of its coordinates (Hessian not PD)"
    opt = result.mode.optimum
    free = np.asarray(opt.free, dtype=bool)
    # log_p: the model's full log-density of x at each draw (L1 parts of priors included),
    # recorded when the draws were made
    H = np.asarray(opt.hess, dtype=float)[np.ix_(free, free)]
    sign, logdet = np.linalg.slogdet(H)
    if sign <= 0:
        return "the Hessian at the mode is not positive definite"
    d = xs[:, free] - opt.x[free]
    log_q = (-0.5 * np.einsum("si,ij,sj->s", d, H, d) + 0.5 * logdet
             - 0.5 * d.shape[1] * math.log(2 * math.pi))
    if not np.all(np.isfinite(log_p)):
        return "the posterior density is not finite at some draws"
    return log_p, log_q


def _laplace_loo(result: Any) -> LooResult:
    held = _Held(result.spec)
    pdraws = parameter_draws(result)
    chains, draws = pdraws.chains, pdraws.draws
    ll = held.loglik(pdraws.flat())
    lld = _ll_da(ll, chains, draws)
    dens = _laplace_densities(result)
    warning = None
    log_weights = None
    if isinstance(dens, str):
        elpd_i, pareto_k, _ = lld.azstats.loo(sample_dims=["chain", "draw"], r_eff=1.0)
        kind = "psis"
        warning = (f"plain PSIS-LOO on the {result.method} draws, without the correction for "
                   f"the approximation: {dens}")
    else:
        log_p, log_q = dens
        log_weights = log_p - log_q
        elpd_i, pareto_k, _ = lld.azstats.loo_approximate_posterior(
            log_p=_sample_da(log_p, chains, draws), log_q=_sample_da(log_q, chains, draws),
            sample_dims=["chain", "draw"])
        kind = "psis-approximate"
    pointwise, k = np.asarray(elpd_i, dtype=float), np.asarray(pareto_k, dtype=float)
    good_k = min(1 - 1 / np.log10(chains * draws), 0.7) if chains * draws > 1 else 0.7
    bad = np.flatnonzero(k > good_k)
    if bad.size:
        note = (f"Pareto k > {good_k:.2f} for {bad.size} observation(s) (rows "
                f"{bad[:10].tolist()}): the importance sampling is unreliable there")
        warning = note if warning is None else f"{warning}; {note}"
    elpd, se, p = _summary(pointwise, _lpd(ll, log_weights))
    table = pd.DataFrame({"elpd": pointwise, "pareto_k": k}, index=_index(held.n))
    return LooResult(elpd=elpd, se=se, p=p, kind=kind, warning=warning, method=result.method,
                     pointwise=table)


# ---------------------------------------------------------------------------------------------
# NUTS: PSIS-LOO with exact refits of large Pareto k
# ---------------------------------------------------------------------------------------------
def _r_eff(result: Any) -> float:
    """Relative efficiency of the posterior draws, as ``arviz_stats.loo`` computes it."""
    post = result.datatree["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    if post.sizes["chain"] == 1:
        return 1.0
    ess = post.azstats.ess(method="mean")
    return float(np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean() / n)


def _nuts_loo(result: Any, k_threshold: float, max_refits: int, seed: int) -> LooResult:
    from bayesmle.inference.driver import run

    spec = result.spec
    held = _Held(spec)
    pdraws = parameter_draws(result)
    chains, draws = pdraws.chains, pdraws.draws
    tree = result.datatree
    if "log_likelihood" in tree.children and held.name in tree["log_likelihood"].data_vars:
        da = tree["log_likelihood"][held.name]
        ll = da.transpose("chain", "draw", ...).to_numpy().reshape(chains * draws, -1)
    else:
        ll = held.loglik(pdraws.flat())
    elpd_i, pareto_k, _ = _ll_da(ll, chains, draws).azstats.loo(
        sample_dims=["chain", "draw"], r_eff=_r_eff(result))
    pointwise = np.asarray(elpd_i, dtype=float).copy()
    k = np.asarray(pareto_k, dtype=float)
    high = np.flatnonzero(~(k <= k_threshold))
    todo, left = high[:max_refits], high[max_refits:]
    refitted = np.zeros(held.n, dtype=bool)
    failed: list[str] = []
    troubled: list[int] = []
    seeds = np.random.default_rng(seed).integers(0, 2**62, size=max(len(todo), 1))
    for i, s in zip(todo, seeds, strict=False):
        sub = spec.subset(np.setdiff1d(np.arange(held.n), [i]))
        try:
            refit = run(sub, "nuts", draws=draws, tune=max(draws, 200), chains=chains,
                        random_seed=int(s), sampler=result.sampler or "auto")
        except BayesMLEError as exc:
            failed.append(f"row {i}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        if refit.diagnostics:
            troubled.append(int(i))
        lli = held.loglik(parameter_draws(refit).flat(), np.array([i]))[:, 0]
        pointwise[i] = float(scipy.special.logsumexp(lli) - np.log(lli.size))
        refitted[i] = True
    notes = []
    if left.size:
        notes.append(f"Pareto k > {k_threshold:g} for {left.size} observation(s) beyond "
                     f"max_refits={max_refits} left unrefitted (rows {left[:10].tolist()})")
    if failed:
        notes.append(f"{len(failed)} refit(s) failed, kept their PSIS value: "
                     + "; ".join(failed[:5]))
    if troubled:
        notes.append(f"the NUTS refits without rows {troubled[:10]} have sampling "
                     "diagnostics (divergences, R-hat or ESS)")
    elpd, se, p = _summary(pointwise, _lpd(ll))
    table = pd.DataFrame({"elpd": pointwise, "pareto_k": k, "refitted": refitted},
                         index=_index(held.n))
    table.attrs.update(random_seed=seed)
    n_refits = int(refitted.sum())
    return LooResult(elpd=elpd, se=se, p=p, kind="psis+refit" if n_refits else "psis",
                     warning="; ".join(notes) or None, method="nuts", pointwise=table,
                     n_refits=n_refits)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def loo(result: Any, *, k_threshold: float = 0.7, max_refits: int = MAX_REFITS,
        random_seed: int | None = None) -> LooResult:
    """Leave-one-out cross-validation of a result (see the module docstring).

    Parameters
    ----------
    result : FitResult
        An MLE, MAP, Laplace or NUTS result.
    k_threshold : float, default 0.7
        NUTS: observations whose Pareto k exceeds it are refitted exactly.
    max_refits : int, default 10
        NUTS: at most this many refits; the others are reported in ``warning``.
    random_seed : int, optional
        Seed of the K-fold split and of the NUTS refits (drawn from entropy when absent).

    Returns
    -------
    LooResult

    Raises
    ------
    SpecError
        A prior result (no posterior to cross-validate), or a bad argument.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([1.0, 2.0, 4.0, 3.0, 2.5])
    >>> res = loo(bm.fit(bm.models.gaussian(y), "mle"))
    >>> res.kind, res.n_refits, list(res.pointwise.columns)
    ('exact', 5, ['elpd', 'loo_mean'])
    >>> bool(np.allclose(res.pointwise["loo_mean"], (y.sum() - y) / 4))
    True
    """
    k_threshold = _check_threshold(k_threshold)
    max_refits = check_int("max_refits", max_refits, 0, _MAX_REFITS_LIMIT)
    seed = check_seed(random_seed)
    method = getattr(result, "method", None)
    if method == "prior":
        raise SpecError("A prior result has no posterior, so leave-one-out is not defined: "
                        "fit 'mle', 'map', 'laplace' or 'nuts' first.")
    if method in ("mle", "map"):
        return _point_loo(result, seed)
    if method in ("laplace", "advi", "fullrank_advi", "pathfinder"):
        return _laplace_loo(result)
    if method == "nuts":
        return _nuts_loo(result, k_threshold, max_refits, seed)
    raise SpecError(f"loo() takes an MLE, MAP, Laplace or NUTS result, got {result!r}.")
