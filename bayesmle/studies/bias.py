"""The MLE of a Gaussian variance is biased: ``E[σ̂²] = (n − 1)/n · σ²``.

The MLE divides the residual sum of squares by ``n`` (not ``n − 1``), so it underestimates the
variance by the factor ``(n − 1)/n`` -- 20% at n = 5, negligible at n = 500. The study fits the
Gaussian MLE (:func:`bayesmle.models.gaussian`, one compiled model, data swapped) on replicate
samples and compares the mean of ``σ̂²`` with the exact expectation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import MLENotFoundError, SpecError
from bayesmle.models.distributions import gaussian
from bayesmle.studies._common import fit_quietly, new_figure
from bayesmle.studies._runner import StudyResult, check_ns, check_reps, run_tasks, task_rngs

__all__ = ["BiasResult", "bias"]


@dataclass(frozen=True)
class _Task:
    mu: float
    sigma: float
    n: int
    replicate: int
    seed: np.random.SeedSequence


def _run(task: _Task) -> dict[str, Any]:
    rng = np.random.default_rng(task.seed)
    y = rng.normal(task.mu, task.sigma, size=task.n)
    out: dict[str, Any] = {"n": task.n, "replicate": task.replicate}
    try:
        result, converged = fit_quietly(gaussian(y), "mle")
    except MLENotFoundError:  # pragma: no cover - probability zero for continuous data
        return {**out, "status": "no_mle", "var_mle": np.nan}
    if not converged:  # pragma: no cover - the Gaussian MLE is a closed form start
        return {**out, "status": "not_converged", "var_mle": np.nan}
    return {**out, "status": "ok", "var_mle": float(result.params["sigma"]) ** 2}


@dataclass(frozen=True, eq=False, repr=False)
class BiasResult(StudyResult):
    """Result of :func:`bias`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per n: ``n``, ``n_ok``, ``mean_var_mle`` (mean of σ̂² over replicates),
        ``theory`` (``(n − 1)/n · σ²``), ``mc_se`` (Monte Carlo standard error of the mean),
        ``z`` (``(mean_var_mle − theory) / mc_se``), ``ratio`` (``mean_var_mle / σ²``),
        ``ratio_mc_se`` and ``theory_ratio`` (``(n − 1)/n``).
    estimates : pandas.DataFrame
        ``n``, ``replicate``, ``var_mle`` of every replicate.
    ratios : pandas.Series
        ``ratio`` by n.
    max_abs_z : float
        Largest ``|z|`` over n: the worst disagreement with theory in Monte Carlo standard
        errors.

    Examples
    --------
    >>> from bayesmle import studies
    >>> res = studies.bias(ns=[5, 50], reps=2)
    >>> res.estimates.columns.tolist()
    ['n', 'replicate', 'status', 'var_mle']
    >>> type(res.plot()).__name__
    'Figure'
    """

    estimates: pd.DataFrame | None = None
    ratios: pd.Series | None = None
    max_abs_z: float = float("nan")

    def plot(self):
        """Mean σ̂²/σ² against n with its Monte Carlo interval, and the theory (n − 1)/n."""
        fig, (ax,) = new_figure(width=6.0, height=4.0)
        t = self.table
        ns = np.geomspace(t["n"].min(), t["n"].max(), 200)
        ax.plot(ns, (ns - 1) / ns, "k-", lw=1.5, label="theory (n − 1)/n")
        ax.errorbar(t["n"], t["ratio"], yerr=1.96 * t["ratio_mc_se"], fmt="o", ms=5,
                    capsize=3, color="tab:red", label="simulated mean σ̂²/σ² (±1.96 MC se)")
        ax.axhline(1.0, color="0.5", ls=":", lw=1, label="unbiased")
        ax.set(xscale="log", xlabel="n", ylabel="E[σ̂²] / σ²",
               title="Bias of the Gaussian variance MLE")
        ax.legend(fontsize=8)
        return fig


def bias(ns: Sequence[int], reps: int, mu: float = 0.0, sigma: float = 1.0,
         random_seed: int | None = None, executor=None) -> BiasResult:
    """Simulated mean of the Gaussian variance MLE σ̂² against ``(n − 1)/n · σ²``.

    Parameters
    ----------
    ns : sequence of int
        Sample sizes (>= 2).
    reps : int
        Replicates per sample size (>= 2).
    mu, sigma : float
        Mean and standard deviation (> 0) of the simulated data.
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Seed; each (n, replicate) has its own stream, so serial and parallel runs agree.
    executor : concurrent.futures.Executor, optional
        Where to run the replicates.

    Returns
    -------
    BiasResult
        ``.table`` (per n), ``.estimates``, ``.ratios``, ``.max_abs_z``, ``.plot()``.

    Examples
    --------
    >>> from bayesmle import studies
    >>> res = studies.bias(ns=[5, 50], reps=2)
    >>> res.table["theory_ratio"].tolist()  # E[sigma_hat^2] / sigma^2 = (n - 1) / n
    [0.8, 0.98]
    >>> res.table.columns.tolist()
    ['n', 'n_ok', 'mean_var_mle', 'theory', 'mc_se', 'z', 'ratio', 'ratio_mc_se', 'theory_ratio']
    """
    ns = check_ns(ns, minimum=2)
    reps = check_reps(reps, minimum=2, ns=ns)
    for name, value, positive in (("mu", mu, False), ("sigma", sigma, True)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = np.nan
        if not np.isfinite(v) or (positive and v <= 0):
            valid = "a finite number > 0" if positive else "a finite number"
            raise SpecError(f"`{name}` must be {valid}, got {value!r}.")
    mu, sigma = float(mu), float(sigma)
    random_seed = check_seed(random_seed)
    seeds = task_rngs(random_seed, len(ns) * reps)
    tasks = [_Task(mu, sigma, n, r, seeds[i * reps + r])
             for i, n in enumerate(ns) for r in range(reps)]
    estimates = pd.DataFrame(run_tasks(_run, tasks, executor),
                             columns=["n", "replicate", "status", "var_mle"])
    s2 = sigma**2
    rows = []
    for n in ns:
        v = estimates.loc[(estimates["n"] == n) & (estimates["status"] == "ok"),
                          "var_mle"].to_numpy()
        mean = float(v.mean())
        se = float(v.std(ddof=1) / np.sqrt(v.size))
        theory = (n - 1) / n * s2
        rows.append({"n": n, "n_ok": v.size, "mean_var_mle": mean, "theory": theory,
                     "mc_se": se, "z": (mean - theory) / se, "ratio": mean / s2,
                     "ratio_mc_se": se / s2, "theory_ratio": (n - 1) / n})
    table = pd.DataFrame(rows)
    return BiasResult(
        table=table,
        settings={"ns": ns, "reps": reps, "mu": mu, "sigma": sigma, "random_seed": random_seed},
        estimates=estimates,
        ratios=table.set_index("n")["ratio"],
        max_abs_z=float(np.max(np.abs(table["z"]))),
    )
