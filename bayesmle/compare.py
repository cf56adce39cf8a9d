"""``compare(spec)``: the MLE, the MAP, the Laplace approximation and the posterior side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmle._validation import MAX_DRAWS, check_int, check_seed
from bayesmle.errors import BayesMLEError, SpecError
from bayesmle.inference.driver import APPROXIMATIONS, METHODS, OPTIONS, run
from bayesmle.inference.point import PointResult
from bayesmle.models.mixture import is_mixture
from bayesmle.models.spec import ModelSpec

__all__ = ["COMPARE_METHODS", "FIND_MAP_METHODS", "PREDICTIVE_COLUMNS", "Comparison", "compare",
           "point_datatree", "predictive_table"]

#: Credible level of the posterior intervals in the table (ArviZ's default).
CI_LEVEL = 0.94
#: Columns of ``Comparison.predictive`` (one row per method).
PREDICTIVE_COLUMNS = ("elpd", "se", "p", "kind", "elpd_diff", "diff_se", "warning", "aic_elpd")
#: Predictive draws shown by :meth:`Comparison.plot_ppc` unless told otherwise.
PPC_SAMPLES = 100

#: One colour per method, the same in every figure whichever methods are present (Okabe-Ito,
#: distinguishable with colour-blindness); the reports use the same map.
METHOD_COLOURS = {"mle": "#0072B2", "map": "#D55E00", "laplace": "#009E73", "nuts": "#CC79A7",
                  "reml": "#56B4E9", "em": "#E69F00",
                  # the optional methods: Paul Tol's muted colours (not black or grey, which
                  # figures use for ink, nor the report's spare colours)
                  "advi": "#117733", "fullrank_advi": "#882255", "pathfinder": "#332288",
                  "find_map_mle": "#44AA99", "find_map_map": "#AA4499"}
#: ``compare`` methods showing ``pymc.find_MAP``'s answer (default settings, not polished) and
#: its distance from the certified optimum, by the point method they stand for.
FIND_MAP_METHODS = {"find_map_mle": "mle", "find_map_map": "map"}
#: Methods ``compare`` accepts: the four of every model, REML (Gaussian mixed models), EM
#: (mixtures), the variational approximations and find_MAP's answers.
COMPARE_METHODS = (*METHODS, "reml", "em", *APPROXIMATIONS, *FIND_MAP_METHODS)
#: The options ``compare`` routes to each method.
COMPARE_OPTIONS = {**OPTIONS, **{m: frozenset({"start"}) for m in FIND_MAP_METHODS}}
#: What the comparison of a mixed model says about its point methods.
MIXED_NOTE = (
    "Mixed model: 'mle', 'reml', 'map' and 'laplace' are computed on the marginal likelihood, "
    "with the random effects integrated out ('map' is the marginal posterior mode, as blme). "
    "The joint mode of (fixed effects, random effects, scales) is not an estimator: the joint "
    "density grows without bound as a group scale goes to 0 with its random effects (a "
    "degenerate spike; see bayesmle.studies.joint_mode). NUTS samples the joint model, "
    "non-centred.")


@dataclass(frozen=True)
class MethodWarning:
    """A warning raised while fitting one method."""

    method: str
    category: str
    message: str


@dataclass(frozen=True, eq=False)
class Comparison:
    """The same model fitted several ways.

    Attributes
    ----------
    spec : ModelSpec
        The model.
    results : dict of str to result
        The fitted results by method (methods that failed are absent; see ``errors``).
    errors : dict of str to str
        Why a method has no result (e.g. the MLE does not exist), by method.
    warnings : list of MethodWarning
        Warnings raised while fitting (non-convergence, sampling problems), by method.
    table : pandas.DataFrame
        One row per scalar parameter (``coef[age]``, ``sigma``...); columns
        ``mle_estimate``/``mle_stderr``, ``map_estimate``/``map_stderr``,
        ``laplace_mode``/``laplace_mean``/``laplace_sd``, and ``nuts_mean``, ``nuts_sd``,
        ``nuts_eti_0.03``/``nuts_eti_0.97`` (94% equal-tailed interval), ``nuts_mcse_mean``,
        ``nuts_ess_bulk``, ``nuts_ess_tail``, ``nuts_r_hat``.
    datatrees : dict of str to xarray.DataTree
        One DataTree per method, ready for ``arviz_plots.plot_forest``. Point methods (MLE,
        MAP) are represented by draws from their asymptotic normal distribution
        ``N(estimate, cov)`` so that the forest plot shows their Wald intervals; the fit
        itself is in the ``fit`` group.
    random_seed : int
        Seed of the Laplace, NUTS and Wald draws (and of the LOO refits).
    predictive : pandas.DataFrame or None
        With ``compare(..., predictive=True)``: one row per method whose leave-one-out
        estimate succeeded (:data:`PREDICTIVE_COLUMNS`): ``elpd``, ``se``, ``p``, ``kind``
        (``"exact"``, ``"kfold"``, ``"psis"``...), ``elpd_diff`` (the best method's elpd
        minus this one's: 0 for the best, positive for worse methods), ``diff_se`` (standard
        error of that difference from the paired pointwise differences,
        ``sqrt(n * var(elpd_i(best) - elpd_i(method)))``), ``warning`` and ``aic_elpd``
        (``-AIC/2`` for the MLE, NaN for the others). None without ``predictive=True``.
    loo : dict of str to LooResult
        The leave-one-out results behind ``predictive``, by method.
    predictive_errors : dict of str to str
        Why a fitted method has no leave-one-out estimate (``"ErrorType: message"``).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.array([0.0, 0.0, 0.0, 0.0])  # no successes: the MLE of p is on the boundary
    >>> comp = bm.compare(bm.models.bernoulli(y, p_prior=bm.Beta(2.0, 2.0)),
    ...                   methods=("mle", "map"), warn=False)
    >>> list(comp.results), list(comp.errors)  # the MAP exists, the MLE does not
    (['map'], ['mle'])
    """

    spec: ModelSpec
    results: dict[str, Any]
    errors: dict[str, str]
    warnings: list[MethodWarning]
    table: pd.DataFrame
    datatrees: dict[str, xr.DataTree] = field(default_factory=dict)
    #: Seed of the Laplace, NUTS and Wald draws: the one given, or the one drawn when none was.
    random_seed: int | None = None
    predictive: pd.DataFrame | None = None
    loo: dict[str, Any] = field(default_factory=dict)
    predictive_errors: dict[str, str] = field(default_factory=dict)

    def plot(self, var_names: Sequence[str] | None = None):
        """Forest plot of every method (``arviz_plots.plot_forest``); returns the Figure.

        Point methods show their Wald intervals (see ``datatrees``), Laplace and NUTS their
        credible intervals (50% thick, 94% thin). Each method keeps its colour
        (``METHOD_COLOURS``) whichever methods are present. All parameters share one axis:
        pass ``var_names`` to group parameters of similar scale (e.g. ``["coef"]``).
        """
        import arviz_plots as azp

        if not self.datatrees:
            raise SpecError("Nothing to plot: no method produced a result "
                            f"(errors: {self.errors}).")
        names = list(var_names) if var_names is not None else list(self.spec.params)
        bad = [v for v in names if v not in self.spec.params]
        if bad:
            raise SpecError(f"`var_names` holds {bad}, which are not parameters of "
                            f"{self.spec.name!r}; valid names: {list(self.spec.params)}.")
        colours = [METHOD_COLOURS[m] for m in self.datatrees]
        if len(colours) > 1:
            style: dict[str, Any] = {"color": colours}
        else:
            style = {"visuals": {part: {"color": colours[0]}
                                 for part in ("trunk", "twig", "point_estimate")}}
        pc = azp.plot_forest(self.datatrees, var_names=names, combined=True,
                             ci_probs=(0.5, 0.94), backend="matplotlib", **style)
        if len(self.datatrees) > 1:
            pc.add_legend("model", title="method")
        return pc.viz["figure"].item()

    def plot_ppc(self, method: str | None = None, *, num_samples: int = PPC_SAMPLES,
                 random_seed: int | None = None):
        """Predictive check of one method against the observed data; returns the Figure.

        The method's predictive distribution of the fitted data (``result.predictive()``:
        the plug-in distribution at the estimate for MLE and MAP, averaged over the Laplace
        draws or the posterior draws otherwise) in the method's colour
        (:data:`METHOD_COLOURS`), the observed data in black: ``arviz_plots.plot_ppc_dist``
        with ``num_samples`` predictive draws (densities; ECDFs for counts and classes). A
        binary response has a calibration plot instead (``arviz_plots.plot_ppc_pava``: the
        observed event rate against the predicted probability, with its band).

        Parameters
        ----------
        method : str, optional
            A method with a result; default the first one (in the order of ``results``).
        num_samples : int, default 100
            Number of predictive draws shown.
        random_seed : int, optional
            Seed of the predictive draws; default the comparison's ``random_seed``.

        Raises
        ------
        SpecError
            ``method`` has no result, or a bad ``num_samples`` / ``random_seed``.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> y = np.random.default_rng(1).normal(size=30)
        >>> comp = bm.compare(bm.models.gaussian(y), methods=("mle",), random_seed=0)
        >>> fig = comp.plot_ppc("mle", num_samples=20)
        >>> type(fig).__name__
        'Figure'
        >>> comp.plot_ppc("nuts")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        bayesmle.errors.SpecError: `method` must be a method with a result, one of ['mle']...
        """
        import arviz_plots as azp

        if method is None:
            method = next(iter(self.results))
        if not isinstance(method, str) or method not in self.results:
            reason = (f" ({method} failed: {self.errors[method]})"
                      if isinstance(method, str) and method in self.errors else "")
            raise SpecError(f"`method` must be a method with a result, one of "
                            f"{list(self.results)}, got {method!r}{reason}.")
        n = check_int("num_samples", num_samples, 1, MAX_DRAWS)
        seed = self.random_seed if random_seed is None else check_seed(random_seed)
        result = self.results[method]
        colour = METHOD_COLOURS.get(method, "C0")
        tree = ppc_tree(result, n, seed)
        observed = _observed(tree)
        if observed.size and np.isin(observed, (0.0, 1.0)).all():
            tree = result.predictive(random_seed=seed)  # all draws: the predicted probability
            pc = azp.plot_ppc_pava(tree, backend="matplotlib",
                                   visuals={"lines": {"color": colour},
                                            "markers": {"color": colour}})
        else:
            discrete = bool(observed.size) and bool(np.all(observed == np.round(observed)))
            sizes = tree["posterior_predictive"].sizes
            n = min(n, int(sizes.get("chain", 1) * sizes.get("draw", 1)))
            pc = azp.plot_ppc_dist(tree, num_samples=n, backend="matplotlib",
                                   kind="ecdf" if discrete else "kde",
                                   visuals={"predictive_dist": {"color": colour, "alpha": 0.3},
                                            "observed_dist": {"color": "black"}})
        return pc.viz["figure"].item()

    def __repr__(self) -> str:
        return (f"<Comparison of {self.spec.name}: {list(self.results)}"
                f"{f', failed {list(self.errors)}' if self.errors else ''}>")


def _observed(tree: xr.DataTree) -> np.ndarray:
    """The observed response(s) of a predictive tree, flattened."""
    if "observed_data" not in tree.children:
        return np.array([])
    ds = tree["observed_data"].to_dataset()
    return np.concatenate([np.ravel(ds[v].to_numpy()).astype(float) for v in ds.data_vars])


def ppc_tree(result: Any, num_samples: int, random_seed: int | None) -> xr.DataTree:
    """``result.predictive()`` of the fitted data, with at least ``num_samples`` draws in all.

    Point methods draw ``num_samples`` from their plug-in distribution; Laplace and NUTS keep
    about ``num_samples`` of their draws (evenly spaced in each chain).
    """
    if result.method in ("mle", "map"):
        return result.predictive(draws=num_samples, random_seed=random_seed)
    chains = int(result.datatree["posterior"].sizes.get("chain", 1))
    per_chain = max(1, -(-num_samples // chains))
    return result.predictive(draws=per_chain, random_seed=random_seed)


def point_datatree(result: PointResult, draws: int = 1000, random_seed: int = 0,
                   chains: int = 4) -> xr.DataTree:
    """A point result as draws from ``N(estimate, cov)`` (its Wald distribution), as a DataTree.

    Parameters with undefined standard errors (lasso zeros, singular information) are held at
    the estimate.
    """
    est = result.flat_params()
    cov = np.array(result.cov, dtype=float)
    ok = np.isfinite(np.diag(cov)) & (np.diag(cov) > 0)
    sub = cov[np.ix_(ok, ok)]
    total = chains * draws
    flat = np.tile(est, (total, 1))
    if ok.any() and np.all(np.isfinite(sub)):
        rng = np.random.default_rng(random_seed)
        vals, vecs = np.linalg.eigh(0.5 * (sub + sub.T))
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        flat[:, ok] += rng.standard_normal((total, int(ok.sum()))) @ root.T
    post, i = {}, 0
    for name, value in result.params.items():
        value = np.asarray(value)
        size = value.size
        arr = flat[:, i:i + size].reshape(chains, draws, *value.shape)
        i += size
        dims, coords = result.dims_of(name, value)
        post[name] = xr.DataArray(arr, dims=["chain", "draw", *dims], coords=coords)
    tree = result.to_datatree()
    return xr.DataTree.from_dict({"posterior": xr.Dataset(post),
                                  "fit": tree["fit"].to_dataset()})


def _route(methods: Sequence[str], fit_options: dict[str, Any]) -> dict[str, dict]:
    valid = set().union(*(COMPARE_OPTIONS[m] for m in methods)) if methods else set()
    unknown = set(fit_options) - valid
    if unknown:
        raise SpecError(f"Unknown option(s) {sorted(unknown)} for methods {list(methods)}. "
                        f"Valid options: {sorted(valid)}.")
    return {m: {k: v for k, v in fit_options.items() if k in COMPARE_OPTIONS[m]}
            for m in methods}


def compare(spec: ModelSpec, methods: Sequence[str] = METHODS, *,
            random_seed: int | None = None, warn: bool = True, predictive: bool = False,
            **fit_options: Any) -> Comparison:
    """Fit ``spec`` by several methods and put the answers side by side.

    Parameters
    ----------
    spec : ModelSpec
        The model, from a builder in :mod:`bayesmle.models` or your own.
    methods : sequence of {"mle", "map", "laplace", "nuts", "reml", "advi", "fullrank_advi", \
"pathfinder", "find_map_mle", "find_map_map"}
        Methods to run, in the order of the table's columns (``"reml"``: Gaussian mixed
        models only). The variational approximations have columns ``<method>_mean``,
        ``<method>_sd`` and ``<method>_pareto_k`` (one value for the whole approximation,
        repeated on each row). ``"find_map_mle"`` / ``"find_map_map"`` run ``pymc.find_MAP``
        with its defaults (``fit(spec, "mle", optimizer="find_map")``) and show its answer
        (``find_map_mle_estimate``) and its distance from the certified optimum in that
        optimum's standard errors (``find_map_mle_distance_se``; the certified fit is the
        comparison's own ``"mle"`` / ``"map"`` when present, else one run for the purpose).
    random_seed : int, optional
        Seed of the Laplace and NUTS draws (and of the Wald draws in ``datatrees``). When
        absent one is drawn (PyMC's rule) and recorded as ``Comparison.random_seed``.
    warn : bool, default True
        Also emit each method's diagnostics as Python warnings (they are always listed in
        ``.warnings``).
    predictive : bool, default False
        Also estimate each fitted method's out-of-sample predictive accuracy by
        leave-one-out (``result.loo()``: exact refits for MLE and MAP, Pareto-smoothed
        importance sampling for the draws of Laplace and NUTS) and tabulate it as
        ``Comparison.predictive``. A method whose LOO fails is listed in
        ``.predictive_errors``, never fatal.
    **fit_options
        Options of :func:`bayesmle.fit`; each goes to the methods that accept it
        (``draws`` to Laplace and NUTS, ``tune``/``chains`` to NUTS, ``max_iter`` to the
        optimisers...).

    Returns
    -------
    Comparison
        ``.table``, ``.datatrees``, ``.plot()``, ``.plot_ppc()`` (and ``.predictive``); a
        method that cannot be fitted (e.g. the MLE
        does not exist, or NUTS on an improper posterior) is listed in ``.errors`` with the
        reason instead of failing the whole comparison.

    Raises
    ------
    SpecError
        Unknown methods or options.
    BayesMLEError
        If every method fails (the first error is raised).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmle as bm
    >>> y = np.random.default_rng(0).normal(2.0, 1.0, size=40)
    >>> spec = bm.models.gaussian(y, mu_prior=bm.Normal(1.0))
    >>> comp = bm.compare(spec, methods=("mle", "map", "laplace"), draws=200)
    >>> comp.table.columns[:4].tolist()
    ['mle_estimate', 'mle_stderr', 'map_estimate', 'map_stderr']
    >>> bool(abs(comp.table.loc["mu", "map_estimate"]) < abs(comp.table.loc["mu", "mle_estimate"]))
    True

    Leave-one-out predictive accuracy, side by side:

    >>> comp = bm.compare(spec, methods=("mle", "map"), predictive=True, random_seed=0)
    >>> comp.predictive.columns.tolist()  # one row per method
    ['elpd', 'se', 'p', 'kind', 'elpd_diff', 'diff_se', 'warning', 'aic_elpd']
    """
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"`spec` must be a ModelSpec, got {type(spec).__name__}.")
    if isinstance(methods, str) or not isinstance(methods, Sequence | set | frozenset):
        raise SpecError(f"`methods` must be a sequence of names from {list(METHODS)} (e.g. "
                        f"('mle', 'map')), got {methods!r}.")
    methods = tuple(methods)
    bad = [m for m in methods if not isinstance(m, str) or m not in COMPARE_METHODS]
    if bad or not methods or len(set(methods)) != len(methods):
        raise SpecError(f"`methods` must be distinct names from {list(COMPARE_METHODS)}, got "
                        f"{list(methods)}.")
    seed = check_seed(random_seed)
    if not isinstance(warn, bool):
        raise SpecError(f"`warn` must be True or False, got {warn!r}.")
    if not isinstance(predictive, bool):
        raise SpecError(f"`predictive` must be True or False, got {predictive!r}.")
    options = _route(methods, fit_options)
    chains = int(options.get("nuts", {}).get("chains", 4))
    draws = int(next((options[m]["draws"] for m in ("nuts", "laplace", *APPROXIMATIONS)
                      if "draws" in options.get(m, {})), 1000))
    for m in ("laplace", *APPROXIMATIONS):  # as many draws as NUTS draws: the forest lines up
        if m in options:
            options[m]["draws"] = chains * int(options[m].get("draws", draws))
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    caught: list[MethodWarning] = []
    first_error: BayesMLEError | None = None
    for method in methods:
        opts = dict(options[method])
        if method in ("laplace", "nuts", *APPROXIMATIONS) or is_mixture(spec):  # seeded starts
            opts.setdefault("random_seed", seed)
        if method in FIND_MAP_METHODS:
            opts["optimizer"] = "find_map"
        try:
            results[method] = run(spec, FIND_MAP_METHODS.get(method, method), **opts)
        except BayesMLEError as exc:
            errors[method] = str(exc)
            first_error = first_error or exc
            continue
        for diagnostic in results[method].diagnostics:
            caught.append(MethodWarning(method, diagnostic.category_name, diagnostic.message))
            if warn:
                diagnostic.emit()
    if not results:
        raise first_error  # type: ignore[misc]
    if spec.solver == "mixed":
        caught.append(MethodWarning("all", "MixedModelNote", MIXED_NOTE))
    notes = next((r.notes for r in results.values() if getattr(r, "notes", ())), ())
    if notes:  # mixtures: the optima are local (and the likelihood may be unbounded)
        caught.append(MethodWarning("all", "MixtureNote", " ".join(notes)))
    loos: dict[str, Any] = {}
    loo_errors: dict[str, str] = {}
    if predictive:
        loos, loo_errors = _loos(results, seed)
    return Comparison(spec=spec, results=results, errors=errors, warnings=caught,
                      table=_table(results, _certified(spec, results, options)),
                      datatrees=_datatrees(results, seed, chains=chains, draws=draws),
                      random_seed=seed,
                      predictive=predictive_table(loos) if predictive else None,
                      loo=loos, predictive_errors=loo_errors)


def _loos(results: dict[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, str]]:
    """``result.loo()`` of every result; failures as ``"ErrorType: message"``.

    A result without a ``loo`` method (one of a user's own classes) is left out.
    """
    loos: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for method, res in results.items():
        loo = getattr(res, "loo", None)
        if loo is None or method in FIND_MAP_METHODS:  # a check of an optimiser, not a model
            continue
        try:
            loos[method] = loo(random_seed=seed)
        except BayesMLEError as exc:
            failed[method] = f"{type(exc).__name__}: {exc}"
    return loos, failed


def predictive_table(loos: dict[str, Any]) -> pd.DataFrame:
    """The predictive table of ``Comparison.predictive`` from LOO results, by method.

    ``elpd_diff`` is the best method's elpd minus each method's (0 for the best);
    ``diff_se`` is ``sqrt(n * var(d))`` of the pointwise differences ``d_i`` (ArviZ's
    ``compare``), NaN when the pointwise estimates are not over the same observations.

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> from bayesmle.compare import predictive_table
    >>> def loo(values, aic=None):
    ...     pw = pd.DataFrame({"elpd": values})
    ...     return SimpleNamespace(elpd=sum(values), se=1.0, p=2.0, kind="exact",
    ...                            warning=None, pointwise=pw, aic_elpd=aic)
    >>> table = predictive_table({"mle": loo([-1.0, -2.0, -1.0, -2.0], aic=-6.5),
    ...                           "map": loo([-1.0, -1.0, -1.0, -1.0])})
    >>> table[["elpd", "elpd_diff", "diff_se", "aic_elpd"]]  # d = (0, 1, 0, 1): sqrt(4 * 0.25)
            elpd  elpd_diff  diff_se  aic_elpd
    method
    mle     -6.0        2.0      1.0      -6.5
    map     -4.0        0.0      0.0       NaN
    """
    rows = {}
    for method, loo in loos.items():
        aic = getattr(loo, "aic_elpd", None) if method == "mle" else None
        rows[method] = {"elpd": float(loo.elpd), "se": float(loo.se), "p": float(loo.p),
                        "kind": loo.kind, "elpd_diff": np.nan, "diff_se": np.nan,
                        "warning": loo.warning,
                        "aic_elpd": float(aic) if aic is not None else np.nan}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(PREDICTIVE_COLUMNS))
    table.index.name = "method"
    if table.empty:
        return table
    table[["elpd", "se", "p", "elpd_diff", "diff_se", "aic_elpd"]] = table[
        ["elpd", "se", "p", "elpd_diff", "diff_se", "aic_elpd"]].astype(float)
    best = str(table["elpd"].idxmax())
    best_pw = loos[best].pointwise["elpd"]
    for method, loo in loos.items():
        table.loc[method, "elpd_diff"] = table.loc[best, "elpd"] - table.loc[method, "elpd"]
        pw = loo.pointwise["elpd"]
        if len(pw) == len(best_pw) and pw.index.equals(best_pw.index):
            d = best_pw.to_numpy(dtype=float) - pw.to_numpy(dtype=float)
            table.loc[method, "diff_se"] = float(np.sqrt(d.size * np.var(d)))
    return table


def _certified(spec: ModelSpec, results: dict[str, Any], options: dict[str, dict]
               ) -> dict[str, Any]:
    """The certified optimum each find_MAP column is measured against (None if it failed)."""
    out: dict[str, Any] = {}
    for method, base in FIND_MAP_METHODS.items():
        if method not in results:
            continue
        if base in results:
            out[method] = results[base]
            continue
        try:
            out[method] = run(spec, base, **options.get(method, {}))
        except BayesMLEError:
            out[method] = None
    return out


def _table(results: dict[str, Any], certified: dict[str, Any] | None = None) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    labels: list[str] | None = None
    for method, res in results.items():
        if method in APPROXIMATIONS:
            labels = labels or res.labels
            columns[f"{method}_mean"] = res.mean()
            columns[f"{method}_sd"] = res.sd()
            columns[f"{method}_pareto_k"] = pd.Series(res.pareto_k, index=res.labels)
        elif method in FIND_MAP_METHODS:
            labels = labels or res.labels
            columns[f"{method}_estimate"] = pd.Series(res.flat_params(), index=res.labels)
            ref = (certified or {}).get(method)
            dist = (np.full(len(res.labels), np.nan) if ref is None or not ref.converged
                    else (res.flat_params() - ref.flat_params()) / ref.flat_stderr())
            columns[f"{method}_distance_se"] = pd.Series(dist, index=res.labels)
        elif method == "laplace":
            labels = labels or res.labels
            columns["laplace_mode"] = pd.Series(res.flat_params(), index=res.labels)
            columns["laplace_mean"] = res.mean()
            columns["laplace_sd"] = res.sd()
        elif method in ("mle", "map", "reml", "em"):
            labels = labels or res.labels
            columns[f"{method}_estimate"] = pd.Series(res.flat_params(), index=res.labels)
            columns[f"{method}_stderr"] = pd.Series(res.flat_stderr(), index=res.labels)
        else:
            summ = res.summary(level=CI_LEVEL)
            labels = labels or list(summ.index)
            lo, hi = [c for c in summ.columns if c.startswith("eti_")]
            for col in ("mean", "sd", lo, hi, "mcse_mean", "ess_bulk", "ess_tail", "r_hat"):
                columns[f"{method}_{col}"] = summ[col]
    table = pd.DataFrame(columns).reindex(labels)
    table.index.name = "parameter"
    return table


def _as_chains(tree: xr.DataTree, chains: int) -> xr.DataTree:
    """Split one long chain of independent draws into ``chains`` chains (for plot alignment)."""
    post = tree["posterior"].to_dataset()
    total = post.sizes["draw"]
    if post.sizes.get("chain") != 1 or total % chains:
        return tree
    split = post.isel(chain=0, drop=True).drop_vars("draw", errors="ignore")
    split = split.coarsen(draw=total // chains).construct(draw=("chain", "draw"))
    split = split.assign_coords(chain=np.arange(chains), draw=np.arange(total // chains))
    groups = {path: node.to_dataset() for path, node in tree.children.items()}
    groups["posterior"] = split.transpose("chain", "draw", ...)
    return xr.DataTree.from_dict(groups)


def _datatrees(results: dict[str, Any], random_seed: int, *, chains: int, draws: int
               ) -> dict[str, xr.DataTree]:
    trees = {}
    for method, res in results.items():
        if method in ("laplace", *APPROXIMATIONS):
            trees[method] = _as_chains(res.to_datatree(), chains)
        elif method in ("mle", "map", "reml", "em", *FIND_MAP_METHODS):
            trees[method] = point_datatree(res, draws=draws, random_seed=random_seed,
                                           chains=chains)
        else:
            trees[method] = res.to_datatree()
    return trees
