"""Overdispersion: Poisson against negative binomial (NB2) regression on the same counts.

A Poisson model forces ``Var(y | x) = mu``. Real counts are usually more variable; the NB2
model ``Var = mu + alpha mu²`` nests the Poisson at ``alpha = 0``. The study fits both by
maximum likelihood (:func:`bayesmle.models.poisson_regression`,
:func:`bayesmle.models.negative_binomial_regression`) and reports, side by side:

* log-likelihood, number of parameters, AIC and BIC of each model;
* the Pearson dispersion statistic of the Poisson fit,
  ``sum((y − mu)² / mu) / (n − p)`` (≈ 1 without overdispersion);
* the likelihood-ratio test of ``alpha = 0``. The null value is on the boundary of the
  parameter space, so the LR statistic is not χ²₁ under the null but the 50:50 mixture of
  χ²₀ (a point mass at 0) and χ²₁ (Self & Liang 1987): ``p = 0.5 P(χ²₁ ≥ LR)`` for
  ``LR > 0`` and ``p = 1`` for ``LR = 0``.

When the counts are not overdispersed, the NB2 MLE of ``alpha`` is 0 (on the boundary) and does
not exist as an interior optimum; the NB row is then left empty, ``LR = 0`` and ``p = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import check_seed
from bayesmle.errors import ConvergenceError, MLENotFoundError
from bayesmle.inference.point import PointResult
from bayesmle.models.regression import negative_binomial_regression, poisson_regression
from bayesmle.studies._common import fit_quietly, new_figure
from bayesmle.studies._runner import StudyResult, task_rngs

__all__ = ["OverdispersionResult", "overdispersion"]


def _fitted_mean(result: PointResult) -> np.ndarray:
    data = result.spec.data
    eta = np.asarray(data["X"], dtype=float) @ np.asarray(result.params["coef"], dtype=float)
    eta = eta + np.asarray(data["offset"], dtype=float)
    if "intercept" in result.params:
        eta = eta + float(result.params["intercept"])
    return np.exp(eta)


@dataclass(frozen=True, eq=False, repr=False)
class OverdispersionResult(StudyResult):
    """Result of :func:`overdispersion`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (``poisson``, ``negative_binomial``): ``loglik``, ``n_params``,
        ``aic``, ``bic``, ``converged`` and one column per parameter label (``alpha`` is NaN
        for the Poisson).
    poisson, negative_binomial : PointResult
        The two MLEs (``negative_binomial`` is None when alpha's MLE is on the boundary).
    pearson_chi2 : float
        ``sum((y − mu)² / mu)`` at the Poisson MLE.
    df_resid : int
        ``n − p`` of the Poisson model.
    dispersion : float
        ``pearson_chi2 / df_resid``.
    alpha : float
        NB2 dispersion estimate (0 on the boundary).
    lr_stat, lr_pvalue : float
        Likelihood-ratio statistic ``2 (loglik_NB − loglik_Poisson)`` and its p-value from
        the 50:50 mixture of χ²₀ and χ²₁.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import studies
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=(50, 1))
    >>> mu = np.exp(1.0 + 0.5 * x[:, 0])
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))  # NB2 counts, alpha = 0.5
    >>> res = studies.overdispersion(x, y)
    >>> res.table.index.tolist()
    ['poisson', 'negative_binomial']
    >>> type(res.plot()).__name__
    'Figure'
    """

    poisson: PointResult | None = None
    negative_binomial: PointResult | None = None
    pearson_chi2: float = float("nan")
    df_resid: int = 0
    dispersion: float = float("nan")
    alpha: float = float("nan")
    lr_stat: float = float("nan")
    lr_pvalue: float = float("nan")

    def plot(self):
        """Observed vs fitted count frequencies, and the variance against the mean."""
        import scipy.stats

        fig, (ax1, ax2) = new_figure(ncols=2, width=5.0, height=4.0)
        y = np.asarray(self.poisson.spec.data["y"], dtype=float)
        mu_p = _fitted_mean(self.poisson)
        top = int(min(max(np.quantile(y, 0.99), 5), 40))
        ks = np.arange(top + 1)
        observed = np.array([(y == k).sum() for k in ks])
        ax1.bar(ks, observed, color="0.75", label="observed")
        ax1.plot(ks, scipy.stats.poisson.pmf(ks[:, None], mu_p[None, :]).sum(axis=1), "o-",
                 ms=3, label="Poisson")
        if self.negative_binomial is not None:
            mu_nb = _fitted_mean(self.negative_binomial)
            size = 1.0 / self.alpha
            expected = scipy.stats.nbinom.pmf(ks[:, None], size, size / (size + mu_nb[None, :]))
            ax1.plot(ks, expected.sum(axis=1), "s-", ms=3, label="negative binomial")
        ax1.set(xlabel="count", ylabel="number of observations",
                title="Observed vs fitted frequencies")
        ax1.legend(fontsize=8)
        # Mean-variance: observations grouped by their Poisson fitted mean.
        order = np.argsort(mu_p)
        groups = [g for g in np.array_split(order, min(20, max(len(y) // 30, 2))) if g.size > 1]
        means = np.array([y[g].mean() for g in groups])
        variances = np.array([y[g].var(ddof=1) for g in groups])
        ok = (means > 0) & (variances > 0)
        ax2.loglog(means[ok], variances[ok], "ko", ms=4, label="grouped data")
        grid = np.geomspace(max(means[ok].min(), 1e-3), means[ok].max(), 100) if ok.any() else (
            np.geomspace(0.1, 10, 100))
        ax2.loglog(grid, grid, "-", label="Poisson: Var = μ")
        if self.negative_binomial is not None:
            ax2.loglog(grid, grid + self.alpha * grid**2, "--",
                       label=f"NB2: Var = μ + {self.alpha:.3g} μ²")
        ax2.set(xlabel="mean", ylabel="variance",
                title=f"Mean–variance (Pearson dispersion {self.dispersion:.3g})")
        ax2.legend(fontsize=8)
        return fig


def overdispersion(X: Any, y: Any, exposure: Any = None, random_seed: int | None = None
                   ) -> OverdispersionResult:
    """Compare Poisson and negative binomial (NB2) regressions on the same counts.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, d)
        Predictors (an intercept is added).
    y : array_like of int, shape (n,)
        Counts.
    exposure : array_like, optional
        Positive exposure per row (offset ``log(exposure)`` in both models).
    random_seed : int, optional
        Seed (drawn from the operating system's entropy when absent; the seed used is
        recorded in ``settings``).
        Accepted for the common study interface; the study is deterministic.

    Returns
    -------
    OverdispersionResult
        ``.table``, ``.dispersion``, ``.lr_stat``, ``.lr_pvalue``, ``.alpha``, ``.plot()``.

    Raises
    ------
    DataError
        Invalid data (from the builders).
    MLENotFoundError
        When the Poisson MLE does not exist (all-zero counts, separation).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import studies
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=(50, 1))
    >>> mu = np.exp(1.0 + 0.5 * x[:, 0])
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))  # NB2 counts, alpha = 0.5
    >>> res = studies.overdispersion(x, y)
    >>> round(res.dispersion, 2), round(res.alpha, 4)  # Pearson dispersion >> 1
    (2.78, 0.5013)
    >>> bool(res.lr_pvalue < 0.001)
    True
    >>> res.table.columns.tolist()
    ['loglik', 'n_params', 'aic', 'bic', 'converged', 'intercept', 'coef[x0]', 'alpha']
    """
    import scipy.stats

    random_seed = check_seed(random_seed)
    task_rngs(random_seed, 1)  # validates the seed (the study is deterministic)
    pois_spec = poisson_regression(X, y, exposure=exposure)
    nb_spec = negative_binomial_regression(X, y, exposure=exposure)
    pois, pois_ok = fit_quietly(pois_spec, "mle")
    try:
        nb, nb_ok = fit_quietly(nb_spec, "mle")
    except (MLENotFoundError, ConvergenceError):
        nb, nb_ok = None, False
    boundary = nb is None or (not nb_ok and float(nb.params["alpha"]) < 1e-6)
    if boundary:
        nb = None
    y_arr = np.asarray(pois.spec.data["y"], dtype=float)
    mu = _fitted_mean(pois)
    pearson = float(np.sum((y_arr - mu) ** 2 / mu))
    df_resid = int(y_arr.size - pois.n_params)
    labels = list(pois.labels) + ["alpha"]
    rows = []
    for name, res, ok in (("poisson", pois, pois_ok), ("negative_binomial", nb, nb_ok)):
        row: dict[str, Any] = {"model": name}
        if res is None:
            row.update({"loglik": np.nan, "n_params": np.nan, "aic": np.nan, "bic": np.nan,
                        "converged": False})
        else:
            row.update({"loglik": res.loglik, "n_params": res.n_params, "aic": res.aic,
                        "bic": res.bic, "converged": ok})
            row.update(dict(zip(res.labels, res.flat_params(), strict=True)))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["model", "loglik", "n_params", "aic", "bic",
                                        "converged", *labels]).set_index("model")
    lr = 0.0 if nb is None else max(2.0 * (nb.loglik - pois.loglik), 0.0)
    pvalue = 1.0 if lr == 0.0 else 0.5 * float(scipy.stats.chi2.sf(lr, 1))
    return OverdispersionResult(
        table=table,
        settings={"n": int(y_arr.size), "exposure": exposure is not None,
                  "random_seed": random_seed},
        poisson=pois, negative_binomial=nb, pearson_chi2=pearson, df_resid=df_resid,
        dispersion=pearson / df_resid, alpha=0.0 if nb is None else float(nb.params["alpha"]),
        lr_stat=lr, lr_pvalue=pvalue,
    )
