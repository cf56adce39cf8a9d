"""Out-of-core GLM data on Dask: lazy validation and the spec of an out-of-core regression.

``linear_regression``, ``logistic_regression``, ``binomial_regression`` (logit link) and
``poisson_regression`` accept a ``dask.array`` or ``dask.dataframe`` design; their spec
(``solver = "dask_glm"``) keeps the *lazy* arrays in :class:`DaskGLMData`
(``spec.options["dask"]``) and is fitted by :mod:`bayesmle.inference.dask_glm` by blockwise
reductions -- nothing is gathered into one process. What is checked when, without
computing the data in one piece:

* at build time (no pass over the data): types (numeric dtypes, no complex), shapes, known
  row-chunk sizes, equal numbers of rows; columns rechunked to one chunk, every row array
  put on the design's row chunks, float64;
* in one blockwise pass before the first fit (:meth:`DaskGLMData.scan`, cached per data
  object): finiteness and ``|x| <= 1e100`` of the design, the response's support per family
  (0/1, counts, successes in ``0..trials`` with positive whole trials, finite), finiteness
  of the offset -- a violation names the first bad row --
  and the R factor of ``[1, X]`` (``[1, X, y]`` for the Gaussian family) by a one-level TSQR
  (per chunk ``qr(mode="r")``, the stacked factors reduced locally), from which the rank
  is judged exactly as for in-memory designs (equilibrated columns, numpy's
  ``s_max * max(n, p) * eps`` tolerance, collinear groups from the null space).

Declaring the PyMC model of such a spec (NUTS, Laplace, prior draws, predictions) is refused
with a :class:`~bayesmle.errors.SpecError`: out-of-core data support ``"mle"`` and ``"map"``.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

from bayesmle.errors import DataError, MLENotFoundError, SpecError, checklist
from bayesmle.models.design import describe_groups, pow2
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Flat, HalfFlat, Prior, check_support

__all__ = ["SOLVER", "DaskGLMData", "DaskSummary", "aligned", "dask_regression_spec",
           "is_dask_input"]

#: The name under which the out-of-core specs ask for their solver (``ModelSpec.solver``).
SOLVER = "dask_glm"
#: The families with an out-of-core solver.
FAMILIES = ("gaussian", "bernoulli", "binomial", "poisson")
_MAX_ABS = 1e100


def is_dask_input(*values: Any) -> bool:
    """Whether any of ``values`` is a Dask collection (False without importing Dask).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> is_dask_input(np.ones(3)), is_dask_input(da.ones(3, chunks=2))
    (False, True)
    """
    if "dask" not in sys.modules:
        return False
    import dask

    return any(dask.is_dask_collection(v) for v in values)


def aligned(shape: tuple[int, ...] | int, value: np.ndarray | None = None) -> np.ndarray:
    """A float64 array whose data start on a 64-byte boundary (a copy of ``value`` if given).

    Per-chunk reductions (NumPy's SIMD sums, OpenBLAS kernels) may round differently
    depending on where an array starts in memory, and a chunk's address differs between the
    client and a worker process (and between allocations). Every array a chunk reduction
    reads is put on the same alignment, so the per-chunk results -- and the fit -- are the
    same bits under every scheduler.

    Examples
    --------
    >>> a = aligned((3, 2), np.arange(6.0).reshape(3, 2))
    >>> a.ctypes.data % 64, a.tolist()
    (0, [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    size = int(np.prod(shape))
    buf = np.empty(size + 8, dtype=np.float64)
    start = (-buf.ctypes.data % 64) // 8
    out = buf[start:start + size].reshape(shape)
    if value is not None:
        out[...] = value
    return out


# ---------------------------------------------------------------------------------------------
# Lazy arrays
# ---------------------------------------------------------------------------------------------
def _dtype_ok(dtype: Any) -> bool:
    """A NumPy bool, integer or float dtype (pandas extension dtypes are not)."""
    try:
        return np.dtype(dtype).kind in "biuf"
    except TypeError:
        return False


def _as_dask_array(name: str, value: Any, *, ndim: tuple[int, ...]):
    """A dask array from a dask array / dataframe / series (column names or None)."""
    import dask.array as da

    # dask.dataframe (with its pandas/pyarrow requirements) only when a frame was passed
    dd = sys.modules.get("dask.dataframe")
    names = None
    if dd is not None and isinstance(value, dd.DataFrame):
        names = tuple(str(c) for c in value.columns)
        bad = [str(c) for c, t in value.dtypes.items() if not _dtype_ok(t)]
        if bad:
            raise DataError(checklist(
                f"`{name}` has non-numeric column(s) {bad} (valid: NumPy bool, integer or "
                "float columns).",
                ["Encode categories as dummy columns before fitting out of core.",
                 "Nullable pandas columns (Int64, Float64): drop the missing rows and "
                 "`.astype('float64')`."]))
        arr = value.to_dask_array(lengths=True)
    elif dd is not None and isinstance(value, dd.Series):
        if not _dtype_ok(value.dtype):
            raise DataError(f"`{name}` must be numeric (NumPy bool, integer or float), got "
                            f"dtype {value.dtype}.")
        arr = value.to_dask_array(lengths=True)
    elif isinstance(value, da.Array):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            raise DataError(f"`{name}` must be an array, got {type(value).__name__}.") from None
    if not _dtype_ok(arr.dtype):
        kind = "complex numbers" if np.dtype(arr.dtype).kind == "c" else f"dtype {arr.dtype}"
        raise DataError(f"`{name}` holds {kind}; out-of-core data must be real numbers "
                        "(bool, integer or float).")
    if arr.ndim not in ndim:
        raise DataError(f"`{name}` must have {' or '.join(map(str, ndim))} dimension(s), got "
                        f"shape {arr.shape}.")
    if isinstance(arr, da.Array) and any(np.isnan(c) for c in arr.chunks[0]):
        raise DataError(checklist(
            f"`{name}` has unknown chunk sizes along its rows.",
            ["Call `.compute_chunk_sizes()` on the array, or `.to_dask_array(lengths=True)` "
             "on a dask DataFrame, before building the model."]))
    return arr, names


def _on_rows(name: str, arr, chunks: tuple[int, ...]):
    """``arr`` (dask or numpy, 1-D) as a float64 dask array on the row chunks ``chunks``."""
    import dask.array as da

    n = sum(chunks)
    if arr.shape[0] != n:
        raise DataError(f"`X` has {n} rows but `{name}` has {arr.shape[0]}; they must match "
                        "(one row of X per observation).")
    if not isinstance(arr, da.Array):
        return da.from_array(np.ascontiguousarray(arr, dtype=np.float64), chunks=(chunks,))
    arr = arr.astype(np.float64)
    return arr if arr.chunks[0] == chunks else arr.rechunk((chunks,))


@dataclass(frozen=True)
class DaskSummary:
    """What one blockwise pass over the data established (see :meth:`DaskGLMData.scan`).

    ``r`` is the R factor of ``[1, X]`` (``[1, X, y]`` for the Gaussian family), ``p x p``
    (or fewer rows when there are fewer observations than columns); ``y_sum`` the sum of
    the response and ``offset_mean`` the mean offset (0 without one).
    """

    r: np.ndarray
    y_sum: float
    y_min: float
    y_max: float
    offset_mean: float
    #: Binomial: the total number of trials and the rows with no / every trial a success.
    trials_sum: float = 0.0
    n_none: int = 0
    n_all: int = 0


@dataclass(frozen=True, eq=False)
class DaskGLMData:
    """The lazy, validated arrays of an out-of-core regression.

    ``X`` is ``(n, d)`` float64 with one column chunk, ``y``, ``offset`` and ``trials`` (or
    None) ``(n,)`` float64 on the same row chunks. Equality is identity; the repr names the
    Dask keys.
    """

    X: Any
    y: Any
    offset: Any
    names: tuple[str, ...]
    family: str
    intercept: bool
    trials: Any = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])

    @property
    def chunks(self) -> tuple[int, ...]:
        """Row chunk sizes."""
        return tuple(int(c) for c in self.X.chunks[0])

    def __repr__(self) -> str:
        return (f"DaskGLMData({self.family}, n={self.n}, d={self.d}, "
                f"{len(self.chunks)} row chunks, X={self.X.name})")

    def blocks(self) -> list[tuple]:
        """Per row chunk: delayed X, y, offset (or None), trials (or None) blocks.

        The graphs are not optimised separately: X and y sliced from one array (or one
        dataframe) keep their common tasks, so a pass computes each source chunk once
        (optimised one by one, the fused X and y tasks would each recompute it).
        """
        xs = self.X.to_delayed(optimize_graph=False).ravel()
        ys = self.y.to_delayed(optimize_graph=False).ravel()
        offs = (self.offset.to_delayed(optimize_graph=False).ravel()
                if self.offset is not None else [None] * len(xs))
        trials = (self.trials.to_delayed(optimize_graph=False).ravel()
                  if self.trials is not None else [None] * len(xs))
        return list(zip(xs, ys, offs, trials, strict=True))

    def scan(self) -> DaskSummary:
        """One blockwise pass: validation and the R factor of the design (cached).

        Raises
        ------
        DataError
            A non-finite or huge value in ``X``, a response outside the family's support, a
            non-finite offset -- naming the first bad row.
        """
        with self._lock:
            if "summary" in self._cache:
                return self._cache["summary"]
        import dask

        starts = np.concatenate(([0], np.cumsum(self.chunks)[:-1]))
        tasks = [dask.delayed(_scan_block)(xb, yb, ob, tb, self.family, self.intercept)
                 for xb, yb, ob, tb in self.blocks()]
        parts = dask.compute(*tasks)
        for start, part in zip(starts, parts, strict=True):  # the first bad row, in row order
            if part["bad"] is not None:
                what, row = part["bad"]
                raise DataError(_bad_message(what, int(start) + row, self.family))
        stacked = np.vstack([part["r"] for part in parts])
        r = scipy.linalg.qr(stacked, mode="r", check_finite=False)[0]
        r = r[: min(r.shape)]
        summary = DaskSummary(
            r=r, y_sum=float(np.sum([p["y_sum"] for p in parts])),
            y_min=float(np.min([p["y_min"] for p in parts])),
            y_max=float(np.max([p["y_max"] for p in parts])),
            offset_mean=float(np.sum([p["off_sum"] for p in parts])) / self.n,
            trials_sum=float(np.sum([p["t_sum"] for p in parts])),
            n_none=int(np.sum([p["n_none"] for p in parts])),
            n_all=int(np.sum([p["n_all"] for p in parts])))
        with self._lock:
            self._cache["summary"] = summary
        return summary


def _scan_block(xb: np.ndarray, yb: np.ndarray, ob: np.ndarray | None,
                tb: np.ndarray | None, family: str, intercept: bool) -> dict:
    """Validation counts and the R factor of one row block (runs on a worker)."""
    out: dict[str, Any] = {"bad": None, "r": None, "y_sum": 0.0, "y_min": np.inf,
                           "y_max": -np.inf, "off_sum": 0.0, "t_sum": 0.0, "n_none": 0,
                           "n_all": 0}
    checks = [("X", ~np.all(np.isfinite(xb), axis=1)),
              ("X-huge", np.any(np.abs(np.where(np.isfinite(xb), xb, 0.0)) > _MAX_ABS, axis=1)),
              ("y", ~np.isfinite(yb))]
    if family == "bernoulli":
        checks.append(("y-binary", (yb != 0) & (yb != 1)))
    elif family == "poisson":
        checks.append(("y-count", (yb < 0) | (yb != np.floor(yb))))
    elif family == "binomial":
        checks.append(("trials", ~np.isfinite(tb) | (tb < 1) | (tb != np.floor(tb))))
        with np.errstate(invalid="ignore"):
            checks.append(("y-binomial", (yb < 0) | (yb != np.floor(yb)) | (yb > tb)))
    else:
        checks.append(("y-huge", np.abs(yb) > _MAX_ABS))
    if ob is not None:
        checks.append(("offset", ~np.isfinite(ob)))
    for what, mask in checks:
        hits = np.flatnonzero(mask)
        if hits.size and (out["bad"] is None or hits[0] < out["bad"][1]):
            out["bad"] = (what, int(hits[0]))
    if out["bad"] is not None:
        return out
    k = int(intercept)
    a = aligned((xb.shape[0], k + xb.shape[1] + int(family == "gaussian")))
    if intercept:
        a[:, 0] = 1.0
    a[:, k:k + xb.shape[1]] = xb
    if family == "gaussian":
        a[:, -1] = yb
    r = scipy.linalg.qr(a, mode="r", check_finite=False)[0]
    out["r"] = r[: min(r.shape)]
    out["y_sum"] = float(aligned(yb.shape, yb).sum())
    out["y_min"], out["y_max"] = float(yb.min()), float(yb.max())
    out["off_sum"] = float(aligned(ob.shape, ob).sum()) if ob is not None else 0.0
    if tb is not None:
        out["t_sum"] = float(aligned(tb.shape, tb).sum())
        out["n_none"] = int(np.count_nonzero(yb == 0))
        out["n_all"] = int(np.count_nonzero(yb == tb))
    return out


def _bad_message(what: str, row: int, family: str) -> str:
    if what == "X":
        return (f"`X` contains NaN or infinite values (first at row {row}); drop or impute "
                "those rows before fitting.")
    if what == "X-huge":
        return (f"`X` has values beyond +-1e100 (first at row {row}); rescale the column "
                "(valid: finite values of magnitude at most 1e100).")
    if what == "y":
        return f"`y` contains NaN or infinite values (first at row {row}); drop those rows."
    if what == "y-huge":
        return f"`y` has values beyond +-1e100 (first at row {row}); rescale the response."
    if what == "y-binary":
        return (f"`y` must hold binary labels 0/1 (or booleans), but row {row} does not. "
                "Valid values: 0, 1, False, True.")
    if what == "trials":
        return (f"`trials` must hold positive whole numbers (at least one trial per row), "
                f"but row {row} does not.")
    if what == "y-binomial":
        return (f"`successes` must hold whole numbers from 0 to the row's number of trials, "
                f"but row {row} does not.")
    if what == "y-count":
        return (f"`y` must hold non-negative whole-number counts, but row {row} does not "
                f"({family} regression).")
    return (f"The offset (log exposure) is not finite at row {row}: exposures must be "
            "positive and offsets finite.")


# ---------------------------------------------------------------------------------------------
# Rank and identification from the R factor
# ---------------------------------------------------------------------------------------------
def collinear_groups(r: np.ndarray, n: int, names: tuple[str, ...]) -> list[list[str]]:
    """Collinear column groups of a design from its R factor (as ``collinear_columns``).

    The columns are equilibrated by powers of two near their norms (the column norms of R
    are those of the design), the rank is judged with numpy's tolerance
    ``s_max * max(n, p) * eps``, and each group is the support of a null-space direction in
    reduced echelon form.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6.0)
    >>> a = np.column_stack([np.ones(6), x, x**2, 3.0 * x])
    >>> r = np.linalg.qr(a, mode="r")
    >>> collinear_groups(r, 6, ("(intercept)", "x0", "x1", "x2"))
    [['x0', 'x2']]
    """
    p = r.shape[1]
    norms = pow2(np.linalg.norm(r, axis=0))
    rs = r / norms
    if rs.shape[0] < p:
        rs = np.vstack([rs, np.zeros((p - rs.shape[0], p))])
    _, sv, vt = np.linalg.svd(rs)
    tol = (sv.max() if sv.size else 0.0) * max(n, p) * np.finfo(float).eps
    rank = int(np.sum(sv > tol))
    basis = vt[rank:]
    k = basis.shape[0]
    if k == 0:
        return []
    _, _, piv = scipy.linalg.qr(basis, pivoting=True, mode="economic")
    basis = np.linalg.solve(basis[:, piv[:k]], basis)
    groups: list[list[str]] = []
    for v in basis:
        a = np.abs(v)
        members = [names[j] for j in np.flatnonzero(a > 1e-6 * a.max())]
        if members not in groups:
            groups.append(members)
    return groups


def check_identified(data: DaskGLMData, summary: DaskSummary,
                     priors: Mapping[str, Prior], method: str) -> float:
    """Raise MLENotFoundError if the flat-prior coefficients are not identified.

    MLE: every coefficient counts (the in-memory rank check's message). MAP: the columns of
    the flat-prior coefficients only (a proper prior identifies its own). Returns the
    condition number of the equilibrated design (inf when rank deficient).
    """
    p = data.d + int(data.intercept)
    r = summary.r[:, :p]
    names = (("(intercept)",) if data.intercept else ()) + data.names
    mle = method == "mle"
    flat = [j for j in range(p) if mle or (
        priors["intercept"].is_flat if (data.intercept and j == 0) else priors["coef"].is_flat)]
    if not flat:
        return _cond(r)
    sub = r[:, flat] if len(flat) < p else r
    if len(flat) < p:
        sub = scipy.linalg.qr(sub, mode="r", check_finite=False)[0][: min(sub.shape)]
    flat_names = tuple(names[j] for j in flat)
    groups = collinear_groups(sub, data.n, flat_names)
    if data.n < len(flat) and not groups:
        groups = [list(flat_names)]
    if not groups:
        return _cond(r)
    hints = ["Drop one column of each collinear group (or a dummy level per factor).",
             "Or give the coefficients (and the intercept) proper priors (e.g. "
             "prior=Normal(1.0)): then the MAP is defined."]
    if data.n < len(flat):
        why = (f"`X` has {data.n} row(s) for {len(flat)} flat-prior coefficient(s), and fewer "
               "rows than coefficients cannot identify them")
    else:
        why = (f"these columns are (numerically) collinear: {describe_groups(groups)}. A "
               "constant column is collinear with the intercept")
    if mle:
        raise MLENotFoundError(checklist(
            f"The design matrix is rank deficient, so the MLE is not unique: {why}.", hints))
    raise MLENotFoundError(checklist(
        f"The MAP is not unique: the flat-prior coefficients are not identified ({why}).",
        hints))


def _cond(r: np.ndarray) -> float:
    norms = pow2(np.linalg.norm(r, axis=0))
    sv = np.linalg.svd(r / norms, compute_uv=False)
    return float(sv[0] / sv[-1]) if sv.size and sv[-1] > 0 else np.inf


def _trials(trials: Any, chunks: tuple[int, ...]):
    """Binomial trials as a dask row array (a scalar checked now, an array by the scan)."""
    import dask.array as da

    if not is_dask_input(trials) and np.ndim(trials) == 0:
        try:
            t = float(trials)
        except (TypeError, ValueError):
            t = np.nan
        if not (np.isfinite(t) and t >= 1 and t == np.floor(t)):
            raise DataError(f"`trials` must be a positive whole number (or one per row), got "
                            f"{trials!r}.")
        return da.full((sum(chunks),), t, chunks=(chunks,), dtype=np.float64)
    return _on_rows("trials", _as_dask_array("trials", trials, ndim=(1,))[0], chunks)


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------
_REFUSAL = (
    "Model {name!r} holds out-of-core (Dask) data, which support the methods 'mle' and 'map' "
    "only (blockwise Newton iterations); NUTS, the Laplace approximation, prior draws and "
    "predictions need the data in memory.")
_REFUSAL_HINTS = [
    "Fit 'mle' or 'map' on the Dask data.",
    "For the other methods build an in-memory spec from a sample, e.g. "
    "`bm.models.logistic_regression(X[:100_000].compute(), y[:100_000].compute())` (a "
    "dask.dataframe: `df.sample(frac=0.01).compute()`).",
]


def refuse_in_memory(spec: ModelSpec) -> None:
    """Posterior check of an out-of-core spec: always a SpecError (no NUTS, no Laplace)."""
    raise SpecError(checklist(_REFUSAL.format(name=spec.name), _REFUSAL_HINTS))


def _declare_out_of_core(data: Mapping, priors: Mapping, *, name: str) -> None:
    """The ``declare`` of an out-of-core spec: refuses to build a PyMC model."""
    raise SpecError(checklist(_REFUSAL.format(name=name), _REFUSAL_HINTS))


_EQUATIONS = {
    "gaussian": "y_i ~ Normal(intercept + x_i·coef, sigma)  [out of core, Dask]",
    "bernoulli": "y_i ~ Bernoulli(logit⁻¹(intercept + x_i·coef))  [out of core, Dask]",
    "poisson": "y_i ~ Poisson(exp(intercept + x_i·coef + offset_i))  [out of core, Dask]",
    "binomial": "y_i ~ Binomial(trials_i, logit⁻¹(intercept + x_i·coef))  [out of core, Dask]",
}


def dask_regression_spec(
    name: str, family: str, X: Any, y: Any, *, prior: Prior | None, intercept: bool,
    intercept_prior: Prior | None, sigma_prior: Prior | None = None,
    sigma: float | None = None, exposure: Any = None, offset: Any = None, trials: Any = None,
    link: str = "",
) -> ModelSpec:
    """The spec of an out-of-core regression (``solver = "dask_glm"``), validated lazily.

    Called by the regression builders when ``X`` (or ``y``) is a Dask collection; see the
    module docstring for what is checked when.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import bayesmle as bm
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(rng.normal(size=(1000, 2)), chunks=250)
    >>> y = da.from_array((rng.random(1000) < 0.5).astype(float), chunks=250)
    >>> spec = bm.models.logistic_regression(X, y)
    >>> spec.solver, spec.nobs, spec.params
    ('dask_glm', 1000, ('intercept', 'coef'))
    """
    if family not in FAMILIES:  # pragma: no cover - guarded by the builders
        raise SpecError(f"No out-of-core solver for the {family} family.")
    if not isinstance(intercept, bool | np.bool_):
        raise DataError(f"`intercept` must be True or False, got {intercept!r}.")
    intercept = bool(intercept)
    xa, names = _as_dask_array("X", X, ndim=(1, 2))
    if xa.ndim == 1:
        xa = xa[:, None]
    if not is_dask_input(xa):
        raise DataError("Out-of-core fits need `X` as a dask.array or dask.dataframe (the "
                        "response alone on Dask is not enough); pass numpy data for an "
                        "in-memory fit.")
    xa = xa.astype(np.float64).rechunk({1: -1})
    n, d = int(xa.shape[0]), int(xa.shape[1])
    if d == 0:
        raise DataError("`X` has no columns; give at least one predictor.")
    if n == 0:
        raise DataError("`X` has no rows.")
    names = names or tuple(f"x{j}" for j in range(d))
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise DataError(f"`X` has duplicate column names {dup}; rename them.")
    chunks = tuple(int(c) for c in xa.chunks[0])
    ya = _on_rows("y", _as_dask_array("y", y, ndim=(1,))[0], chunks)
    off = None
    if family == "poisson":
        if exposure is not None and offset is not None:
            raise DataError("Give either `exposure` or `offset`, not both.")
        if exposure is not None:
            ea = _as_dask_array("exposure", exposure, ndim=(1,))[0]
            off = _on_rows("exposure", ea, chunks)
            import dask.array as da

            off = da.log(da.where(off > 0, off, np.nan))  # non-positive: caught by the scan
        elif offset is not None:
            off = _on_rows("offset", _as_dask_array("offset", offset, ndim=(1,))[0], chunks)
    ta = None
    if family == "binomial":
        if link not in ("", "logit"):
            raise SpecError(checklist(
                f"Out-of-core binomial fits support the logit link only, got link={link!r}.",
                ["Use link='logit', or fit an in-memory spec (a `.compute()`d sample)."]))
        ta = _trials(trials, chunks)
    data = DaskGLMData(X=xa, y=ya, offset=off, names=names, family=family,
                       intercept=intercept, trials=ta)

    priors: dict[str, Prior] = {"coef": check_support("prior", prior, "real", default=Flat())}
    priors["coef"].check_shape("coef", (d,))
    if intercept:
        priors["intercept"] = check_support("intercept_prior", intercept_prior, "real",
                                            default=Flat())
        priors["intercept"].check_shape("intercept", ())
    elif intercept_prior is not None:
        raise DataError("`intercept_prior` was given but `intercept=False`; drop one of them.")
    extras: tuple[str, ...] = ()
    options: dict[str, Any] = {"intercept": intercept, "classes": None, "dask": data}
    if family == "binomial":
        options["link"] = "logit"
    if family == "gaussian":
        if sigma is not None:
            if sigma_prior is not None:
                raise DataError("Give either a known `sigma` or a `sigma_prior`, not both.")
            try:
                ok = np.ndim(sigma) == 0 and np.isfinite(float(sigma)) and float(sigma) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise DataError(f"`sigma` must be a finite positive number, got {sigma!r}.")
            options["sigma_known"] = float(sigma)
        else:
            priors["sigma"] = check_support("sigma_prior", sigma_prior, "positive",
                                            default=HalfFlat())
            extras = ("sigma",)
    params = (("intercept",) if intercept else ()) + ("coef",) + extras
    return ModelSpec(
        name=name, declare=functools.partial(_declare_out_of_core, name=name), data={},
        priors=priors, params=params,
        dims={"coef": ("feature",)}, coords={"feature": names}, nobs=n, options=options,
        description=_EQUATIONS[family], posterior_checks=(refuse_in_memory,),
        family=family, solver=SOLVER,
        prior_shapes={"coef": (d,), **({"intercept": ()} if intercept else {}),
                      **{k: () for k in extras}},
    )
