"""More groups or bigger groups: what each buys a random-intercept model (Neyman-Scott).

The model ``y_ij = mu + b_j + e_ij``, ``b_j ~ N(0, sd^2)``, ``e_ij ~ N(0, sigma^2)``, with ``J``
groups of ``m`` observations, grown two ways:

* **more groups** (``J`` grows, ``m`` fixed): every parameter is learnt at rate ``1/sqrt(J)``; the
  MAP of any fixed prior approaches the MLE like ``1/J`` (slope -1 on a log-log plot against
  ``n = J m``);
* **bigger groups** (``m`` grows, ``J`` fixed): ``sigma`` is learnt from ``J (m - 1)`` residual
  degrees of freedom, but ``sd`` (and ``mu``) only from ``J`` group means, *whatever m*: the
  MLE's error for sd and the prior's pull on it (|MAP - MLE|) level off (slope 0).

The third contrast is Neyman and Scott's (1948, *Econometrica* 16): treat the group effects as
fixed parameters (no pooling) and the MLE of ``sigma`` is ``sqrt(SSW / n)``, which converges to
``sigma sqrt((m - 1) / m)``, not ``sigma``, as ``J`` grows with ``m`` fixed -- the number of
nuisance parameters grows with the data. Integrating the group effects out (the marginal MLE of
the mixed model) removes that bias: its ``sigma`` is consistent.

Every fit uses the numerical layer (a :class:`~bayesmle.models.mixed_design.MixedDesign` built
from arrays, :func:`bayesmle.inference.mixed.lmm.fit_lmm` for the MLE and
:func:`bayesmle.inference.mixed.marginal.fit_marginal` for the MAP): no formula is parsed per
replicate.

Task ``t = (regime index * len(sizes) + size index) * reps + replicate`` (regimes in the order
of ``grow``) draws the group effects and then the residuals (rows group after group) from
``numpy.random.default_rng(SeedSequence(random_seed).spawn(n_tasks)[t])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.priors import Prior
from bayesmle.studies._common import new_figure
from bayesmle.studies._runner import StudyResult, check_ns, check_reps, run_tasks, task_rngs
from bayesmle.studies.reml_bias import (
    balanced_design,
    check_group_count,
    check_truth,
    simulate_balanced,
)

__all__ = ["GroupGrowthResult", "group_growth"]

REGIMES = ("groups", "group_size")
PARAMETERS = ("mu", "sd", "sigma")
_PRIOR_KEYS = ("intercept", "sd", "sigma")


def default_prior() -> dict[str, Prior]:
    """``intercept ~ Normal(0, 1)``, ``sd ~ HalfNormal(1)``, ``sigma ~ HalfNormal(1)``."""
    from bayesmle.priors import HalfNormal, Normal

    return {"intercept": Normal(1.0), "sd": HalfNormal(1.0), "sigma": HalfNormal(1.0)}


@dataclass(frozen=True)
class _Task:
    truth: dict[str, float]
    prior: dict[str, Prior]
    regime: str
    groups: int
    group_size: int
    replicate: int
    seed: np.random.SeedSequence


def _map_fit(design, prior: Mapping[str, Prior], system, start: np.ndarray):
    from bayesmle.inference.mixed import lmm
    from bayesmle.inference.mixed.marginal import fit_marginal

    return fit_marginal(design, dict(prior), partial(lmm.gaussian_loglik, system=system),
                        start=start,
                        loglik_grad=partial(lmm.gaussian_loglik_grad, system=system),
                        conditional_modes=partial(lmm.conditional_modes, system=system))


def _run(task: _Task) -> list[dict[str, Any]]:
    from bayesmle.inference.mixed.lmm import fit_lmm, lmm_system

    rng = np.random.default_rng(task.seed)
    J, m = task.groups, task.group_size
    y = simulate_balanced(task.truth, J, m, rng)
    base = {"regime": task.regime, "groups": J, "group_size": m, "n": J * m,
            "replicate": task.replicate}
    means = y.reshape(J, m).mean(axis=1)
    ssw = float(np.sum((y.reshape(J, m) - means[:, None]) ** 2))
    fixed = {"mu": np.nan, "sd": np.nan, "sigma": float(np.sqrt(ssw / (J * m)))}
    design = balanced_design(y, J, m)
    system = lmm_system(design)
    try:
        mle = fit_lmm(design, "mle", system=system)
        start = np.concatenate([mle.beta, np.maximum(mle.sd, 0.05 * mle.sigma), [mle.sigma]])
        map_ = _map_fit(design, task.prior, system, start)
    except BayesMLEError as exc:  # pragma: no cover - probability 0 for continuous data
        return [{**base, "parameter": p, "truth": task.truth[p], "mle": np.nan, "map": np.nan,
                 "abs_map_mle": np.nan, "mle_error": np.nan, "fixed_effects": fixed[p],
                 "status": type(exc).__name__} for p in PARAMETERS]
    status = "ok" if (mle.converged and map_.converged) else "not_converged"
    est = {"mle": (float(mle.beta[0]), float(mle.sd[0]), float(mle.sigma)),
           "map": (float(map_.beta[0]), float(map_.sd[0]), float(map_.sigma))}
    rows = []
    for i, p in enumerate(PARAMETERS):
        a, b = est["mle"][i], est["map"][i]
        rows.append({**base, "parameter": p, "truth": task.truth[p], "mle": a, "map": b,
                     "abs_map_mle": abs(b - a), "mle_error": a - task.truth[p],
                     "fixed_effects": fixed[p], "status": status})
    return rows


def _log_slope(x: np.ndarray, means: np.ndarray, ses: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``log means`` on ``log x`` and its Monte Carlo standard error.

    The standard error propagates each mean's MCSE (delta method: ``se(log m) = se / m``)
    through the least-squares weights.
    """
    ok = np.isfinite(means) & (means > 0)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    lx, ly = np.log(x[ok]), np.log(means[ok])
    w = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    return float(w @ ly), float(np.sqrt(np.sum(w ** 2 * (ses[ok] / means[ok]) ** 2)))


