"""Input checks shared by priors and model builders (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bayesmle.errors import DataError, PriorError, SpecError, checklist

__all__ = [
    "as_float_array",
    "as_positive_array",
    "check_int",
    "check_level",
    "check_memory",
    "check_seed",
    "no_positional",
    "as_count_array",
    "check_min_rows",
    "positive_param",
    "real_param",
]


#: Largest magnitude accepted in data: the square of anything larger may overflow float64.
MAX_ABS = 1e100


def _row_names(value: Any, n: int) -> Any:
    """The pandas index of ``value`` when it labels its ``n`` rows, else None."""
    index = getattr(value, "index", None)
    return index if index is not None and not callable(index) and len(index) == n else None


def _label(value: Any) -> str:
    """An index label as the user wrote it (numpy scalars as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _describe_bad(values: np.ndarray, index: Any = None) -> str:
    """Where the non-finite values are: row positions, or the labels of a pandas index."""
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(-1, 1)
    bad_rows = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    more = f" (and {bad_rows.size - 10} more)" if bad_rows.size > 10 else ""
    if index is not None:
        shown = ", ".join(_label(index[i]) for i in bad_rows[:10])
        return f"{bad_rows.size} non-finite value(s) at index label(s) {shown}{more}"
    shown = ", ".join(str(i) for i in bad_rows[:10])
    return f"{bad_rows.size} non-finite value(s) at row(s) {shown}{more}"


def _refuse_complex(name: str, value: Any, error: type[ValueError]) -> None:
    """Complex data would be cast to their real part by numpy: refuse them instead."""
    dtypes = getattr(value, "dtypes", None)  # a DataFrame: its columns' dtypes
    if dtypes is not None and not isinstance(dtypes, np.dtype):
        kinds = {d.kind for d in dtypes if isinstance(d, np.dtype)}
    else:
        dtype = getattr(value, "dtype", None)
        if not isinstance(dtype, np.dtype):
            try:
                dtype = np.asarray(value).dtype
            except (TypeError, ValueError):
                return  # ragged or exotic: the float conversion reports it
        kinds = {dtype.kind}
    if "c" in kinds:
        raise error(checklist(
            f"`{name}` holds complex numbers; bayesmle models real-valued data and does not "
            "drop an imaginary part silently.",
            ["Pass the real part (`np.real(x)`) or the modulus (`np.abs(x)`) if that is what "
             "you mean."]))


def as_float_array(
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] = 1,
    error: type[ValueError] = DataError,
) -> np.ndarray:
    """Convert ``value`` to a finite float64 array of the given dimensionality.

    Raises
    ------
    DataError
        If the value is not numeric, has the wrong number of dimensions, is empty, or holds
        NaN or infinite entries (the message names the offending rows).
    """
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    _refuse_complex(name, value, error)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(
            checklist(
                f"`{name}` must be numeric, but got a value of type {type(value).__name__} "
                f"that cannot be converted to float ({exc}).",
                ["Encode categorical columns as numbers (dummy/one-hot) before fitting."],
            )
        ) from None
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise error(f"`{name}` must be {want}, but got an array of shape {arr.shape}.")
    if arr.size == 0:
        raise error(f"`{name}` is empty (shape {arr.shape}); at least one value is needed.")
    # max and min propagate NaN and reach +-inf: two reductions, no temporary array.
    hi, lo = float(arr.max()), float(arr.min())
    if not (np.isfinite(hi) and np.isfinite(lo)):
        raise error(
            checklist(
                f"`{name}` contains "
                + (_describe_bad(arr, _row_names(value, arr.shape[0])) if arr.ndim
                   else "a non-finite value") + ".",
                ["Drop or impute missing values before fitting (e.g. `df.dropna()`)."],
            )
        )
    biggest = max(hi, -lo)
    if biggest > MAX_ABS:
        row = int(np.unravel_index(np.argmax(np.abs(arr)), arr.shape)[0]) if arr.ndim else 0
        index = _row_names(value, arr.shape[0]) if arr.ndim else None
        at = f"index label {_label(index[row])}" if index is not None else f"row {row}"
        raise error(
            checklist(
                f"`{name}` holds {biggest:.3g} ({at}); bayesmle needs |values| <= "
                f"{MAX_ABS:.0e} so that squares and products of the data stay finite in double "
                "precision.",
                ["Rescale the data (e.g. change units, or divide by a power of ten) and scale "
                 "the estimates back."],
            )
        )
    return arr


def as_positive_array(name: str, value: Any, *, what: str, valid: str) -> np.ndarray:
    """A finite 1-D float array whose values must be > 0; the rows that are not are named.

    ``what`` completes "must be > 0 for ..." and ``valid`` says what would be valid.
    """
    arr = as_float_array(name, value, ndim=1)
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise DataError(
            f"`{name}` must be > 0 for {what}, but row(s) {', '.join(map(str, bad[:10]))}"
            f"{' (and others)' if bad.size > 10 else ''} hold "
            f"{sorted(set(arr[bad[:10]].tolist()))}. Valid values: {valid}.")
    return arr


