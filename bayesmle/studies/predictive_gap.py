"""Held-out predictive accuracy as n grows: plug-in (MLE, MAP) against posterior predictives.

The predictive twin of :func:`~bayesmle.studies.map_to_mle`. For every sample size ``n`` and
replicate a training set of ``n`` observations and a held-out test set of ``n_test``
observations are drawn from the same generator (``simulate(n, rng)`` then
``simulate(n_test, rng)``, one seeded stream per (n, replicate)); each method is fitted on the
training set and scored on the test set by the mean log predictive density per observation,
``mean_i log mean_s p(y_i | theta_s)`` (:func:`~bayesmle.inference.predictive.log_score`): one
``theta`` for a plug-in MLE/MAP, the Laplace draws, the NUTS posterior draws.

What to expect. The plug-in predictive ignores the uncertainty of the estimate, so it is too
narrow; averaging over the posterior widens it. With a well-specified model the posterior
predictive (Laplace in a Gaussian-posterior model, NUTS in general) scores at least as well as
the plug-in on average at small ``n`` -- it is the optimal predictive in expectation over the
prior; for one fixed truth this holds typically, not always (a few replicates may say
otherwise) -- and the gap ``score(plug-in) - score(posterior)`` shrinks like ``O(1/n)``: the
expected excess log loss of the plug-in is ``d / (2 n) + o(1/n)`` for ``d`` parameters
(Akaike), that of the posterior predictive smaller at small ``n``; both vanish. On a log-x
plot the lines of every method rise towards the same limit, minus the entropy of the true
data distribution, and merge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import MAX_DRAWS, check_int, check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.priors import Prior
from bayesmle.studies._common import build, check_builder, fit_quietly, new_figure, prior_kwargs
from bayesmle.studies._runner import (
    MAX_N,
    StudyResult,
    check_ns,
    check_reps,
    run_tasks,
    task_rngs,
)

__all__ = ["PredictiveGapResult", "check_methods", "check_n_test", "predictive_gap"]

#: Methods a predictive-gap study may compare.
METHODS = ("mle", "map", "laplace", "nuts")
#: The reference ("posterior-like") method, in order of preference.
POSTERIOR_METHODS = ("nuts", "laplace")
#: Laplace draws per fit unless ``laplace_draws`` says otherwise.
LAPLACE_DRAWS = 2000
COLUMNS = ["n", "replicate", "method", "log_score", "status"]


def check_n_test(n_test: Any) -> int:
    """Validate the size of a held-out test set: an integer in [1, MAX_N].

    Examples
    --------
    >>> from bayesmle.studies.predictive_gap import check_n_test
    >>> check_n_test(500)
    500
    >>> check_n_test(0)
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `n_test` must be an integer >= 1 and <= 10,000,000, got 0.
    """
    return check_int("n_test", n_test, 1, MAX_N)


def check_methods(methods: Any) -> tuple[str, ...]:
    """Validate the methods of a study: a non-empty sequence of distinct names in ``METHODS``.

    Examples
    --------
    >>> from bayesmle.studies.predictive_gap import check_methods
    >>> check_methods(["mle", "laplace"])
    ('mle', 'laplace')
    >>> check_methods(["mle", "advi"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `methods` must be a non-empty sequence of distinct names ...
    """
    ok = (not isinstance(methods, str | bytes) and isinstance(methods, Sequence)
          and len(methods) > 0 and all(isinstance(m, str) and m in METHODS for m in methods)
          and len(set(methods)) == len(methods))
    if not ok:
        raise SpecError(f"`methods` must be a non-empty sequence of distinct names among "
                        f"{list(METHODS)}, got {methods!r}.")
    return tuple(methods)


@dataclass(frozen=True)
class _Task:
    builder: Callable
    simulate: Callable
    priors: dict[str, Prior]
    n: int
    n_test: int
    replicate: int
    seed: np.random.SeedSequence
    methods: tuple[str, ...]
    laplace_draws: int
    nuts_options: dict[str, Any]


def _simulated(task: _Task, n: int, rng: np.random.Generator) -> Mapping[str, Any]:
    data = task.simulate(n, rng)
    if not isinstance(data, Mapping):
        raise SpecError(f"`simulate(n, rng)` must return a dict of the builder's data "
                        f"arguments, got {type(data).__name__}.")
    return data


def _run(task: _Task) -> list[dict]:
    rng = np.random.default_rng(task.seed)
    train = _simulated(task, task.n, rng)
    test = _simulated(task, task.n_test, rng)
    base = {"n": task.n, "replicate": task.replicate}
    draws_seed = int(task.seed.generate_state(1)[0])
    try:
        spec = build(task.builder, train, task.priors)
    except BayesMLEError as exc:
        return [{**base, "method": m, "log_score": np.nan, "status": type(exc).__name__}
                for m in task.methods]
    rows = []
    for method in task.methods:
        options: dict[str, Any] = {}
        if method == "laplace":
            options = {"draws": task.laplace_draws, "random_seed": draws_seed}
        elif method == "nuts":
            options = {"random_seed": draws_seed, **task.nuts_options}
        try:
            result, ok = fit_quietly(spec, method, **options)
            score = float(np.mean(result_score(result, test)))
        except BayesMLEError as exc:
            rows.append({**base, "method": method, "log_score": np.nan,
                         "status": type(exc).__name__})
            continue
        if method == "nuts":
            ok = ok and not result.problems()
        rows.append({**base, "method": method, "log_score": score,
                     "status": "ok" if ok else "not_converged"})
    return rows


def result_score(result: Any, data: Mapping[str, Any]) -> np.ndarray:
    """Pointwise held-out log predictive density of ``result`` on ``data`` (with the response).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> from bayesmle.studies.predictive_gap import result_score
    >>> mle = bm.fit(bm.models.gaussian(np.array([-1.0, 0.0, 1.0])), "mle")
    >>> np.round(result_score(mle, {"y": np.array([0.0])}), 4).tolist()  # N(0, sqrt(2/3))
    [-0.7162]
    """
    from bayesmle.inference.predictive import log_score

    return log_score(result, dict(data))


def _reference(methods: Sequence[str]) -> str | None:
    return next((m for m in POSTERIOR_METHODS if m in methods), None)


def _summary(table: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    ok = table[np.isfinite(table["log_score"].astype(float))]
    grouped = ok.groupby(["n", "method"], sort=True)["log_score"]
    out = pd.DataFrame({"mean": grouped.mean(), "se": grouped.std(ddof=1) / np.sqrt(
        grouped.count()), "reps": grouped.count()})
    best = out["mean"].groupby(level="n").transform("max")
    out["gap_to_best"] = out["mean"] - best
    ref = _reference(methods)
    out["gap_to_posterior"] = np.nan
    out["gap_se"] = np.nan
    if ref is not None:
        wide = ok.pivot_table(index=["n", "replicate"], columns="method", values="log_score")
        for (n, method) in out.index:
            if method not in wide or ref not in wide:
                continue
            diff = (wide.loc[n, method] - wide.loc[n, ref]).dropna()
            if len(diff):
                out.loc[(n, method), "gap_to_posterior"] = diff.mean()
                out.loc[(n, method), "gap_se"] = (diff.std(ddof=1) / np.sqrt(len(diff))
                                                  if len(diff) > 1 else np.nan)
    order = [(n, m) for n in sorted(out.index.get_level_values("n").unique())
             for m in methods if (n, m) in out.index]
    return out.loc[order]


@dataclass(frozen=True, eq=False, repr=False)
class PredictiveGapResult(StudyResult):
    """Result of :func:`predictive_gap`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per n, replicate and method: ``log_score`` (the mean held-out log predictive
        density per test observation; NaN when the fit failed) and ``status`` (``"ok"``,
        ``"not_converged"`` or the error that stopped the fit, e.g. ``"MLENotFoundError"``).
    reference : str or None
        The posterior-like method the gaps are measured against (``"nuts"`` when run, else
        ``"laplace"``; None when neither was).
    n_failed : int
        Fits without a score (excluded from the summary).

    Examples
    --------
    >>> import bayesmle as bm
    >>> from bayesmle import models, studies
    >>> def simulate(n, rng):
    ...     return {"y": rng.normal(1.0, 1.0, size=n)}
    >>> gap = studies.predictive_gap(models.gaussian, simulate, [10, 40],
    ...                              prior={"mu_prior": bm.Normal(2.0)}, reps=3,
    ...                              n_test=200, random_seed=0)
    >>> gap.summary().columns.tolist()
    ['mean', 'se', 'reps', 'gap_to_best', 'gap_to_posterior', 'gap_se']
    >>> type(gap.plot()).__name__
    'Figure'
    """

    reference: str | None = None
    n_failed: int = 0

    def summary(self) -> pd.DataFrame:
        """Per n and method: mean held-out score, its Monte Carlo SE over replicates
        (``se``), ``reps``, ``gap_to_best`` (mean score minus the best mean at that n) and
        ``gap_to_posterior`` (mean paired difference of the method's score and the reference
        method's, with its SE ``gap_se``; negative: the method predicts worse).
        """  # noqa: D205
        methods = tuple(self.settings.get("methods", METHODS))
        return _summary(self.table, methods)

    def plot(self, gap: bool = False):
        """Held-out log score (or, with ``gap=True``, the gap to the reference method)
        against n on a log axis: one line per method, error bars of ±2 SE.
        """  # noqa: D205
        from bayesmle.compare import METHOD_COLOURS

        fig, (ax,) = new_figure(width=6.0, height=4.5)
        summary = self.summary()
        column, err = ("gap_to_posterior", "gap_se") if gap else ("mean", "se")
        for method in self.settings.get("methods", METHODS):
            if method not in summary.index.get_level_values("method"):
                continue
            part = summary.xs(method, level="method")
            if gap and method == self.reference:
                continue
            ax.errorbar(part.index.to_numpy(float), part[column].to_numpy(),
                        yerr=2 * part[err].fillna(0).to_numpy(), fmt="o-", ms=4, lw=1.5,
                        capsize=3, color=METHOD_COLOURS.get(method), label=method)
        if gap:
            ax.axhline(0.0, color="k", lw=0.8, ls=":")
        reference = self.reference or "posterior"
        ax.set(xscale="log", xlabel="n (training observations)",
               ylabel=(f"score − score({reference})" if gap
                       else "held-out log predictive density per observation"),
               title="Held-out predictive accuracy as n grows")
        ax.legend(fontsize=8)
        return fig


def predictive_gap(
    builder: Callable,
    simulate: Callable[[int, np.random.Generator], Mapping[str, Any]],
    ns: Sequence[int],
    *,
    prior: Prior | Mapping[str, Prior] | None = None,
    reps: int = 20,
    n_test: int = 1000,
    methods: Sequence[str] = ("mle", "map", "laplace"),
    random_seed: int | None = None,
    executor=None,
    laplace_draws: int = LAPLACE_DRAWS,
    nuts_options: Mapping[str, Any] | None = None,
) -> PredictiveGapResult:
    """Held-out log predictive density of each method's predictive as the sample grows.

    See the module docstring for the design and what to expect.

    Parameters
    ----------
    builder : callable
        A model builder, e.g. :func:`bayesmle.models.linear_regression`.
    simulate : callable
        ``simulate(n, rng) -> dict`` of the builder's data arguments, response included (e.g.
        ``{"X": X, "y": y}``). Called twice per replicate with the same generator: the
        training set (``n``), then the test set (``n_test``). Must be picklable (a
        module-level function) when ``executor`` is process-based.
    ns : sequence of int
        Training sample sizes.
    prior : Prior or dict, optional
        The priors: a Prior is passed as ``prior=`` (regression coefficients); a dict is
        passed as builder keywords (``{"mu_prior": Normal(1.0)}``). None: the builder's
        defaults.
    reps : int, default 20
        Replicates per sample size.
    n_test : int, default 1000
        Size of each held-out test set.
    methods : sequence of str, default ("mle", "map", "laplace")
        Methods to compare, among ``"mle"``, ``"map"``, ``"laplace"``, ``"nuts"``.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent and recorded in
        ``settings``); every (n, replicate) gets its own stream, so serial and parallel runs
        agree.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates.
    laplace_draws : int, default 2000
        Draws of each Laplace approximation (the Monte Carlo average of its predictive).
    nuts_options : dict, optional
        Options of the NUTS fits (default ``draws=500, tune=500, chains=2``).

    Returns
    -------
    PredictiveGapResult
        ``.table``, ``.summary()``, ``.reference``, ``.plot()``.

    Raises
    ------
    SpecError
        A bad argument (named in the message).

    Examples
    --------
    A Gaussian mean under a ``Normal(2.0)`` prior (three replicates; use more for a real
    study):

    >>> import bayesmle as bm
    >>> from bayesmle import models, studies
    >>> def simulate(n, rng):
    ...     return {"y": rng.normal(1.0, 1.0, size=n)}
    >>> gap = studies.predictive_gap(models.gaussian, simulate, [10, 40],
    ...                              prior={"mu_prior": bm.Normal(2.0)}, reps=3,
    ...                              n_test=200, random_seed=0)
    >>> gap.table.columns.tolist()
    ['n', 'replicate', 'method', 'log_score', 'status']
    >>> len(gap.table), gap.reference, gap.n_failed
    (18, 'laplace', 0)
    """
    check_builder(builder)
    if not callable(simulate):
        raise SpecError(f"`simulate` must be a function simulate(n, rng) -> dict, got "
                        f"{simulate!r}.")
    priors = prior_kwargs(prior)
    ns = check_ns(ns)
    n_test = check_n_test(n_test)
    reps = check_reps(reps, ns=[n + n_test for n in ns])
    methods = check_methods(methods)
    laplace_draws = check_int("laplace_draws", laplace_draws, 1, MAX_DRAWS)
    if nuts_options is not None and not isinstance(nuts_options, Mapping):
        raise SpecError(f"`nuts_options` must be a dict of options of the NUTS fits, got "
                        f"{nuts_options!r}.")
    nuts = {"draws": 500, "tune": 500, "chains": 2, "progressbar": False,
            **dict(nuts_options or {})}
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, len(ns) * reps)
    tasks = [_Task(builder, simulate, priors, n, n_test, r, seeds[i * reps + r], methods,
                   laplace_draws, nuts)
             for i, n in enumerate(ns) for r in range(reps)]
    rows = [row for out in run_tasks(_run, tasks, executor) for row in out]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["log_score"] = table["log_score"].astype(float)
    return PredictiveGapResult(
        table=table,
        settings={"builder": getattr(builder, "__name__", repr(builder)),
                  "prior": {k: repr(v) for k, v in priors.items()}, "ns": ns, "reps": reps,
                  "n_test": n_test, "methods": methods, "random_seed": random_seed},
        reference=_reference(methods),
        n_failed=int(table["log_score"].isna().sum()),
    )
