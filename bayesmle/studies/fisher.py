"""Fisher information and the Cramér–Rao bound: the MLE's variance against ``1 / (n I(θ))``.

For i.i.d. data from a regular family the MLE is asymptotically efficient:
``sqrt(n) (θ̂ − θ) → N(0, I(θ)^-1)`` with ``I`` the Fisher information of one observation, so
``n Var(θ̂) I(θ) → 1``. The study simulates replicate data sets from known parameters, fits the
MLE of each with :func:`bayesmle.fit` (one compiled model per family, data swapped) and compares
the simulated variance with the bound, per sample size and parameter.

Closed-form information per observation (parameters as the builders report them):

=====================  ==========  ==================================
builder                parameter   I(θ)
=====================  ==========  ==================================
``gaussian``           mu, sigma   1/σ², 2/σ² (orthogonal)
``bernoulli``          p           1 / (p (1 − p))
``binomial``           p           m / (p (1 − p)), m trials per row
``poisson``            rate        1 / λ
``exponential``        rate        1 / λ²
=====================  ==========  ==================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import MLENotFoundError, SpecError
from bayesmle.models import distributions as dist
from bayesmle.studies._common import fit_quietly, new_figure
from bayesmle.studies._runner import StudyResult, check_ns, check_reps, run_tasks, task_rngs

__all__ = ["FisherResult", "fisher"]


# -- families -----------------------------------------------------------------------------------
def _sim_gaussian(p: Mapping[str, float], n: int, rng: np.random.Generator) -> dict:
    return {"y": rng.normal(p["mu"], p["sigma"], size=n)}


def _sim_bernoulli(p: Mapping[str, float], n: int, rng: np.random.Generator) -> dict:
    return {"y": (rng.random(n) < p["p"]).astype(float)}


def _sim_binomial(p: Mapping[str, float], n: int, rng: np.random.Generator) -> dict:
    m = int(p["trials"])
    return {"successes": rng.binomial(m, p["p"], size=n), "trials": np.full(n, m)}


def _sim_poisson(p: Mapping[str, float], n: int, rng: np.random.Generator) -> dict:
    return {"y": rng.poisson(p["rate"], size=n)}


def _sim_exponential(p: Mapping[str, float], n: int, rng: np.random.Generator) -> dict:
    return {"y": rng.exponential(1.0 / p["rate"], size=n)}


def _info_gaussian(p: Mapping[str, float]) -> dict[str, float]:
    return {"mu": 1.0 / p["sigma"] ** 2, "sigma": 2.0 / p["sigma"] ** 2}


def _info_p(p: Mapping[str, float]) -> dict[str, float]:
    return {"p": float(p.get("trials", 1)) / (p["p"] * (1.0 - p["p"]))}


def _info_poisson(p: Mapping[str, float]) -> dict[str, float]:
    return {"rate": 1.0 / p["rate"]}


def _info_exponential(p: Mapping[str, float]) -> dict[str, float]:
    return {"rate": 1.0 / p["rate"] ** 2}


@dataclass(frozen=True)
class _Family:
    builder: Callable
    params: tuple[str, ...]
    support: dict[str, str]
    simulate: Callable
    information: Callable
    optional: dict[str, float]


_FAMILIES: dict[str, _Family] = {
    "gaussian": _Family(dist.gaussian, ("mu", "sigma"), {"mu": "real", "sigma": "positive"},
                        _sim_gaussian, _info_gaussian, {}),
    "bernoulli": _Family(dist.bernoulli, ("p",), {"p": "unit"}, _sim_bernoulli, _info_p, {}),
    "binomial": _Family(dist.binomial, ("p",), {"p": "unit"}, _sim_binomial, _info_p,
                        {"trials": 1}),
    "poisson": _Family(dist.poisson, ("rate",), {"rate": "positive"}, _sim_poisson,
                       _info_poisson, {}),
    "exponential": _Family(dist.exponential, ("rate",), {"rate": "positive"},
                           _sim_exponential, _info_exponential, {}),
}


def _family_of(builder: Any) -> str:
    for name, fam in _FAMILIES.items():
        if builder is fam.builder:
            return name
    valid = [f"bayesmle.models.{name}" for name in _FAMILIES]
    raise SpecError(f"`builder` must be one of the distribution builders {valid} (their Fisher "
                    f"information is known in closed form), got {builder!r}.")


def _check_true_params(family: str, true_params: Any) -> dict[str, float]:
    fam = _FAMILIES[family]
    if not isinstance(true_params, Mapping):
        raise SpecError(f"`true_params` must be a dict of parameter values, e.g. "
                        f"{dict.fromkeys(fam.params, 1.0)}, got {true_params!r}.")
    allowed = set(fam.params) | set(fam.optional)
    unknown = set(true_params) - allowed
    missing = set(fam.params) - set(true_params)
    if unknown or missing:
        raise SpecError(f"`true_params` for {family} must give {list(fam.params)}"
                        f"{f' (optionally {list(fam.optional)})' if fam.optional else ''}; got "
                        f"keys {sorted(true_params)}.")
    out: dict[str, float] = {}
    for key in fam.params:
        try:
            value = float(true_params[key])
        except (TypeError, ValueError):
            raise SpecError(f"true_params[{key!r}] must be a number, got "
                            f"{true_params[key]!r}.") from None
        support = fam.support[key]
        ok = np.isfinite(value) and (
            support == "real" or (support == "positive" and value > 0)
            or (support == "unit" and 0 < value < 1))
        if not ok:
            valid = {"real": "a finite number", "positive": "a finite number > 0",
                     "unit": "a number in (0, 1)"}[support]
            raise SpecError(f"true_params[{key!r}] must be {valid}, got {true_params[key]!r}.")
        out[key] = value
    for key, default in fam.optional.items():
        value = true_params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise SpecError(f"true_params[{key!r}] must be an integer >= 1, got {value!r}.")
        out[key] = int(value)
    return out


# -- tasks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    family: str
    true_params: dict[str, float]
    n: int
    replicate: int
    seed: np.random.SeedSequence


def _run(task: _Task) -> dict[str, Any]:
    fam = _FAMILIES[task.family]
    rng = np.random.default_rng(task.seed)
    data = fam.simulate(task.true_params, task.n, rng)
    out: dict[str, Any] = {"n": task.n, "replicate": task.replicate}
    try:
        result, converged = fit_quietly(fam.builder(**data), "mle")
    except MLENotFoundError:
        return {**out, "status": "no_mle"}
    if not converged:
        return {**out, "status": "not_converged"}
    return {**out, "status": "ok",
            **{name: float(result.params[name]) for name in fam.params}}


# -- result ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class FisherResult(StudyResult):
    """Result of :func:`fisher`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per n and parameter: ``n``, ``parameter``, ``true_value``, ``n_ok``,
        ``n_failed`` (replicates where the MLE does not exist -- e.g. all-zero Bernoulli data --
        or could not be certified; they are excluded from every other column), ``mean_mle``,
        ``var_mle`` (variance over replicates, ddof=1), ``var_mc_se`` (its Monte Carlo standard
        error, from the fourth central moment), ``fisher_info`` (per observation), ``crlb``
        (``1 / (n I)``), ``ratio`` (``var_mle / crlb``) and ``ratio_mc_se``.
    estimates : pandas.DataFrame
        Long table of every successful fit: ``n``, ``replicate``, ``parameter``,
        ``estimate`` and ``scaled_error`` = ``sqrt(n) (estimate − true)``, whose limit is
        ``N(0, 1 / I)``.
    failures : pandas.DataFrame
        ``n``, ``replicate``, ``status`` (``"no_mle"`` or ``"not_converged"``) of the
        excluded replicates.
    fisher_information : dict of str to float
        ``I(θ)`` per observation, by parameter.
    ratios : pandas.DataFrame
        ``ratio`` as an n × parameter table.
    n_failed : int
        Total number of excluded replicates.

    Examples
    --------
    >>> from bayesmle import models, studies
    >>> res = studies.fisher(models.gaussian, {"mu": 0.0, "sigma": 2.0}, ns=[10, 40], reps=2)
    >>> res.ratios.shape, res.n_failed  # var / CRLB by n and parameter
    ((2, 2), 0)
    >>> res.estimates.columns.tolist()
    ['n', 'replicate', 'parameter', 'estimate', 'scaled_error']
    """

    estimates: pd.DataFrame | None = None
    failures: pd.DataFrame | None = None
    fisher_information: dict[str, float] | None = None
    ratios: pd.DataFrame | None = None
    n_failed: int = 0

    def plot(self):
        """Ratio ``var / CRLB`` against n, and the sampling distribution at the largest n."""
        import scipy.stats

        params = list(self.fisher_information)
        fig, axes = new_figure(ncols=1 + len(params), width=4.2, height=3.6)
        ax = axes[0]
        reps = self.settings.get("reps", 0)
        ns = np.array(sorted(self.table["n"].unique()), dtype=float)
        if reps > 1:
            band = 1.96 * np.sqrt(2.0 / (reps - 1))
            ax.fill_between(ns, 1 - band, 1 + band, color="0.85",
                            label="±1.96 MC sd if efficient")
        ax.axhline(1.0, color="k", lw=1)
        for label, group in self.table.groupby("parameter", sort=False):
            ax.errorbar(group["n"], group["ratio"], yerr=1.96 * group["ratio_mc_se"],
                        fmt="o-", ms=4, capsize=2, label=str(label))
        ax.set(xscale="log", xlabel="n", ylabel="Var(MLE) · n · I(θ)",
               title="Variance of the MLE / Cramér–Rao bound")
        ax.legend(fontsize=7)
        n_max = int(ns.max())
        for ax, name in zip(axes[1:], params, strict=True):
            est = self.estimates
            z = est.loc[(est["n"] == n_max) & (est["parameter"] == name), "scaled_error"]
            sd = 1.0 / np.sqrt(self.fisher_information[name])
            if len(z):
                ax.hist(z, bins=40, density=True, color="tab:blue", alpha=0.6,
                        label="simulated")
            grid = np.linspace(-4 * sd, 4 * sd, 200)
            ax.plot(grid, scipy.stats.norm.pdf(grid, scale=sd), "k-", lw=1.5,
                    label="N(0, 1/I)")
            ax.set(xlabel=f"√n (MLE − true {name})", ylabel="density",
                   title=f"{name}: sampling distribution, n = {n_max}")
            ax.legend(fontsize=7)
        return fig


def fisher(builder: Callable, true_params: Mapping[str, float], ns: Sequence[int], reps: int,
           random_seed: int | None = None, executor=None) -> FisherResult:
    """Simulated variance of the MLE against the Cramér–Rao bound ``1 / (n I(θ))``.

    Parameters
    ----------
    builder : callable
        A distribution builder: :func:`bayesmle.models.gaussian` (reports ``mu`` and
        ``sigma``), :func:`~bayesmle.models.bernoulli` / :func:`~bayesmle.models.binomial`
        (``p``), :func:`~bayesmle.models.poisson` or :func:`~bayesmle.models.exponential`
        (``rate``).
    true_params : dict
        The parameters to simulate from, e.g. ``{"mu": 0.0, "sigma": 2.0}`` or
        ``{"p": 0.3}``; for ``binomial`` optionally ``"trials"`` (per row, default 1).
    ns : sequence of int
        Sample sizes (>= 2).
    reps : int
        Replicates per sample size (>= 2). The Monte Carlo sd of the ratio is about
        ``sqrt(2 / reps)``: use ~2000 to resolve a 10% deviation at 3 sd.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Seed; each (n, replicate) has its own stream, so serial and parallel runs agree.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates (process pool, Dask client executor).

    Returns
    -------
    FisherResult
        ``.table`` (per n and parameter), ``.estimates``, ``.ratios``, ``.plot()``.

    Examples
    --------
    The set-up of a Gaussian study (two replicates per n only show the table; resolving the
    ratio needs thousands):

    >>> from bayesmle import models, studies
    >>> res = studies.fisher(models.gaussian, {"mu": 0.0, "sigma": 2.0}, ns=[10, 40], reps=2)
    >>> res.fisher_information  # 1 / sigma^2 and 2 / sigma^2
    {'mu': 0.25, 'sigma': 0.5}
    >>> res.table["crlb"].tolist()  # 1 / (n I) for (n, parameter) = (10, mu), (10, sigma), ...
    [0.4, 0.2, 0.1, 0.05]
    >>> res.table.columns.tolist()[:6]
    ['n', 'parameter', 'true_value', 'n_ok', 'n_failed', 'mean_mle']
    """
    family = _family_of(builder)
    params = _check_true_params(family, true_params)
    ns = check_ns(ns, minimum=2)
    reps = check_reps(reps, minimum=2, ns=ns)
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, len(ns) * reps)
    tasks = [_Task(family, params, n, r, seeds[i * reps + r])
             for i, n in enumerate(ns) for r in range(reps)]
    outs = run_tasks(_run, tasks, executor)
    fam = _FAMILIES[family]
    info = fam.information(params)
    ok = [o for o in outs if o["status"] == "ok"]
    estimates = pd.DataFrame(
        [{"n": o["n"], "replicate": o["replicate"], "parameter": name, "estimate": o[name],
          "scaled_error": np.sqrt(o["n"]) * (o[name] - params[name])}
         for o in ok for name in fam.params],
        columns=["n", "replicate", "parameter", "estimate", "scaled_error"])
    failures = pd.DataFrame([{k: o[k] for k in ("n", "replicate", "status")}
                             for o in outs if o["status"] != "ok"],
                            columns=["n", "replicate", "status"])
    rows = []
    for n in ns:
        n_failed = int((failures["n"] == n).sum())
        for name in fam.params:
            est = estimates.loc[(estimates["n"] == n) & (estimates["parameter"] == name),
                                "estimate"].to_numpy()
            m = est.size
            var = float(np.var(est, ddof=1)) if m > 1 else np.nan
            m4 = float(np.mean((est - est.mean()) ** 4)) if m > 1 else np.nan
            var_se = float(np.sqrt(max(m4 - var**2, 0.0) / m)) if m > 1 else np.nan
            crlb = 1.0 / (n * info[name])
            rows.append({"n": n, "parameter": name, "true_value": params[name], "n_ok": m,
                         "n_failed": n_failed, "mean_mle": float(est.mean()) if m else np.nan,
                         "var_mle": var, "var_mc_se": var_se, "fisher_info": info[name],
                         "crlb": crlb, "ratio": var / crlb, "ratio_mc_se": var_se / crlb})
    table = pd.DataFrame(rows)
    ratios = table.pivot(index="n", columns="parameter", values="ratio")[list(fam.params)]
    return FisherResult(
        table=table,
        settings={"builder": family, "true_params": params, "ns": ns, "reps": reps,
                  "random_seed": random_seed},
        estimates=estimates, failures=failures, fisher_information=info, ratios=ratios,
        n_failed=len(failures),
    )