@dataclass(frozen=True, eq=False, repr=False)
class GroupGrowthResult(StudyResult):
    """Result of :func:`group_growth`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per regime (``"groups"``: J grows; ``"group_size"``: m grows), size, replicate
        and parameter (``mu``, ``sd``, ``sigma``): ``groups``, ``group_size``, ``n``,
        ``truth``, ``mle``, ``map``, ``abs_map_mle``, ``mle_error`` (MLE - truth),
        ``fixed_effects`` (the MLE with the group effects as fixed parameters: ``sqrt(SSW /
        n)`` for sigma, NaN for mu and sd, which it does not estimate), ``status``.
    per_size : pandas.DataFrame
        Per regime, size and parameter: ``mean_abs_map_mle`` and its ``mcse``, ``rmse_mle``
        and its ``rmse_mcse`` (also ``summary()``).
    slopes, slopes_mcse : pandas.DataFrame
        Slope of log(mean |MAP - MLE|) against log(n) (rows: parameter, columns: regime), and
        its Monte Carlo standard error. Theory: -1 when J grows; 0 for mu and sd, -1 for sigma,
        when only m grows.
    error_slopes, error_slopes_mcse : pandas.DataFrame
        The same for the MLE's RMSE against the truth (theory: -1/2; 0 for mu and sd when only
        m grows).
    neyman_scott : pandas.DataFrame
        Per regime and size: ``fixed_ratio`` (mean fixed-effects sigma / sigma) and
        ``fixed_ratio_mcse``, ``fixed_var_ratio`` (mean SSW / n / sigma^2, exactly
        ``(m - 1) / m`` in expectation) and its MCSE, ``theory_ratio`` (``sqrt((m - 1) /
        m)``), ``mle_ratio`` (mean marginal-MLE sigma / sigma).
    ns_ratio, ns_theory : float
        Mean fixed-effects sigma / sigma at the largest J of the ``"groups"`` regime, and its
        limit ``sqrt((m - 1) / m)`` (NaN without that regime).
    mle_sigma_ratio : float
        Mean marginal-MLE sigma / sigma there (limit 1).

    Examples
    --------
    >>> from bayesmle import studies
    >>> res = studies.group_growth({"mu": 0.0, "sd": 1.0, "sigma": 1.0}, sizes=[4, 8],
    ...                            base_groups=4, base_size=4, reps=2, random_seed=0)
    >>> res.slopes.columns.tolist(), res.slopes.index.tolist()
    (['groups', 'group_size'], ['mu', 'sd', 'sigma'])
    >>> type(res.plot()).__name__
    'Figure'
    """

    per_size: pd.DataFrame | None = None
    slopes: pd.DataFrame | None = None
    slopes_mcse: pd.DataFrame | None = None
    error_slopes: pd.DataFrame | None = None
    error_slopes_mcse: pd.DataFrame | None = None
    neyman_scott: pd.DataFrame | None = None
    ns_ratio: float = float("nan")
    ns_theory: float = float("nan")
    mle_sigma_ratio: float = float("nan")

    def summary(self) -> pd.DataFrame:
        """Mean |MAP - MLE| and the MLE's RMSE per regime, size and parameter (``per_size``)."""
        return self.per_size

    def plot(self):
        """Left: mean |MAP - MLE| against n per parameter and regime; right: Neyman-Scott."""
        fig, (ax1, ax2) = new_figure(ncols=2, width=5.5, height=4.2)
        colours = dict(zip(PARAMETERS, ("tab:blue", "tab:orange", "tab:green"), strict=True))
        styles = {"groups": ("o-", "J grows"), "group_size": ("s--", "m grows")}
        s = self.per_size
        for (regime, param), part in s.groupby(["regime", "parameter"], sort=False):
            style, what = styles[regime]
            slope = self.slopes.loc[param, regime]
            ax1.plot(part["n"], part["mean_abs_map_mle"], style, color=colours[param], ms=4,
                     label=f"{param}, {what} (slope {slope:.2f})")
        ax1.set(xscale="log", yscale="log", xlabel="n = J m", ylabel="mean |MAP − MLE|",
                title="The prior's pull: more groups vs bigger groups")
        ax1.legend(fontsize=7)
        ns = self.neyman_scott
        for regime, part in ns.groupby("regime", sort=False):
            style, what = styles[regime]
            x = part["groups"] if regime == "groups" else part["group_size"]
            ax2.errorbar(x, part["fixed_ratio"], yerr=1.96 * part["fixed_ratio_mcse"],
                         fmt=style, ms=4, color="tab:red", capsize=2,
                         label=f"fixed effects sqrt(SSW/n)/σ, {what}")
            ax2.plot(x, part["mle_ratio"], style, ms=4, color="tab:blue",
                     label=f"marginal MLE σ̂/σ, {what}")
            ax2.plot(x, part["theory_ratio"], ":", color="k", lw=1,
                     label="theory sqrt((m−1)/m)" if regime == ns["regime"].iloc[0] else None)
        ax2.axhline(1.0, color="0.5", lw=1)
        ax2.set(xscale="log", xlabel="the growing size (J or m)", ylabel="mean σ̂ / σ",
                title="Neyman–Scott: fixed effects → σ sqrt((m−1)/m)")
        ax2.legend(fontsize=7)
        return fig


