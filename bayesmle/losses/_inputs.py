"""Input validation shared by the loss functions (private).

Every check raises :class:`~bayesmle.errors.DataError` naming the argument, the offending rows
and values, and what is valid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmle._validation import as_count_array, as_float_array
from bayesmle.errors import DataError

#: Tolerance on ``|sum(P[i]) - 1|`` for a row of a probability matrix (scikit-learn's choice).
ROW_SUM_TOL = float(np.sqrt(np.finfo(np.float64).eps))


def _rows(idx: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in idx[:10])
    return shown + (f" (and {idx.size - 10} more)" if idx.size > 10 else "")


def _values(arr: np.ndarray, idx: np.ndarray) -> str:
    if arr.ndim == 1:
        return str(sorted(set(arr[idx[:10]].tolist())))
    return "; ".join(str(row) for row in arr[idx[:3]].tolist()) + ("; ..." if idx.size > 3 else "")


def _check_valid(name: str, arr: np.ndarray, bad: np.ndarray, valid: str) -> None:
    """Raise a DataError naming the rows of ``arr`` where ``bad`` holds, if any."""
    if arr.ndim == 0:
        if bool(bad):
            raise DataError(f"`{name}` must be {valid}, but got {arr.item()!r}.")
        return
    idx = np.flatnonzero(bad)
    if idx.size:
        raise DataError(
            f"`{name}` must be {valid}, but row(s) {_rows(idx)} hold {_values(arr, idx)}."
        )


def _observations(name: str, value: Any) -> np.ndarray:
    return as_float_array(name, value, ndim=1)


def _predictions(name: str, value: Any, n: int) -> np.ndarray:
    """A finite scalar or length-``n`` prediction array (returned unbroadcast)."""
    arr = as_float_array(name, value, ndim=(0, 1))
    if arr.ndim == 1 and arr.shape[0] != n:
        raise DataError(
            f"`{name}` has shape {arr.shape} but `y` has {n} value(s); `{name}` must be a "
            f"scalar or an array of shape ({n},)."
        )
    return arr


def _positive_scalar(name: str, value: Any) -> float:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"`{name}` must be a finite number > 0, but got {value!r}.") from None
    if arr.ndim != 0:
        raise DataError(
            f"`{name}` must be a scalar (one value shared by all observations), but got an "
            f"array of shape {arr.shape}."
        )
    x = float(arr)
    if not (np.isfinite(x) and x > 0):
        raise DataError(f"`{name}` must be a finite number > 0, but got {value!r}.")
    return x


def _binary_labels(value: Any) -> np.ndarray:
    y = _observations("y", value)
    _check_valid("y", y, (y != 0) & (y != 1), "binary labels in {0, 1} (or booleans)")
    return y


def _class_labels(value: Any, n: int, k: int, scores: str) -> np.ndarray:
    """Integer labels 0..k-1 from integer labels (n,) or a one-hot matrix (n, k)."""
    y = as_float_array("y", value, ndim=(1, 2))
    if y.shape[0] != n:
        raise DataError(
            f"`y` has {y.shape[0]} row(s) but `{scores}` has {n}; they must have the same "
            f"number of rows (one per observation)."
        )
    if y.ndim == 2:
        if y.shape[1] != k:
            raise DataError(
                f"one-hot `y` has {y.shape[1]} column(s) but `{scores}` has {k}; both need one "
                f"column per class."
            )
        _check_valid("y", y, ((y != 0) & (y != 1)).any(axis=1), "one-hot rows of 0s and 1s")
        _check_valid("y", y, y.sum(axis=1) != 1, "one-hot rows with exactly one 1")
        return np.argmax(y, axis=1)
    valid = f"integer class labels in {{0, ..., {k - 1}}} (one per column of `{scores}`)"
    _check_valid("y", y, (y < 0) | (y > k - 1) | (y != np.round(y)), valid)
    return y.astype(np.intp)


def _score_matrix(name: str, value: Any) -> np.ndarray:
    arr = as_float_array(name, value, ndim=2)
    if arr.shape[1] < 2:
        raise DataError(
            f"`{name}` has shape {arr.shape}; it needs one column per class and at least 2 "
            f"classes."
        )
    return arr


def _probability_matrix(value: Any) -> np.ndarray:
    P = _score_matrix("P", value)
    _check_valid("P", P, ((P < 0) | (P > 1)).any(axis=1), "probabilities in [0, 1]")
    sums = P.sum(axis=1)
    idx = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOL)
    if idx.size:
        raise DataError(
            f"each row of `P` must sum to 1 (within {ROW_SUM_TOL:.1e}), but row(s) {_rows(idx)} "
            f"sum to {sorted(set(sums[idx[:10]].tolist()))}. Normalise the rows, or pass "
            f"unnormalised scores to `categorical_nll_logits`."
        )
    return P


def _poisson_inputs(y: Any, rate: Any) -> tuple[np.ndarray, np.ndarray]:
    y = as_count_array("y", y)
    rate = _predictions("rate", rate, y.size)
    _check_valid("rate", rate, rate <= 0, "a rate > 0")
    return y, rate


def _n_rows(y: Any) -> int:
    return as_float_array("y", y, ndim=(1, 2)).shape[0]
