"""Random-effects terms of a formula, lme4's syntax: ``y ~ x + (1 + x | g)``.

:func:`parse_mixed_formula` splits a formula into its response, its fixed part (a formulaic
right-hand side) and its random-effects terms, without evaluating anything: the text is
scanned character by character (strings and backtick names skipped, brackets matched), and
each term's left side and grouping variables then go through
:func:`bayesmle.formula_check.check_formula` -- the allowlist of the fixed part -- unless
``trusted``. :func:`random_blocks` evaluates the terms on a DataFrame into
:class:`~bayesmle.models.mixed_design.RandomBlock` records.

The syntax (as lme4's ``lmer``):

* ``(1 | g)`` a random intercept per level of ``g``; ``(1 + x | g)`` and ``(x | g)`` (the
  intercept is implicit, as in lme4) an intercept and a slope, correlated; ``(0 + x | g)`` or
  ``(-1 + x | g)`` a slope alone. The left side is any formula the fixed part allows
  (``(1 + log(x) | g)``; a categorical column gives one column per contrast).
* ``(1 | a:b)`` one level per observed combination of ``a`` and ``b`` (labels ``"a1:b1"``,
  ordered with ``a`` varying slowest, as R's ``a:b``); ``(1 | a/b)`` is ``(1 | a) + (1 | a:b)``
  (``b`` nested in ``a``).
* ``(1 + x || g)``: uncorrelated effects, one block per column of the term's design
  (``(1 | g) + (0 + x | g)``). For a categorical column this splits every contrast column
  into its own block (as afex's ``expand_re``), not lme4's per-term split.
* Random terms are added to the fixed part with ``+``; a formula without fixed terms keeps
  an intercept (``y ~ (1 | g)``), as in lme4; ``y ~ 0 + (1 | g)`` has no fixed effects.

Levels of a grouping factor are its observed values sorted (a pandas categorical keeps its
categories' order), labelled as strings.

Examples
--------
>>> from bayesmle.models.random_terms import parse_mixed_formula
>>> parsed = parse_mixed_formula("y ~ x + (1 + x | school/class)")
>>> parsed.response, parsed.fixed
('y', 'x')
>>> [(t.lhs, t.group) for t in parsed.terms]
[('1 + x', 'school'), ('1 + x', 'school:class')]
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.errors import DataError, SpecError
from bayesmle.formula_check import (
    MAX_FORMULA_LENGTH,
    check_formula,
    describe_columns,
    model_matrix,
)
from bayesmle.models.mixed_design import INTERCEPT, RandomBlock

__all__ = ["MixedFormula", "RandomTerm", "has_random_terms", "parse_mixed_formula",
           "random_blocks", "random_variables"]

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_NAME = re.compile(r"[^\W\d]\w*")
_SYNTAX = ("A random-effects term is written `(terms | group)`, in parentheses, and added to "
           "the formula with `+`, e.g. \"y ~ x + (1 | g)\", \"y ~ x + (1 + x | g)\", "
           "\"y ~ x + (1 | a/b)\", \"y ~ x + (1 + x || g)\".")


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term before data: ``(lhs | group)``.

    Attributes
    ----------
    source : str
        The term as written in the formula (``"(1 + x | a/b)"``), for messages.
    lhs : str
        Its left side, a formulaic right-hand side (``"1 + x"``).
    factors : tuple of str
        The grouping columns (``("a", "b")`` for ``a:b``).
    uncorrelated : bool
        Written with ``||``: one block per column of the term's design.
    """

    source: str
    lhs: str
    factors: tuple[str, ...]
    uncorrelated: bool = False

    @property
    def group(self) -> str:
        """The grouping factor's label: ``"g"``, ``"a:b"``."""
        return ":".join(self.factors)

    def describe(self) -> str:
        """The term for an error message: ``(1 | a:b)`` from ``(1 | a/b)``."""
        bar = "||" if self.uncorrelated else "|"
        own = f"({self.lhs} {bar} {self.group})"
        return f"`{self.source}`" if own == _squash(self.source) else \
            f"`{own}` (from `{self.source}`)"


@dataclass(frozen=True)
class MixedFormula:
    """A formula split into response, fixed part and random-effects terms.

    Attributes
    ----------
    formula : str
        The formula as given.
    response : str
        The response column (left of ``~``).
    fixed : str
        The fixed part's right-hand side for formulaic (``"1"`` when only random terms).
    terms : tuple of RandomTerm
        The random terms, nested grouping expanded (``a/b`` -> ``a`` and ``a:b``).
    """

    formula: str
    response: str
    fixed: str
    terms: tuple[RandomTerm, ...]