def _check_grow(grow: Any) -> tuple[str, ...]:
    items = (grow,) if isinstance(grow, str) else grow
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if (not items or not all(isinstance(g, str) and g in REGIMES for g in items)
            or len(set(items)) != len(items)):
        raise SpecError(f"`grow` must name one or both regimes {REGIMES} (no repeats), got "
                        f"{grow!r}.")
    return items


def _check_prior(prior: Any) -> dict[str, Prior]:
    if prior is None:
        return default_prior()
    ok = isinstance(prior, Mapping) and all(isinstance(v, Prior) for v in prior.values())
    if not ok or set(prior) - set(_PRIOR_KEYS):
        raise SpecError(f"`prior` must be a dict of Priors keyed by {list(_PRIOR_KEYS)} (those "
                        f"not given are flat), got {prior!r}.")
    if all(p.is_flat for p in prior.values()):
        raise SpecError("`prior` has only flat priors: the MAP would be the MLE. Give a proper "
                        "prior for at least one of intercept, sd, sigma.")
    return dict(prior)


def _summaries(table: pd.DataFrame, truth: Mapping[str, float]):
    ok = table[table["status"] == "ok"]
    rows = []
    for (regime, groups, size, param), part in ok.groupby(
            ["regime", "groups", "group_size", "parameter"], sort=False):
        d = part["abs_map_mle"].to_numpy()
        e2 = part["mle_error"].to_numpy() ** 2
        r = d.size
        rmse = float(np.sqrt(e2.mean()))
        mse_se = float(e2.std(ddof=1) / np.sqrt(r)) if r > 1 else np.nan
        rows.append({"regime": regime, "groups": groups, "group_size": size,
                     "n": groups * size, "parameter": param, "n_ok": r,
                     "mean_abs_map_mle": float(d.mean()),
                     "mcse": float(d.std(ddof=1) / np.sqrt(r)) if r > 1 else np.nan,
                     "rmse_mle": rmse, "rmse_mcse": mse_se / (2 * rmse) if rmse > 0 else np.nan})
    summary = pd.DataFrame(rows)
    slopes, slopes_se, eslopes, eslopes_se = {}, {}, {}, {}
    for (regime, param), part in summary.groupby(["regime", "parameter"], sort=False):
        x = part["n"].to_numpy(float)
        slopes[(param, regime)], slopes_se[(param, regime)] = _log_slope(
            x, part["mean_abs_map_mle"].to_numpy(), part["mcse"].to_numpy())
        eslopes[(param, regime)], eslopes_se[(param, regime)] = _log_slope(
            x, part["rmse_mle"].to_numpy(), part["rmse_mcse"].to_numpy())

    def frame(values: dict) -> pd.DataFrame:
        regimes = list(dict.fromkeys(r for _, r in values))
        return pd.DataFrame({r: [values.get((p, r), np.nan) for p in PARAMETERS]
                             for r in regimes}, index=list(PARAMETERS))

    sig = ok[ok["parameter"] == "sigma"]
    s = truth["sigma"]
    ns_rows = []
    for (regime, groups, size), part in sig.groupby(["regime", "groups", "group_size"],
                                                    sort=False):
        fe = part["fixed_effects"].to_numpy()
        r = fe.size
        ns_rows.append({
            "regime": regime, "groups": groups, "group_size": size, "n_ok": r,
            "fixed_ratio": float(fe.mean() / s),
            "fixed_ratio_mcse": float(fe.std(ddof=1) / np.sqrt(r) / s) if r > 1 else np.nan,
            "fixed_var_ratio": float(np.mean(fe ** 2) / s ** 2),
            "fixed_var_ratio_mcse": float(np.std(fe ** 2, ddof=1) / np.sqrt(r) / s ** 2)
            if r > 1 else np.nan,
            "theory_ratio": float(np.sqrt((size - 1) / size)),
            "mle_ratio": float(part["mle"].mean() / s)})
    return (summary, frame(slopes), frame(slopes_se), frame(eslopes), frame(eslopes_se),
            pd.DataFrame(ns_rows))


