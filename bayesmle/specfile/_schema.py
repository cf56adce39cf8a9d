"""Validation helpers for TOML spec files: every error names the file, the key and the value.

A message reads ``models/coin.toml: `priors.p` = "Betta(2, 2)": unknown prior 'Betta'. Valid:
Beta, Exponential, ...`` so that a user can fix the file without reading the source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bayesmle.errors import BayesMLEError, SpecError

__all__ = ["MISSING", "Where", "toml_value"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Sentinel for "no value given" (distinct from None, which TOML cannot express anyway).
MISSING: Any = _Missing()

_KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "table": (dict,),
}


def toml_value(value: Any, limit: int = 80) -> str:
    """A short TOML-like rendering of ``value`` for error messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, Mapping):
        text = "{ " + ", ".join(f"{k} = {toml_value(v, limit)}" for k, v in value.items()) + " }"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(toml_value(v, limit) for v in value) + "]"
    elif isinstance(value, float) and math.isfinite(value):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Where:
    """The file being read; builds typed errors that name it, the key and the bad value."""

    file: str

    def error(self, key: str, problem: str, *, value: Any = MISSING,
              valid: str | Iterable[str] | None = None,
              cls: type[BayesMLEError] = SpecError) -> BayesMLEError:
        """An error ``cls`` reading ``<file>: `key` = value: problem Valid: ...``."""
        head = f"{self.file}: `{key}`" if key else f"{self.file}:"
        if value is not MISSING:
            head += f" = {toml_value(value)}"
        message = f"{head}: {problem}".rstrip()
        if valid is not None:
            if not isinstance(valid, str):
                valid = ", ".join(str(v) for v in valid)
            message += f"{'' if message.endswith('.') else '.'} Valid: {valid}."
        return cls(message)

    def table(self, key: str, raw: Any, allowed: Iterable[str],
              required: Iterable[str] = ()) -> dict[str, Any]:
        """Check that ``raw`` is a table with only ``allowed`` keys and every ``required`` one."""
        if not isinstance(raw, dict):
            raise self.error(key, f"must be a table ([{key}] or {{ ... }}), got a "
                                  f"{_kind_of(raw)}.", value=raw)
        allowed = list(allowed)
        for k in raw:
            if k not in allowed:
                raise self.error(_join(key, k), "unknown key.", value=raw[k],
                                 valid=", ".join(sorted(allowed)) or "(no keys)")
        for k in required:
            if k not in raw:
                raise self.error(_join(key, k), "is required but missing.")
        return dict(raw)

    def get(self, table: Mapping[str, Any], prefix: str, key: str, kind: str,
            default: Any = MISSING, *, choices: Iterable[Any] | None = None,
            minimum: float | None = None, maximum: float | None = None) -> Any:
        """``table[key]`` checked to be of ``kind`` (string, integer, number, boolean, ...)."""
        full = _join(prefix, key)
        if key not in table:
            if default is MISSING:
                raise self.error(full, "is required but missing.")
            return default
        value = table[key]
        types = _KINDS[kind]
        ok = isinstance(value, types) and not (kind in ("integer", "number")
                                               and isinstance(value, bool))
        if not ok:
            raise self.error(full, f"must be {_article(kind)}, got {_article(_kind_of(value))}.",
                             value=value)
        if kind == "number" and not math.isfinite(value):
            raise self.error(full, "must be a finite number.", value=value)
        if choices is not None:
            choices = list(choices)
            if value not in choices:
                raise self.error(full, "is not one of the valid choices.", value=value,
                                 valid=", ".join(toml_value(c) for c in choices))
        if minimum is not None and value < minimum:
            raise self.error(full, f"must be >= {minimum:g}.", value=value)
        if maximum is not None and value > maximum:
            raise self.error(full, f"must be <= {maximum:,}.", value=value)
        return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    for name, types in _KINDS.items():
        if name in ("number",):
            continue
        if isinstance(value, types):
            return name
    if isinstance(value, float):
        return "float"
    return type(value).__name__