# ---------------------------------------------------------------------------------------------
# Scanning the text (nothing is evaluated)
# ---------------------------------------------------------------------------------------------
def _squash(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = 80) -> str:
    text = _squash(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(formula: str, reason: str, hint: str = _SYNTAX) -> SpecError:
    return SpecError(f"`formula` = {_short(formula)!r}: {reason} {hint}".strip())


def _scan(text: str, formula: str) -> list[tuple[int, str, int]]:
    """``(position, character, depth)`` of every character outside strings and backticks.

    ``depth`` counts the brackets open *before* the character (an opening bracket is at the
    depth outside it). Unbalanced brackets or an unterminated string are a SpecError.
    """
    out: list[tuple[int, str, int]] = []
    stack: list[str] = []
    quote = ""
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = ""
            continue
        if c in "'\"`":
            quote = c
            continue
        if c in _CLOSE:
            if not stack or stack[-1] != _CLOSE[c]:
                raise _fail(formula, f"the bracket `{c}` in `{_short(text, 60)}` has no "
                                     f"matching opening bracket.", "")
            stack.pop()
            out.append((i, c, len(stack)))
            continue
        out.append((i, c, len(stack)))
        if c in _OPEN:
            stack.append(c)
    if quote:
        raise _fail(formula, f"a {quote} quote is not closed.", "")
    if stack:
        raise _fail(formula, f"the bracket `{stack[-1]}` is not closed.", "")
    return out


def has_random_terms(formula: Any) -> bool:
    """Whether a formula string holds ``|`` outside strings: random-effects terms.

    Examples
    --------
    >>> from bayesmle.models.random_terms import has_random_terms
    >>> has_random_terms("y ~ x + (1 | g)"), has_random_terms("y ~ C(g, Treatment('a|b'))")
    (True, False)
    """
    if not isinstance(formula, str) or "|" not in formula:
        return False
    quote = ""
    for c in formula:
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"`":
            quote = c
        elif c == "|":
            return True
    return False


def _summands(rhs: str, formula: str) -> list[tuple[str, str]]:
    """Top-level summands of ``rhs`` with their sign: ``[("+", "x"), ("-", "1")]``.

    A run of signs combines (``x + -1`` is ``x - 1``); a trailing sign is a SpecError.
    """
    pieces: list[tuple[str, str]] = []
    sign, start = "+", 0
    for i, c, depth in _scan(rhs, formula):
        if depth != 0 or c not in "+-":
            continue
        text = rhs[start:i].strip()
        if text:
            pieces.append((sign, text))
            sign = c
        elif c == "-":  # a sign after a sign (or at the start)
            sign = "-" if sign == "+" else "+"
        start = i + 1
    text = rhs[start:].strip()
    if not text:
        raise _fail(formula, "the right-hand side ends with an operator.", "")
    pieces.append((sign, text))
    return pieces


def _random_summand(text: str, formula: str) -> tuple[str, str, bool] | None:
    """``(lhs, group, uncorrelated)`` of a summand that is a random term; None otherwise.

    Raises SpecError for a ``|`` anywhere else than directly inside the summand's own
    parentheses.
    """
    chars = _scan(text, formula)
    bars = [(i, d) for i, c, d in chars if c == "|"]
    if not bars:
        return None
    whole = (text.startswith("(") and text.endswith(")")
             and all(d > 0 for i, c, d in chars if 0 < i < len(text) - 1))
    if not whole:
        raise _fail(formula, f"the summand `{_short(text, 60)}` holds `|` but is not a "
                             f"random-effects term in its own parentheses.")
    if any(d != 1 for _, d in bars):
        raise _fail(formula, f"in `{_short(text, 60)}` the `|` is nested inside further "
                             f"brackets.")
    positions = [i for i, _ in bars]
    uncorrelated = len(positions) == 2 and positions[1] == positions[0] + 1
    if len(positions) > 2 or (len(positions) == 2 and not uncorrelated):
        raise _fail(formula, f"the term `{_short(text, 60)}` holds more than one `|` (write "
                             f"one term per grouping factor).")
    inner_lhs = text[1:positions[0]].strip()
    inner_group = text[positions[-1] + 1:-1].strip()
    if not inner_lhs:
        raise _fail(formula, f"the term `{_short(text, 60)}` has nothing left of `|`; write "
                             f"`(1 | g)` for a random intercept.", "")
    if not inner_group:
        raise _fail(formula, f"the term `{_short(text, 60)}` has no grouping factor right of "
                             f"`|`.", "")
    return inner_lhs, inner_group, uncorrelated


def _grouping(text: str, source: str, formula: str) -> list[tuple[str, ...]]:
    """The grouping factors of ``a``, ``a:b``, ``a/b``, ``a/b/c`` (nesting expanded)."""
    levels: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for part in text.split("/"):
        atoms = []
        for raw in part.split(":"):
            atom = raw.strip()
            if len(atom) > 1 and atom.startswith("`") and atom.endswith("`") \
                    and "`" not in atom[1:-1]:
                atom = atom[1:-1]
            elif not _NAME.fullmatch(atom):
                raise _fail(formula, f"in the term `{_short(source, 60)}` the grouping factor "
                                     f"`{_short(text, 40)}` is not column names joined by `:` "
                                     f"(interaction) or `/` (nesting); write `(1 | g)`, "
                                     f"`(1 | a:b)` or `(1 | a/b)` (a column whose name is not "
                                     f"a plain name in `backticks`).", "")
            atoms.append(atom)
        prefix = prefix + tuple(atoms)
        levels.append(prefix)
    return levels


def parse_mixed_formula(formula: Any, *, columns: Collection[Hashable] | None = None,
                        trusted: bool = False) -> MixedFormula:
    """Split a formula into response, fixed part and random-effects terms (nothing evaluated).

    Parameters
    ----------
    formula : str
        ``"y ~ x + (1 + x | g)"`` in lme4's syntax (see the module docstring).
    columns : collection of str, optional
        The data's columns: given, every name in the random terms must be one of them.
    trusted : bool, default False
        Skip the allowlist check of the terms' left sides and grouping variables (a formula
        the program wrote itself; never for text from files or users).

    Returns
    -------
    MixedFormula

    Raises
    ------
    SpecError
        Not a formula, a ``|`` outside a parenthesised term, an empty or malformed term, a
        grouping factor that is not column names, a name that is not a column, anything the
        allowlist refuses (:func:`~bayesmle.formula_check.check_formula`). The message names
        the term.

    Examples
    --------
    >>> from bayesmle.models.random_terms import parse_mixed_formula
    >>> parsed = parse_mixed_formula("y ~ (x || g) + (1 | a:b)")
    >>> parsed.fixed, [(t.lhs, t.group, t.uncorrelated) for t in parsed.terms]
    ('1', [('x', 'g', True), ('1', 'a:b', False)])
    >>> parse_mixed_formula("y ~ x + (__import__('os').system('x') | g)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `formula` = ...: in the random-effects term `(__import__(...
    """
    if not isinstance(formula, str):
        raise SpecError(f"`formula` must be a string such as \"y ~ x + (1 | g)\", got "
                        f"{type(formula).__name__}.")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise SpecError(f"`formula` is {len(formula)} characters long; at most "
                        f"{MAX_FORMULA_LENGTH} are allowed.")
    tildes = [i for i, c, d in _scan(formula, formula) if c == "~"]
    if len(tildes) != 1:
        raise _fail(formula, "is not a formula of the form \"response ~ predictors\" (it needs "
                             "exactly one '~').", "")
    lhs, rhs = formula[:tildes[0]].strip(), formula[tildes[0] + 1:].strip()
    if lhs.startswith("`") and lhs.endswith("`") and len(lhs) > 1:
        lhs = lhs[1:-1]
    if not lhs or not rhs:
        raise _fail(formula, "both sides of '~' must be given, e.g. \"y ~ x + (1 | g)\".", "")
    known = None if columns is None else [c for c in columns if isinstance(c, str)]
    fixed: list[tuple[str, str]] = []
    terms: list[RandomTerm] = []
    for sign, text in _summands(rhs, formula):
        parts = _random_summand(text, formula)
        if parts is None:
            fixed.append((sign, text))
            continue
        if sign != "+":
            raise _fail(formula, f"the random term `{_short(text, 60)}` is subtracted; random "
                                 f"terms are added with `+`.")
        term_lhs, group, uncorrelated = parts
        if not trusted:
            _check_lhs(term_lhs, text, formula, known)
        for factors in _grouping(group, text, formula):
            if not trusted:
                _check_factors(factors, text, formula, known)
            elif known is not None:
                _known(factors, text, formula, known)
            terms.append(RandomTerm(_squash(text), _squash(term_lhs), factors, uncorrelated))
    if not terms:
        raise _fail(formula, "holds no random-effects term.")
    fixed_rhs = " ".join(f"{s} {t}" for s, t in fixed).strip()
    if fixed_rhs.startswith("+ "):
        fixed_rhs = fixed_rhs[2:]
    if not fixed or all(s == "-" for s, _ in fixed):
        fixed_rhs = f"1 {fixed_rhs}".strip()  # lme4: a fixed intercept unless removed
    if not trusted:  # the fixed part's own check (columns known) before anything evaluates
        try:
            check_formula(fixed_rhs, columns=known)
        except SpecError as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise SpecError(f"`formula` = {_short(formula)!r}: in the fixed part "
                            f"`{_short(fixed_rhs, 60)}`: {reason}") from None
    return MixedFormula(formula, lhs, fixed_rhs, tuple(terms))


def _check_lhs(lhs: str, source: str, formula: str, columns: list[str] | None) -> None:
    try:
        check_formula(lhs, columns=columns)
    except SpecError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise SpecError(f"`formula` = {_short(formula)!r}: in the random-effects term "
                        f"`{_short(source, 60)}`, the left side `{_short(lhs, 40)}`: "
                        f"{reason}") from None


def _known(factors: Sequence[str], source: str, formula: str, columns: list[str]) -> None:
    for name in factors:
        if name not in columns:
            raise SpecError(f"`formula` = {_short(formula)!r}: in the random-effects term "
                            f"`{_short(source, 60)}`, the grouping factor `{_short(name, 40)}` "
                            f"is not a column of the data. Valid: "
                            f"{describe_columns(columns)}.")


def _check_factors(factors: Sequence[str], source: str, formula: str,
                   columns: list[str] | None) -> None:
    if columns is not None:
        _known(factors, source, formula, columns)
    quoted = " + ".join(f"`{f}`" if not _NAME.fullmatch(f) else f for f in factors)
    try:
        check_formula(quoted, columns=columns)
    except SpecError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise SpecError(f"`formula` = {_short(formula)!r}: in the random-effects term "
                        f"`{_short(source, 60)}`, the grouping factor: {reason}") from None


# ---------------------------------------------------------------------------------------------
# On data
# ---------------------------------------------------------------------------------------------
def random_variables(parsed: MixedFormula, frame: pd.DataFrame, *, trusted: bool = False
                     ) -> list[str]:
    """The columns of ``frame`` the random terms use (left sides and grouping factors).

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmle.models.random_terms import parse_mixed_formula, random_variables
    >>> frame = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 1.0], "z": [1.0, 1.0],
    ...                       "g": ["a", "b"]})
    >>> random_variables(parse_mixed_formula("y ~ z + (x | g)"), frame)
    ['x', 'g']
    """
    out: list[str] = []
    for term in parsed.terms:
        spec = model_matrix(term.lhs, frame, trusted=trusted, na_action="ignore").model_spec
        out += [c for c in frame.columns if c in spec.required_variables]
        out += list(term.factors)
    return list(dict.fromkeys(out))


def _sorted_levels(values: pd.Series) -> list[Any]:
    """Observed values in order: a categorical's categories, else sorted (as strings if mixed)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique().tolist())
        return [c for c in values.cat.categories if c in present]
    unique = list(pd.unique(values))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


def _factor_codes(frame: pd.DataFrame, factors: Sequence[str]
                  ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels of the combinations of ``factors`` observed (first factor slowest)."""
    ranks, labels = [], []
    for name in factors:
        values = frame[name]
        order = _sorted_levels(values)
        position = {v: i for i, v in enumerate(order)}
        ranks.append(np.fromiter((position[v] for v in values), dtype=np.int64,
                                 count=len(values)))
        labels.append([str(v) for v in order])
    stacked = np.column_stack(ranks)
    unique, codes = np.unique(stacked, axis=0, return_inverse=True)
    names = tuple(":".join(labels[j][r] for j, r in enumerate(row)) for row in unique)
    return np.ascontiguousarray(codes.reshape(-1), dtype=np.int64), names


def _term_design(term: RandomTerm, frame: pd.DataFrame, trusted: bool,
                 formula: str) -> pd.DataFrame:
    matrix = pd.DataFrame(model_matrix(term.lhs, frame, trusted=trusted, key="formula",
                                       na_action="ignore"))
    columns = [str(c) for c in matrix.columns]
    matrix.columns = columns
    if not columns:
        raise SpecError(f"`formula` = {_short(formula)!r}: the random-effects term "
                        f"{term.describe()} has no column (`0` or `-1` alone removes the "
                        f"intercept and leaves nothing); write `(1 | {term.group})` for a "
                        f"random intercept or `(0 + x | {term.group})` for a slope.")
    order = ([INTERCEPT] if INTERCEPT in columns else []) + [c for c in columns
                                                              if c != INTERCEPT]
    return matrix[order].astype(float)


def random_blocks(parsed: MixedFormula, frame: pd.DataFrame, *, trusted: bool = False,
                  gaussian: bool = False) -> tuple[RandomBlock, ...]:
    """The random-effect blocks of the parsed terms on ``frame`` (rows without missing values).

    Parameters
    ----------
    parsed : MixedFormula
        From :func:`parse_mixed_formula`.
    frame : pandas.DataFrame
        The data, missing values already handled (see :func:`bayesmle.models.glm.glm`'s
        ``na_action``).
    trusted : bool, default False
        Evaluate the terms' left sides with formulaic's full namespace (see
        :func:`~bayesmle.formula_check.model_matrix`).
    gaussian : bool, default False
        The model has a residual scale (Gaussian family): a block with at least as many
        random effects (levels x columns) as rows is confounded with it and refused, as
        lme4's ``lmer`` refuses it.

    Returns
    -------
    tuple of RandomBlock
        One per term (``||`` terms: one per column), in the formula's order.

    Raises
    ------
    SpecError
        An empty term ``(0 | g)``, two blocks for one column of one grouping factor.
    DataError
        A grouping factor with a single level; for the Gaussian family, a block with as many
        random effects as rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmle.models.random_terms import parse_mixed_formula, random_blocks
    >>> frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "x": [0.0, 1.0, 2.0, 3.0],
    ...                       "g": ["b", "a", "b", "a"]})
    >>> (block,) = random_blocks(parse_mixed_formula("y ~ x + (x | g)"), frame)
    >>> block.group, block.columns, block.levels, block.codes.tolist()
    ('g', ('Intercept', 'x'), ('a', 'b'), [1, 0, 1, 0])
    """
    n = len(frame)
    formula = parsed.formula
    blocks: list[RandomBlock] = []
    seen: dict[tuple[str, str], RandomTerm] = {}
    for term in parsed.terms:
        design = _term_design(term, frame, trusted, formula)
        codes, levels = _factor_codes(frame, term.factors)
        if len(levels) < 2:
            raise DataError(
                f"`formula` = {_short(formula)!r}: the grouping factor `{term.group}` of the "
                f"random-effects term {term.describe()} has a single level in the {n} rows "
                f"used; random effects need at least 2 levels (as lme4). Drop the term, or "
                f"use the factor as a fixed effect.")
        groups = [list(design.columns)] if not term.uncorrelated else [
            [c] for c in design.columns]
        for cols in groups:
            for col in cols:
                other = seen.get((term.group, col))
                if other is not None:
                    raise SpecError(
                        f"`formula` = {_short(formula)!r}: the column `{col}` of the grouping "
                        f"factor `{term.group}` is in two random-effects terms, "
                        f"{other.describe()} and {term.describe()}; each column of a grouping "
                        f"factor may have one random effect (give it once, or use `||` for "
                        f"uncorrelated effects).")
                seen[(term.group, col)] = term
            effects = len(levels) * len(cols)
            if gaussian and effects >= n:
                raise DataError(
                    f"`formula` = {_short(formula)!r}: the random-effects term "
                    f"{term.describe()} has {effects} random effects ({len(levels)} levels of "
                    f"`{term.group}` x {len(cols)} column(s)) for {n} rows: with as many "
                    f"effects as observations they are not identifiable against the residual "
                    f"sigma (lme4 refuses this too). Drop the term, or use a grouping factor "
                    f"with fewer levels.")
            blocks.append(RandomBlock(
                group=term.group, columns=tuple(cols), levels=levels, codes=codes,
                values=np.ascontiguousarray(design[cols].to_numpy(dtype=float))))
    return tuple(blocks)