def as_count_array(name: str, value: Any, *, what: str = "counts") -> np.ndarray:
    """A 1-D float array of non-negative integers (counts), validated."""
    arr = as_float_array(name, value, ndim=1)
    negative = np.flatnonzero(arr < 0)
    if negative.size:
        raise DataError(
            f"`{name}` must hold non-negative {what}, but row(s) "
            f"{', '.join(map(str, negative[:10]))} are negative (e.g. {arr[negative[0]]!r})."
        )
    fractional = np.flatnonzero(arr != np.round(arr))
    if fractional.size:
        raise DataError(
            f"`{name}` must hold whole-number {what}, but row(s) "
            f"{', '.join(map(str, fractional[:10]))} are fractional "
            f"(e.g. {arr[fractional[0]]!r})."
        )
    return arr


def check_min_rows(name: str, n: int, minimum: int, why: str) -> None:
    """Raise a DataError if ``n`` is smaller than ``minimum``."""
    if n < minimum:
        raise DataError(f"`{name}` has {n} row(s); at least {minimum} are needed {why}.")


def real_param(owner: str, name: str, value: Any) -> np.ndarray:
    """A finite real prior parameter (scalar or array)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PriorError(
            f"{owner}: `{name}` must be a real number or an array of them, got {value!r}."
        ) from None
    if arr.size == 0 or not np.isfinite(arr).all():
        raise PriorError(f"{owner}: `{name}` must be finite and non-empty, got {value!r}.")
    arr.setflags(write=False)
    return arr


def positive_param(owner: str, name: str, value: Any) -> np.ndarray:
    """A finite, strictly positive prior parameter (scalar or array)."""
    arr = real_param(owner, name, value)
    if (arr <= 0).any():
        raise PriorError(
            f"{owner}: `{name}` must be > 0, got {value!r}. "
            f"Valid values are finite positive numbers (or an array of them)."
        )
    return arr


def check_level(level: Any, name: str = "level") -> float:
    """A coverage level in [0.5, 1): the probability an interval should hold.

    A value below 0.5 is refused: it is almost always an ``alpha`` (statsmodels'
    ``conf_int(alpha=0.05)``) meant as ``level = 1 - alpha``.
    """
    try:
        value = float(level)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(level, bool) or not 0.0 < value < 1.0:
        raise SpecError(f"`{name}` must be a number in (0, 1), the coverage of the interval "
                        f"(0.95 for a 95% interval), got {level!r}.")
    if value < 0.5:
        raise SpecError(
            f"`{name}` is the coverage of the interval, got {level!r}: that would be a "
            f"{value:.0%} interval. If you meant alpha = {value:g} (as in statsmodels' "
            f"conf_int(alpha={value:g})), pass {name}={1 - value:g}.")
    return value


def no_positional(func: str, args: tuple, default: float) -> None:
    """Refuse positional arguments of a method whose ``level`` is keyword-only."""
    if args:
        raise SpecError(
            f"{func}() takes the coverage as a keyword: {func}(level={default}). It got "
            f"{args[0]!r} positionally; if that is an alpha as in statsmodels' "
            f"conf_int(0.05), write {func}(level=0.95).")


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """An integer option in ``[minimum, maximum]`` (bools and floats such as 1.5 refused)."""
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if ok:
        ok = value >= minimum and (maximum is None or value <= maximum)
    if not ok:
        upper = f" and <= {maximum:,}" if maximum is not None else ""
        raise SpecError(f"`{name}` must be an integer >= {minimum}{upper}, got {value!r}.")
    return int(value)


#: Largest seed accepted: numpy's and nutpie's seeds are unsigned 64-bit integers.
MAX_SEED = 2**63 - 1
#: Largest number of draws (per chain) and tuning steps, and of chains, a fit accepts.
MAX_DRAWS = 10_000_000
MAX_CHAINS = 64


def check_seed(value: Any, name: str = "random_seed") -> int:
    """A random seed: an integer in [0, 2**63); ``None`` draws one (PyMC's rule).

    A drawn seed comes from the operating system's entropy; callers record it on the result
    (``result.random_seed``) so that the run can be repeated.
    """
    if value is None:
        return int(np.random.SeedSequence().entropy % (MAX_SEED + 1))
    return check_int(name, value, 0, MAX_SEED)


#: Largest memory the draws of one fit (or one study's stored estimates) may take.
MAX_DRAW_BYTES = 4 * 2**30


def check_memory(what: str, count: int, bytes_each: int, hint: str) -> None:
    """Refuse, before allocating, a result that would take more than ``MAX_DRAW_BYTES``."""
    need = int(count) * int(bytes_each)
    if need > MAX_DRAW_BYTES:
        raise SpecError(
            f"{what} would take about {need / 2**30:,.1f} GiB of memory; bayesmle refuses more "
            f"than {MAX_DRAW_BYTES / 2**30:.0f} GiB before allocating. {hint}")
