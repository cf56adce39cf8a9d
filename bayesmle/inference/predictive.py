"""Predictions from any result: plug-in, Wald, Laplace, posterior and prior predictive.

Every method's answer is a set of *parameter draws* in the reported parametrisation
(:func:`parameter_draws`): one point for a plug-in MLE/MAP, draws of its Wald normal when
parameter uncertainty is asked for, the draws of a Laplace approximation, the posterior draws
of NUTS, prior draws. The predictive distribution of the observations is the observation
model (:mod:`bayesmle.models.observations`) averaged over those draws; its compiled functions
(:mod:`bayesmle.inference.observation_engine`) serve the fitted data and new data alike.

* :func:`predict` -- a table: ``mean`` = E[y | x] (averaged over the draws), and with
  ``level`` the central predictive interval of a *new observation*: exact quantiles of the
  plug-in distribution for a point estimate (CDF inversion; integers for counts), quantiles of
  the predictive draws otherwise. Categorical models give class probabilities.
* :func:`predictive` -- an ArviZ DataTree with ``posterior`` (the draws used),
  ``posterior_predictive`` and, when the data hold the response, ``observed_data`` and
  ``log_likelihood``: what ``arviz_plots.plot_ppc_dist``, ``plot_ppc_pit`` and
  ``arviz_stats.loo`` take.
* :func:`log_likelihood` -- the pointwise log-likelihood of every draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import xarray as xr

from bayesmle._validation import MAX_DRAWS, check_int, check_level, check_memory, check_seed
from bayesmle.errors import DataError, SpecError
from bayesmle.inference.observation_engine import CompiledObservations, compiled_observations
from bayesmle.models.observations import Rows, observations_of

__all__ = ["ParameterDraws", "Predicts", "log_likelihood", "log_score", "parameter_draws",
           "predict", "predictive"]

UNCERTAINTY = ("none", "wald")
#: Draws of a point estimate's Wald normal (``uncertainty="wald"``) unless told otherwise.
WALD_DRAWS = 4000
#: Predictive draws of a plug-in distribution (point methods) in :func:`predictive`.
PLUGIN_DRAWS = 1000
#: Largest (draws x observations) array computed at once; larger ones go in blocks.
BLOCK = 2_000_000


@dataclass(frozen=True)
class ParameterDraws:
    """Draws of the reported parameters, ``(chain, draw, *shape)`` by name, and their origin."""

    values: dict[str, np.ndarray]
    #: "plug-in", "wald", "laplace", "posterior" or "prior"
    kind: str
    random_seed: int | None = None

    @property
    def chains(self) -> int:
        """Number of chains."""
        return int(next(iter(self.values.values())).shape[0])

    @property
    def draws(self) -> int:
        """Number of draws per chain."""
        return int(next(iter(self.values.values())).shape[1])

    def flat(self) -> dict[str, np.ndarray]:
        """The draws with chains stacked: ``(chain * draw, *shape)``."""
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.values.items()}


def _group_arrays(tree: xr.DataTree, group: str, names) -> dict[str, np.ndarray]:
    ds = tree[group].to_dataset()
    out = {}
    for name in names:
        da = ds[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        out[name] = da.transpose("chain", "draw", *extra).to_numpy()
    return out


def parameter_draws(result: Any, *, uncertainty: str | None = None, draws: int | None = None,
                    random_seed: int | None = None) -> ParameterDraws:
    """The parameter draws a result predicts with (see the module docstring).

    ``uncertainty`` applies to MLE/MAP results: ``"none"`` (default, the plug-in point) or
    ``"wald"`` (draws of the estimate's asymptotic normal in the model's unconstrained
    coordinates, mapped back, ``draws`` of them).
    """
    method = result.method
    params = result.spec.params
    if method in ("mle", "map"):
        unc = "none" if uncertainty is None else uncertainty
        if not isinstance(unc, str) or unc not in UNCERTAINTY:
            raise SpecError(f"`uncertainty` must be one of {list(UNCERTAINTY)}, got {unc!r}.")
        if unc == "none":
            return ParameterDraws({k: np.asarray(v)[None, None] for k, v in
                                   result.params.items()}, "plug-in")
        from bayesmle.inference.laplace import normal_draws

        n = check_int("draws", WALD_DRAWS if draws is None else draws, 1, MAX_DRAWS)
        seed = check_seed(random_seed)
        values = normal_draws(result, n, seed)
        if any(np.isnan(v).all() for v in values.values()):
            raise SpecError(f"The {method.upper()}'s Hessian is not positive definite, so it "
                            "has no Wald distribution to draw from; use uncertainty='none'.")
        return ParameterDraws(values, "wald", seed)
    if uncertainty not in (None, "none"):
        raise SpecError(f"`uncertainty` applies to 'mle' and 'map' results; a {method!r} "
                        "result predicts with its own draws.")
    if method in ("laplace", "advi", "fullrank_advi", "pathfinder"):  # approximations' draws
        return ParameterDraws(_group_arrays(result.datatree, "posterior", params), "laplace")
    if method == "nuts":
        return ParameterDraws(_group_arrays(result.datatree, "posterior", params), "posterior")
    if method == "prior":
        return ParameterDraws(_group_arrays(result.datatree, "prior", params), "prior",
                              result.random_seed)
    raise SpecError(f"Results of method {method!r} have no predictive distribution.")


# ---------------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setup:
    """A spec's compiled observation model with the data it is called on (fitted or new)."""

    compiled: CompiledObservations
    rows: Rows
    data: tuple[np.ndarray, ...]


