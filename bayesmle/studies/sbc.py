"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

If a method's draws come from the exact posterior, then for a true value drawn from the prior
and data drawn given it, the rank of the true value among ``L`` posterior draws is uniform on
``0..L``. For ``s = 1..sims`` the study draws ``θ̃`` from the priors and ``y ~ p(y | θ̃)`` with
the covariates of ``data_template``, fits the model built on that ``y`` with ``method`` and
records the rank of each scalar parameter's ``θ̃``; non-uniform ranks expose a miscalibrated
method (the Laplace approximation on small samples, ADVI, Pathfinder) or a wrong model.

* **Simulation.** All ``(θ̃, y)`` pairs are drawn at once, before any fit, from one stream of
  ``random_seed``: each prior's own PyMC random variable (the one route of
  :mod:`bayesmle.priors`), and ``y`` from the spec's compiled observation model
  (:mod:`bayesmle.inference.observation_engine`, compiled once per structure). Each
  simulation's fit seed and tie-breaking come from its own stream
  (:func:`~bayesmle.studies._runner.task_rngs`), so serial and parallel runs agree exactly.
* **Draws and thinning.** ``draws`` is ``L``, the number of draws ranked. The method is asked
  for ``L * thin`` draws and every ``thin``-th is kept. NUTS draws are autocorrelated, and
  autocorrelated draws make ranks non-uniform even for an exact sampler, so for ``"nuts"``
  ``thin`` defaults to 4 (one chain, 300 tuning steps unless ``fit_options`` say otherwise) and
  the smallest bulk ESS of each fit's raw draws is recorded in ``fits["min_ess"]``; when it is
  below ``L`` for many fits a diagnostic says so (raise ``thin``). Other methods give
  independent draws (``thin=1``).
* **Uniformity.** Per parameter: the chi-square test on ``bins`` equal bins of ranks (``bins``
  divides ``L + 1``), ``p_value``, and Holm's correction over the parameters
  (``p_value_holm``, the basis of ``calibrated`` at level ``alpha``); ``mean_rank`` (ranks /
  L: 0.5 when unbiased; above 0.5: the posterior sits below the truth) and ``sd_rank`` (0.289
  for uniform ranks; larger: too narrow a posterior, U-shaped ranks; smaller: too wide, a
  hump); ``in_band``: the ECDF of the ranks stays inside its simultaneous 95% band (Säilynoja,
  Bürkner & Vehtari 2022, the band from ``arviz_stats.ecdf_utils.ecdf_pit``).
* **Failures.** A simulation whose fit raises a statistical error (no posterior mode found,
  an improper posterior, data the builder refuses) has no ranks: it is counted (``n_failed``,
  ``fits``) and reported in ``diagnostics``. Fits with sampling diagnostics (divergences, low
  ESS) are *kept* -- dropping them would select data sets and bias the ranks -- and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pymc as pm

