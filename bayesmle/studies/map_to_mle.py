"""MAP → MLE as n grows: |MAP − MLE| = O(1/n) for any fixed smooth-enough prior.

With ``n`` observations the log-likelihood grows like ``n`` while the log-prior stays fixed, so
the MAP moves away from the MLE by ``-(H_n)^{-1} ∇ log p(θ̂) = O(1/n)`` (``H_n`` the observed
information). On a log-log plot the mean distance against ``n`` has slope −1 — for a Gaussian
prior and, once no coefficient sits at a kink (true coefficients not zero), for a Laplace prior
too. The posterior mean differs from the MLE by ``O(1/n)`` as well (prior *and* skewness terms).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.priors import Prior
from bayesmle.studies._common import build, check_builder, fit_quietly, new_figure, prior_kwargs
from bayesmle.studies._runner import StudyResult, check_ns, check_reps, run_tasks, task_rngs

__all__ = ["MapToMleResult", "map_to_mle"]


@dataclass(frozen=True)
class _Task:
    builder: Callable
    simulate: Callable
    priors: dict[str, Prior]
    n: int
    replicate: int
    seed: np.random.SeedSequence
    posterior: bool
    nuts_options: dict[str, Any]


def _run(task: _Task) -> list[dict]:
    rng = np.random.default_rng(task.seed)
    data = task.simulate(task.n, rng)
    if not isinstance(data, Mapping):
        raise SpecError(f"`simulate(n, rng)` must return a dict of the builder's data "
                        f"arguments, got {type(data).__name__}.")
    base = {"n": task.n, "replicate": task.replicate}
    try:
        spec = build(task.builder, data, task.priors)
        mle, mle_ok = fit_quietly(spec, "mle")
        map_, map_ok = fit_quietly(spec, "map")
    except BayesMLEError as exc:
        return [{**base, "parameter": None, "status": type(exc).__name__}]
    post_mean = None
    if task.posterior:
        post = fit_quietly(spec, "nuts", **task.nuts_options)[0]
        post_mean = post.mean()
    status = "ok" if (mle_ok and map_ok) else "not_converged"
    rows = []
    for label, a, b in zip(mle.labels, mle.flat_params(), map_.flat_params(), strict=True):
        rows.append({
            **base, "parameter": label, "mle": a, "map": b, "abs_map_mle": abs(b - a),
            "abs_post_mle": abs(post_mean[label] - a) if post_mean is not None else np.nan,
            "status": status,
        })
    return rows


def _slope(frame: pd.DataFrame, column: str) -> float:
    means = frame.groupby("n")[column].mean()
    means = means[np.isfinite(means) & (means > 0)]
    if len(means) < 2:
        return float("nan")
    return float(np.polyfit(np.log(means.index.to_numpy(float)), np.log(means.to_numpy()), 1)[0])


@dataclass(frozen=True, eq=False, repr=False)
class MapToMleResult(StudyResult):
    """Result of :func:`map_to_mle`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per n, replicate and parameter: ``mle``, ``map``, ``abs_map_mle``,
        ``abs_post_mle`` (NaN where the posterior was not sampled), ``status`` (``"ok"``,
        ``"not_converged"``, or the error that made the replicate fail, e.g.
        ``"MLENotFoundError"``: such replicates have no parameter rows).
    slope : float
        Least-squares slope of log(mean |MAP − MLE|) against log(n), the mean taken over
        replicates and parameters (theory: −1).
    slopes : pandas.Series
        The same slope per parameter.
    posterior_slope : float
        The slope of the posterior mean's distance to the MLE (NaN unless sampled at ≥ 2 n).
    n_failed : int
        Replicates without a result (MLE does not exist, ...), excluded from the slopes.

    Examples
    --------
    >>> import bayesmle as bm
    >>> from bayesmle import models, studies
    >>> def simulate(n, rng):
    ...     return {"y": rng.normal(1.0, 1.0, size=n)}
    >>> m2m = studies.map_to_mle(models.gaussian, simulate, {"mu_prior": bm.Normal(1.0)},
    ...                          ns=[20, 80], reps=2, random_seed=0)
    >>> m2m.summary().shape  # mean distances per n and parameter
    (4, 2)
    >>> type(m2m.plot()).__name__
    'Figure'
    """

    slope: float = float("nan")
    slopes: pd.Series | None = None
    posterior_slope: float = float("nan")
    n_failed: int = 0

    def summary(self) -> pd.DataFrame:
        """Mean |MAP − MLE| (and |posterior mean − MLE|) per n and parameter."""
        ok = self.table[self.table["parameter"].notna()]
        return ok.groupby(["n", "parameter"])[["abs_map_mle", "abs_post_mle"]].mean()

    def plot(self):
        """Log-log plot of |MAP − MLE| against n with the fitted and the theoretical slope."""
        fig, (ax,) = new_figure(width=6.0, height=4.5)
        ok = self.table[self.table["parameter"].notna()]
        per = ok.groupby(["parameter", "n"])["abs_map_mle"].mean()
        for label, series in per.groupby(level="parameter"):
            ns = series.index.get_level_values("n").to_numpy(float)
            ax.plot(ns, series.to_numpy(), "o-", ms=3, lw=1, alpha=0.8, label=str(label))
        overall = ok.groupby("n")["abs_map_mle"].mean()
        ns = overall.index.to_numpy(float)
        ax.plot(ns, overall.to_numpy(), "k-", lw=2.5, label=f"mean (slope {self.slope:.2f})")
        if np.isfinite(overall.iloc[0]) and overall.iloc[0] > 0:
            ax.plot(ns, overall.iloc[0] * ns[0] / ns, "k:", lw=1.5, label="theory: 1/n")
        post = ok.groupby("n")["abs_post_mle"].mean().dropna()
        if len(post):
            ax.plot(post.index, post.to_numpy(), "s--", color="tab:red", ms=5,
                    label=f"|posterior mean − MLE| (slope {self.posterior_slope:.2f})")
        ax.set(xscale="log", yscale="log", xlabel="n (observations)",
               ylabel="mean |MAP − MLE|", title="MAP → MLE as n grows")
        ax.legend(fontsize=7)
        return fig


def map_to_mle(
    builder: Callable,
    simulate: Callable[[int, np.random.Generator], Mapping[str, Any]],
    prior: Prior | Mapping[str, Prior],
    ns: Sequence[int],
    reps: int = 20,
    random_seed: int | None = None,
    executor=None,
    *,
    posterior_ns: Sequence[int] = (),
    nuts_options: Mapping[str, Any] | None = None,
) -> MapToMleResult:
    """How fast the MAP approaches the MLE as the sample grows.

    Parameters
    ----------
    builder : callable
        A model builder, e.g. :func:`bayesmle.models.linear_regression`.
    simulate : callable
        ``simulate(n, rng) -> dict`` of the builder's data arguments (e.g. ``{"X": X, "y":
        y}``) for a data set of ``n`` observations drawn with ``rng``. Must be picklable (a
        module-level function) when ``executor`` is process-based.
    prior : Prior or dict
        The fixed prior: a Prior is passed as ``prior=`` (the coefficients of a regression);
        a dict is passed as builder keywords (``{"mu_prior": Normal(1.0)}``).
    ns : sequence of int
        Sample sizes (e.g. ``np.geomspace(20, 20_000, 8).astype(int)``).
    reps : int, default 20
        Replicates per sample size.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Seed; every (n, replicate) gets its own stream, so serial and parallel runs agree.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates (process pool, ``distributed.Client().get_executor()``).
    posterior_ns : sequence of int, optional
        Sample sizes (a subset of ``ns``) at which the NUTS posterior mean is also computed.
    nuts_options : dict, optional
        Options of the NUTS fits (default ``draws=500, tune=500, chains=2``; the seed is
        derived from ``random_seed``).

    Returns
    -------
    MapToMleResult
        ``.table``, ``.slope``, ``.slopes``, ``.posterior_slope``, ``.plot()``.

    Examples
    --------
    How fast a ``Normal(1.0)`` prior on a Gaussian mean stops mattering (two replicates at
    two sample sizes; use more of both for a real study):

    >>> import bayesmle as bm
    >>> from bayesmle import models, studies
    >>> def simulate(n, rng):
    ...     return {"y": rng.normal(1.0, 1.0, size=n)}
    >>> m2m = studies.map_to_mle(models.gaussian, simulate, {"mu_prior": bm.Normal(1.0)},
    ...                          ns=[20, 80], reps=2, random_seed=0)
    >>> m2m.table.columns.tolist()
    ['n', 'replicate', 'parameter', 'mle', 'map', 'abs_map_mle', 'abs_post_mle', 'status']
    >>> m2m.n_failed, round(m2m.slope, 1)  # theory: -1
    (0, -0.8)
    """
    check_builder(builder)
    if not callable(simulate):
        raise SpecError(f"`simulate` must be a function simulate(n, rng) -> dict, got "
                        f"{simulate!r}.")
    priors = prior_kwargs(prior)
    if not priors:
        raise SpecError("`prior` is required: the MAP under a flat prior is the MLE.")
    ns = check_ns(ns)
    reps = check_reps(reps, ns=ns)
    post_ns = set(check_ns(posterior_ns)) if len(posterior_ns) else set()
    if not post_ns <= set(ns):
        raise SpecError(f"`posterior_ns` {sorted(post_ns)} must be a subset of `ns` {ns}.")
    nuts = {"draws": 500, "tune": 500, "chains": 2, "progressbar": False,
            **dict(nuts_options or {})}
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, len(ns) * reps)
    tasks = []
    for i, n in enumerate(ns):
        for r in range(reps):
            seed = seeds[i * reps + r]
            opts = dict(nuts)
            opts.setdefault("random_seed", int(seed.generate_state(1)[0]))
            tasks.append(_Task(builder, simulate, priors, n, r, seed, n in post_ns, opts))
    rows = [row for out in run_tasks(_run, tasks, executor) for row in out]
    table = pd.DataFrame(rows, columns=["n", "replicate", "parameter", "mle", "map",
                                        "abs_map_mle", "abs_post_mle", "status"])
    ok = table[table["parameter"].notna()]
    failed = table[table["parameter"].isna()]
    slopes = pd.Series({label: _slope(group, "abs_map_mle")
                        for label, group in ok.groupby("parameter", sort=False)}, name="slope")
    return MapToMleResult(
        table=table,
        settings={"builder": getattr(builder, "__name__", repr(builder)),
                  "prior": {k: repr(v) for k, v in priors.items()}, "ns": ns, "reps": reps,
                  "random_seed": random_seed},
        slope=_slope(ok, "abs_map_mle"),
        slopes=slopes,
        posterior_slope=_slope(ok.dropna(subset=["abs_post_mle"]), "abs_post_mle"),
        n_failed=len(failed),
    )