def setup_for(spec, data) -> Setup:
    """The observation model of ``spec`` compiled and bound to ``data`` (None: fitted data)."""
    obs = observations_of(spec)
    rows = obs.arrays(spec, data)
    cm = compiled_observations(obs, rows.arrays, tuple(spec.params))
    return Setup(cm, rows, cm.data_for(rows.arrays))


def _blocks(total: int, n: int):
    """Slices of the draw axis so that each block holds at most ``BLOCK`` values."""
    step = max(1, BLOCK // max(n, 1))
    for start in range(0, total, step):
        yield slice(start, min(total, start + step))


def call_over_draws(setup: Setup, fn, flat: dict[str, np.ndarray], *extra, rng_count: int = 0,
                    rng: np.random.Generator | None = None, reduce=None) -> list[np.ndarray]:
    """``fn`` over all draws in blocks; outputs concatenated along the draw axis.

    With ``reduce="mean"`` the outputs are averaged over draws block by block (the full
    ``(draws, rows)`` array is never held).
    """
    cm = setup.compiled
    arrays = cm.params_for(flat)
    total = arrays[0].shape[0]
    parts: list[list[np.ndarray]] = []
    for block in _blocks(total, setup.rows.n):
        rngs = list(rng.spawn(rng_count)) if rng_count else []
        out = fn(*(a[block] for a in arrays), *extra, *setup.data, *rngs)
        out = [np.asarray(o) for o in out]
        if reduce == "mean":
            out = [o.sum(axis=0, keepdims=True) / total for o in out]
        parts.append(out)
    if reduce == "mean":
        return [np.sum([p[i] for p in parts], axis=0)[0] for i in range(len(parts[0]))]
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def _single_observed(cm: CompiledObservations) -> str:
    if len(cm.observed) != 1:
        raise SpecError(f"predict() tabulates one observed variable; this model has "
                        f"{cm.observed}. Use predictive() for the draws of each.")
    return cm.observed[0]


def _index(rows: Rows) -> pd.Index:
    return rows.index if rows.index is not None else pd.RangeIndex(rows.n, name="row")


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------
def predict(result: Any, data: Any = None, *, level: float | None = None,
            uncertainty: str | None = None, draws: int | None = None,
            random_seed: int | None = None) -> pd.DataFrame:
    """Predictions of a result for the fitted data or new data (see the module docstring).

    Parameters
    ----------
    result : FitResult
        MLE, MAP, Laplace, NUTS or prior result.
    data : dict or pandas.DataFrame, optional
        New data: the builder's predictor arguments as a dict (``{"X": X_new}``, with
        ``exposure=``/``offset=`` where the builder has them) or a DataFrame with the fitted
        column names. None: the fitted data.
    level : float, optional
        Coverage of the central predictive interval of a new observation (columns ``lower``,
        ``upper``).
    uncertainty : {"none", "wald"}, optional
        MLE/MAP only: ``"wald"`` averages over draws of the estimate's asymptotic normal.
    draws : int, optional
        Number of Wald draws (default 4000).
    random_seed : int, optional
        Seed of the predictive draws (drawn from entropy and recorded in ``attrs`` when absent).

    Returns
    -------
    pandas.DataFrame
        One row per observation: ``mean`` (or ``prob[<class>]`` and ``predicted`` for a
        categorical response), ``lower``/``upper`` with ``level``. ``attrs`` records the
        method, the kind of predictive and the seed. Where E[y | x] does not exist -- Cauchy
        noise, Student-t noise with ``nu <= 1`` at the estimate or in any draw -- ``mean`` is
        NaN and ``attrs["mean_defined"]`` is False; the intervals still exist.
    """
    if level is not None:
        level = check_level(level)
    seed = check_seed(random_seed)
    spec = result.spec
    pdraws = parameter_draws(result, uncertainty=uncertainty, draws=draws, random_seed=seed)
    setup = setup_for(spec, data)
    cm = setup.compiled
    name = _single_observed(cm)
    flat = pdraws.flat()
    mean_fn = cm.mean_fn(name)
    index = _index(setup.rows)
    out = pd.DataFrame(index=index)
    categorical = cm.model[name].owner.op.__class__.__name__ == "CategoricalRV"
    if mean_fn is not None:
        mean = call_over_draws(setup, mean_fn, flat, reduce="mean")[0]
        if categorical:
            classes = spec.options.get("classes") or tuple(range(mean.shape[-1]))
            for k, c in enumerate(classes):
                out[f"prob[{c}]"] = mean[:, k]
            out["predicted"] = np.asarray(classes, dtype=object)[np.argmax(mean, axis=1)]
        else:
            out["mean"] = mean
    else:
        out["mean"] = np.nan  # e.g. Cauchy: E[y | x] does not exist
    if level is not None:
        if categorical:
            raise SpecError("A categorical response has no predictive interval; the class "
                            "probabilities are the predictive distribution (drop `level`).")
        rng = np.random.default_rng(seed)
        if pdraws.kind == "plug-in":
            lo, hi = _plugin_quantiles(setup, name, flat, ((1 - level) / 2,
                                                          1 - (1 - level) / 2), rng)
        else:
            lo, hi = _draw_quantiles(setup, name, flat, level, rng)
        out["lower"], out["upper"] = lo, hi
    defined = mean_fn is not None and bool(np.all(np.isfinite(out.iloc[:, 0].to_numpy(float))))
    out.attrs.update(method=result.method, predictive=pdraws.kind, random_seed=seed,
                     level=level, mean_defined=defined)
    return out


def _draw_quantiles(setup: Setup, name: str, flat, level: float, rng):
    """Quantiles of one predictive draw per parameter draw (integers for counts)."""
    fn, n_rng = setup.compiled.draw_fn()
    i = setup.compiled.observed.index(name)
    total = next(iter(flat.values())).shape[0]
    check_memory("The predictive draws", total * setup.rows.n, 8 * len(setup.compiled.observed),
                 "Use fewer draws (predictive(draws=...)) or fewer rows.")
    y = call_over_draws(setup, fn, flat, rng_count=n_rng, rng=rng)[i]
    probs = [(1 - level) / 2, 1 - (1 - level) / 2]
    if setup.compiled.kind(name) == "discrete":
        q = np.quantile(y, probs, axis=0, method="inverted_cdf")
    else:
        q = np.quantile(y, probs, axis=0)
    return q[0], q[1]


def _plugin_quantiles(setup: Setup, name: str, flat, probs, rng):
    """Exact quantiles of the plug-in distribution by inverting its CDF, row by row.

    Continuous: PyMC's inverse CDF, else bisection on the CDF to the last bit; discrete: the
    smallest integer whose CDF reaches the probability. Brackets start from 256 draws of the
    distribution. Without a CDF in PyMC, quantiles of 20,000 draws.
    """
    cm = setup.compiled
    discrete = cm.kind(name) == "discrete"
    icdf = None if discrete else cm.icdf_fn(name)
    if icdf is not None:  # closed-form inverse CDF (PyMC's), exact
        return tuple(call_over_draws(setup, icdf, flat, np.full(setup.rows.n, p))[0][0]
                     for p in probs)
    cdf = cm.cdf_fn(name)
    fn, n_rng = cm.draw_fn()
    i = cm.observed.index(name)
    tiled = {k: np.repeat(v, 256 if cdf is not None else 20_000, axis=0)
             for k, v in flat.items()}
    sample = call_over_draws(setup, fn, tiled, rng_count=n_rng, rng=rng)[i]
    if cdf is None:
        q = np.quantile(sample, probs, axis=0, method="inverted_cdf" if discrete else "linear")
        return q[0], q[1]
    dtype = cm.model[name].dtype

    def logcdf(q):
        return call_over_draws(setup, cdf, flat, q.astype(dtype))[0][0]

    return tuple(_invert(logcdf, np.log(p), sample, discrete).astype(dtype) for p in probs)


def _invert(logcdf, logp: float, sample: np.ndarray, discrete: bool) -> np.ndarray:
    lo, hi = sample.min(axis=0).astype(float), sample.max(axis=0).astype(float)
    width = np.maximum(hi - lo, 1.0)
    lo, hi = lo - width, hi + width
    for _ in range(200):  # widen until F(lo) < p <= F(hi)
        low_bad, high_bad = logcdf(lo) >= logp, logcdf(hi) < logp
        if not (low_bad.any() or high_bad.any()):
            break
        width *= 2.0
        lo = np.where(low_bad, lo - width, lo)
        hi = np.where(high_bad, hi + width, hi)
    if discrete:
        lo, hi = np.floor(lo), np.ceil(hi)
        while np.any(hi - lo > 1):
            mid = np.floor((lo + hi) / 2)
            ok = logcdf(mid) >= logp
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        ok = logcdf(mid) >= logp
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(np.abs(mid), 1e-300)):
            break
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------------------
# predictive DataTree and log-likelihood
# ---------------------------------------------------------------------------------------------
def _obs_dataset(cm: CompiledObservations, values: dict[str, np.ndarray], rows: Rows,
                 leading: tuple[str, ...]) -> xr.Dataset:
    out = {}
    for name, arr in values.items():
        arr = np.asarray(arr)
        extra = arr.ndim - len(leading)
        dims = [*leading, *(f"{name}_dim_{k}" for k in range(extra))]
        coords = {}
        if rows.index is not None and extra >= 1:
            coords[f"{name}_dim_0"] = rows.index.to_numpy()
        out[name] = xr.DataArray(arr, dims=dims, coords=coords)
    return xr.Dataset(out)


