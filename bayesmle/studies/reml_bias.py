"""ML vs REML: the variance components of a balanced one-way random-effects model.

The model ``y_ij = mu + b_j + e_ij`` with ``J`` groups of ``m`` observations,
``b_j ~ N(0, sd^2)``, ``e_ij ~ N(0, sigma^2)``. With the between- and within-group mean squares
``MSB = m sum_j (ybar_j - ybar)^2 / (J - 1)`` and ``MSW = SSW / (J (m - 1))``, the estimators
have closed forms (Searle, Casella & McCulloch 1992, ch. 3):

* REML: ``sd^2 = (MSB - MSW) / m``, ``sigma^2 = MSW`` (interior); on the boundary ``sd^2 = 0``,
  ``sigma^2 = total SS / (n - 1)``;
* ML: ``sd^2 = ((J - 1) / J MSB - MSW) / m``, ``sigma^2 = MSW`` (interior); on the boundary
  ``sd^2 = 0``, ``sigma^2 = total SS / n``.

ML divides the between-group sum of squares by ``J`` where REML divides by ``J - 1`` (it does
not account for the estimated mean): ML's ``sd^2`` is biased down, by about ``(MSB/m) / J``, a
large bias with few groups whatever their size. The study fits both on replicate data sets
with the numerical layer (:func:`bayesmle.inference.mixed.lmm.fit_lmm` on a
:class:`~bayesmle.models.mixed_design.MixedDesign` built once per replicate, no formula) and
reports bias, RMSE, their Monte Carlo standard errors and the share of boundary fits.

Replicate ``r`` draws the group effects ``b`` and then the residuals ``e`` (rows group after
group) from ``numpy.random.default_rng(SeedSequence(random_seed).spawn(reps)[r])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_int, check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.studies._common import new_figure
from bayesmle.studies._runner import MAX_N, StudyResult, check_reps, run_tasks, task_rngs

__all__ = ["RemlBiasResult", "balanced_design", "check_truth", "reml_bias"]

_METHODS = ("mle", "reml")


def balanced_design(y: np.ndarray, groups: int, group_size: int):
    """The design of ``y ~ 1 + (1 | g)`` for ``groups`` consecutive groups of ``group_size``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.studies.reml_bias import balanced_design
    >>> d = balanced_design(np.arange(6.0), 3, 2)
    >>> d.blocks[0].codes.tolist(), d.blocks[0].levels
    ([0, 0, 1, 1, 2, 2], ('1', '2', '3'))
    """
    from bayesmle.models.mixed_design import MixedDesign, RandomBlock

    n = groups * group_size
    codes = np.repeat(np.arange(groups, dtype=np.int64), group_size)
    block = RandomBlock("g", ("Intercept",), tuple(str(j + 1) for j in range(groups)), codes,
                        np.ones((n, 1)))
    return MixedDesign(np.ones((n, 1)), ("Intercept",), np.asarray(y, dtype=float), (block,))


def check_truth(truth: Any, name: str = "truth") -> dict[str, float]:
    """``{"mu": ..., "sd": ..., "sigma": ...}``: mu finite (default 0), sd >= 0, sigma > 0.

    Examples
    --------
    >>> from bayesmle.studies.reml_bias import check_truth
    >>> check_truth({"sd": 1, "sigma": 2})
    {'mu': 0.0, 'sd': 1.0, 'sigma': 2.0}
    """
    valid = ("a dict {'mu': float, 'sd': float >= 0, 'sigma': float > 0} of the true "
             "parameters")
    if not isinstance(truth, Mapping):
        raise SpecError(f"`{name}` must be {valid}, got {truth!r}.")
    unknown = set(truth) - {"mu", "sd", "sigma"}
    missing = {"sd", "sigma"} - set(truth)
    if unknown or missing:
        raise SpecError(f"`{name}` must be {valid}; unknown keys {sorted(unknown)}, missing "
                        f"{sorted(missing)} in {dict(truth)!r}.")
    out = {}
    for key, low in (("mu", None), ("sd", 0.0), ("sigma", 0.0)):
        value = truth.get(key, 0.0)
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        bad = (not np.isfinite(v) or isinstance(value, bool) or abs(v) > 1e100
               or (low is not None and (v < low or (key == "sigma" and v <= 0))))
        if bad:
            need = {"mu": "a finite number", "sd": "a finite number >= 0",
                    "sigma": "a finite number > 0"}[key]
            raise SpecError(f"`{name}['{key}']` must be {need}, got {value!r}.")
        out[key] = v
    return out


def check_group_count(value: Any, name: str, minimum: int = 2) -> int:
    """A number of groups or a group size: an integer >= ``minimum``, at most ``MAX_N``."""
    return check_int(name, value, minimum, MAX_N)


def simulate_balanced(truth: Mapping[str, float], groups: int, group_size: int,
                      rng: np.random.Generator) -> np.ndarray:
    """One data set of the balanced one-way model (group after group)."""
    b = rng.normal(0.0, truth["sd"], size=groups)
    e = rng.normal(0.0, truth["sigma"], size=groups * group_size)
    return truth["mu"] + np.repeat(b, group_size) + e


@dataclass(frozen=True)
class _Task:
    truth: dict[str, float]
    groups: int
    group_size: int
    replicate: int
    seed: np.random.SeedSequence


def _run(task: _Task) -> list[dict[str, Any]]:
    from bayesmle.inference.mixed.lmm import fit_lmm, lmm_system

    rng = np.random.default_rng(task.seed)
    y = simulate_balanced(task.truth, task.groups, task.group_size, rng)
    design = balanced_design(y, task.groups, task.group_size)
    system = lmm_system(design)
    rows = []
    for method in _METHODS:
        base = {"replicate": task.replicate, "method": method}
        try:
            fit = fit_lmm(design, method, system=system)
        except BayesMLEError as exc:  # pragma: no cover - probability 0 for continuous data
            rows.append({**base, "sd2": np.nan, "sigma2": np.nan, "boundary": False,
                         "status": type(exc).__name__})
            continue
        rows.append({**base, "sd2": float(fit.sd[0]) ** 2, "sigma2": float(fit.sigma) ** 2,
                     "boundary": bool(fit.singular),
                     "status": "ok" if fit.converged else "not_converged"})
    return rows


@dataclass(frozen=True, eq=False, repr=False)
class RemlBiasResult(StudyResult):
    """Result of :func:`reml_bias`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method (``"mle"``, ``"reml"``) and parameter (``"sd2"``, ``"sigma2"``):
        ``truth``, ``mean``, ``bias``, ``bias_mcse`` (Monte Carlo standard error of the bias),
        ``rmse``, ``rmse_mcse`` (delta method), ``boundary_share`` (share of replicates whose
        fit is singular, sd = 0), ``n_ok``.
    estimates : pandas.DataFrame
        Every replicate: ``replicate``, ``method``, ``sd2``, ``sigma2``, ``boundary``,
        ``status``.
    bias_sd2_mle, bias_sd2_reml : float
        Bias of each method's estimate of ``sd^2``.
    bias_sigma2_mle, bias_sigma2_reml : float
        Bias of each method's estimate of ``sigma^2``.
    boundary_share_mle, boundary_share_reml : float
        Share of boundary (singular) fits per method.

    Examples
    --------
    >>> from bayesmle import studies
    >>> res = studies.reml_bias({"sd": 1.0, "sigma": 1.0}, groups=5, group_size=4, reps=4,
    ...                         random_seed=0)
    >>> res.table[["method", "parameter"]].values.tolist()
    [['mle', 'sd2'], ['mle', 'sigma2'], ['reml', 'sd2'], ['reml', 'sigma2']]
    >>> type(res.plot()).__name__
    'Figure'
    """

    estimates: pd.DataFrame | None = None
    bias_sd2_mle: float = float("nan")
    bias_sd2_reml: float = float("nan")
    bias_sigma2_mle: float = float("nan")
    bias_sigma2_reml: float = float("nan")
    boundary_share_mle: float = float("nan")
    boundary_share_reml: float = float("nan")

    def plot(self):
        """Histograms of the ML and REML estimates of sd^2 and sigma^2 against the truth."""
        fig, axes = new_figure(ncols=2, width=5.0, height=3.8)
        est = self.estimates
        truth = {"sd2": self.settings["truth"]["sd"] ** 2,
                 "sigma2": self.settings["truth"]["sigma"] ** 2}
        colours = {"mle": "tab:red", "reml": "tab:blue"}
        for ax, param, title in zip(axes, ("sd2", "sigma2"), ("sd²", "σ²"), strict=True):
            values = est.loc[est["status"] == "ok", ["method", param]]
            edges = np.histogram_bin_edges(values[param].to_numpy(), bins=30)
            for method, colour in colours.items():
                v = values.loc[values["method"] == method, param].to_numpy()
                ax.hist(v, bins=edges, alpha=0.45, color=colour, density=True,
                        label=f"{method.upper()} (mean {v.mean():.3g})")
                ax.axvline(v.mean(), color=colour, lw=1.5, ls="--")
            ax.axvline(truth[param], color="k", lw=2, label=f"truth {truth[param]:.3g}")
            ax.set(xlabel=f"estimate of {title}", ylabel="density",
                   title=f"{title}: ML vs REML ({self.settings['groups']} groups of "
                         f"{self.settings['group_size']})")
            ax.legend(fontsize=7)
        return fig


def _summary(estimates: pd.DataFrame, truth: Mapping[str, float]) -> pd.DataFrame:
    target = {"sd2": truth["sd"] ** 2, "sigma2": truth["sigma"] ** 2}
    rows = []
    for method in _METHODS:
        ok = estimates[(estimates["method"] == method) & (estimates["status"] == "ok")]
        share = float(ok["boundary"].mean()) if len(ok) else float("nan")
        for param in ("sd2", "sigma2"):
            err = ok[param].to_numpy() - target[param]
            r = err.size
            bias = float(err.mean()) if r else float("nan")
            mse = float(np.mean(err ** 2)) if r else float("nan")
            rmse = float(np.sqrt(mse))
            bias_mcse = float(err.std(ddof=1) / np.sqrt(r)) if r > 1 else float("nan")
            mse_mcse = float(np.std(err ** 2, ddof=1) / np.sqrt(r)) if r > 1 else float("nan")
            rows.append({"method": method, "parameter": param, "truth": target[param],
                         "mean": bias + target[param], "bias": bias, "bias_mcse": bias_mcse,
                         "rmse": rmse,
                         "rmse_mcse": mse_mcse / (2 * rmse) if rmse > 0 else float("nan"),
                         "boundary_share": share, "n_ok": r})
    return pd.DataFrame(rows)


def reml_bias(truth: Mapping[str, float], *, groups: int, group_size: int, reps: int = 200,
              random_seed: int | None = None, executor=None) -> RemlBiasResult:
    """Bias and RMSE of the ML and REML variance components of a balanced one-way model.

    Parameters
    ----------
    truth : dict
        ``{"mu": float, "sd": float, "sigma": float}``: the mean (default 0), the sd of the
        group effects (>= 0; 0 gives a study of boundary fits) and the residual sd (> 0).
    groups : int
        Number of groups ``J`` (>= 2).
    group_size : int
        Observations per group ``m`` (>= 2).
    reps : int, default 200
        Replicate data sets (>= 2).
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent and recorded in
        ``settings``); each replicate has its own stream, so serial and parallel runs agree.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates.

    Returns
    -------
    RemlBiasResult
        ``.table`` (bias, RMSE, MCSEs, boundary share per method and parameter),
        ``.estimates``, ``.bias_sd2_mle`` and the other biases, ``.boundary_share_mle``,
        ``.boundary_share_reml``, ``.plot()``.

    Raises
    ------
    SpecError
        A bad ``truth``, ``groups``, ``group_size``, ``reps`` or ``random_seed``.

    Examples
    --------
    Five groups of four: on every data set ML's sd^2 is REML's minus ``MSB / (J m)`` (or 0),
    so ML is biased down; use a few hundred replicates to see the bias next to its MCSE.

    >>> from bayesmle import studies
    >>> res = studies.reml_bias({"mu": 0.0, "sd": 1.0, "sigma": 1.0}, groups=5,
    ...                         group_size=4, reps=10, random_seed=1)
    >>> sd2 = res.estimates.pivot(index="replicate", columns="method", values="sd2")
    >>> bool((sd2["mle"] <= sd2["reml"]).all())
    True
    >>> res.table.columns.tolist()[:6]
    ['method', 'parameter', 'truth', 'mean', 'bias', 'bias_mcse']
    """
    truth = check_truth(truth)
    groups = check_group_count(groups, "groups")
    group_size = check_group_count(group_size, "group_size")
    n = groups * group_size
    if n > MAX_N:
        raise SpecError(f"`groups` x `group_size` = {n:,} rows; simulated data sets are "
                        f"limited to {MAX_N:,} rows.")
    reps = check_reps(reps, minimum=2, ns=[n])
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, reps)
    tasks = [_Task(truth, groups, group_size, r, seeds[r]) for r in range(reps)]
    rows = [row for out in run_tasks(_run, tasks, executor) for row in out]
    estimates = pd.DataFrame(rows, columns=["replicate", "method", "sd2", "sigma2", "boundary",
                                            "status"])
    table = _summary(estimates, truth)
    by = table.set_index(["parameter", "method"])
    return RemlBiasResult(
        table=table,
        settings={"truth": truth, "groups": groups, "group_size": group_size, "reps": reps,
                  "random_seed": random_seed},
        estimates=estimates,
        **{f"bias_{param}_{method}": float(by.loc[(param, method), "bias"])
           for param in ("sd2", "sigma2") for method in _METHODS},
        **{f"boundary_share_{method}": float(by.loc[("sd2", method), "boundary_share"])
           for method in _METHODS},
    )
