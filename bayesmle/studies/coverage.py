"""Empirical coverage of Wald, profile-likelihood and posterior credible intervals over n.

A 95% interval method is *calibrated* if, over repeated data sets, its intervals contain the
true parameter 95% of the time. The study simulates replicate data sets, computes each
method's intervals, and reports the fraction that cover, with its Monte Carlo standard error
``sqrt(c (1 − c) / reps)``.

* ``"wald"`` -- ``estimate ± z · stderr`` from the observed information at the MLE.
* ``"profile"`` -- the inverted likelihood-ratio test (:mod:`bayesmle.inference.profile`);
  invariant under reparametrisation, typically much closer to nominal at small n.
* ``"posterior"`` -- equal-tailed NUTS credible interval under ``prior``. Frequentist coverage
  of a credible interval at a *fixed* true value is not guaranteed; averaged over true values
  drawn from the prior it is exactly ``level`` (pass ``true_params=None`` and let
  ``simulate`` draw the truth).

Replicates whose MLE does not exist (separation in a logistic regression, all-zero counts) or
cannot be certified have no Wald or profile interval: they are counted in ``n_failed`` and
excluded from those methods' coverage (coverage is then *conditional on the MLE existing*,
which is how such intervals are used in practice). The posterior does not need the MLE and
uses every replicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_level, check_seed
from bayesmle.errors import MLENotFoundError, SpecError
from bayesmle.inference.driver import run
from bayesmle.inference.profile import profile_table
from bayesmle.priors import Flat, HalfFlat, Prior
from bayesmle.studies._common import build, check_builder, fit_quietly, new_figure, prior_kwargs
from bayesmle.studies._runner import StudyResult, check_ns, check_reps, run_tasks, task_rngs

__all__ = ["CoverageResult", "coverage"]

METHODS = ("wald", "profile", "posterior")


@dataclass(frozen=True)
class _Task:
    builder: Callable
    simulate: Callable
    true_params: dict[str, float] | None
    n: int
    replicate: int
    seed: np.random.SeedSequence
    level: float
    methods: tuple[str, ...]
    priors: dict[str, Prior]
    nuts_options: dict[str, Any]


def _simulate(task: _Task, rng: np.random.Generator) -> tuple[dict, dict[str, float]]:
    out = task.simulate(task.n, rng)
    if task.true_params is None:
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Mapping)
                and isinstance(out[1], Mapping)):
            raise SpecError("With true_params=None, `simulate(n, rng)` must return a pair "
                            "(data dict, true parameter dict), got "
                            f"{type(out).__name__}.")
        data, truth = out
    else:
        if not isinstance(out, Mapping):
            raise SpecError(f"`simulate(n, rng)` must return a dict of the builder's data "
                            f"arguments, got {type(out).__name__}.")
        data, truth = out, task.true_params
    return dict(data), {str(k): float(v) for k, v in truth.items()}


def _check_labels(truth: Mapping[str, float], labels: Sequence[str]) -> None:
    bad = [k for k in truth if k not in labels]
    if bad:
        raise SpecError(f"`true_params` names unknown parameter label(s) {bad}. Valid labels "
                        f"for this model: {list(labels)}.")


def _rows(base: dict, method: str, truth: Mapping[str, float], ci: pd.DataFrame | None,
          status: str) -> list[dict]:
    rows = []
    lower = ci["lower"].to_dict() if ci is not None else {}
    upper = ci["upper"].to_dict() if ci is not None else {}
    for label, value in truth.items():
        if ci is None:
            rows.append({**base, "method": method, "parameter": label, "true_value": value,
                         "lower": np.nan, "upper": np.nan, "covered": np.nan,
                         "status": status})
            continue
        lo, hi = float(lower[label]), float(upper[label])
        rows.append({**base, "method": method, "parameter": label, "true_value": value,
                     "lower": lo, "upper": hi, "covered": float(lo <= value <= hi),
                     "status": status})
    return rows


def _run(task: _Task) -> list[dict]:
    rng = np.random.default_rng(task.seed)
    data, truth = _simulate(task, rng)
    base = {"n": task.n, "replicate": task.replicate}
    rows: list[dict] = []
    point = [m for m in task.methods if m in ("wald", "profile")]
    if point:
        mle, status = None, "ok"
        try:
            mle, converged = fit_quietly(build(task.builder, data), "mle")
            status = "ok" if converged else "not_converged"
        except MLENotFoundError:
            status = "no_mle"
        if status == "ok":
            _check_labels(truth, mle.labels)
        for method in point:
            ci, m_status = None, status
            if status == "ok":
                if method == "wald":
                    ci = mle.conf_int(level=task.level)
                else:
                    ci, unconverged = profile_table(mle, level=task.level, labels=list(truth))
                    if unconverged:
                        ci, m_status = None, "profile_not_converged"
            rows += _rows(base, method, truth, ci, m_status)
    if "posterior" in task.methods:
        spec = build(task.builder, data, task.priors)
        post = run(spec, "nuts", **task.nuts_options)
        _check_labels(truth, list(post.mean().index))
        rows += _rows(base, "posterior", truth, post.interval(level=task.level),
                      "ok" if not post.diagnostics else "bad_diagnostics")
    return rows


@dataclass(frozen=True, eq=False, repr=False)
class CoverageResult(StudyResult):
    """Result of :func:`coverage`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per n, method and parameter: ``n``, ``method``, ``parameter``, ``n_ok``
        (replicates with an interval), ``n_failed`` (no MLE, or not certified: excluded),
        ``coverage``, ``mc_se`` (``sqrt(c (1 − c) / n_ok)``), ``miss_low`` / ``miss_high``
        (fractions of intervals entirely above / below the truth), ``median_width`` and
        ``n_bad_diagnostics`` (posterior fits with a SamplingWarning; they are kept).
    intervals : pandas.DataFrame
        Every replicate's interval: ``n``, ``replicate``, ``method``, ``parameter``,
        ``true_value``, ``lower``, ``upper``, ``covered`` (NaN where excluded) and
        ``status`` (``"ok"``, ``"no_mle"``, ``"not_converged"``, ``"profile_not_converged"``,
        ``"bad_diagnostics"``).
    coverages : pandas.DataFrame
        ``coverage`` with index (n, parameter) and one column per method.
    level : float
        The nominal level.
    n_failed : dict of str to int
        Excluded replicates per method (summed over n).

    Examples
    --------
    >>> from bayesmle import models, studies
    >>> def simulate(n, rng):
    ...     return {"y": rng.normal(1.0, 1.0, size=n)}
    >>> res = studies.coverage(models.gaussian, simulate, {"mu": 1.0, "sigma": 1.0},
    ...                        ns=[20, 40], reps=2, methods=("wald", "profile"))
    >>> res.intervals.columns.tolist()
    ['n', 'replicate', 'method', 'parameter', 'true_value', 'lower', 'upper', 'covered', 'status']
    >>> res.n_failed
    {'wald': 0, 'profile': 0}
    """

    intervals: pd.DataFrame | None = None
    coverages: pd.DataFrame | None = None
    level: float = 0.95
    n_failed: dict[str, int] | None = None

    def plot(self):
        """Coverage against n per method (one panel per parameter), with ±1.96 MC se."""
        params = list(dict.fromkeys(self.table["parameter"]))
        fig, axes = new_figure(ncols=len(params), width=4.5, height=3.8)
        for ax, label in zip(axes, params, strict=True):
            sub = self.table[self.table["parameter"] == label]
            for method, group in sub.groupby("method", sort=False):
                ax.errorbar(group["n"], group["coverage"], yerr=1.96 * group["mc_se"],
                            fmt="o-", ms=4, capsize=3, label=str(method))
            ax.axhline(self.level, color="k", ls="--", lw=1, label=f"nominal {self.level:g}")
            ax.set(xscale="log", xlabel="n", ylabel="empirical coverage", title=label)
            ax.legend(fontsize=7)
        return fig


def _proper_priors(builder: Callable, data: Mapping, priors: Mapping[str, Prior]) -> None:
    spec = build(builder, data, priors)
    improper = sorted(k for k, p in spec.priors.items() if isinstance(p, Flat | HalfFlat))
    if improper:
        raise SpecError(
            f"method 'posterior' needs proper priors, but the prior(s) of {improper} are "
            "improper (flat). Pass prior= (a Prior for a regression's coefficients, or a dict "
            "of builder keywords such as {'intercept_prior': Normal(5.0), 'prior': "
            "Normal(2.0)} or {'p_prior': Beta(2, 2)}) giving every parameter a proper prior.")


def coverage(
    builder: Callable,
    simulate: Callable[[int, np.random.Generator], Any],
    true_params: Mapping[str, float] | None,
    ns: Sequence[int],
    reps: int,
    level: float = 0.95,
    methods: Sequence[str] = METHODS,
    random_seed: int | None = None,
    executor=None,
    prior: Prior | Mapping[str, Prior] | None = None,
    nuts_options: Mapping[str, Any] | None = None,
) -> CoverageResult:
    """Empirical coverage of Wald, profile-likelihood and posterior intervals over n.

    Parameters
    ----------
    builder : callable
        A model builder, e.g. :func:`bayesmle.models.logistic_regression`.
    simulate : callable
        ``simulate(n, rng)`` returning the builder's data arguments as a dict (e.g.
        ``{"X": X, "y": y}``); with ``true_params=None`` it returns ``(data, truth)`` with the
        true values drawn per replicate (e.g. from the prior). Must be picklable
        (module-level) for process-based executors.
    true_params : dict or None
        True values by the spec's labels (``"coef[x0]"``, ``"intercept"``, ``"p"``...); only
        these parameters are assessed.
    ns : sequence of int
        Sample sizes.
    reps : int
        Replicates per sample size.
    level : float, default 0.95
        Nominal level of every interval.
    methods : sequence of {"wald", "profile", "posterior"}
        Interval methods to assess.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Seed; each (n, replicate) has its own stream (data and NUTS seed), so serial and
        parallel runs agree.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates.
    prior : Prior or dict, optional
        Priors of the posterior (a Prior is given to the builder as ``prior=``, a dict as
        builder keywords). Required for ``"posterior"`` unless the builder's defaults are
        proper for every parameter (e.g. ``bernoulli``'s Beta(1, 1)).
    nuts_options : dict, optional
        Options of the NUTS fits (default ``draws=500, tune=500, chains=2``).

    Returns
    -------
    CoverageResult
        ``.table``, ``.intervals``, ``.coverages``, ``.n_failed``, ``.plot()``.

    Raises
    ------
    SpecError
        Unknown methods, a bad level, an improper prior for ``"posterior"``, labels of
        ``true_params`` that the model does not report, or a malformed ``simulate``.

    Examples
    --------
    Wald and profile intervals of a Gaussian's parameters (two replicates per n only show the
    layout; coverage needs hundreds):

    >>> from bayesmle import models, studies
    >>> def simulate(n, rng):
    ...     return {"y": rng.normal(1.0, 1.0, size=n)}
    >>> res = studies.coverage(models.gaussian, simulate, {"mu": 1.0, "sigma": 1.0},
    ...                        ns=[20, 40], reps=2, methods=("wald", "profile"))
    >>> res.coverages.columns.tolist(), res.coverages.index.tolist()
    (['wald', 'profile'], [(20, 'mu'), (20, 'sigma'), (40, 'mu'), (40, 'sigma')])
    >>> res.table.columns.tolist()[:6]
    ['n', 'method', 'parameter', 'n_ok', 'n_failed', 'coverage']
    """
    check_builder(builder)
    if not callable(simulate):
        raise SpecError(f"`simulate` must be a function simulate(n, rng) -> dict, got "
                        f"{simulate!r}.")
    if true_params is not None:
        if not isinstance(true_params, Mapping) or not true_params:
            raise SpecError(f"`true_params` must be a non-empty dict of label -> value (or None "
                            f"when simulate returns the truth), got {true_params!r}.")
        try:
            true_params = {str(k): float(v) for k, v in true_params.items()}
        except (TypeError, ValueError):
            raise SpecError(f"`true_params` values must be numbers, got {true_params!r}."
                            ) from None
    if isinstance(methods, str):
        methods = (methods,)
    if not isinstance(methods, Sequence | set | frozenset):
        raise SpecError(f"`methods` must be a sequence of names from {list(METHODS)}, got "
                        f"{methods!r}.")
    methods = tuple(methods)
    bad = [m for m in methods if not isinstance(m, str) or m not in METHODS]
    if bad or not methods or len(set(methods)) != len(methods):
        raise SpecError(f"`methods` must be distinct names from {list(METHODS)}, got "
                        f"{list(methods)}.")
    level = check_level(level)
    ns = check_ns(ns)
    reps = check_reps(reps, ns=ns)
    priors = prior_kwargs(prior)
    nuts = {"draws": 500, "tune": 500, "chains": 2, "progressbar": False,
            **dict(nuts_options or {})}
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, len(ns) * reps)
    if "posterior" in methods:
        probe = _Task(builder, simulate, true_params, ns[0], 0, seeds[0], level, methods,
                      priors, nuts)
        _proper_priors(builder, _simulate(probe, np.random.default_rng(seeds[0]))[0], priors)
    tasks = []
    for i, n in enumerate(ns):
        for r in range(reps):
            seed = seeds[i * reps + r]
            opts = dict(nuts)
            if "random_seed" not in (nuts_options or {}):
                child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 0))
                opts["random_seed"] = int(child.generate_state(1)[0])
            tasks.append(_Task(builder, simulate, true_params, n, r, seed, level, methods,
                               priors, opts))
    rows = [row for out in run_tasks(_run, tasks, executor) for row in out]
    intervals = pd.DataFrame(rows, columns=["n", "replicate", "method", "parameter",
                                            "true_value", "lower", "upper", "covered",
                                            "status"])
    table = _summarise(intervals, methods)
    coverages = table.pivot(index=["n", "parameter"], columns="method",
                            values="coverage")[list(methods)]
    n_failed = {m: int(table.loc[table["method"] == m]
                       .groupby("n")["n_failed"].first().sum()) for m in methods}
    return CoverageResult(
        table=table,
        settings={"builder": getattr(builder, "__name__", repr(builder)),
                  "true_params": true_params, "ns": ns, "reps": reps, "level": level,
                  "methods": methods, "prior": {k: repr(v) for k, v in priors.items()},
                  "nuts_options": {k: v for k, v in nuts.items() if k != "random_seed"},
                  "random_seed": random_seed},
        intervals=intervals, coverages=coverages, level=level, n_failed=n_failed,
    )


def _summarise(intervals: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    rows = []
    for (n, method, label), group in intervals.groupby(["n", "method", "parameter"],
                                                       sort=False):
        ok = group[group["covered"].notna()]
        k = len(ok)
        c = float(ok["covered"].mean()) if k else np.nan
        below = ok["true_value"] < ok["lower"]
        above = ok["true_value"] > ok["upper"]
        rows.append({
            "n": n, "method": method, "parameter": label, "n_ok": k,
            "n_failed": int(len(group) - k), "coverage": c,
            "mc_se": float(np.sqrt(c * (1 - c) / k)) if k else np.nan,
            "miss_low": float(below.mean()) if k else np.nan,
            "miss_high": float(above.mean()) if k else np.nan,
            "median_width": float((ok["upper"] - ok["lower"]).median()) if k else np.nan,
            "n_bad_diagnostics": int((group["status"] == "bad_diagnostics").sum()),
        })
    table = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(methods)}
    table = table.sort_values(["n", "method"],
                              key=lambda s: s.map(order) if s.name == "method" else s,
                              kind="stable").reset_index(drop=True)
    return table