def _reshape(arr: np.ndarray, chains: int, draws: int) -> np.ndarray:
    return arr.reshape(chains, draws, *arr.shape[1:])


def log_likelihood(result: Any, data: Any = None, *, uncertainty: str | None = None,
                   draws: int | None = None, random_seed: int | None = None) -> xr.Dataset:
    """Pointwise log-likelihood ``(chain, draw, observation)`` per observed variable.

    ``data`` must hold the response (the fitted data do).
    """
    pdraws = parameter_draws(result, uncertainty=uncertainty, draws=draws,
                             random_seed=random_seed)
    setup = setup_for(result.spec, data)
    return loglik_dataset(setup, pdraws, new=data is not None)


def loglik_dataset(setup: Setup, pdraws: ParameterDraws, *, new: bool = False
                   ) -> xr.Dataset:
    """Pointwise log-likelihood of ``pdraws`` on ``setup``'s data, in ArviZ's layout."""
    if not setup.rows.observed:
        raise SpecError("The log-likelihood needs the observed response: give it in `data` "
                        "(e.g. data={'X': X_new, 'y': y_new}).")
    cm = setup.compiled
    check_memory("The pointwise log-likelihood", pdraws.chains * pdraws.draws * setup.rows.n,
                 8, "Use fewer draws or fewer rows.")
    out = call_over_draws(setup, cm.loglik_fn(), pdraws.flat())
    for name, ll in zip(cm.observed, out, strict=True):
        bad = np.flatnonzero(np.all(np.isneginf(ll.reshape(ll.shape[0], ll.shape[1], -1)),
                                    axis=(0, 2))) if new else ()
        if len(bad):  # impossible under every draw: outside the support, not a bad fit
            raise DataError(f"`data[{cm.response[name]!r}]` holds value(s) outside the support "
                            f"of {name!r} at row(s) {bad[:10].tolist()} (log-likelihood -inf "
                            "under every draw); check the new response.")
    values = {n: _reshape(v, pdraws.chains, pdraws.draws)
              for n, v in zip(cm.observed, out, strict=True)}
    return _obs_dataset(cm, values, setup.rows, ("chain", "draw"))


