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
    response : str
        The builder argument a formula's left-hand side fills (``y``; ``successes`` for
        binomial regression).
    """

    columns: tuple[tuple[str, str | tuple[str, ...]], ...]
    formula: str | None = None
    excluded: tuple[str, ...] = ()
    file: str = "<spec>"
    response: str = "y"

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
            out[self.response] = self.split_formula()[0]
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
            out[self.response] = self._column(frame, "formula", lhs).to_numpy()
            drop = {lhs, *used, *(c for c in self.excluded if c not in rhs)}
            out["X"], intercept = self._design(frame.drop(columns=[c for c in frame.columns
                                                                   if c in drop]), rhs)
        return out, intercept

    def new_rows(self, fitted: pd.DataFrame, frame: pd.DataFrame, source: str = "new data"
                 ) -> dict[str, Any]:
        """Predictor arguments for new rows ``frame`` (e.g. ``{"X": design}``), for predictions.

        ``frame`` must hold exactly the predictor columns of the spec (the response column
        may be present and is then passed as ``y``): the columns of ``X`` and of the other
        row arguments (``exposure``, ``offset``), or the variables the formula's right-hand
        side uses, from which the design is built as it was for the fitted data ``fitted``
        (same columns, same categories, same transforms).

        Raises
        ------
        SpecError
            The model has no predictors, or ``frame`` has unknown or missing columns.
        DataError
            The formula cannot be evaluated on the new rows (an unseen category...).
        """
        named = self.columns_of()
        response = named.get("y", named.get("successes"))  # binomial regression: successes
        others = {arg: col for arg, col in self.columns
                  if arg not in ("X", "y", "successes") and isinstance(col, str)}
        x_columns = dict(self.columns).get("X")
        if self.formula is None and x_columns is None:
            raise SpecError(f"{self.file}: this model has no predictors, so new rows have "
                            f"nothing to say; predict without new data (the fitted "
                            f"observations).")
        spec_model = None
        if self.formula is not None:
            lhs, rhs = self.split_formula()
            used = {*others.values(), *(c for a, c in self.columns if isinstance(c, str))}
            drop = {lhs, *used, *(c for c in self.excluded if c not in rhs)}
            subset = fitted.drop(columns=[c for c in fitted.columns if c in drop])
            try:
                spec_model = model_matrix(rhs, subset, key="model.formula").model_spec
            except SpecError as exc:  # pragma: no cover - the fitted design was built
                raise SpecError(f"{self.file}: {exc}") from None
            needed = [c for c in subset.columns if c in spec_model.required_variables]
        else:
            needed = list(x_columns)
        needed += [c for c in others.values() if c not in needed]
        allowed = {*needed, *([response] if response else [])}
        names = [str(c) for c in frame.columns]
        unknown = [c for c in names if c not in allowed]
        missing = [c for c in needed if c not in names]
        if unknown or missing:
            parts = ([f"unknown column(s) {unknown}"] if unknown else []) + (
                [f"missing column(s) {missing}"] if missing else [])
            optional = f" (and optionally the response {response!r})" if response else ""
            raise SpecError(f"{source}: {'; '.join(parts)}. The model's predictor columns: "
                            f"{needed}{optional}.")
        out: dict[str, Any] = {arg: frame[col].to_numpy() for arg, col in others.items()}
        if response and response in names:
            out["y"] = frame[response].to_numpy()
        if spec_model is None:
            out["X"] = frame[list(x_columns)]
            return out
        from bayesmle.formula_check import evaluation_context

        empty = frame[needed].isna().any(axis=1)
        if empty.any():
            rows = [str(v) for v in frame.index[empty.to_numpy()][:10]]
            raise DataError(f"{source}: missing values in the predictor columns, row(s) "
                            f"{rows} (counted from 0).")
        _check_levels(spec_model, frame, needed, source)
        try:
            matrix = spec_model.get_model_matrix(frame[needed], context=evaluation_context())
        except Exception as exc:  # noqa: BLE001 - formulaic's errors vary; never quote data
            raise DataError(f"{source}: the formula's design cannot be built on these rows "
                            f"({type(exc).__name__}; e.g. a category the model was not "
                            f"fitted on).") from None
        X = pd.DataFrame(matrix).drop(columns=["Intercept"], errors="ignore")
        X.index = frame.index
        out["X"] = X.astype(float)
        return out

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



def _check_levels(spec_model: Any, frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """Refuse categories of new rows that the fitted design did not see.

    formulaic encodes an unseen category as the reference level (with only a warning); a
    prediction for it would silently be the reference level's. Checked for every categorical
    factor that reads one column (``g``, ``C(g)``, ``C(g, contr.sum)``).
    """
    import re

    for factor, state in getattr(spec_model, "factor_contrasts", {}).items():
        expr = str(getattr(factor, "expr", factor))
        used = [c for c in columns
                if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w(])", expr)]
        if len(used) != 1:  # pragma: no cover - a factor of a transform of several columns
            continue
        levels = list(getattr(state, "levels", []) or [])
        values = pd.unique(frame[used[0]].dropna())
        unseen = [v for v in values if v not in levels]
        if unseen:  # the values are not quoted (data files are not repeated in messages)
            raise DataError(f"{source}: column {used[0]!r} holds {len(unseen)} categor(ies) "
                            f"the model was not fitted on (it knows {len(levels)}); the "
                            f"formula's design cannot be built on these rows.")
