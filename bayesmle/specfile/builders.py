"""What a spec file may say about a model builder, read off the builder's signature.

A builder's positional arguments (``y``, ``X``, ``successes``, ``trials``) and ``exposure`` /
``offset`` are *data* arguments, given in ``[model]`` as column names; ``prior`` (the
coefficients' prior, key ``coef`` in ``[priors]``) and ``<param>_prior`` are priors; any other
keyword (``intercept``, ``noise``, a known ``sigma``) is an option.

``builder = "glm"`` with random-effects terms in its formula (``"y ~ x + (1 | g)"``) is a mixed
model: :func:`mixed_glm_frame` (name :data:`MIXED`) takes the whole data frame and the formula,
family, link and trials column as options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bayesmle import models
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Prior

__all__ = ["BUILDERS", "MIXED", "BuilderInfo", "builder_info", "mixed_builder_info",
           "mixed_glm_frame"]

#: The bundled builders by name.
BUILDERS: dict[str, Callable] = {
    name: getattr(models, name) for name in models.__all__ if name not in ("ModelSpec", "glm")
}
# ``builder = "glm"`` is read by ``load`` and mapped to the family's builder above.
_DATA_KEYWORDS = ("exposure", "offset")
#: Positional arguments that are options, not columns (a mixture's number of components).
_OPTION_ARGS = ("k",)


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
    return _info(name, BUILDERS[name])


#: The builder name of a spec file's mixed model (``builder = "glm"`` with random terms).
MIXED = "mixed_glm"


def mixed_glm_frame(data: pd.DataFrame, exposure: Any = None, offset: Any = None, *,
                    formula: str = "", family: str = "gaussian", link: str = "",
                    trials: str = "", prior: Prior | None = None,
                    intercept_prior: Prior | None = None, sd_prior: Prior | None = None,
                    corr_prior: Prior | None = None, sigma_prior: Prior | None = None
                    ) -> ModelSpec:
    """A spec file's mixed model: :func:`bayesmle.models.mixed.mixed_glm` on the data frame.

    ``[priors]`` keys ``coef``, ``intercept``, ``sd``, ``corr`` and ``sigma`` arrive as the
    keywords ``prior``, ``intercept_prior``, ... (the builders' convention); ``trials`` is a
    column name, ``exposure`` / ``offset`` the columns' values.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import bayesmle as bm
    >>> from bayesmle.specfile.builders import mixed_glm_frame
    >>> frame = pd.DataFrame({"y": np.arange(8.0) % 3, "g": list("aabbccdd")})
    >>> mixed_glm_frame(frame, formula="y ~ (1 | g)", sd_prior=bm.HalfNormal(1.0)).params
    ('intercept', 'sd', 'sigma')
    """
    from bayesmle.models.mixed import mixed_glm

    given = {"coef": prior, "intercept": intercept_prior, "sd": sd_prior, "corr": corr_prior,
             "sigma": sigma_prior}
    return mixed_glm(formula, data, family=family, link=link or None, trials=trials or None,
                     exposure=exposure, offset=offset,
                     priors={k: v for k, v in given.items() if v is not None})


def mixed_builder_info() -> BuilderInfo:
    """The :class:`BuilderInfo` of :func:`mixed_glm_frame` (builder name :data:`MIXED`)."""
    return _info(MIXED, mixed_glm_frame)


def _info(name: str, func: Callable) -> BuilderInfo:
    data, required, priors, options = [], [], {}, {}
    for p in inspect.signature(func).parameters.values():
        if p.name in _OPTION_ARGS:
            options[p.name] = p.default
        elif p.kind is p.POSITIONAL_OR_KEYWORD or p.name in _DATA_KEYWORDS:
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