def predictive(result: Any, data: Any = None, *, draws: int | None = None,
               uncertainty: str | None = None, random_seed: int | None = None
               ) -> xr.DataTree:
    """Draws of the predictive distribution as an ArviZ DataTree (see the module docstring).

    Parameters
    ----------
    result : FitResult
        Any result.
    data : dict or pandas.DataFrame, optional
        New data as in :func:`predict`; None: the fitted data.
    draws : int, optional
        Point methods: number of predictive draws (default 1000, or the Wald draws). Laplace
        and NUTS: keep this many draws per chain (evenly spaced; default all).
    uncertainty : {"none", "wald"}, optional
        As in :func:`predict`.
    random_seed : int, optional
        Seed of the predictive draws; recorded in the groups' ``attrs``.

    Returns
    -------
    xarray.DataTree
        ``posterior`` (the parameter draws used; ``prior`` for a prior result),
        ``posterior_predictive`` (``prior_predictive``), and when the data hold the response
        ``observed_data`` and ``log_likelihood``.
    """
    seed = check_seed(random_seed)
    pdraws = parameter_draws(result, uncertainty=uncertainty, draws=draws, random_seed=seed)
    if pdraws.kind == "plug-in":
        n = check_int("draws", PLUGIN_DRAWS if draws is None else draws, 1, MAX_DRAWS)
        pdraws = ParameterDraws({k: np.repeat(v, n, axis=1) for k, v in pdraws.values.items()},
                                "plug-in")
    elif draws is not None and pdraws.kind in ("laplace", "posterior", "prior"):
        n = check_int("draws", draws, 1, MAX_DRAWS)
        keep = np.unique(np.linspace(0, pdraws.draws - 1, min(n, pdraws.draws)).round()
                         .astype(int))
        pdraws = ParameterDraws({k: v[:, keep] for k, v in pdraws.values.items()},
                                pdraws.kind, pdraws.random_seed)
    spec = result.spec
    setup = setup_for(spec, data)
    cm = setup.compiled
    check_memory("The predictive draws", pdraws.chains * pdraws.draws * setup.rows.n,
                 8 * (2 + len(cm.observed)), "Use fewer draws or fewer rows.")
    fn, n_rng = cm.draw_fn()
    ys = call_over_draws(setup, fn, pdraws.flat(), rng_count=n_rng, rng=np.random.default_rng(seed))
    prior = pdraws.kind == "prior"
    pred = _obs_dataset(cm, {n: _reshape(y, pdraws.chains, pdraws.draws)
                             for n, y in zip(cm.observed, ys, strict=True)},
                        setup.rows, ("chain", "draw"))
    pred.attrs.update(predictive=pdraws.kind, method=result.method, random_seed=seed)
    from bayesmle.inference.draws import posterior_tree

    tree = posterior_tree(spec, pdraws.values)
    groups = {"prior" if prior else "posterior": tree["posterior"].to_dataset(),
              "prior_predictive" if prior else "posterior_predictive": pred}
    if setup.rows.observed:
        observed = {n: np.asarray(setup.rows.arrays[cm.response[n]], dtype=cm.model[n].dtype)
                    for n in cm.observed}
        groups["observed_data"] = _obs_dataset(cm, observed, setup.rows, ())
        if not prior:
            groups["log_likelihood"] = loglik_dataset(setup, pdraws, new=data is not None)
    return xr.DataTree.from_dict(groups)


