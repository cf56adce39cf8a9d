"""From a DataFrame to a builder's data arguments: column names or a formula (formulaic).

``[model]`` names a column per data argument (``y = "height"``; ``X = ["age", "bmi"]``) or,
for regressions, gives ``formula = "y ~ x1 + np.log(x2) + C(group)"``: the left side is a
column, the right side is expanded by formulaic (``.`` = every other column; ``0 +`` or ``- 1``
drops the intercept, which the builder then leaves out).

A spec file is data, not code: the right-hand side is checked by
:func:`bayesmle.formula_check.check_formula` (columns, numbers, formula operators and a short
list of transforms) before formulaic sees it, and evaluated in a namespace holding only those
transforms (:func:`bayesmle.formula_check.model_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bayesmle.errors import DataError, SpecError
from bayesmle.formula_check import describe_columns, model_matrix

__all__ = ["DataMapping"]


@dataclass(frozen=True)
class DataMapping:
    """How to turn a DataFrame into builder data arguments (picklable, for simulators).

    Attributes
    ----------
    columns : tuple of (argument, column or tuple of columns)
        Column(s) of each data argument (``X`` takes a tuple of columns).
    formula : str or None
        ``"lhs ~ rhs"`` for regressions; then ``columns`` holds only the other arguments.
    excluded : tuple of str
        Columns never used as predictors by default (a dataset's ``target`` columns).
    file : str
        The spec file (for error messages).
    """

    columns: tuple[tuple[str, str | tuple[str, ...]], ...]
    formula: str | None = None
    excluded: tuple[str, ...] = ()
    file: str = "<spec>"

    def _fail(self, key: str, value: Any, problem: str, valid: str = "") -> SpecError:
        text = f"{self.file}: `model.{key}` = {value!r}: {problem}"
        return SpecError(text + (f" Valid: {valid}." if valid else ""))

    def _column(self, frame: pd.DataFrame, key: str, column: str) -> pd.Series:
        if column not in frame.columns:
            raise self._fail(key, column, "no such column in the data.",
                             describe_columns(frame.columns))
        return frame[column]

    def columns_of(self) -> dict[str, str]:
        """The column behind each one-column argument (``{"y": "target"}``), for labels."""
        out = {arg: col for arg, col in self.columns if isinstance(col, str)}
        if self.formula is not None:
            out["y"] = self.split_formula()[0]
        return out

    def split_formula(self) -> tuple[str, str]:
        """The formula's response column and right-hand side."""
        assert self.formula is not None
        if self.formula.count("~") != 1:
            raise self._fail("formula", self.formula, "a formula has the form "
                             "\"response ~ predictors\" (exactly one '~').")
        lhs, rhs = (s.strip() for s in self.formula.split("~"))
        if not lhs or not rhs:
            raise self._fail("formula", self.formula, "both sides of '~' must be given, e.g. "
                             "\"y ~ x1 + x2\".")
        return lhs, rhs

    def kwargs(self, frame: pd.DataFrame) -> tuple[dict[str, Any], bool | None]:
        """Builder data arguments from ``frame``, and the formula's intercept (None if none).

        Raises
        ------
        SpecError
            A named column is missing, or the formula cannot be evaluated on the data.
        """
        out: dict[str, Any] = {}
        used: list[str] = []
        for arg, column in self.columns:
            if isinstance(column, tuple):
                for c in column:
                    self._column(frame, arg, c)
                out[arg] = frame[list(column)].reset_index(drop=True)
                continue
            out[arg] = self._column(frame, arg, column).to_numpy()
            used.append(column)
        intercept = None
        if self.formula is not None:
            lhs, rhs = self.split_formula()
            out["y"] = self._column(frame, "formula", lhs).to_numpy()
            drop = {lhs, *used, *(c for c in self.excluded if c not in rhs)}
            out["X"], intercept = self._design(frame.drop(columns=[c for c in frame.columns
                                                                   if c in drop]), rhs)
        return out, intercept

    def _design(self, frame: pd.DataFrame, rhs: str) -> tuple[pd.DataFrame, bool]:
        try:  # checked (the data's columns known), then evaluated in a restricted namespace
            matrix = model_matrix(rhs, frame, key="model.formula")
        except SpecError as exc:
            raise SpecError(f"{self.file}: {exc}") from None
        X = pd.DataFrame(matrix).reset_index(drop=True)
        intercept = "Intercept" in X.columns
        X = X.drop(columns=["Intercept"], errors="ignore")
        if X.shape[1] == 0:
            raise self._fail("formula", self.formula, "the right-hand side has no predictor.")
        bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if bad:  # pragma: no cover - formulaic encodes categories
            raise DataError(f"{self.file}: `model.formula`: non-numeric design columns {bad}.")
        return X.astype(float), intercept

