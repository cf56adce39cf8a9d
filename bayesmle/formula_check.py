"""Formulas from untrusted text: checked before anything in them is evaluated.

formulaic evaluates Python in a formula: ``{...}`` blocks and every call such as ``C(g)`` or
``np.log(x)`` are passed to :func:`eval`, with Python's builtins within reach, and merely
*parsing* a two-sided formula evaluates part of its left side. A formula read from a spec file
(shared like data) must therefore be checked first. :func:`check_formula` does that without
evaluating anything and without formulaic's parser: it splits the formula with formulaic's own
tokenizer (so it sees exactly the pieces formulaic would evaluate), parses each Python piece
with :mod:`ast` exactly as formulaic will (Unicode names normalised, backtick names replaced)
and accepts only

* column names (``x1``; other names in backticks: ```my col```), numbers, the operators
  ``+ - : * / ** ^ %in%``, ``0``/``1`` (intercept), ``.`` (every other column), parentheses;
* the transforms ``C(column[, Treatment('a') | Sum | ...][, levels=[...]])``,
  ``I(arithmetic)`` (``+ - * / **``, numbers, columns, the functions below), ``log``,
  ``log1p``, ``exp``, ``sqrt``, ``abs`` (also as ``np.log`` ...), ``scale``, ``center``,
  ``poly``, ``bs`` (number arguments only) and ``offset``; ``{...}`` holds the same arithmetic
  as ``I(...)``.

Anything else (attribute access other than ``np.<function>``, names like ``__import__``, other
functions, lambdas, comprehensions, subscripts, strings outside a contrast, ...) is a
:class:`~bayesmle.errors.SpecError` naming the term. Whatever the checker cannot read is
rejected too. Sizes are bounded: the formula's length, the nesting depth, powers, and the number
of terms the formula algebra may produce.

:func:`model_matrix` checks a formula and then evaluates it with formulaic in
:func:`evaluation_context`, a namespace holding only the allowed functions (every builtin and
every other formulaic transform is replaced by a stub that refuses to run): a second line of
defence. Code that builds formulas itself, rather than reading them from a file, can pass
``trusted=True`` to skip both.

Examples
--------
>>> from bayesmle.formula_check import check_formula
>>> check_formula("y ~ x1 + np.log(x2) + C(group, Treatment('b'))")  # fine: returns None
>>> check_formula("y ~ x1 + {__import__('os').system('echo hi')}")  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
bayesmle.errors.SpecError: `formula` = "y ~ x1 + {...}": the term `__import__('os')...` is ...

With the data's columns, unknown names are caught before formulaic looks them up:

>>> check_formula("y ~ x1 + x3", columns=["y", "x1", "x2"])
Traceback (most recent call last):
    ...
bayesmle.errors.SpecError: `formula` = "y ~ x1 + x3": the term `x3` is not a column of the data.
Valid: y, x1, x2.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import re
import types
import unicodedata
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from typing import Any

from bayesmle.errors import SpecError

__all__ = [
    "MAX_FORMULA_LENGTH",
    "MAX_TERMS",
    "TRANSFORMS",
    "check_formula",
    "describe_columns",
    "evaluation_context",
    "model_matrix",
]

#: Longest formula accepted (characters).
MAX_FORMULA_LENGTH = 2000
#: Most terms any step of the formula algebra may produce (``(a+b+c)**2``: 9 products).
MAX_TERMS = 10_000
#: Largest design (rows x columns) a formula from untrusted text may build (800 MB of float64).
MAX_DESIGN_ENTRIES = 100_000_000
_MAX_DEPTH = 24  # nesting of a Python expression
_MAX_POWER = 100  # |exponent| of ``**`` inside I(...)
_MAX_LIST = 1000  # entries of levels=[...] / knots=[...]
_INT_LIMITS = {"degree": 20, "df": 100}  # poly(x, degree=...), bs(x, df=..., degree=...)

_MATH = ("log", "log1p", "exp", "sqrt", "abs")
#: The transforms a checked formula may call, with how they are written.
TRANSFORMS: Mapping[str, str] = types.MappingProxyType({
    "C": "C(column[, Treatment('a') | Sum | Helmert | Diff | Poly][, levels=[...]])",
    "I": "I(arithmetic: + - * / ** on columns, numbers and these functions)",
    **{name: f"{name}(x) or np.{name}(x)" for name in _MATH},
    "scale": "scale(x[, center=, scale=, ddof=])",
    "center": "center(x)",
    "poly": "poly(x, degree[, raw=])",
    "bs": "bs(x[, df=, knots=[...], degree=, include_intercept=, lower_bound=, "
          "upper_bound=])",
    "offset": "offset(x)",
})
_CONTRASTS = ("Treatment", "Sum", "Helmert", "Diff", "Poly")
# Keyword arguments (number or boolean constants) of the transforms that take any.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "scale": ("center", "scale", "ddof"),
    "poly": ("degree", "raw"),
    "bs": ("df", "knots", "degree", "include_intercept", "lower_bound", "upper_bound"),
}
_OPERATOR_CHARS = frozenset("+-*/:^.")
_NAME_FORBIDDEN = frozenset("{}'\"`\\\n\r")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_PLAUSIBLE = re.compile(r"[^\W\d][\w .\-]{0,39}")
_ALLOWED = ("Allowed in a formula: column names (in `backticks` if not plain names), numbers, "
            "the operators + - : * / ** ^ %in% . and parentheses, and the transforms "
            + "; ".join(TRANSFORMS.values()) + ".")


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------
def _short(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quoted(text: str) -> str:
    return _short(json.dumps(text, ensure_ascii=False))


def describe_columns(columns: Iterable[Hashable], limit: int = 20) -> str:
    """The columns of a data set for an error message, without echoing arbitrary text.

    Only names that look like column names (a letter or ``_`` then up to 39 letters, digits,
    spaces, ``_``, ``.`` or ``-``) are shown, at most ``limit`` of them; the others are counted.
    A "header" that is really the first line of some other file is thus not repeated.

    Examples
    --------
    >>> describe_columns(["age", "bmi", "root:x:0:0:root:/root:/bin/bash"])
    'age, bmi (and 1 other column)'
    >>> describe_columns([f"x{i}" for i in range(25)], limit=3)
    'x0, x1, x2 (and 22 other columns)'
    """
    names = [str(c) for c in columns]
    shown = [n for n in names if _PLAUSIBLE.fullmatch(n)][:limit]
    hidden = len(names) - len(shown)
    text = ", ".join(shown)
    if hidden:
        more = f"{hidden} other column{'s' if hidden > 1 else ''}"
        text = f"{text} (and {more})" if text else f"{more} (names not shown)"
    return text or "(no columns)"


class _Reject(Exception):
    """A piece of a formula that is not allowed (turned into a SpecError by the caller)."""

    def __init__(self, reason: str, valid: str = _ALLOWED):
        super().__init__(reason)
        self.reason = reason
        self.valid = valid


class _RejectTerm(_Reject):
    """A rejection that knows its term (raised before the term loop)."""

    def __init__(self, term: str, reason: str):
        super().__init__(reason)
        self.term = term


def _error(key: str, formula: str, term: str | None, reason: str, valid: str) -> SpecError:
    head = f"`{key}` = {_quoted(formula)}: "
    if term is not None:
        head += f"the term `{_short(term, 60)}` "
        if not reason.startswith("is "):
            head += "is not allowed: "
    return SpecError(f"{head}{reason} {valid}".strip())


# ---------------------------------------------------------------------------------------------
# Python pieces (what formulaic would eval)
# ---------------------------------------------------------------------------------------------
class _PythonCheck:
    """Walk the ``ast`` of one Python piece of a formula with an allowlist of node types."""

    def __init__(self, columns: Mapping[str, None] | None, aliases: Mapping[str, str]):
        self.columns = columns
        self.aliases = aliases

    # -- names and constants -------------------------------------------------------------------
    def column(self, node: ast.expr) -> None:
        if not isinstance(node, ast.Name):
            raise _Reject(f"`{_unparse(node)}` is not a column name.")
        name = self.aliases.get(node.id, node.id)
        _check_name(name, self.columns)

    def number(self, node: ast.expr, what: str, *, integer: bool = False,
               boolean: bool = False, limit: float | None = None) -> None:
        value = _constant(node)
        ok = (isinstance(value, bool) and boolean) or (
            isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and (not integer or isinstance(value, int)))
        if not ok:
            kind = "an integer" if integer else "a number"
            raise _Reject(f"{what} must be {kind}{' or true/false' if boolean else ''}, got "
                          f"`{_unparse(node)}`.")
        if limit is not None and abs(value) > limit:
            raise _Reject(f"{what} must be at most {limit:g}, got {value}.")

    def constants(self, node: ast.expr, what: str, strings: bool) -> None:
        if not isinstance(node, ast.List | ast.Tuple) or len(node.elts) > _MAX_LIST:
            raise _Reject(f"{what} must be a list of at most {_MAX_LIST} constants.")
        for item in node.elts:
            value = _constant(item)
            if isinstance(value, str) and strings:
                continue
            self.number(item, f"an entry of {what}")

    # -- expressions ---------------------------------------------------------------------------
    def value(self, node: ast.expr, depth: int, top: bool = False) -> None:
        """A numeric expression: columns, numbers, + - * / **, allowed function calls."""
        if depth > _MAX_DEPTH:
            raise _Reject(f"it is nested more than {_MAX_DEPTH} levels deep.")
        if isinstance(node, ast.Constant):
            self.number(node, "a constant")
        elif isinstance(node, ast.Name):
            self.column(node)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            self.value(node.operand, depth + 1)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow)
                   for n in ast.walk(node.left)):
                raise _Reject("the base of `**` may not itself hold `**`.")
            self.number(node.right, "the exponent of `**`", limit=_MAX_POWER)
            self.value(node.left, depth + 1)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult
                                                       | ast.Div):
            self.value(node.left, depth + 1)
            self.value(node.right, depth + 1)
        elif isinstance(node, ast.Call):
            self.call(node, depth, top)
        else:
            raise _Reject(_describe_node(node))

    def call(self, node: ast.Call, depth: int, top: bool) -> None:
        name = _function_name(node.func)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            raise _Reject("`*args` and `**kwargs` are not allowed.")
        if name in ("C", "poly", "bs", "offset") and not top:
            raise _Reject(f"`{name}(...)` must be a term of its own, not part of an "
                          "expression.")
        if name == "C":
            self.categorical(node)
            return
        base = name.removeprefix("np.")
        args, keywords = node.args, {k.arg: k.value for k in node.keywords}
        allowed = _KEYWORDS.get(base, ())
        extra_positional = 1 if base == "poly" else 0  # poly(x, 3)
        if not args or len(args) > 1 + extra_positional:
            raise _Reject(f"`{name}` takes one column expression"
                          f"{' (and the degree)' if extra_positional else ''}: "
                          f"{TRANSFORMS[base]}.")
        for key in keywords:
            if key not in allowed:
                raise _Reject(f"`{name}` has no keyword `{key}`. Keywords of `{name}`: "
                              f"{', '.join(allowed) or 'none'}.")
        self.value(args[0], depth + 1)
        if len(args) == 2:
            keywords = {**keywords, "degree": args[1]}
        for key, arg in keywords.items():
            if key == "knots":
                self.constants(arg, "`knots`", strings=False)
            else:
                self.number(arg, f"`{key}` of `{name}`", boolean=True,
                            integer=key in _INT_LIMITS, limit=_INT_LIMITS.get(key))

    def categorical(self, node: ast.Call) -> None:
        keywords = {k.arg: k.value for k in node.keywords}
        for key in keywords:
            if key not in ("contrasts", "levels", "spans_intercept"):
                raise _Reject(f"`C` has no keyword `{key}`. Keywords of `C`: contrasts, "
                              "levels, spans_intercept.")
        if not node.args or len(node.args) > 2 or (len(node.args) == 2
                                                   and "contrasts" in keywords):
            raise _Reject(f"write {TRANSFORMS['C']}.")
        self.column(node.args[0])
        contrast = node.args[1] if len(node.args) == 2 else keywords.get("contrasts")
        if contrast is not None:
            self.contrast(contrast)
        if "levels" in keywords:
            self.constants(keywords["levels"], "`levels`", strings=True)
        if "spans_intercept" in keywords and not isinstance(
                _constant(keywords["spans_intercept"]), bool):
            raise _Reject("`spans_intercept` must be true or false.")

    def contrast(self, node: ast.expr) -> None:
        call = node if isinstance(node, ast.Call) else None
        func = call.func if call is not None else node
        if not (isinstance(func, ast.Name) and func.id in _CONTRASTS):
            raise _Reject(f"the contrast `{_unparse(node)}` must be one of "
                          f"{', '.join(_CONTRASTS)}, e.g. Treatment('a').")
        if call is None:
            return
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None or k.arg.startswith("_") for k in call.keywords):
            raise _Reject("a contrast takes constant arguments only.")
        for arg in (*call.args, *(k.value for k in call.keywords)):
            if isinstance(arg, ast.List | ast.Tuple):
                self.constants(arg, "a contrast's argument", strings=True)
            elif not isinstance(_constant(arg), str | int | float):
                raise _Reject(f"a contrast takes constant arguments only, got "
                              f"`{_unparse(arg)}`.")


_MISSING = object()


def _constant(node: ast.expr) -> Any:
    """The value of a constant node (numbers may be negated); ``_MISSING`` otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)):
        return -node.operand.value
    return _MISSING