def group_growth(truth: Mapping[str, float], *, grow: Sequence[str] | str = REGIMES,
                 sizes: Sequence[int] = (5, 10, 20, 40), base_groups: int = 10,
                 base_size: int = 5, prior: Mapping[str, Prior] | None = None, reps: int = 20,
                 random_seed: int | None = None, executor=None) -> GroupGrowthResult:
    """Grow the number of groups or their size: MAP vs MLE, MLE error, Neyman-Scott.

    Parameters
    ----------
    truth : dict
        ``{"mu": float, "sd": float, "sigma": float}`` of the simulated model (mu default 0,
        sd >= 0, sigma > 0).
    grow : {"groups", "group_size"} or both, default both
        ``"groups"``: ``J`` takes the values of ``sizes`` with ``m = base_size``;
        ``"group_size"``: ``m`` takes them with ``J = base_groups``.
    sizes : sequence of int, default (5, 10, 20, 40)
        The growing size (integers >= 2).
    base_groups : int, default 10
        ``J`` while the group size grows (>= 2).
    base_size : int, default 5
        ``m`` while the number of groups grows (>= 2).
    prior : dict of Prior, optional
        Priors of the MAP keyed by ``"intercept"``, ``"sd"``, ``"sigma"`` (missing keys are
        flat). Default ``Normal(1.0)``, ``HalfNormal(1.0)``, ``HalfNormal(1.0)``.
    reps : int, default 20
        Replicates per regime and size (>= 2).
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent and recorded in
        ``settings``); every (regime, size, replicate) has its own stream.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates.

    Returns
    -------
    GroupGrowthResult
        ``.table``, ``.summary()``, ``.slopes``, ``.error_slopes``, ``.neyman_scott``,
        ``.ns_ratio``, ``.plot()``.

    Raises
    ------
    SpecError
        A bad ``truth``, ``grow``, ``sizes``, base size, ``prior``, ``reps`` or seed.

    Examples
    --------
    With the group effects as fixed parameters, sigma's MLE heads for ``sigma sqrt(1/2)``
    when groups have two observations each; the marginal MLE does not:

    >>> from bayesmle import studies
    >>> res = studies.group_growth({"sd": 1.0, "sigma": 1.0}, grow="groups", sizes=[100],
    ...                            base_size=2, reps=4, random_seed=2)
    >>> round(res.ns_theory, 3), bool(abs(res.ns_ratio - res.ns_theory) < 0.05)
    (0.707, True)
    >>> bool(abs(res.mle_sigma_ratio - 1.0) < 0.1)
    True
    """
    truth = check_truth(truth)
    regimes = _check_grow(grow)
    sizes = check_ns(sizes, minimum=2, name="sizes")
    base_groups = check_group_count(base_groups, "base_groups")
    base_size = check_group_count(base_size, "base_size")
    prior = _check_prior(prior)
    layouts = [(regime, (s, base_size) if regime == "groups" else (base_groups, s))
               for regime in regimes for s in sizes]
    reps = check_reps(reps, minimum=2, ns=[J * m for _, (J, m) in layouts])
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, len(layouts) * reps)
    tasks = [_Task(truth, prior, regime, J, m, r, seeds[i * reps + r])
             for i, (regime, (J, m)) in enumerate(layouts) for r in range(reps)]
    rows = [row for out in run_tasks(_run, tasks, executor) for row in out]
    table = pd.DataFrame(rows, columns=["regime", "groups", "group_size", "n", "replicate",
                                        "parameter", "truth", "mle", "map", "abs_map_mle",
                                        "mle_error", "fixed_effects", "status"])
    summary, slopes, slopes_se, eslopes, eslopes_se, ns = _summaries(table, truth)
    ns_ratio = ns_theory = mle_ratio = float("nan")
    if "groups" in regimes and len(ns):
        last = ns[ns["regime"] == "groups"].sort_values("groups").iloc[-1]
        ns_ratio, ns_theory = float(last["fixed_ratio"]), float(last["theory_ratio"])
        mle_ratio = float(last["mle_ratio"])
    return GroupGrowthResult(
        table=table,
        settings={"truth": truth, "grow": list(regimes), "sizes": sizes,
                  "base_groups": base_groups, "base_size": base_size,
                  "prior": {k: repr(v) for k, v in prior.items()}, "reps": reps,
                  "random_seed": random_seed},
        per_size=summary, slopes=slopes, slopes_mcse=slopes_se, error_slopes=eslopes,
        error_slopes_mcse=eslopes_se, neyman_scott=ns, ns_ratio=ns_ratio, ns_theory=ns_theory,
        mle_sigma_ratio=mle_ratio,
    )
