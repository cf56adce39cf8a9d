"""EM vs Newton vs NUTS on one mixture: speed, agreement, and what the posterior adds.

EM and the certified Newton optimiser maximise the same marginal likelihood from the same
seeded starts; the table says how many iterations and seconds each needed and how far apart
their answers are. NUTS (with the spec's proper priors) adds the uncertainty of every
observation's class: the plug-in responsibility at the MLE says "observation i belongs to
component j with probability r_ij" as if the parameters were known; the posterior averages that
over the parameters' uncertainty, and its spread over draws shows which observations' classes
the data leave open.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.special

from bayesmle._validation import check_seed
from bayesmle.errors import BayesMLEError, ConvergenceWarning, Diagnostic, SpecError
from bayesmle.models.mixture import component_logpdf, is_mixture
from bayesmle.models.spec import ModelSpec
from bayesmle.studies._common import new_figure
from bayesmle.studies._runner import StudyResult

__all__ = ["MixtureMethodsResult", "mixture_methods"]

_METHODS = ("em", "mle", "map", "laplace", "nuts")
_COLOURS = {"em": "#E69F00", "mle": "#0072B2", "map": "#D55E00", "laplace": "#009E73",
            "nuts": "#CC79A7"}


@dataclass(frozen=True, eq=False)
class MixtureMethodsResult(StudyResult):
    """The study's table (one row per method), the per-observation classes and the fits.

    Attributes
    ----------
    table : pandas.DataFrame
        Per method: ``iterations`` (EM iterations, Newton iterations; NUTS: draws),
        ``seconds`` (the likelihood is compiled before the clock starts; NUTS and Laplace
        include compiling their own functions), ``loglik`` at the estimate (NUTS: at
        the posterior mean), ``converged``, ``max_abs_diff_mle`` (largest difference of a
        reported parameter from the MLE's).
    classes : pandas.DataFrame
        Per observation: ``y`` (multivariate: one column per coordinate), the plug-in class
        probabilities at the MLE ``mle_r<j>``, the posterior mean ``nuts_r<j>`` and sd
        ``nuts_sd<j>`` of the responsibilities (NUTS only).
    results : dict
        The fits by method.
    """

    classes: pd.DataFrame = field(default_factory=pd.DataFrame)
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    spec: ModelSpec | None = field(default=None, repr=False)

    def plot(self):
        """The data with each method's mixture, and the class uncertainty per observation.

        Left: components dashed; right: the posterior sd of each observation's responsibility
        of component 1 against its plug-in value at the MLE.
        """
        fig, (ax, ax2) = new_figure(2, width=5.5)
        spec = self.spec
        y = spec.data["y"]
        kind = spec.options["mixture"]
        if y.ndim == 2:  # multivariate: the first two coordinates and each method's means
            ax.scatter(y[:, 0], y[:, 1], s=8, color="0.6", label="data")
            for method, res in self.results.items():
                mu = np.asarray(res.params["mu"])
                ax.scatter(mu[:, 0], mu[:, 1], marker="x", s=60, color=_COLOURS[method],
                           label=method)
            names = spec.coords.get("coordinate", ("y1", "y2"))
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
        elif kind == "regression":
            x = spec.data["X"][:, 0]
            ax.scatter(x, y, s=8, color="0.5", label="data")
            grid = np.linspace(x.min(), x.max(), 50)
            for method, res in self.results.items():
                p = res.params
                for j in range(spec.options["k"]):
                    line = p["intercept"][j] + grid * p["coef"][j, 0]
                    ax.plot(grid, line, color=_COLOURS[method], lw=1.2,
                            label=method if j == 0 else None)
            ax.set_xlabel(spec.coords["feature"][0])
            ax.set_ylabel("y")
        else:
            if kind == "poisson":
                grid = np.arange(0, int(y.max()) + 1)
                ax.hist(y, bins=np.arange(-0.5, y.max() + 1.5), density=True, color="0.85")
            else:
                pad = 0.1 * (y.max() - y.min())
                grid = np.linspace(y.min() - pad, y.max() + pad, 300)
                ax.hist(y, bins="auto", density=True, color="0.85")
            for method, res in self.results.items():
                comps = _component_density(spec, res.params, grid)
                ax.plot(grid, comps.sum(axis=1), color=_COLOURS[method], lw=1.5, label=method)
                for j in range(comps.shape[1]):
                    ax.plot(grid, comps[:, j], color=_COLOURS[method], lw=0.8, ls="--")
            ax.set_xlabel("y")
            ax.set_ylabel("density")
        ax.legend(frameon=False)
        ax.set_title("the mixture by method" + ("" if y.ndim == 2 or kind == "regression"
                                                else " (components dashed)"))
        if "nuts_sd1" in self.classes:
            ax2.scatter(self.classes["mle_r1"], self.classes["nuts_sd1"], s=10,
                        color=_COLOURS["nuts"])
            ax2.set_xlabel("plug-in P(component 1) at the MLE")
            ax2.set_ylabel("posterior sd of P(component 1)")
            ax2.set_title("class uncertainty per observation")
        else:
            ax2.set_axis_off()
        return fig


def _component_density(spec: ModelSpec, params: dict, grid: np.ndarray) -> np.ndarray:
    import scipy.stats

    w = np.asarray(params["weights"], dtype=float)
    if spec.options["mixture"] == "poisson":
        return w * scipy.stats.poisson.pmf(grid[:, None], params["rate"])
    sigma = np.broadcast_to(np.asarray(params["sigma"], dtype=float), w.shape)
    return w * scipy.stats.norm.pdf(grid[:, None], params["mu"], sigma)


def _loglik(spec: ModelSpec, params: dict) -> float:
    lp = component_logpdf(spec, params)
    return float(scipy.special.logsumexp(lp, axis=1).sum())


def mixture_methods(spec: ModelSpec, *, methods: Sequence[str] = ("em", "mle", "nuts"),
                    starts: int = 5, random_seed: int | None = None,
                    nuts_options: dict | None = None) -> MixtureMethodsResult:
    """Fit one mixture by EM, Newton (MLE) and NUTS, and compare them.

    Parameters
    ----------
    spec : ModelSpec
        A mixture spec (:func:`bayesmle.models.gaussian_mixture`, ``poisson_mixture``,
        ``mixture_regression``); ``"em"`` and ``"mle"`` use its flat version, ``"map"``,
        ``"laplace"`` and ``"nuts"`` its priors (NUTS needs proper ones).
    methods : sequence of {"em", "mle", "map", "laplace", "nuts"}
        Must include ``"mle"`` (the reference of ``max_abs_diff_mle``).
    starts : int, default 5
        Starts of EM, MLE and MAP (the same seeded starts for each).
    random_seed : int, optional
        Seed of the starts and of the draws (drawn and recorded in ``settings`` when absent).
    nuts_options : dict, optional
        Options of the NUTS fit (``draws``, ``tune``, ``chains``...).

    Returns
    -------
    MixtureMethodsResult
        A method that fails is left out of the table, its error kept in ``diagnostics``.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[rng.poisson(1.0, 60), rng.poisson(8.0, 40)]
    >>> res = bm.studies.mixture_methods(bm.models.poisson_mixture(y, 2),
    ...                                  methods=("em", "mle"), random_seed=0)
    >>> res.table.index.tolist(), bool(res.table.loc["em", "max_abs_diff_mle"] < 1e-5)
    (['em', 'mle'], True)
    """
    from bayesmle.inference.bound import bind
    from bayesmle.inference.driver import run
    from bayesmle.inference.responsibilities import responsibility_draws

    if not isinstance(spec, ModelSpec) or not is_mixture(spec):
        raise SpecError("`spec` must be a mixture spec (bm.models.gaussian_mixture, "
                        f"poisson_mixture or mixture_regression), got {spec!r}.")
    methods = tuple(methods)
    bad = [m for m in methods if m not in _METHODS]
    if bad or "mle" not in methods or len(set(methods)) != len(methods):
        raise SpecError(f"`methods` must be distinct names from {list(_METHODS)} including "
                        f"'mle', got {list(methods)}.")
    seed = check_seed(random_seed)
    # compile the likelihood's functions first, so that the seconds compare the algorithms
    bound = bind(spec.flat())
    x0 = bound.start_x()
    bound.objective()(x0)
    bound.evaluate(x0)
    results, rows, diagnostics = {}, [], []
    for method in methods:
        opts: dict[str, Any] = {"random_seed": seed}
        if method in ("em", "mle", "map"):
            opts["starts"] = starts
        if method == "nuts":
            opts.update(nuts_options or {})
        t0 = time.perf_counter()
        try:
            res = run(spec, method, **opts)
        except BayesMLEError as exc:
            diagnostics.append(Diagnostic(ConvergenceWarning,
                                          f"{method} failed: {type(exc).__name__}: {exc}"))
            continue
        seconds = time.perf_counter() - t0
        results[method] = res
        diagnostics.extend(res.diagnostics)
        if method == "em":
            iterations, converged = res.em_iterations, res.converged
        elif method == "nuts":
            sizes = res.datatree["posterior"].sizes
            iterations = int(sizes["chain"] * sizes["draw"])
            converged = res.diagnostics_ok()
        elif method == "laplace":
            iterations, converged = res.mode.n_iter, res.mode.converged
        else:
            iterations, converged = res.n_iter, res.converged
        rows.append({"method": method, "iterations": iterations, "seconds": seconds,
                     "loglik": _loglik(spec, res.params), "converged": bool(converged)})
    table = pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()
    if "mle" in results:
        ref = np.concatenate([np.ravel(v) for v in results["mle"].params.values()])
        table["max_abs_diff_mle"] = [
            float(np.max(np.abs(np.concatenate([np.ravel(v) for v in
                                                results[m].params.values()]) - ref)))
            for m in table.index]
    y = spec.data["y"]
    classes = pd.DataFrame({"y": y}) if y.ndim == 1 else pd.DataFrame(
        y, columns=[str(c) for c in spec.coords["coordinate"]])
    if "mle" in results:
        r = results["mle"].responsibilities().to_numpy()
        for j in range(r.shape[1]):
            classes[f"mle_r{j + 1}"] = r[:, j]
    if "nuts" in results:
        draws = responsibility_draws(results["nuts"], max_draws=1000)
        for j in range(draws.shape[2]):
            classes[f"nuts_r{j + 1}"] = draws[..., j].mean(axis=0)
            classes[f"nuts_sd{j + 1}"] = draws[..., j].std(axis=0)
    return MixtureMethodsResult(table=table, classes=classes, results=results, spec=spec,
                                settings={"random_seed": seed, "starts": starts,
                                          "methods": list(methods)},
                                diagnostics=tuple(diagnostics))
