"""What a spec file may say about a model builder, read off the builder's signature.

A builder's positional arguments (``y``, ``X``, ``successes``, ``trials``) and ``exposure`` /
``offset`` are *data* arguments, given in ``[model]`` as column names; ``prior`` (the
coefficients' prior, key ``coef`` in ``[priors]``) and ``<param>_prior`` are priors; any other
keyword (``intercept``, ``noise``, a known ``sigma``) is an option.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bayesmle import models

__all__ = ["BUILDERS", "BuilderInfo", "builder_info"]

#: The bundled builders by name.
BUILDERS: dict[str, Callable] = {
    name: getattr(models, name) for name in models.__all__ if name not in ("ModelSpec", "glm")
}
# ``builder = "glm"`` is read by ``load`` and mapped to the family's builder above.
_DATA_KEYWORDS = ("exposure", "offset")


@dataclass(frozen=True)
class BuilderInfo:
    """A builder and the roles of its arguments."""

    name: str
    func: Callable
    #: Data arguments in signature order, and the required ones.
    data_args: tuple[str, ...]
    required_data: tuple[str, ...]
    #: Parameter name (as in ``[priors]``) -> builder keyword (``coef`` -> ``prior``).
    prior_args: dict[str, str]
    #: Option name -> default value.
    options: dict[str, Any]

    @property
    def is_regression(self) -> bool:
        """True when the builder takes a design matrix ``X``."""
        return "X" in self.data_args


def builder_info(name: str) -> BuilderInfo:
    """Introspect the bundled builder ``name`` (a key of :data:`BUILDERS`)."""
    func = BUILDERS[name]
    data, required, priors, options = [], [], {}, {}
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.POSITIONAL_OR_KEYWORD or p.name in _DATA_KEYWORDS:
            data.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
        elif p.name == "prior":
            priors["coef"] = p.name
        elif p.name.endswith("_prior"):
            priors[p.name[: -len("_prior")]] = p.name
        else:
            options[p.name] = p.default
    return BuilderInfo(name, func, tuple(data), tuple(required), priors, options)