def _function_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        if func.id in TRANSFORMS:
            return func.id
        _check_dunder(func.id)
        raise _Reject(f"`{func.id}(...)` is not an allowed transform.")
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == "np" and func.attr in _MATH:
            return f"np.{func.attr}"
        _check_dunder(func.attr)
        raise _Reject(f"`{_unparse(func)}` is attribute access; only np.{', np.'.join(_MATH)}"
                      " may be called.")
    raise _Reject(_describe_node(func))


def _check_dunder(name: str) -> None:
    if name.startswith("__") and name.endswith("__"):
        raise _Reject(f"`{name}` is a reserved (dunder) name.")


def _check_name(name: str, columns: Mapping[str, None] | None) -> None:
    for part in name.split("."):
        _check_dunder(part)
    odd = sorted(set(name) & _NAME_FORBIDDEN)
    if odd:
        raise _Reject(f"is not allowed: a column name in a formula may not hold "
                      f"{' '.join(map(repr, odd))} (nor any of {{ }} ' \" ` \\ or a line "
                      f"break).")
    if columns is not None and name not in columns:
        raise _Reject("is not a column of the data.", f"Valid: {describe_columns(columns)}.")


_NODE_WORDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (ast.Lambda, "a lambda"),
    ((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "a comprehension"),
    (ast.JoinedStr, "an f-string"),
    (ast.Attribute, "attribute access"),
    (ast.Subscript, "indexing"),
    (ast.NamedExpr, "an assignment (`:=`)"),
    (ast.Starred, "unpacking (`*`)"),
    ((ast.Compare, ast.BoolOp), "a comparison or logical operator"),
    (ast.IfExp, "a conditional expression"),
    ((ast.List, ast.Tuple, ast.Set, ast.Dict), "a collection"),
    ((ast.Await, ast.Yield, ast.YieldFrom), "a generator or coroutine expression"),
)