def log_score(result: Any, data: Any = None, **kwargs: Any) -> np.ndarray:
    """Pointwise log predictive density ``log mean_s p(y_i | theta_s)`` (held-out scoring)."""
    ds = log_likelihood(result, data, **kwargs)
    name = next(iter(ds.data_vars))
    ll = ds[name].to_numpy()
    flat = ll.reshape(-1, *ll.shape[2:])
    return scipy.special.logsumexp(flat, axis=0) - np.log(flat.shape[0])


class Predicts:
    """The predictive methods every result has (MLE, MAP, Laplace, NUTS, prior)."""

    def predict(self, data: Any = None, *, level: float | None = None,
                uncertainty: str | None = None, draws: int | None = None,
                random_seed: int | None = None) -> pd.DataFrame:
        """Predictions for the fitted data or new data: ``mean`` and a predictive interval.

        MLE/MAP: the plug-in predictive distribution at the estimate (exact quantiles), or
        with ``uncertainty="wald"`` averaged over draws of the estimate's asymptotic normal;
        Laplace: over its draws; NUTS: the posterior predictive. See
        :func:`bayesmle.inference.predictive.predict` for every argument.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(40, 1))
        >>> y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=40)
        >>> mle = bm.fit(bm.models.linear_regression(X, y), "mle")
        >>> table = mle.predict({"X": np.array([[0.0], [1.0]])}, level=0.9)
        >>> table.columns.tolist()
        ['mean', 'lower', 'upper']
        >>> bool(np.allclose(table["mean"], mle.params["intercept"] + [0.0, mle.params["coef"][0]]))
        True
        """
        return predict(self, data, level=level, uncertainty=uncertainty, draws=draws,
                       random_seed=random_seed)

    def predictive(self, data: Any = None, *, draws: int | None = None,
                   uncertainty: str | None = None, random_seed: int | None = None
                   ) -> xr.DataTree:
        """Predictive draws as an ArviZ DataTree (``posterior_predictive``, ``observed_data``,
        ``log_likelihood``), ready for ``arviz_plots.plot_ppc_dist`` and ``arviz_stats.loo``.

        See :func:`bayesmle.inference.predictive.predictive`.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> y = np.array([2.0, 4.0, 3.0, 5.0, 1.0])
        >>> mle = bm.fit(bm.models.poisson(y), "mle")
        >>> tree = mle.predictive(draws=100, random_seed=0)
        >>> sorted(tree.children)
        ['log_likelihood', 'observed_data', 'posterior', 'posterior_predictive']
        >>> tree["posterior_predictive"]["y_obs"].shape
        (1, 100, 5)
        """  # noqa: D205
        return predictive(self, data, draws=draws, uncertainty=uncertainty,
                          random_seed=random_seed)

    def log_likelihood(self, data: Any = None, *, uncertainty: str | None = None,
                       draws: int | None = None, random_seed: int | None = None
                       ) -> xr.Dataset:
        """Pointwise log-likelihood ``(chain, draw, observation)`` of the result's draws.

        ``data`` must hold the response (``{"X": X_new, "y": y_new}``); None: the fitted data.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> y = np.array([0.0, 1.0, 1.0, 1.0])
        >>> mle = bm.fit(bm.models.bernoulli(y), "mle")
        >>> np.round(mle.log_likelihood()["y_obs"].to_numpy().ravel(), 4).tolist()
        [-1.3863, -0.2877, -0.2877, -0.2877]
        """
        return log_likelihood(self, data, uncertainty=uncertainty, draws=draws,
                              random_seed=random_seed)

    def loo(self, *, k_threshold: float = 0.7, max_refits: int = 10,
            random_seed: int | None = None):
        """Leave-one-out cross-validation: the expected log predictive density (elpd).

        MLE/MAP: exact leave-one-out by refitting (K-fold above
        ``bayesmle.inference.loo.EXACT_LOO_MAX_N`` rows), with the leave-one-out predictions
        and, for the MLE, ``-AIC/2`` beside it; Laplace: PSIS-LOO corrected for the
        approximation; NUTS: PSIS-LOO with exact refits where Pareto k > ``k_threshold`` (at
        most ``max_refits``). See :func:`bayesmle.inference.loo.loo`.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmle as bm
        >>> y = np.array([2.0, 4.0, 3.0, 5.0, 1.0, 3.0])
        >>> res = bm.fit(bm.models.poisson(y), "mle").loo()
        >>> res.kind, res.pointwise.shape
        ('exact', (6, 2))
        >>> bool(res.elpd < res.p + res.elpd)  # p > 0: the fit is optimistic in-sample
        True
        """
        from bayesmle.inference.loo import loo

        return loo(self, k_threshold=k_threshold, max_refits=max_refits,
                   random_seed=random_seed)
