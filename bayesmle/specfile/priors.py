"""Priors written in a spec file: ``"Normal(10, mu=165)"`` or ``{ dist = "Normal", sigma = 10 }``.

Both forms call the constructor of a :mod:`bayesmle.priors` class with the given arguments;
only numbers and arrays of numbers are accepted (the string form is parsed, never evaluated).
"""

from __future__ import annotations

import ast
from dataclasses import fields
from typing import Any

from bayesmle import priors as _priors
from bayesmle.errors import BayesMLEError, PriorError
from bayesmle.specfile._schema import Where

__all__ = ["PRIORS", "parse_prior", "prior_to_toml"]

#: Prior classes by the name used in spec files.
PRIORS: dict[str, type[_priors.Prior]] = {
    name: getattr(_priors, name)
    for name in ("Flat", "Normal", "Laplace", "HalfFlat", "HalfNormal", "HalfCauchy",
                 "Exponential", "Gamma", "Beta", "LKJ", "Dirichlet", "ElasticNet", "StudentT",
                 "Cauchy", "Horseshoe", "RegularizedHorseshoe")
}


def _signature(cls: type[_priors.Prior]) -> str:
    names = [f.name for f in fields(cls)]
    return f"{cls.__name__}({', '.join(names)})"


def _valid_priors() -> str:
    return ", ".join(_signature(c) for c in PRIORS.values())


def _literal(node: ast.AST) -> Any:
    value = ast.literal_eval(node)
    ok = (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, list | tuple) and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))
    if not ok:
        raise ValueError(f"not a number or a list of numbers: {ast.unparse(node)}")
    return list(value) if isinstance(value, tuple) else value


def _parse_string(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    tree = ast.parse(text.strip(), mode="eval").body
    if isinstance(tree, ast.Name):  # "Flat" is "Flat()"
        return tree.id, [], {}
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError("expected a call such as Normal(1.0)")
    args = [_literal(a) for a in tree.args]
    kwargs = {}
    for kw in tree.keywords:
        if kw.arg is None:
            raise ValueError("** arguments are not allowed")
        kwargs[kw.arg] = _literal(kw.value)
    return tree.func.id, args, kwargs


def parse_prior(value: Any, where: Where, key: str) -> _priors.Prior:
    """Build a prior from its spec-file form.

    Parameters
    ----------
    value : str or dict
        ``"Normal(10, mu=165)"`` (positional arguments in the constructor's order) or an inline
        table ``{ dist = "Normal", sigma = 10, mu = 165 }``.
    where : Where
        The file (for error messages).
    key : str
        The key being read (for error messages), e.g. ``priors.mu``.

    Raises
    ------
    SpecError
        Unknown prior name, malformed string, unknown or missing arguments.
    PriorError
        Invalid argument values (e.g. a negative scale), with the file and key.

    Examples
    --------
    ``where`` names the file in error messages:

    >>> from bayesmle.specfile import parse_prior
    >>> from bayesmle.specfile._schema import Where
    >>> where = Where("spec.toml")
    >>> parse_prior("Normal(10, mu=165)", where, "priors.mu")
    Normal(sigma=10, mu=165)
    >>> parse_prior({"dist": "HalfNormal", "sigma": 5}, where, "priors.sigma")
    HalfNormal(sigma=5)
    >>> parse_prior("Normal(-1)", where, "priors.mu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.PriorError: spec.toml: `priors.mu` = "Normal(-1)": Normal: `sigma` must be...
    """
    if isinstance(value, str):
        try:
            name, args, kwargs = _parse_string(value)
        except (SyntaxError, ValueError) as exc:
            raise where.error(key, f"cannot read this prior ({exc}). Write it like "
                                   f'"Normal(10, mu=165)" or "HalfNormal(5)".', value=value,
                              valid=_valid_priors()) from None
    elif isinstance(value, dict):
        table = dict(value)
        name = table.pop("dist", None)
        if not isinstance(name, str):
            raise where.error(key, 'an inline-table prior needs `dist = "<name>"`, e.g. '
                                   '{ dist = "Normal", sigma = 10 }.', value=value,
                              valid=", ".join(PRIORS))
        args = []
        kwargs = {}
        for k, v in table.items():
            try:
                kwargs[k] = _literal(ast.parse(repr(v), mode="eval").body)
            except (SyntaxError, ValueError):
                raise where.error(f"{key}.{k}", "prior arguments must be numbers or arrays "
                                                "of numbers.", value=v) from None
    else:
        raise where.error(key, 'a prior must be a string such as "Normal(1.0)" or an inline '
                               'table such as { dist = "Normal", sigma = 1.0 }.', value=value,
                          valid=_valid_priors())
    cls = PRIORS.get(name)
    if cls is None:
        raise where.error(key, f"unknown prior {name!r}.", value=value, valid=_valid_priors())
    names = [f.name for f in fields(cls)]
    if len(args) > len(names):
        raise where.error(key, f"{name} takes at most {len(names)} positional argument(s) "
                               f"({', '.join(names) or 'none'}), got {len(args)}.",
                          value=value, valid=_signature(cls))
    given = dict(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k not in names:
            raise where.error(key, f"{name} has no argument {k!r}.", value=value,
                              valid=_signature(cls))
        if k in given:
            raise where.error(key, f"argument {k!r} of {name} is given twice.", value=value)
        given[k] = v
    missing = [n for n in names if n not in given and not _has_default(cls, n)]
    if missing:
        raise where.error(key, f"{name} needs argument(s) {missing}.", value=value,
                          valid=_signature(cls))
    try:
        return cls(**given)
    except BayesMLEError as exc:
        raise where.error(key, str(exc), value=value, cls=PriorError) from None


def _has_default(cls: type, name: str) -> bool:
    from dataclasses import MISSING as DC_MISSING

    for f in fields(cls):
        if f.name == name:
            return f.default is not DC_MISSING or f.default_factory is not DC_MISSING
    return False


def prior_to_toml(prior: _priors.Prior) -> str:
    """The string form of a prior, e.g. ``Normal(sigma=10, mu=165)`` (for reports).

    Examples
    --------
    >>> from bayesmle import Normal
    >>> from bayesmle.specfile import prior_to_toml
    >>> prior_to_toml(Normal(10.0, mu=165.0))
    'Normal(sigma=10, mu=165)'
    >>> prior_to_toml(Normal([1.0, 2.5]))
    'Normal(sigma=[1, 2.5], mu=0)'
    """

    def fmt(v) -> str:
        if v.ndim == 0:
            return f"{float(v):g}"
        return "[" + ", ".join(f"{x:g}" for x in v.ravel()) + "]"

    args = ", ".join(f"{f.name}={fmt(getattr(prior, f.name))}" for f in fields(prior))
    return f"{type(prior).__name__}({args})"