from bayesmle._validation import MAX_DRAWS, check_int, check_memory, check_seed
from bayesmle.errors import (
    ConvergenceError,
    ConvergenceWarning,
    DataError,
    Diagnostic,
    ImproperPosteriorError,
    MLENotFoundError,
    PriorError,
    SamplingWarning,
    SpecError,
)
from bayesmle.priors import Flat, HalfFlat, Prior
from bayesmle.studies._common import build, check_builder, prior_kwargs
from bayesmle.studies._runner import StudyResult, check_reps, run_tasks, task_rngs
from bayesmle.studies.sbc_ranks import (
    EcdfBand,
    chi2_uniformity,
    default_bins,
    ecdf_band,
    rank_of,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SbcResult", "sbc"]

#: Methods that give point estimates, not draws: they have no ranks.
POINT_METHODS = ("mle", "map", "reml")
#: NUTS defaults of :func:`sbc` (overridden by ``fit_options``).
NUTS_DEFAULTS = {"chains": 1, "tune": 300, "progressbar": False}
#: Default thinning of NUTS draws.
NUTS_THIN = 4
#: Errors that make one simulated data set unusable (counted as a failed simulation).
FAILURES = (ConvergenceError, DataError, ImproperPosteriorError, MLENotFoundError)
#: Level of the simultaneous ECDF band.
BAND_PROB = 0.95
#: Standard deviation of rank / L for discrete uniform ranks, as L grows.
UNIFORM_SD = 1 / math.sqrt(12)


@dataclass(frozen=True)
class _Task:
    builder: Callable
    data: dict[str, Any]
    priors: dict[str, Prior]
    method: str
    options: dict[str, Any]
    truth: dict[str, float]
    draws: int
    thin: int
    sim: int
    seed: np.random.SeedSequence


def _run(task: _Task) -> dict[str, Any]:
    from bayesmle.inference.driver import run

    rng = np.random.default_rng(task.seed)
    options = {**task.options, "random_seed": int(rng.integers(2**63 - 1))}
    out: dict[str, Any] = {"sim": task.sim, "status": "ok", "message": "", "min_ess": np.nan,
                           "ranks": {}}
    try:
        result = run(build(task.builder, task.data, task.priors), task.method, **options)
    except FAILURES as exc:
        out.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        return out
    table = result.draws()
    missing = [k for k in task.truth if k not in table.columns]
    if missing:
        raise SpecError(f"method {task.method!r} gives no draws of {missing}; its draws hold "
                        f"{list(table.columns)}.")
    needed = task.draws * task.thin
    if len(table) < needed:
        raise SpecError(f"method {task.method!r} returned {len(table)} draws where "
                        f"draws x thin = {needed} were asked for.")
    kept = table.to_numpy()[np.arange(task.draws) * task.thin]
    columns = list(table.columns)
    out["ranks"] = {k: rank_of(kept[:, columns.index(k)], v, rng)
                    for k, v in task.truth.items()}
    ess = getattr(result, "ess_bulk", None)
    if callable(ess):
        out["min_ess"] = float(np.nanmin(np.asarray(ess(), dtype=float)))
    if result.diagnostics:
        out.update(status="bad_diagnostics",
                   message="; ".join(d.message for d in result.diagnostics))
    return out


def _simulate(spec, sims: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """``sims`` draws of the parameters from their priors and of the responses given them.

    Returns the true values (one column per scalar label) and the responses by data key,
    each ``(sims, *row shape)``.
    """
    from bayesmle.inference.draws import Draws, posterior_tree
    from bayesmle.inference.predictive import call_over_draws, setup_for

    setup = setup_for(spec, None)
    cm = setup.compiled
    with pm.Model() as model:
        pass
    values = {}
    for name in spec.params:
        shape = tuple(int(n) for n in cm.model[name].shape.eval())
        rv = spec.priors[name].rv(model, name, shape=shape)
        values[name] = np.asarray(pm.draw(rv, draws=sims, random_seed=rng)).reshape(
            sims, *shape)
    fn, n_rng = cm.draw_fn()
    ys = call_over_draws(setup, fn, values, rng_count=n_rng, rng=rng)
    tree = posterior_tree(spec, {k: v[None] for k, v in values.items()})
    truth = Draws(spec, tree).table().reset_index(drop=True)
    responses = {cm.response[name]: np.asarray(y) for name, y in zip(cm.observed, ys,
                                                                       strict=True)}
    return truth, responses


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


@dataclass(frozen=True, eq=False, repr=False)
class SbcResult(StudyResult):
    """Result of :func:`sbc`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scalar parameter: ``parameter``, ``n_sims`` (simulations with ranks),
        ``n_failed``, ``bins``, ``chi2``, ``p_value`` (chi-square test of uniform ranks),
        ``p_value_holm`` (Holm-corrected over the parameters), ``mean_rank`` and ``sd_rank``
        (of rank / L; uniform: 0.5 and about 0.289), ``in_band`` (the rank ECDF inside its
        simultaneous 95% band) and ``calibrated`` (``p_value_holm >= alpha``).
    ranks : pandas.DataFrame
        Ranks (0..L), one row per simulation with ranks (index ``sim``), one column per
        parameter.
    truth : pandas.DataFrame
        The true values drawn from the prior, one row per simulation.
    fits : pandas.DataFrame
        Per simulation: ``status`` (``"ok"``, ``"bad_diagnostics"`` -- kept --, ``"failed"``
        -- no ranks), ``message`` and ``min_ess`` (smallest bulk ESS of the raw draws, NaN
        for methods without one).
    bands : dict of str to EcdfBand
        The rank ECDF and its simultaneous band per parameter.
    draws : int
        ``L``: ranks lie in 0..L.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> res = bm.studies.sbc(bm.models.bernoulli, {"y": np.zeros(6)},
    ...                      priors={"p_prior": bm.Beta(2.0, 2.0)}, sims=20, draws=19,
    ...                      method="laplace", random_seed=1)
    >>> res.table.columns.tolist()[:6]
    ['parameter', 'n_sims', 'n_failed', 'bins', 'chi2', 'p_value']
    >>> res.ranks.shape, int(res.ranks.to_numpy().max()) <= 19
    ((20, 1), True)
    """

    ranks: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    fits: pd.DataFrame | None = None
    bands: dict[str, EcdfBand] | None = None
    draws: int = 0

    def plot(self) -> Figure:
        """ECDF difference with its simultaneous 95% band (top) and rank histogram (bottom).

        One column per parameter. The histogram's grey band is the central 99% range of a bin
        count under uniform ranks (binomial).
        """
        from matplotlib.figure import Figure
        from scipy import stats

        params = list(self.table["parameter"])
        fig = Figure(figsize=(4.0 * len(params), 6.5), layout="constrained")
        axes = fig.subplots(2, len(params), squeeze=False)
        for col, label in enumerate(params):
            band = self.bands[label]
            top, bottom = axes[0, col], axes[1, col]
            top.fill_between(band.x, band.lower - band.x, band.upper - band.x, step="post",
                             color="0.85", label=f"simultaneous {band.prob:.0%} band")
            top.step(band.x, band.ecdf - band.x, where="post", color="C0", label="ranks")
            top.axhline(0.0, color="k", lw=0.8)
            top.set(xlabel="fractional rank", ylabel="ECDF − uniform", title=label)
            ranks = self.ranks[label].to_numpy()
            row = self.table.loc[self.table["parameter"] == label].iloc[0]
            bins = int(row["bins"])
            width = (self.draws + 1) / bins
            counts = np.bincount((ranks // width).astype(int), minlength=bins)
            lo, hi = stats.binom.ppf([0.005, 0.995], len(ranks), 1 / bins)
            bottom.axhspan(lo, hi, color="0.85", label="99% range if uniform")
            bottom.bar(np.arange(bins) * width, counts, width=width, align="edge",
                       color="C0", edgecolor="white")
            bottom.axhline(len(ranks) / bins, color="k", lw=0.8)
            bottom.set(xlabel=f"rank (0..{self.draws})", ylabel="simulations",
                       title=f"p = {row['p_value']:.3g}")
            if col == 0:
                top.legend(fontsize=7)
                bottom.legend(fontsize=7)
        return fig


def _check_method(method: Any) -> str:
    from bayesmle.inference.driver import FIT_METHODS

    if not isinstance(method, str) or method not in FIT_METHODS:
        raise SpecError(f"Unknown method {method!r}. Valid methods for sbc: "
                        f"{[m for m in FIT_METHODS if m not in (*POINT_METHODS, 'prior')]}.")
    if method in POINT_METHODS:
        raise SpecError(f"method {method!r} gives a point estimate, which has no rank "
                        "statistics; simulation-based calibration needs draws (e.g. 'nuts', "
                        "'laplace').")
    if method == "prior":
        raise SpecError("method 'prior' draws from the prior, not the posterior; "
                        "simulation-based calibration checks a posterior method (e.g. 'nuts', "
                        "'laplace').")
    return method


def _check_priors(spec) -> None:
    missing = [p for p in spec.params if p not in spec.priors]
    if missing:
        raise SpecError(f"sbc draws each reported parameter from its prior; {missing} of model "
                        f"{spec.name!r} have no prior of that name.")
    improper = [p for p in spec.params if isinstance(spec.priors[p], Flat | HalfFlat)]
    if improper:
        raise PriorError(
            f"sbc draws the true values from the priors, but the prior(s) of {improper} of "
            f"model {spec.name!r} are improper (flat). Pass priors= giving every parameter a "
            "proper prior (e.g. {'mu_prior': Normal(1.0), 'sigma_prior': HalfNormal(1.0)}).")


def sbc(
    builder: Callable,
    data_template: Mapping[str, Any],
    priors: Prior | Mapping[str, Prior] | None = None,
    sims: int = 100,
    draws: int = 99,
    method: str = "nuts",
    random_seed: int | None = None,
    executor=None,
    *,
    fit_options: Mapping[str, Any] | None = None,
    thin: int | None = None,
    bins: int | None = None,
    alpha: float = 0.01,
) -> SbcResult:
    """Simulation-based calibration of a posterior method on a model (see the module doc).

    Parameters
    ----------
    builder : callable
        A model builder, e.g. :func:`bayesmle.models.gaussian`.
    data_template : dict
        The builder's data arguments (e.g. ``{"X": X, "y": y}``): the covariates are kept,
        the response is replaced by simulated values of the same shape.
    priors : Prior or dict, optional
        Priors (a Prior is given to the builder as ``prior=``, a dict as builder keywords).
        Every parameter needs a proper prior.
    sims : int, default 100
        Simulated data sets.
    draws : int, default 99
        ``L``, the draws ranked per fit (ranks lie in 0..L; ``L + 1`` with many divisors,
        such as 99 or 199, lets the chi-square test use equal bins).
    method : str, default "nuts"
        Any method of :func:`bayesmle.fit` that returns draws (``"nuts"``, ``"laplace"``,
        and others such as ``"advi"`` where available); point methods are refused.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; recorded in
        ``settings``).
    executor : concurrent.futures.Executor, optional
        Where to run the fits (same numbers as serially).
    fit_options : dict, optional
        Options of the fits other than ``draws`` and ``random_seed`` (for NUTS by default
        ``chains=1, tune=300``).
    thin : int, optional
        Keep every ``thin``-th of ``draws * thin`` draws (default 4 for NUTS, 1 otherwise).
    bins : int, optional
        Bins of the chi-square test; must divide ``draws + 1``. Default: the largest divisor
        of ``draws + 1`` up to ``max(2, min(20, sims // 5))``.
    alpha : float, default 0.01
        Level of ``calibrated`` (on Holm-corrected p-values).

    Returns
    -------
    SbcResult
        ``.table``, ``.ranks``, ``.truth``, ``.fits``, ``.bands``, ``.plot()``,
        ``.diagnostics``.

    Raises
    ------
    SpecError
        A point method, reserved or unknown options, a ``bins`` that does not divide
        ``draws + 1``, a response the builder does not take.
    PriorError
        An improper prior.
    ConvergenceError
        Every fit failed (each failure alone is counted, not raised).

    Examples
    --------
    The Laplace approximation of a Beta-Bernoulli posterior, 30 simulated data sets of 8
    trials (hundreds are needed to judge calibration):

    >>> import numpy as np
    >>> import bayesmle as bm
    >>> res = bm.studies.sbc(bm.models.bernoulli, {"y": np.zeros(8)},
    ...                      priors={"p_prior": bm.Beta(2.0, 2.0)}, sims=30, draws=29,
    ...                      method="laplace", random_seed=0)
    >>> res.table[["parameter", "n_sims", "bins"]].to_dict("records")
    [{'parameter': 'p', 'n_sims': 30, 'bins': 6}]
    >>> res.settings["method"], res.settings["thin"]
    ('laplace', 1)
    """
    check_builder(builder)
    method = _check_method(method)
    if not isinstance(data_template, Mapping):
        raise SpecError(f"`data_template` must be a dict of the builder's data arguments (e.g. "
                        f"{{'X': X, 'y': y}}), got {type(data_template).__name__}.")
    draws = check_int("draws", draws, 1, MAX_DRAWS)
    thin = check_int("thin", NUTS_THIN if thin is None and method == "nuts" else (thin or 1), 1,
                     MAX_DRAWS // draws)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise SpecError(f"`alpha` must be a number in (0, 1), got {alpha!r}.")
    options = dict(fit_options or {}) if isinstance(fit_options, Mapping | None) else None
    if options is None:
        raise SpecError(f"`fit_options` must be a dict of fit options, got {fit_options!r}.")
    reserved = sorted({"draws", "random_seed"} & set(options))
    if reserved:
        raise SpecError(f"`fit_options` may not set {reserved}: sbc sets draws (draws x thin) "
                        "and a seed per simulation.")
    from bayesmle.inference.driver import OPTIONS

    unknown = sorted(set(options) - OPTIONS.get(method, frozenset(options)))
    if unknown:
        raise SpecError(f"Unknown fit option(s) {unknown} for method {method!r}. Valid "
                        f"options: {sorted(OPTIONS[method] - {'draws', 'random_seed'})}.")
    if method == "nuts":
        options = {**NUTS_DEFAULTS, **options}
        chains = check_int("chains", options["chains"], 1, 64)
        options["draws"] = math.ceil(draws * thin / chains)
    else:
        options["draws"] = draws * thin
    prior_kw = prior_kwargs(priors, "priors")
    template = build(builder, data_template, prior_kw)
    _check_priors(template)
    sims = check_reps(sims, "sims", minimum=2, ns=[template.nobs or 1])
    if bins is None:
        bins = default_bins(draws, sims)
        if not bins:
            raise SpecError(f"No bin count in 2..{max(2, min(20, sims // 5))} divides draws + 1 = "
                            f"{draws + 1}; choose draws so that draws + 1 has small divisors "
                            "(e.g. 99, 199) or give more sims, or pass bins=.")
    elif (isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 2
          or (draws + 1) % int(bins)):
        raise SpecError(f"`bins` must be an integer >= 2 dividing draws + 1 = {draws + 1}, got "
                        f"{bins!r}.")
    bins = int(bins)
    check_memory(f"{sims:,} simulated data sets", sims, 8 * (template.scalar_count()
                                                             + (template.nobs or 1)),
                 "Use fewer `sims`.")
    random_seed = check_seed(random_seed)
    streams = task_rngs(random_seed, sims + 2)
    truth, responses = _simulate(template, sims, np.random.default_rng(streams[0]))
    unknown = sorted(k for k in responses if k not in data_template)
    if unknown:
        raise SpecError(f"The simulated response {unknown} is not an argument in "
                        f"`data_template` ({sorted(data_template)}); sbc replaces the builder's "
                        "response argument of that name.")
    tasks = [
        _Task(builder, {**data_template, **{k: y[s] for k, y in responses.items()}}, prior_kw,
              method, options, {k: float(v) for k, v in truth.iloc[s].items()}, draws, thin,
              s, streams[1 + s])
        for s in range(sims)
    ]
    outs = run_tasks(_run, tasks, executor)
    fits = pd.DataFrame([{k: o[k] for k in ("sim", "status", "message", "min_ess")}
                         for o in outs]).set_index("sim")
    if (fits["status"] == "failed").all():
        raise ConvergenceError(f"None of the {sims} {method!r} fits succeeded, so there are no "
                               f"ranks (e.g. simulation 0: {fits['message'].iloc[0][:300]}).")
    ranks = pd.DataFrame([o["ranks"] for o in outs if o["status"] != "failed"],
                         index=pd.Index([o["sim"] for o in outs if o["status"] != "failed"],
                                        name="sim"),
                         columns=list(truth.columns), dtype="int64")
    band_rng = np.random.default_rng(streams[-1])
    bands = {label: ecdf_band(ranks[label].to_numpy(), draws, band_rng, BAND_PROB)
             for label in truth.columns}
    table = _table(ranks, bands, draws, bins, alpha, int((fits["status"] == "failed").sum()))
    truth.index.name = "sim"
    return SbcResult(
        table=table,
        settings={"builder": getattr(builder, "__name__", repr(builder)), "method": method,
                  "sims": sims, "draws": draws, "thin": thin, "bins": bins, "alpha": alpha,
                  "fit_options": {k: v for k, v in options.items() if k != "draws"},
                  "priors": {k: repr(v) for k, v in prior_kw.items()},
                  "random_seed": random_seed},
        diagnostics=_diagnostics(fits, method, draws),
        ranks=ranks, truth=truth, fits=fits, bands=bands, draws=draws,
    )


def _table(ranks: pd.DataFrame, bands: dict[str, EcdfBand], draws: int, bins: int,
           alpha: float, n_failed: int) -> pd.DataFrame:
    rows = []
    for label in ranks.columns:
        r = ranks[label].to_numpy()
        chi2, p = chi2_uniformity(r, draws, bins)
        rows.append({
            "parameter": label, "n_sims": len(r), "n_failed": n_failed, "bins": bins,
            "chi2": chi2, "p_value": p,
            "mean_rank": float(np.mean(r) / draws) if len(r) else np.nan,
            "sd_rank": float(np.std(r, ddof=1) / draws) if len(r) > 1 else np.nan,
            "in_band": bands[label].inside,
        })
    table = pd.DataFrame(rows)
    table.insert(6, "p_value_holm", _holm(table["p_value"].to_numpy()))
    table["calibrated"] = table["p_value_holm"] >= alpha
    return table


def _diagnostics(fits: pd.DataFrame, method: str, draws: int) -> tuple[Diagnostic, ...]:
    out = []
    total = len(fits)
    failed = fits[fits["status"] == "failed"]
    if len(failed):
        kinds = sorted({m.split(":")[0] for m in failed["message"]})
        out.append(Diagnostic(ConvergenceWarning, (
            f"{len(failed)} of {total} simulated data sets have no {method!r} fit ({kinds}, "
            f"e.g. simulation {failed.index[0]}: {failed['message'].iloc[0][:200]}); they have "
            "no ranks and are excluded, which conditions the ranks on the fit succeeding.")))
    bad = fits[fits["status"] == "bad_diagnostics"]
    if len(bad):
        out.append(Diagnostic(SamplingWarning, (
            f"{len(bad)} of {total} {method!r} fits had sampling diagnostics (e.g. simulation "
            f"{bad.index[0]}: {bad['message'].iloc[0][:200]}); their ranks are kept.")))
    low = fits["min_ess"] < draws
    if low.sum() > 0.1 * total:
        out.append(Diagnostic(SamplingWarning, (
            f"{int(low.sum())} of {total} fits had a bulk ESS below draws = {draws}: the "
            "ranked draws are autocorrelated, which alone makes ranks non-uniform; raise "
            "`thin` (or tune).")))
    return tuple(out)