def _describe_node(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return f"`{_unparse(node)}` is not a number (strings belong inside a contrast only)."
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        op = type(node.op).__name__
        return f"it uses the operator `{op}` (arithmetic is + - * / ** only)."
    for kinds, words in _NODE_WORDS:
        if isinstance(node, kinds):
            return f"it holds {words}: `{_short(_unparse(node), 40)}`."
    return f"it holds `{_short(_unparse(node), 40)}`."


def _unparse(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse of a parsed tree
        return type(node).__name__


def _check_python(code: str, columns: Mapping[str, None] | None) -> None:
    """Check one Python piece exactly as formulaic's ``stateful_eval`` will read it."""
    from formulaic.utils.code import sanitize_variable_names

    aliases: dict[str, str] = {}
    try:
        sanitized = sanitize_variable_names(code, {}, aliases)
        tree = ast.parse(sanitized, mode="eval")
    except Exception:  # whatever cannot be parsed is refused, never evaluated
        raise _Reject("is not a valid expression.") from None
    for node in ast.walk(tree):  # names anywhere (e.g. keyword names) are never dunders
        if isinstance(node, ast.Name):
            _check_dunder(node.id)
        elif isinstance(node, ast.Attribute):
            _check_dunder(node.attr)
        elif isinstance(node, ast.keyword) and node.arg is not None:
            _check_dunder(node.arg)
    _PythonCheck(columns, aliases).value(tree.body, 0, top=True)


# ---------------------------------------------------------------------------------------------
# The formula
# ---------------------------------------------------------------------------------------------
def _tokens(formula: str) -> list[Any]:
    """Formulaic's own tokens (pure: its tokenizer and token sanitizer evaluate nothing).

    Raises ``_Reject`` naming the piece that formulaic's sanitizer cannot read; formulaic's
    own exceptions for a formula it cannot split into tokens at all propagate.
    """
    from formulaic.parser.algos.sanitize_tokens import sanitize_tokens
    from formulaic.parser.algos.tokenize import tokenize

    tokens = []
    for raw in list(tokenize(formula)):
        text = raw.token
        try:  # one token at a time, to name the one that cannot be read
            tokens.extend(sanitize_tokens([raw]))
        except Exception:
            raise _RejectTerm(text, "is not a valid expression.") from None
    return tokens


def _check_operator(text: str) -> None:
    if text == "in":  # %in%
        return
    bad = sorted(set(text) - _OPERATOR_CHARS)
    if bad:
        raise _Reject(f"the operator `{''.join(bad)}` is not allowed.")


def _check_token(token: Any, columns: Mapping[str, None] | None) -> None:
    kind = token.kind.value
    text = token.token
    if kind == "operator":
        _check_operator(text)
    elif kind == "context":
        if text not in "()":
            raise _Reject("brackets `[...]` are not allowed; use parentheses.")
    elif kind == "value":
        if not _NUMBER.fullmatch(text):
            raise _Reject("is a string; strings are allowed only inside a contrast, e.g. "
                          "C(g, Treatment('a')).")
    elif kind == "name":
        _check_name(text, columns)
    elif kind == "python":
        _check_python(text, columns)
    else:  # pragma: no cover - formulaic's token kinds are the ones above
        raise _Reject(f"is an unknown kind of token ({kind}).")


def _split_sides(tokens: list[Any]) -> tuple[list[Any], list[Any]]:
    """Left side (at most one column) and right side; the ``~`` is removed."""
    tildes = [i for i, t in enumerate(tokens) if t.kind.value == "operator" and "~" in t.token]
    if not tildes:
        return [], tokens
    i = tildes[0]
    if len(tildes) > 1 or tokens[i].token.count("~") > 1 or not tokens[i].token.startswith("~"):
        raise _Reject("a formula holds at most one `~`, between the response and the "
                      "predictors.", "")
    lhs = tokens[:i]
    if len(lhs) > 1 or (lhs and lhs[0].kind.value != "name"):
        raise _Reject("the left of `~` must be one column name.", "")
    rest = tokens[i].token[1:]
    rhs = list(tokens[i + 1:])
    if rest:
        from formulaic.parser.types import Token

        rhs.insert(0, Token(rest, kind="operator"))
    return lhs, rhs


def _term_bound(tree: Any, n_columns: int) -> int:
    """An upper bound of the terms each step of formulaic's algebra produces (the largest)."""
    from formulaic.parser.types import ASTNode

    sizes: dict[int, int] = {}
    largest = 1
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:  # iterative post-order: long formulas nest deeply
        node, done = stack.pop()
        if not isinstance(node, ASTNode):
            sizes[id(node)] = 1
            continue
        if not done:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args)
            continue
        args = [sizes[id(a)] for a in node.args]
        symbol = node.operator.symbol
        if symbol == ".":
            size = max(n_columns, 1)
        elif symbol in ("**", "^") and len(args) == 2:
            exponent = getattr(node.args[1], "token", "")
            power = int(exponent) if str(exponent).isdigit() else 1
            size = args[0] ** min(power, 64) if args[0] > 1 else 1
        elif symbol in (":", "in") and len(args) == 2:
            size = args[0] * args[1]
        elif symbol in ("*", "/") and len(args) == 2:
            size = args[0] + args[1] + args[0] * args[1]
        else:  # + - ~ and unary operators
            size = sum(args)
        sizes[id(node)] = size
        largest = max(largest, size)
        if largest > MAX_TERMS:
            break
    return largest


def check_formula(formula: str, *, columns: Collection[Hashable] | None = None,
                  key: str = "formula") -> None:
    """Check a formula from untrusted text without evaluating anything in it.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + np.log(x2) + C(g)"`` or a right-hand side alone (``"x1 + C(g)"``).
    columns : collection of str, optional
        The columns of the data the right-hand side may use. Given, every name must be one
        of them; without it names are only checked not to be reserved (``__x__``).
    key : str, default "formula"
        How to name the formula in error messages (``"model.formula"`` for a spec file).

    Raises
    ------
    SpecError
        The formula holds something other than columns, numbers, formula operators and the
        allowed transforms (see :data:`TRANSFORMS`), is too long or expands to more than
        :data:`MAX_TERMS` terms. The message names the term, why, and what is allowed.

    Examples
    --------
    >>> from bayesmle.formula_check import check_formula
    >>> check_formula("y ~ 0 + I(x**2) + scale(x2) + `my col`")
    >>> check_formula("y ~ x + C(g).__class__")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: ...: the term `.__class__` is not allowed: `__class__` is a ...
    >>> check_formula("y ~ x + open('data.csv')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: ...: the term `open('data.csv')` is not allowed: `open(...)` is ...
    """
    if not isinstance(formula, str):
        raise SpecError(f"`{key}` must be a string such as \"y ~ x1 + x2\", got "
                        f"{type(formula).__name__}.")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise _error(key, formula, None, f"is {len(formula)} characters long; at most "
                                         f"{MAX_FORMULA_LENGTH} are allowed.", "")
    if not formula.strip():
        raise _error(key, formula, None, "is empty.", "Write e.g. \"y ~ x1 + x2\".")
    odd = [c for c in formula if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")
           and c not in " \t\n\r"]
    if odd:
        raise _error(key, formula, None, f"holds the invisible or control character "
                                         f"U+{ord(odd[0]):04X}.", "")
    cols = None if columns is None else dict.fromkeys(c for c in columns if isinstance(c, str))
    term = None
    try:
        tokens = _tokens(formula)
        lhs, rhs = _split_sides(tokens)
        for token in lhs:
            term = token.token
            _check_name(token.token, None)
        for token in rhs:
            term = token.token
            _check_token(token, cols)
    except _RejectTerm as rejected:
        raise _error(key, formula, rejected.term, rejected.reason, rejected.valid) from None
    except _Reject as rejected:
        raise _error(key, formula, term, rejected.reason, rejected.valid) from None
    except Exception as exc:  # anything formulaic cannot split into tokens is refused
        raise _error(key, formula, None, f"cannot be read ({_formulaic_message(exc)}).",
                     "") from None
    # Every piece is harmless now; formulaic's parser builds the tree, whose size is bounded.
    from formulaic.parser import DefaultFormulaParser

    try:
        tree = DefaultFormulaParser().get_ast(formula)
    except Exception as exc:
        raise _error(key, formula, None, f"is not a valid formula "
                                         f"({_formulaic_message(exc)}).", "") from None
    if tree is not None and _term_bound(tree, len(cols or ())) > MAX_TERMS:
        raise _error(key, formula, None, f"expands to more than {MAX_TERMS} terms.",
                     "Use fewer interactions or a smaller power.")


def _formulaic_message(exc: BaseException) -> str:
    """Formulaic's message about the formula's text (its source markers removed), shortened."""
    text = re.sub(r"\x1b\[[0-9;]*m|[⧚⧛]", "", str(exc)).strip()
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {_short(text, 160)}" if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
class _Refused:
    """Stands for a builtin or transform a checked formula may not use; refuses to run."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise SpecError(f"`{self.name}` may not be used in a formula. {_ALLOWED}")

    def __repr__(self) -> str:
        return f"<refused {self.name}>"


def _offset(x: Any) -> Any:
    raise SpecError("`offset(x)` is not a design column: give the offset as the model's "
                    "`offset` argument (a column) instead.")


def evaluation_context() -> dict[str, Any]:
    """The namespace a checked formula is evaluated in: the allowed transforms only.

    Every builtin and every formulaic transform is shadowed by a stub that refuses to run;
    ``np`` is a namespace holding only ``log``, ``log1p``, ``exp``, ``sqrt`` and ``abs``.
    Columns of the data come first (formulaic looks names up in the data before this).

    Examples
    --------
    >>> from bayesmle.formula_check import evaluation_context
    >>> context = evaluation_context()
    >>> sorted(vars(context["np"]))
    ['abs', 'exp', 'log', 'log1p', 'sqrt']
    >>> context["open"]("/etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `open` may not be used in a formula. ...
    """
    import numpy as np
    from formulaic.transforms import TRANSFORMS as FORMULAIC

    context: dict[str, Any] = {name: _Refused(name) for name in dir(builtins)}
    context.update({name: _Refused(name) for name in FORMULAIC})
    math_functions: dict[str, Callable[..., Any]] = {name: getattr(np, name) for name in _MATH}
    context.update(math_functions)
    context["np"] = types.SimpleNamespace(**math_functions)
    for name in ("C", "I", "scale", "center", "poly", "bs", *_CONTRASTS):
        context[name] = FORMULAIC[name]
    context["offset"] = _offset
    return context


def model_matrix(formula: str, data: Any, *, trusted: bool = False, key: str = "formula",
                 context: Mapping[str, Any] | None = None, na_action: str = "ignore") -> Any:
    """Formulaic's ``model_matrix``, for formulas that may come from untrusted text.

    Unless ``trusted``, the formula is first checked (:func:`check_formula`, the data's columns
    known) and then evaluated in :func:`evaluation_context`; any failure is a
    :class:`~bayesmle.errors.SpecError` that does not repeat the data's values.

    Parameters
    ----------
    formula : str
        A formula (or right-hand side) in formulaic's syntax.
    data : pandas.DataFrame
        The data.
    trusted : bool, default False
        The formula comes from the program itself (not from a file or a user): skip the
        check and evaluate with formulaic's full namespace plus ``context``.
    key : str, default "formula"
        How to name the formula in error messages.
    context : mapping, optional
        Extra names for a trusted formula (ignored unless ``trusted``).
    na_action : str, default "ignore"
        formulaic's handling of missing values (``"drop"``, ``"ignore"``, ``"raise"``).

    Returns
    -------
    formulaic.ModelMatrix
        The design matrix (a pandas DataFrame).

    Raises
    ------
    SpecError
        The formula is not allowed, or formulaic cannot build the design.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmle.formula_check import model_matrix
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 4.0], "g": ["a", "b", "a"]})
    >>> model_matrix("x + np.log(x) + C(g)", frame).columns.tolist()
    ['Intercept', 'x', 'np.log(x)', 'C(g)[T.b]']
    >>> model_matrix("x + np.load('x.npy')", frame)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: ...`np.load` is attribute access; only np.log, ... may be called...
    """
    import formulaic

    if trusted:
        namespace: Mapping[str, Any] = dict(context or {})
    else:
        check_formula(formula, columns=list(getattr(data, "columns", ())), key=key)
        namespace = evaluation_context()
    try:
        if not trusted:
            # Its size first, from a sparse build: a categorical with a million levels must
            # not allocate a dense n x levels matrix before it can be refused.
            rows, cols = formulaic.model_matrix(formula, data, context=namespace,
                                                na_action=na_action, output="sparse").shape
            if rows * cols > MAX_DESIGN_ENTRIES:
                raise SpecError(
                    f"the design would have {rows:,} rows x {cols:,} columns = "
                    f"{rows * cols:,} entries; at most {MAX_DESIGN_ENTRIES:,} are allowed (a "
                    f"categorical column with very many levels?)")
        return formulaic.model_matrix(formula, data, context=namespace, na_action=na_action)
    except Exception as exc:  # no traceback and no data values for a formula from a file
        raise _error(key, formula, None, f"formulaic cannot build the design: "
                                         f"{_failure(exc).rstrip('.')}.", "") from None


def _failure(exc: BaseException) -> str:
    """What went wrong, without the values of the data (which formulaic's messages may hold)."""
    from formulaic.errors import FactorEvaluationError, FormulaParsingError

    if isinstance(exc, SpecError):
        return str(exc)
    if isinstance(exc, FormulaParsingError):  # about the formula's own text
        return _formulaic_message(exc)
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, SpecError):
        return str(cause)
    match = re.search(r"factor `(.{1,80}?)`", str(exc))
    where = f" evaluating `{match.group(1)}`" if match else ""
    if isinstance(exc, FactorEvaluationError) and isinstance(cause, NameError):
        return f"a name is not a column of the data{where}"
    return f"{type(cause).__name__}{where}"
